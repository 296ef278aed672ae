"""Decoding, resampling and encoding one rendition.

Speed comes from decoding JPEGs at a reduced scale (libjpeg's DCT scaling via `draft`):
the smallest scale that still has at least as many pixels as the output, then a LANCZOS
pass that stays faithful to a full-size resample. The reduced decode is shared with the
other renditions of the same file (see `decodes`), since its cost barely depends on scale.
"""

from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageFile

from .cache import write_atomically
from .decodes import Decoded, decodes
from .errors import ImageError
from .formats import FileIdentity, decode_error, open_image, orientation_of
from .geometry import Plan, fit_size, plan_geometry, to_file_box
from .jpeg_segments import strip_jpeg_metadata
from .spec import MIME_TYPES, ImageInfo, ImageSpec, PreparedImage

__all__ = ["EXTENSIONS", "probe_file", "render", "validated_load"]

EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}

_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# Keys of Pillow's `info` that carry EXIF or XMP (which may hold a GPS position).
_METADATA_KEYS = (
    "exif",
    "xmp",
    "XML:com.adobe.xmp",
    "Raw profile type exif",
    "Raw profile type xmp",
)
_QUALITY_FLOOR = 60
# How much larger than the output the reduced JPEG decode must be. Measured on a noisy
# 6000x4000 photo -> 1280: a margin of 2 costs ~40% more time for +0.1-0.5 dB PSNR after
# encoding (both ~40+ dB against a full-decode LANCZOS), so the smallest sufficient scale wins.
_DRAFT_MARGIN = 1.0


def validated_load(image_path: str, image: ImageFile.ImageFile, cheap: bool = False) -> None:
    """Decode `image`, turning truncation and corruption into ImageError.

    With `cheap`, a JPEG is decoded at 1/8 scale: every byte of the entropy-coded data is
    still read, so truncation is caught, at a fraction of the cost.
    """
    # Someone else in the process may have relaxed this; a truncated photo must never be
    # published half-grey.
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise ImageError(
            f"{image_path}: cannot be checked because PIL.ImageFile.LOAD_TRUNCATED_IMAGES is "
            "set; leave it False"
        )
    if cheap and image.format == "JPEG":
        image.draft(None, (1, 1))
    try:
        image.load()
    except ImageError:
        raise
    except Exception as exc:
        raise decode_error(image_path, exc) from exc


def displayed_size(image: Image.Image, orientation: int) -> tuple[int, int]:
    width, height = image.size
    return (height, width) if orientation >= 5 else (width, height)


def probe_file(image_path: str, max_pixels: int) -> ImageInfo:
    """Open and fully validate `image_path`; never writes anything."""
    with open_image(image_path, max_pixels) as image:
        fmt = str(image.format)
        orientation = orientation_of(image)
        width, height = displayed_size(image, orientation)
        validated_load(image_path, image, cheap=True)
    return ImageInfo(width=width, height=height, format=fmt, mime_type=MIME_TYPES[fmt])


@dataclass(frozen=True)
class _Source:
    format: str
    orientation: int
    file_size: tuple[int, int]
    has_alpha: bool
    has_metadata: bool
    icc_profile: bytes | None


def render(
    image_path: str, ident: FileIdentity, spec: ImageSpec, directory: str, stem: str
) -> PreparedImage | None:
    """Write the rendition of `image_path` for `spec` into `directory` and describe it.

    Returns None when the original already meets the spec (the caller still validates its
    pixels). Raises ImageError for input that is bad or cannot meet the spec.
    """
    with open_image(image_path, spec.max_pixels) as image:
        orientation = orientation_of(image)
        source = _Source(
            format=str(image.format),
            orientation=orientation,
            file_size=image.size,
            has_alpha=_has_alpha(image),
            has_metadata=any(key in image.info for key in _METADATA_KEYS),
            icc_profile=image.info.get("icc_profile") or None,
        )
        plan = plan_geometry(image_path, *displayed_size(image, orientation), spec)
        out_format = source.format if spec.format == "keep" else spec.format
        must_change = (
            plan.changes_geometry
            or out_format != source.format
            or (spec.max_bytes is not None and ident.size > spec.max_bytes)
            or (spec.strip_metadata and (source.has_metadata or orientation != 1))
        )
        if not must_change:
            return None
        stripped = _strip_only(image_path, ident, image, source, plan, spec, out_format)
        if stripped is not None:
            width, height = source.file_size
            path = write_atomically(directory, stem + EXTENSIONS["JPEG"], stripped)
            return PreparedImage(
                path=path,
                width=width,
                height=height,
                size_bytes=len(stripped),
                format="JPEG",
                mime_type=MIME_TYPES["JPEG"],
                derived=True,
            )
        pixels = _draw(image_path, ident, image, source, plan, spec, out_format)
        # Still inside `with`: an untouched JPEG is re-encoded from the open file itself.
        pixels, out_format, data = _encode_to_fit(image_path, pixels, source, spec, out_format)
    final = os.path.join(directory, stem + EXTENSIONS[out_format])
    if os.path.realpath(final) == ident.realpath:
        raise ImageError(f"{image_path}: lies in the cache directory under a derived name; move it")
    path = write_atomically(directory, stem + EXTENSIONS[out_format], data)
    return PreparedImage(
        path=path,
        width=pixels.width,
        height=pixels.height,
        size_bytes=len(data),
        format=out_format,
        mime_type=MIME_TYPES[out_format],
        derived=True,
    )


