"""The session file: atomic, owner-only writes; unusable files are ignored."""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path

import pytest

from crosspost_instagram.session_file import read_session, write_session


def test_a_written_session_is_owner_only_and_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "session.json"

    write_session(path, {"cookies": {"sessionid": "abc"}})

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_session(path) == {"cookies": {"sessionid": "abc"}}
    assert os.listdir(path.parent) == ["session.json"]


def test_a_replaced_session_keeps_owner_only_mode_even_over_a_loose_file(tmp_path: Path) -> None:
    path = tmp_path / "session.json"
    path.write_text("{}")
    path.chmod(0o666)

    write_session(path, {"v": 2})

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {"v": 2}


def test_a_failed_write_leaves_the_old_session_and_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "session.json"
    write_session(path, {"v": 1})

    with pytest.raises(TypeError):
        write_session(path, {"v": object()})

    assert read_session(path) == {"v": 1}
    assert os.listdir(tmp_path) == ["session.json"]


def test_a_missing_or_corrupt_session_reads_as_none(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text("{not json")
    corrupt.chmod(0o600)

    assert read_session(tmp_path / "missing.json") is None
    assert read_session(corrupt) is None
    assert "instagram_session_file_unreadable" in caplog.text


def test_a_session_readable_by_others_is_tightened_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    path = tmp_path / "session.json"
    path.write_text('{"cookies": {}}')
    path.chmod(0o644)

    assert read_session(path) == {"cookies": {}}

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "instagram_session_file_permissions" in caplog.text
