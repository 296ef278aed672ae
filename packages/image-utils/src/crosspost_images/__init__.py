"""Fast, faithful, cached image renditions for crosspost publishers (Pillow)."""

from importlib.metadata import version as _version

from .cache import set_cache_dir
from .errors import ImageError
from .prepare import (
    ensure_max_width,
    ensure_max_width_async,
    prepare_image,
    prepare_image_async,
    prepare_stats,
    probe_image,
)
from .spec import ImageInfo, ImageSpec, PreparedImage

__version__ = _version("crosspost-image-utils")

__all__ = [
    "ImageError",
    "ImageInfo",
    "ImageSpec",
    "PreparedImage",
    "__version__",
    "ensure_max_width",
    "ensure_max_width_async",
    "prepare_image",
    "prepare_image_async",
    "prepare_stats",
    "probe_image",
    "set_cache_dir",
]
