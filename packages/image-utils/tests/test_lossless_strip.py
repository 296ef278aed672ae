"""A JPEG that fits its spec loses its metadata without being decoded and encoded again:
the same pixels, no EXIF/GPS/XMP/comment, nothing after the image, and a broken file is
still refused."""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import ExifTags, Image

from crosspost_images import ImageError, ImageSpec, prepare_image
from crosspost_images.jpeg_segments import strip_jpeg_metadata

XMP = b"http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta>GPSLatitude 52,31.2N</x:xmpmeta>"


def _noisy(width: int, height: int, seed: int = 1) -> Image.Image:
    rng = random.Random(seed)
    return Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))


def _gps_exif() -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "TestCam"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (52.0, 31.0, 12.0)
    return exif


def _pixels(path: str | Path | io.BytesIO) -> bytes:
    with Image.open(path) as image:
        return image.convert("RGB").tobytes()


@pytest.mark.parametrize("progressive", [False, True], ids=["baseline", "progressive"])
def test_metadata_goes_and_every_pixel_stays(
    save_image: Callable[..., Path], progressive: bool
) -> None:
    profile = b"\x00" * 16 + b"RGB " + b"\x00" * 108
    path = save_image(
        "gps.jpg",
        _noisy(640, 480),
        quality=90,
        exif=_gps_exif(),
        xmp=XMP,
        icc_profile=profile,
        comment=b"shot at home, 12 Elm Street",
        progressive=progressive,
    )
    original = path.read_bytes()

    result = prepare_image(str(path), ImageSpec(max_width=1280))

    assert result.derived
    assert result.format == "JPEG"
    assert (result.width, result.height) == (640, 480)
    data = Path(result.path).read_bytes()
    assert b"Exif\x00\x00" not in data
    assert b"GPSLatitude" not in data
    assert b"Elm Street" not in data
    assert _pixels(result.path) == _pixels(path)  # not re-encoded: identical pixels
    with Image.open(result.path) as out:
        assert out.info.get("icc_profile") == profile
        assert not out.getexif()
    assert len(data) < len(original)
    assert path.read_bytes() == original


def test_extra_images_of_a_multi_picture_file_are_dropped(
    save_image: Callable[..., Path],
) -> None:
    preview = io.BytesIO()
    _noisy(160, 120, seed=2).save(preview, "JPEG", exif=_gps_exif())
    path = save_image("mpo.jpg", _noisy(640, 480), quality=90, exif=_gps_exif())
    path.write_bytes(path.read_bytes() + preview.getvalue())

    result = prepare_image(str(path), ImageSpec(max_width=1280))

    data = Path(result.path).read_bytes()
    assert data.endswith(b"\xff\xd9")
    assert data.count(b"\xff\xd8") == 1
    assert b"Exif" not in data
    assert _pixels(result.path) == _pixels(path)


def test_orientation_other_than_1_is_still_applied_to_the_pixels(
    save_image: Callable[..., Path],
) -> None:
    exif = _gps_exif()
    exif[ExifTags.Base.Orientation] = 6
    path = save_image("rotated.jpg", _noisy(400, 200), quality=90, exif=exif)

    result = prepare_image(str(path), ImageSpec(max_width=1280))

    assert (result.width, result.height) == (200, 400)
    assert b"Exif" not in Path(result.path).read_bytes()


def test_a_truncated_photo_is_refused_not_copied(save_image: Callable[..., Path]) -> None:
    path = save_image("cut.jpg", _noisy(640, 480), quality=90, exif=_gps_exif())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])

    with pytest.raises(ImageError, match="truncated"):
        prepare_image(str(path), ImageSpec(max_width=1280))


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"\x89PNG\r\n\x1a\n", "not a JPEG"),
        (b"\xff\xd8\xff\xe1\x40\x00Exif", "past the end"),
        (b"\xff\xd8\x00\x00", "expected a JPEG marker"),
        (b"\xff\xd8\xff\xda\x00\x02\x12\x34", "ends before"),
    ],
    ids=["png", "short-segment", "garbage", "no-end"],
)
def test_broken_structure_is_a_value_error(data: bytes, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        strip_jpeg_metadata(data)


def test_stuffed_bytes_and_restart_markers_are_copied_through() -> None:
    out = io.BytesIO()
    _noisy(256, 256, seed=3).save(out, "JPEG", quality=95, restart_marker_blocks=4)
    data = out.getvalue()
    assert b"\xff\xd0" in data
    assert b"\xff\x00" in data
    stripped = strip_jpeg_metadata(data)
    assert _pixels(io.BytesIO(stripped)) == _pixels(io.BytesIO(data))
