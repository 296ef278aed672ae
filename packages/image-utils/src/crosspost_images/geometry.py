"""Pure arithmetic: from a displayed size and a spec to the rendition's canvas and size."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import ImageError
from .spec import ImageSpec

__all__ = ["Plan", "fit_size", "plan_geometry", "to_file_box"]

# Ratios are compared with a little slack so 1080/1350 counts as exactly 4:5.
_EPS = 1e-9


@dataclass(frozen=True)
class Plan:
    """Where the pixels go, in displayed (orientation-applied) source coordinates.

    `box` is the source region that is kept (the whole image unless cropping); `canvas` is
    the size of the area the output represents, in source pixels (larger than `box` when
    padding); `size` is the output size in pixels.
    """

    source: tuple[int, int]
    box: tuple[int, int, int, int]
    canvas: tuple[int, int]
    size: tuple[int, int]

    @property
    def changes_geometry(self) -> bool:
        return self.box != (0, 0, *self.source) or self.pads or self.canvas != self.size

    @property
    def pads(self) -> bool:
        return (self.box[2] - self.box[0], self.box[3] - self.box[1]) != self.canvas


def plan_geometry(image_path: str, width: int, height: int, spec: ImageSpec) -> Plan:
    """Plan the rendition of a `width` x `height` (displayed) image; refuse a bad ratio."""
    box = (0, 0, width, height)
    canvas = (width, height)
    ratio = width / height
    too_narrow = spec.min_ratio is not None and ratio < spec.min_ratio - _EPS
    too_wide = spec.max_ratio is not None and ratio > spec.max_ratio + _EPS
    if too_narrow or too_wide:
        if spec.fit == "reject":
            if too_wide:
                assert spec.max_ratio is not None
                sides, limit = f"{ratio:.3g}:1", f"{spec.max_ratio:g}:1"
            else:
                assert spec.min_ratio is not None
                sides, limit = f"1:{1 / ratio:.3g}", f"1:{1 / spec.min_ratio:.3g}"
            raise ImageError(
                f"{image_path}: its sides are {sides} ({width}x{height}) and at most {limit} "
                "is allowed; crop the image"
            )
        if too_narrow:
            assert spec.min_ratio is not None
            if spec.fit == "pad":
                canvas = (math.ceil(height * spec.min_ratio - _EPS), height)
            else:
                kept = max(1, math.floor(width / spec.min_ratio + _EPS))
                top = (height - kept) // 2
                box = (0, top, width, top + kept)
                canvas = (width, kept)
        else:
            assert spec.max_ratio is not None
            if spec.fit == "pad":
                canvas = (width, math.ceil(width / spec.max_ratio - _EPS))
            else:
                kept = max(1, math.floor(height * spec.max_ratio + _EPS))
                left = (width - kept) // 2
                box = (left, 0, left + kept, height)
                canvas = (kept, height)
    return Plan(
        source=(width, height), box=box, canvas=canvas, size=fit_size(canvas[0], canvas[1], spec)
    )


def fit_size(width: int, height: int, spec: ImageSpec, shrink: float = 1.0) -> tuple[int, int]:
    """The largest size, at most `shrink` x (`width`, `height`), that meets every size limit
    and keeps the ratio inside the spec's range."""
    scale = shrink
    if spec.max_width is not None:
        scale = min(scale, spec.max_width / width)
    if spec.max_height is not None:
        scale = min(scale, spec.max_height / height)
    if spec.max_sum is not None:
        scale = min(scale, spec.max_sum / (width + height))
    if scale >= 1.0:
        return width, height
    out_w = max(1, round(width * scale))
    out_h = max(1, round(height * scale))
    # Rounding may overshoot a limit by a pixel; only ever shrink to correct it.
    if spec.max_width is not None:
        out_w = min(out_w, spec.max_width)
    if spec.max_height is not None:
        out_h = min(out_h, spec.max_height)
    if spec.max_sum is not None:
        while out_w + out_h > spec.max_sum:
            if out_w >= out_h:
                out_w -= 1
            else:
                out_h -= 1
    # Rounding may also push the ratio a hair outside its range: prefer growing the other
    # side by a pixel (keeping the binding limit exact), else shrink.
    if spec.min_ratio is not None and out_w / out_h < spec.min_ratio - _EPS:
        wider = math.ceil(out_h * spec.min_ratio - _EPS)
        if _fits(wider, out_h, width, height, spec):
            out_w = wider
        else:
            out_h = max(1, math.floor(out_w / spec.min_ratio + _EPS))
    if spec.max_ratio is not None and out_w / out_h > spec.max_ratio + _EPS:
        taller = math.ceil(out_w / spec.max_ratio - _EPS)
        if _fits(out_w, taller, width, height, spec):
            out_h = taller
        else:
            out_w = max(1, math.floor(out_h * spec.max_ratio + _EPS))
    return out_w, out_h


def _fits(out_w: int, out_h: int, width: int, height: int, spec: ImageSpec) -> bool:
    return (
        out_w <= width
        and out_h <= height
        and (spec.max_width is None or out_w <= spec.max_width)
        and (spec.max_height is None or out_h <= spec.max_height)
        and (spec.max_sum is None or out_w + out_h <= spec.max_sum)
    )


def to_file_box(
    box: tuple[float, float, float, float], orientation: int, file_size: tuple[int, int]
) -> tuple[float, float, float, float]:
    """Map a box in displayed coordinates back to the stored (pre-orientation) pixel grid."""
    width, height = file_size
    left, top, right, bottom = box
    corners = [(left, top), (right, bottom)]
    mapped = [_inverse_point(u, v, orientation, width, height) for u, v in corners]
    xs = [x for x, _ in mapped]
    ys = [y for _, y in mapped]
    return min(xs), min(ys), max(xs), max(ys)


def _inverse_point(
    u: float, v: float, orientation: int, width: int, height: int
) -> tuple[float, float]:
    # (u, v) is displayed; (x, y) stored; width/height are the stored size.
    if orientation == 2:
        return width - u, v
    if orientation == 3:
        return width - u, height - v
    if orientation == 4:
        return u, height - v
    if orientation == 5:
        return v, u
    if orientation == 6:
        return v, height - u
    if orientation == 7:
        return width - v, height - u
    if orientation == 8:
        return width - v, u
    return u, v
