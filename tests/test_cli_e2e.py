"""End to end through the real `crosspost` process against the sandbox servers: the folder
queue over several runs, a partial failure and its rerun, dry run and preview, config
errors, the import budget of `--help` / `platforms`, and `crosspost demo`.

The sandboxes run in background threads of this test process (`run_in_thread()`); the
command runs as a child process with a config pointing at them. instagrapi pauses ~3 s
before each upload in its own code, which a child process keeps: these tests make only a
handful of Instagram uploads in total.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from crosspost_sandbox.instagram import InstagramSandbox
from crosspost_sandbox.smtp import SmtpSandbox
from crosspost_sandbox.telegram import TelegramSandbox

CROSSPOST = Path(sys.executable).with_name("crosspost")
HEAVY_MODULES = ("telegram", "instagrapi", "aiosmtplib", "PIL")


@dataclass
class Sandboxes:
    smtp: SmtpSandbox
    telegram: TelegramSandbox
    instagram: InstagramSandbox


@pytest.fixture
def sandboxes() -> Iterator[Sandboxes]:
    with (
        SmtpSandbox().run_in_thread() as smtp,
        TelegramSandbox().run_in_thread() as telegram,
        InstagramSandbox().run_in_thread() as instagram,
    ):
        yield Sandboxes(smtp, telegram, instagram)


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CROSSPOST_")}
    env.update(extra)
    return env


def run(cwd: Path, *args: str, timeout: float = 90, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CROSSPOST), *args],
        cwd=cwd,
        env=child_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def write_photo(path: Path, color: tuple[int, int, int]) -> None:
    image = Image.new("RGB", (1200, 900), color)
    for x in range(0, 1200, 40):
        for y in range(0, 900, 40):
            image.putpixel((x, y), (255 - color[0], x % 256, y % 256))
    image.save(path, "JPEG", quality=90)


class Operator:
    """A folder with crosspost.toml and .env for the sandboxes, and the photo queue."""

    def __init__(self, root: Path, boxes: Sandboxes) -> None:
        self.root = root
        self.boxes = boxes
        self.photos = root / "photos"
        self.archive = self.photos / "archive"
        self.ledger = root / "crosspost.sqlite3"
        self.photos.mkdir()
        self.write_config()

    def write_config(self, extra: str = "", **overrides: str) -> None:
        smtp, telegram, instagram = self.boxes.smtp, self.boxes.telegram, self.boxes.instagram
        tables = {
            "workflow": (
                'folder = "photos"\narchive = "photos/archive"\n'
                'ledger = "crosspost.sqlite3"\ntimeout_s = 30\n'
            ),
            "publishers.email": (
                f'smtp_host = "127.0.0.1"\nsmtp_port = {smtp.starttls_port}\n'
                f'security = "starttls"\nca_file = "{smtp.ca_path}"\n'
                f'sender = "{smtp.username}"\nrecipient = "123@upload.fetlife.example"\n'
                'caption_target = "subject"\nmax_attempts = 1\n'
            ),
            "publishers.telegram": (
                f'channel_id = "{telegram.channel_id}"\napi_base_url = "{telegram.base_url}"\n'
                "max_attempts = 1\n"
            ),
            "publishers.instagram": (
                f'username = "{instagram.username}"\nsession_file = "ig-session.json"\n'
                f'proxy = "{instagram.proxy_url}"\nca_file = "{instagram.ca_path}"\n'
            ),
        }
        tables.update(overrides)
        text = "".join(f"[{name}]\n{body}\n" for name, body in tables.items()) + extra
        (self.root / "crosspost.toml").write_text(text, encoding="utf-8")
        (self.root / ".env").write_text(
            f"CROSSPOST_EMAIL_PASSWORD={smtp.password}\n"
            f"CROSSPOST_TELEGRAM_BOT_TOKEN={telegram.token}\n"
            f"CROSSPOST_INSTAGRAM_PASSWORD={instagram.password}\n",
            encoding="utf-8",
        )

    def add(self, name: str, caption: str, color: tuple[int, int, int]) -> Path:
        path = self.photos / name
        write_photo(path, color)
        path.with_suffix(".txt").write_text(caption + "\n", encoding="utf-8")
        return path

    def publish(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run(self.root, "publish", *args)

    def delivered(self) -> dict[str, list[str]]:
        """Captions each sandbox received, in order."""
        return {
            "email": [str(m.message["subject"]) for m in self.boxes.smtp.messages],
            "telegram": [p.caption for p in self.boxes.telegram.photos],
            "instagram": [p.caption or "" for p in self.boxes.instagram.posts],
        }

    def rows(self) -> list[tuple[str, str, str]]:
        conn = sqlite3.connect(self.ledger)
        try:
            return conn.execute(
                "SELECT image_name, platform, status FROM publishes ORDER BY image_name, platform"
            ).fetchall()
        finally:
            conn.close()


@pytest.fixture
def operator(tmp_path: Path, sandboxes: Sandboxes) -> Operator:
    return Operator(tmp_path, sandboxes)


def test_folder_of_three_publishes_one_per_run_in_order_and_archives_each(
    operator: Operator,
) -> None:
    operator.add("b.jpg", "second photo", (40, 90, 160))
    operator.add("a.jpg", "first photo", (200, 60, 40))
    operator.add("c.jpg", "third photo", (30, 150, 70))
    log = operator.root / "logs" / "crosspost.jsonl"
    for number, name in enumerate(["a.jpg", "b.jpg", "c.jpg"], start=1):
        done = operator.publish("--log-file", str(log))
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"publishing {name} to email, telegram, instagram" in done.stdout
        assert f"archived: {operator.archive / name}" in done.stdout
        assert "timeline: publish_parallel_ms" in done.stdout
        assert not (operator.photos / name).exists()
        assert (operator.archive / name).exists()
        assert (operator.archive / name).with_suffix(".txt").exists()
        assert {k: len(v) for k, v in operator.delivered().items()} == {
            "email": number, "telegram": number, "instagram": number,
        }  # fmt: skip
    in_order = ["first photo", "second photo", "third photo"]
    assert operator.delivered() == {"email": in_order, "telegram": in_order, "instagram": in_order}
    done = operator.publish()
    assert done.returncode == 0
    assert "nothing to publish" in done.stdout
    text = log.read_text(encoding="utf-8")
    boxes = operator.boxes
    for secret in (boxes.telegram.token, boxes.smtp.password, boxes.instagram.password):
        assert secret not in text
    events = [json.loads(line) for line in text.splitlines()]
    published = [e["platform"] for e in events if e["message"] == "publisher_publish"]
    assert sorted(published) == sorted(["email", "telegram", "instagram"] * 3)


def test_telegram_failure_keeps_the_image_and_the_rerun_posts_only_to_telegram(
    operator: Operator,
) -> None:
    image = operator.add("a.jpg", "one photo", (120, 30, 200))
    operator.boxes.telegram.inject("forbidden", operation="sendPhoto", times=None)
    done = operator.publish()
    assert done.returncode == 1, done.stdout + done.stderr
    assert "kept in the queue: not yet on telegram" in done.stdout
    assert image.exists()
    assert operator.rows() == [
        ("a.jpg", "email", "published"),
        ("a.jpg", "instagram", "published"),
        ("a.jpg", "telegram", "failed"),
    ]

    operator.boxes.telegram.clear_faults()
    done = operator.publish("--json")
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert list(result["publish_results"]) == ["telegram"]
    assert sorted(result["already_published"]) == ["email", "instagram"]
    assert result["archived"] is True
    assert not image.exists()
    # Exactly one post per platform for the image, across both runs.
    assert {k: len(v) for k, v in operator.delivered().items()} == {
        "email": 1, "telegram": 1, "instagram": 1,
    }  # fmt: skip


@pytest.mark.parametrize("flag", ["--dry-run", "--preview"])
def test_dry_run_and_preview_contact_nothing_and_change_nothing(
    operator: Operator, flag: str
) -> None:
    operator.add("a.jpg", "a caption #tag", (10, 20, 30))
    before = {p: p.stat().st_mtime_ns for p in [operator.root, *operator.root.rglob("*")]}
    done = operator.publish(flag)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "nothing was contacted, nothing was changed" in done.stdout
    for platform in ("email", "telegram", "instagram"):
        assert f"{platform}: would publish" in done.stdout
    assert {p: p.stat().st_mtime_ns for p in [operator.root, *operator.root.rglob("*")]} == before
    assert operator.delivered() == {"email": [], "telegram": [], "instagram": []}
    for box in (operator.boxes.smtp, operator.boxes.telegram, operator.boxes.instagram):
        assert box.counters["connections"] == 0, box.counters.snapshot()


@pytest.mark.parametrize(
    ("change", "env", "fragments"),
    [
        (
            {
                "publishers.telegram": 'channel_id = "@x"\nbot_token = "123456:ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij"\n'
            },
            {},
            ["publishers.telegram.bot_token is a secret", "CROSSPOST_TELEGRAM_BOT_TOKEN"],
        ),
        (
            {
                "publishers.email": 'smtp_host = "127.0.0.1"\nsender = "a@b.example"\nrecipient = "c@d.example"\nport = 25\n'
            },
            {},
            ["publishers.email.port: unknown setting"],
        ),
        (
            {
                "publishers.email": 'smtp_host = "127.0.0.1"\nsender = "a@b.example"\nrecipient = "c@d.example"\nsmtp_port = "587"\n'
            },
            {},
            ["publishers.email.smtp_port: expected"],
        ),
        (
            {"publishers.telegram": 'api_base_url = "http://127.0.0.1:9/bot"\n'},
            {},
            ["publishers.telegram.channel_id: required setting is missing"],
        ),
        (
            {"publishers.mastodon": 'server = "x"\n'},
            {},
            ["no publisher 'mastodon': install crosspost-publisher-mastodon"],
        ),
    ],
    ids=["secret-in-toml", "unknown-key", "wrong-type", "missing-required", "plugin-not-installed"],
)
def test_config_errors_exit_2_with_one_line_and_contact_nothing(
    operator: Operator, change: dict[str, str], env: dict[str, str], fragments: list[str]
) -> None:
    operator.add("a.jpg", "x", (1, 2, 3))
    operator.write_config(**change)
    done = operator.publish()
    assert done.returncode == 2, done.stdout + done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert str(operator.root / "crosspost.toml") in done.stderr
    for fragment in fragments:
        assert fragment in done.stderr
    assert "ABCDEFGHIJKLMNOP" not in done.stderr
    assert operator.delivered() == {"email": [], "telegram": [], "instagram": []}


def test_missing_secret_for_an_enabled_platform_names_the_variable(operator: Operator) -> None:
    operator.add("a.jpg", "x", (1, 2, 3))
    env_file = operator.root / ".env"
    env_file.write_text(
        "\n".join(ln for ln in env_file.read_text().splitlines() if "EMAIL" not in ln) + "\n"
    )
    done = operator.publish()
    assert done.returncode == 2
    assert "publishers.email: CROSSPOST_EMAIL_PASSWORD is not set" in done.stderr
    assert operator.delivered()["telegram"] == []


def test_check_verifies_every_platform_without_posting(operator: Operator) -> None:
    done = run(operator.root, "check")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = {line.split()[0]: line for line in done.stdout.splitlines()}
    for platform in ("workflow", "email", "telegram", "instagram"):
        assert lines[platform].split()[1] == "ok:", done.stdout
    assert operator.delivered() == {"email": [], "telegram": [], "instagram": []}


@pytest.mark.parametrize("argv", [["--help"], ["publish", "--help"], ["platforms"]])
def test_help_and_platforms_import_no_platform_library(argv: list[str]) -> None:
    code = (
        "import sys\n"
        "from crosspost_orchestrator.cli import main\n"
        f"status = main({argv!r})\n"
        "print('MODULES', ' '.join(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=child_env(),
        timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    modules = set(done.stdout.rsplit("MODULES", 1)[1].split())
    loaded = sorted(m for m in modules if m.split(".")[0] in HEAVY_MODULES)
    assert loaded == []
    assert "crosspost_orchestrator.cli" in modules
    if argv == ["platforms"]:
        assert "crosspost-publisher-telegram" in done.stdout
        assert not any(
            m.startswith(("crosspost_telegram", "crosspost_email", "crosspost_instagram"))
            for m in modules
        )


def test_demo_publishes_the_sample_to_all_three_and_shows_where_to_look(tmp_path: Path) -> None:
    # The demo keeps its folder for the user to look at: TMPDIR puts it under tmp_path.
    done = run(tmp_path, "demo", timeout=60, TMPDIR=str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "publishing sunset.jpg to email, telegram, instagram" in out
    assert "timeline: publish_parallel_ms" in out
    assert "instagrapi, Instagram's client, pauses by design" in out
    received = {}
    for line in out.splitlines():
        parts = line.split()
        if (
            len(parts) >= 2
            and parts[0] in ("email", "telegram", "instagram")
            and "/received/" in parts[1]
        ):
            received[parts[0]] = Path(parts[1])
    assert sorted(received) == ["email", "instagram", "telegram"]
    assert all(path.is_relative_to(tmp_path) for path in received.values())
    for path in received.values():
        assert path.stat().st_size > 1000
    assert b"Content-Type: multipart/mixed" in received["email"].read_bytes()
    with Image.open(received["telegram"]) as photo:
        assert photo.format == "JPEG"
    telemetry = Path(out.split("telemetry: ", 1)[1].split()[0])
    events = [json.loads(line) for line in telemetry.read_text().splitlines()]
    assert sum(e.get("message") == "publisher_publish" for e in events) == 3
    stats = run(tmp_path, "stats", str(telemetry), "--json")
    assert stats.returncode == 0
    assert set(json.loads(stats.stdout)["platforms"]) == {"email", "telegram", "instagram"}


def test_login_instagram_saves_a_private_session_file(operator: Operator) -> None:
    done = subprocess.run(
        [str(CROSSPOST), "login", "instagram"], cwd=operator.root, env=child_env(),
        input="", capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    session = operator.root / "ig-session.json"
    assert f"session saved to {session}" in done.stdout
    assert session.stat().st_mode & 0o777 == 0o600
    assert operator.boxes.instagram.password not in done.stdout + done.stderr


def test_huge_caption_and_control_characters_are_handled_by_every_publisher(
    operator: Operator,
) -> None:
    image = operator.add("a.jpg", "x", (5, 5, 5))
    image.with_suffix(".txt").write_bytes(b"nul\x00 and \x1b[31mescape\x07 caption\n")
    done = operator.publish("--dry-run")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "caption: 'nul and [31mescape caption'" in done.stdout
    done = operator.publish("--preview", "--caption", "word " * 20_000)
    assert done.returncode == 0, done.stdout + done.stderr
    limits = {"telegram": 1024, "instagram": 2200, "email": 1000}
    for platform, limit in limits.items():
        line = next(ln for ln in done.stdout.splitlines() if ln.strip().startswith(f"{platform}:"))
        length = int(line.split("caption ")[1].split()[0])
        assert 0 < length <= limit, line
    assert operator.delivered() == {"email": [], "telegram": [], "instagram": []}
