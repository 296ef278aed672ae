"""Fixtures that generate real images, and the helpers the tests share."""

from __future__ import annotations

import hashlib
import math
import os
import struct
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageChops, ImageStat

import crosspost_images


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path) -> Iterator[Path]:
    """Every test gets its own, empty cache directory (and an empty in-memory cache)."""
    directory = tmp_path / "cache"
    crosspost_images.set_cache_dir(str(directory))
    yield directory
    crosspost_images.set_cache_dir(None)


def _make_photo(width: int, height: int) -> Image.Image:
    """A photo-like RGB image: smooth colour gradients with sensor-like noise on top."""
    noise = Image.effect_noise((width, height), 40).convert("RGB")
    across = Image.linear_gradient("L").resize((width, height))
    down = Image.linear_gradient("L").rotate(90).resize((width, height))
    gradient = Image.merge("RGB", (across, down, ImageChops.invert(across)))
    return Image.blend(gradient, noise, 0.35)


@pytest.fixture
def make_photo() -> Callable[[int, int], Image.Image]:
    """make_photo(width, height) -> a photo-like RGB image (gradients + noise)."""
    return _make_photo


@pytest.fixture(scope="session")
def photo_jpeg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4000x3000 photo-like JPEG, made once per session."""
    path = tmp_path_factory.mktemp("photo") / "photo.jpg"
    _make_photo(4000, 3000).save(path, quality=92)
    return path


@pytest.fixture
def save_image(tmp_path: Path) -> Callable[..., Path]:
    """save_image(name, image, **save_options) -> path of the saved file in tmp_path."""

    def save(name: str, image: Image.Image, **options: Any) -> Path:
        path = tmp_path / name
        image.save(path, **options)
        return path

    return save


@pytest.fixture
def fingerprint() -> Callable[[Path], tuple[str, int, int]]:
    """fingerprint(path) -> (sha256, mtime_ns, size): what 'untouched' means."""

    def take(path: Path) -> tuple[str, int, int]:
        st = os.stat(path)
        return hashlib.sha256(path.read_bytes()).hexdigest(), st.st_mtime_ns, st.st_size

    return take


@pytest.fixture
def psnr() -> Callable[[Image.Image, Image.Image], float]:
    """psnr(a, b) in dB over RGB, computed with Pillow only."""

    def measure(a: Image.Image, b: Image.Image) -> float:
        assert a.size == b.size
        stat = ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b.convert("RGB")))
        mse = sum(stat.sum2) / (a.width * a.height * 3)
        return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)

    return measure


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@pytest.fixture
def bilevel_png(tmp_path: Path) -> Callable[..., Path]:
    """bilevel_png(width, height, rows=None) -> a 1-bit PNG written without ever holding its
    pixels in memory; `rows` < height leaves the image data cut short (truncated)."""

    def write(width: int, height: int, rows: int | None = None) -> Path:
        path = tmp_path / f"bilevel-{width}x{height}-{rows}.png"
        row = b"\x00" + b"\x00" * ((width + 7) // 8)
        compressor = zlib.compressobj(9)
        data = bytearray()
        for _ in range(height if rows is None else rows):
            data += compressor.compress(row)
        data += compressor.flush(zlib.Z_FINISH if rows is None else zlib.Z_SYNC_FLUSH)
        header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
        with open(path, "wb") as out:
            out.write(b"\x89PNG\r\n\x1a\n")
            out.write(_chunk(b"IHDR", header))
            out.write(_chunk(b"IDAT", bytes(data)))
            if rows is None:
                out.write(_chunk(b"IEND", b""))
        return path

    return write
