"""Renditions: sizes, formats, byte limits, speed path, and the untouched original."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image, JpegImagePlugin

import crosspost_images
from crosspost_images import ImageSpec, PreparedImage, ensure_max_width, prepare_image

Fingerprint = Callable[[Path], tuple[str, int, int]]


def test_public_api_is_exported() -> None:
    for name in crosspost_images.__all__:
        assert hasattr(crosspost_images, name), name
    assert issubclass(crosspost_images.ImageError, ValueError)
    assert crosspost_images.__version__


def test_narrow_image_is_returned_as_is_and_nothing_is_written(
    save_image: Callable[..., Path], make_photo: Callable[[int, int], Image.Image], cache_dir: Path
) -> None:
    path = save_image("small.jpg", make_photo(800, 600), quality=90)

    assert ensure_max_width(str(path), 1280) == str(path)
    result = prepare_image(str(path), ImageSpec(max_width=1280))
    assert result == PreparedImage(
        str(path), 800, 600, path.stat().st_size, "JPEG", "image/jpeg", derived=False
    )
    assert not cache_dir.exists() or not any(cache_dir.iterdir())


def test_wide_jpeg_is_scaled_to_max_width_in_the_cache_dir(
    photo_jpeg: Path, cache_dir: Path, fingerprint: Fingerprint
) -> None:
    before = fingerprint(photo_jpeg)

    out = ensure_max_width(str(photo_jpeg), 1280)

    assert Path(out).parent == cache_dir
    with Image.open(out) as image:
        assert (image.format, image.size) == ("JPEG", (1280, 960))
    assert fingerprint(photo_jpeg) == before
    assert [p.name for p in cache_dir.iterdir() if p.name.startswith(".partial-")] == []


async def test_two_widths_prepared_concurrently_never_touch_the_original(
    photo_jpeg: Path, fingerprint: Fingerprint
) -> None:
    before = fingerprint(photo_jpeg)

    wide, narrow, square = await asyncio.gather(
        crosspost_images.ensure_max_width_async(str(photo_jpeg), 1280),
        crosspost_images.ensure_max_width_async(str(photo_jpeg), 1080),
        crosspost_images.prepare_image_async(
            str(photo_jpeg), ImageSpec(max_width=1080, max_ratio=1.0, fit="crop")
        ),
    )

    assert fingerprint(photo_jpeg) == before
    assert len({wide, narrow, square.path, str(photo_jpeg)}) == 4
    with Image.open(wide) as a, Image.open(narrow) as b:
        assert (a.width, b.width) == (1280, 1080)
    assert (square.width, square.height) == (1080, 1080)


async def test_ensure_max_width_async_delegates_once_on_a_worker_thread(
    photo_jpeg: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from crosspost_images import prepare as module

    calls: list[tuple[str, int, int]] = []
    real = module.ensure_max_width

    def counting(image_path: str, max_width: int = 1280) -> str:
        calls.append((image_path, max_width, threading.get_ident()))
        return real(image_path, max_width)

    monkeypatch.setattr(module, "ensure_max_width", counting)

    out = await crosspost_images.ensure_max_width_async(str(photo_jpeg), 640)

    assert len(calls) == 1
    assert calls[0][:2] == (str(photo_jpeg), 640)
    assert calls[0][2] != threading.get_ident()
    with Image.open(out) as image:
        assert image.width == 640


def test_draft_decode_matches_a_full_decode_lanczos_resize(
    photo_jpeg: Path,
    monkeypatch: pytest.MonkeyPatch,
    psnr: Callable[[Image.Image, Image.Image], float],
) -> None:
    drafts: list[tuple[int, int]] = []
    real_draft = JpegImagePlugin.JpegImageFile.draft

    def recording_draft(
        self: JpegImagePlugin.JpegImageFile, mode: str | None, size: tuple[int, int] | None
    ) -> tuple[str, tuple[int, int, float, float]] | None:
        result = real_draft(self, mode, size)
        drafts.append(self.size)
        return result

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", recording_draft)

    result = prepare_image(str(photo_jpeg), ImageSpec(max_width=1000, strip_metadata=False))

    # Decoded at a quarter of 4000x3000: four times fewer rows and columns to resample.
    assert drafts == [(1000, 750)]
    with Image.open(photo_jpeg) as full:
        reference = full.resize((1000, 750), Image.Resampling.LANCZOS)
    with Image.open(result.path) as fast:
        assert psnr(reference, fast) >= 35.0


def test_max_sum_and_max_width_both_bind(save_image: Callable[..., Path]) -> None:
    path = save_image("big-square.jpg", Image.new("L", (9000, 9000), 128), quality=80)

    both = prepare_image(str(path), ImageSpec(max_width=1280, max_sum=10000))
    assert (both.width, both.height) == (1280, 1280)

    small = save_image("square.png", Image.new("RGB", (3000, 3000), (10, 20, 30)))
    only_sum = prepare_image(str(small), ImageSpec(max_sum=2000))
    assert (only_sum.width, only_sum.height, only_sum.format) == (1000, 1000, "PNG")


def test_max_height_limits_a_portrait(
    save_image: Callable[..., Path], make_photo: Callable[[int, int], Image.Image]
) -> None:
    path = save_image("tall.jpg", make_photo(600, 2400))
    result = prepare_image(str(path), ImageSpec(max_height=1200))
    assert (result.width, result.height) == (300, 1200)


def test_max_bytes_lowers_quality_then_size_until_it_fits(
    save_image: Callable[..., Path], make_photo: Callable[[int, int], Image.Image]
) -> None:
    path = save_image("noisy.jpg", make_photo(2000, 1500), quality=95)
    limit = 120_000
    assert path.stat().st_size > limit

    result = prepare_image(str(path), ImageSpec(max_bytes=limit))

    assert result.derived
    assert result.size_bytes == os.path.getsize(result.path) <= limit
    with Image.open(result.path) as image:
        assert image.size == (result.width, result.height)
        assert result.width < 2000  # noise this heavy cannot fit by quality alone


def test_oversized_opaque_png_becomes_jpeg_with_format_keep(
    save_image: Callable[..., Path], make_photo: Callable[[int, int], Image.Image]
) -> None:
    path = save_image("photo.png", make_photo(1200, 800))
    result = prepare_image(str(path), ImageSpec(max_bytes=400_000))
    assert (result.format, result.mime_type, result.path[-4:]) == ("JPEG", "image/jpeg", ".jpg")
    assert (result.width, result.height) == (1200, 800)
    assert result.size_bytes <= 400_000


def test_oversized_png_with_alpha_stays_png_and_shrinks(
    save_image: Callable[..., Path], make_photo: Callable[[int, int], Image.Image]
) -> None:
    image = make_photo(1000, 1000).convert("RGBA")
    image.putalpha(Image.linear_gradient("L").resize((1000, 1000)))
    path = save_image("alpha.png", image)
    limit = path.stat().st_size // 2

    result = prepare_image(str(path), ImageSpec(max_bytes=limit))

    assert result.format == "PNG"
    assert result.size_bytes <= limit
    assert result.width < 1000
    with Image.open(result.path) as out:
        assert out.mode == "RGBA"


def test_format_conversion_is_applied_even_without_resizing(
    save_image: Callable[..., Path], make_photo: Callable[[int, int], Image.Image]
) -> None:
    path = save_image("photo.webp", make_photo(300, 200), quality=90)
    kept = prepare_image(str(path), ImageSpec(max_width=200, strip_metadata=False))
    assert (kept.format, kept.mime_type, kept.width, kept.height) == (
        "WEBP",
        "image/webp",
        200,
        133,
    )

    jpeg = prepare_image(str(path), ImageSpec(format="JPEG"))
    assert (jpeg.format, jpeg.width, jpeg.height, jpeg.derived) == ("JPEG", 300, 200, True)
    with Image.open(jpeg.path) as out:
        assert out.format == "JPEG"


def test_default_cache_dir_is_private_to_the_process_and_removed_at_exit(
    photo_jpeg: Path,
) -> None:
    script = (
        "import os, crosspost_images as c\n"
        f"p = c.ensure_max_width({str(photo_jpeg)!r}, 320)\n"
        "d = os.path.dirname(p)\n"
        "assert os.path.basename(d).startswith('crosspost-images-'), d\n"
        "assert os.path.isfile(p)\n"
        "print(d)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    directory = done.stdout.strip()
    assert directory
    assert not os.path.exists(directory)


@pytest.mark.parametrize(
    "changes",
    [
        {"max_width": 0},
        {"min_ratio": 2.0, "max_ratio": 1.0},
        {"fit": "stretch"},
        {"format": "GIF"},
        {"quality": 0},
        {"pad_color": (0, 0, 300)},
    ],
)
def test_nonsense_spec_is_refused_when_built(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="ImageSpec"):
        ImageSpec(**changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fmt", "mime"), [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp")]
)
def test_probe_reports_size_and_format_and_writes_nothing(
    fmt: str, mime: str, save_image: Callable[..., Path], cache_dir: Path, fingerprint: Fingerprint
) -> None:
    path = save_image(
        f"probe.{fmt.lower()}", Image.new("RGB", (321, 123), (9, 99, 199)), format=fmt
    )
    before = fingerprint(path)

    info = crosspost_images.probe_image(str(path))

    assert info == crosspost_images.ImageInfo(321, 123, fmt, mime)
    assert fingerprint(path) == before
    assert not cache_dir.exists() or not any(cache_dir.iterdir())
