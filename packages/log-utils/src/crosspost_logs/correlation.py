"""The correlation id of the current unit of work, held in a context variable.

A ``ContextVar`` is copied into tasks and into ``asyncio.to_thread`` workers, so the id
bound around a run reaches every log record made on its behalf, in any thread.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["correlation_scope", "get_correlation_id"]

_correlation_id: ContextVar[str | None] = ContextVar("crosspost_correlation_id", default=None)


def get_correlation_id() -> str | None:
    """Return the correlation id bound in the current context, or ``None``."""
    return _correlation_id.get()


@contextmanager
def correlation_scope(correlation_id: str | None = None) -> Iterator[str]:
    """Bind ``correlation_id`` (a new uuid4 hex string if ``None``) for the ``with`` block.

    Yields the bound id; the previous binding is restored when the block exits.
    """
    bound = correlation_id or uuid.uuid4().hex
    token = _correlation_id.set(bound)
    try:
        yield bound
    finally:
        _correlation_id.reset(token)
