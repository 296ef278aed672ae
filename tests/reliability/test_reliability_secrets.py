"""Secrets: the bot token, the SMTP password, the Instagram password and session id never
appear in a log line, an error message, the ledger, a `--json` output or the archive, with
every logger at DEBUG and the JSON-lines log file on; and the files that hold them are
created private (0600) whatever the umask.

Each run here is the real `crosspost` process, which knows only the secrets it was given
(a run inside the test process would share the redaction registry of earlier runs and
could hide a secret a fresh process forgets to register). Every other test of this suite
is scanned the same way when it ends (see `Deployment.leaks`).
"""

from __future__ import annotations

import json
import secrets
import stat
from typing import Any

PLATFORMS = ("email", "telegram", "instagram")


def _mode(path: Any) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_no_secret_in_any_output_log_ledger_or_archive_through_success_and_failures(
    deployment: Any, sandboxes: Any
) -> None:
    def publish(*args: str) -> Any:
        return deployment.run("publish", *args, subprocess_run=True)

    # A healthy run: logs in to Instagram with the password and saves the session.
    deployment.add_photo("first")
    assert publish().status == 0
    assert deployment.session_ids(), "no session id was saved: nothing to look for"

    # Every platform refuses the credentials; Instagram's saved session is dead, so the
    # password goes out again and is refused.
    deployment.add_photo("second")
    sandboxes.smtp.inject("reject_auth")
    sandboxes.telegram.inject("unauthorized", operation="sendPhoto", times=None)
    sandboxes.instagram.expire_sessions()
    sandboxes.instagram.inject("bad_password", operation="login")
    refused = publish()
    assert refused.status == 1, refused.describe()
    assert sorted(refused.payload["failed_platforms"]) == sorted(PLATFORMS)
    sandboxes.reset()

    # A wrong bot token is a secret too.
    wrong = f"{sandboxes.telegram.bot_id}:AA{secrets.token_urlsafe(24)}"
    deployment.extra_secrets.append(wrong)
    deployment.env_overrides["CROSSPOST_TELEGRAM_BOT_TOKEN"] = wrong
    rejected = publish("--only", "telegram")
    assert rejected.status == 1, rejected.describe()
    deployment.env_overrides.clear()

    # check, preview, and the run that completes and archives the second image.
    check = deployment.run("check", subprocess_run=True)
    assert check.status == 0, check.describe()
    preview = publish("--preview")
    assert preview.status == 0, preview.describe()
    done = publish()
    assert done.status == 0, done.describe()
    assert done.payload["archived"] is True
    assert deployment.archived() == ["first.jpg", "first.txt", "second.jpg", "second.txt"]

    # The scan is only worth something if the libraries really logged at DEBUG.
    records = [json.loads(line) for line in deployment.log_file.read_text().splitlines()]
    debug_loggers = {r["logger"].split(".")[0] for r in records if r.get("level") == "DEBUG"}
    assert {"httpcore", "telegram", "urllib3"} <= debug_loggers, debug_loggers
    assert any("instagrapi" in r["logger"] for r in records if r.get("level") == "DEBUG")
    leaks = deployment.leaks()
    assert not leaks, "secrets leaked: " + "; ".join(leaks)


def test_session_and_ledger_files_are_private_even_under_umask_000(
    deployment: Any, sandboxes: Any, helpers: Any
) -> None:
    deployment.add_photo("open")
    run = deployment.run("publish", subprocess_run=True, umask=0)
    assert run.status == 0, run.describe()
    assert _mode(deployment.session_file) == 0o600
    assert _mode(deployment.ledger) == 0o600

    # SQLite's journal files exist while a run is going on (and after a crash).
    deployment.add_photo("held")
    before = sandboxes.instagram.counters["faults"]
    sandboxes.instagram.inject("hang", operation="configure")
    process = deployment.start("publish", umask=0)
    try:
        helpers.wait_for(
            lambda: sandboxes.instagram.counters["faults"] > before, what="instagram in flight"
        )
        journals = [
            deployment.ledger.with_name(deployment.ledger.name + s) for s in ("-wal", "-shm")
        ]
        assert all(path.exists() for path in journals)
        assert {path.name: _mode(path) for path in journals} == {p.name: 0o600 for p in journals}
    finally:
        helpers.kill_hard(process)
        deployment.finish(process, 0.0)
    assert _mode(deployment.session_file) == 0o600


def test_the_leak_scan_finds_a_planted_secret_wherever_it_is(
    deployment: Any, sandboxes: Any
) -> None:
    """The scan that guards every test of this suite can fail."""
    import base64
    import contextlib
    import sqlite3

    deployment.add_photo("plant")
    assert deployment.run("publish").status == 0
    password = sandboxes.smtp.password
    plain = base64.b64encode(f"\0{sandboxes.smtp.username}\0{password}".encode()).decode()
    planted = {
        deployment.archive / "plant.txt": f"token {sandboxes.telegram.token}\n",
        deployment.log_file: f'{{"message": "AUTH PLAIN {plain}"}}\n',
    }
    originals = {path: path.read_bytes() for path in planted}
    for path, text in planted.items():
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(text)
    with contextlib.closing(sqlite3.connect(deployment.ledger)) as conn, conn:
        conn.execute("UPDATE publishes SET error = ?", (f"x {sandboxes.instagram.password}",))
    deployment.extra_outputs.append(f"cookie sessionid={deployment.session_ids()[0]}")
    try:
        found = deployment.leaks()
        assert any("telegram bot token in archive" in leak for leak in found), found
        assert any("AUTH PLAIN" in leak and "logs" in leak for leak in found), found
        assert any(leak.startswith("instagram password in state") for leak in found), found
        assert any(leak.startswith("instagram session id") for leak in found), found
    finally:
        for path, data in originals.items():
            path.write_bytes(data)
        with contextlib.closing(sqlite3.connect(deployment.ledger)) as conn, conn:
            conn.execute("PRAGMA secure_delete = ON")
            conn.execute("UPDATE publishes SET error = NULL")
        deployment.extra_outputs.clear()
    assert deployment.leaks() == []
