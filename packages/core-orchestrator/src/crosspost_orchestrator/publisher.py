"""The publisher contract every platform package implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from crosspost_orchestrator.results import PublishResult

__all__ = ["Publisher"]


class Publisher(ABC):
    """One platform crosspost can publish to.

    Implementations must never raise from `publish`: every failure becomes
    `PublishResult(success=False, error=...)` with a one-line, secret-free reason. They must
    never block the event loop (blocking SDKs and image work run in threads), never write the
    input image, and log exactly one `publisher_publish` event per publish.
    `asyncio.CancelledError` is the one exception allowed to propagate from `publish`.
    """

    @property
    @abstractmethod
    def platform_name(self) -> str:
        """Short, stable name of the platform (`telegram`, `email`, ...)."""

    def is_enabled(self) -> bool:
        """Whether this publisher takes part in runs. Default: enabled."""
        return True

    @property
    def timeout_s(self) -> float | None:
        """This publisher's own time limit for one publish; None means the orchestrator's."""
        return None

    @abstractmethod
    async def publish(
        self, image_path: str, caption: str, context: dict[str, Any] | None = None
    ) -> PublishResult:
        """Publish the image with the caption; never raises (but may be cancelled)."""

    async def validate(self, image_path: str, caption: str) -> None:
        """Check, locally and without network, that this input can be published at all.

        Raises `ValueError` (for instance `crosspost_orchestrator.InputError` or
        `crosspost_images.ImageError`) with a one-line reason when it cannot, so a run with
        bad input stops before any platform is contacted. Implementations may prepare (and
        cache) their rendition here. Default: accepts everything.
        """
        return

    def format_caption(self, caption: str) -> str:
        """The caption exactly as this platform will receive it. Default: unchanged."""
        return caption

    async def preview(self, image_path: str, caption: str) -> dict[str, Any]:
        """What would be sent (caption, image size, ...), computed locally with no network."""
        return {"caption": self.format_caption(caption)}

    async def check(self) -> str:
        """Verify configuration, credentials and reachability without posting anything.

        Returns a one-line description of what was verified (for `crosspost check`). Raises
        `CrosspostError` or `OSError` with a plain, secret-free reason when the platform
        cannot be used. Default: nothing to verify.
        """
        return f"no check available for {self.platform_name}"

    async def aclose(self) -> None:
        """Release clients and connections. Default: nothing to release."""
        return
