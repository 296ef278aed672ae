"""One computation per (file, spec): single flight across tasks, threads and event loops."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image

import crosspost_images
from crosspost_images import ImageSpec, PreparedImage, prepare_image, prepare_image_async
from crosspost_images import prepare as prepare_module
from crosspost_images import render as render_module

SPEC = ImageSpec(max_width=640)


def _delta(before: dict[str, int]) -> dict[str, int]:
    now = crosspost_images.prepare_stats()
    return {key: now[key] - before[key] for key in before}


@pytest.fixture
def held_render(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[threading.Event, list[int]]]:
    """Holds every rendition in progress until the returned event is set."""
    release = threading.Event()
    started: list[int] = []
    real = render_module.render

    def held(*args: object, **kwargs: object) -> PreparedImage | None:
        started.append(threading.get_ident())
        assert release.wait(timeout=30), "rendition was never released"
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(prepare_module, "render", held)
    yield release, started
    release.set()


async def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 20
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.005)


async def test_sixteen_concurrent_requests_compute_once(
    photo_jpeg: Path, held_render: tuple[threading.Event, list[int]]
) -> None:
    release, started = held_render
    before = crosspost_images.prepare_stats()
    path = str(photo_jpeg)

    tasks = [asyncio.create_task(prepare_image_async(path, SPEC)) for _ in range(15)]
    # One more from another thread with its own event loop.
    other_loop: list[PreparedImage] = []
    thread = threading.Thread(
        target=lambda: other_loop.append(asyncio.run(prepare_image_async(path, SPEC)))
    )
    thread.start()
    await _until(lambda: _delta(before)["joined"] == 15, "15 requests joined the first")
    assert len(started) == 1

    release.set()
    results = await asyncio.gather(*tasks)
    await asyncio.to_thread(thread.join, 30)

    assert _delta(before) == {
        "computed": 1,
        "cache_hits": 0,
        "joined": 15,
        "decodes": 1,
        "decode_reuses": 0,
    }
    assert len({*results, *other_loop}) == 1
    assert results[0].derived
    assert results[0].width == 640


async def test_cancelled_waiter_does_not_cancel_the_others(
    photo_jpeg: Path, held_render: tuple[threading.Event, list[int]]
) -> None:
    release, _ = held_render
    before = crosspost_images.prepare_stats()
    first = asyncio.create_task(prepare_image_async(str(photo_jpeg), SPEC))
    impatient = asyncio.create_task(prepare_image_async(str(photo_jpeg), SPEC))
    patient = asyncio.create_task(prepare_image_async(str(photo_jpeg), SPEC))
    await _until(lambda: _delta(before)["joined"] == 2, "both joined")

    impatient.cancel()
    release.set()

    assert (await first) == (await patient)
    with pytest.raises(asyncio.CancelledError):
        await impatient


def test_threads_using_the_sync_api_share_one_computation(photo_jpeg: Path) -> None:
    before = crosspost_images.prepare_stats()
    barrier = threading.Barrier(8)
    results: list[PreparedImage] = []

    def worker() -> None:
        barrier.wait(timeout=30)
        results.append(prepare_image(str(photo_jpeg), SPEC))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    delta = _delta(before)
    assert delta["computed"] == 1
    assert delta["joined"] + delta["cache_hits"] == 7
    assert len(set(results)) == 1


def test_a_failure_reaches_every_waiter_and_is_not_cached(tmp_path: Path) -> None:
    path = tmp_path / "late.png"
    with pytest.raises(crosspost_images.ImageError, match="no such file"):
        prepare_image(str(path), SPEC)
    Image.new("RGB", (800, 100)).save(path)
    assert prepare_image(str(path), SPEC).width == 640


def test_repeat_request_is_a_cache_hit(photo_jpeg: Path) -> None:
    first = prepare_image(str(photo_jpeg), SPEC)
    before = crosspost_images.prepare_stats()
    assert prepare_image(str(photo_jpeg), SPEC) == first
    assert _delta(before) == {
        "computed": 0,
        "cache_hits": 1,
        "joined": 0,
        "decodes": 0,
        "decode_reuses": 0,
    }


def test_changed_file_is_prepared_again(
    save_image: Callable[..., Path], make_photo: Callable[[int, int], Image.Image]
) -> None:
    path = save_image("changing.jpg", make_photo(1600, 1200))
    first = prepare_image(str(path), SPEC)

    make_photo(1600, 800).save(path, format="JPEG")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    second = prepare_image(str(path), SPEC)

    assert (first.width, first.height) == (640, 480)
    assert (second.width, second.height) == (640, 320)
    assert second.path != first.path


def test_deleted_derived_file_is_made_again(photo_jpeg: Path) -> None:
    first = prepare_image(str(photo_jpeg), SPEC)
    os.unlink(first.path)
    before = crosspost_images.prepare_stats()

    again = prepare_image(str(photo_jpeg), SPEC)

    assert again == first
    assert os.path.isfile(again.path)
    assert _delta(before)["computed"] == 1


def test_a_shared_cache_dir_is_reused_by_name(photo_jpeg: Path, cache_dir: Path) -> None:
    first = prepare_image(str(photo_jpeg), SPEC)
    # Another process pointing at the same directory starts with an empty memory.
    crosspost_images.set_cache_dir(str(cache_dir))
    before = crosspost_images.prepare_stats()

    again = prepare_image(str(photo_jpeg), SPEC)

    assert again == first
    assert _delta(before) == {
        "computed": 0,
        "cache_hits": 1,
        "joined": 0,
        "decodes": 0,
        "decode_reuses": 0,
    }
    assert sorted(p.name for p in cache_dir.iterdir()) == [os.path.basename(first.path)]


def test_same_file_under_another_name_gets_its_own_name_back(
    save_image: Callable[..., Path], tmp_path: Path
) -> None:
    path = save_image("real.png", Image.new("RGB", (100, 100)))
    link = tmp_path / "link.png"
    link.symlink_to(path)

    assert prepare_image(str(path), SPEC).path == str(path)
    assert prepare_image(str(link), SPEC).path == str(link)
