"""The `[publishers.instagram]` table, as a typed, checked dataclass."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from crosspost_orchestrator import ConfigError, secret_field, settings_from_mapping

__all__ = ["DEFAULT_SESSION_FILE", "DEFAULT_TIMEOUT_S", "InstagramSettings"]

#: Where the session is kept when `session_file` is not set (relative to the working directory).
DEFAULT_SESSION_FILE = "instagram-session.json"
#: The time limit of one publish or check when `timeout_s` is not set (the orchestrator's own
#: default), and of each request of an interactive login.
DEFAULT_TIMEOUT_S = 120.0
_WHERE = "publishers.instagram"


@dataclass(frozen=True)
class InstagramSettings:
    """Settings of the Instagram publisher.

    `username` is the account's login name; `password` comes from
    `CROSSPOST_INSTAGRAM_PASSWORD` only, and may be left unset once a valid session is saved
    (by a first publish or `crosspost login instagram`). `session_file` holds the session
    (secrets: written with mode 0600). `proxy` is an `http://[user:pass@]host:port` proxy for
    every Instagram request; `ca_file` a PEM bundle of the CAs to trust instead of the
    system's (for a TLS-inspecting proxy, or the sandbox). The photo is brought into
    Instagram's 4:5 to 1.91:1 range by padding (`fit = "pad"`) or cropping (`"crop"`) and
    scaled to at most `max_width` pixels wide. `delay_range_s = [min, max]` makes instagrapi
    pause a random time before each request (its default: no such pause). `timeout_s`
    bounds a whole publish, every request included (None: the orchestrator's limit, or
    `DEFAULT_TIMEOUT_S` outside one).
    """

    username: str
    password: str = secret_field(required=False)
    session_file: str = DEFAULT_SESSION_FILE
    proxy: str | None = None
    ca_file: str | None = None
    fit: Literal["pad", "crop"] = "pad"
    max_width: int = 1080
    delay_range_s: tuple[float, float] | None = None
    timeout_s: float | None = None

    def __post_init__(self) -> None:
        if not self.username.strip() or any(c.isspace() for c in self.username.strip()):
            raise ConfigError(
                f"{_WHERE}.username: expected the account's login name, got {self.username!r}"
            )
        if not self.session_file.strip():
            raise ConfigError(f"{_WHERE}.session_file: expected a file path, got an empty string")
        if self.proxy is not None and not self.proxy.startswith(("http://", "https://")):
            raise ConfigError(
                f"{_WHERE}.proxy: expected an http(s) URL such as 'http://127.0.0.1:8080'"
            )
        if self.ca_file is not None and not self.ca_file.strip():
            raise ConfigError(f"{_WHERE}.ca_file: expected the path of a PEM file")
        if not 320 <= self.max_width <= 1080:
            # Instagram shows feed photos at most 1080 pixels wide and scales anything wider.
            raise ConfigError(
                f"{_WHERE}.max_width: expected a width in pixels from 320 to 1080, "
                f"got {self.max_width!r}"
            )
        if self.delay_range_s is not None:
            delays = self.delay_range_s
            if len(delays) != 2 or not 0 <= delays[0] <= delays[1]:
                raise ConfigError(
                    f"{_WHERE}.delay_range_s: expected [min, max] seconds with "
                    f"0 <= min <= max, got {list(delays)!r}"
                )
        if self.timeout_s is not None and not self.timeout_s > 0:
            raise ConfigError(
                f"{_WHERE}.timeout_s: expected a positive number of seconds, got {self.timeout_s!r}"
            )

    @property
    def time_limit_s(self) -> float:
        """`timeout_s`, or `DEFAULT_TIMEOUT_S` when unset."""
        return self.timeout_s if self.timeout_s is not None else DEFAULT_TIMEOUT_S

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> InstagramSettings:
        """Parse the `[publishers.instagram]` table (plus `password` from the environment);
        raises `ConfigError` naming the key that is wrong."""
        return settings_from_mapping(cls, "instagram", mapping)
