"""Figure 4: image preparation, crosspost's way versus the naive way, in the same run.

Both produce the two renditions the publishers need from the 24 MP JPEG: 1280 wide
(Telegram's spec) and 1080 wide (Instagram's spec), written as JPEG files.

- crosspost: `prepare_image` with each publisher's own `ImageSpec` (from
  `crosspost_telegram.telegram_image_spec()` and `crosspost_instagram.instagram_image_spec()`),
  from an empty cache directory;
- naive: each publisher on its own fully decodes the file, applies the EXIF orientation and
  resizes with LANCZOS, then saves at quality 90.

The figure is the sequential time (one rendition after the other, one thread): the work
each way costs, independent of how many idle cores the shared machine has at that moment.
The same pair is also timed concurrently (two worker threads, as two publishers would run)
and the CPU-time ratio is reported; both are printed as details.

Fidelity: PSNR of crosspost's file against the naive file of the same width (both decoded).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image, ImageChops, ImageOps, ImageStat

from context import BenchContext, fresh_image_cache, timed
from report import Figure, median

QUALITY = 90
SPEEDUP_TARGET = 5.0
PSNR_TARGET_DB = 35.0


def publisher_specs() -> dict[int, Any]:
    """Width -> the spec the Telegram (1280) and Instagram (1080) publishers ask for."""
    from bench_publishers import instagram_spec, telegram_spec

    specs = {}
    for spec in (telegram_spec(), instagram_spec()):
        assert spec.max_width is not None
        specs[spec.max_width] = spec
    return specs


def naive_rendition(source: Path, width: int, out: Path) -> Path:
    """What a publisher without crosspost_images does: full decode, LANCZOS, save."""
    with Image.open(source) as image:
        image.load()
        # In place: no copy of the 24 MP bitmap is charged to the naive side.
        ImageOps.exif_transpose(image, in_place=True)
        height = round(image.height * width / image.width)
        image.resize((width, height), Image.Resampling.LANCZOS).save(out, "JPEG", quality=QUALITY)
    return out


def crosspost_rendition(source: Path, spec: Any) -> Path:
    from crosspost_images import prepare_image

    return Path(prepare_image(str(source), spec).path)


def _sequential(jobs: dict[int, Callable[[], Path]]) -> dict[int, Path]:
    return {width: job() for width, job in jobs.items()}


def _concurrent(jobs: dict[int, Callable[[], Path]]) -> dict[int, Path]:
    async def both() -> list[Path]:
        return await asyncio.gather(*(asyncio.to_thread(job) for job in jobs.values()))

    return dict(zip(jobs, asyncio.run(both()), strict=True))


def psnr_db(a: Image.Image, b: Image.Image) -> float:
    """Peak signal-to-noise ratio of two RGB images of one size, in dB (inf if identical)."""
    diff = ImageChops.difference(a.convert("RGB"), b.convert("RGB"))
    mse = sum(rms * rms for rms in ImageStat.Stat(diff).rms) / 3
    return math.inf if mse == 0 else 10 * math.log10(255 * 255 / mse)


def _compare(ours: Path, naive: Path) -> tuple[float, str]:
    with Image.open(ours) as a, Image.open(naive) as b:
        note = f"{a.width}x{a.height} vs {b.width}x{b.height}"
        if a.size != b.size:
            # A rounding difference of a pixel: compare the common area.
            size = (min(a.width, b.width), min(a.height, b.height))
            return psnr_db(a.crop((0, 0, *size)), b.crop((0, 0, *size))), note
        return psnr_db(a, b), note


def run(ctx: BenchContext) -> list[Figure]:
    from crosspost_images import prepare_stats

    specs = publisher_specs()
    widths = sorted(specs, reverse=True)
    seq: dict[str, list[float]] = {"ours": [], "naive": [], "ratio": []}
    par: dict[str, list[float]] = {"ours": [], "naive": [], "ratio": []}
    cpu_ratios: list[float] = []
    computed: list[int] = []
    psnrs: dict[int, list[float]] = {w: [] for w in widths}
    notes: dict[int, str] = {}
    with ctx.scratch("images-warm-") as tmp:
        # Not measured: the first call of each way imports and initialises its code paths.
        fresh_image_cache(tmp)
        crosspost_rendition(ctx.photo, specs[widths[-1]])
        naive_rendition(ctx.photo, widths[-1], tmp / "naive.jpg")
    for rep in range(ctx.repetitions):
        with ctx.scratch("images-") as tmp:

            def ours(tag: str) -> dict[int, Callable[[], Path]]:
                fresh_image_cache(tmp / f"cache-{tag}")
                return {w: (lambda s=specs[w]: crosspost_rendition(ctx.photo, s)) for w in widths}

            def naive(tag: str) -> dict[int, Callable[[], Path]]:
                return {
                    w: (lambda w=w: naive_rendition(ctx.photo, w, tmp / f"naive-{tag}-{w}.jpg"))
                    for w in widths
                }

            before = prepare_stats()["computed"]
            # Alternate the order so neither side always runs on a warmer machine.
            sides = ["ours", "naive"] if rep % 2 == 0 else ["naive", "ours"]
            files: dict[str, dict[int, Path]] = {}
            cpu: dict[str, float] = {}
            for side in sides:
                jobs = ours("seq") if side == "ours" else naive("seq")
                files[side], wall, cpu[side] = timed(lambda jobs=jobs: _sequential(jobs))
                seq[side].append(wall * 1000)
            for side in sides:
                jobs = ours("par") if side == "ours" else naive("par")
                _, wall, _ = timed(lambda jobs=jobs: _concurrent(jobs))
                par[side].append(wall * 1000)
            computed.append(prepare_stats()["computed"] - before)
            for mode in (seq, par):
                mode["ratio"].append(mode["naive"][-1] / mode["ours"][-1])
            cpu_ratios.append(cpu["naive"] / max(cpu["ours"], 1e-6))
            for w in widths:
                value, notes[w] = _compare(files["ours"][w], files["naive"][w])
                psnrs[w].append(value)
        ctx.log(
            f"images rep {rep + 1}: crosspost {seq['ours'][-1]:.0f} ms, naive "
            f"{seq['naive'][-1]:.0f} ms, x{seq['ratio'][-1]:.1f} (concurrently "
            f"x{par['ratio'][-1]:.1f}, CPU x{cpu_ratios[-1]:.1f})"
        )
    worst_psnr = min(median(v) for v in psnrs.values())
    return [
        Figure(
            "image_prep_speedup",
            "4. Image prep speed-up (naive / crosspost, 1280+1080 from 24 MP)",
            median(seq["ratio"]),
            "x",
            ">=",
            SPEEDUP_TARGET,
            details={
                "crosspost_ms": median(seq["ours"]),
                "naive_ms": median(seq["naive"]),
                "per_rep_ratio": [round(r, 2) for r in seq["ratio"]],
                "cpu_time_ratio": median(cpu_ratios),
                "renditions_computed_per_rep (seq + concurrent)": computed,
            },
        ),
        Figure(
            "image_prep_speedup_concurrent",
            "4. For context: the same, both renditions at once (2 threads)",
            median(par["ratio"]),
            "x",
            details={
                "crosspost_ms": median(par["ours"]),
                "naive_ms": median(par["naive"]),
                "per_rep_ratio": [round(r, 2) for r in par["ratio"]],
            },
        ),
        Figure(
            "image_prep_psnr",
            "4. Image prep fidelity (PSNR vs naive, worst width)",
            worst_psnr,
            " dB",
            ">=",
            PSNR_TARGET_DB,
            details={
                **{f"psnr_{w}_db": median(v) for w, v in psnrs.items()},
                **{f"size_{w}": notes[w] for w in widths},
            },
        ),
    ]
