"""Aspect ratios: pad, crop or refuse; orientation-aware geometry."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from crosspost_images import ImageError, ImageSpec, prepare_image

INSTAGRAM_PORTRAIT = 0.8
INSTAGRAM_LANDSCAPE = 1.91
RED, BLUE = (220, 20, 20), (20, 20, 220)


def _stripes(width: int, height: int) -> Image.Image:
    """Red with a blue band through the middle third (so crops and pads are visible)."""
    image = Image.new("RGB", (width, height), RED)
    ImageDraw.Draw(image).rectangle((0, height // 3, width, 2 * height // 3), fill=BLUE)
    return image


def _close(pixel: object, colour: tuple[int, int, int], slack: int = 24) -> bool:
    assert isinstance(pixel, tuple)
    return all(abs(a - b) <= slack for a, b in zip(pixel[:3], colour, strict=True))


def test_portrait_is_padded_to_four_by_five(save_image: Callable[..., Path]) -> None:
    path = save_image("portrait.jpg", _stripes(1080, 1920), quality=95)
    spec = ImageSpec(max_width=1080, min_ratio=INSTAGRAM_PORTRAIT, fit="pad", pad_color=(0, 0, 0))

    result = prepare_image(str(path), spec)

    assert (result.width, result.height) == (1080, 1350)
    with Image.open(result.path) as out:
        rgb = out.convert("RGB")
        assert _close(rgb.getpixel((2, 675)), (0, 0, 0))  # left pad
        assert _close(rgb.getpixel((1077, 675)), (0, 0, 0))  # right pad
        assert _close(rgb.getpixel((540, 675)), BLUE)
        assert _close(rgb.getpixel((540, 20)), RED)


def test_portrait_is_cropped_to_four_by_five(save_image: Callable[..., Path]) -> None:
    path = save_image("portrait.jpg", _stripes(1080, 1920), quality=95)
    spec = ImageSpec(max_width=1080, min_ratio=INSTAGRAM_PORTRAIT, fit="crop")

    result = prepare_image(str(path), spec)

    assert (result.width, result.height) == (1080, 1350)
    with Image.open(result.path) as out:
        rgb = out.convert("RGB")
        # Centre crop keeps rows 285..1635 of 1920: red on top, blue band in the middle.
        assert _close(rgb.getpixel((2, 10)), RED)
        assert _close(rgb.getpixel((540, 675)), BLUE)
        assert _close(rgb.getpixel((1077, 1340)), RED)


def test_panorama_is_padded_to_at_most_1_91(save_image: Callable[..., Path]) -> None:
    path = save_image("pano.jpg", _stripes(4000, 1000), quality=95)
    spec = ImageSpec(
        max_width=1080, min_ratio=INSTAGRAM_PORTRAIT, max_ratio=INSTAGRAM_LANDSCAPE, fit="pad"
    )

    result = prepare_image(str(path), spec)

    assert result.width == 1080
    assert result.width / result.height <= INSTAGRAM_LANDSCAPE
    assert result.width / result.height > 1.89
    with Image.open(result.path) as out:
        rgb = out.convert("RGB")
        assert _close(rgb.getpixel((540, 1)), (255, 255, 255))  # top pad
        assert _close(rgb.getpixel((540, result.height - 2)), (255, 255, 255))  # bottom pad
        assert _close(rgb.getpixel((540, result.height // 2)), BLUE)


def test_panorama_is_cropped_to_at_most_1_91(save_image: Callable[..., Path]) -> None:
    path = save_image("pano.jpg", _stripes(4000, 1000), quality=95)
    spec = ImageSpec(max_width=1080, max_ratio=INSTAGRAM_LANDSCAPE, fit="crop")

    result = prepare_image(str(path), spec)

    assert result.width == 1080
    assert 1.89 < result.width / result.height <= INSTAGRAM_LANDSCAPE
    with Image.open(result.path) as out:
        rgb = out.convert("RGB")
        assert _close(rgb.getpixel((540, 2)), RED)


def test_extreme_ratio_is_refused_naming_ratio_and_range(save_image: Callable[..., Path]) -> None:
    path = save_image("strip.png", Image.new("RGB", (12000, 300), RED))

    with pytest.raises(ImageError) as caught:
        prepare_image(str(path), ImageSpec(max_sum=10000, max_ratio=20, fit="reject"))

    message = str(caught.value)
    assert "\n" not in message
    assert str(path) in message
    assert "40" in message
    assert "20" in message


def test_ratio_exactly_on_the_limit_is_left_alone(save_image: Callable[..., Path]) -> None:
    path = save_image("exact.png", Image.new("RGB", (1080, 1350), RED))
    result = prepare_image(str(path), ImageSpec(max_width=1080, min_ratio=0.8, max_ratio=1.91))
    assert not result.derived


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_is_cropped_and_scaled_as_displayed(
    orientation: int,
    save_image: Callable[..., Path],
    psnr: Callable[[Image.Image, Image.Image], float],
) -> None:
    # What the viewer should see: four distinct quadrants, 1600x800.
    shown = Image.new("RGB", (1600, 800))
    draw = ImageDraw.Draw(shown)
    for index, colour in enumerate([(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30)]):
        left, top = (index % 2) * 800, (index // 2) * 400
        draw.rectangle((left, top, left + 799, top + 399), fill=colour)
    draw.ellipse((500, 200, 900, 600), fill=(250, 250, 250))
    # Store it the way a camera would: pixels un-rotated, orientation in EXIF.
    stored = {
        1: shown,
        2: shown.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
        3: shown.transpose(Image.Transpose.ROTATE_180),
        4: shown.transpose(Image.Transpose.FLIP_TOP_BOTTOM),
        5: shown.transpose(Image.Transpose.TRANSPOSE),
        6: shown.transpose(Image.Transpose.ROTATE_90),
        7: shown.transpose(Image.Transpose.TRANSVERSE),
        8: shown.transpose(Image.Transpose.ROTATE_270),
    }[orientation]
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = save_image(f"o{orientation}.jpg", stored, quality=95, exif=exif)

    result = prepare_image(str(path), ImageSpec(max_width=300, max_ratio=1.0, fit="crop"))

    assert (result.width, result.height) == (300, 300)
    expected = shown.crop((400, 0, 1200, 800)).resize((300, 300), Image.Resampling.LANCZOS)
    with Image.open(result.path) as out:
        assert 0x0112 not in out.getexif()
        assert psnr(expected, out) >= 30.0
