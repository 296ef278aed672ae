"""`crosspost stats`: what the JSON-lines telemetry says about past runs.

Per platform, from `publisher_publish` events: publishes, success rate, and the p50 / p95 /
max of `duration_ms` (failed publishes included: a timeout is time the run spent). Per run,
from `workflow_timing` events of real runs (dry runs and previews left out): p50 / p95 of
`publish_parallel_ms` and of `loop_lag_max_ms`.

Percentiles use the nearest-rank method: the p-th percentile of n sorted values is the value
at rank ceil(p / 100 x n) (1-based). It is always one of the measured values; p50 of
[10, 20, 30, 40] is 20, p95 of it is 40.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["LogStats", "PlatformStats", "RunStats", "collect_stats", "nearest_rank", "render_stats"]


def nearest_rank(values: Sequence[int], percent: float) -> int | None:
    """The `percent`-th percentile of `values` by nearest rank; None when there are none."""
    if not values:
        return None
    if not 0 < percent <= 100:
        raise ValueError(f"percent must be in (0, 100], got {percent}")
    ordered = sorted(values)
    rank = math.ceil(percent / 100 * len(ordered))
    return ordered[max(rank, 1) - 1]


@dataclass(slots=True)
class PlatformStats:
    """Publishes of one platform."""

    publishes: int = 0
    successes: int = 0
    durations_ms: list[int] = field(default_factory=list)

    @property
    def success_rate(self) -> float:
        return self.successes / self.publishes if self.publishes else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "publishes": self.publishes,
            "successes": self.successes,
            "success_rate": round(self.success_rate, 4),
            "duration_ms_p50": nearest_rank(self.durations_ms, 50),
            "duration_ms_p95": nearest_rank(self.durations_ms, 95),
            "duration_ms_max": max(self.durations_ms) if self.durations_ms else None,
        }


@dataclass(slots=True)
class RunStats:
    """Timings of real runs."""

    publish_parallel_ms: list[int] = field(default_factory=list)
    loop_lag_max_ms: list[int] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "runs": len(self.publish_parallel_ms),
            "publish_parallel_ms_p50": nearest_rank(self.publish_parallel_ms, 50),
            "publish_parallel_ms_p95": nearest_rank(self.publish_parallel_ms, 95),
            "loop_lag_max_ms_p50": nearest_rank(self.loop_lag_max_ms, 50),
            "loop_lag_max_ms_p95": nearest_rank(self.loop_lag_max_ms, 95),
        }


@dataclass(slots=True)
class LogStats:
    """Everything `crosspost stats` reports."""

    platforms: dict[str, PlatformStats] = field(default_factory=dict)
    runs: RunStats = field(default_factory=RunStats)
    lines: int = 0
    #: Lines that are not a JSON object, or a crosspost event missing its fields.
    skipped: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "platforms": {name: s.summary() for name, s in sorted(self.platforms.items())},
            "runs": self.runs.summary(),
            "lines": self.lines,
            "skipped": self.skipped,
        }


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return round(value)


def collect_stats(lines: Iterable[str], into: LogStats | None = None) -> LogStats:
    """Add the events found in `lines` to `into` (or a new `LogStats`)."""
    stats = into if into is not None else LogStats()
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        stats.lines += 1
        try:
            event = json.loads(line)
        except ValueError:
            stats.skipped += 1
            continue
        if not isinstance(event, dict):
            stats.skipped += 1
            continue
        message = event.get("message")
        if message == "publisher_publish":
            platform = event.get("platform")
            duration = _count(event.get("duration_ms"))
            success = event.get("success")
            if not isinstance(platform, str) or duration is None or not isinstance(success, bool):
                stats.skipped += 1
                continue
            entry = stats.platforms.setdefault(platform, PlatformStats())
            entry.publishes += 1
            entry.successes += success
            entry.durations_ms.append(duration)
        elif message == "workflow_timing":
            if event.get("dry_publish") or event.get("preview_mode"):
                continue
            parallel = _count(event.get("publish_parallel_ms"))
            lag = _count(event.get("loop_lag_max_ms"))
            if parallel is None or lag is None:
                stats.skipped += 1
                continue
            stats.runs.publish_parallel_ms.append(parallel)
            stats.runs.loop_lag_max_ms.append(lag)
    return stats


def _cell(value: int | None) -> str:
    return "-" if value is None else str(value)


def render_stats(stats: LogStats) -> str:
    """The report as aligned text."""
    out: list[str] = []
    if stats.platforms:
        header = ("platform", "publishes", "success", "p50 ms", "p95 ms", "max ms")
        rows = [header]
        for name, entry in sorted(stats.platforms.items()):
            s = entry.summary()
            rows.append(
                (
                    name,
                    str(entry.publishes),
                    f"{entry.success_rate * 100:.1f}%",
                    _cell(s["duration_ms_p50"]),
                    _cell(s["duration_ms_p95"]),
                    _cell(s["duration_ms_max"]),
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        for row in rows:
            cells = [row[0].ljust(widths[0])] + [
                c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
            ]
            out.append("  ".join(cells))
    else:
        out.append("no publisher_publish events found")
    runs = stats.runs.summary()
    if runs["runs"]:
        out.append("")
        out.append(
            f"runs: {runs['runs']}   publish_parallel_ms p50 {runs['publish_parallel_ms_p50']} "
            f"p95 {runs['publish_parallel_ms_p95']}   loop_lag_max_ms p50 "
            f"{runs['loop_lag_max_ms_p50']} p95 {runs['loop_lag_max_ms_p95']}"
        )
    else:
        out.append("runs: 0 (no workflow_timing events of real runs found)")
    out.append("(percentiles by nearest rank)")
    if stats.skipped:
        out.append(
            f"skipped {stats.skipped} of {stats.lines} lines (not JSON or not a complete event)"
        )
    return "\n".join(out)
