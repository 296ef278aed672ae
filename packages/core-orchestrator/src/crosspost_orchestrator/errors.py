"""The one error hierarchy of crosspost.

Every error a user can cause is a `CrosspostError`, mixed with the standard library type that
fits, so callers can catch either. Messages are one line: what is wrong and what to do.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "CrosspostError",
    "InputError",
    "LedgerError",
    "NothingToPublishError",
    "PluginError",
]


class CrosspostError(Exception):
    """Base class of every error crosspost raises on purpose."""


class ConfigError(CrosspostError, ValueError):
    """The configuration (file, settings table or environment) is wrong or incomplete."""


class InputError(CrosspostError, ValueError):
    """The input (image file, caption, sidecar) cannot be published as it is."""


class PluginError(CrosspostError, LookupError):
    """A publisher plugin is missing, duplicated, or failed to load or build."""


class NothingToPublishError(CrosspostError, LookupError):
    """The image source holds no image that still needs publishing."""


class LedgerError(CrosspostError, OSError):
    """The ledger cannot be read or written (locked, read-only, full disk, corrupt)."""
