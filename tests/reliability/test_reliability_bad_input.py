"""Bad input through the `crosspost` command, one case per row: a one-line message naming
the problem, exit status 2, no traceback, no platform contacted, no ledger row, and every
input file (photos, caption files, the config) byte for byte as it was. The same case with
`--json` gives one JSON object saying the same.

Two rows of the issue's table are not refusals, by the CLI's documented design (`crosspost
publish --help`): control characters in a caption are removed (newlines and tabs kept), and
each platform shortens a caption to its own limit. A caption of 100 000 characters is
therefore published, cut for each platform; a caption with control characters and a NUL is
published without them. Those two have their own tests below, with the same guarantees
about input files and secrets.
"""

from __future__ import annotations

import json
import os
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

PLATFORMS = ("email", "telegram", "instagram")


@dataclass(frozen=True)
class Case:
    """`prepare(deployment, helpers)` sets the case up and returns the arguments after
    `publish`; the message must contain one of `words` (case-insensitive)."""

    id: str
    prepare: Callable[[Any, Any], list[str]]
    words: tuple[str, ...]


def _image(name: str, write: Callable[[Path, Any], object]) -> Callable[[Any, Any], list[str]]:
    def prepare(deployment: Any, helpers: Any) -> list[str]:
        path = deployment.photos / name
        write(path, helpers)
        return [str(path)]

    return prepare


def _truncated(path: Path, helpers: Any) -> None:
    helpers.make_jpeg(path, "truncated")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _unreadable(path: Path, helpers: Any) -> None:
    if os.geteuid() != 0:
        helpers.make_jpeg(path, "unreadable")
        path.chmod(0)
        return
    # File modes stop nobody running as root; a kernel file that is write-only even for
    # root fails the same way (EACCES on open).
    target = Path("/proc/sys/vm/drop_caches")
    if not target.exists():
        pytest.skip("running as root without /proc/sys/vm/drop_caches: no unreadable file")
    path.symlink_to(target)


def _config(edit: Callable[[str, Any], str]) -> Callable[[Any, Any], list[str]]:
    def prepare(deployment: Any, helpers: Any) -> list[str]:
        deployment.add_photo("fine")
        text = deployment.config.read_text(encoding="utf-8")
        deployment.config.write_text(edit(text, deployment), encoding="utf-8")
        return []

    return prepare


def _sidecar(encoding: str) -> Callable[[Any, Any], list[str]]:
    def prepare(deployment: Any, helpers: Any) -> list[str]:
        deployment.add_photo("cafe")
        text = f"{deployment.caption_of('cafe')} au café, crème brûlée\n"
        (deployment.photos / "cafe.txt").write_bytes(text.encode(encoding))
        return []

    return prepare


def _without_secret(deployment: Any, helpers: Any) -> list[str]:
    deployment.add_photo("fine")
    deployment.env_overrides["CROSSPOST_EMAIL_PASSWORD"] = None
    return []


def _secret_in_toml(text: str, deployment: Any) -> str:
    token = deployment.sandboxes.telegram.token
    return text.replace(
        "[publishers.telegram]\n", f'[publishers.telegram]\nbot_token = "{token}"\n'
    )


