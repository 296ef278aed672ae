"""Telegram channel publisher for crosspost, on python-telegram-bot."""

from importlib.metadata import version as _version

from crosspost_telegram.caption import CAPTION_LIMIT, caption_length, format_caption
from crosspost_telegram.publisher import (
    PHOTO_MAX_BYTES,
    PHOTO_MAX_RATIO,
    PHOTO_MAX_SIDES_SUM,
    TelegramPublisher,
    create_publisher,
    telegram_image_spec,
)
from crosspost_telegram.settings import DEFAULT_API_BASE_URL, TelegramSettings

__version__ = _version("crosspost-publisher-telegram")

__all__ = [
    "CAPTION_LIMIT",
    "DEFAULT_API_BASE_URL",
    "PHOTO_MAX_BYTES",
    "PHOTO_MAX_RATIO",
    "PHOTO_MAX_SIDES_SUM",
    "TelegramPublisher",
    "TelegramSettings",
    "__version__",
    "caption_length",
    "create_publisher",
    "format_caption",
    "telegram_image_spec",
]
