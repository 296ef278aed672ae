"""Blocking instagrapi work off the event loop: one daemon thread per call, and the time
budget every HTTP request of that call is held to.

Not `asyncio.to_thread`: the loop's default executor runs non-daemon threads, which the
interpreter joins at exit and `asyncio.run` waits for at shutdown, so one request stuck on a
hung server would keep the whole process alive. A daemon thread never delays exit, and the
budget makes its requests fail at the deadline (or at once after a cancel) anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import socket
import threading
import time
import weakref
from collections.abc import Callable
from typing import TypeVar

__all__ = ["DeadlineExceeded", "RequestBudget", "run_in_daemon_thread"]

T = TypeVar("T")


class DeadlineExceeded(Exception):
    """The publish's time is up (or it was cancelled): no further request may start."""


class RequestBudget:
    """The time left for the requests of one blocking call, and a way to cut them short.

    `request_timeout()` gives the socket timeout for the next request: the time left before
    `deadline` (a `time.monotonic()` reading), capped at `per_request_s`; it raises
    `DeadlineExceeded` once the time is up or `cancel()` was called. Sockets registered with
    `track()` are shut down by `cancel()`, which ends a request blocked on a hung server.
    """

    def __init__(self, deadline: float | None = None, per_request_s: float | None = None) -> None:
        if deadline is None and per_request_s is None:
            raise ValueError("a RequestBudget needs a deadline or a per-request limit")
        self.deadline = deadline
        self.per_request_s = per_request_s
        self._cancelled = threading.Event()
        self._lock = threading.Lock()
        self._sockets: weakref.WeakSet[socket.socket] = weakref.WeakSet()

    @classmethod
    def for_seconds(cls, seconds: float) -> RequestBudget:
        """A budget ending `seconds` from now."""
        return cls(deadline=time.monotonic() + seconds)

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def remaining(self) -> float:
        """Seconds left (may be negative); infinite without a deadline."""
        if self.deadline is None:
            return float("inf")
        return self.deadline - time.monotonic()

    def request_timeout(self) -> float:
        """The socket timeout for the next request; raises `DeadlineExceeded` if none is left."""
        if self._cancelled.is_set():
            raise DeadlineExceeded("the Instagram request was cancelled")
        left = self.remaining()
        if left <= 0:
            raise DeadlineExceeded("the publish's time limit was reached")
        return min(left, self.per_request_s) if self.per_request_s is not None else left

    def track(self, sock: socket.socket) -> None:
        """Remember a socket of this budget's requests, to shut it down on `cancel()`."""
        with self._lock:
            self._sockets.add(sock)
        if self._cancelled.is_set():
            _shut(sock)

    def cancel(self) -> None:
        """Refuse every later request and shut the sockets down (the server sees them close)."""
        self._cancelled.set()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    # The plain socket's shutdown: it leaves an SSL wrapper's state to the thread reading it,
    # which then sees end-of-file and fails its request at once.
    with contextlib.suppress(OSError):  # already closed, or never connected
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


async def run_in_daemon_thread(
    func: Callable[[], T],
    *,
    name: str = "crosspost-instagram",
    on_abandon: Callable[[], None] | None = None,
) -> T:
    """Run `func()` in a new daemon thread (with this context's variables) and await it.

    If the awaiting task is cancelled, `on_abandon` is called (to make the thread give up)
    and the cancellation propagates at once; the thread's eventual result is dropped.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()
    context = contextvars.copy_context()

    def deliver(outcome: Callable[[], None]) -> None:
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            loop.call_soon_threadsafe(outcome)

    def set_result(value: T) -> None:
        if not future.done():
            future.set_result(value)

    def set_exception(exc: BaseException) -> None:
        if not future.done():
            future.set_exception(exc)

    def work() -> None:
        try:
            value = context.run(func)
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task
            deliver(functools.partial(set_exception, exc))
        else:
            deliver(functools.partial(set_result, value))

    threading.Thread(target=work, name=name, daemon=True).start()
    try:
        return await future
    except asyncio.CancelledError:
        if on_abandon is not None:
            on_abandon()
        raise
