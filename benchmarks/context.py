"""What every bench module receives: where things go, how many repetitions, the photo."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


@dataclass
class BenchContext:
    """Options and shared inputs of one bench run."""

    root: Path  # the workspace root
    bench_dir: Path  # `.bench/`: the cached photo, scratch files, results
    photo: Path  # the 24 MP JPEG
    repetitions: int
    quick: bool

    @contextmanager
    def scratch(self, prefix: str) -> Iterator[Path]:
        """A fresh directory under `.bench/tmp/`, removed afterwards."""
        parent = self.bench_dir / "tmp"
        parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=prefix, dir=parent) as name:
            yield Path(name)

    def log(self, message: str) -> None:
        """Progress on stdout, so a reader sees the run is alive."""
        print(f"  [{time.strftime('%H:%M:%S')}] {message}", flush=True)


def fresh_image_cache(directory: Path) -> None:
    """Point crosspost_images at an empty cache directory: nothing prepared before counts."""
    from crosspost_images import set_cache_dir

    directory.mkdir(parents=True, exist_ok=True)
    set_cache_dir(str(directory))


def timed(func: Callable[[], T]) -> tuple[T, float, float]:
    """(result, wall seconds, process CPU seconds) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = func()
    return result, time.perf_counter() - wall, time.process_time() - cpu
