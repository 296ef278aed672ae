"""The one error type of crosspost_images."""

from __future__ import annotations

__all__ = ["ImageError"]


class ImageError(ValueError):
    """An input image that cannot be used: missing, unreadable, corrupt, too big or unsupported.

    The message is one line that names the file and what is wrong with it.
    """