def _strip_only(
    image_path: str,
    ident: FileIdentity,
    image: ImageFile.ImageFile,
    source: _Source,
    plan: Plan,
    spec: ImageSpec,
    out_format: str,
) -> bytes | None:
    """A JPEG that only has to lose its metadata, losslessly: the file's own segments
    without the metadata ones (see `jpeg_segments`). None when more has to change: the
    geometry, the format, the size, or an EXIF orientation that must be applied to the
    pixels before the EXIF that states it goes."""
    if (
        source.format != "JPEG"
        or out_format != "JPEG"
        or image.mode not in ("RGB", "L")  # CMYK and friends are converted to RGB
        or plan.changes_geometry
        or source.orientation != 1
        or (spec.max_bytes is not None and ident.size > spec.max_bytes)
    ):
        return None
    # Every byte of the image data is still decoded (at 1/8 scale, cheaply), so a truncated
    # or corrupt file is refused here as it would be by a re-encode.
    validated_load(image_path, image, cheap=True)
    try:
        with open(image_path, "rb") as handle:
            data = handle.read()
        return strip_jpeg_metadata(data)
    except OSError as exc:
        raise ImageError(f"{image_path}: cannot be read ({exc.strerror or exc})") from exc
    except ValueError as exc:
        raise ImageError(f"{image_path}: is a damaged JPEG ({exc})") from exc


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info


