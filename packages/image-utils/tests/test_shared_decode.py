"""Renditions of one JPEG for different specs share one reduced decode, within a memory bound."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image

import crosspost_images
from crosspost_images import ImageError, ImageSpec, PreparedImage, prepare_image
from crosspost_images import decodes as decodes_module
from crosspost_images import render as render_module

# From the 4000x3000 photo, both decode at 1/2 (2000x1500), like Telegram's 1280 and
# Instagram's 1080 from a 6000x4000 one decode at 1/4.
TELEGRAM_LIKE = ImageSpec(max_width=1280, format="JPEG")
INSTAGRAM_LIKE = ImageSpec(
    max_width=1080, max_height=1350, min_ratio=0.8, max_ratio=1.91, fit="pad", format="JPEG"
)
EXPIRY_THREAD = "crosspost-images-decode-expiry"

Photo = Callable[[int, int], Image.Image]


def _delta(before: dict[str, int]) -> dict[str, int]:
    now = crosspost_images.prepare_stats()
    return {key: now[key] - before[key] for key in ("decodes", "decode_reuses")}


def _expiry_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == EXPIRY_THREAD]


def _join_expiry_threads() -> None:
    deadline = time.monotonic() + 30
    while threads := _expiry_threads():
        assert time.monotonic() < deadline, "the expiry timer never finished"
        for thread in threads:
            thread.join(timeout=30)


@pytest.fixture
def held_decode(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[threading.Event, list[int]]]:
    """Holds every reduced decode in progress until the returned event is set."""
    release = threading.Event()
    started: list[int] = []
    real = render_module._decode_reduced

    def held(*args: object) -> decodes_module.Decoded:
        started.append(threading.get_ident())
        assert release.wait(timeout=30), "decode was never released"
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(render_module, "_decode_reduced", held)
    yield release, started
    release.set()


@pytest.fixture
def small_jpegs(tmp_path: Path, make_photo: Photo) -> list[Path]:
    """Three different 800x600 JPEGs; at 200 wide each decodes to 200x150 (120,000 bytes)."""
    paths = []
    for number in range(3):
        path = tmp_path / f"small-{number}.jpg"
        make_photo(800, 600).save(path, quality=85)
        paths.append(path)
    return paths


def _alone(cache: Path, image: Path, spec: ImageSpec) -> bytes:
    crosspost_images.set_cache_dir(str(cache))
    return Path(prepare_image(str(image), spec).path).read_bytes()


async def test_two_specs_prepared_concurrently_decode_the_jpeg_once(
    photo_jpeg: Path, held_decode: tuple[threading.Event, list[int]], tmp_path: Path
) -> None:
    release, started = held_decode
    before = crosspost_images.prepare_stats()
    telegram = asyncio.create_task(
        crosspost_images.prepare_image_async(str(photo_jpeg), TELEGRAM_LIKE)
    )
    instagram = asyncio.create_task(
        crosspost_images.prepare_image_async(str(photo_jpeg), INSTAGRAM_LIKE)
    )
    deadline = time.monotonic() + 20
    while _delta(before)["decode_reuses"] < 1:
        assert time.monotonic() < deadline, "the second spec never joined the decode"
        await asyncio.sleep(0.005)

    release.set()
    wide, narrow = await asyncio.gather(telegram, instagram)

    assert len(started) == 1
    assert _delta(before) == {"decodes": 1, "decode_reuses": 1}
    assert (wide.width, wide.height) == (1280, 960)
    assert (narrow.width, narrow.height) == (1080, 810)
    shared = (Path(wide.path).read_bytes(), Path(narrow.path).read_bytes())
    alone = (
        _alone(tmp_path / "alone-1", photo_jpeg, TELEGRAM_LIKE),
        _alone(tmp_path / "alone-2", photo_jpeg, INSTAGRAM_LIKE),
    )
    assert shared == alone


def test_threads_asking_for_six_widths_decode_once(photo_jpeg: Path) -> None:
    widths = (1100, 1200, 1300, 1500, 1700, 1900)  # every one decodes at 1/2
    before = crosspost_images.prepare_stats()
    barrier = threading.Barrier(len(widths))
    results: dict[int, PreparedImage] = {}

    def worker(width: int) -> None:
        barrier.wait(timeout=30)
        results[width] = prepare_image(str(photo_jpeg), ImageSpec(max_width=width))

    threads = [threading.Thread(target=worker, args=(w,)) for w in widths]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert _delta(before) == {"decodes": 1, "decode_reuses": 5}
    assert {w: r.width for w, r in results.items()} == {w: w for w in widths}


def test_a_smaller_target_reuses_a_decode_up_to_twice_its_need(
    photo_jpeg: Path, psnr: Callable[[Image.Image, Image.Image], float], tmp_path: Path
) -> None:
    before = crosspost_images.prepare_stats()
    prepare_image(str(photo_jpeg), ImageSpec(max_width=1600))  # decodes at 1/2
    medium = prepare_image(str(photo_jpeg), ImageSpec(max_width=640))  # 1/4 would do
    assert _delta(before) == {"decodes": 1, "decode_reuses": 1}

    prepare_image(str(photo_jpeg), ImageSpec(max_width=200))  # 1/8: 1/2 is too big to resample
    assert _delta(before) == {"decodes": 2, "decode_reuses": 1}

    crosspost_images.set_cache_dir(str(tmp_path / "alone"))
    alone = prepare_image(str(photo_jpeg), ImageSpec(max_width=640))
    with Image.open(medium.path) as reused, Image.open(alone.path) as fresh:
        assert reused.size == fresh.size == (640, 480)
        assert psnr(reused, fresh) >= 35.0


def test_kept_decodes_stay_within_the_memory_budget(
    small_jpegs: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = decodes_module.decodes
    monkeypatch.setattr(cache, "budget_bytes", 250_000)  # room for two 200x150 decodes
    first, second, third = (str(p) for p in small_jpegs)

    for path in (first, second, third):
        prepare_image(path, ImageSpec(max_width=200))
        assert cache.held_bytes() <= 250_000
    assert cache.held_bytes() == 2 * 200 * 150 * 4

    before = crosspost_images.prepare_stats()
    prepare_image(third, ImageSpec(max_width=190))  # the newest is still kept
    assert _delta(before) == {"decodes": 0, "decode_reuses": 1}
    prepare_image(first, ImageSpec(max_width=190))  # the oldest was evicted
    assert _delta(before) == {"decodes": 1, "decode_reuses": 1}
    assert cache.held_bytes() <= 250_000


def test_a_decode_larger_than_the_budget_is_not_kept(
    small_jpegs: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = decodes_module.decodes
    monkeypatch.setattr(cache, "budget_bytes", 100_000)

    result = prepare_image(str(small_jpegs[0]), ImageSpec(max_width=200))

    assert (result.width, result.height) == (200, 150)
    assert cache.held_bytes() == 0
    assert _expiry_threads() == []


def test_kept_decodes_are_dropped_after_an_idle_time(
    small_jpegs: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = decodes_module.decodes
    monkeypatch.setattr(cache, "idle_s", 1.0)

    prepare_image(str(small_jpegs[0]), ImageSpec(max_width=200))
    assert cache.held_bytes() > 0
    assert len(_expiry_threads()) == 1

    # The timer gives the memory back without any further call into the library.
    _join_expiry_threads()
    assert cache.held_bytes() == 0
    before = crosspost_images.prepare_stats()
    prepare_image(str(small_jpegs[0]), ImageSpec(max_width=190))
    assert _delta(before) == {"decodes": 1, "decode_reuses": 0}


def test_setting_the_cache_dir_drops_kept_decodes(small_jpegs: list[Path], tmp_path: Path) -> None:
    cache = decodes_module.decodes
    prepare_image(str(small_jpegs[0]), ImageSpec(max_width=200))
    assert cache.held_bytes() > 0

    crosspost_images.set_cache_dir(str(tmp_path / "elsewhere"))

    assert cache.held_bytes() == 0
    _join_expiry_threads()  # cancelled: ends at once


async def test_a_failed_decode_reaches_every_spec_and_is_not_kept(
    save_image: Callable[..., Path],
    make_photo: Photo,
    held_decode: tuple[threading.Event, list[int]],
) -> None:
    release, started = held_decode
    whole = save_image("whole.jpg", make_photo(1600, 1200))
    cut = whole.with_name("cut.jpg")
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    before = crosspost_images.prepare_stats()

    first = asyncio.create_task(
        crosspost_images.prepare_image_async(str(cut), ImageSpec(max_width=400))
    )
    second = asyncio.create_task(
        crosspost_images.prepare_image_async(str(cut), ImageSpec(max_width=380))
    )
    deadline = time.monotonic() + 20
    while _delta(before)["decode_reuses"] < 1:
        assert time.monotonic() < deadline, "the second spec never joined the decode"
        await asyncio.sleep(0.005)
    release.set()
    outcomes = await asyncio.gather(first, second, return_exceptions=True)

    assert len(started) == 1
    for outcome in outcomes:
        assert isinstance(outcome, ImageError)
        assert "truncated" in str(outcome)
    assert decodes_module.decodes.held_bytes() == 0
    assert _delta(before)["decodes"] == 0
