"""The folder queue: order, caption files, what counts as next, and archiving that never
deletes or overwrites anything."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from crosspost_orchestrator import InMemoryLedger, PublishResult
from crosspost_orchestrator.errors import ConfigError, InputError, NothingToPublishError
from crosspost_orchestrator.folder_source import FolderSource, clean_caption
from crosspost_orchestrator.source import sha256_file

PLATFORMS = ["a", "b"]


def make(folder: Path, name: str, content: bytes | None = None) -> Path:
    path = folder / name
    path.write_bytes(content if content is not None else b"\xff\xd8\xff" + name.encode() * 10)
    return path


@pytest.fixture
def queue(tmp_path: Path) -> tuple[FolderSource, InMemoryLedger, Path]:
    folder = tmp_path / "photos"
    folder.mkdir()
    ledger = InMemoryLedger()
    return FolderSource(folder, folder / "archive", ledger), ledger, folder


async def publish_everywhere(ledger: InMemoryLedger, path: Path, platforms: list[str]) -> None:
    digest = sha256_file(str(path))
    for platform in platforms:
        await ledger.record_result(digest, path.name, PublishResult(True, platform, post_id="1"))


def test_images_are_taken_by_name_and_other_files_ignored(queue: tuple) -> None:
    source, _ledger, folder = queue
    for name in ["c.webp", "a.JPG", "b.png", "b.jpeg", "notes.txt", ".hidden.jpg", "x.gif"]:
        make(folder, name)
    (folder / "d.jpg").mkdir()
    assert [os.path.basename(p) for p in source.images()] == ["a.JPG", "b.jpeg", "b.png", "c.webp"]


async def test_next_is_the_first_image_not_yet_on_every_platform(queue: tuple) -> None:
    source, ledger, folder = queue
    first, second = make(folder, "01.jpg"), make(folder, "02.jpg")
    assert (await source.select(None, PLATFORMS)).name == "01.jpg"
    await publish_everywhere(ledger, first, ["a"])
    assert (await source.select(None, PLATFORMS)).name == "01.jpg"
    await publish_everywhere(ledger, first, ["b"])
    selected = await source.select(None, PLATFORMS)
    assert selected.name == "02.jpg"
    assert selected.sha256 == sha256_file(str(second))
    assert selected.path == str(second)
    await publish_everywhere(ledger, second, PLATFORMS)
    with pytest.raises(NothingToPublishError, match="nothing to publish"):
        await source.select(None, PLATFORMS)


async def test_caption_is_the_first_line_of_the_sidecar_without_control_characters(
    queue: tuple,
) -> None:
    source, _ledger, folder = queue
    make(folder, "a.jpg")
    (folder / "a.txt").write_bytes("\ufeffSunset\x00 over\x1b[31m hills\r\nsecond line\n".encode())
    selected = await source.select(None, PLATFORMS)
    assert selected.caption == "Sunset over[31m hills"
    make(folder, "b.jpg")
    assert (await source.select("b.jpg", PLATFORMS)).caption == ""


async def test_sidecar_that_is_not_utf8_is_an_input_error(queue: tuple) -> None:
    source, _ledger, folder = queue
    make(folder, "a.jpg")
    (folder / "a.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(InputError, match=r"a\.txt is not UTF-8 text: save it as UTF-8"):
        await source.select(None, PLATFORMS)


def test_clean_caption_keeps_newlines_and_tabs() -> None:
    assert clean_caption(" one\ttwo\r\nthree\x00\x07\x7f\x9b ") == "one\ttwo\nthree"


async def test_named_image_outside_the_queue_is_never_archived(
    queue: tuple, tmp_path: Path
) -> None:
    source, ledger, _folder = queue
    elsewhere = make(tmp_path, "elsewhere.jpg")
    selected = await source.select(str(elsewhere), PLATFORMS)
    await publish_everywhere(ledger, elsewhere, PLATFORMS)
    assert await source.archive(selected) is None
    assert elsewhere.exists()


async def test_named_image_must_exist_and_be_an_image_name(queue: tuple, tmp_path: Path) -> None:
    source, _ledger, _folder = queue
    with pytest.raises(InputError, match="image not found"):
        await source.select(str(tmp_path / "missing.jpg"), PLATFORMS)
    (tmp_path / "doc.pdf").write_bytes(b"%PDF")
    with pytest.raises(InputError, match="not an image file name"):
        await source.select(str(tmp_path / "doc.pdf"), PLATFORMS)


async def test_archive_moves_image_and_sidecar_once_every_platform_has_it(queue: tuple) -> None:
    source, ledger, folder = queue
    source.preflight()
    image = make(folder, "a.jpg")
    (folder / "a.txt").write_text("caption\nmore\n", encoding="utf-8")
    selected = await source.select(None, PLATFORMS)
    await publish_everywhere(ledger, image, ["a"])
    assert await source.archive(selected) is None
    assert image.exists()
    await publish_everywhere(ledger, image, ["b"])
    target = await source.archive(selected)
    assert target == str(folder / "archive" / "a.jpg")
    assert not image.exists()
    assert not (folder / "a.txt").exists()
    assert (folder / "archive" / "a.txt").read_text(encoding="utf-8") == "caption\nmore\n"


async def test_archive_name_clash_gets_a_suffix_and_overwrites_nothing(queue: tuple) -> None:
    source, ledger, folder = queue
    archive = folder / "archive"
    archive.mkdir()
    (archive / "a.jpg").write_bytes(b"older a")
    (archive / "a-1.txt").write_bytes(b"older caption of a-1")
    image = make(folder, "a.jpg")
    (folder / "a.txt").write_text("new caption\n", encoding="utf-8")
    selected = await source.select(None, PLATFORMS)
    await publish_everywhere(ledger, image, PLATFORMS)
    target = await source.archive(selected)
    # a-1 is taken by a caption file, so image and caption move together to a-2.
    assert target == str(archive / "a-2.jpg")
    assert (archive / "a.jpg").read_bytes() == b"older a"
    assert (archive / "a-1.txt").read_bytes() == b"older caption of a-1"
    assert (archive / "a-2.txt").read_text(encoding="utf-8") == "new caption\n"
    assert sorted(p.name for p in archive.iterdir()) == ["a-1.txt", "a-2.jpg", "a-2.txt", "a.jpg"]


async def test_sidecar_shared_by_two_images_stays_for_the_other_one(queue: tuple) -> None:
    source, ledger, folder = queue
    jpg, _png = make(folder, "a.jpg"), make(folder, "a.png")
    (folder / "a.txt").write_text("shared\n", encoding="utf-8")
    selected = await source.select(None, PLATFORMS)
    assert selected.name == "a.jpg"
    await publish_everywhere(ledger, jpg, PLATFORMS)
    await source.archive(selected)
    assert (folder / "a.txt").read_text(encoding="utf-8") == "shared\n"
    assert (folder / "archive" / "a.txt").read_text(encoding="utf-8") == "shared\n"
    assert (await source.select(None, PLATFORMS)).caption == "shared"


async def test_required_platforms_hold_the_image_back_in_a_partial_run(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    ledger = InMemoryLedger()
    source = FolderSource(folder, folder / "archive", ledger, required_platforms=["a", "b"])
    image = make(folder, "a.jpg")
    selected = await source.select(None, ["a"])
    await publish_everywhere(ledger, image, ["a"])
    assert await source.archive(selected) is None
    assert image.exists()


def test_preflight_creates_the_archive_only_when_asked(queue: tuple) -> None:
    source, _ledger, folder = queue
    source.preflight(create=False)
    assert not (folder / "archive").exists()
    source.preflight()
    assert (folder / "archive").is_dir()


def test_preflight_rejects_an_archive_that_is_a_file(queue: tuple) -> None:
    source, _ledger, folder = queue
    (folder / "archive").write_bytes(b"")
    with pytest.raises(ConfigError, match=r"workflow\.archive: .* is not a folder"):
        source.preflight()


def test_preflight_rejects_a_missing_folder(tmp_path: Path) -> None:
    source = FolderSource(tmp_path / "nope", tmp_path / "nope" / "archive", InMemoryLedger())
    with pytest.raises(ConfigError, match=r"workflow\.folder: .* is not a folder"):
        source.preflight()


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write to any folder")
def test_preflight_rejects_an_archive_that_cannot_be_written(queue: tuple) -> None:
    source, _ledger, folder = queue
    archive = folder / "archive"
    archive.mkdir()
    archive.chmod(0o500)
    try:
        with pytest.raises(ConfigError, match="is not writable"):
            source.preflight()
    finally:
        archive.chmod(0o700)
