"""Plugin discovery and building against the real installed test distribution
`crosspost-test-plugins` (see tests/plugin-dist)."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import textwrap
from typing import Any, ClassVar

import pytest

from crosspost_orchestrator import (
    ConfigError,
    PluginError,
    PluginInfo,
    Publisher,
    build_publishers,
    discover_publishers,
)
from crosspost_orchestrator.plugins import ENTRY_POINT_GROUP


def test_discovery_lists_the_installed_test_plugins_with_their_distribution() -> None:
    plugins = discover_publishers()
    version = importlib.metadata.version("crosspost-test-plugins")
    assert plugins["dummy"] == PluginInfo(
        name="dummy",
        distribution="crosspost-test-plugins",
        version=version,
        value="crosspost_test_plugins:create_dummy",
    )
    assert {"dummy", "broken", "failing", "wrongtype"} <= set(plugins)
    assert list(plugins) == sorted(plugins)


def test_listing_plugins_imports_none_of_them() -> None:
    script = textwrap.dedent(
        """
        import sys
        from crosspost_orchestrator import discover_publishers
        assert "broken" in discover_publishers()
        print(sorted(m for m in sys.modules if m.startswith("crosspost_test_plugins")))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_building_a_plugin_passes_its_settings_table() -> None:
    publishers, failures = build_publishers({"dummy": {"greeting": "hi", "timeout_s": 3}})
    assert failures == {}
    (publisher,) = publishers
    assert isinstance(publisher, Publisher)
    assert publisher.platform_name == "dummy"
    assert publisher.timeout_s == 3.0


async def test_a_built_plugin_publishes() -> None:
    (publisher,), _ = build_publishers({"dummy": {"greeting": "hey"}})
    result = await publisher.publish("unused.jpg", "caption")
    assert result.success
    assert result.post_id == "hey"


def test_broken_and_failing_plugins_are_reported_by_name_and_the_others_still_build() -> None:
    publishers, failures = build_publishers(
        {"broken": {}, "dummy": {}, "failing": {}, "wrongtype": {}}
    )
    assert [p.platform_name for p in publishers] == ["dummy"]
    assert set(failures) == {"broken", "failing", "wrongtype"}
    assert failures["broken"].startswith("publisher 'broken' (crosspost-test-plugins ")
    assert (
        "cannot be imported: ImportError: No module named 'missing_dependency" in failures["broken"]
    )
    assert (
        "failed to build: RuntimeError: the failing plugin always fails to build"
        in (failures["failing"])
    )
    assert "returned str, not a crosspost_orchestrator.Publisher" in failures["wrongtype"]
    assert all("\n" not in reason for reason in failures.values())


def test_unknown_publisher_names_the_package_to_install() -> None:
    publishers, failures = build_publishers({"nowhere": {}, "dummy": {}})
    assert len(publishers) == 1
    assert failures == {"nowhere": "no publisher 'nowhere': install crosspost-publisher-nowhere"}


def test_bad_settings_raise_config_error_from_the_factory() -> None:
    with pytest.raises(ConfigError, match=r"publishers\.dummy\.colour: unknown setting"):
        build_publishers({"dummy": {"colour": "red"}})


class _OtherDistribution(importlib.metadata.Distribution):
    """A second distribution that also registers `dummy`, described by its metadata files."""

    files_text: ClassVar[dict[str, str]] = {
        "METADATA": "Metadata-Version: 2.1\nName: crosspost-other-dummy\nVersion: 9.9\n",
        "entry_points.txt": f"[{ENTRY_POINT_GROUP}]\ndummy = other_dummy:create_publisher\n",
    }

    def read_text(self, filename: str) -> str | None:
        return self.files_text.get(filename)

    def locate_file(self, path: Any) -> Any:
        raise FileNotFoundError(path)


def _with_duplicate(monkeypatch: pytest.MonkeyPatch) -> None:
    """Add a second distribution registering `dummy` to the real entry points."""
    real = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    extra = list(_OtherDistribution().entry_points)

    def entry_points(**params: Any) -> importlib.metadata.EntryPoints:
        assert params == {"group": ENTRY_POINT_GROUP}
        return importlib.metadata.EntryPoints([*real, *extra])

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)


def test_two_distributions_with_one_publisher_name_is_an_error_naming_both(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _with_duplicate(monkeypatch)
    with pytest.raises(PluginError) as info:
        discover_publishers()
    message = str(info.value)
    assert "'dummy'" in message
    assert "crosspost-test-plugins" in message
    assert "crosspost-other-dummy" in message


def test_a_duplicated_name_fails_only_that_publisher_when_building(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _with_duplicate(monkeypatch)
    publishers, failures = build_publishers({"dummy": {}, "failing": {}})
    assert publishers == []
    assert "crosspost-other-dummy" in failures["dummy"]
    assert "failed to build" in failures["failing"]
