"""The `[publishers.telegram]` table, as a typed, checked dataclass."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from crosspost_orchestrator import ConfigError, secret_field, settings_from_mapping

__all__ = ["DEFAULT_API_BASE_URL", "TelegramSettings"]

#: Telegram's own Bot API; the token is appended to it (`.../bot<token>/sendPhoto`).
DEFAULT_API_BASE_URL = "https://api.telegram.org/bot"


@dataclass(frozen=True)
class TelegramSettings:
    """Settings of the Telegram publisher.

    `channel_id` is the channel's `@username` or numeric id (`-100...`). `bot_token` comes
    from `CROSSPOST_TELEGRAM_BOT_TOKEN` only. `api_base_url` points at a self-hosted Bot API
    server or the sandbox. Timeouts are in seconds: `connect_timeout_s` to open a connection,
    `read_timeout_s` to wait for Telegram's answer, `media_write_timeout_s` to send the photo;
    `timeout_s` bounds a whole publish (None: the orchestrator's limit). `max_attempts`
    counts requests per publish (flood-control waits and retries included);
    `max_retry_after_s` is the longest flood-control wait a publish sits out.
    """

    channel_id: str | int
    bot_token: str = secret_field()
    api_base_url: str = DEFAULT_API_BASE_URL
    max_width: int = 1280
    timeout_s: float | None = None
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 15.0
    media_write_timeout_s: float = 30.0
    max_attempts: int = 3
    max_retry_after_s: float = 60.0

    def __post_init__(self) -> None:
        where = "publishers.telegram"
        if isinstance(self.channel_id, str) and not self.channel_id.strip():
            raise ConfigError(f"{where}.channel_id: expected '@channel_name' or a numeric id")
        if not self.api_base_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"{where}.api_base_url: expected an http(s) URL such as "
                f"{DEFAULT_API_BASE_URL!r}, got {self.api_base_url!r}"
            )
        if not 1 <= self.max_width <= 10_000:
            raise ConfigError(
                f"{where}.max_width: expected a width in pixels from 1 to 10000, "
                f"got {self.max_width!r}"
            )
        if self.max_attempts < 1:
            raise ConfigError(
                f"{where}.max_attempts: expected a positive integer, got {self.max_attempts!r}"
            )
        if self.max_retry_after_s < 0:
            raise ConfigError(
                f"{where}.max_retry_after_s: expected 0 or more seconds, "
                f"got {self.max_retry_after_s!r}"
            )
        for name in ("timeout_s", "connect_timeout_s", "read_timeout_s", "media_write_timeout_s"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ConfigError(
                    f"{where}.{name}: expected a positive number of seconds, got {value!r}"
                )

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> TelegramSettings:
        """Parse the `[publishers.telegram]` table (plus `bot_token` from the environment);
        raises `ConfigError` naming the key that is wrong."""
        return settings_from_mapping(cls, "telegram", mapping)
