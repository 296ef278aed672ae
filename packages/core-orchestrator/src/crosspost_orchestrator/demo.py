"""`crosspost demo`: the whole job, end to end, with no account and no network.

It starts the loopback servers of `crosspost-sandbox` (SMTP, the Telegram Bot API, Instagram's
private API) in background threads, writes a throw-away `crosspost.toml` and `.env` for them
in a temporary folder, puts the bundled sample photo in that folder's queue, and runs the
normal `crosspost publish` path: plugins found through their entry points, the live display,
the result table and the timeline. Then it saves what each server received (the e-mail as an
`.eml`, the photos as files) next to the config and says where to look.

The sandbox and the publishers are reached only by name (entry points, `importlib`): the core
package depends on none of them.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.resources
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

from crosspost_orchestrator.plugins import discover_publishers, install_hint

__all__ = ["DEMO_CAPTION", "DEMO_PLATFORMS", "run_demo", "sample_photo"]

DEMO_PLATFORMS = ("email", "telegram", "instagram")
DEMO_CAPTION = "Sunset over the hills, sent everywhere at once #crosspost #demo"
_SANDBOXES = {
    "email": ("crosspost_sandbox.smtp", "SmtpSandbox"),
    "telegram": ("crosspost_sandbox.telegram", "TelegramSandbox"),
    "instagram": ("crosspost_sandbox.instagram", "InstagramSandbox"),
}
_RECIPIENT = "1234567@upload.fetlife.example"


class DemoUnavailable(Exception):
    """A part the demo needs is not installed; the message says what to install."""


@contextlib.contextmanager
def sample_photo() -> Iterator[Path]:
    """The bundled sample photo (4000x3000 JPEG, a few MB) as a file path."""
    resource = importlib.resources.files("crosspost_orchestrator").joinpath("data/sample.jpg")
    with importlib.resources.as_file(resource) as path:
        yield Path(path)


def _sandbox_classes() -> dict[str, Any]:
    classes = {}
    for platform, (module_name, class_name) in _SANDBOXES.items():
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise DemoUnavailable(
                f"crosspost demo needs crosspost-sandbox ({module_name} cannot be imported: "
                f"{exc}): install crosspost-sandbox, or run it from the crosspost workspace "
                "with `uv run crosspost demo`"
            ) from exc
        classes[platform] = getattr(module, class_name)
    missing = [p for p in DEMO_PLATFORMS if p not in discover_publishers()]
    if missing:
        hints = ", ".join(install_hint(p) for p in missing)
        raise DemoUnavailable(f"crosspost demo needs every publisher: install {hints}")
    return classes


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def _write_config(workdir: Path, smtp: Any, telegram: Any, instagram: Any) -> Path:
    config = workdir / "crosspost.toml"
    lines = [
        "# Written by `crosspost demo` for its loopback sandbox servers; secrets are in .env.",
        "[workflow]",
        'folder = "photos"',
        'archive = "photos/archive"',
        'ledger = "crosspost.sqlite3"',
        "timeout_s = 30",
        "",
        "[publishers.email]",
        f"smtp_host = {_toml_string(smtp.host)}",
        f"smtp_port = {smtp.starttls_port}",
        'security = "starttls"',
        f"ca_file = {_toml_string(smtp.ca_path)}",
        f"sender = {_toml_string(smtp.username)}",
        f"recipient = {_toml_string(_RECIPIENT)}",
        'caption_target = "subject"',
        "",
        "[publishers.telegram]",
        f"channel_id = {_toml_string(telegram.channel_id)}",
        f"api_base_url = {_toml_string(telegram.base_url)}",
        "",
        "[publishers.instagram]",
        f"username = {_toml_string(instagram.username)}",
        'session_file = "instagram-session.json"',
        f"proxy = {_toml_string(instagram.proxy_url)}",
        f"ca_file = {_toml_string(instagram.ca_path)}",
        "",
    ]
    config.write_text("\n".join(lines), encoding="utf-8")
    _write_private(
        workdir / ".env",
        "\n".join(
            [
                "# The sandbox servers' throw-away credentials.",
                f"CROSSPOST_EMAIL_PASSWORD={smtp.password}",
                f"CROSSPOST_TELEGRAM_BOT_TOKEN={telegram.token}",
                f"CROSSPOST_INSTAGRAM_PASSWORD={instagram.password}",
                "",
            ]
        ),
    )
    return config


def _kb(size: int) -> str:
    return f"{size / 1024:.0f} KB" if size < 2**20 else f"{size / 2**20:.1f} MB"


def _save_received(received: Path, smtp: Any, telegram: Any, instagram: Any) -> list[str]:
    """Write what each server received into `received`; one description line each."""
    received.mkdir(exist_ok=True)
    lines: list[str] = []
    for number, message in enumerate(smtp.messages, start=1):
        eml = received / f"email-{number}.eml"
        eml.write_bytes(message.raw)
        parsed = message.message
        description = f"email      {eml}  (subject {str(parsed.get('subject', ''))!r}"
        for index, part in enumerate(parsed.iter_attachments(), start=1):
            payload = part.get_content()
            if isinstance(payload, bytes | bytearray):
                suffix = Path(part.get_filename() or "photo.jpg").suffix or ".jpg"
                photo = received / f"email-{number}-attachment-{index}{suffix}"
                photo.write_bytes(bytes(payload))
                description += f"; attachment {photo.name}, {_kb(len(payload))}"
        lines.append(description + ")")
    for photo in telegram.photos:
        path = (
            received / f"telegram-{photo.message_id}.{photo.format.lower().replace('jpeg', 'jpg')}"
        )
        path.write_bytes(photo.data)
        lines.append(
            f"telegram   {path}  ({photo.chat_id}, message {photo.message_id}, "
            f"{photo.width}x{photo.height}, {_kb(photo.size_bytes)})"
        )
    for post in instagram.posts:
        path = received / f"instagram-{post.code}.{post.format.lower().replace('jpeg', 'jpg')}"
        path.write_bytes(post.data)
        lines.append(
            f"instagram  {path}  (post {post.code}, {post.width}x{post.height}, {_kb(len(post.data))})"
        )
    return lines


def run_demo(
    *,
    out: TextIO,
    err: TextIO,
    configure_logging: Callable[[str], None] | None = None,
    workdir: str | os.PathLike[str] | None = None,
) -> int:
    """Run the demo; returns the exit status (0 when all three platforms got the photo).

    `configure_logging(path)` is called with the demo's telemetry file (the CLI points its
    JSON-lines log there unless `--log-file` was given). `workdir` defaults to a new
    temporary folder, which is kept so its files can be looked at.
    """
    # Imported here: the demo is the one command that needs publish_command's whole stack.
    from crosspost_orchestrator.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, publish_command

    try:
        classes = _sandbox_classes()
    except DemoUnavailable as exc:
        err.write(f"crosspost: {exc}\n")
        return EXIT_USAGE
    folder = (
        Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="crosspost-demo-"))
    )
    folder.mkdir(parents=True, exist_ok=True)
    photos = folder / "photos"
    photos.mkdir(exist_ok=True)
    with sample_photo() as sample:
        (photos / "sunset.jpg").write_bytes(sample.read_bytes())
    (photos / "sunset.txt").write_text(DEMO_CAPTION + "\n", encoding="utf-8")
    telemetry = folder / "telemetry.jsonl"
    if configure_logging is not None:
        configure_logging(str(telemetry))

    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        # aiosmtpd logs every SMTP command at INFO: keep the demo's telemetry file about crosspost.
        smtp = stack.enter_context(
            classes["email"](library_log_level=logging.WARNING).run_in_thread()
        )
        telegram = stack.enter_context(classes["telegram"]().run_in_thread())
        instagram = stack.enter_context(classes["instagram"]().run_in_thread())
        boot_ms = round((time.perf_counter() - started) * 1000)
        config = _write_config(folder, smtp, telegram, instagram)
        out.write(
            f"crosspost demo: sandbox servers up on 127.0.0.1 in {boot_ms} ms "
            f"(SMTP :{smtp.starttls_port}, Telegram Bot API :{telegram.port}, "
            f"Instagram :{instagram.port}); working in {folder}\n\n"
        )
        out.flush()
        status = publish_command(
            config,
            out=out,
            err=err,
            environ={},
            notes=[
                f"photo: the bundled sample, {_kb((photos / 'sunset.jpg').stat().st_size)}, "
                "4000x3000; each platform gets its own rendition",
                "instagrapi, Instagram's client, pauses by design (about 1 s before its "
                "requests, 3 s per upload) and this first run logs in: expect ~9 s there",
            ],
        )
        received = _save_received(folder / "received", smtp, telegram, instagram)
        delivered = {
            "email": len(smtp.messages),
            "telegram": len(telegram.photos),
            "instagram": len(instagram.posts),
        }
    out.write("\nwhat the sandbox servers received (open these files to look):\n")
    for line in received or ["(nothing)"]:
        out.write(f"  {line}\n")
    out.write(
        f"\nconfig: {config} (secrets in {folder / '.env'})\n"
        f"telemetry: {telemetry}  ->  crosspost stats {telemetry}\n"
        f"demo finished in {time.perf_counter() - started:.1f} s\n"
    )
    out.flush()
    if status == EXIT_OK and all(delivered.values()):
        return EXIT_OK
    return status if status != EXIT_OK else EXIT_FAILED
