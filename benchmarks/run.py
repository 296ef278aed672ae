"""crosspost benchmark harness: `uv run nox -s bench` (or `python benchmarks/run.py`).

Every figure is a ratio measured side by side in the same run (or an absolute OS measure
where the issue asks for one), the median of several repetitions. Prints a table (figure,
value, target, PASS/FAIL), writes the same as JSON, and exits 1 if a target is missed.
See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import bench_images  # noqa: E402 - after the path set-up, as a script
import bench_memory  # noqa: E402
import bench_parallel  # noqa: E402
import bench_scaling  # noqa: E402
import bench_startup  # noqa: E402
from context import BenchContext  # noqa: E402
from photo import ensure_photo  # noqa: E402
from report import (  # noqa: E402
    Figure,
    error_figure,
    machine_info,
    render_details,
    render_table,
    write_json,
)

#: name -> (what it measures, the function). Cheap and subprocess-only benches first.
BENCHES: dict[str, tuple[str, Callable[[BenchContext], list[Figure]]]] = {
    "startup": ("6. start-up of crosspost --help", bench_startup.run),
    "images": ("4. image preparation vs naive", bench_images.run),
    "parallel": ("1-2. parallel efficiency and loop lag", bench_parallel.run),
    "scaling": ("2-3. scaling to 16 Telegram channels", bench_scaling.run),
    "memory": ("5. peak RSS of crosspost publish", bench_memory.run),
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="benchmarks/run.py",
        description="Measure crosspost's throughput figures against the sandbox.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="3 repetitions instead of 5 (noisier, faster)"
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        choices=sorted(BENCHES),
        help=f"run only this bench (repeatable): {', '.join(BENCHES)}",
    )
    parser.add_argument(
        "--repetitions", type=int, default=None, help="override the number of repetitions"
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=ROOT / ".bench" / "results.json",
        metavar="PATH",
        help="where to write the results (default: .bench/results.json)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.time()
    bench_dir = ROOT / ".bench"
    repetitions = args.repetitions or (3 if args.quick else 5)
    machine = machine_info()
    print(
        f"crosspost bench: {repetitions} repetitions, python {machine['python']}, "
        f"{machine['cpu_count']} cores, load {machine['loadavg']}",
        flush=True,
    )
    photo = ensure_photo(bench_dir)
    ctx = BenchContext(
        root=ROOT, bench_dir=bench_dir, photo=photo, repetitions=repetitions, quick=args.quick
    )
    print(f"input: {photo.relative_to(ROOT)} ({photo.stat().st_size / 1e6:.1f} MB)", flush=True)

    figures: list[Figure] = []
    for name, (title, bench) in BENCHES.items():
        if args.only and name not in args.only:
            continue
        print(f"\n== {name}: {title}", flush=True)
        began = time.perf_counter()
        try:
            figures.extend(bench(ctx))
        except Exception as exc:  # noqa: BLE001 - one broken bench must not hide the others
            traceback.print_exc()
            figures.append(error_figure(name, f"{title} (did not run)", exc))
        print(f"   {name} took {time.perf_counter() - began:.0f} s", flush=True)

    print()
    print(render_table(figures))
    details = render_details(figures)
    if details:
        print("\n" + details)
    write_json(
        args.json,
        figures,
        run={
            "command": " ".join(
                ["benchmarks/run.py", *(argv if argv is not None else sys.argv[1:])]
            ),
            "repetitions": repetitions,
            "quick": args.quick,
            "only": args.only,
            "photo": str(photo.relative_to(ROOT)),
            "machine_at_start": machine,
        },
        started=started,
    )
    failed = [f.key for f in figures if f.passed is False]
    print(
        f"\nwrote {args.json}; {time.time() - started:.0f} s in all; load now "
        f"{[round(x, 2) for x in os.getloadavg()]}",
        flush=True,
    )
    if failed:
        print(f"targets missed: {', '.join(failed)}", flush=True)
        return 1
    print("every target met", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