CASES = [
    Case("missing-file", lambda d, h: [str(d.photos / "missing.jpg")], ("not found", "no such")),
    Case("directory", _image("album.jpg", lambda p, h: p.mkdir()), ("not a file", "folder", "directory")),
    Case("empty-file", _image("empty.jpg", lambda p, h: p.write_bytes(b"")), ("empty", "0 bytes", "not an image", "cannot identify")),
    Case("text-named-jpg", _image("notes.jpg", lambda p, h: p.write_text("shopping list: eggs, milk\n")), ("not an image", "cannot identify", "not a jpeg", "unrecognised", "unrecognized", "unknown format")),
    Case("truncated-jpeg", _image("cut.jpg", _truncated), ("truncated", "incomplete", "corrupt", "damaged", "broken")),
    Case("png-20000x20000", _image("huge.png", lambda p, h: h.make_png_bomb(p)), ("pixel", "bomb", "too large", "20000")),
    Case("animated-gif", _image("loop.gif", lambda p, h: h.make_animation(p, "GIF")), ("gif", "not an image file", "use one of")),
    Case("animated-gif-named-jpg", _image("loop.jpg", lambda p, h: h.make_animation(p, "GIF")), ("animat", "gif", "frames")),
    Case("animated-png", _image("loop.png", lambda p, h: h.make_animation(p, "PNG")), ("animat", "frames")),
    Case("unreadable-file", _image("locked.jpg", _unreadable), ("cannot read", "permission", "cannot be read")),
    Case("sidecar-latin-1", _sidecar("latin-1"), ("utf-8",)),
    Case("sidecar-utf-16", _sidecar("utf-16"), ("utf-8",)),
    Case("toml-syntax-error", _config(lambda t, d: t.replace("[workflow]", "[workflow")), ("toml", "syntax")),
    Case("unknown-workflow-key", _config(lambda t, d: t.replace("[workflow]\n", "[workflow]\ncolour = \"blue\"\n")), ("colour",)),
    Case("unknown-publisher-key", _config(lambda t, d: t.replace("[publishers.email]\n", "[publishers.email]\ncolour = \"blue\"\n")), ("colour",)),
    Case("wrong-type-timeout", _config(lambda t, d: t.replace("timeout_s = 20.0\n", 'timeout_s = "fast"\n', 1)), ("timeout_s",)),
    Case("wrong-type-port", _config(lambda t, d: t.replace(f"smtp_port = {d.sandboxes.smtp.starttls_port}", f'smtp_port = "{d.sandboxes.smtp.starttls_port}"')), ("smtp_port",)),
    Case("secret-in-toml", _config(_secret_in_toml), ("crosspost_telegram_bot_token",)),
    Case("secret-missing", _without_secret, ("crosspost_email_password",)),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input_is_refused_in_one_line_before_any_platform(
    deployment: Any, sandboxes: Any, helpers: Any, case: Case
) -> None:
    args = case.prepare(deployment, helpers)
    inputs = helpers.tree_digest(deployment.photos, deployment.config)
    contacts = sandboxes.contacts()

    run = deployment.run("publish", *args, verbose=False, json_out=False)
    assert run.status == 2, run.describe()
    assert "Traceback" not in run.out + run.err
    lines = [line for line in run.err.splitlines() if line.strip()]
    assert len(lines) == 1, run.describe()
    message = lines[0]
    assert message.startswith("crosspost: "), message
    assert any(word in message.lower() for word in case.words), f"{case.words}: {message}"

    # Again with --json, and every logger at DEBUG into the log file (scanned for secrets).
    as_json = deployment.run("publish", *args, verbose=True, json_out=True)
    assert as_json.status == 2, as_json.describe()
    assert "Traceback" not in as_json.out + as_json.err
    payload = as_json.payload
    assert payload["success"] is False
    assert payload["exit_code"] == 2
    assert payload["error"] == message.removeprefix("crosspost: ")

    assert sandboxes.contacts() == contacts, "a platform was contacted"
    assert deployment.all_rows() == []
    assert helpers.tree_digest(deployment.photos, deployment.config) == inputs
    assert deployment.archived() == []


def _delivered_captions(deployment: Any, stem: str) -> dict[str, str]:
    tag = f"{deployment.marker}-{stem}"
    sb = deployment.sandboxes
    mails = [m for m in sb.smtp.messages if deployment.recipient in m.rcpt_tos]
    (mail,) = [m for m in mails if tag in str(m.message.get("subject", ""))]
    (photo,) = [p for p in sb.telegram.photos_in(deployment.chat) if tag in p.caption]
    (post,) = [p for p in sb.instagram.posts if tag in (p.caption or "")]
    return {
        "email": str(mail.message.get("subject", "")),
        "telegram": photo.caption,
        "instagram": post.caption or "",
    }


def test_caption_of_100000_characters_is_cut_to_each_platform_limit(
    deployment: Any, helpers: Any
) -> None:
    image = deployment.add_photo("long")
    inputs = {p.name: p.read_bytes() for p in deployment.photos.iterdir()}
    head = f"{deployment.marker}-long "
    caption = head + ("lorem ipsum " * 10_000)[: 100_000 - len(head)]
    assert len(caption) == 100_000

    run = deployment.run("publish", str(image), "--caption", caption)
    assert run.status == 0, run.describe()[:3000]
    captions = _delivered_captions(deployment, "long")
    limits = {"email": 240, "telegram": 1024, "instagram": 2200}
    for platform, limit in limits.items():
        assert 0 < len(captions[platform]) <= limit, (platform, len(captions[platform]))
    assert captions["telegram"].startswith(head.strip())
    assert captions["instagram"].startswith(head.strip())
    assert {name: (deployment.archive / name).read_bytes() for name in inputs} == inputs


def test_control_characters_and_nul_in_a_caption_are_removed(deployment: Any, helpers: Any) -> None:
    deployment.add_photo("ctrl")
    sidecar = deployment.photos / "ctrl.txt"
    dirty = f"{deployment.marker}-ctrl red\x1b[31m alert\x00 bell\x07 end\x7f\n"
    sidecar.write_text(dirty, encoding="utf-8")
    inputs = {p.name: p.read_bytes() for p in deployment.photos.iterdir()}

    run = deployment.run("publish")
    assert run.status == 0, run.describe()
    for platform, text in _delivered_captions(deployment, "ctrl").items():
        controls = [
            hex(ord(c)) for c in text if unicodedata.category(c) == "Cc" and c not in "\n\t"
        ]
        assert not controls, f"{platform} got control characters {controls} in {text!r}"
        for word in ("red", "alert", "bell", "end"):
            assert word in text, (platform, text)
    assert {name: (deployment.archive / name).read_bytes() for name in inputs} == inputs

    # And through --caption (an argument cannot hold a NUL, but escapes and bells it can).
    image = deployment.add_photo("argv")
    run = deployment.run(
        "publish", str(image), "--caption", f"{deployment.marker}-argv \x1b]0;title\x07 plain"
    )
    assert run.status == 0, run.describe()
    for platform, text in _delivered_captions(deployment, "argv").items():
        assert "\x1b" not in text, (platform, text)
        assert "\x07" not in text, (platform, text)
        assert "plain" in text
    assert json.loads(run.out)["archived"] is True
