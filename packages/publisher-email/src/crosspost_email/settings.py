"""The `[publishers.email]` table: what each setting means and which values are allowed."""

from __future__ import annotations

import ipaddress
import math
import os
import re
from dataclasses import dataclass
from typing import Literal

from crosspost_email.fetlife import CaptionTarget, SubjectMode
from crosspost_orchestrator import ConfigError, secret_field

__all__ = ["DEFAULT_PORTS", "EmailSettings", "Security", "is_loopback"]

Security = Literal["starttls", "tls", "none"]

#: The port each kind of connection uses when `smtp_port` is not set.
DEFAULT_PORTS: dict[str, int] = {"starttls": 587, "tls": 465, "none": 25}

_PREFIX = "publishers.email"
# Deliberately simple: one @, no spaces, no angle brackets, no control characters.
_ADDRESS = re.compile(r"[^@\s<>()\[\],;:\"\\]+@[^@\s<>()\[\],;:\"\\]+")


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine (`localhost`, 127.0.0.0/8 or ::1)."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_address(key: str, value: str) -> None:
    if not _ADDRESS.fullmatch(value) or any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ConfigError(
            f"{_PREFIX}.{key}: expected one e-mail address like name@example.com, got {value!r}"
        )


@dataclass(frozen=True)
class EmailSettings:
    """Settings of the e-mail publisher (the `[publishers.email]` table).

    The password comes from the environment variable `CROSSPOST_EMAIL_PASSWORD`, never from
    the file. Invalid values raise `ConfigError` naming `publishers.email.<key>`.
    """

    #: The SMTP server to submit to.
    smtp_host: str
    #: The From address (and the login name unless `username` is set).
    sender: str
    #: Where the photo goes, e.g. your FetLife upload address.
    recipient: str
    #: Default: 587 for starttls, 465 for tls, 25 for none.
    smtp_port: int | None = None
    #: `starttls` (upgrade a plain connection), `tls` (TLS from the start) or `none`.
    #: Default: tls when `smtp_port` is 465, else starttls.
    security: Security | None = None
    #: The login name; default: `sender`.
    username: str | None = None
    password: str = secret_field()
    #: Where the cleaned caption goes: the subject, the body or both.
    caption_target: CaptionTarget = "subject"
    #: `private` prefixes the subject with "Private: ", `avatar` with "Avatar: ".
    subject_mode: SubjectMode = "normal"
    #: Also mail a confirmation (subject, body, tags) after the upload was accepted.
    confirmation_to_sender: bool = False
    #: Who gets the confirmation; default: the sender.
    confirmation_recipients: tuple[str, ...] | None = None
    #: How many of `context["analysis_tags"]` the confirmation lists.
    confirmation_tags_count: int = 5
    #: A PEM file of extra CA certificates to trust besides the system's.
    ca_file: str | None = None
    #: Time limit of one publish, in seconds (None: the orchestrator's).
    timeout_s: float | None = None
    #: A photo larger than this is re-encoded smaller (mail providers take 20-25 MB per
    #: message and base64 adds a third).
    max_attachment_mb: float = 10.0
    #: Attempts for connection failures and temporary (4xx) refusals.
    max_attempts: int = 3
    #: Allow `security = "none"` to a host other than this machine (the password then
    #: crosses the network in clear).
    allow_insecure: bool = False

    def __post_init__(self) -> None:
        host = self.smtp_host.strip()
        if not host or any(ch.isspace() or ord(ch) < 32 for ch in host):
            raise ConfigError(f"{_PREFIX}.smtp_host: expected a host name, got {self.smtp_host!r}")
        if self.smtp_port is not None and not 1 <= self.smtp_port <= 65535:
            raise ConfigError(
                f"{_PREFIX}.smtp_port: expected a port from 1 to 65535, got {self.smtp_port}"
            )
        _check_address("sender", self.sender)
        _check_address("recipient", self.recipient)
        if self.username is not None and (
            not self.username or any(ord(ch) < 32 for ch in self.username)
        ):
            raise ConfigError(f"{_PREFIX}.username: expected a login name, got {self.username!r}")
        for address in self.confirmation_recipients or ():
            _check_address("confirmation_recipients", address)
        if self.confirmation_recipients is not None and not self.confirmation_recipients:
            raise ConfigError(
                f"{_PREFIX}.confirmation_recipients: expected at least one address "
                "(leave it out to use the sender)"
            )
        if self.confirmation_tags_count < 0:
            raise ConfigError(
                f"{_PREFIX}.confirmation_tags_count: expected 0 or more, got {self.confirmation_tags_count}"
            )
        if self.timeout_s is not None and not (
            self.timeout_s > 0 and math.isfinite(self.timeout_s)
        ):
            raise ConfigError(
                f"{_PREFIX}.timeout_s: expected a positive number of seconds, got {self.timeout_s}"
            )
        if not (self.max_attachment_mb > 0 and math.isfinite(self.max_attachment_mb)):
            raise ConfigError(
                f"{_PREFIX}.max_attachment_mb: expected a positive number, got {self.max_attachment_mb}"
            )
        if self.max_attempts < 1:
            raise ConfigError(
                f"{_PREFIX}.max_attempts: expected 1 or more, got {self.max_attempts}"
            )
        if self.ca_file is not None and not os.path.isfile(self.ca_file):
            raise ConfigError(
                f"{_PREFIX}.ca_file: {self.ca_file!r} is not a file: give the path of a PEM CA certificate"
            )
        if self.effective_security == "none" and not self.allow_insecure and not is_loopback(host):
            raise ConfigError(
                f"{_PREFIX}.security: 'none' would send the password in clear to {host}: "
                "use starttls or tls, or set allow_insecure = true"
            )

    @property
    def effective_security(self) -> Security:
        """`security`, or its default for the port."""
        if self.security is not None:
            return self.security
        return "tls" if self.smtp_port == 465 else "starttls"

    @property
    def effective_port(self) -> int:
        """`smtp_port`, or the default port of the security mode."""
        return self.smtp_port or DEFAULT_PORTS[self.effective_security]

    @property
    def login(self) -> str:
        """The login name: `username`, or the sender."""
        return self.username or self.sender

    @property
    def confirmation_to(self) -> tuple[str, ...]:
        """Who gets the confirmation: `confirmation_recipients`, or the sender."""
        return self.confirmation_recipients or (self.sender,)

    @property
    def max_attachment_bytes(self) -> int:
        """`max_attachment_mb` in bytes (MiB)."""
        return int(self.max_attachment_mb * 2**20)
