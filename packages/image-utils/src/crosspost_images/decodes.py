"""Reduced-scale JPEG decodes shared by the renditions of one source file.

Entropy-decoding a large JPEG costs about the same at every DCT scale (a 1/8-scale decode of
a 24 MP photo still reads every coefficient), so that is what two publishers asking for
different widths of one photo would each pay. Here a rendition joins a decode of the same
file already in flight, or reuses one kept in memory, when it is at least as large as the
rendition needs and at most twice that (a larger one would cost more to resample than a
fresh decode). Kept decodes are bounded by bytes (least recently used first out) and
dropped after a short idle time or when the cache is cleared (`set_cache_dir`).

A kept image is shared between threads: callers only read it (resize, transpose, paste
from it) and never save or modify it.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

from PIL import Image

from .cache import on_forget
from .formats import FileIdentity

__all__ = ["DecodeCache", "Decoded", "decodes"]

# A 24 MP photo decoded at 1/4 scale is 1500x1000, 6 MB (Pillow keeps RGB in 4 bytes).
_BUDGET_BYTES = 64 * 1024 * 1024
# Publishers of one post ask within moments of each other; nothing later is worth the memory.
_IDLE_S = 10.0


@dataclass(frozen=True)
class Decoded:
    """The pixels of a whole JPEG decoded at 1/`reduction` scale, in stored orientation."""

    pixels: Image.Image
    reduction: int

    @property
    def nbytes(self) -> int:
        mode = self.pixels.mode
        per_pixel = 1 if mode in ("1", "L", "P") else 2 if mode.startswith("I;16") else 4
        return self.pixels.width * self.pixels.height * per_pixel


@dataclass
class _Entry:
    decoded: Decoded
    last_used: float


_Key = tuple[FileIdentity, int]


class DecodeCache:
    """Single flight and a small byte-bounded LRU memory of reduced decodes, per file."""

    def __init__(self, budget_bytes: int = _BUDGET_BYTES, idle_s: float = _IDLE_S) -> None:
        self.budget_bytes = budget_bytes
        self.idle_s = idle_s
        self._lock = threading.Lock()
        self._entries: OrderedDict[_Key, _Entry] = OrderedDict()
        self._flights: dict[_Key, Future[Decoded]] = {}
        self._held = 0
        # Bumped by `clear`, so a decode that was in flight then is not kept afterwards.
        self._generation = 0
        self._timer: threading.Timer | None = None
        self.stats = {"decodes": 0, "decode_reuses": 0}

    def get(self, ident: FileIdentity, need: int, decode: Callable[[], Decoded]) -> Decoded:
        """A decode of `ident` reduced by `need` or by `need / 2`, from memory, from a
        decode in flight, or made now by calling `decode` (which must reduce by `need`)."""
        usable = (need, need // 2) if need >= 4 else (need,)
        key = (ident, need)
        flight: Future[Decoded] = Future()
        with self._lock:
            self._expire(time.monotonic())
            for reduction in usable:
                entry = self._entries.get((ident, reduction))
                if entry is not None:
                    entry.last_used = time.monotonic()
                    self._entries.move_to_end((ident, reduction))
                    self.stats["decode_reuses"] += 1
                    return entry.decoded
            running = next(
                (self._flights[(ident, r)] for r in usable if (ident, r) in self._flights), None
            )
            if running is None:
                # Running futures cannot be cancelled: no waiter can take the result away.
                flight.set_running_or_notify_cancel()
                self._flights[key] = flight
                generation = self._generation
            else:
                self.stats["decode_reuses"] += 1
        if running is not None:
            # A worker thread waits here, for at most the rest of one decode.
            return running.result()
        try:
            decoded = decode()
        except BaseException as exc:
            with self._lock:
                del self._flights[key]
            flight.set_exception(exc)
            raise
        with self._lock:
            del self._flights[key]
            self.stats["decodes"] += 1
            if generation == self._generation:
                self._keep((ident, decoded.reduction), decoded)
        flight.set_result(decoded)
        return decoded

    def count_unshared(self) -> None:
        """Count a decode made outside this cache (full size, or not a JPEG)."""
        with self._lock:
            self.stats["decodes"] += 1

    def held_bytes(self) -> int:
        """Bytes of decoded pixels kept in memory right now."""
        with self._lock:
            return self._held

    def clear(self) -> None:
        """Forget every kept decode (decodes in flight still reach their waiters)."""
        with self._lock:
            self._generation += 1
            self._entries.clear()
            self._held = 0
            self._disarm()

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.stats)

    def _keep(self, key: _Key, decoded: Decoded) -> None:
        size = decoded.nbytes
        if size > self.budget_bytes:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self._held -= old.decoded.nbytes
        self._entries[key] = _Entry(decoded, time.monotonic())
        self._held += size
        while self._held > self.budget_bytes:
            _, evicted = self._entries.popitem(last=False)
            self._held -= evicted.decoded.nbytes
        self._arm()

    def _expire(self, now: float) -> None:
        while self._entries:
            key, entry = next(iter(self._entries.items()))
            if now - entry.last_used < self.idle_s:
                break
            del self._entries[key]
            self._held -= entry.decoded.nbytes
        if not self._entries:
            self._disarm()

    def _arm(self) -> None:
        # One daemon timer while anything is kept, so memory is given back even if no
        # other image is ever prepared; a forked child sees the parent's timer as dead.
        if self._timer is not None and self._timer.is_alive():
            return
        oldest = next(iter(self._entries.values()))
        delay = max(0.0, oldest.last_used + self.idle_s - time.monotonic())
        self._timer = threading.Timer(delay, self._on_timer)
        self._timer.name = "crosspost-images-decode-expiry"
        self._timer.daemon = True
        self._timer.start()

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_timer(self) -> None:
        with self._lock:
            if self._timer is not threading.current_thread():
                return  # replaced or cancelled meanwhile
            self._timer = None
            self._expire(time.monotonic())
            if self._entries:
                self._arm()


decodes = DecodeCache()
on_forget(decodes.clear)
