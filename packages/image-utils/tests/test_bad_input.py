"""Bad input of every kind is refused with a one-line ImageError naming the file."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image, ImageFile

from crosspost_images import ImageError, ImageSpec, prepare_image, probe_image

Check = Callable[[Path], None]


def _refused(path: Path, *fragments: str) -> None:
    """Both entry points refuse `path` with a one-line message naming it and the problem."""
    for attempt in (
        lambda: probe_image(str(path)),
        lambda: prepare_image(str(path), ImageSpec(max_width=64)),
    ):
        with pytest.raises(ImageError) as caught:
            attempt()
        message = str(caught.value)
        assert isinstance(caught.value, ValueError)
        assert "\n" not in message
        assert str(path) in message
        for fragment in fragments:
            assert fragment in message.lower(), message


def test_missing_file(tmp_path: Path) -> None:
    _refused(tmp_path / "nope.jpg", "no such file")


def test_directory(tmp_path: Path) -> None:
    (tmp_path / "folder.jpg").mkdir()
    _refused(tmp_path / "folder.jpg", "directory")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_named_pipe_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.jpg")
    _refused(tmp_path / "pipe.jpg", "not a regular file")


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.jpg").write_bytes(b"")
    _refused(tmp_path / "empty.jpg", "empty")


def test_text_file_is_not_an_image(tmp_path: Path) -> None:
    (tmp_path / "caption.jpg").write_text("a caption, not a photo\n")
    _refused(tmp_path / "caption.jpg", "not an image")


def test_garbage_after_a_jpeg_signature(tmp_path: Path) -> None:
    (tmp_path / "junk.jpg").write_bytes(b"\xff\xd8\xff" + bytes(range(256)) * 4)
    _refused(tmp_path / "junk.jpg", "jpeg")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_image(
    fmt: str, save_image: Callable[..., Path], make_photo: Callable[[int, int], Image.Image]
) -> None:
    path = save_image(f"whole.{fmt.lower()}", make_photo(640, 480), format=fmt)
    cut = path.with_name(f"cut.{fmt.lower()}")
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    _refused(cut, "truncated")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_truncated_image_is_caught_even_when_no_resize_is_needed(
    save_image: Callable[..., Path], make_photo: Callable[[int, int], Image.Image]
) -> None:
    path = save_image("whole.jpg", make_photo(300, 200))
    cut = path.with_name("cut.jpg")
    cut.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 3])
    with pytest.raises(ImageError, match="truncated"):
        prepare_image(str(cut), ImageSpec(max_width=1280, strip_metadata=False))


def test_relaxed_pillow_truncation_setting_is_refused_not_obeyed(
    save_image: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = save_image("fine.png", Image.new("RGB", (20, 20)))
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(ImageError, match="LOAD_TRUNCATED_IMAGES"):
        probe_image(str(path))


@pytest.mark.parametrize(("fmt", "name"), [("GIF", "gif"), ("BMP", "bmp"), ("TIFF", "tif")])
def test_unsupported_formats(fmt: str, name: str, save_image: Callable[..., Path]) -> None:
    path = save_image(f"picture.{name}", Image.new("RGB", (40, 30), (1, 2, 3)), format=fmt)
    _refused(path, fmt.lower(), "not supported")


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_animated_image(fmt: str, save_image: Callable[..., Path]) -> None:
    frames = [Image.new("RGB", (40, 30), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    path = save_image(
        f"anim.{fmt.lower()}", frames[0], format=fmt, save_all=True, append_images=frames[1:]
    )
    _refused(path, "animated", "2 frames")


def test_decompression_bomb_is_refused_from_the_header_before_decoding(
    bilevel_png: Callable[..., Path],
) -> None:
    path = bilevel_png(20000, 20000)  # 400 million pixels in a ~50 kB file

    started = time.perf_counter()
    _refused(path, "400,000,000 pixels", "before decoding")
    assert time.perf_counter() - started < 1.0  # decoding alone would take seconds and 400 MB


def test_pixel_limit_comes_from_the_spec(save_image: Callable[..., Path]) -> None:
    path = save_image("ok.png", Image.new("RGB", (200, 100)))
    with pytest.raises(ImageError, match="20,000 pixels, more than the limit of 10,000"):
        prepare_image(str(path), ImageSpec(max_pixels=10_000))
    with pytest.raises(ImageError, match="limit of 10,000"):
        probe_image(str(path), max_pixels=10_000)


def test_pillow_bomb_warning_never_surfaces(bilevel_png: Callable[..., Path]) -> None:
    # 9500 x 9500 is above Pillow's own warning threshold (~89.5 Mpx) and below our default
    # 100 Mpx limit; pytest turns any warning into an error, so only our message may appear.
    assert (Image.MAX_IMAGE_PIXELS or 0) < 9500 * 9500 < 100_000_000
    path = bilevel_png(9500, 9500, rows=10)

    with pytest.raises(ImageError, match="truncated"):
        probe_image(str(path))


def test_webp_bomb_is_refused_before_libwebp_allocates(tmp_path: Path) -> None:
    # A lossless WEBP header claiming 16384 x 16384 with no image data behind it.
    bits = (16384 - 1) | ((16384 - 1) << 14)
    payload = b"\x2f" + bits.to_bytes(4, "little") + b"\x00" * 8
    chunk = b"VP8L" + len(payload).to_bytes(4, "little") + payload
    data = b"RIFF" + (4 + len(chunk)).to_bytes(4, "little") + b"WEBP" + chunk
    path = tmp_path / "bomb.webp"
    path.write_bytes(data)

    with pytest.raises(ImageError, match="16384x16384 is 268,435,456 pixels"):
        probe_image(str(path))
