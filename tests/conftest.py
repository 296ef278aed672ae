"""Shared parts of the cross-package tests: a real photo on disk and a configurable publisher.

`FakePublisher` is not a mock of anything under test: it is the kind of thing the
orchestrator drives, with knobs for the behaviours the tests pin (slow, hung, blocking,
raising), recording what happened to it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from crosspost_logs import log_publisher_publish, now_monotonic
from crosspost_orchestrator import Publisher, PublishResult, SelectedImage, SingleImageSource

logger = logging.getLogger("tests.fake_publisher")


class FakePublisher(Publisher):
    """A publisher whose publish sleeps `sleep_s` (asynchronously), blocks the loop for
    `block_s`, hangs forever (`hang`), or raises `raises`; it logs its own
    `publisher_publish` like a real one and records intervals, cancellation and closing."""

    def __init__(
        self,
        name: str,
        *,
        sleep_s: float = 0.0,
        block_s: float = 0.0,
        hang: bool = False,
        raises: Exception | None = None,
        timeout_s: float | None = None,
    ) -> None:
        self.name = name
        self.sleep_s = sleep_s
        self.block_s = block_s
        self.hang = hang
        self.raises = raises
        self._timeout_s = timeout_s
        self.calls = 0
        self.interval: tuple[float, float] | None = None
        self.started = asyncio.Event()
        self.cancelled = False
        self.closed = 0

    @property
    def platform_name(self) -> str:
        return self.name

    @property
    def timeout_s(self) -> float | None:
        return self._timeout_s

    async def publish(
        self, image_path: str, caption: str, context: dict[str, Any] | None = None
    ) -> PublishResult:
        self.calls += 1
        start = now_monotonic()
        self.started.set()
        try:
            if self.block_s:
                time.sleep(self.block_s)  # deliberately blocks the loop: what the monitor must see
            if self.sleep_s:
                await asyncio.sleep(self.sleep_s)
            if self.hang:
                await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        finally:
            self.interval = (start, now_monotonic())
        if self.raises is not None:
            raise self.raises
        duration = log_publisher_publish(logger, self.name, start, True, post_id=f"{self.name}-1")
        return PublishResult(
            success=True, platform=self.name, post_id=f"{self.name}-1", duration_ms=duration
        )

    async def aclose(self) -> None:
        self.closed += 1


class RecordingSource(SingleImageSource):
    """The single-image source, remembering what it archived."""

    def __init__(self) -> None:
        self.archived: list[SelectedImage] = []

    async def archive(self, image: SelectedImage) -> str | None:
        self.archived.append(image)
        return None


@pytest.fixture
def fake_publisher() -> type[FakePublisher]:
    """The FakePublisher class (test modules cannot import conftest in importlib mode)."""
    return FakePublisher


@pytest.fixture
def recording_source() -> RecordingSource:
    return RecordingSource()


@pytest.fixture
def photo(tmp_path: Path) -> str:
    """A small real JPEG with some structure (gradient), and its caption sidecar."""
    path = tmp_path / "photo.jpg"
    image = Image.linear_gradient("L").resize((320, 240)).convert("RGB")
    image.save(path, "JPEG", quality=85)
    (tmp_path / "photo.txt").write_text("A caption from the sidecar\n", encoding="utf-8")
    return str(path)


def events(caplog: pytest.LogCaptureFixture, message: str) -> list[dict[str, Any]]:
    """The structured events named `message` that caplog captured."""
    return [
        dict(record.crosspost_fields)
        for record in caplog.records
        if getattr(record, "crosspost_fields", {}).get("message") == message
    ]


@pytest.fixture
def structured_events() -> Any:
    """`structured_events(caplog, "publisher_publish")` -> list of event dicts."""
    return events
