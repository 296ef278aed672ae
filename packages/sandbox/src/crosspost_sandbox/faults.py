"""Scripted faults and added latency, shared by every sandbox server."""

from __future__ import annotations

import asyncio
import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Fault", "FaultInjector", "Latency", "SafeCounter"]


@dataclass(slots=True)
class Fault:
    """One scripted fault: `kind` (server-specific, e.g. "hang", "flood", "5xx"), the
    operation it applies to (None: any), how many more requests it hits (None: until cleared)
    and its parameters (e.g. `retry_after=1`)."""

    kind: str
    operation: str | None = None
    remaining: int | None = 1
    params: dict[str, Any] = field(default_factory=dict)


class FaultInjector:
    """A thread-safe queue of scripted faults; servers `take` one per request."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def inject(
        self, kind: str, *, operation: str | None = None, times: int | None = 1, **params: Any
    ) -> None:
        """Make the next `times` requests (of `operation`, or any) fail with `kind`."""
        with self._lock:
            self._faults.append(Fault(kind, operation, times, dict(params)))

    def take(self, operation: str) -> Fault | None:
        """The fault that applies to this request of `operation`, consuming one use of it."""
        with self._lock:
            for fault in self._faults:
                if fault.operation is not None and fault.operation != operation:
                    continue
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                return fault
        return None

    def clear(self) -> None:
        """Drop every scripted fault."""
        with self._lock:
            self._faults.clear()

    def pending(self) -> list[Fault]:
        """A copy of the faults still scripted."""
        with self._lock:
            return list(self._faults)


@dataclass(slots=True)
class Latency:
    """Added delay per request: `fixed_s` plus a uniform random part up to `jitter_s`."""

    fixed_s: float = 0.0
    jitter_s: float = 0.0

    def draw(self) -> float:
        return self.fixed_s + (random.uniform(0.0, self.jitter_s) if self.jitter_s else 0.0)

    async def sleep(self) -> None:
        delay = self.draw()
        if delay > 0:
            await asyncio.sleep(delay)


class SafeCounter:
    """A `Counter` safe to bump from the server thread and read from a test thread."""

    def __init__(self) -> None:
        self._counter: Counter[str] = Counter()
        self._lock = threading.Lock()

    def add(self, key: str, n: int = 1) -> None:
        with self._lock:
            self._counter[key] += n

    def __getitem__(self, key: str) -> int:
        with self._lock:
            return self._counter[key]

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counter)

    def clear(self) -> None:
        with self._lock:
            self._counter.clear()
