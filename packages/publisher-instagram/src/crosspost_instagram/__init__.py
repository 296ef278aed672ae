"""Instagram publisher for crosspost, on instagrapi run off the event loop."""

from importlib.metadata import version as _version

__version__ = _version("crosspost-publisher-instagram")

__all__ = ["__version__"]
