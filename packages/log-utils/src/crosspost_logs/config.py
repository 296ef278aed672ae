"""Process-wide logging set-up: handlers on the root logger, each with the redacting filter."""

from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path
from typing import TextIO

from .formatting import TEXT_FORMAT, JsonFormatter
from .redaction import RedactingFilter

__all__ = ["reset_logging", "setup_logging"]

# Marks the handlers setup_logging made, so a second call replaces them instead of adding more.
_OWNED = "_crosspost_logs_handler"
_lock = threading.Lock()


def _remove_owned(root: logging.Logger) -> None:
    for handler in list(root.handlers):
        if getattr(handler, _OWNED, False):
            root.removeHandler(handler)
            handler.close()


def setup_logging(
    level: int | str = logging.INFO,
    json: bool = True,
    stream: TextIO | None = None,
    file: str | os.PathLike[str] | None = None,
    console: bool = True,
) -> None:
    """Send every log record, ours and third-party libraries', through redacting handlers.

    Installs on the root logger a stream handler (``stream``, default stderr; JSON lines if
    ``json`` else one text line a record; none if ``console`` is false) and, if ``file`` is given, a handler appending
    JSON lines to that file. Each handler carries a :class:`RedactingFilter`; handlers already
    on the root logger get one too, so no handler sees a secret. Calling it again replaces
    the handlers it installed before; it never duplicates them.
    """
    formatter: logging.Formatter = JsonFormatter() if json else logging.Formatter(TEXT_FORMAT)
    handlers: list[logging.Handler] = []
    if console:
        stream_handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
        stream_handler.setFormatter(formatter)
        handlers.append(stream_handler)
    if file is not None:
        path = Path(file)
        path.parent.mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(path, mode="a", encoding="utf-8")
        file_handler.setFormatter(JsonFormatter())
        handlers.append(file_handler)

    root = logging.getLogger()
    with _lock:
        _remove_owned(root)
        for handler in root.handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(RedactingFilter())
        for handler in handlers:
            setattr(handler, _OWNED, True)
            handler.addFilter(RedactingFilter())
            root.addHandler(handler)
        root.setLevel(level)


def reset_logging() -> None:
    """Remove and close the handlers :func:`setup_logging` installed; others are left alone."""
    with _lock:
        _remove_owned(logging.getLogger())
