"""What a rendition must look like (ImageSpec) and what was produced (PreparedImage, ImageInfo)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["MIME_TYPES", "ImageInfo", "ImageSpec", "PreparedImage"]

MIME_TYPES: dict[str, str] = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}

_FITS = ("pad", "crop", "reject")
_FORMATS = ("keep", "JPEG", "PNG")


@dataclass(frozen=True)
class ImageSpec:
    """The limits a platform puts on an image; every field left at None is unlimited.

    Ratios are width / height. `fit` says how an image outside [min_ratio, max_ratio] is
    brought into range: pad the short side with `pad_color`, centre-crop, or refuse it with
    `ImageError`. `max_bytes` is met by re-encoding at a lower quality, then at a smaller size.
    `max_pixels` refuses an image from its header, before anything is decoded.
    """

    max_width: int | None = None
    max_height: int | None = None
    max_sum: int | None = None
    min_ratio: float | None = None
    max_ratio: float | None = None
    fit: Literal["pad", "crop", "reject"] = "reject"
    pad_color: tuple[int, int, int] = (255, 255, 255)
    max_bytes: int | None = None
    format: Literal["keep", "JPEG", "PNG"] = "keep"
    quality: int = 90
    strip_metadata: bool = True
    max_pixels: int = 100_000_000

    def __post_init__(self) -> None:
        for name in ("max_width", "max_height", "max_sum", "max_bytes"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(
                    f"ImageSpec.{name} must be a positive integer or None, not {value!r}"
                )
        for name in ("min_ratio", "max_ratio"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(
                    f"ImageSpec.{name} must be a positive number or None, not {value!r}"
                )
        if (
            self.min_ratio is not None
            and self.max_ratio is not None
            and self.min_ratio > self.max_ratio
        ):
            raise ValueError(
                f"ImageSpec.min_ratio ({self.min_ratio}) is larger than max_ratio ({self.max_ratio})"
            )
        if self.fit not in _FITS:
            raise ValueError(f"ImageSpec.fit must be one of {', '.join(_FITS)}, not {self.fit!r}")
        if self.format not in _FORMATS:
            raise ValueError(
                f"ImageSpec.format must be one of {', '.join(_FORMATS)}, not {self.format!r}"
            )
        if not 1 <= self.quality <= 100:
            raise ValueError(f"ImageSpec.quality must be between 1 and 100, not {self.quality!r}")
        if len(self.pad_color) != 3 or not all(0 <= c <= 255 for c in self.pad_color):
            raise ValueError(
                f"ImageSpec.pad_color must be an (r, g, b) of 0-255, not {self.pad_color!r}"
            )
        if self.max_pixels < 1:
            raise ValueError(f"ImageSpec.max_pixels must be positive, not {self.max_pixels!r}")


@dataclass(frozen=True)
class PreparedImage:
    """A rendition that meets its spec.

    `derived=False` means `path` is the caller's own, untouched file; otherwise `path` is a
    file in the cache directory that nobody else writes to. `width` and `height` are the
    displayed size (EXIF orientation applied).
    """

    path: str
    width: int
    height: int
    size_bytes: int
    format: str
    mime_type: str
    derived: bool


@dataclass(frozen=True)
class ImageInfo:
    """What `probe_image` found: displayed size (EXIF orientation applied) and format."""

    width: int
    height: int
    format: str
    mime_type: str
