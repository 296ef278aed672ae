"""Dry run, preview and bad input: nothing is contacted and nothing is written."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from crosspost_images import probe_image
from crosspost_orchestrator import InMemoryLedger, InputError, WorkflowOrchestrator, sha256_file


async def test_dry_run_never_publishes_nor_writes_state(
    fake_publisher: Any,
    photo: str,
    recording_source: Any,
    caplog: pytest.LogCaptureFixture,
    structured_events: Any,
) -> None:
    caplog.set_level(logging.INFO)
    ledger = InMemoryLedger()
    publishers = [fake_publisher("a"), fake_publisher("b")]
    result = await WorkflowOrchestrator(publishers, ledger=ledger, source=recording_source).execute(
        photo, dry_publish=True
    )
    assert [p.calls for p in publishers] == [0, 0]
    assert result.success
    assert result.publish_parallel_ms == 0
    assert set(result.publish_results) == {"a", "b"}
    assert ledger.entry(sha256_file(photo), "a") is None
    assert recording_source.archived == []
    assert not result.archived
    assert structured_events(caplog, "publisher_publish") == []
    (timing,) = structured_events(caplog, "workflow_timing")
    assert timing["dry_publish"] is True


async def test_preview_never_publishes_and_shows_each_platform_caption(
    fake_publisher: Any, photo: str, recording_source: Any
) -> None:
    class Shouting(fake_publisher):  # type: ignore[misc,valid-type]
        def format_caption(self, caption: str) -> str:
            return caption.upper()

    ledger = InMemoryLedger()
    publishers = [Shouting("loud"), fake_publisher("plain")]
    result = await WorkflowOrchestrator(publishers, ledger=ledger, source=recording_source).execute(
        photo, preview_mode=True
    )
    assert [p.calls for p in publishers] == [0, 0]
    assert result.caption == "A caption from the sidecar"
    assert result.platform_captions == {
        "loud": "A CAPTION FROM THE SIDECAR",
        "plain": "A caption from the sidecar",
    }
    assert result.previews["loud"] == {"caption": "A CAPTION FROM THE SIDECAR"}
    assert ledger.entry(sha256_file(photo), "loud") is None
    assert recording_source.archived == []


async def test_unreadable_image_is_an_input_error_before_any_publish(
    fake_publisher: Any, tmp_path: Path
) -> None:
    class Checking(fake_publisher):  # type: ignore[misc,valid-type]
        async def validate(self, image_path: str, caption: str) -> None:
            # ImageError (a ValueError) for a broken file; decoding stays off the loop.
            await asyncio.to_thread(probe_image, image_path)

    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    ledger = InMemoryLedger()
    publishers = [Checking("telegram"), fake_publisher("email")]
    with pytest.raises(InputError, match=r"^broken\.jpg: .*\(telegram\)$"):
        await WorkflowOrchestrator(publishers, ledger=ledger).execute(str(broken))
    assert [p.calls for p in publishers] == [0, 0]
    assert ledger.entry(sha256_file(str(broken)), "email") is None
