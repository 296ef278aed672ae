"""Neutralise instagrapi's built-in pauses, in the bench process (and the CLI child started
through `cli_wrapper.py`) only; the product never does this.

instagrapi sleeps 3 s unconditionally in `photo_upload` and pauses `request_timeout` (1 s by
default) before every private-API request. Those are politeness delays towards the real
Instagram, not work: left in, they would make Instagram the slowest platform by seconds of
sleeping and every figure would measure instagrapi's timers. (The pauses on error paths of
`private`, 60 s after a request timeout and 2 s after an incomplete read, go too: a healthy
sandbox never triggers them.) The sandbox's 250 ms per request
stands in for the network instead.

The patch is applied when instagrapi is imported (an import hook), so a process that never
publishes to Instagram never imports it because of the bench.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import time
import types
from collections.abc import Callable, Sequence
from typing import Any


def _no_sleep(seconds: float) -> None:
    return None


def _no_sleep_time(module: types.ModuleType) -> None:
    # A stand-in for the `time` module as this instagrapi module sees it: everything but
    # `sleep` is the real thing, and the real `time.sleep` stays untouched for everyone else.
    shim = types.SimpleNamespace(
        **{n: getattr(time, n) for n in dir(time) if not n.startswith("__")}
    )
    shim.sleep = _no_sleep
    module.time = shim  # type: ignore[attr-defined]


#: `photo`: the 3 s sleep of `photo_upload`; `private`: the `request_timeout` pause before
#: every private request (`Client.__init__` sets it to 1 s whatever the class says, and a
#: saved session restores it, so the sleep itself is what gets neutralised).
PATCHES: dict[str, Callable[[types.ModuleType], None]] = {
    "instagrapi.mixins.photo": _no_sleep_time,
    "instagrapi.mixins.private": _no_sleep_time,
}


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Finds the modules in PATCHES as usual and patches each right after it executes."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        patch = PATCHES.get(fullname)
        if patch is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        loader: Any = spec.loader
        execute = loader.exec_module

        def exec_module(module: types.ModuleType) -> None:
            execute(module)
            patch(module)

        loader.exec_module = exec_module
        return spec


def neutralise() -> None:
    """Patch instagrapi's sleeps now if it is imported, else as soon as it is. Idempotent."""
    if any(isinstance(finder, _PatchOnImport) for finder in sys.meta_path):
        return
    for name, patch in PATCHES.items():
        if name in sys.modules:
            patch(sys.modules[name])
    sys.meta_path.insert(0, _PatchOnImport())
