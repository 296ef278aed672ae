"""Structured JSON logging, timing helpers, correlation ids and secret redaction for crosspost."""

from importlib.metadata import version as _version

from .config import reset_logging, setup_logging
from .correlation import correlation_scope, get_correlation_id
from .events import log_json, log_publisher_publish, utc_timestamp
from .formatting import TEXT_FORMAT, JsonFormatter
from .redaction import REDACTED, RedactingFilter, register_secret, sanitize
from .timing import elapsed_ms, now_monotonic

__version__ = _version("crosspost-log-utils")

__all__ = [
    "REDACTED",
    "TEXT_FORMAT",
    "JsonFormatter",
    "RedactingFilter",
    "__version__",
    "correlation_scope",
    "elapsed_ms",
    "get_correlation_id",
    "log_json",
    "log_publisher_publish",
    "now_monotonic",
    "register_secret",
    "reset_logging",
    "sanitize",
    "setup_logging",
    "utc_timestamp",
]