def _draw(
    image_path: str,
    ident: FileIdentity,
    image: ImageFile.ImageFile,
    source: _Source,
    plan: Plan,
    spec: ImageSpec,
    out_format: str,
) -> Image.Image:
    """Decode (reduced when possible), orient, crop, resample and pad to `plan`."""
    keep_alpha = source.has_alpha and out_format != "JPEG"
    box_w = plan.box[2] - plan.box[0]
    box_h = plan.box[3] - plan.box[1]
    out_w, out_h = plan.size
    canvas_w, canvas_h = plan.canvas
    # The part of the output the kept pixels cover (all of it unless padding).
    content = (
        (max(1, round(box_w * out_w / canvas_w)), max(1, round(box_h * out_h / canvas_h)))
        if plan.pads
        else plan.size
    )
    rotated = source.orientation >= 5
    content_file = (content[1], content[0]) if rotated else content
    file_box = to_file_box(
        (float(plan.box[0]), float(plan.box[1]), float(plan.box[2]), float(plan.box[3])),
        source.orientation,
        source.file_size,
    )
    scale = content_file[0] / (file_box[2] - file_box[0])
    need = _jpeg_reduction(source.file_size, scale) if source.format == "JPEG" else 1
    shared: Image.Image | None = None
    if need > 1:
        decoded = decodes.get(ident, need, lambda: _decode_reduced(image_path, image, need))
        pixels = shared = decoded.pixels
        file_box = (
            file_box[0] / decoded.reduction,
            file_box[1] / decoded.reduction,
            file_box[2] / decoded.reduction,
            file_box[3] / decoded.reduction,
        )
    else:
        validated_load(image_path, image)
        decodes.count_unshared()
        pixels = _working_mode(image)
    whole = file_box == (0.0, 0.0, float(pixels.width), float(pixels.height))
    if pixels.size != content_file or not whole:
        pixels = pixels.resize(
            content_file, Image.Resampling.LANCZOS, box=file_box, reducing_gap=3.0
        )
    if source.orientation in _TRANSPOSE:
        pixels = pixels.transpose(_TRANSPOSE[source.orientation])
    if plan.pads:
        fill: int | tuple[int, ...] = spec.pad_color
        if pixels.mode == "RGBA":
            fill = (*spec.pad_color, 255)
        elif pixels.mode == "L":
            fill = round(sum(spec.pad_color) / 3)
        canvas = Image.new(pixels.mode, plan.size, fill)
        canvas.paste(pixels, ((out_w - content[0]) // 2, (out_h - content[1]) // 2))
        pixels = canvas
    if pixels.mode == "RGBA" and not keep_alpha:
        flat = Image.new("RGB", pixels.size, spec.pad_color)
        flat.paste(pixels, mask=pixels.getchannel("A"))
        pixels = flat
    if pixels is shared:
        # Saving sets attributes on the image: other threads may be reading this one.
        pixels = pixels.copy()
    return pixels


def _jpeg_reduction(file_size: tuple[int, int], scale: float) -> int:
    """The largest DCT scale-down (1, 2, 4 or 8) that keeps at least `scale` x the pixels,
    by the rule Pillow's `JpegImageFile.draft` applies."""
    if scale * _DRAFT_MARGIN >= 1.0:
        return 1
    file_w, file_h = file_size
    wanted_w = max(1, math.ceil(file_w * scale * _DRAFT_MARGIN))
    wanted_h = max(1, math.ceil(file_h * scale * _DRAFT_MARGIN))
    factor = min(file_w // wanted_w, file_h // wanted_h)
    return next(r for r in (8, 4, 2, 1) if factor >= r)


def _decode_reduced(image_path: str, image: ImageFile.ImageFile, reduction: int) -> Decoded:
    """Decode the whole of `image` (a JPEG not yet loaded) at 1/`reduction` scale.

    `image` is spent afterwards: its pixels are released as soon as they are copied.
    """
    file_w, file_h = image.size
    # Asking for exactly 1/reduction of each side makes draft pick that scale.
    drafted = image.draft(None, (max(1, file_w // reduction), max(1, file_h // reduction)))
    actual = 1 if drafted is None else round(file_w / drafted[1][2])
    validated_load(image_path, image)
    pixels = _working_mode(image)
    if pixels is image:
        # The file's own image is destroyed when the file is closed; the shared one lives on.
        pixels = image.copy()
    image.close()
    return Decoded(pixels, actual)


def _working_mode(image: Image.Image) -> Image.Image:
    """A mode LANCZOS works on and every output format accepts: RGB, RGBA or L."""
    mode = image.mode
    if mode in ("RGB", "L", "RGBA"):
        return image
    if _has_alpha(image):
        return image.convert("RGBA")
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit grey: scale to 8 bits instead of clipping everything above 255 to white.
        return image.convert("I").point(lambda value: value / 256).convert("L")
    if mode == "1":
        return image.convert("L")
    return image.convert("RGB")


def _encode(
    pixels: Image.Image, fmt: str, quality: int | str, icc: bytes | None, optimize: bool = False
) -> bytes:
    out = io.BytesIO()
    options: dict[str, Any] = {}
    if icc:
        options["icc_profile"] = icc
    if fmt == "JPEG":
        if quality == "keep":
            options["subsampling"] = "keep"
        pixels.save(out, "JPEG", quality=quality, optimize=optimize, **options)
    elif fmt == "PNG":
        pixels.save(out, "PNG", **options)
    else:
        pixels.save(out, "WEBP", quality=quality, **options)
    return out.getvalue()


def _encode_to_fit(
    image_path: str, pixels: Image.Image, source: _Source, spec: ImageSpec, fmt: str
) -> tuple[Image.Image, str, bytes]:
    """Encode; when over `max_bytes`, lower the quality, then the size, until it fits."""
    # A CMYK profile describes the pixels before conversion to RGB, not after.
    icc = None if _is_cmyk_profile(source.icc_profile) else source.icc_profile
    untouched_jpeg = (
        isinstance(pixels, ImageFile.ImageFile) and pixels.format == "JPEG" and fmt == "JPEG"
    )
    # Re-encoding with the source's own quantisation tables loses almost nothing.
    quality: int | str = "keep" if untouched_jpeg else spec.quality
    # Optimised Huffman tables save 1-15% of the bytes for 2-3x the encoding time: only
    # worth it when the bytes are limited.
    data = _encode(pixels, fmt, quality, icc)
    limit = spec.max_bytes
    if limit is None or len(data) <= limit:
        return pixels, fmt, data
    if fmt == "JPEG":
        data = _encode(pixels, fmt, quality, icc, optimize=True)
        if len(data) <= limit:
            return pixels, fmt, data
    if fmt == "PNG" and spec.format == "keep" and pixels.mode != "RGBA":
        fmt = "JPEG"
        data = _encode(pixels, fmt, spec.quality, icc, optimize=True)
        if len(data) <= limit:
            return pixels, fmt, data
    lossy = fmt in ("JPEG", "WEBP")
    quality = spec.quality
    if lossy:
        while quality > _QUALITY_FLOOR and len(data) > limit:
            quality = max(_QUALITY_FLOOR, quality - 8)
            data = _encode(pixels, fmt, quality, icc, optimize=True)
        if len(data) <= limit:
            return pixels, fmt, data
    base = pixels
    shrink = 1.0
    while len(data) > limit:
        # Bytes scale roughly with area; aim a little under and never shrink by much at once.
        shrink *= min(0.9, max(0.5, math.sqrt(limit / len(data)) * 0.95))
        size = fit_size(base.width, base.height, spec, shrink=shrink)
        if min(size) < 16:
            raise ImageError(
                f"{image_path}: cannot be made smaller than {limit:,} bytes without shrinking it "
                "below 16 pixels; use a smaller or simpler image"
            )
        pixels = base.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
        data = _encode(pixels, fmt, quality, icc, optimize=True)
    return pixels, fmt, data


def _is_cmyk_profile(icc: bytes | None) -> bool:
    return icc is not None and icc[16:20] == b"CMYK"
