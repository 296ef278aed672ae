"""The operator's ledger: a SQLite file recording, per image content hash and platform, what
happened (status, post id, error, attempts, start and end time), written as each platform
finishes, so a rerun never posts twice to a platform that already has the image.

The run lock is an exclusive, non-blocking `flock` on `<ledger>.lock`: a second run on the
same ledger stops at once with a clear message instead of waiting (a scheduled run simply
tries again next time). The lock is released by the kernel when the process ends, however it
ends, so a crash never leaves a stale lock behind.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from crosspost_logs import utc_timestamp
from crosspost_orchestrator.errors import LedgerError
from crosspost_orchestrator.ledger import LedgerEntry
from crosspost_orchestrator.results import PublishResult, PublishStatus

__all__ = ["LedgerRow", "RunLock", "SqliteLedger"]

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS publishes (
    sha256      TEXT NOT NULL,
    platform    TEXT NOT NULL,
    image_name  TEXT NOT NULL,
    status      TEXT NOT NULL,
    post_id     TEXT,
    error       TEXT,
    attempts    INTEGER NOT NULL DEFAULT 0,
    started_at  TEXT,
    finished_at TEXT,
    PRIMARY KEY (sha256, platform)
)
"""


#: How much `preflight` writes to prove the disk can take a run's results (a few rows).
_CHECK_BYTES = 64 * 1024


class LedgerRow(LedgerEntry):
    """One image x platform row, with its start and end time (ISO-8601 UTC)."""

    __slots__ = ("finished_at", "started_at")

    def __init__(self, sha256: str, platform: str, image_name: str, status: str) -> None:
        super().__init__(sha256, platform, image_name, status)
        self.started_at: str | None = None
        self.finished_at: str | None = None


