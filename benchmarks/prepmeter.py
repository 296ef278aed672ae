"""CPU seconds spent inside crosspost_images, whichever thread does the work.

The work of `prepare_image*` and `probe_image` happens in worker threads (asyncio.to_thread),
so process CPU time would mix it with the HTTP clients' work, which does grow with the number
of publishers. This meter wraps the module-level functions of `crosspost_images.prepare` that
run in the calling thread and sums `time.thread_time()` around them (outermost call only).
It observes; it changes no behaviour.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

#: Functions of crosspost_images.prepare that do the work in the caller's thread; every
#: public entry point (sync or async) reaches them through the module's globals.
WRAPPED = ("_prepare_or_join", "_probe")


class PrepMeter:
    """Accumulates the thread CPU time of image preparation while installed."""

    def __init__(self) -> None:
        self.cpu_s = 0.0
        self.calls = 0
        self._lock = threading.Lock()
        self._depth = threading.local()

    def reset(self) -> None:
        with self._lock:
            self.cpu_s = 0.0
            self.calls = 0

    def _wrap(self, func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def metered(*args: Any, **kwargs: Any) -> Any:
            depth = getattr(self._depth, "n", 0)
            self._depth.n = depth + 1
            start = time.thread_time()
            try:
                return func(*args, **kwargs)
            finally:
                self._depth.n = depth
                if depth == 0:  # nested calls are inside the outer one's time already
                    spent = time.thread_time() - start
                    with self._lock:
                        self.cpu_s += spent
                        self.calls += 1

        return metered

    @contextmanager
    def installed(self) -> Iterator[PrepMeter]:
        import crosspost_images.prepare as prepare

        originals = {name: getattr(prepare, name) for name in WRAPPED}
        for name, func in originals.items():
            setattr(prepare, name, self._wrap(func))
        try:
            yield self
        finally:
            for name, func in originals.items():
                setattr(prepare, name, func)
