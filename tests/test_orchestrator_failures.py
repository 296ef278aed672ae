"""One platform's failure, hang or cancellation never takes the others down."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from crosspost_logs import now_monotonic
from crosspost_orchestrator import InMemoryLedger, PublishResult, WorkflowOrchestrator, sha256_file


async def test_hung_publisher_times_out_and_the_others_succeed(
    fake_publisher: Any, photo: str
) -> None:
    hung = fake_publisher("hung", hang=True, timeout_s=0.5)
    others = [fake_publisher("a", sleep_s=0.05), fake_publisher("b")]
    start = now_monotonic()
    result = await WorkflowOrchestrator([hung, *others], timeout_s=60).execute(photo)
    assert now_monotonic() - start < 2.0
    assert result.publish_results["hung"].error == "timed out after 0.5 s"
    assert hung.cancelled
    assert result.publish_results["a"].success
    assert result.publish_results["b"].success
    assert result.success
    assert not result.archived
    assert "hung: timed out after 0.5 s" in (result.error or "")


async def test_raising_publisher_fails_with_its_message_and_the_others_succeed(
    fake_publisher: Any, photo: str, caplog: pytest.LogCaptureFixture, structured_events: Any
) -> None:
    caplog.set_level(logging.INFO)
    boom = fake_publisher("boom", raises=ConnectionResetError("peer reset the connection"))
    fine = fake_publisher("fine", sleep_s=0.02)
    result = await WorkflowOrchestrator([boom, fine]).execute(photo)
    failed = result.publish_results["boom"]
    assert not failed.success
    assert failed.error == "ConnectionResetError: peer reset the connection"
    assert result.publish_results["fine"].success
    by_platform = {e["platform"]: e for e in structured_events(caplog, "publisher_publish")}
    assert set(by_platform) == {"boom", "fine"}  # exactly one event each, none doubled
    assert len(structured_events(caplog, "publisher_publish")) == 2
    assert by_platform["boom"]["success"] is False
    assert by_platform["boom"]["error"] == "ConnectionResetError: peer reset the connection"


async def test_cancelling_the_run_cancels_records_and_closes_every_publisher(
    fake_publisher: Any, photo: str, recording_source: Any
) -> None:
    ledger = InMemoryLedger()
    done = fake_publisher("done")
    hanging = [fake_publisher(name, hang=True) for name in ("telegram", "email", "instagram")]
    ended: dict[str, PublishResult] = {}

    class Observer:
        def on_publish_start(self, platform: str) -> None:
            pass

        def on_publish_end(self, platform: str, result: PublishResult) -> None:
            ended[platform] = result

    orchestrator = WorkflowOrchestrator(
        [done, *hanging], ledger=ledger, source=recording_source, observer=Observer()
    )
    run = asyncio.create_task(orchestrator.execute(photo))
    for publisher in hanging:
        await asyncio.wait_for(publisher.started.wait(), timeout=5)
    while "done" not in ended:  # the quick one has finished and been recorded
        await asyncio.sleep(0.01)
    start = now_monotonic()
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert now_monotonic() - start < 1.0
    assert all(p.cancelled for p in hanging)
    assert [p.closed for p in [done, *hanging]] == [1, 1, 1, 1]
    assert recording_source.archived == []
    digest = sha256_file(photo)
    for publisher in hanging:
        row = ledger.entry(digest, publisher.name)
        assert row is not None, publisher.name
        assert row.status == "cancelled", publisher.name
        assert ended[publisher.name].cancelled
    assert ledger.entry(digest, "done").status == "published"  # type: ignore[union-attr]


async def test_a_second_cancel_does_not_cut_the_cleanup_short(
    fake_publisher: Any, photo: str
) -> None:
    ledger = InMemoryLedger()

    class SlowToStop(fake_publisher):  # type: ignore[misc,valid-type]
        async def publish(self, image_path: str, caption: str, context: Any = None) -> Any:
            try:
                return await super().publish(image_path, caption, context)
            except asyncio.CancelledError:
                await asyncio.sleep(0.1)  # cleanup that takes a moment
                raise

    slow = SlowToStop("slow", hang=True)
    run = asyncio.create_task(WorkflowOrchestrator([slow], ledger=ledger).execute(photo))
    await asyncio.wait_for(slow.started.wait(), timeout=5)
    run.cancel()
    await asyncio.sleep(0.02)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert slow.closed == 1
    assert ledger.entry(sha256_file(photo), "slow").status == "cancelled"  # type: ignore[union-attr]


async def test_a_lost_cancellation_is_delivered_again(fake_publisher: Any, photo: str) -> None:
    """A library that swallows one cancellation (Python 3.11's `asyncio.wait_for` does when
    the awaited result arrives in the same loop turn) must not make the run wait for the
    publish's own time limit."""
    ledger = InMemoryLedger()

    class SwallowsOnce(fake_publisher):  # type: ignore[misc,valid-type]
        swallowed = 0

        async def publish(self, image_path: str, caption: str, context: Any = None) -> Any:
            self.started.set()
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                self.swallowed += 1
                asyncio.current_task().uncancel()  # type: ignore[union-attr]
            await asyncio.sleep(3600)  # carries on as if nothing happened
            raise AssertionError("not reached")

    stubborn = SwallowsOnce("stubborn", timeout_s=60)
    run = asyncio.create_task(WorkflowOrchestrator([stubborn], ledger=ledger).execute(photo))
    await asyncio.wait_for(stubborn.started.wait(), timeout=5)
    start = now_monotonic()
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert stubborn.swallowed == 1
    assert now_monotonic() - start < 5.0  # re-cancelled after half a second, not 60 s
    assert ledger.entry(sha256_file(photo), "stubborn").status == "cancelled"  # type: ignore[union-attr]
