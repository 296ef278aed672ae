"""The bench input: a generated, photo-like 24-megapixel JPEG (6000 x 4000).

Not a flat colour: smooth gradients (sky, light falloff), soft-edged shapes at several
scales (objects out of focus), mid-frequency texture (foliage, fabric) and fine sensor grain,
plus a camera-like EXIF block with a GPS position. The file is built once and cached in
`.bench/`; it is regenerated when missing or when the recipe version changes.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw, ImageFilter

WIDTH, HEIGHT = 6000, 4000
RECIPE = 1  # bump when the recipe changes, so a stale cached photo is rebuilt
QUALITY = 90


def photo_path(bench_dir: Path) -> Path:
    """Where the cached photo of the current recipe lives."""
    return bench_dir / f"photo-{WIDTH}x{HEIGHT}-r{RECIPE}.jpg"


def _gradients(rng: random.Random) -> Image.Image:
    horizontal = Image.linear_gradient("L").rotate(90).resize((WIDTH, HEIGHT), Image.BILINEAR)
    vertical = Image.linear_gradient("L").resize((WIDTH, HEIGHT), Image.BILINEAR)
    # A light falloff centred off the middle, like a vignette around the subject.
    left, top = rng.randrange(WIDTH), rng.randrange(HEIGHT)
    radial = (
        Image.radial_gradient("L")
        .resize((WIDTH * 2, HEIGHT * 2), Image.BILINEAR)
        .crop((left, top, left + WIDTH, top + HEIGHT))
    )
    return Image.merge(
        "RGB",
        (
            ImageChops.blend(horizontal, radial, 0.5),
            ImageChops.blend(vertical, ImageChops.invert(radial), 0.4),
            ImageChops.invert(vertical),
        ),
    )


def _shapes(rng: random.Random) -> Image.Image:
    # Drawn at a quarter of the size and scaled up: soft edges, like an out-of-focus scene.
    small = Image.new("RGB", (WIDTH // 4, HEIGHT // 4), (90, 120, 160))
    draw = ImageDraw.Draw(small)
    w, h = small.size
    for _ in range(140):
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        x, y = rng.randrange(-w // 8, w), rng.randrange(-h // 8, h)
        size = rng.randrange(8, w // 4)
        kind = rng.random()
        if kind < 0.45:
            draw.ellipse((x, y, x + size, y + int(size * rng.uniform(0.4, 1.6))), fill=colour)
        elif kind < 0.8:
            points = [
                (x + rng.randrange(-size, size), y + rng.randrange(-size, size)) for _ in range(5)
            ]
            draw.polygon(points, fill=colour)
        else:
            draw.line(
                (x, y, x + rng.randrange(-w, w), y + rng.randrange(-h, h)),
                fill=colour,
                width=rng.randrange(1, 12),
            )
    small = small.filter(ImageFilter.GaussianBlur(2))
    # Sharp detail too: a few crisp shapes drawn at full size.
    big = small.resize((WIDTH, HEIGHT), Image.BICUBIC)
    draw = ImageDraw.Draw(big)
    for _ in range(60):
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        x, y = rng.randrange(WIDTH), rng.randrange(HEIGHT)
        size = rng.randrange(20, 400)
        draw.rectangle((x, y, x + size, y + size // 2), outline=colour, width=rng.randrange(1, 6))
    return big


def _texture() -> Image.Image:
    # Mid-frequency texture (noise upscaled) plus fine grain at full resolution, both signed
    # around 128 so they can be added to the scene.
    mid = Image.effect_noise((WIDTH // 6, HEIGHT // 6), 20).resize((WIDTH, HEIGHT), Image.BICUBIC)
    grain = Image.effect_noise((WIDTH, HEIGHT), 6)
    return ImageChops.add(mid, grain, scale=1.0, offset=-128)


def _exif() -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "crosspost-bench"  # Make
    exif[0x0110] = "Generated 24MP"  # Model
    exif[0x0132] = "2025:01:01 12:00:00"  # DateTime
    exif[0x0112] = 1  # Orientation: upright
    # A GPS position, as a phone camera writes it: derived files must not carry it.
    exif[0x8825] = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 36.0)}
    return exif


def build_photo(path: Path, seed: int = 24) -> Path:
    """Generate the photo at `path` (atomically) and return the path."""
    rng = random.Random(seed)
    scene = ImageChops.blend(_gradients(rng), _shapes(rng), 0.65)
    texture = _texture()
    scene = ImageChops.add(scene, Image.merge("RGB", (texture,) * 3), scale=1.0, offset=-128)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    scene.save(tmp, "JPEG", quality=QUALITY, exif=_exif())
    os.replace(tmp, path)
    return path


def ensure_photo(bench_dir: Path) -> Path:
    """The cached bench photo, built first if missing."""
    path = photo_path(bench_dir)
    if not path.exists():
        build_photo(path)
    return path
