"""Loopback SMTP, Telegram Bot API and Instagram servers with latency and fault injection, and the publisher conformance suite."""

from importlib.metadata import version as _version

__version__ = _version("crosspost-sandbox")

__all__ = ["__version__"]