class RunLock:
    """An exclusive lock on `<ledger>.lock` held for the whole of one run."""

    def __init__(self, ledger_path: Path) -> None:
        self.ledger_path = ledger_path
        self.path = ledger_path.with_name(ledger_path.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise `LedgerError` at once if another run holds it."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise LedgerError(
                f"cannot create the run lock {self.path} ({exc.strerror}): make its folder writable"
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise LedgerError(
                f"another crosspost run holds {self.ledger_path}; try again when it finishes"
            ) from exc
        except OSError as exc:
            os.close(fd)
            raise LedgerError(f"cannot lock {self.path} ({exc.strerror})") from exc
        self._fd = fd

    def release(self) -> None:
        """Let the next run in. The lock file stays: removing it would race with a waiter."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


class SqliteLedger:
    """A `Ledger` in a SQLite file (WAL journal, created with mode 0600).

    Every call runs in a worker thread on one dedicated connection guarded by a lock, so the
    event loop never waits for the disk. `readonly=True` (dry runs, previews) opens an
    existing file without writing anything, not even a journal, and treats a missing file as
    an empty ledger. Use `open()`/`close()` or `with`.
    """

    def __init__(self, path: str | os.PathLike[str], *, readonly: bool = False) -> None:
        self.path = Path(path).absolute()
        self.readonly = readonly
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._opened = False

    # -- lifecycle -----------------------------------------------------------------------
    def open(self) -> Self:
        """Open (and if needed create) the ledger. Raises `LedgerError`."""
        try:
            if self.readonly:
                self._conn = self._open_readonly()
            else:
                self._conn = self._open_writable()
        except sqlite3.Error as exc:
            raise LedgerError(
                f"ledger {self.path} cannot be opened ({exc}): check the file"
            ) from exc
        self._opened = True
        return self

    def _open_writable(self) -> sqlite3.Connection:
        try:
            # Created here, before SQLite sees it, so it never exists with a wider mode.
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            os.close(fd)
        except OSError as exc:
            raise LedgerError(
                f"ledger {self.path} cannot be created ({exc.strerror}): "
                "check workflow.ledger and its folder's permissions"
            ) from exc
        conn = sqlite3.connect(
            self.path, timeout=10.0, isolation_level=None, check_same_thread=False
        )
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise LedgerError(f"ledger {self.path} cannot use WAL journaling (got {mode})")
            conn.execute(_SCHEMA)
        except BaseException:
            conn.close()
            raise
        return conn

    def _open_readonly(self) -> sqlite3.Connection | None:
        if not self.path.exists():
            return None
        uri = self.path.as_uri()
        # Without a -wal file nothing is pending and no writer is active, so the file can be
        # read as immutable: SQLite then creates no -wal/-shm files beside it.
        wal = self.path.with_name(self.path.name + "-wal")
        query = "mode=ro" if wal.exists() else "mode=ro&immutable=1"
        conn = sqlite3.connect(f"{uri}?{query}", uri=True, timeout=10.0, check_same_thread=False)
        try:
            has_table = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='publishes'"
            ).fetchone()
        except BaseException:
            conn.close()
            raise
        if has_table is None:
            conn.close()
            return None
        return conn

    def close(self) -> None:
        """Close the connection (WAL content is checkpointed into the file)."""
        with self._lock:
            if self._conn is not None:
                conn, self._conn = self._conn, None
                conn.close()

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def run_lock(self) -> RunLock:
        """The lock that keeps two runs on this ledger from publishing at the same time."""
        return RunLock(self.path)

    def preflight(self) -> None:
        """Raise `LedgerError` unless a result could be written right now (before any
        platform is contacted)."""
        self._call(self._preflight_sync)

    def _preflight_sync(self, conn: sqlite3.Connection | None) -> None:
        if conn is None or self.readonly:
            raise LedgerError(f"ledger {self.path} is open read-only")
        # Taking the write lock is not enough: with the -wal file already there (another
        # reader keeps it), only appending to it shows a full disk. So commit a write about
        # as large as one run's results, then free it again; the pages it grew stay
        # allocated for the real results.
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS write_check (id INTEGER PRIMARY KEY, pad BLOB)"
            )
            conn.execute("INSERT INTO write_check (pad) VALUES (zeroblob(?))", (_CHECK_BYTES,))
            conn.execute("DELETE FROM write_check")
        except sqlite3.Error as exc:
            raise LedgerError(
                f"ledger {self.path} cannot be written ({exc}): check the file's permissions "
                "and free disk space"
            ) from exc

    # -- access --------------------------------------------------------------------------
    def _call(self, func: Callable[[sqlite3.Connection | None], T]) -> T:
        if not self._opened:
            raise LedgerError(f"ledger {self.path} is not open")
        with self._lock:
            return func(self._conn)

    async def _run(self, func: Callable[[sqlite3.Connection | None], T]) -> T:
        return await asyncio.to_thread(self._call, func)

    @staticmethod
    def _write(conn: sqlite3.Connection | None, sql: str, params: tuple[Any, ...]) -> None:
        if conn is None:
            raise LedgerError("the ledger is open read-only")
        try:
            conn.execute(sql, params)
        except sqlite3.Error as exc:
            raise LedgerError(f"the ledger cannot be written ({exc})") from exc

    async def published_platforms(self, sha256: str) -> set[str]:
        return await self._run(lambda conn: self._published_sync(conn, sha256))

    @staticmethod
    def _published_sync(conn: sqlite3.Connection | None, sha256: str) -> set[str]:
        if conn is None:
            return set()
        rows = conn.execute(
            "SELECT platform FROM publishes WHERE sha256 = ? AND status = ?",
            (sha256, PublishStatus.PUBLISHED),
        ).fetchall()
        return {row[0] for row in rows}

    async def record_start(self, sha256: str, image_name: str, platform: str) -> None:
        sql = """
            INSERT INTO publishes (sha256, platform, image_name, status, started_at)
            VALUES (?, ?, ?, ?, ?)
            ON CONFLICT (sha256, platform) DO UPDATE SET
                image_name = excluded.image_name, status = excluded.status,
                post_id = NULL, error = NULL,
                started_at = excluded.started_at, finished_at = NULL
        """
        params = (sha256, platform, image_name, PublishStatus.STARTED, utc_timestamp())
        await self._run(lambda conn: self._write(conn, sql, params))

    async def record_result(self, sha256: str, image_name: str, result: PublishResult) -> None:
        now = utc_timestamp()
        sql = """
            INSERT INTO publishes (sha256, platform, image_name, status, post_id, error,
                                   attempts, started_at, finished_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (sha256, platform) DO UPDATE SET
                image_name = excluded.image_name, status = excluded.status,
                post_id = excluded.post_id, error = excluded.error,
                attempts = publishes.attempts + excluded.attempts,
                started_at = COALESCE(publishes.started_at, excluded.started_at),
                finished_at = excluded.finished_at
        """
        params = (
            sha256,
            result.platform,
            image_name,
            result.status,
            result.post_id,
            result.error,
            result.attempts,
            now,
            now,
        )
        await self._run(lambda conn: self._write(conn, sql, params))

    def rows(self, sha256: str | None = None) -> list[LedgerRow]:
        """Every row (or those of one image), oldest first; for `crosspost` and tests."""

        def read(conn: sqlite3.Connection | None) -> list[LedgerRow]:
            if conn is None:
                return []
            sql = (
                "SELECT sha256, platform, image_name, status, post_id, error, attempts, "
                "started_at, finished_at FROM publishes"
            )
            params: tuple[str, ...] = ()
            if sha256 is not None:
                sql += " WHERE sha256 = ?"
                params = (sha256,)
            out = []
            for row in conn.execute(sql + " ORDER BY started_at, platform", params):
                entry = LedgerRow(row[0], row[1], row[2], row[3])
                entry.post_id, entry.error, entry.attempts = row[4], row[5], row[6]
                entry.started_at, entry.finished_at = row[7], row[8]
                out.append(entry)
            return out

        return self._call(read)
