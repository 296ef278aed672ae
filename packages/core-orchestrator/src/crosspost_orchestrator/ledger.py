"""Ledgers: which platform already has which image, so nothing is ever posted twice."""

from __future__ import annotations

import asyncio
from typing import Protocol, runtime_checkable

from crosspost_orchestrator.results import PublishResult, PublishStatus

__all__ = ["InMemoryLedger", "Ledger", "LedgerEntry"]


class LedgerEntry:
    """One row of the ledger: one image (by content hash) and one platform."""

    __slots__ = ("attempts", "error", "image_name", "platform", "post_id", "sha256", "status")

    def __init__(self, sha256: str, platform: str, image_name: str, status: str) -> None:
        self.sha256 = sha256
        self.platform = platform
        self.image_name = image_name
        self.status = status
        self.post_id: str | None = None
        self.error: str | None = None
        self.attempts = 0


@runtime_checkable
class Ledger(Protocol):
    """Records each platform's outcome per image content hash, as soon as it is known."""

    async def published_platforms(self, sha256: str) -> set[str]:
        """Platforms that already have this image (status `published`)."""
        ...

    async def record_start(self, sha256: str, image_name: str, platform: str) -> None:
        """Note that a publish to `platform` is about to go out (status `started`)."""
        ...

    async def record_result(self, sha256: str, image_name: str, result: PublishResult) -> None:
        """Store the outcome of one publish (status from `result.status`)."""
        ...


class InMemoryLedger:
    """A ledger that lives as long as the process: for tests and library use."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], LedgerEntry] = {}
        self._lock = asyncio.Lock()

    def entry(self, sha256: str, platform: str) -> LedgerEntry | None:
        """The row for this image and platform, if any."""
        return self._rows.get((sha256, platform))

    async def published_platforms(self, sha256: str) -> set[str]:
        return {
            platform
            for (digest, platform), row in self._rows.items()
            if digest == sha256 and row.status == PublishStatus.PUBLISHED
        }

    async def record_start(self, sha256: str, image_name: str, platform: str) -> None:
        async with self._lock:
            row = self._rows.get((sha256, platform))
            if row is None:
                row = self._rows[(sha256, platform)] = LedgerEntry(
                    sha256, platform, image_name, PublishStatus.STARTED
                )
            row.status = PublishStatus.STARTED

    async def record_result(self, sha256: str, image_name: str, result: PublishResult) -> None:
        async with self._lock:
            row = self._rows.get((sha256, result.platform))
            if row is None:
                row = self._rows[(sha256, result.platform)] = LedgerEntry(
                    sha256, result.platform, image_name, result.status
                )
            row.status = result.status
            row.post_id = result.post_id
            row.error = result.error
            row.attempts += result.attempts
