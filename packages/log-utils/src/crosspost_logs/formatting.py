"""Formatters: JSON lines for machines, one readable line for people."""

from __future__ import annotations

import json
import logging
from typing import Any

from .correlation import get_correlation_id
from .events import utc_timestamp
from .redaction import sanitize

__all__ = ["TEXT_FORMAT", "JsonFormatter"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """Format every record as one JSON object on one line.

    Records made by ``log_json`` are already JSON objects and pass through unchanged. Any
    other record becomes ``{"timestamp", "level", "logger", "message", "correlation_id"}``,
    plus ``exception`` / ``stack`` when it carries them; the text is sanitized.
    """

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "crosspost_fields", None)
        if isinstance(fields, dict) and not record.exc_info and not record.stack_info:
            return record.getMessage()
        event: dict[str, Any]
        if isinstance(fields, dict):
            event = dict(fields)
        else:
            correlation_id = getattr(record, "correlation_id", None) or get_correlation_id()
            event = {
                "timestamp": utc_timestamp(record.created),
                "level": record.levelname,
                "logger": record.name,
                "message": sanitize(record.getMessage()),
                "correlation_id": correlation_id,
            }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            event["exception"] = sanitize(record.exc_text)
        if record.stack_info:
            event["stack"] = sanitize(record.stack_info)
        return json.dumps(event, ensure_ascii=True, default=str)
