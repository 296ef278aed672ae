"""Where derived files live, and the single flight that computes each rendition once.

A flight is a `concurrent.futures.Future`: threads wait on it with `.result()`, coroutines of
any event loop with `asyncio.wrap_future`, so the sync and async paths share one computation.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Generic, TypeVar

__all__ = ["SingleFlight", "cache_dir", "on_forget", "set_cache_dir", "write_atomically"]

T = TypeVar("T")

_dir_lock = threading.Lock()
_configured_dir: str | None = None
_process_dir: str | None = None
_process_dir_owner: int | None = None
_on_change: list[Callable[[], None]] = []


def set_cache_dir(path: str | None) -> None:
    """Write derived files into `path` from now on (created if missing).

    `None` goes back to the default: a private temporary directory made for this process
    and removed when it exits. Renditions remembered from the previous directory are
    forgotten. Several processes may share one directory: file names come from a hash of
    the input's identity and the spec, and every file appears there atomically.
    Decoded images kept in memory are dropped too.
    """
    global _configured_dir
    with _dir_lock:
        _configured_dir = None if path is None else os.path.abspath(path)
    for forget in _on_change:
        forget()


def on_forget(forget: Callable[[], None]) -> None:
    """Call `forget` whenever `set_cache_dir` is called: what is kept in memory goes."""
    _on_change.append(forget)


def cache_dir() -> str:
    """The directory derived files are written to, created on first use."""
    global _process_dir, _process_dir_owner
    with _dir_lock:
        if _configured_dir is not None:
            os.makedirs(_configured_dir, exist_ok=True)
            return _configured_dir
        if (
            _process_dir is None
            or _process_dir_owner != os.getpid()
            or not os.path.isdir(_process_dir)
        ):
            _process_dir = tempfile.mkdtemp(prefix="crosspost-images-")
            _process_dir_owner = os.getpid()
        return _process_dir


def _remove_process_dir() -> None:
    # A forked child inherits this hook; only the process that made the directory removes it.
    if _process_dir is not None and _process_dir_owner == os.getpid():
        shutil.rmtree(_process_dir, ignore_errors=True)


atexit.register(_remove_process_dir)


def write_atomically(directory: str, name: str, data: bytes) -> str:
    """Write `data` to `directory/name` so that no reader ever sees a partial file."""
    final = os.path.join(directory, name)
    fd, temp = tempfile.mkstemp(dir=directory, prefix=".partial-", suffix=os.path.splitext(name)[1])
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(temp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    return final


class SingleFlight(Generic[T]):
    """A bounded result cache in which each key is computed by one caller at a time.

    `begin(key)` returns the cached value, or the Future of a computation already running
    (join it), or None: then the caller owns the computation and must `finish` or `fail`.
    """

    def __init__(self, valid: Callable[[T], bool], capacity: int = 1024) -> None:
        self._lock = threading.Lock()
        self._results: OrderedDict[Hashable, T] = OrderedDict()
        self._flights: dict[Hashable, Future[T]] = {}
        self._valid = valid
        self._capacity = capacity
        self.stats = {"computed": 0, "cache_hits": 0, "joined": 0}
        on_forget(self.forget_results)

    def begin(self, key: Hashable) -> T | Future[T] | None:
        with self._lock:
            cached = self._results.get(key)
            flight = self._flights.get(key)
        if cached is not None:
            # Checked outside the lock: it may touch the disk.
            if self._valid(cached):
                with self._lock:
                    self.stats["cache_hits"] += 1
                    if key in self._results:
                        self._results.move_to_end(key)
                return cached
            with self._lock:
                if self._results.get(key) is cached:
                    del self._results[key]
        with self._lock:
            flight = self._flights.get(key)
            if flight is not None:
                self.stats["joined"] += 1
                return flight
            cached = self._results.get(key)
            if cached is not None:
                self.stats["cache_hits"] += 1
                return cached
            flight = Future()
            # Running futures cannot be cancelled, so one impatient waiter (a cancelled
            # task) cannot take the result away from the others.
            flight.set_running_or_notify_cancel()
            self._flights[key] = flight
            return None

    def finish(self, key: Hashable, value: T, computed: bool = True) -> None:
        with self._lock:
            self.stats["computed" if computed else "cache_hits"] += 1
            self._results[key] = value
            self._results.move_to_end(key)
            while len(self._results) > self._capacity:
                self._results.popitem(last=False)
            flight = self._flights.pop(key)
        flight.set_result(value)

    def fail(self, key: Hashable, exc: BaseException) -> None:
        with self._lock:
            flight = self._flights.pop(key)
        flight.set_exception(exc)

    def forget_results(self) -> None:
        with self._lock:
            self._results.clear()

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.stats)
