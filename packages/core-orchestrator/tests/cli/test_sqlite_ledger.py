"""The SQLite ledger: private file, WAL, one row per image x platform, rerun semantics, the
run lock, and read-only opening that writes nothing."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from crosspost_orchestrator import PublishResult
from crosspost_orchestrator.errors import LedgerError
from crosspost_orchestrator.ledger import Ledger
from crosspost_orchestrator.sqlite_ledger import SqliteLedger

DIGEST = "ab" * 32


@pytest.fixture
def ledger(tmp_path: Path) -> SqliteLedger:
    opened = SqliteLedger(tmp_path / "ledger.sqlite3").open()
    yield opened
    opened.close()


def test_ledger_file_is_created_private_even_with_a_permissive_umask(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    old = os.umask(0)
    try:
        with SqliteLedger(path) as ledger:
            assert isinstance(ledger, Ledger)
            ledger.preflight()
            for side in [path, path.with_name(path.name + "-wal")]:
                if side.exists():
                    assert stat.S_IMODE(side.stat().st_mode) == 0o600, side
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_ledger_uses_wal(ledger: SqliteLedger) -> None:
    conn = sqlite3.connect(ledger.path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


async def test_only_published_rows_count_and_attempts_add_up(ledger: SqliteLedger) -> None:
    await ledger.record_start(DIGEST, "a.jpg", "telegram")
    await ledger.record_start(DIGEST, "a.jpg", "email")
    assert await ledger.published_platforms(DIGEST) == set()
    await ledger.record_result(
        DIGEST, "a.jpg", PublishResult(False, "telegram", error="flood", attempts=2)
    )
    await ledger.record_result(DIGEST, "a.jpg", PublishResult(True, "email", post_id="<id@x>"))
    assert await ledger.published_platforms(DIGEST) == {"email"}
    # The rerun: only telegram goes again.
    await ledger.record_start(DIGEST, "a.jpg", "telegram")
    await ledger.record_result(DIGEST, "a.jpg", PublishResult(True, "telegram", post_id="42"))
    assert await ledger.published_platforms(DIGEST) == {"email", "telegram"}
    rows = {row.platform: row for row in ledger.rows(DIGEST)}
    assert len(ledger.rows()) == 2
    assert rows["telegram"].attempts == 3
    assert rows["telegram"].post_id == "42"
    assert rows["telegram"].error is None
    assert rows["email"].post_id == "<id@x>"
    for row in rows.values():
        assert row.status == "published"
        assert row.image_name == "a.jpg"
        assert row.started_at is not None
        assert row.finished_at is not None
        assert row.started_at <= row.finished_at


async def test_results_survive_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite3"
    with SqliteLedger(path) as ledger:
        await ledger.record_result(DIGEST, "a.jpg", PublishResult(True, "email"))
    with SqliteLedger(path) as ledger:
        assert await ledger.published_platforms(DIGEST) == {"email"}


async def test_concurrent_writes_from_the_loop_all_land(ledger: SqliteLedger) -> None:
    digests = [f"{i:064x}" for i in range(30)]
    await asyncio.gather(
        *(
            ledger.record_result(d, f"{i}.jpg", PublishResult(True, "email"))
            for i, d in enumerate(digests)
        )
    )
    assert len(ledger.rows()) == 30


def test_readonly_ledger_of_a_missing_file_is_empty_and_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "none.sqlite3"
    with SqliteLedger(path, readonly=True) as ledger:
        assert asyncio.run(ledger.published_platforms(DIGEST)) == set()
        with pytest.raises(LedgerError, match="read-only"):
            ledger.preflight()
    assert list(tmp_path.iterdir()) == []


async def test_readonly_ledger_reads_rows_and_leaves_no_journal_files(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite3"
    with SqliteLedger(path) as ledger:
        await ledger.record_result(DIGEST, "a.jpg", PublishResult(True, "email"))
    before = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    with SqliteLedger(path, readonly=True) as ledger:
        assert await ledger.published_platforms(DIGEST) == {"email"}
        with pytest.raises(LedgerError):
            await ledger.record_start(DIGEST, "a.jpg", "telegram")
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == before


def test_second_run_lock_on_the_same_ledger_is_refused_with_a_clear_message(
    ledger: SqliteLedger,
) -> None:
    with ledger.run_lock():
        with pytest.raises(LedgerError) as info:
            SqliteLedger(ledger.path).run_lock().acquire()
        assert str(info.value) == (
            f"another crosspost run holds {ledger.path}; try again when it finishes"
        )
    with ledger.run_lock() as lock:
        assert stat.S_IMODE(lock.path.stat().st_mode) == 0o600


def test_run_lock_held_by_another_process_is_refused(ledger: SqliteLedger) -> None:
    with subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600);"
            "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); sys.stdin.read()",
            str(ledger.path) + ".lock",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        assert holder.stdout is not None
        assert holder.stdin is not None
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LedgerError, match="another crosspost run holds"):
            ledger.run_lock().acquire()
        holder.stdin.close()
        holder.wait(timeout=10)
    # The kernel dropped the lock with the process: the next run goes ahead.
    with ledger.run_lock():
        pass


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write to any file")
def test_preflight_reports_a_ledger_that_cannot_be_written(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite3"
    with SqliteLedger(path):
        pass
    path.chmod(0o400)
    with SqliteLedger(path) as ledger, pytest.raises(LedgerError, match="cannot be written"):
        ledger.preflight()
