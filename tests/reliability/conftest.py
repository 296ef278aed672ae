"""The reliability harness: the three sandbox servers, an operator's folder with a config for
them, and ways to run `crosspost` against it (in this process, or as the real process).

Every run goes through the real CLI entry point, the real publishers and the real SQLite
ledger; the sandbox servers run in background threads of the test process so that a
`crosspost` subprocess reaches them while the test blocks on it.

Each test gets its own `Deployment`: its own folder, ledger, session file, Telegram channel,
e-mail recipient and caption marker, so a module shares one sandbox trio and still counts
exactly the posts of its own images. When a test ends, the deployment scans everything the
runs produced (stdout, stderr, the log file, the ledger, the archive, every file of the
folder but the session file itself) for every secret, and checks the modes of the secret
files: a leak fails whichever test produced it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import secrets
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import time
import types
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import pytest
from PIL import Image, ImageDraw

from crosspost_orchestrator.cli import main
from crosspost_sandbox.instagram import InstagramSandbox
from crosspost_sandbox.instagrapi_pauses import instant_pauses
from crosspost_sandbox.smtp import SmtpSandbox
from crosspost_sandbox.telegram import TelegramSandbox

PLATFORMS = ("email", "telegram", "instagram")
CROSSPOST = Path(sys.executable).with_name("crosspost")
#: How long a healthy platform may take before the harness calls it slow (loaded CI machine).
HEALTHY_TIMEOUT_S = 20.0
#: The time limit given to a platform a test makes misbehave.
FAULTY_TIMEOUT_S = 3.0

# Test harness only, never product code: instagrapi pauses on purpose (3 s before each photo
# upload in `instagrapi.mixins.photo`, 1 s before most requests in `.private`, more in
# `.graphql` and `.challenge`, all through the module attribute `time`). A `crosspost`
# subprocess gets this sitecustomize on its PYTHONPATH, which gives those modules an instant
# `time.sleep` when (and only if) they are imported.
SITECUSTOMIZE = """\
\"\"\"Test harness: instant time.sleep inside instagrapi's deliberately pausing modules.\"\"\"
from crosspost_sandbox.instagrapi_pauses import install_import_hook

install_import_hook()
"""


# -- the sandbox trio -----------------------------------------------------------------------
@dataclass
class Sandboxes:
    """The three servers, started in threads, with their throw-away secrets."""

    smtp: SmtpSandbox
    telegram: TelegramSandbox
    instagram: InstagramSandbox

    def reset(self) -> None:
        """No scripted fault and no added latency anywhere."""
        for server in (self.smtp, self.telegram, self.instagram):
            server.clear_faults()
            server.set_latency(0.0)

    def by_platform(self) -> dict[str, Any]:
        return {"email": self.smtp, "telegram": self.telegram, "instagram": self.instagram}

    def contacts(self) -> dict[str, int]:
        """Connections each server has accepted so far: any contact at all opens one."""
        return {name: server.counters["connections"] for name, server in self.by_platform().items()}

    def secrets(self) -> dict[str, str]:
        return {
            "CROSSPOST_EMAIL_PASSWORD": self.smtp.password,
            "CROSSPOST_TELEGRAM_BOT_TOKEN": self.telegram.token,
            "CROSSPOST_INSTAGRAM_PASSWORD": self.instagram.password,
        }


@pytest.fixture(scope="module")
def sandbox_trio() -> Iterator[Sandboxes]:
    """One SMTP, Telegram and Instagram sandbox for the whole module, in background threads."""
    with contextlib.ExitStack() as stack:
        smtp = stack.enter_context(
            SmtpSandbox(password=f"smtp-{secrets.token_urlsafe(18)}").run_in_thread()
        )
        telegram = stack.enter_context(TelegramSandbox().run_in_thread())
        instagram = stack.enter_context(
            InstagramSandbox(password=f"ig-{secrets.token_urlsafe(18)}").run_in_thread()
        )
        yield Sandboxes(smtp, telegram, instagram)


@pytest.fixture
def sandboxes(sandbox_trio: Sandboxes) -> Iterator[Sandboxes]:
    """The module's sandbox trio, healthy at the start and at the end of every test."""
    sandbox_trio.reset()
    yield sandbox_trio
    sandbox_trio.reset()


