"""Telegram channel publisher for crosspost, on python-telegram-bot."""

from importlib.metadata import version as _version

__version__ = _version("crosspost-publisher-telegram")

__all__ = ["__version__"]
