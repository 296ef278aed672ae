"""The size arithmetic alone: every planned output meets every limit of its spec."""

from __future__ import annotations

import random

import pytest

from crosspost_images import ImageError, ImageSpec
from crosspost_images.geometry import plan_geometry

PLATFORM_SPECS = [
    ImageSpec(max_width=1280, max_sum=10000, max_ratio=20, fit="reject"),  # Telegram-like
    ImageSpec(max_width=1080, min_ratio=0.8, max_ratio=1.91, fit="pad"),  # Instagram-like
    ImageSpec(max_width=1080, min_ratio=0.8, max_ratio=1.91, fit="crop"),
    ImageSpec(max_width=1600, max_height=1600),
    ImageSpec(max_sum=777, min_ratio=0.5, max_ratio=2.0, fit="crop"),
]


@pytest.mark.parametrize("spec", PLATFORM_SPECS)
def test_planned_sizes_meet_every_limit(spec: ImageSpec) -> None:
    rng = random.Random(20240601)
    for _ in range(2000):
        width, height = rng.randint(1, 12000), rng.randint(1, 12000)
        try:
            plan = plan_geometry("x.jpg", width, height, spec)
        except ImageError:
            assert spec.fit == "reject"
            continue
        out_w, out_h = plan.size
        assert out_w >= 1
        assert out_h >= 1
        assert spec.max_width is None or out_w <= spec.max_width
        assert spec.max_height is None or out_h <= spec.max_height
        assert spec.max_sum is None or out_w + out_h <= spec.max_sum
        if min(plan.canvas) >= 50:  # tiny images cannot hit a ratio to the pixel
            assert spec.min_ratio is None or out_w / out_h >= spec.min_ratio - 1e-9
            assert spec.max_ratio is None or out_w / out_h <= spec.max_ratio + 1e-9
        # Never upscaled; the kept box lies inside the image.
        assert out_w <= plan.canvas[0]
        assert out_h <= plan.canvas[1]
        left, top, right, bottom = plan.box
        assert 0 <= left < right <= width
        assert 0 <= top < bottom <= height


def test_the_binding_limit_is_met_exactly() -> None:
    spec = ImageSpec(max_width=1080, max_ratio=1.91, fit="crop")
    assert plan_geometry("p.jpg", 4000, 1000, spec).size == (1080, 566)
    pad = ImageSpec(max_width=1080, min_ratio=0.8, fit="pad")
    assert plan_geometry("p.jpg", 1080, 1920, pad).size == (1080, 1350)
