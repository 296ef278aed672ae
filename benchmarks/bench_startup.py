"""Figure 6: start-up of `crosspost --help`.

Wall time of the console script (median of several runs), next to a bare interpreter start
(`python -c pass`) measured in the same loop, so the reader sees what crosspost adds. The
imported modules come from a run under `-X importtime`: none of the heavy client libraries
(python-telegram-bot, instagrapi, aiosmtplib, Pillow) may be among them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from context import BenchContext
from report import Figure, median

#: Top-level modules `--help` must not import (each costs 0.1-0.5 s and tens of MB).
FORBIDDEN = ("telegram", "instagrapi", "aiosmtplib", "PIL")
#: Other heavy modules worth naming if they show up (reported, not a failure).
ALSO_HEAVY = ("httpx", "httpcore", "aiosmtpd", "trustme", "cryptography", "requests", "pydantic")


def crosspost_command() -> list[str]:
    """The installed console script of this interpreter's environment."""
    beside = Path(sys.executable).parent / "crosspost"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("crosspost")
    if found:
        return [found]
    raise RuntimeError(
        "the crosspost console script is not installed: run `uv sync --all-packages`"
    )


def _wall(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return time.perf_counter() - start


def imported_modules(argv: list[str], env: dict[str, str]) -> dict[str, int]:
    """Module name -> cumulative import time in microseconds, from `-X importtime`."""
    env = {**env, "PYTHONPROFILEIMPORTTIME": "1"}
    done = subprocess.run(argv, check=True, capture_output=True, text=True, env=env)
    modules: dict[str, int] = {}
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _self, cumulative, name = (part.strip() for part in line[len("import time:") :].split("|"))
        if cumulative.isdigit():
            modules[name.strip()] = int(cumulative)
    return modules


def run(ctx: BenchContext) -> list[Figure]:
    command = crosspost_command()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHONPROFILEIMPORTTIME")}
    runs = max(6, ctx.repetitions * 2)
    # Warm the file cache first: the first start after an install reads every .pyc from disk.
    _wall([*command, "--help"], env)
    _wall([sys.executable, "-c", "pass"], env)
    help_s, bare_s = [], []
    for _ in range(runs):
        help_s.append(_wall([*command, "--help"], env))
        bare_s.append(_wall([sys.executable, "-c", "pass"], env))
    modules = imported_modules([*command, "--help"], env)
    tops = {name.split(".")[0] for name in modules}
    forbidden = sorted(m for m in FORBIDDEN if m in tops)
    heavy = sorted(m for m in ALSO_HEAVY if m in tops)
    slowest = sorted(modules.items(), key=lambda kv: kv[1], reverse=True)
    top_level = [(n, us) for n, us in slowest if "." not in n][:6]
    ctx.log(
        f"startup: --help {median(help_s) * 1000:.0f} ms, bare python {median(bare_s) * 1000:.0f} ms"
    )
    return [
        Figure(
            "startup_help_ms",
            "6. Start-up: `crosspost --help` wall time",
            median(help_s) * 1000,
            " ms",
            details={
                "bare_python_ms": median(bare_s) * 1000,
                "added_by_crosspost_ms": (median(help_s) - median(bare_s)) * 1000,
                "runs": runs,
                "modules_imported": len(modules),
                "slowest_top_level_imports_ms": ", ".join(
                    f"{n} {us / 1000:.0f}" for n, us in top_level
                ),
            },
        ),
        Figure(
            "startup_heavy_modules",
            "6. Start-up: heavy client libraries imported by --help",
            ", ".join(forbidden) or "none",
            op="==",
            limit="none",
            details={
                "checked": ", ".join(FORBIDDEN),
                "other_heavy_imported": ", ".join(heavy) or "none",
            },
        ),
    ]
