"""A ledger or archive folder that cannot be written: read-only, impossible, on another file
system, or on a full disk. Whatever the cause, crosspost says so in one line and publishes
nothing it could not record: the check happens before any platform is contacted.

A real full disk is a small tmpfs, and a real read-only folder as root is a read-only bind
mount (file modes do not stop root); both need root and `mount`, and are skipped with the
reason otherwise. The cases that need neither (a folder that cannot exist, another file
system) always run.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

PLATFORMS = ("email", "telegram", "instagram")


def _refused_before_contact(deployment: Any, sandboxes: Any, stem: str, *words: str) -> str:
    """Run once; assert exit 2, one plain line naming the problem, nobody contacted, the
    image untouched in the queue. Returns the message."""
    image = deployment.photos / f"{stem}.jpg"
    before = image.read_bytes()
    contacts = sandboxes.contacts()
    run = deployment.run("publish", verbose=False, json_out=False)
    assert run.status == 2, run.describe()
    assert "Traceback" not in run.err
    lines = run.err.strip().splitlines()
    assert len(lines) == 1, run.describe()
    assert lines[0].startswith("crosspost: "), run.describe()
    message = str(lines[0]).lower()
    assert any(word in message for word in words), f"{words} not in {message!r}"
    assert sandboxes.contacts() == contacts, "a platform was contacted"
    assert deployment.posts(stem) == dict.fromkeys(PLATFORMS, 0)
    assert image.read_bytes() == before
    return message


def _publishes_once(deployment: Any, stem: str) -> None:
    run = deployment.run("publish")
    assert run.status == 0, run.describe()
    assert run.payload["image_name"] == f"{stem}.jpg"
    assert run.payload["archived"] is True, run.describe()
    assert deployment.posts(stem) == dict.fromkeys(PLATFORMS, 1)
    assert deployment.integrity() == "ok"


def test_read_only_ledger_folder_stops_the_run_before_any_platform(
    deployment: Any, sandboxes: Any, read_only: Any
) -> None:
    (deployment.root / "ledger").mkdir()
    deployment.configure(workflow={"ledger": "ledger/crosspost.sqlite3"})
    deployment.add_photo("first")
    _publishes_once(deployment, "first")
    rows = deployment.all_rows()

    read_only.seal(deployment.ledger.parent)
    deployment.add_photo("second")
    _refused_before_contact(deployment, sandboxes, "second", "ledger", "read-only", "lock")
    assert deployment.all_rows() == rows
    assert deployment.queued() == ["second.jpg", "second.txt"]

    read_only.unseal(deployment.ledger.parent)
    _publishes_once(deployment, "second")


def test_ledger_in_a_folder_that_cannot_exist_stops_the_run_before_any_platform(
    deployment: Any, sandboxes: Any
) -> None:
    (deployment.root / "blocker").write_text("a file where the ledger's folder should be\n")
    deployment.configure(workflow={"ledger": "blocker/crosspost.sqlite3"})
    deployment.add_photo("lonely")
    _refused_before_contact(deployment, sandboxes, "lonely", "ledger", "lock", "not a directory")


def test_read_only_archive_folder_stops_the_run_before_any_platform(
    deployment: Any, sandboxes: Any, read_only: Any
) -> None:
    deployment.add_photo("first")
    _publishes_once(deployment, "first")

    read_only.seal(deployment.archive)
    deployment.add_photo("second")
    _refused_before_contact(deployment, sandboxes, "second", "archive")
    assert not [r for r in deployment.all_rows() if r.image_name == "second.jpg"]

    read_only.unseal(deployment.archive)
    _publishes_once(deployment, "second")
    assert deployment.archived() == ["first.jpg", "first.txt", "second.jpg", "second.txt"]


def test_archive_folder_that_cannot_be_created_stops_the_run_before_any_platform(
    deployment: Any, sandboxes: Any
) -> None:
    (deployment.root / "blocker").write_text("a file where the archive's parent should be\n")
    deployment.configure(workflow={"archive": "blocker/archive"})
    deployment.add_photo("lonely")
    _refused_before_contact(deployment, sandboxes, "lonely", "archive")


def test_archive_on_another_file_system_stops_the_run_before_any_platform(
    deployment: Any, sandboxes: Any, tmp_path_factory: Any
) -> None:
    """An image moves to the archive by an atomic rename, which only works on one file
    system; /dev/shm is another one (a memory file system) on Linux."""
    import pytest

    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(deployment.root).st_dev:
        pytest.skip("no /dev/shm on a file system of its own here")
    archive = Path(os.path.realpath(shm)) / f"crosspost-archive-{deployment.marker}"
    archive.mkdir()
    try:
        deployment.configure(workflow={"archive": str(archive)})
        deployment.add_photo("lonely")
        message = _refused_before_contact(deployment, sandboxes, "lonely", "archive")
        assert "file system" in message
    finally:
        archive.rmdir()


def test_full_disk_under_the_existing_ledger_publishes_nothing_and_says_so(
    deployment: Any, sandboxes: Any, mounts: Any, helpers: Any
) -> None:
    """The disk holding the ledger fills up between two runs. Nothing may be published
    that cannot be recorded; once space is back, the next run publishes the image once."""
    disk = mounts.tmpfs(deployment.root / "ledgerdisk", size="1m")
    deployment.configure(workflow={"ledger": "ledgerdisk/crosspost.sqlite3"})
    deployment.add_photo("first")
    _publishes_once(deployment, "first")

    filler = helpers.fill_disk(disk)
    deployment.add_photo("second")
    _refused_before_contact(deployment, sandboxes, "second", "ledger", "disk", "space", "full")
    assert deployment.integrity() == "ok"

    filler.unlink()
    _publishes_once(deployment, "second")


def test_full_disk_for_a_new_ledger_publishes_nothing_and_says_so(
    deployment: Any, sandboxes: Any, mounts: Any, helpers: Any
) -> None:
    disk = mounts.tmpfs(deployment.root / "ledgerdisk", size="1m")
    deployment.configure(workflow={"ledger": "ledgerdisk/crosspost.sqlite3"})
    helpers.fill_disk(disk)
    deployment.add_photo("first")
    _refused_before_contact(deployment, sandboxes, "first", "ledger", "disk", "space", "full")


def test_full_disk_under_queue_and_archive_still_archives_by_rename(
    deployment: Any, sandboxes: Any, mounts: Any, helpers: Any
) -> None:
    """Moving an image into the archive is a rename on the same file system: it needs no
    free space, so a full disk there loses nothing and does not stop the run."""
    disk = mounts.tmpfs(deployment.root / "queuedisk", size="2m")
    (disk / "photos").mkdir()
    (disk / "archive").mkdir()
    deployment.photos = disk / "photos"
    deployment.archive = disk / "archive"
    deployment.configure(workflow={"folder": "queuedisk/photos", "archive": "queuedisk/archive"})
    image = deployment.add_photo("packed")
    content = image.read_bytes()
    helpers.fill_disk(disk)
    _publishes_once(deployment, "packed")
    assert deployment.archived() == ["packed.jpg", "packed.txt"]
    assert (deployment.archive / "packed.jpg").read_bytes() == content


def test_full_disk_under_a_ledger_held_open_by_a_reader_publishes_nothing_and_says_so(
    deployment: Any, sandboxes: Any, mounts: Any, helpers: Any
) -> None:
    """As above, while another program (a `sqlite3` shell, a monitoring script) has the
    ledger open, so SQLite's shared-memory and journal files already exist and opening the
    ledger still works: only a write can tell that the disk is full, and it must be tried
    before publishing."""
    import sqlite3

    disk = mounts.tmpfs(deployment.root / "ledgerdisk", size="1m")
    deployment.configure(workflow={"ledger": "ledgerdisk/crosspost.sqlite3"})
    deployment.add_photo("first")
    _publishes_once(deployment, "first")

    reader = sqlite3.connect(deployment.ledger)
    try:
        reader.execute("SELECT count(*) FROM publishes").fetchone()
        filler = helpers.fill_disk(disk)
        deployment.add_photo("second")
        _refused_before_contact(deployment, sandboxes, "second", "ledger", "disk", "space", "full")
    finally:
        reader.close()
    filler.unlink()
    assert deployment.integrity() == "ok"
    _publishes_once(deployment, "second")
