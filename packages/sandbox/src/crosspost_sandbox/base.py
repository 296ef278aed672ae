"""What every sandbox server shares: lifecycle (async or in a background thread), latency,
faults, counters, and a stop event that releases hung requests on shutdown."""

from __future__ import annotations

import asyncio
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Self

from crosspost_sandbox.faults import FaultInjector, Latency, SafeCounter

__all__ = ["SandboxServer"]


class SandboxServer(ABC):
    """Base of the loopback servers.

    Use as `async with Server() as s:` on a running loop, or `with Server().run_in_thread() as s:`
    from synchronous code (the server then runs on its own loop in a daemon thread).
    """

    def __init__(self, *, latency_s: float = 0.0, jitter_s: float = 0.0) -> None:
        self.latency = Latency(latency_s, jitter_s)
        self.faults = FaultInjector()
        self.counters = SafeCounter()
        self._stopping: asyncio.Event | None = None

    # -- to implement --------------------------------------------------------------------
    @abstractmethod
    async def _start(self) -> None:
        """Bind sockets and start serving (ports chosen free, 127.0.0.1 only)."""

    @abstractmethod
    async def _stop(self) -> None:
        """Close every socket and wait for the handlers to finish."""

    # -- shared --------------------------------------------------------------------------
    def set_latency(self, fixed_s: float = 0.0, jitter_s: float = 0.0) -> None:
        """Add `fixed_s` (+ up to `jitter_s` random) seconds to every request."""
        self.latency = Latency(fixed_s, jitter_s)

    def inject(
        self, kind: str, *, operation: str | None = None, times: int | None = 1, **params: Any
    ) -> None:
        """Script a fault for the next `times` requests (None: until `clear_faults`)."""
        self.faults.inject(kind, operation=operation, times=times, **params)

    def clear_faults(self) -> None:
        self.faults.clear()

    async def hang(self) -> None:
        """Never answer: wait until the server stops (then the handler ends quietly)."""
        assert self._stopping is not None
        await self._stopping.wait()

    async def start(self) -> Self:
        self._stopping = asyncio.Event()
        await self._start()
        return self

    async def stop(self) -> None:
        if self._stopping is not None:
            self._stopping.set()
        await self._stop()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @contextmanager
    def run_in_thread(self) -> Iterator[Self]:
        """Run the server on its own event loop in a background thread, for sync callers."""
        loop = asyncio.new_event_loop()
        ready: Future[None] = Future()

        def serve() -> None:
            asyncio.set_event_loop(loop)

            async def boot() -> None:
                try:
                    await self.start()
                except BaseException as exc:
                    ready.set_exception(exc)
                    raise
                ready.set_result(None)

            try:
                loop.run_until_complete(boot())
            except BaseException:  # noqa: BLE001 - reported to the caller through `ready`
                loop.close()
                return
            loop.run_forever()
            loop.run_until_complete(self.stop())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

        thread = threading.Thread(target=serve, name=f"{type(self).__name__}-loop", daemon=True)
        thread.start()
        ready.result(timeout=30)
        try:
            yield self
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=30)
