"""The saved Instagram session: read it, and write it atomically with owner-only permissions.

The file holds what instagrapi's `get_settings()` returns: the session id, cookies, the
authorization header and a device signing key. Anyone who can read it can post as the
account, so it is written with mode 0600 and never shown in logs.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from crosspost_logs import log_json

__all__ = ["read_session", "write_session"]

logger = logging.getLogger(__name__)


def read_session(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The saved session at `path`, or None when there is none or it cannot be used.

    A file readable by others is tightened to 0600 first (and a warning logged).
    """
    target = Path(path)
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        return None
    except OSError as exc:
        _unreadable(target, exc)
        return None
    if mode & 0o077:
        log_json(
            logger,
            logging.WARNING,
            "instagram_session_file_permissions",
            path=str(target),
            mode=oct(mode),
            action="changed to 0o600: the file holds the session's secrets",
        )
        with contextlib.suppress(OSError):  # not ours to change; reading it still works
            target.chmod(0o600)
    try:
        data = json.loads(target.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        _unreadable(target, exc)
        return None
    return data if isinstance(data, dict) else None


def _unreadable(target: Path, exc: Exception) -> None:
    log_json(
        logger,
        logging.WARNING,
        "instagram_session_file_unreadable",
        path=str(target),
        error=type(exc).__name__,
        action="ignored: logging in with the password",
    )


def write_session(path: str | os.PathLike[str], settings: dict[str, Any]) -> None:
    """Replace the session at `path` with `settings`, atomically and with mode 0600.

    The data goes to a new 0600 file in the same directory, is flushed to disk, then renamed
    over the old file, so a reader sees either the old session or the new one, never half.
    """
    target = Path(path)
    directory = target.parent
    directory.mkdir(parents=True, exist_ok=True)
    payload = json.dumps(settings, indent=2, sort_keys=True).encode("utf-8")
    fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        # mkstemp creates the file 0600 (os.open with O_EXCL); insist, whatever the umask.
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable; some platforms cannot open a directory, which is fine.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
