"""The orchestrator publishes to every platform at once, and the run is observable in logs."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from crosspost_orchestrator import WorkflowOrchestrator


async def test_two_slow_publishers_run_with_overlapping_intervals(
    fake_publisher: Any, photo: str
) -> None:
    first, second = fake_publisher("first", sleep_s=0.15), fake_publisher("second", sleep_s=0.15)
    result = await WorkflowOrchestrator([first, second]).execute(photo)
    assert result.success
    (a_start, a_end), (b_start, b_end) = first.interval, second.interval
    overlap = min(a_end, b_end) - max(a_start, b_start)
    assert overlap > 0.1, f"the two publishes overlapped only {overlap:.3f} s"
    assert result.publish_parallel_ms < 290  # sequential would take >= 300
    (ta_start, ta_end), (tb_start, tb_end) = (
        result.publish_timeline["first"],
        result.publish_timeline["second"],
    )
    assert ta_start < tb_end
    assert tb_start < ta_end


async def test_publisher_publish_event_is_captured_with_caplog(
    fake_publisher: Any, photo: str, caplog: pytest.LogCaptureFixture, structured_events: Any
) -> None:
    caplog.set_level(logging.INFO)
    result = await WorkflowOrchestrator([fake_publisher("telegram", sleep_s=0.01)]).execute(photo)
    (event,) = structured_events(caplog, "publisher_publish")
    assert event["platform"] == "telegram"
    assert event["success"] is True
    assert isinstance(event["duration_ms"], int)
    assert event["duration_ms"] >= 10
    assert event["correlation_id"] == result.correlation_id
    (timing,) = structured_events(caplog, "workflow_timing")
    assert timing["correlation_id"] == result.correlation_id


async def test_eight_publishers_sleeping_0_2_s_finish_in_well_under_0_4_s(
    fake_publisher: Any, photo: str
) -> None:
    publishers = [fake_publisher(f"p{i}", sleep_s=0.2) for i in range(8)]
    result = await WorkflowOrchestrator(publishers).execute(photo)
    assert all(r.success for r in result.publish_results.values())
    assert 200 <= result.publish_parallel_ms < 350, result.publish_parallel_ms


async def test_correlation_id_reaches_logs_written_from_a_worker_thread(
    fake_publisher: Any, photo: str, caplog: pytest.LogCaptureFixture, structured_events: Any
) -> None:
    from crosspost_logs import log_json

    caplog.set_level(logging.INFO)
    thread_logger = logging.getLogger("tests.blocking_sdk")

    class ThreadedPublisher(fake_publisher):  # type: ignore[misc,valid-type]
        async def publish(self, image_path: str, caption: str, context: Any = None) -> Any:
            # A blocking SDK runs in a thread; to_thread copies the context (correlation id).
            await asyncio.to_thread(log_json, thread_logger, logging.INFO, "sdk_call")
            return await super().publish(image_path, caption, context)

    result = await WorkflowOrchestrator([ThreadedPublisher("instagram")]).execute(photo)
    (event,) = structured_events(caplog, "sdk_call")
    assert event["correlation_id"] == result.correlation_id
