"""Opening an image file safely: sniffing its format, reading its header, refusing bad input.

Pillow's `Image.open` tries every registered plugin and checks its own decompression-bomb
limit with a *warning* (an error under `-W error`, noise otherwise). We sniff the format
ourselves and construct the JPEG/PNG/WEBP plugin directly, so the only size limit applied is
the caller's `max_pixels`, checked from the header before a single pixel is decoded.
"""

from __future__ import annotations

import os
import stat
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO

from PIL import Image, ImageFile, JpegImagePlugin, PngImagePlugin

from .errors import ImageError

__all__ = [
    "ORIENTATION_TAG",
    "FileIdentity",
    "decode_error",
    "identify_file",
    "open_image",
    "orientation_of",
]

ORIENTATION_TAG = 0x0112

_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"GIF87a", 0, "GIF"),
    (b"GIF89a", 0, "GIF"),
    (b"BM", 0, "BMP"),
    (b"II*\x00", 0, "TIFF"),
    (b"MM\x00*", 0, "TIFF"),
    (b"\x00\x00\x01\x00", 0, "ICO"),
    (b"8BPS", 0, "PSD"),
    (b"%PDF", 0, "PDF"),
    (b"\x00\x00\x00\x0cjP  ", 0, "JPEG 2000"),
)
_FTYP_BRANDS = {b"heic": "HEIC", b"heix": "HEIC", b"mif1": "HEIF", b"avif": "AVIF"}


@dataclass(frozen=True)
class FileIdentity:
    """Who a file is right now: what a cache entry for it must match."""

    realpath: str
    size: int
    mtime_ns: int
    inode: int


def identify_file(image_path: str) -> FileIdentity:
    """Stat `image_path`, refusing a missing file, a directory or an empty file."""
    try:
        st = os.stat(image_path)
    except FileNotFoundError:
        raise ImageError(f"{image_path}: no such file") from None
    except OSError as exc:
        raise ImageError(f"{image_path}: cannot be read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise ImageError(f"{image_path}: is a directory, not an image file")
    if not stat.S_ISREG(st.st_mode):
        # A FIFO or device would block or never end; only plain files are images.
        raise ImageError(f"{image_path}: is not a regular file")
    if st.st_size == 0:
        raise ImageError(f"{image_path}: is empty (0 bytes), not an image")
    return FileIdentity(os.path.realpath(image_path), st.st_size, st.st_mtime_ns, st.st_ino)


def _sniff(head: bytes) -> str:
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    for signature, offset, name in _SIGNATURES:
        if head[offset : offset + len(signature)] == signature:
            return name
    if head[4:8] == b"ftyp" and head[8:12] in _FTYP_BRANDS:
        return _FTYP_BRANDS[head[8:12]]
    return ""


def _webp_size(head: bytes) -> tuple[int, int] | None:
    """Canvas size from a WEBP header, read before libwebp allocates the canvas."""
    chunk = head[12:16]
    try:
        if chunk == b"VP8 " and head[23:26] == b"\x9d\x01\x2a":
            width, height = struct.unpack("<HH", head[26:30])
            return width & 0x3FFF, height & 0x3FFF
        if chunk == b"VP8L" and head[20:21] == b"\x2f":
            bits = int.from_bytes(head[21:25], "little")
            return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        if chunk == b"VP8X":
            width = int.from_bytes(head[24:27], "little") + 1
            height = int.from_bytes(head[27:30], "little") + 1
            return width, height
    except (struct.error, IndexError):
        return None
    return None


def decode_error(image_path: str, exc: BaseException) -> ImageError:
    """Turn whatever Pillow raised while reading pixels into a one-line ImageError."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return ImageError(f"{image_path}: too many pixels to decode safely ({text})")
    if "truncated" in text.lower() or isinstance(exc, EOFError):
        return ImageError(f"{image_path}: is truncated or incomplete ({text}); copy the file again")
    return ImageError(f"{image_path}: is a damaged image that cannot be decoded ({text})")


@contextmanager
def open_image(image_path: str, max_pixels: int) -> Iterator[ImageFile.ImageFile]:
    """Open `image_path` read-only and yield its (not yet decoded) Pillow image.

    Refuses, with ImageError: anything that is not JPEG, PNG or WEBP, an unreadable header,
    more than `max_pixels` pixels, and animations (more than one frame).
    """
    try:
        fp = open(image_path, "rb")  # noqa: SIM115 - closed by the `with fp` right below
    except FileNotFoundError:
        raise ImageError(f"{image_path}: no such file") from None
    except OSError as exc:
        raise ImageError(f"{image_path}: cannot be read ({exc.strerror or exc})") from None
    with fp:
        head = fp.read(64)
        kind = _sniff(head)
        if not kind:
            raise ImageError(
                f"{image_path}: is not an image crosspost can read (expected JPEG, PNG or WEBP)"
            )
        if kind not in ("JPEG", "PNG", "WEBP"):
            raise ImageError(
                f"{image_path}: {kind} images are not supported; convert it to JPEG or PNG"
            )
        if kind == "WEBP":
            size = _webp_size(head)
            if size is None:
                raise ImageError(f"{image_path}: has a damaged WEBP header")
            _check_pixels(image_path, size, max_pixels)
        fp.seek(0)
        image = _construct(image_path, kind, fp)
        try:
            _check_pixels(image_path, image.size, max_pixels)
            frames = getattr(image, "n_frames", 1)
            if isinstance(frames, int) and frames > 1:
                raise ImageError(
                    f"{image_path}: is animated ({frames} frames); only still images can be posted"
                )
            yield image
        finally:
            image.close()


def _construct(image_path: str, kind: str, fp: IO[bytes]) -> ImageFile.ImageFile:
    try:
        if kind == "JPEG":
            # The plain JPEG class on purpose: a camera JPEG with an embedded preview (MPO)
            # is one photo, not an animation.
            return JpegImagePlugin.JpegImageFile(fp)
        if kind == "PNG":
            return PngImagePlugin.PngImageFile(fp)
        # Imported on use: it needs libwebp, which only WEBP input should depend on.
        from PIL import WebPImagePlugin

        return WebPImagePlugin.WebPImageFile(fp)
    except ImageError:
        raise
    except Exception as exc:
        text = " ".join(str(exc).split()) or type(exc).__name__
        if isinstance(exc, Image.DecompressionBombError):
            raise ImageError(f"{image_path}: too many pixels to decode safely ({text})") from exc
        raise ImageError(f"{image_path}: has a damaged {kind} header ({text})") from exc


def _check_pixels(image_path: str, size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width < 1 or height < 1:
        raise ImageError(f"{image_path}: has an impossible size {width}x{height}")
    if width * height > max_pixels:
        raise ImageError(
            f"{image_path}: {width}x{height} is {width * height:,} pixels, more than the limit of "
            f"{max_pixels:,}; refused before decoding"
        )


def orientation_of(image: Image.Image) -> int:
    """The EXIF orientation (1-8) of `image`, 1 when absent or nonsense."""
    try:
        value = image.getexif().get(ORIENTATION_TAG, 1)
    except Exception:  # noqa: BLE001 - broken EXIF must not make a photo unusable
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1
