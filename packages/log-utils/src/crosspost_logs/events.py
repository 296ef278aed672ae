"""Structured events: one JSON object per log record."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from .correlation import get_correlation_id
from .redaction import sanitize_value
from .timing import elapsed_ms

__all__ = ["log_json", "log_publisher_publish", "utc_timestamp"]


def utc_timestamp(created: float | None = None) -> str:
    """Return an ISO-8601 UTC timestamp with milliseconds, for now or for ``created`` (epoch s)."""
    moment = datetime.now(UTC) if created is None else datetime.fromtimestamp(created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _emit(
    logger: logging.Logger, level: int, message: str, fields: dict[str, Any], stacklevel: int
) -> None:
    if not logger.isEnabledFor(level):
        return
    event: dict[str, Any] = {
        "timestamp": utc_timestamp(),
        "level": logging.getLevelName(level),
        "logger": logger.name,
        "message": message,
        "correlation_id": get_correlation_id(),
    }
    event.update(fields)
    clean: dict[str, Any] = sanitize_value(event)
    logger.log(
        level,
        json.dumps(clean, ensure_ascii=True),
        extra={"crosspost_fields": clean},
        stacklevel=stacklevel + 1,
    )


def log_json(logger: logging.Logger, level: int, message: str, **fields: Any) -> None:
    """Log one record whose message is a JSON object.

    The object holds ``timestamp`` (ISO-8601 UTC), ``level``, ``logger``, ``message``,
    ``correlation_id`` (the bound id or null, unless given in ``fields``) and ``fields``.
    Every string in it is sanitized. The object is also on the record as
    ``record.crosspost_fields``.
    """
    _emit(logger, level, message, fields, stacklevel=2)


def log_publisher_publish(
    logger: logging.Logger,
    platform: str,
    start: float,
    success: bool,
    error: str | None = None,
    **fields: Any,
) -> int:
    """Log the ``publisher_publish`` event and return its ``duration_ms``.

    Fields: ``platform``, ``duration_ms`` (from ``start``, a ``now_monotonic()`` reading, to
    now), ``success``, ``error``, ``correlation_id`` and ``fields`` (``attempts=``,
    ``post_id=``...). Logged at INFO on success, ERROR on failure.
    """
    duration = elapsed_ms(start)
    event: dict[str, Any] = {
        "platform": platform,
        "duration_ms": duration,
        "success": success,
        "error": error,
    }
    event.update(fields)
    _emit(
        logger,
        logging.INFO if success else logging.ERROR,
        "publisher_publish",
        event,
        stacklevel=2,
    )
    return duration