@pytest.fixture(scope="session")
def harness_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder for the subprocesses' PYTHONPATH holding the test-only sitecustomize."""
    site = tmp_path_factory.mktemp("reliability-site")
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
    return site


@pytest.fixture(scope="module")
def _instant_instagrapi_pauses() -> Iterator[None]:
    """The same neutralisation for runs inside this process."""
    with instant_pauses():
        yield


# -- images ---------------------------------------------------------------------------------
def make_jpeg(path: Path, label: str, size: tuple[int, int] = (800, 600)) -> Path:
    """A real JPEG with some structure, different bytes for every label."""
    digest = hashlib.sha256(label.encode()).digest()
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    draw = ImageDraw.Draw(image)
    x, y = digest[0] * size[0] // 512, digest[1] * size[1] // 512
    draw.rectangle((x, y, x + size[0] // 3, y + size[1] // 3), fill=(digest[2], digest[3], 90))
    draw.text((10, 10), label, fill=(255, 255, 0))
    image.save(path, "JPEG", quality=85)
    return path


def make_png_bomb(path: Path, side: int = 20_000) -> Path:
    """A tiny but valid `side` x `side` greyscale PNG: all zeros, compressed row by row."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    compressor = zlib.compressobj(9)
    row = bytes(side + 1)  # filter byte 0 + one zero byte per pixel
    parts = [compressor.compress(row) for _ in range(side)]
    parts.append(compressor.flush())
    header = side.to_bytes(4, "big") * 2 + bytes([8, 0, 0, 0, 0])
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", b"".join(parts))
        + chunk(b"IEND", b"")
    )
    return path


def make_animation(path: Path, fmt: str) -> Path:
    """A two-frame animation (GIF, or APNG with fmt "PNG")."""
    frames = [Image.new("RGB", (120, 90), color) for color in ((200, 30, 30), (30, 30, 200))]
    frames[0].save(path, fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
    return path


def tree_digest(*roots: Path) -> dict[str, str]:
    """sha256 of every regular file under `roots` (symlinks: their target path; files
    nobody may read: size and modification time)."""
    found: dict[str, str] = {}
    for root in roots:
        if not root.exists():
            continue
        for path in sorted(root.rglob("*")) if root.is_dir() else [root]:
            if path.is_symlink():
                found[str(path)] = "-> " + os.readlink(path)
            elif path.is_file():
                try:
                    found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
                except PermissionError:  # a file a test made unreadable: its metadata then
                    info = path.stat()
                    found[str(path)] = f"unreadable {info.st_size} {info.st_mtime_ns}"
    return found


# -- one run of the command -----------------------------------------------------------------
@dataclass
class Run:
    """What one `crosspost` run did: exit status, output, wall time, the --json payload."""

    argv: list[str]
    status: int
    out: str
    err: str
    elapsed_s: float

    @property
    def payload(self) -> dict[str, Any]:
        """The one JSON object `--json` printed."""
        lines = [line for line in self.out.splitlines() if line.strip()]
        assert len(lines) == 1, f"--json printed {len(lines)} lines:\n{self.out}"
        data = json.loads(lines[0])
        assert isinstance(data, dict)
        return data

    def describe(self) -> str:
        return f"argv {self.argv}\nstatus {self.status}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"


@dataclass
class LedgerRow:
    sha256: str
    platform: str
    image_name: str
    status: str
    post_id: str | None
    error: str | None
    attempts: int
    started_at: str | None
    finished_at: str | None


# -- an operator's folder -------------------------------------------------------------------
@dataclass
class Deployment:
    """An operator's set-up against the sandbox trio: `crosspost.toml`, `photos/`,
    `archive/`, `state/` (ledger and Instagram session), a log file; its own Telegram
    channel and e-mail recipient; a caption marker that finds its posts on every server."""

    root: Path
    sandboxes: Sandboxes
    site: Path
    capsys: pytest.CaptureFixture[str]
    marker: str = field(default_factory=lambda: f"rel{secrets.token_hex(4)}")
    runs: list[Run] = field(default_factory=list)
    extra_outputs: list[str] = field(default_factory=list)
    #: More secrets to look for (a wrong token a test passed, for instance).
    extra_secrets: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.photos = self.root / "photos"
        self.archive = self.root / "archive"
        self.state = self.root / "state"
        self.config = self.root / "crosspost.toml"
        self.ledger = self.state / "crosspost.sqlite3"
        self.session_file = self.state / "instagram-session.json"
        self.log_file = self.root / "logs" / "crosspost.jsonl"
        for folder in (self.photos, self.state):
            folder.mkdir(parents=True, exist_ok=True)
        self.chat = f"@{self.marker}"
        self.sandboxes.telegram.add_chat(self.chat)
        self.recipient = f"{self.marker}@upload.example"
        self.env_overrides: dict[str, str | None] = {}
        self._started: dict[int, tuple[list[str], Path, Path]] = {}
        self.configure()

    # -- configuration ---------------------------------------------------------------------
    def tables(self, timeouts: Mapping[str, float] | None = None) -> dict[str, dict[str, Any]]:
        """The three publisher tables pointing at the sandboxes."""
        sb = self.sandboxes
        limits = dict.fromkeys(PLATFORMS, HEALTHY_TIMEOUT_S) | dict(timeouts or {})
        return {
            "email": {
                "smtp_host": sb.smtp.host,
                "smtp_port": sb.smtp.starttls_port,
                "security": "starttls",
                "ca_file": sb.smtp.ca_path,
                "sender": sb.smtp.username,
                "recipient": self.recipient,
                "timeout_s": limits["email"],
            },
            "telegram": {
                "channel_id": self.chat,
                "api_base_url": sb.telegram.base_url,
                "timeout_s": limits["telegram"],
            },
            "instagram": {
                "username": sb.instagram.username,
                "session_file": "state/instagram-session.json",
                "proxy": sb.instagram.proxy_url,
                "ca_file": sb.instagram.ca_path,
                "timeout_s": limits["instagram"],
            },
        }

    def configure(
        self,
        *,
        timeouts: Mapping[str, float] | None = None,
        platforms: Sequence[str] = PLATFORMS,
        workflow: Mapping[str, Any] | None = None,
        tables: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> Path:
        """Write `crosspost.toml` for the sandbox trio (`tables` overrides keys)."""
        wf: dict[str, Any] = {
            "folder": "photos",
            "archive": "archive",
            "ledger": "state/crosspost.sqlite3",
            "timeout_s": HEALTHY_TIMEOUT_S,
        }
        wf.update(workflow or {})
        self.ledger = self.root / wf["ledger"]
        text = "[workflow]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in wf.items())
        base = self.tables(timeouts)
        for name in platforms:
            table = dict(base[name])
            table.update((tables or {}).get(name, {}))
            text += f"\n[publishers.{name}]\n"
            text += "".join(f"{k} = {toml_value(v)}\n" for k, v in table.items())
        self.config.write_text(text, encoding="utf-8")
        return self.config

    # -- images ----------------------------------------------------------------------------
    def caption_of(self, stem: str) -> str:
        return f"{self.marker}-{stem} evening light"

    def add_photo(self, stem: str, *, caption: str | None = None) -> Path:
        """A JPEG in the queue with its caption file (which carries the marker)."""
        path = make_jpeg(self.photos / f"{stem}.jpg", f"{self.marker}-{stem}")
        text = self.caption_of(stem) if caption is None else caption
        (self.photos / f"{stem}.txt").write_text(text + "\n", encoding="utf-8")
        return path

    # -- running ---------------------------------------------------------------------------
    def environ(self) -> dict[str, str]:
        """The subprocess environment: ours without CROSSPOST_*, the secrets, the harness."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("CROSSPOST_")}
        env.update(self.sandboxes.secrets())
        env["PYTHONPATH"] = os.pathsep.join(
            [str(self.site), *filter(None, [os.environ.get("PYTHONPATH")])]
        )
        for key, value in self.env_overrides.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    def argv(self, args: Sequence[str], *, verbose: bool, json_out: bool) -> list[str]:
        argv = list(args)
        if json_out and args and args[0] == "publish":
            argv.append("--json")
        argv += ["--config", str(self.config), "--log-file", str(self.log_file)]
        if verbose:
            argv.append("-vv")  # every logger at DEBUG, telemetry on stderr too
        return argv

    def run(
        self,
        *args: str,
        verbose: bool = True,
        json_out: bool = True,
        subprocess_run: bool = False,
        timeout_s: float = 90.0,
        umask: int = -1,
    ) -> Run:
        """`crosspost ARGS` (with --json, --config, --log-file and -vv unless told not to),
        in this process through `main()`, or as the real `crosspost` process."""
        argv = self.argv(args, verbose=verbose, json_out=json_out)
        if subprocess_run:
            started = time.perf_counter()
            done = subprocess.run(
                [str(CROSSPOST), *argv],
                cwd=self.root,
                env=self.environ(),
                capture_output=True,
                text=True,
                timeout=timeout_s,
                check=False,
                umask=umask,
            )
            run = Run(
                argv, done.returncode, done.stdout, done.stderr, time.perf_counter() - started
            )
        else:
            run = self._run_here(argv)
        self.runs.append(run)
        return run

    def _run_here(self, argv: list[str]) -> Run:
        self.capsys.readouterr()
        saved = {k: v for k, v in os.environ.items() if k.startswith("CROSSPOST_")}
        wanted = self.environ()
        try:
            for key in saved:
                del os.environ[key]
            os.environ.update({k: v for k, v in wanted.items() if k.startswith("CROSSPOST_")})
            started = time.perf_counter()
            status = main(argv)
            elapsed = time.perf_counter() - started
        finally:
            for key in [k for k in os.environ if k.startswith("CROSSPOST_")]:
                del os.environ[key]
            os.environ.update(saved)
        captured = self.capsys.readouterr()
        return Run(argv, status, captured.out, captured.err, elapsed)

    def start(self, *args: str, verbose: bool = True, umask: int = -1) -> subprocess.Popen[str]:
        """`crosspost ARGS` as a real process in its own session (for signals). Its output
        goes to files, not pipes: a debug log can fill a pipe and stall the process."""
        argv = self.argv(args, verbose=verbose, json_out=True)
        outputs = self.root / "outputs"
        outputs.mkdir(exist_ok=True)
        number = len(list(outputs.iterdir())) // 2
        out_path, err_path = outputs / f"{number}.out", outputs / f"{number}.err"
        with open(out_path, "w") as out, open(err_path, "w") as err:
            process = subprocess.Popen(
                [str(CROSSPOST), *argv],
                cwd=self.root,
                env=self.environ(),
                stdout=out,
                stderr=err,
                text=True,
                start_new_session=True,
                umask=umask,
            )
        self._started[process.pid] = (argv, out_path, err_path)
        return process

    def finish(self, process: subprocess.Popen[str], elapsed_s: float) -> Run:
        """Collect a process started with `start` (waiting for it to end)."""
        process.wait(timeout=60)
        argv, out_path, err_path = self._started.pop(process.pid)
        out = out_path.read_text(encoding="utf-8", errors="replace")
        err = err_path.read_text(encoding="utf-8", errors="replace")
        run = Run(argv, process.returncode, out, err, elapsed_s)
        self.runs.append(run)
        return run

    # -- what happened ---------------------------------------------------------------------
    def rows(self) -> dict[str, LedgerRow]:
        """The ledger's rows by platform (one image per test unless told otherwise)."""
        return {row.platform: row for row in self.all_rows()}

    def all_rows(self) -> list[LedgerRow]:
        if not self.ledger.exists():
            return []
        with contextlib.closing(self._connect()) as conn:
            try:
                found = conn.execute(
                    "SELECT sha256, platform, image_name, status, post_id, error, attempts, "
                    "started_at, finished_at FROM publishes ORDER BY image_name, platform"
                ).fetchall()
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):
                    return []  # a run is creating the ledger right now
                raise
        return [LedgerRow(*row) for row in found]

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.ledger, timeout=10)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError:
            conn.close()
            # A read-only folder or a full disk: SQLite cannot create its -shm file beside
            # the ledger, so read the file as it is (no run is writing it then).
            return sqlite3.connect(f"{self.ledger.as_uri()}?mode=ro&immutable=1", uri=True)
        return conn

    def integrity(self) -> str:
        with contextlib.closing(self._connect()) as conn:
            return str(conn.execute("PRAGMA integrity_check").fetchone()[0])

    def posts(self, stem: str) -> dict[str, int]:
        """How many posts of image `stem` each server holds (found by its caption marker)."""
        tag = f"{self.marker}-{stem}"
        sb = self.sandboxes
        mails = [
            m
            for m in list(sb.smtp.messages)
            if self.recipient in m.rcpt_tos and tag in str(m.message.get("subject", ""))
        ]
        photos = [p for p in sb.telegram.photos_in(self.chat) if tag in p.caption]
        igposts = [p for p in sb.instagram.posts if tag in (p.caption or "")]
        return {"email": len(mails), "telegram": len(photos), "instagram": len(igposts)}

    def post_ids(self, stem: str) -> dict[str, set[str]]:
        """The ids the servers gave the posts of `stem` (what the ledger must hold)."""
        tag = f"{self.marker}-{stem}"
        sb = self.sandboxes
        return {
            "email": {
                str(m.message.get("message-id", ""))
                for m in list(sb.smtp.messages)
                if self.recipient in m.rcpt_tos and tag in str(m.message.get("subject", ""))
            },
            "telegram": {
                str(p.message_id) for p in sb.telegram.photos_in(self.chat) if tag in p.caption
            },
            "instagram": {
                str(value)
                for p in sb.instagram.posts
                if tag in (p.caption or "")
                for value in (p.media_id, p.media_pk, p.code)
            },
        }

    def queued(self) -> list[str]:
        return sorted(p.name for p in self.photos.iterdir() if p.is_file())

    def archived(self) -> list[str]:
        if not self.archive.exists():
            return []
        return sorted(p.name for p in self.archive.iterdir())

    # -- secrets ---------------------------------------------------------------------------
    def secret_needles(self) -> dict[str, bytes]:
        """Every form in which a secret of this set-up could leak, by name."""
        sb = self.sandboxes
        user, password = sb.smtp.username.encode(), sb.smtp.password.encode()
        needles = {
            "telegram bot token": sb.telegram.token.encode(),
            "telegram bot token (URL-quoted)": quote(sb.telegram.token, safe="").encode(),
            "smtp password": password,
            "smtp password (AUTH LOGIN base64)": base64.b64encode(password),
            "smtp password (AUTH PLAIN base64)": base64.b64encode(b"\0" + user + b"\0" + password),
            "instagram password": sb.instagram.password.encode(),
            # An Instagram Authorization header value in any log is a session leak.
            "instagram bearer token": b"IGT:2:",
        }
        for number, secret in enumerate(self.extra_secrets):
            needles[f"extra secret #{number}"] = secret.encode()
        for number, session_id in enumerate(self.session_ids()):
            needles[f"instagram session id #{number}"] = session_id.encode()
            needles[f"instagram session id #{number} (unquoted)"] = unquote(session_id).encode()
        return needles

    def session_ids(self) -> list[str]:
        """The session ids held in the Instagram session file, if there is one."""
        if not self.session_file.exists():
            return []
        found: set[str] = set()

        def walk(value: Any) -> None:
            if isinstance(value, dict):
                for key, item in value.items():
                    if key == "sessionid" and isinstance(item, str) and len(item) > 8:
                        found.add(item)
                    walk(item)
            elif isinstance(value, list):
                for item in value:
                    walk(item)

        walk(json.loads(self.session_file.read_text(encoding="utf-8")))
        return sorted(found)

    def leaks(self) -> list[str]:
        """Where any secret appears: outputs of every run, the log, the ledger, the
        archive and every other file of the folder (the session file itself excepted)."""
        needles = self.secret_needles()
        places: list[tuple[str, bytes]] = []
        for number, run in enumerate(self.runs):
            places.append((f"run {number} stdout", run.out.encode()))
            places.append((f"run {number} stderr", run.err.encode()))
        places += [(f"output {n}", text.encode()) for n, text in enumerate(self.extra_outputs)]
        for path in sorted(self.root.rglob("*")):
            if path in (self.session_file, self.config) or not path.is_file() or path.is_symlink():
                continue  # the session file holds the session; the config is the test's input
            if path.name.startswith(f".{self.session_file.name}."):
                continue  # the session file's own atomic-write temporary
            with contextlib.suppress(OSError):
                places.append((str(path.relative_to(self.root)), path.read_bytes()))
        return [
            f"{name} in {where}"
            for where, data in places
            for name, needle in needles.items()
            if needle and needle in data
        ]

    def loose_secret_files(self) -> list[str]:
        """Secret-holding files readable by anyone but their owner."""
        candidates = [self.session_file, self.ledger]
        candidates += [self.ledger.with_name(self.ledger.name + s) for s in ("-wal", "-shm")]
        return [
            f"{path.name} mode {stat.S_IMODE(path.stat().st_mode):o}"
            for path in candidates
            if path.exists() and stat.S_IMODE(path.stat().st_mode) & 0o077
        ]


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


