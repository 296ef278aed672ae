"""Figures 2 and 3: N = 1, 2, 4, 8, 16 Telegram publishers (one channel each) publishing
the same 24 MP photo through `WorkflowOrchestrator`, 250 ms per request.

- time(16) / time(1): `publish_parallel_ms`, per repetition, median reported;
- CPU seconds of image preparation (thread CPU time inside crosspost_images, see
  prepmeter.py) at N = 16 versus N = 1, and how many renditions were computed per run
  (the single flight should make it one, whatever N);
- every photo the sandbox received decodes completely and has the expected size;
- `loop_lag_max_ms` at N = 16.

Each run starts from an empty rendition cache with fresh publisher instances.
"""

from __future__ import annotations

from PIL import Image

import bench_publishers as bp
from context import BenchContext, fresh_image_cache
from prepmeter import PrepMeter
from report import Figure, median
from sandboxes import SandboxHost

LATENCY_S = 0.25
NS = (1, 2, 4, 8, 16)
TIME_RATIO_TARGET = 1.25
PREP_CPU_RATIO_TARGET = 1.5
LOOP_LAG_TARGET_MS = 10


def expected_size(photo: object) -> tuple[int, int]:
    """The size the Telegram rendition of the photo must have (max width 1280)."""
    with Image.open(photo) as image:  # type: ignore[call-overload]
        width, height = image.size
    spec = bp.telegram_spec()
    if width <= spec.max_width:
        return width, height
    return spec.max_width, round(height * spec.max_width / width)


def run(ctx: BenchContext) -> list[Figure]:
    from crosspost_images import prepare_stats

    size = expected_size(ctx.photo)
    times: dict[int, list[int]] = {n: [] for n in NS}
    executes: dict[int, list[float]] = {n: [] for n in NS}
    cpu: dict[int, list[float]] = {n: [] for n in NS}
    computed: dict[int, list[int]] = {n: [] for n in NS}
    lag16: list[int] = []
    idle_lag: list[int] = []
    received, bad = 0, []
    meter = PrepMeter()
    with (
        SandboxHost(chats=max(NS)) as host,
        ctx.scratch("scaling-") as tmp,
        meter.installed(),
    ):
        chats = host.details["telegram"]["chats"]

        def once(n: int, tag: str) -> tuple[bp.Run, float, int, list[dict[str, object]]]:
            fresh_image_cache(tmp / f"cache-{tag}")
            publishers = [
                bp.Named(
                    bp.build("telegram", bp.settings("telegram", host.details, tmp, chat)),
                    f"telegram-{i}",
                )
                for i, chat in enumerate(chats[:n], start=1)
            ]
            since = host.mark()["telegram_photos"]
            before = prepare_stats()["computed"]
            meter.reset()
            run_ = bp.run_once(publishers, ctx.photo)
            photos = host.telegram_photos(since)
            return run_, meter.cpu_s, prepare_stats()["computed"] - before, photos

        host.set_latency(0.0)
        once(max(NS), "warm")  # imports, connection set-up code paths, page cache
        host.set_latency(LATENCY_S)
        for rep in range(ctx.repetitions):
            order = NS if rep % 2 == 0 else tuple(reversed(NS))
            idle_lag.append(bp.idle_loop_lag_ms())
            for n in order:
                run_, cpu_s, made, photos = once(n, f"{rep}-{n}")
                times[n].append(run_.parallel_ms)
                executes[n].append(run_.execute_ms)
                cpu[n].append(cpu_s)
                computed[n].append(made)
                if n == max(NS):
                    lag16.append(run_.loop_lag_ms)
                received += len(photos)
                if len(photos) != n:
                    bad.append(f"N={n}: {len(photos)} photos received, expected {n}")
                bad.extend(
                    f"N={n} {photo['chat']}: {photo['decoded']} {photo['error']}"
                    for photo in photos
                    if photo["error"] or tuple(photo["decoded"] or ()) != size  # type: ignore[arg-type]
                )
            ctx.log(
                "scaling rep {}: {} ms (N={}), prep CPU {} ms".format(
                    rep + 1,
                    "/".join(str(times[n][-1]) for n in NS),
                    "/".join(map(str, NS)),
                    "/".join(f"{cpu[n][-1] * 1000:.0f}" for n in NS),
                )
            )
    ratios = [t16 / t1 for t1, t16 in zip(times[1], times[max(NS)], strict=True)]
    cpu_ratios = [c16 / max(c1, 1e-6) for c1, c16 in zip(cpu[1], cpu[max(NS)], strict=True)]
    return [
        Figure(
            "scaling_time_ratio",
            "3. Scaling: time(N=16) / time(N=1), Telegram",
            median(ratios),
            "x",
            "<=",
            TIME_RATIO_TARGET,
            details={
                **{f"N={n}_ms": median(times[n]) for n in NS},
                "per_rep_ratio": [round(r, 3) for r in ratios],
            },
        ),
        Figure(
            "scaling_execute_ratio",
            "3. For context: whole execute() incl. validation, N=16 / N=1",
            median(e16 / e1 for e1, e16 in zip(executes[1], executes[max(NS)], strict=True)),
            "x",
            details={f"N={n}_execute_ms": median(executes[n]) for n in NS},
        ),
        Figure(
            "scaling_prep_cpu_ratio",
            "3. Image prep CPU: N=16 / N=1",
            median(cpu_ratios),
            "x",
            "<=",
            PREP_CPU_RATIO_TARGET,
            details={
                **{f"N={n}_prep_cpu_ms": median(cpu[n]) * 1000 for n in NS},
                "renditions_computed_per_run": {n: sorted(set(computed[n])) for n in NS},
            },
        ),
        Figure(
            "scaling_renditions_computed",
            "3. Renditions computed per run (max over N)",
            max(max(v) for v in computed.values()),
            "",
            "<=",
            1,
        ),
        Figure(
            "scaling_photos_intact",
            "3. Received photos complete and of the expected size (bad)",
            len(bad),
            "",
            "==",
            0,
            details={
                "photos_checked": received,
                "expected_size": f"{size[0]}x{size[1]}",
                **({"problems": "; ".join(bad[:5])} if bad else {}),
            },
        ),
        Figure(
            "loop_lag_scaling_n16",
            "2. Loop lag at N=16 (max)",
            median(lag16),
            " ms",
            "<=",
            LOOP_LAG_TARGET_MS,
            details={
                "per_rep_ms": lag16,
                "idle_loop_per_rep_ms (machine noise floor)": idle_lag,
            },
        ),
    ]
