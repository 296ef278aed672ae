"""Figures 1 and 2: parallel efficiency of the three real publishers, and loop lag.

Every repetition publishes the 24 MP photo four times through `WorkflowOrchestrator`: each
platform alone (e-mail, Telegram, Instagram) and all three together, each from an empty
rendition cache and with fresh publisher instances, against the same sandbox servers
(250 ms per request/reply). The order rotates between repetitions.

    parallel efficiency = publish_parallel_ms(together) / max(publish_parallel_ms(alone))

computed per repetition, median reported. 1.00 means the three cost exactly the slowest one;
the sum of the three alone (what a sequential tool would take) is printed for contrast.
Loop lag is the orchestrator's own monitor (`loop_lag_max_ms`) during the together run.
"""

from __future__ import annotations

import bench_publishers as bp
from context import BenchContext, fresh_image_cache
from crosspost_sandbox.instagrapi_pauses import install_import_hook as neutralise
from report import Figure, median
from sandboxes import SandboxHost

LATENCY_S = 0.25
EFFICIENCY_TARGET = 1.10
LOOP_LAG_TARGET_MS = 10


def run(ctx: BenchContext) -> list[Figure]:
    together, together_exec, ratios, exec_ratios, sums, lags = [], [], [], [], [], []
    alone_lag: dict[str, list[int]] = {}
    idle_lag: list[int] = []
    with SandboxHost(chats=1) as host, ctx.scratch("parallel-") as tmp:
        details = host.details
        platforms = bp.available(details)
        if "instagram" in platforms:
            neutralise()
        alone: dict[str, list[float]] = {p: [] for p in platforms}
        alone_exec: dict[str, list[float]] = {p: [] for p in platforms}
        tables = {p: bp.settings(p, details, tmp) for p in platforms}

        def once(group: tuple[str, ...], tag: str) -> bp.Run:
            fresh_image_cache(tmp / f"cache-{tag}")
            return bp.run_once([bp.build(p, tables[p]) for p in group], ctx.photo)

        # Warm-up, not measured: imports, the Instagram login that saves the session file
        # (every measured run then restores it, as a daily cron run would), the page cache.
        host.set_latency(0.0)
        once(platforms, "warm")
        host.set_latency(LATENCY_S)
        for rep in range(ctx.repetitions):
            shift = rep % (len(platforms) + 1)
            runs: list[tuple[str, ...]] = [(p,) for p in platforms] + [platforms]
            runs = runs[shift:] + runs[:shift]
            this_alone: dict[str, float] = {}
            all_run = None
            idle_lag.append(bp.idle_loop_lag_ms())
            for index, group in enumerate(runs):
                run_ = once(group, f"{rep}-{index}")
                if len(group) == 1:
                    this_alone[group[0]] = run_.parallel_ms
                    alone[group[0]].append(run_.parallel_ms)
                    alone_exec[group[0]].append(run_.execute_ms)
                    alone_lag.setdefault(group[0], []).append(run_.loop_lag_ms)
                else:
                    all_run = run_
            assert all_run is not None
            slowest = max(this_alone.values())
            slowest_exec = max(alone_exec[p][-1] for p in platforms)
            ratios.append(all_run.parallel_ms / slowest)
            exec_ratios.append(all_run.execute_ms / slowest_exec)
            sums.append(sum(this_alone.values()))
            together.append(all_run.parallel_ms)
            together_exec.append(all_run.execute_ms)
            lags.append(all_run.loop_lag_ms)
            ctx.log(
                "parallel rep {}: alone {}, together {} ms, x{:.3f}, loop lag {} ms".format(
                    rep + 1,
                    ", ".join(f"{p} {this_alone[p]:.0f}" for p in platforms),
                    all_run.parallel_ms,
                    ratios[-1],
                    all_run.loop_lag_ms,
                )
            )
        counters = host.counters()
    slowest_platform = max(platforms, key=lambda p: median(alone[p]))
    missing = [p for p in bp.PLATFORMS if p not in platforms]
    figures = [
        Figure(
            "parallel_efficiency",
            "1. Parallel efficiency (together / slowest alone)",
            median(ratios),
            "x",
            "<=",
            EFFICIENCY_TARGET,
            details={
                **{f"alone_{p}_ms": median(alone[p]) for p in platforms},
                "slowest_alone": slowest_platform,
                "together_ms": median(together),
                "per_rep_ratio": [round(r, 3) for r in ratios],
                "sandbox_requests": {
                    "smtp_connections": counters["smtp"].get("connections"),
                    "telegram_requests": counters["telegram"].get("requests"),
                    "instagram_requests": counters["instagram"].get("requests"),
                },
            },
        ),
        Figure(
            "parallel_execute_ratio",
            "1. For context: whole execute() incl. validation, together / slowest",
            median(exec_ratios),
            "x",
            details={
                "together_execute_ms": median(together_exec),
                **{f"alone_{p}_execute_ms": median(alone_exec[p]) for p in platforms},
            },
        ),
        Figure(
            "parallel_sum_alone",
            "1. For contrast: sum of the three alone (one after another)",
            median(sums),
            " ms",
            details={
                "together_ms": median(together),
                "sum_over_together": median(s / t for s, t in zip(sums, together, strict=True)),
            },
        ),
        Figure(
            "loop_lag_parallel",
            "2. Loop lag, three platforms together (max)",
            median(lags),
            " ms",
            "<=",
            LOOP_LAG_TARGET_MS,
            details={
                "per_rep_ms": lags,
                "idle_loop_per_rep_ms (machine noise floor)": idle_lag,
                **{f"{p}_alone_per_rep_ms": alone_lag[p] for p in platforms},
            },
        ),
    ]
    if missing:
        # Measured without a platform, a figure proves nothing: show it, but fail it.
        for figure in figures:
            figure.error = f"not installed or no sandbox: {', '.join(missing)}"
    return figures
