"""Fixtures of the CLI tests: fake publisher plugins installed as a real distribution (entry
points discovered by importlib.metadata), and a throw-away operator folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from crosspost_orchestrator.cli import main

HERE = Path(__file__).parent
CROSSPOST = Path(sys.executable).with_name("crosspost")

ENTRY_POINTS = """\
[crosspost.publishers]
fakea = crosspost_fake_plugins:create_fakea
fakeb = crosspost_fake_plugins:create_fakeb
fakec = crosspost_fake_plugins:create_fakec
"""


@pytest.fixture(scope="session")
def fake_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder that, on sys.path, makes `crosspost-fake-plugins` an installed distribution."""
    site = tmp_path_factory.mktemp("fake-site")
    shutil.copy(HERE / "fake_plugins" / "crosspost_fake_plugins.py", site)
    info = site / "crosspost_fake_plugins-0.3.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: crosspost-fake-plugins\nVersion: 0.3.0\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(ENTRY_POINTS, encoding="utf-8")
    return site


@pytest.fixture
def plugins(fake_site: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The fake plugins, visible to `main()` in this process."""
    monkeypatch.syspath_prepend(str(fake_site))
    return fake_site


def jpeg_bytes(seed: str) -> bytes:
    """Bytes the fake publishers accept as a JPEG, different for each seed."""
    return b"\xff\xd8\xff\xe0" + seed.encode() * 64


class Operator:
    """An operator's folder: crosspost.toml, photos/, the fakes' outbox, and ways to run the
    command in this process or as a real process."""

    def __init__(self, root: Path, site: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.root = root
        self.site = site
        self.capsys = capsys
        self.photos = root / "photos"
        self.archive = self.photos / "archive"
        self.outbox = root / "outbox"
        self.config = root / "crosspost.toml"
        self.ledger = root / "crosspost.sqlite3"
        self.photos.mkdir()
        self.outbox.mkdir()

    def write_config(
        self,
        publishers: dict[str, dict[str, Any]] | None = None,
        workflow: str | None = None,
        extra: str = "",
    ) -> Path:
        if workflow is None:
            workflow = 'folder = "photos"\narchive = "photos/archive"\nledger = "crosspost.sqlite3"\ntimeout_s = 10\n'
        if publishers is None:
            publishers = {"fakea": {}, "fakec": {}}
        parts = ["[workflow]\n" + workflow]
        for name, table in publishers.items():
            lines = [f"[publishers.{name}]", 'outbox_dir = "outbox"']
            lines += [f"{key} = {json.dumps(value)}" for key, value in table.items()]
            parts.append("\n".join(lines) + "\n")
        self.config.write_text("\n".join(parts) + extra, encoding="utf-8")
        return self.config

    def add_image(
        self, name: str, caption: str | None = None, *, content: bytes | None = None
    ) -> Path:
        path = self.photos / name
        path.write_bytes(content if content is not None else jpeg_bytes(name))
        if caption is not None:
            path.with_suffix(".txt").write_text(caption + "\n", encoding="utf-8")
        return path

    def posts(self, platform: str) -> list[dict[str, Any]]:
        outbox = self.outbox / f"{platform}.jsonl"
        if not outbox.exists():
            return []
        return [json.loads(line) for line in outbox.read_text(encoding="utf-8").splitlines()]

    def main(self, *args: str) -> tuple[int, str, str]:
        """`crosspost ARGS --config <ours>` in this process: (status, stdout, stderr)."""
        self.capsys.readouterr()
        argv = list(args)
        if args and args[0] in ("publish", "check", "login"):
            argv += ["--config", str(self.config)]
        status = main(argv)
        captured = self.capsys.readouterr()
        return status, captured.out, captured.err

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CROSSPOST_")}
        env["PYTHONPATH"] = os.pathsep.join(
            [str(self.site), *filter(None, [os.environ.get("PYTHONPATH")])]
        )
        env.update(extra)
        return env

    def process(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        """`crosspost ARGS` as a real process started in the operator's folder."""
        return subprocess.run(
            [str(CROSSPOST), *args],
            cwd=self.root,
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


@pytest.fixture
def operator(
    tmp_path: Path,
    plugins: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Operator:
    for name in [k for k in os.environ if k.startswith("CROSSPOST_")]:
        monkeypatch.delenv(name)
    return Operator(tmp_path, plugins, capsys)
