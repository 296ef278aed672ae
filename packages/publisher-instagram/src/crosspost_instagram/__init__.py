"""Instagram publisher for crosspost, on instagrapi run off the event loop."""

from importlib.metadata import version as _version

from crosspost_instagram.caption import (
    CAPTION_MAX_CHARS,
    HASHTAGS_MAX,
    count_hashtags,
    format_caption,
)
from crosspost_instagram.errors import InstagramError
from crosspost_instagram.login import login_interactive
from crosspost_instagram.publisher import (
    MAX_RATIO,
    MIN_RATIO,
    InstagramPublisher,
    create_publisher,
    instagram_image_spec,
)
from crosspost_instagram.settings import DEFAULT_SESSION_FILE, DEFAULT_TIMEOUT_S, InstagramSettings

__version__ = _version("crosspost-publisher-instagram")

__all__ = [
    "CAPTION_MAX_CHARS",
    "DEFAULT_SESSION_FILE",
    "DEFAULT_TIMEOUT_S",
    "HASHTAGS_MAX",
    "MAX_RATIO",
    "MIN_RATIO",
    "InstagramError",
    "InstagramPublisher",
    "InstagramSettings",
    "__version__",
    "count_hashtags",
    "create_publisher",
    "format_caption",
    "instagram_image_spec",
    "login_interactive",
]
