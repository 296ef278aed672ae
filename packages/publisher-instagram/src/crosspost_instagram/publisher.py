"""The Instagram publisher: instagrapi in a daemon worker thread, bounded by the publish's
time limit, with the saved session reused and the photo fitted to Instagram's feed."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Mapping
from typing import Any

from crosspost_images import ImageError, ImageSpec, PreparedImage, prepare_image_async
from crosspost_instagram.caption import count_hashtags, format_caption
from crosspost_instagram.client import (
    Progress,
    check_blocking,
    publish_blocking,
    register_settings_secrets,
)
from crosspost_instagram.errors import Failure, InstagramError, describe_failure
from crosspost_instagram.settings import InstagramSettings
from crosspost_instagram.worker import RequestBudget, run_in_daemon_thread
from crosspost_logs import log_publisher_publish, now_monotonic
from crosspost_orchestrator import Publisher, PublishResult

__all__ = [
    "MAX_RATIO",
    "MIN_RATIO",
    "InstagramPublisher",
    "create_publisher",
    "instagram_image_spec",
]

logger = logging.getLogger(__name__)

PLATFORM = "instagram"
#: Instagram's feed accepts width / height from 4:5 to 1.91:1.
MIN_RATIO = 0.8
MAX_RATIO = 1.91
#: Our own time limit ends this much before the orchestrator's identical one, so the result
#: that knows whether the post may exist is the one recorded.
_MARGIN_S = 0.25


def instagram_image_spec(max_width: int = 1080, fit: str = "pad") -> ImageSpec:
    """What Instagram's feed takes: ratio 4:5 to 1.91:1 (padded or cropped into it), at
    most `max_width` wide, JPEG, without EXIF or GPS data."""
    return ImageSpec(
        max_width=max_width,
        min_ratio=MIN_RATIO,
        max_ratio=MAX_RATIO,
        fit="crop" if fit == "crop" else "pad",
        format="JPEG",
        strip_metadata=True,
    )


class InstagramPublisher(Publisher):
    """Publishes a photo to the Instagram feed of `settings.username` with instagrapi.

    Every instagrapi call runs in a daemon thread, never on the event loop, and every HTTP
    request it makes is held to the publish's remaining time, so a hung Instagram costs a
    failed result at the time limit, never a hung run or process. The saved session is
    reused while Instagram accepts it; the password logs in only when it does not, and the
    new session is saved (mode 0600). Challenges and two-factor demands fail at once with
    what to do; nothing waits for a keyboard. The post is created by one request that is
    never repeated: when its answer is lost, the result says the post may exist.
    """

    def __init__(self, settings: InstagramSettings) -> None:
        self.settings = settings
        self.image_spec = instagram_image_spec(settings.max_width, settings.fit)
        register_settings_secrets(settings)
        self._busy = asyncio.Lock()
        self._budgets: set[RequestBudget] = set()

    @property
    def platform_name(self) -> str:
        return PLATFORM

    @property
    def timeout_s(self) -> float | None:
        return self.settings.timeout_s

    def format_caption(self, caption: str) -> str:
        return format_caption(caption)

    async def validate(self, image_path: str, caption: str) -> None:
        await self._rendition(image_path)

    async def preview(self, image_path: str, caption: str) -> dict[str, Any]:
        rendition = await self._rendition(image_path)
        text = self.format_caption(caption)
        return {
            "caption": text,
            "caption_chars": len(text),
            "hashtags": count_hashtags(text),
            "width": rendition.width,
            "height": rendition.height,
            "format": rendition.format,
            "size_bytes": rendition.size_bytes,
            "account": self.settings.username,
        }

    async def check(self) -> str:
        progress = Progress()
        limit = self._limit_s()
        budget = RequestBudget.for_seconds(limit)
        timer = asyncio.timeout(limit)
        try:
            async with timer:
                await self._in_worker(
                    functools.partial(check_blocking, self.settings, budget, progress), budget
                )
        except TimeoutError as exc:
            if timer.expired():
                raise InstagramError(
                    f"Instagram did not answer within {limit:g} s; check the network or proxy"
                ) from None
            raise InstagramError(describe_failure(exc, self.settings.username).message) from None
        except InstagramError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure becomes one plain InstagramError
            # Chaining would carry instagrapi's raw error text (the server's answer) along.
            raise InstagramError(describe_failure(exc, self.settings.username).message) from None
        how = (
            f"the saved session in {self.settings.session_file} is valid"
            if progress.login == "session"
            else f"password login; session saved to {self.settings.session_file}"
        )
        return f"logged in as {self.settings.username} ({how})"

    async def publish(
        self, image_path: str, caption: str, context: dict[str, Any] | None = None
    ) -> PublishResult:
        start = now_monotonic()
        progress = Progress()
        limit = self._limit_s()
        budget = RequestBudget.for_seconds(limit)
        timer = asyncio.timeout(limit)
        text = self.format_caption(caption)
        failure: Failure | None = None
        media_id: str | None = None
        code: str | None = None
        try:
            async with timer:
                rendition = await self._rendition(image_path)
                media_id, code = await self._in_worker(
                    functools.partial(
                        publish_blocking, self.settings, budget, rendition.path, text, progress
                    ),
                    budget,
                )
        except asyncio.CancelledError:
            log_publisher_publish(
                logger, PLATFORM, start, False, error="cancelled", attempts=1,
                outcome_unknown=progress.configure_sent, login=progress.login,
            )  # fmt: skip
            raise
        except TimeoutError as exc:
            if timer.expired():
                maybe = (
                    "; the post may exist: check the profile before publishing again"
                    if progress.configure_sent
                    else ""
                )
                failure = Failure(f"timed out after {limit:g} s{maybe}", progress.configure_sent)
            else:
                failure = describe_failure(
                    exc, self.settings.username, configure_sent=progress.configure_sent
                )
        except ImageError as exc:
            failure = Failure(f"the photo cannot be prepared for Instagram: {exc}")
        except Exception as exc:  # noqa: BLE001 - publish reports failures, never raises them
            failure = describe_failure(
                exc, self.settings.username, configure_sent=progress.configure_sent
            )
        if failure is not None:
            duration = log_publisher_publish(
                logger, PLATFORM, start, False, error=failure.message, attempts=1,
                outcome_unknown=failure.outcome_unknown, login=progress.login,
            )  # fmt: skip
            return PublishResult(
                success=False,
                platform=PLATFORM,
                error=failure.message,
                duration_ms=duration,
                outcome_unknown=failure.outcome_unknown,
            )
        duration = log_publisher_publish(
            logger, PLATFORM, start, True, attempts=1, post_id=media_id, login=progress.login,
            url=f"https://www.instagram.com/p/{code}/",
        )  # fmt: skip
        return PublishResult(
            success=True, platform=PLATFORM, post_id=media_id, duration_ms=duration
        )

    async def aclose(self) -> None:
        # Nothing is kept between publishes; work still running is told to give up.
        for budget in list(self._budgets):
            budget.cancel()

    # -- internals ---------------------------------------------------------------------------
    def _limit_s(self) -> float:
        limit = self.settings.time_limit_s
        return limit - min(_MARGIN_S, limit * 0.05)

    async def _rendition(self, image_path: str) -> PreparedImage:
        return await prepare_image_async(image_path, self.image_spec)

    async def _in_worker(self, func: functools.partial[Any], budget: RequestBudget) -> Any:
        """Run `func` in a daemon thread, one at a time per publisher (they share the
        session file); the budget is cancelled if the wait is abandoned."""
        self._budgets.add(budget)
        try:
            async with self._busy:
                # The wait for the lock counted against the same deadline.
                if budget.remaining() <= 0:
                    raise TimeoutError
                return await run_in_daemon_thread(func, on_abandon=budget.cancel)
        finally:
            self._budgets.discard(budget)


def create_publisher(settings: Mapping[str, Any]) -> InstagramPublisher:
    """The `instagram` entry point: a publisher from the `[publishers.instagram]` table (plus
    `password` from `CROSSPOST_INSTAGRAM_PASSWORD`)."""
    return InstagramPublisher(InstagramSettings.from_mapping(settings))
