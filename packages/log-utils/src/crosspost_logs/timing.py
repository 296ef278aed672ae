"""Monotonic timing helpers for measuring how long a piece of work took."""

from __future__ import annotations

import time

__all__ = ["elapsed_ms", "now_monotonic"]


def now_monotonic() -> float:
    """Return a monotonic clock reading in seconds, for use with :func:`elapsed_ms`."""
    return time.perf_counter()


def elapsed_ms(start: float) -> int:
    """Return the whole milliseconds elapsed since ``start`` (a :func:`now_monotonic` value).

    Never negative.
    """
    return max(0, round((time.perf_counter() - start) * 1000))
