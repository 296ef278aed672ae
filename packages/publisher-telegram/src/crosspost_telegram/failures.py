"""What a python-telegram-bot exception means for a publish: wait and retry, retry, give up,
or give up without knowing whether the photo was posted — each with a plain-words reason."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from crosspost_logs import sanitize

__all__ = ["Failure", "classify_failure", "retry_after_seconds"]

FailureKind = Literal["flood", "retry", "final", "unknown"]


@dataclass(frozen=True, slots=True)
class Failure:
    """`flood`: wait `retry_after_s`, then retry. `retry`: nothing reached Telegram (or it
    said so), safe to send again. `final`: retrying cannot help. `unknown`: the photo may
    have been posted; sending it again could post it twice."""

    kind: FailureKind
    reason: str
    retry_after_s: float | None = None


def retry_after_seconds(value: object) -> float:
    """`RetryAfter.retry_after` in seconds, in either of its forms (int, or timedelta when
    PTB_TIMEDELTA is set)."""
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise TypeError(f"retry_after of unexpected type {type(value).__name__}")


def classify_failure(
    exc: BaseException, *, channel: str, host: str, read_timeout_s: float
) -> Failure:
    """What `exc`, raised by a Bot API call, means (see `Failure`)."""
    # Imported here: python-telegram-bot is loaded only once a bot exists.
    from telegram import error

    if isinstance(exc, error.RetryAfter):
        seconds = retry_after_seconds(exc.retry_after)
        return Failure("flood", f"Telegram flood control asked to wait {seconds:g} s", seconds)
    if isinstance(exc, error.ChatMigrated):
        return Failure(
            "final",
            f"the chat {channel} moved to id {exc.new_chat_id}: set channel_id = {exc.new_chat_id}",
        )
    if isinstance(exc, error.InvalidToken):
        if "not found" in exc.message.lower():
            return Failure(
                "final",
                "Telegram answered 404 Not Found: the bot token is malformed or "
                "api_base_url is wrong",
            )
        return Failure(
            "final", "the bot token was rejected by Telegram: check CROSSPOST_TELEGRAM_BOT_TOKEN"
        )
    if isinstance(exc, error.Forbidden):
        return Failure(
            "final",
            f"the bot is not a member of the channel {channel}: add it as an administrator "
            f"with the right to post messages (Telegram: {_said(exc)})",
        )
    if isinstance(exc, error.BadRequest):
        return Failure("final", _bad_request_reason(exc, channel))
    if isinstance(exc, error.NetworkError):  # TimedOut included
        return _network_failure(exc, host=host, read_timeout_s=read_timeout_s)
    if isinstance(exc, error.TelegramError):
        return Failure("final", f"Telegram error: {_said(exc)}")
    # Anything else came from inside the client while the request may have been on its way.
    return Failure(
        "unknown",
        f"unexpected {type(exc).__name__} while posting ({sanitize(str(exc))}): the photo may "
        f"have been posted; check {channel} before publishing again",
    )


def _said(exc: BaseException) -> str:
    return sanitize(" ".join(str(exc).split())) or type(exc).__name__


def _bad_request_reason(exc: BaseException, channel: str) -> str:
    text = str(exc).lower()
    if "chat not found" in text:
        return (
            f"chat not found: check channel_id ({channel}) and that the bot was added to "
            "the channel"
        )
    if "administrator rights" in text or "not enough rights" in text:
        return (
            f"the bot may not post in {channel}: make it an administrator with the right to "
            "post messages"
        )
    if "photo_invalid_dimensions" in text:
        return (
            "Telegram refused the photo's dimensions (width + height at most 10000, "
            "sides at most 20:1)"
        )
    if "photo_save_file_invalid" in text or "too big" in text or "too large" in text:
        return "Telegram refused the photo as too large (at most 10 MB)"
    if "caption is too long" in text:
        return "Telegram refused the caption as too long (at most 1024 characters)"
    if "image_process_failed" in text:
        return "Telegram could not read the photo as an image"
    return f"Telegram refused the request: {_said(exc)}"


def _network_failure(exc: BaseException, *, host: str, read_timeout_s: float) -> Failure:
    """Before the request went out (connect, pool) is safe to retry; after it went out,
    silence or a broken connection leaves the outcome unknown."""
    import httpx as _httpx
    from telegram.error import TelegramError

    cause = exc.__cause__
    unknown_tail = "the photo may have been posted; check the channel before publishing again"
    if isinstance(cause, _httpx.PoolTimeout):
        return Failure("retry", "every connection to Telegram was busy (pool timeout)")
    if isinstance(cause, _httpx.ConnectTimeout):
        return Failure("retry", f"timed out connecting to {host}")
    if isinstance(cause, _httpx.ConnectError | _httpx.ProxyError):
        return Failure("retry", f"could not connect to {host} ({_said(cause)})")
    if isinstance(cause, _httpx.UnsupportedProtocol | _httpx.InvalidURL):
        return Failure("final", f"api_base_url is not usable ({_said(cause)})")
    if isinstance(cause, _httpx.ReadTimeout):
        return Failure(
            "unknown",
            f"no answer from Telegram within {read_timeout_s:g} s after the photo was sent: "
            + unknown_tail,
        )
    if isinstance(cause, _httpx.WriteTimeout):
        return Failure("unknown", "timed out while sending the photo to Telegram: " + unknown_tail)
    if isinstance(cause, _httpx.HTTPError):
        return Failure(
            "unknown",
            f"the connection to Telegram broke before its answer ({_said(cause)}): " + unknown_tail,
        )
    if cause is None or isinstance(cause, TelegramError):
        # Telegram itself answered with a server error. A gateway timeout means the request
        # may still have been carried out behind the gateway; any other 5xx says it was not.
        said = _said(exc)
        if "gateway timeout" in said.lower() or "(504)" in said:
            return Failure("unknown", f"Telegram answered {said}: " + unknown_tail)
        return Failure("retry", f"Telegram answered with a server error ({said})")
    return Failure(
        "unknown",
        f"the HTTP client failed while posting ({_said(exc)}): " + unknown_tail,
    )
