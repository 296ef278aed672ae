"""Figures, the stdout table and the JSON file of one bench run."""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

Op = Literal["<=", ">=", "==", "info"]


@dataclass
class Figure:
    """One line of the table: a measured value, its target, and whether it was met.

    `op` "info" marks a figure printed for context (no target, never fails the run).
    """

    key: str
    label: str
    value: float | str | None
    unit: str = ""
    op: Op = "info"
    limit: float | str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def passed(self) -> bool | None:
        if self.error is not None:
            return False
        if self.op == "info":
            return None
        if self.value is None:
            return False
        if self.op == "==":
            return self.value == self.limit
        assert isinstance(self.value, int | float)
        assert isinstance(self.limit, int | float)
        return self.value <= self.limit if self.op == "<=" else self.value >= self.limit

    @property
    def target(self) -> str:
        if self.op == "info":
            return "(info)"
        return f"{self.op} {_fmt(self.limit)}{self.unit}"

    @property
    def shown_value(self) -> str:
        if self.value is None:
            return "error" if self.error is not None else "-"
        return f"{_fmt(self.value)}{self.unit if self.value is not None else ''}"

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(target=self.target, passed=self.passed)
        return data


def error_figure(key: str, label: str, exc: BaseException) -> Figure:
    """A failed figure for a bench that could not run at all."""
    return Figure(key, label, None, error=f"{type(exc).__name__}: {exc}")


def median(values: Iterable[float]) -> float:
    return float(statistics.median(list(values)))


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if abs(value) >= 100:
            return f"{value:.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    return str(value)


def _status(figure: Figure) -> str:
    return {True: "PASS", False: "FAIL", None: "info"}[figure.passed]


def render_table(figures: Sequence[Figure]) -> str:
    """The figures as an aligned text table (figure, value, target, PASS/FAIL)."""
    rows = [("figure", "value", "target", "result")]
    rows += [(f.label, f.shown_value, f.target, _status(f)) for f in figures]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = []
    for index, row in enumerate(rows):
        lines.append(
            "  ".join(
                cell.ljust(widths[i]) if i in (0, 2) else cell.rjust(widths[i])
                for i, cell in enumerate(row)
            ).rstrip()
        )
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def render_details(figures: Sequence[Figure]) -> str:
    """One indented block per figure that has details or an error."""
    lines = []
    for figure in figures:
        if not figure.details and figure.error is None:
            continue
        lines.append(f"{figure.label}:")
        if figure.error is not None:
            lines.append(f"    error: {figure.error}")
        lines.extend(f"    {name}: {_fmt(value)}" for name, value in figure.details.items())
    return "\n".join(lines)


def machine_info() -> dict[str, Any]:
    """What the reader needs to judge the noise: cores, load, interpreter."""
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


def write_json(
    path: Path, figures: Sequence[Figure], *, run: dict[str, Any], started: float
) -> None:
    """Write the run (machine, options, every figure with its details) as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "wall_s": round(time.time() - started, 1),
        "run": run,
        "machine_at_end": machine_info(),
        "passed": all(f.passed is not False for f in figures),
        "figures": [f.as_json() for f in figures],
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)
