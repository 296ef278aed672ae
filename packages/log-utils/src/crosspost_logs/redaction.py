"""Secret redaction: the patterns every log line is cleaned with, and the logging filter."""

from __future__ import annotations

import json
import logging
import math
import re
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, quote_plus

__all__ = ["REDACTED", "RedactingFilter", "register_secret", "sanitize"]

REDACTED = "[REDACTED]"

# One alternation so a line is scanned once. Each alternative names exactly one group: either
# the whole secret (`token`) or the text kept in front of the secret, which keeps the line
# readable ("Authorization: [REDACTED]").
_BUILTIN = re.compile(
    r"""
    (?P<token>(?<![0-9])[0-9]{6,12}:[A-Za-z0-9_-]{30,})
    # Telegram puts the bot token in the path (/bot<token>/sendPhoto, /file/bot<token>/...);
    # the look-behind leaves a host such as https://bot.example alone.
    | (?<!/)(?P<botpath>/bot)(?!\[REDACTED\]/)[^/\s]+(?=/)
    | (?P<userinfo>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/\s:@]+:[^/\s@]*(?=@)
    | (?P<header>\b(?:proxy-)?(?:authorization|set-cookie|cookie)["']?\s*[:=]\s*["']?)[^\r\n"'},]+
    | (?P<bearer>\bbearer\s+)(?!\[REDACTED\])[^\s"',;}\]]+
    | (?P<keyvalue>\b(?:sessionid|password|passwd|enc_password|bot_token|access_token|csrftoken)
        ["']?\s*[:=]\s*["']?)(?!\[REDACTED\])[^\s;,&"'}\]]+
    """,
    re.IGNORECASE | re.VERBOSE,
)

_secrets_lock = threading.Lock()
_secrets: set[str] = set()
# Swapped as a whole under the lock and read without it: sanitize runs on every record and
# must not contend with registration.
_secrets_pattern: re.Pattern[str] | None = None


def _replace_builtin(match: re.Match[str]) -> str:
    group = match.lastgroup
    if group is None or group == "token":
        return REDACTED
    return match.group(group) + REDACTED


def register_secret(value: str) -> None:
    """Redact ``value`` from every later :func:`sanitize` call and log record.

    Its URL-encoded and JSON-escaped forms are redacted too. Empty values are ignored.
    Safe to call from any thread.
    """
    global _secrets_pattern
    if not isinstance(value, str) or not value.strip():
        return
    forms = {value, quote(value, safe=""), quote(value), quote_plus(value)}
    forms.add(json.dumps(value)[1:-1])
    with _secrets_lock:
        if forms <= _secrets:
            return
        _secrets.update(forms)
        # Longest first, so a secret that contains another is redacted whole.
        ordered = sorted(_secrets, key=len, reverse=True)
        _secrets_pattern = re.compile("|".join(map(re.escape, ordered)))


def sanitize(text: str) -> str:
    """Return ``text`` with every secret replaced by ``[REDACTED]``.

    Redacts registered secrets, Telegram bot tokens (bare and in ``/bot<token>/`` URL paths),
    ``user:password@`` in URLs, ``Authorization``/``Cookie`` header values, ``Bearer`` tokens
    and ``sessionid``/password-like key values (``sessionid=...``, ``"sessionid": "..."``).
    """
    if not text:
        return text
    pattern = _secrets_pattern
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    return _BUILTIN.sub(_replace_builtin, text)


# Mapping keys whose values are secrets whatever they look like (e.g. a headers dict).
_SECRET_KEYS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "sessionid",
        "password",
        "passwd",
        "enc_password",
        "bot_token",
        "access_token",
        "csrftoken",
        "secret",
        "api_key",
    }
)


def sanitize_value(value: Any) -> Any:
    """Return a JSON-ready copy of ``value`` with every string in it sanitized.

    Values under secret-like mapping keys (``Authorization``, ``password``, ``sessionid``...)
    are replaced whole.
    """
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return sanitize(value)
    if isinstance(value, Mapping):
        return {
            sanitize(str(key)): (
                REDACTED
                if item is not None and str(key).lower() in _SECRET_KEYS
                else sanitize_value(item)
            )
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [sanitize_value(item) for item in value]
    return sanitize(str(value))


class RedactingFilter(logging.Filter):
    """A filter that redacts secrets from a record's message, arguments and exception text.

    The message is formatted with its arguments first and the arguments dropped, so the
    redaction sees the final text. Records are changed in place and always let through.
    """

    _exception_formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "crosspost_fields", None) is None:
            try:
                message = record.getMessage()
            except Exception:  # noqa: BLE001 - a broken format string must not leak its arguments
                message = f"{record.msg!s} (arguments did not match the format: {record.args!r})"
            record.msg = sanitize(message)
            record.args = None
        # Records made by log_json were sanitized field by field when they were made.
        if record.exc_info and not record.exc_text:
            record.exc_text = self._exception_formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = sanitize(record.exc_text)
        if record.stack_info:
            record.stack_info = sanitize(record.stack_info)
        return True
