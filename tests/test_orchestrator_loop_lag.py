"""loop_lag_max_ms catches a publisher that blocks the event loop."""

from __future__ import annotations

from typing import Any

from crosspost_orchestrator import WorkflowOrchestrator


async def test_publisher_blocking_the_loop_shows_in_loop_lag(
    fake_publisher: Any, photo: str
) -> None:
    blocking = fake_publisher("blocking", block_s=0.3)
    result = await WorkflowOrchestrator([blocking, fake_publisher("polite")]).execute(photo)
    assert result.loop_lag_max_ms >= 250, result.loop_lag_max_ms


async def test_blocking_at_the_very_end_of_the_phase_is_still_seen(
    fake_publisher: Any, photo: str
) -> None:
    result = await WorkflowOrchestrator([fake_publisher("only", block_s=0.3)]).execute(photo)
    assert result.loop_lag_max_ms >= 250, result.loop_lag_max_ms


async def test_asynchronous_publishers_leave_loop_lag_small(
    fake_publisher: Any, photo: str
) -> None:
    publishers = [fake_publisher(f"p{i}", sleep_s=0.3) for i in range(4)]
    result = await WorkflowOrchestrator(publishers).execute(photo)
    assert result.loop_lag_max_ms < 50, result.loop_lag_max_ms
