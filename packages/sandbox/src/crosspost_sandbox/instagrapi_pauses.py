"""Instant pauses for instagrapi, in tests and benchmarks only (never in the product).

instagrapi sleeps on purpose, towards the real Instagram: 3 s before configuring a photo
(`instagrapi.mixins.photo`), 1 s before most private requests (`.private`), more in `.graphql`
and the challenge flow (`.challenge`), all through each module's attribute `time`. Against
the sandbox those pauses measure nothing but instagrapi's timers, so a test or a benchmark
gives those modules a `time` whose `sleep` returns at once; everything else (and the real
`time.sleep` for everyone else) is untouched.

- `instant_pauses()`: for the current process, while the `with` block runs.
- `install_import_hook()`: from now on, for good, also for modules not yet imported (for a
  child process, call it from a `sitecustomize` on its PYTHONPATH).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import time
import types
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

__all__ = ["PAUSING_MODULES", "install_import_hook", "instant_pauses", "instant_time"]

#: The instagrapi modules that pause through their module attribute `time`.
PAUSING_MODULES = tuple(
    f"instagrapi.mixins.{name}" for name in ("photo", "private", "graphql", "challenge")
)


def instant_time() -> types.SimpleNamespace:
    """A stand-in for the `time` module whose `sleep` returns at once."""
    fast = types.SimpleNamespace(
        **{name: getattr(time, name) for name in dir(time) if not name.startswith("__")}
    )
    fast.sleep = lambda seconds: None
    return fast


@contextmanager
def instant_pauses() -> Iterator[None]:
    """Make instagrapi's pauses instant in this process until the block ends (imports
    instagrapi's pausing modules)."""
    modules = [importlib.import_module(name) for name in PAUSING_MODULES]
    saved = [module.time for module in modules]
    fast = instant_time()
    for module in modules:
        module.time = fast  # type: ignore[attr-defined]
    try:
        yield
    finally:
        for module, original in zip(modules, saved, strict=True):
            module.time = original  # type: ignore[attr-defined]


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Finds the pausing modules as usual and gives each an instant `time` once executed."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in PAUSING_MODULES:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        loader: Any = spec.loader
        execute = loader.exec_module

        def exec_module(module: types.ModuleType) -> None:
            execute(module)
            module.time = instant_time()  # type: ignore[attr-defined]

        loader.exec_module = exec_module
        return spec


def install_import_hook() -> None:
    """Make instagrapi's pauses instant for the rest of this process: now for the modules
    already imported, on import for the others (instagrapi is not imported here).
    Idempotent."""
    if any(isinstance(finder, _PatchOnImport) for finder in sys.meta_path):
        return
    for name in PAUSING_MODULES:
        module = sys.modules.get(name)
        if module is not None:
            module.time = instant_time()  # type: ignore[attr-defined]
    sys.meta_path.insert(0, _PatchOnImport())
