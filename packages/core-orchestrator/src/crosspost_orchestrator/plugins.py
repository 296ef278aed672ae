"""Publisher plugins: entry points of the group `crosspost.publishers`.

Listing plugins reads installed metadata only; a plugin's code is imported when, and only
when, it is built. A plugin that fails to import or to build is reported by name and the
others still build.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from crosspost_orchestrator.errors import ConfigError, PluginError
from crosspost_orchestrator.orchestrator import describe_exception
from crosspost_orchestrator.publisher import Publisher

__all__ = [
    "ENTRY_POINT_GROUP",
    "PluginInfo",
    "build_publishers",
    "discover_publishers",
    "install_hint",
]

#: The entry-point group a publisher package registers its factory under.
ENTRY_POINT_GROUP = "crosspost.publishers"


@dataclass(frozen=True, slots=True)
class PluginInfo:
    """One installed publisher plugin, as its metadata describes it (nothing imported)."""

    name: str
    #: The distribution that registers it (None when the metadata does not say).
    distribution: str | None
    version: str | None
    #: The entry point's target, `module:factory`.
    value: str


def install_hint(name: str) -> str:
    """The distribution that conventionally provides publisher `name`."""
    return f"crosspost-publisher-{name}"


def _scan() -> tuple[dict[str, tuple[PluginInfo, importlib.metadata.EntryPoint]], dict[str, str]]:
    """(plugins by name, duplicate-name errors by name), from installed metadata only."""
    found: dict[str, tuple[PluginInfo, importlib.metadata.EntryPoint]] = {}
    duplicates: dict[str, list[str]] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist
        info = PluginInfo(
            name=ep.name,
            distribution=dist.name if dist is not None else None,
            version=dist.version if dist is not None else None,
            value=ep.value,
        )
        if ep.name in found:
            known, _ep = found[ep.name]
            if known.distribution == info.distribution and known.value == info.value:
                continue  # the same distribution seen twice on sys.path
            duplicates.setdefault(ep.name, [str(known.distribution)]).append(str(info.distribution))
            continue
        found[ep.name] = (info, ep)
    errors = {
        name: (
            f"publisher {name!r} is provided by more than one distribution "
            f"({' and '.join(dists)}): uninstall all but one"
        )
        for name, dists in duplicates.items()
    }
    return found, errors


def discover_publishers() -> dict[str, PluginInfo]:
    """Every installed publisher plugin by name, sorted, without importing any of them.

    Raises `PluginError` naming both distributions when two register the same name.
    """
    found, duplicates = _scan()
    if duplicates:
        raise PluginError("; ".join(duplicates[name] for name in sorted(duplicates)))
    return {name: found[name][0] for name in sorted(found)}


def build_publishers(
    tables: Mapping[str, Mapping[str, Any]],
) -> tuple[list[Publisher], dict[str, str]]:
    """Build the publisher named by each key of `tables` from its settings table.

    Returns the publishers built (in the order of `tables`) and, by name, a one-line reason
    for each one that could not be: no such plugin, two plugins with its name, an import
    error, a factory that raised, or a factory that did not return a `Publisher`. Only the
    named plugins are imported. A `ConfigError` from a factory (bad settings) propagates:
    the configuration must be fixed before anything runs.
    """
    found, duplicates = _scan()
    publishers: list[Publisher] = []
    failures: dict[str, str] = {}
    for name, settings in tables.items():
        if name in duplicates:
            failures[name] = duplicates[name]
            continue
        if name not in found:
            failures[name] = f"no publisher {name!r}: install {install_hint(name)}"
            continue
        info, ep = found[name]
        origin = f"{info.distribution} {info.version}" if info.distribution else info.value
        try:
            factory = ep.load()
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not stop the others
            failures[name] = (
                f"publisher {name!r} ({origin}) cannot be imported: {describe_exception(exc)}"
            )
            continue
        try:
            publisher = factory(settings)
        except ConfigError:
            raise
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not stop the others
            failures[name] = (
                f"publisher {name!r} ({origin}) failed to build: {describe_exception(exc)}"
            )
            continue
        if not isinstance(publisher, Publisher):
            failures[name] = (
                f"publisher {name!r} ({origin}) returned {type(publisher).__name__}, "
                "not a crosspost_orchestrator.Publisher"
            )
            continue
        publishers.append(publisher)
    return publishers, failures
