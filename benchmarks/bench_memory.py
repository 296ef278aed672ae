"""Figure 5: peak RSS of one `crosspost publish` of the 24 MP photo to all three platforms.

A separate process (the real CLI entry point, through `cli_wrapper.py` which only
neutralises instagrapi's sleeps), configured by a TOML file pointing at the sandbox servers,
secrets in its environment. Its peak resident set size is what the kernel reports for that
child alone (`os.wait4` -> `ru_maxrss`, read after it exits, by the small `rss_launcher.py`
so the bench's own memory is not inherited), cross-checked with the highest `VmHWM` polled
from /proc. The CLI's own `loop_lag_max_ms` (a cold process: imports happen during the run)
is printed alongside. For scale, the same is measured
for `crosspost --help` (interpreter + CLI, no publishing).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import bench_publishers as bp
from bench_startup import crosspost_command
from context import BenchContext
from report import Figure, median
from sandboxes import SandboxHost

LATENCY_S = 0.25
PEAK_RSS_TARGET_MB = 160.0
WRAPPER = Path(__file__).resolve().parent / "cli_wrapper.py"
LAUNCHER = Path(__file__).resolve().parent / "rss_launcher.py"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def write_config(
    path: Path, details: dict[str, Any], scratch: Path, ledger: Path
) -> dict[str, str]:
    """Write the config file; return the environment variables holding the secrets."""
    lines = ["[workflow]", f"ledger = {_toml_value(str(ledger))}", "timeout_s = 60", ""]
    env: dict[str, str] = {}
    for platform in bp.available(details):
        table = bp.settings(platform, details, scratch)
        lines.append(f"[publishers.{platform}]")
        for key, value in table.items():
            if key in bp.SECRET_KEYS[platform]:
                env[f"CROSSPOST_{platform.upper()}_{key.upper()}"] = str(value)
            else:
                lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return env


def peak_rss_mb(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, int, str]:
    """(peak RSS in MB by wait4, by polled VmHWM, exit status, output) of `argv` alone,
    started through `rss_launcher.py` (see there why)."""
    result = cwd / "rss.json"
    done = subprocess.run(
        [sys.executable, "-I", "-S", str(LAUNCHER), str(result), *argv],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        check=True,
    )
    data = json.loads(result.read_text(encoding="utf-8"))
    # The kernel counts in KiB; MB here are 10^6 bytes.
    return (
        data["ru_maxrss_kib"] * 1024 / 1e6,
        data["vm_hwm_kib"] * 1024 / 1e6,
        data["exit"],
        done.stdout.decode("utf-8", "replace"),
    )


def _loop_lag(output: str) -> int | None:
    """`loop_lag_max_ms` from the CLI's --json output, if it reports one."""
    start = output.find("{")
    try:
        data = json.loads(output[start:]) if start >= 0 else {}
    except ValueError:
        return None
    found = _find_key(data, "loop_lag_max_ms")
    return found if isinstance(found, int) else None


def _find_key(data: Any, key: str) -> Any:
    if isinstance(data, dict):
        if key in data:
            return data[key]
        for value in data.values():
            found = _find_key(value, key)
            if found is not None:
                return found
    return None


def run(ctx: BenchContext) -> list[Figure]:
    peaks: list[float] = []
    hwms: list[float] = []
    lags: list[int | None] = []
    runs = min(ctx.repetitions, 3)
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("CROSSPOST_")}
    with SandboxHost(chats=1) as host, ctx.scratch("memory-") as tmp:
        help_mb, _, _, _ = peak_rss_mb([*crosspost_command(), "--help"], base_env, tmp)
        host.set_latency(LATENCY_S)
        for index in range(runs):
            config = tmp / f"crosspost-{index}.toml"
            # A fresh ledger each time, or the second run would find the photo published.
            secrets = write_config(config, host.details, tmp, tmp / f"ledger-{index}.sqlite3")
            argv = [
                sys.executable, str(WRAPPER), "publish", str(ctx.photo),
                "--config", str(config), "--json",
            ]  # fmt: skip
            peak, hwm, code, output = peak_rss_mb(argv, {**base_env, **secrets}, tmp)
            if code != 0:
                raise RuntimeError(f"crosspost publish exited {code}: {output.strip()[-800:]}")
            peaks.append(peak)
            hwms.append(hwm)
            lags.append(_loop_lag(output))
            ctx.log(f"memory run {index + 1}: peak RSS {peak:.1f} MB")
        received = host.mark()
        missing = [p for p in bp.PLATFORMS if p not in bp.available(host.details)]
    figures = [
        Figure(
            "memory_peak_rss_mb",
            "5. Peak RSS of `crosspost publish` (24 MP, 3 platforms)",
            median(peaks),
            " MB",
            "<=",
            PEAK_RSS_TARGET_MB,
            details={
                "per_run_mb": [round(p, 1) for p in peaks],
                "polled_vm_hwm_mb": [round(p, 1) for p in hwms],
                "cli_loop_lag_max_ms (cold process)": lags,
                "crosspost_help_peak_mb": help_mb,
                "sandbox_received": received,
            },
        )
    ]
    if missing:
        figures[0].error = f"not installed or no sandbox: {', '.join(missing)}"
    return figures
