"""EXIF orientation, metadata stripping (no GPS leaves the machine) and alpha."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PIL import ExifTags, Image

from crosspost_images import ImageSpec, ensure_max_width, prepare_image, probe_image

RED, BLUE = (230, 10, 10), (10, 10, 230)


def _left_red_right_blue(width: int, height: int) -> Image.Image:
    image = Image.new("RGB", (width, height), BLUE)
    image.paste(RED, (0, 0, width // 2, height))
    return image


def _near(pixel: object, colour: tuple[int, int, int], slack: int = 20) -> bool:
    assert isinstance(pixel, tuple)
    return all(abs(a - b) <= slack for a, b in zip(pixel[:3], colour, strict=True))


def _orientation_6(save_image: Callable[..., Path]) -> Path:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6  # displayed rotated 90 degrees clockwise
    return save_image("rotated.jpg", _left_red_right_blue(400, 200), quality=95, exif=exif)


def _with_gps(save_image: Callable[..., Path], name: str, size: tuple[int, int]) -> Path:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "TestCam"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (52.0, 31.0, 12.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (13.0, 24.0, 36.0)
    path = save_image(name, _left_red_right_blue(*size), quality=95, exif=exif)
    with Image.open(path) as check:
        assert check.getexif().get_ifd(ExifTags.IFD.GPSInfo), "test image must carry GPS"
    return path


def test_orientation_is_applied_before_measuring(save_image: Callable[..., Path]) -> None:
    path = _orientation_6(save_image)

    info = probe_image(str(path))
    assert (info.width, info.height) == (200, 400)

    result = prepare_image(str(path), ImageSpec(max_width=100))
    assert (result.width, result.height) == (100, 200)
    with Image.open(result.path) as out:
        rgb = out.convert("RGB")
        assert out.size == (100, 200)
        # Rotated clockwise: the stored left (red) half is now on top.
        assert _near(rgb.getpixel((50, 20)), RED)
        assert _near(rgb.getpixel((50, 180)), BLUE)
        assert ExifTags.Base.Orientation not in out.getexif()


def test_rotated_original_needing_no_change_is_still_transposed_when_stripping(
    save_image: Callable[..., Path],
) -> None:
    path = _orientation_6(save_image)

    result = prepare_image(str(path), ImageSpec())

    assert result.derived
    assert (result.width, result.height) == (200, 400)
    with Image.open(result.path) as out:
        assert out.size == (200, 400)
        assert not out.getexif()


def test_ensure_max_width_measures_the_displayed_width(save_image: Callable[..., Path]) -> None:
    path = _orientation_6(save_image)
    assert ensure_max_width(str(path), 200) == str(path)  # displayed 200 wide
    out = ensure_max_width(str(path), 150)
    with Image.open(out) as image:
        assert image.size == (150, 300)


def test_gps_never_leaves_in_a_resized_rendition(save_image: Callable[..., Path]) -> None:
    path = _with_gps(save_image, "gps.jpg", (1600, 1200))

    result = prepare_image(str(path), ImageSpec(max_width=800))

    data = Path(result.path).read_bytes()
    assert b"Exif\x00\x00" not in data
    with Image.open(result.path) as out:
        assert "exif" not in out.info
        assert not out.getexif().get_ifd(ExifTags.IFD.GPSInfo)


def test_gps_is_stripped_even_when_the_size_is_fine(save_image: Callable[..., Path]) -> None:
    path = _with_gps(save_image, "gps-small.jpg", (400, 300))

    result = prepare_image(str(path), ImageSpec(max_width=1280))

    assert result.derived
    assert (result.width, result.height) == (400, 300)
    with Image.open(result.path) as out:
        assert not out.getexif()
        assert b"Exif\x00\x00" not in Path(result.path).read_bytes()


def test_icc_profile_is_kept(save_image: Callable[..., Path]) -> None:
    profile = b"\x00" * 16 + b"RGB " + b"\x00" * 108  # only its bytes matter here
    path = save_image("icc.jpg", Image.new("RGB", (600, 400), RED), icc_profile=profile)

    result = prepare_image(str(path), ImageSpec(max_width=300))

    with Image.open(result.path) as out:
        assert out.info.get("icc_profile") == profile


def test_ensure_max_width_keeps_metadata_when_it_must_not_change_the_file(
    save_image: Callable[..., Path],
) -> None:
    path = _with_gps(save_image, "gps-keep.jpg", (400, 300))
    assert ensure_max_width(str(path), 1280) == str(path)


def _transparent_corner(size: int = 800) -> Image.Image:
    image = Image.new("RGBA", (size, size), (*RED, 255))
    image.paste((0, 0, 0, 0), (0, 0, size // 2, size // 2))
    return image


def test_png_target_keeps_alpha(save_image: Callable[..., Path]) -> None:
    path = save_image("alpha.png", _transparent_corner())

    result = prepare_image(str(path), ImageSpec(max_width=400))

    assert result.format == "PNG"
    with Image.open(result.path) as out:
        assert out.mode == "RGBA"
        assert out.getpixel((10, 10))[3] == 0  # type: ignore[index]
        assert out.getpixel((390, 390)) == (*RED, 255)


def test_jpeg_target_flattens_alpha_on_the_pad_colour(save_image: Callable[..., Path]) -> None:
    path = save_image("alpha.png", _transparent_corner())

    result = prepare_image(
        str(path), ImageSpec(max_width=400, format="JPEG", pad_color=(0, 255, 0))
    )

    assert (result.format, result.mime_type) == ("JPEG", "image/jpeg")
    with Image.open(result.path) as out:
        assert out.mode == "RGB"
        assert _near(out.getpixel((10, 10)), (0, 255, 0))
        assert _near(out.getpixel((390, 390)), RED)


def test_palette_png_with_transparency_keeps_it(save_image: Callable[..., Path]) -> None:
    palette = _transparent_corner(200).quantize(colors=4)
    assert palette.mode == "P"
    path = save_image("palette.png", palette)

    result = prepare_image(str(path), ImageSpec(max_width=100))

    with Image.open(result.path) as out:
        assert out.convert("RGBA").getpixel((5, 5))[3] == 0  # type: ignore[index]
