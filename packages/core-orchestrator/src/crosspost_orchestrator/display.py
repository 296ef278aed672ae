"""What `crosspost publish` shows: a live line per platform while the run goes on, then a
result table and a timeline of the publish phase (one bar per platform on a shared time
axis, so the overlap is visible).

On a terminal the live lines are redrawn in place; anywhere else (a pipe, a log file, cron)
each change is printed as one plain line. Nothing here blocks: the orchestrator calls the
observer methods on the event loop.
"""

from __future__ import annotations

import asyncio
import math
import os
import shutil
import time
from collections.abc import Collection, Mapping, Sequence
from typing import TextIO

from crosspost_orchestrator.results import PublishResult, WorkflowResult

__all__ = [
    "LiveDisplay",
    "render_result_table",
    "render_timeline",
    "shorten",
    "slowest_platform",
    "stream_supports_unicode",
]

WAITING = "waiting"
SENDING = "sending"
ALREADY = "already published"
_GREEN, _RED, _DIM, _RESET = "\x1b[32m", "\x1b[31m", "\x1b[2m", "\x1b[0m"


def stream_supports_unicode(stream: TextIO) -> bool:
    """Whether block characters can be written to `stream`."""
    encoding = (getattr(stream, "encoding", None) or "ascii").lower().replace("-", "")
    return encoding in ("utf8", "utf16", "utf32")


def _is_tty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:
        return False


def _ms(value: int | None) -> str:
    return "-" if value is None else f"{value} ms"


