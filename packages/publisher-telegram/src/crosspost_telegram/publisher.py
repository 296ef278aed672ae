"""The Telegram channel publisher: one photo with its caption through the Bot API's sendPhoto."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from crosspost_images import ImageError, ImageSpec, PreparedImage, prepare_image_async
from crosspost_logs import log_json, log_publisher_publish, now_monotonic, register_secret, sanitize
from crosspost_orchestrator import CrosspostError, Publisher, PublishResult
from crosspost_telegram.caption import format_caption
from crosspost_telegram.client import build_bot, redact_library_loggers
from crosspost_telegram.failures import Failure, classify_failure
from crosspost_telegram.settings import TelegramSettings

if TYPE_CHECKING:
    from telegram import Bot
    from telegram.request import HTTPXRequest

__all__ = [
    "PHOTO_MAX_BYTES",
    "PHOTO_MAX_RATIO",
    "PHOTO_MAX_SIDES_SUM",
    "TelegramPublisher",
    "create_publisher",
    "telegram_image_spec",
]

logger = logging.getLogger(__name__)

#: sendPhoto's limits (PLATFORMS.md).
PHOTO_MAX_BYTES = 10 * 2**20
PHOTO_MAX_SIDES_SUM = 10_000
PHOTO_MAX_RATIO = 20.0

_FIRST_BACKOFF_S = 0.5
_MAX_BACKOFF_S = 8.0


def telegram_image_spec(max_width: int = 1280) -> ImageSpec:
    """The rendition Telegram gets: at most `max_width` wide, width + height at most 10000,
    sides at most 20:1 (refused otherwise), at most 10 MB, JPEG without metadata.

    Publishers with the same `max_width` share one spec, so the rendition cache computes the
    image once for all of them.
    """
    return ImageSpec(
        max_width=max_width,
        max_sum=PHOTO_MAX_SIDES_SUM,
        min_ratio=1 / PHOTO_MAX_RATIO,
        max_ratio=PHOTO_MAX_RATIO,
        fit="reject",
        max_bytes=PHOTO_MAX_BYTES,
        strip_metadata=True,
        format="JPEG",
    )


@dataclass(slots=True)
class _Outcome:
    attempts: int = 0
    post_id: str | None = None
    error: str | None = None
    outcome_unknown: bool = False


class TelegramPublisher(Publisher):
    """Posts a photo with its caption to one Telegram channel with python-telegram-bot.

    One `telegram.Bot` per instance, built on first use (off the event loop) and reused by
    every publish, including concurrent ones; `aclose()` releases it. Flood control is sat
    out when Telegram's wait fits `max_retry_after_s` and the time left; connection
    failures before the upload are retried with backoff; a timeout or broken connection
    after the upload began is reported as "outcome unknown" and never retried, so a photo is
    never posted twice. The bot token never appears in a log line or an error.
    """

    def __init__(self, settings: TelegramSettings) -> None:
        self.settings = settings
        register_secret(settings.bot_token)
        redact_library_loggers()
        self._spec = telegram_image_spec(settings.max_width)
        self._channel = str(settings.channel_id)
        parts = urlsplit(settings.api_base_url)
        self._host = parts.hostname or "the Telegram API"
        if parts.port is not None:
            self._host = f"{self._host}:{parts.port}"
        self._lock = asyncio.Lock()
        self._bot: Bot | None = None
        self._request: HTTPXRequest | None = None

    # -- the Publisher contract ----------------------------------------------------------
    @property
    def platform_name(self) -> str:
        return "telegram"

    @property
    def timeout_s(self) -> float | None:
        return self.settings.timeout_s

    def format_caption(self, caption: str) -> str:
        """The caption as Telegram receives it: trimmed, at most 1024 characters."""
        return format_caption(caption)

    async def validate(self, image_path: str, caption: str) -> None:
        """Refuse, before anything is sent, an image Telegram can never take (sides beyond
        20:1, unreadable); prepare the rendition and the client so publish starts at once."""
        await self._rendition(image_path)
        await self._client()

    async def preview(self, image_path: str, caption: str) -> dict[str, Any]:
        """The caption and the rendition that would be sent, computed locally."""
        text = self.format_caption(caption)
        prepared = await self._rendition(image_path)
        return {
            "channel": self._channel,
            "caption": text,
            "caption_truncated": text != caption.strip(),
            "image_width": prepared.width,
            "image_height": prepared.height,
            "image_bytes": prepared.size_bytes,
            "image_format": prepared.format,
        }

    async def check(self) -> str:
        """Ask Telegram who the bot is and whether it may post in the channel (nothing is
        posted); raises `CrosspostError` with the reason when it may not."""
        bot = await self._client()
        try:
            me = await bot.get_me()
            chat = await bot.get_chat(self.settings.channel_id)
            member = await bot.get_chat_member(chat.id, me.id)
        except Exception as exc:  # noqa: BLE001 - every failure becomes one plain line
            reason = self._classify(exc)
            text = reason.reason
            if reason.kind == "unknown":
                text = f"no usable answer from the Telegram API at {self._host}"
            # `from None`: the library's exception text is not ours to vouch for.
            raise CrosspostError(f"telegram: {text}") from None
        name = f"@{me.username}" if me.username else f"bot {me.id}"
        status = str(member.status)
        if chat.type == "channel":
            may_post = status == "creator" or (
                status == "administrator" and getattr(member, "can_post_messages", None)
            )
        else:
            may_post = status in ("creator", "administrator", "member")
        if not may_post:
            raise CrosspostError(
                f"telegram: bot {name} is {status} in {self._channel} but may not post there: "
                "make it an administrator with the right to post messages"
            )
        title = f" ({chat.title})" if chat.title else ""
        return f"bot {name} can post to {self._channel}{title}"

    async def aclose(self) -> None:
        """Close the bot's connections; a later publish builds a new client."""
        async with self._lock:
            request, self._request, self._bot = self._request, None, None
        if request is not None:
            await request.shutdown()

    async def publish(
        self, image_path: str, caption: str, context: dict[str, Any] | None = None
    ) -> PublishResult:
        """Post the photo; never raises (but may be cancelled). See the class docstring."""
        start = now_monotonic()
        outcome = _Outcome()
        try:
            await self._publish(image_path, caption, start, outcome)
        except ImageError as exc:
            outcome.error = f"the photo cannot be posted to Telegram: {exc}"
        except OSError as exc:
            outcome.error = f"cannot read the prepared photo: {exc.strerror or exc}"
        except Exception as exc:  # noqa: BLE001 - publish must return a result whatever happens
            outcome.error = f"unexpected {type(exc).__name__}: {exc}"
        error = None if outcome.error is None else sanitize(" ".join(outcome.error.split()))
        success = error is None
        duration = log_publisher_publish(
            logger,
            self.platform_name,
            start,
            success,
            error=error,
            attempts=outcome.attempts,
            post_id=outcome.post_id,
            outcome_unknown=outcome.outcome_unknown,
        )
        return PublishResult(
            success=success,
            platform=self.platform_name,
            post_id=outcome.post_id,
            error=error,
            duration_ms=duration,
            attempts=outcome.attempts,
            outcome_unknown=outcome.outcome_unknown,
        )

    # -- internals -----------------------------------------------------------------------
    async def _publish(
        self, image_path: str, caption: str, start: float, outcome: _Outcome
    ) -> None:
        prepared = await self._rendition(image_path)
        photo = await asyncio.to_thread(Path(prepared.path).read_bytes)
        filename = f"{Path(image_path).stem or 'photo'}.jpg"
        text = self.format_caption(caption) or None
        bot = await self._client()
        settings = self.settings
        while True:
            outcome.attempts += 1
            try:
                message = await bot.send_photo(
                    settings.channel_id,
                    photo=photo,
                    caption=text,
                    filename=filename,
                    read_timeout=settings.read_timeout_s,
                    write_timeout=settings.media_write_timeout_s,
                    connect_timeout=settings.connect_timeout_s,
                    pool_timeout=settings.connect_timeout_s,
                )
            except Exception as exc:  # noqa: BLE001 - classified below, never re-raised
                failure = self._classify(exc)
            else:
                outcome.post_id = str(message.message_id)
                return
            left = None
            if settings.timeout_s is not None:
                left = settings.timeout_s - (now_monotonic() - start)
            wait = self._wait_before_retry(failure, outcome, left)
            log_json(
                logger,
                logging.WARNING,
                "telegram_attempt_failed",
                attempt=outcome.attempts,
                kind=failure.kind,
                reason=failure.reason,
                retry_in_s=wait,
            )
            if wait is None:
                return
            await asyncio.sleep(wait)

    def _wait_before_retry(
        self, failure: Failure, outcome: _Outcome, left_s: float | None
    ) -> float | None:
        """Seconds to wait before the next attempt, or None after recording why not."""
        settings = self.settings
        attempts_left = outcome.attempts < settings.max_attempts
        if failure.kind == "flood":
            asked = failure.retry_after_s or 0.0
            if asked > settings.max_retry_after_s:
                outcome.error = (
                    f"{failure.reason}, longer than max_retry_after_s "
                    f"({settings.max_retry_after_s:g} s): publish again later"
                )
            elif left_s is not None and asked > left_s:
                outcome.error = (
                    f"{failure.reason}, longer than the {max(left_s, 0):.0f} s left of this "
                    "publish's timeout_s: publish again later"
                )
            elif not attempts_left:
                outcome.error = (
                    f"{failure.reason} after {outcome.attempts} attempts: publish again later"
                )
            else:
                return asked
            return None
        if failure.kind == "retry":
            backoff = min(_FIRST_BACKOFF_S * 2.0 ** (outcome.attempts - 1), _MAX_BACKOFF_S)
            backoff *= random.uniform(0.8, 1.2)
            if attempts_left and (left_s is None or backoff < left_s):
                return backoff
            outcome.error = f"{failure.reason} (gave up after {outcome.attempts} attempts)"
            return None
        outcome.error = failure.reason
        outcome.outcome_unknown = failure.kind == "unknown"
        return None

    def _classify(self, exc: BaseException) -> Failure:
        return classify_failure(
            exc,
            channel=self._channel,
            host=self._host,
            read_timeout_s=self.settings.read_timeout_s,
        )

    async def _rendition(self, image_path: str) -> PreparedImage:
        # The spec refuses a photo beyond Telegram's side ratio from its header.
        return await prepare_image_async(image_path, self._spec)

    async def _client(self) -> Bot:
        async with self._lock:
            if self._bot is None:
                # Importing python-telegram-bot and building an httpx client (TLS context
                # included) takes tens of milliseconds: not on the event loop.
                bot, request = await asyncio.to_thread(build_bot, self.settings)
                self._bot, self._request = bot, request
                return bot
            return self._bot


def create_publisher(settings: Mapping[str, Any]) -> TelegramPublisher:
    """The `telegram` plugin's factory: the `[publishers.telegram]` table (with `bot_token`
    from `CROSSPOST_TELEGRAM_BOT_TOKEN`) to a publisher; raises `ConfigError` for bad
    settings."""
    return TelegramPublisher(TelegramSettings.from_mapping(settings))
