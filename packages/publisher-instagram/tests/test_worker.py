"""The daemon worker thread and the request budget."""

from __future__ import annotations

import asyncio
import contextvars
import socket
import threading
import time

import pytest

from crosspost_instagram.worker import DeadlineExceeded, RequestBudget, run_in_daemon_thread

_marker: contextvars.ContextVar[str] = contextvars.ContextVar("marker", default="unset")


async def test_the_result_and_the_context_reach_across_the_thread() -> None:
    _marker.set("bound")

    def work() -> tuple[str, bool, str]:
        current = threading.current_thread()
        return current.name, current.daemon, _marker.get()

    name, daemon, marker = await run_in_daemon_thread(work, name="ig-test")

    assert (name, daemon, marker) == ("ig-test", True, "bound")


async def test_an_exception_in_the_thread_is_raised_to_the_caller() -> None:
    def fail() -> None:
        raise KeyError("inside")

    with pytest.raises(KeyError, match="inside"):
        await run_in_daemon_thread(fail)


async def test_abandoning_the_wait_calls_back_and_returns_at_once() -> None:
    release = threading.Event()
    abandoned = threading.Event()

    started = time.perf_counter()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.1):
            await run_in_daemon_thread(release.wait, on_abandon=abandoned.set)

    assert time.perf_counter() - started < 0.5
    assert abandoned.is_set()
    release.set()


def test_the_budget_hands_out_the_time_left_then_refuses() -> None:
    budget = RequestBudget.for_seconds(0.2)

    first = budget.request_timeout()
    assert 0 < first <= 0.2
    capped = RequestBudget(deadline=time.monotonic() + 100, per_request_s=5)
    assert capped.request_timeout() == 5
    spent = RequestBudget(deadline=time.monotonic() - 0.001)
    with pytest.raises(DeadlineExceeded, match="time limit"):
        spent.request_timeout()


def test_cancel_refuses_new_requests_and_unblocks_a_read_in_progress() -> None:
    budget = RequestBudget(per_request_s=30)
    server, client = socket.socketpair()
    budget.track(client)
    outcome: list[bytes] = []
    reader = threading.Thread(target=lambda: outcome.append(client.recv(10)), daemon=True)
    reader.start()

    budget.cancel()
    reader.join(timeout=2)

    assert not reader.is_alive()
    assert outcome == [b""]
    with pytest.raises(DeadlineExceeded, match="cancelled"):
        budget.request_timeout()
    server.close()
    client.close()


def test_a_budget_needs_a_limit() -> None:
    with pytest.raises(ValueError):
        RequestBudget()