@pytest.fixture
def deployment(
    tmp_path: Path,
    sandboxes: Sandboxes,
    harness_site: Path,
    capsys: pytest.CaptureFixture[str],
    _instant_instagrapi_pauses: None,
) -> Iterator[Deployment]:
    """An operator's folder against the module's sandboxes; after the test, no secret may
    appear anywhere it wrote, and the secret files must be private."""
    deployment = Deployment(tmp_path / "operator", sandboxes, harness_site, capsys)
    yield deployment
    leaks = deployment.leaks()
    assert not leaks, "secrets leaked: " + "; ".join(leaks)
    loose = deployment.loose_secret_files()
    assert not loose, "secret files readable by others: " + "; ".join(loose)


# -- processes ------------------------------------------------------------------------------
def wait_for(condition: Callable[[], Any], timeout_s: float = 30.0, what: str = "") -> Any:
    """Poll `condition` until it returns something true; fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    delay = 0.005
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what or condition}")
        time.sleep(delay)  # polling an outside process: there is no event to wait on
        delay = min(delay * 2, 0.05)


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces: split after its closing parenthesis.
    return raw[raw.rindex(")") + 2 :].split()


def processes_of_session(sid: int) -> list[int]:
    """Live processes whose session id is `sid` (zombies count as left behind too)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        # fields[0] is the state, [1] ppid, [2] pgrp, [3] session
        if fields is not None and int(fields[3]) == sid:
            found.append(int(entry.name))
    return found


