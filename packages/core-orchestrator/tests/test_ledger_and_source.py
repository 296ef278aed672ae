"""The in-memory ledger and the single-image source shipped with the core."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from crosspost_orchestrator import (
    ImageSource,
    InMemoryLedger,
    InputError,
    Ledger,
    PublishResult,
    PublishStatus,
    SingleImageSource,
    sha256_file,
)


async def test_ledger_tracks_each_platform_through_start_and_result() -> None:
    ledger = InMemoryLedger()
    assert isinstance(ledger, Ledger)
    await ledger.record_start("abc", "a.jpg", "telegram")
    assert ledger.entry("abc", "telegram").status == PublishStatus.STARTED  # type: ignore[union-attr]
    assert await ledger.published_platforms("abc") == set()
    await ledger.record_result("abc", "a.jpg", PublishResult(True, "telegram", post_id="7"))
    await ledger.record_result("abc", "a.jpg", PublishResult(False, "email", error="x"))
    assert await ledger.published_platforms("abc") == {"telegram"}
    assert await ledger.published_platforms("other") == set()
    assert ledger.entry("abc", "email").status == PublishStatus.FAILED  # type: ignore[union-attr]


async def test_ledger_keeps_cancelled_and_unknown_outcomes_apart() -> None:
    ledger = InMemoryLedger()
    await ledger.record_result("h", "a.jpg", PublishResult(False, "a", cancelled=True))
    await ledger.record_result("h", "a.jpg", PublishResult(False, "b", outcome_unknown=True))
    assert ledger.entry("h", "a").status == PublishStatus.CANCELLED  # type: ignore[union-attr]
    assert ledger.entry("h", "b").status == PublishStatus.UNKNOWN  # type: ignore[union-attr]


async def test_ledger_counts_attempts_across_runs() -> None:
    ledger = InMemoryLedger()
    await ledger.record_result("h", "a.jpg", PublishResult(False, "a", attempts=2))
    await ledger.record_result("h", "a.jpg", PublishResult(True, "a", attempts=1))
    assert ledger.entry("h", "a").attempts == 3  # type: ignore[union-attr]


async def test_single_image_source_selects_by_path_with_hash_and_sidecar_caption(
    tmp_path: Path,
) -> None:
    image = tmp_path / "sunset.jpg"
    image.write_bytes(b"pixels")
    (tmp_path / "sunset.txt").write_text("  Golden hour  \nmore\n", encoding="utf-8")
    source = SingleImageSource()
    assert isinstance(source, ImageSource)
    selected = await source.select(str(image), ["a"])
    assert selected.path == str(image)
    assert selected.name == "sunset.jpg"
    assert selected.caption == "Golden hour"
    assert selected.sha256 == hashlib.sha256(b"pixels").hexdigest() == sha256_file(str(image))
    assert await source.archive(selected) is None
    assert image.exists()


async def test_single_image_source_without_sidecar_has_an_empty_caption(tmp_path: Path) -> None:
    image = tmp_path / "a.png"
    image.write_bytes(b"x")
    assert (await SingleImageSource().select(str(image), [])).caption == ""


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (None, "no image given"),
        ("missing.jpg", "image not found"),
        (".", "not a file"),
    ],
)
async def test_single_image_source_rejects_unusable_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str | None, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match=message):
        await SingleImageSource().select(name, [])


async def test_single_image_source_rejects_a_sidecar_that_is_not_utf8(tmp_path: Path) -> None:
    image = tmp_path / "a.jpg"
    image.write_bytes(b"x")
    (tmp_path / "a.txt").write_bytes(b"caf\xe9")
    with pytest.raises(InputError, match="not UTF-8"):
        await SingleImageSource().select(str(image), [])


async def test_single_image_source_reads_captions_as_the_folder_source_does(
    tmp_path: Path,
) -> None:
    """The same caption rules for an explicit image as for the queue: a byte-order mark and
    control characters go, and a caption file that cannot be read is an `InputError`."""
    image = tmp_path / "a.jpg"
    image.write_bytes(b"x")
    (tmp_path / "a.txt").write_bytes("\ufeffhello\x00 \x1b[31mworld\n".encode())
    assert (await SingleImageSource().select(str(image), [])).caption == "hello [31mworld"

    other = tmp_path / "b.jpg"
    other.write_bytes(b"x")
    (tmp_path / "b.txt").mkdir()  # opening it fails with an OSError
    with pytest.raises(InputError, match="cannot be read"):
        await SingleImageSource().select(str(other), [])
