"""Fast, faithful, cached image renditions for crosspost publishers (Pillow)."""

from importlib.metadata import version as _version

__version__ = _version("crosspost-image-utils")

__all__ = ["__version__"]