def thread_count(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return 0


def kill_hard(process: subprocess.Popen[str]) -> None:
    os.kill(process.pid, signal.SIGKILL)


# -- file systems the tests can break -------------------------------------------------------
class Mounts:
    """Small tmpfs mounts (root only), unmounted at the end of the test."""

    def __init__(self) -> None:
        self.mounted: list[Path] = []

    @staticmethod
    def available() -> str | None:
        """None when tmpfs can be mounted here, else why not."""
        if os.geteuid() != 0:
            return "mounting a small tmpfs needs root"
        if shutil.which("mount") is None:
            return "no mount command"
        return None

    def tmpfs(self, where: Path, size: str = "2m") -> Path:
        where.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs in this environment: {done.stderr.strip()}")
        self.mounted.append(where)
        return where

    def cleanup(self) -> None:
        for where in reversed(self.mounted):
            subprocess.run(["umount", "-l", str(where)], check=False, capture_output=True)


class ReadOnly:
    """Makes folders read-only for the process under test, and writable again.

    File modes stop nobody running as root, so as root the folder is bind-mounted onto
    itself read-only: the same file system (an atomic rename would still be possible), but
    every write fails with EROFS, as after a remount on disk errors.
    """

    def __init__(self) -> None:
        self.sealed: list[Path] = []

    def seal(self, folder: Path) -> None:
        if os.geteuid() != 0:
            folder.chmod(0o555)
        else:
            for argv in (
                ["mount", "--bind", str(folder), str(folder)],
                ["mount", "-o", "remount,bind,ro", str(folder)],
            ):
                done = subprocess.run(argv, capture_output=True, text=True, check=False)
                if done.returncode != 0:
                    self.unseal(folder)
                    pytest.skip(
                        f"running as root and cannot bind-mount read-only here "
                        f"({done.stderr.strip()}): file modes would not stop root"
                    )
                if argv[1] == "--bind":
                    self.sealed.append(folder)
            assert not os.access(folder, os.W_OK)
            return
        self.sealed.append(folder)

    def unseal(self, folder: Path) -> None:
        if folder not in self.sealed:
            return
        self.sealed.remove(folder)
        if os.geteuid() != 0:
            folder.chmod(0o755)
        else:
            subprocess.run(["umount", str(folder)], check=False, capture_output=True)

    def cleanup(self) -> None:
        for folder in list(reversed(self.sealed)):
            self.unseal(folder)


@pytest.fixture
def read_only() -> Iterator[ReadOnly]:
    helper = ReadOnly()
    yield helper
    helper.cleanup()


@pytest.fixture
def mounts() -> Iterator[Mounts]:
    reason = Mounts.available()
    if reason is not None:
        pytest.skip(reason)
    helper = Mounts()
    yield helper
    helper.cleanup()


def fill_disk(folder: Path) -> Path:
    """Write a filler file into `folder` until its file system is full."""
    filler = folder / "filler.bin"
    block = b"\0" * 4096
    with open(filler, "wb", buffering=0) as handle, contextlib.suppress(OSError):
        while True:
            handle.write(block)
    with contextlib.suppress(OSError), open(filler, "ab", buffering=0) as handle:
        while True:
            handle.write(b"\0")
    return filler


@pytest.fixture
def helpers() -> types.SimpleNamespace:
    """Module-level helpers for the test modules (they cannot import this conftest)."""
    return types.SimpleNamespace(
        make_jpeg=make_jpeg,
        make_png_bomb=make_png_bomb,
        make_animation=make_animation,
        tree_digest=tree_digest,
        wait_for=wait_for,
        processes_of_session=processes_of_session,
        thread_count=thread_count,
        kill_hard=kill_hard,
        fill_disk=fill_disk,
        PLATFORMS=PLATFORMS,
        FAULTY_TIMEOUT_S=FAULTY_TIMEOUT_S,
        HEALTHY_TIMEOUT_S=HEALTHY_TIMEOUT_S,
    )
