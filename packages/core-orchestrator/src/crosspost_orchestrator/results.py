"""Result types of one publish and of one workflow run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["PublishResult", "PublishStatus", "WorkflowResult"]


class PublishStatus:
    """The states a platform can be in for one image (as the ledger stores them)."""

    PUBLISHED = "published"
    FAILED = "failed"
    CANCELLED = "cancelled"
    #: The platform may have the post: the upload was sent but its answer never came.
    UNKNOWN = "unknown"
    #: Recorded just before the request goes out; still there after a crash means "maybe".
    STARTED = "started"


@dataclass(frozen=True, slots=True)
class PublishResult:
    """What one publisher did with one image.

    `error` is a one-line, secret-free, plain-words reason when `success` is false.
    `attempts` counts the requests actually made (1 unless the publisher retried).
    `warnings` carries problems that did not make the publish fail (a failed confirmation
    e-mail after the photo was accepted, for instance). `outcome_unknown` is true when the
    platform may have received the post although the publisher could not confirm it.
    """

    success: bool
    platform: str
    post_id: str | None = None
    error: str | None = None
    duration_ms: int | None = None
    attempts: int = 1
    warnings: tuple[str, ...] = ()
    outcome_unknown: bool = False
    cancelled: bool = False

    @property
    def status(self) -> str:
        """The ledger status this result stands for."""
        if self.success:
            return PublishStatus.PUBLISHED
        if self.cancelled:
            return PublishStatus.CANCELLED
        if self.outcome_unknown:
            return PublishStatus.UNKNOWN
        return PublishStatus.FAILED


@dataclass(slots=True)
class WorkflowResult:
    """What one `WorkflowOrchestrator.execute` run did.

    `success` is true when at least one platform succeeded in this run (or, in a dry run or
    preview, when the run would have been attempted). `publish_results` holds one entry per
    platform attempted in this run; platforms the ledger already showed as done are listed in
    `already_published` and not attempted again. `publish_timeline` gives, per platform, the
    start and end of its publish in milliseconds from the start of the publish phase.
    """

    success: bool
    image_name: str | None = None
    caption: str = ""
    publish_results: dict[str, PublishResult] = field(default_factory=dict)
    platform_captions: dict[str, str] = field(default_factory=dict)
    previews: dict[str, dict[str, Any]] = field(default_factory=dict)
    already_published: tuple[str, ...] = ()
    archived: bool = False
    archived_path: str | None = None
    error: str | None = None
    correlation_id: str | None = None
    image_path: str | None = None
    image_sha256: str | None = None
    dry_publish: bool = False
    preview_mode: bool = False
    image_selection_ms: int = 0
    publish_parallel_ms: int = 0
    archive_ms: int = 0
    loop_lag_max_ms: int = 0
    publish_timeline: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def failed_platforms(self) -> list[str]:
        """Platforms attempted in this run that did not succeed."""
        return [name for name, r in self.publish_results.items() if not r.success]
