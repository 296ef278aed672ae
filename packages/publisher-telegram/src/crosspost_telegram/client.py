"""Building the python-telegram-bot client, and keeping the bot token out of its logs."""

from __future__ import annotations

import contextlib
import importlib
import logging
from typing import TYPE_CHECKING

from crosspost_logs import RedactingFilter
from crosspost_telegram.settings import TelegramSettings

if TYPE_CHECKING:
    from telegram import Bot
    from telegram.request import HTTPXRequest

__all__ = ["CONNECTION_POOL_SIZE", "build_bot", "redact_library_loggers"]

#: Connections one publisher may hold to the Bot API: enough for many concurrent publishes
#: through one instance without waiting for the pool.
CONNECTION_POOL_SIZE = 256

# The loggers that see request URLs (httpx logs every one at INFO, python-telegram-bot the
# base URL at DEBUG), and a Bot API URL holds the bot token.
_LIBRARY_LOGGERS = (
    "httpx",
    "httpcore",
    "telegram",
    "telegram.Bot",
    "telegram.request",
    "telegram.request.BaseRequest",
    "telegram.request.HTTPXRequest",
    "telegram.ext",
    "telegram.ext.ExtBot",
)
_LIBRARY_PREFIXES = ("httpx", "httpcore", "telegram")
_filter = RedactingFilter()


def redact_library_loggers() -> None:
    """Put the redacting filter on the client libraries' own loggers.

    A filter on a logger applies to every record it makes, before any handler sees it, so
    the token is gone whatever handlers the application (or pytest's caplog) installed.
    """
    names = set(_LIBRARY_LOGGERS)
    names.update(
        name
        for name in list(logging.root.manager.loggerDict)
        if any(name == p or name.startswith(p + ".") for p in _LIBRARY_PREFIXES)
    )
    for name in sorted(names):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(_filter)


def _preload_async_backend() -> None:
    # httpcore imports anyio's asyncio backend on the first request; that import holds the
    # event loop for about 50 ms. Importing it here, in the builder's thread, spares the loop.
    with contextlib.suppress(ImportError):
        importlib.import_module("anyio._backends._asyncio")


def build_bot(settings: TelegramSettings) -> tuple[Bot, HTTPXRequest]:
    """A `telegram.Bot` for `settings` and the request object it sends through.

    Blocking (it imports python-telegram-bot and builds an httpx client with its TLS
    context): call it in a thread.
    """
    from telegram import Bot
    from telegram.request import HTTPXRequest

    _preload_async_backend()
    redact_library_loggers()
    request = HTTPXRequest(
        connection_pool_size=CONNECTION_POOL_SIZE,
        connect_timeout=settings.connect_timeout_s,
        read_timeout=settings.read_timeout_s,
        write_timeout=settings.connect_timeout_s,
        media_write_timeout=settings.media_write_timeout_s,
        pool_timeout=settings.connect_timeout_s,
    )
    # getUpdates is never called: sharing the one request object spares a second client.
    bot = Bot(
        settings.bot_token,
        base_url=settings.api_base_url,
        request=request,
        get_updates_request=request,
    )
    return bot, request