def shorten(text: str, limit: int) -> str:
    """`text` on one line, cut to `limit` characters with "..." if longer."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: max(0, limit - 3)] + "..."


class LiveDisplay:
    """A `WorkflowObserver` drawing one line per platform: waiting → sending → ok 231 ms /
    failed: reason. `tty=None` decides from the stream."""

    def __init__(
        self,
        platforms: Sequence[str],
        stream: TextIO,
        *,
        tty: bool | None = None,
        color: bool | None = None,
    ) -> None:
        self.platforms = list(platforms)
        self.stream = stream
        self.tty = _is_tty(stream) if tty is None else tty
        no_color = bool(os.environ.get("NO_COLOR"))
        self.color = (self.tty and not no_color) if color is None else color
        self.states: dict[str, str] = dict.fromkeys(self.platforms, WAITING)
        self.started: dict[str, float] = {}
        self.results: dict[str, PublishResult] = {}
        self._drawn = 0
        self._width = max((len(p) for p in self.platforms), default=8)
        self._closed = False
        self._heading: str | None = None
        self._shown = False

    # -- lines ---------------------------------------------------------------------------
    def _status(self, platform: str) -> tuple[str, str | None]:
        """The status text of `platform` and the colour it is drawn in (None: plain)."""
        result = self.results.get(platform)
        if result is not None:
            if result.success:
                return f"ok {_ms(result.duration_ms)}", _GREEN
            return f"failed: {result.error or result.status}", _RED
        state = self.states.get(platform, WAITING)
        if state == SENDING and self.tty and platform in self.started:
            seconds = time.monotonic() - self.started[platform]
            return f"sending... {seconds:.1f} s", None
        if state in (WAITING, ALREADY):
            return state, _DIM
        return state, None

    def _line(self, platform: str) -> str:
        status, code = self._status(platform)
        prefix = f"  {platform:<{self._width}}  "
        if self.tty:
            # A line wider than the terminal would wrap and break the redraw in place.
            limit = max(20, shutil.get_terminal_size((100, 24)).columns - 1) - len(prefix)
            if len(status) > limit:
                status = status[: max(0, limit - 3)] + "..."
        if self.color and code is not None:
            status = f"{code}{status}{_RESET}"
        return prefix + status

    # -- drawing -------------------------------------------------------------------------
    def begin(self, heading: str) -> None:
        """Set the heading; it and every platform's line are printed with the first
        publish (so a run stopped by bad input prints nothing but its error)."""
        self._heading = heading

    def _show(self) -> bool:
        """Print the heading and the lines once; False while there is no heading."""
        if self._heading is None:
            return False
        if not self._shown:
            self._shown = True
            self.stream.write(self._heading + "\n")
            if self.tty:
                self._redraw()
            else:
                for platform in self.platforms:
                    self.stream.write(self._line(platform) + "\n")
            self.stream.flush()
        return True

    def _redraw(self) -> None:
        if self._closed:
            return
        out = []
        if self._drawn:
            out.append(f"\x1b[{self._drawn}F")
        out.extend("\x1b[2K" + self._line(platform) + "\n" for platform in self.platforms)
        self._drawn = len(self.platforms)
        self.stream.write("".join(out))
        self.stream.flush()

    def _changed(self, platform: str) -> None:
        if not self._show():
            return
        if self.tty:
            self._redraw()
        else:
            self.stream.write(self._line(platform) + "\n")
            self.stream.flush()

    async def tick(self, interval_s: float = 0.1) -> None:
        """On a terminal, redraw every `interval_s` so the sending time counts up; returns
        at once elsewhere. Cancel it when the run ends."""
        if not self.tty:
            return
        while True:
            await asyncio.sleep(interval_s)
            if self._shown and any(state == SENDING for state in self.states.values()):
                self._redraw()

    def end(self) -> None:
        """Draw the final state of every line (printing them now if no publish ran) and
        stop redrawing."""
        self._show()
        self.close()

    def close(self) -> None:
        """Stop redrawing; lines already printed get their final state. Idempotent."""
        if self._shown and self.tty and not self._closed:
            self._redraw()
        self._closed = True

    # -- WorkflowObserver ----------------------------------------------------------------
    def on_publish_start(self, platform: str) -> None:
        self._show()
        self._ensure(platform)
        self.states[platform] = SENDING
        self.started[platform] = time.monotonic()
        self._changed(platform)

    def mark_failed(self, platform: str, reason: str) -> None:
        """Show `platform` as failed before the run (its plugin could not be built)."""
        self._ensure(platform)
        self.states[platform] = "done"
        self.results[platform] = PublishResult(False, platform, error=reason, attempts=0)

    def mark_already_published(self, platform: str) -> None:
        """Show `platform` as skipped: the ledger says it already has the image."""
        self._ensure(platform)
        self.states[platform] = ALREADY

    def _ensure(self, platform: str) -> None:
        if platform not in self.platforms:
            self.platforms.append(platform)
            self._width = max(self._width, len(platform))

    def on_publish_end(self, platform: str, result: PublishResult) -> None:
        self._show()
        self.states[platform] = "done"
        self.results[platform] = result
        self._changed(platform)


def slowest_platform(timeline: Mapping[str, tuple[int, int]]) -> tuple[str, int] | None:
    """The platform whose publish took longest in `timeline`, with its duration in ms."""
    if not timeline:
        return None
    name = max(timeline, key=lambda p: (timeline[p][1] - timeline[p][0], p))
    start, end = timeline[name]
    return name, end - start


def render_timeline(
    timeline: Mapping[str, tuple[int, int]],
    publish_parallel_ms: int,
    *,
    width: int = 50,
    unicode: bool = True,
) -> str:
    """The publish phase as text: one bar per platform from its start to its end, on a time
    axis from 0 to the end of the phase shared by all bars, then the phase's wall time
    (`publish_parallel_ms`) and the slowest platform."""
    if not timeline:
        return "timeline: no platform was published in this run"
    total = max(publish_parallel_ms, max(end for _start, end in timeline.values()), 1)
    width = max(10, width)
    full, empty, edge = ("█", " ", "│") if unicode else ("#", " ", "|")
    name_width = max(len(name) for name in timeline)
    lines = []
    for name, (start, end) in timeline.items():
        first = min(width - 1, math.floor(start / total * width))
        last = max(first + 1, min(width, math.ceil(end / total * width)))
        bar = empty * first + full * (last - first) + empty * (width - last)
        lines.append(f"  {name:<{name_width}}  {edge}{bar}{edge} {end - start:>6} ms")
    left, right = "0 ms", f"{total} ms"
    axis = left + " " * max(1, width + 2 - len(left) - len(right)) + right
    lines.append(f"  {'':<{name_width}}  {axis}")
    slowest = slowest_platform(timeline)
    assert slowest is not None
    heading = (
        f"timeline: publish_parallel_ms {publish_parallel_ms} ms, "
        f"slowest platform {slowest[0]} ({slowest[1]} ms)"
    )
    return "\n".join([heading, *lines])


def render_result_table(
    result: WorkflowResult,
    *,
    extra_failures: Mapping[str, str] | None = None,
    skipped: Collection[str] = (),
) -> str:
    """One row per platform: result, time, post id or reason. `extra_failures` adds
    platforms that could not even be built (broken plugins); `skipped` lists platforms left
    out of this run (`--only`)."""
    rows: list[tuple[str, str, str, str]] = [
        (name, "skipped", "-", "already published") for name in result.already_published
    ]
    for name, outcome in result.publish_results.items():
        if outcome.success:
            status = "ok"
            detail = outcome.post_id or ""
        else:
            status = outcome.status
            detail = outcome.error or ""
        if outcome.warnings:
            detail = (
                "; ".join([detail, *outcome.warnings]) if detail else "; ".join(outcome.warnings)
            )
        rows.append((name, status, _ms(outcome.duration_ms), detail))
    for name, reason in (extra_failures or {}).items():
        rows.append((name, "failed", "-", reason))
    rows.extend((name, "skipped", "-", "not in --only") for name in skipped)
    header = ("platform", "result", "time", "post id / reason")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(3)]
    lines = []
    for row in [header, *rows]:
        cells = [row[i].ljust(widths[i]) for i in range(3)]
        lines.append("  " + "  ".join([*cells, shorten(row[3], 200)]).rstrip())
    return "\n".join(lines)
