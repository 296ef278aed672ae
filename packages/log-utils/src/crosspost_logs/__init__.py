"""Structured JSON logging, timing helpers, correlation ids and secret redaction for crosspost."""

from importlib.metadata import version as _version

__version__ = _version("crosspost-log-utils")

__all__ = ["__version__"]
