"""The [publishers.email] table: defaults, errors naming the key, the secret."""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

import crosspost_email
from crosspost_email import EmailPublisher, EmailSettings, create_publisher
from crosspost_logs import sanitize
from crosspost_orchestrator import ConfigError

BASE: dict[str, Any] = {
    "smtp_host": "smtp.example.com",
    "sender": "me@example.com",
    "recipient": "1234@upload.fetlife.com",
    "password": "s3cret-mail-password",
}


def settings(**overrides: Any) -> EmailSettings:
    publisher = create_publisher({**BASE, **overrides})
    return publisher.settings


def test_defaults() -> None:
    s = settings()
    assert (s.effective_security, s.effective_port) == ("starttls", 587)
    assert s.login == "me@example.com"
    assert s.confirmation_to == ("me@example.com",)
    assert s.caption_target == "subject"
    assert s.subject_mode == "normal"
    assert s.confirmation_tags_count == 5
    assert s.max_attempts == 3
    assert s.max_attachment_bytes == 10 * 2**20
    assert s.timeout_s is None
    assert s.ca_file is None
    assert s.allow_insecure is False


def test_port_465_means_implicit_tls_and_tls_means_port_465() -> None:
    assert settings(smtp_port=465).effective_security == "tls"
    assert settings(security="tls").effective_port == 465
    assert settings(security="starttls", smtp_port=2525).effective_port == 2525


def test_every_documented_setting_is_accepted(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not checked until used")
    s = settings(
        smtp_port=2465,
        security="tls",
        username="login-name",
        caption_target="both",
        subject_mode="private",
        confirmation_to_sender=True,
        confirmation_recipients=["a@example.com", "b@example.com"],
        confirmation_tags_count=2,
        ca_file=str(ca),
        timeout_s=12,
        max_attachment_mb=5,
        max_attempts=4,
        allow_insecure=False,
    )
    assert s.login == "login-name"
    assert s.confirmation_to == ("a@example.com", "b@example.com")
    assert s.timeout_s == 12.0
    assert s.max_attachment_bytes == 5 * 2**20


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"colour": "red"}, "publishers.email.colour: unknown setting"),
        ({"smtp_port": "587"}, "publishers.email.smtp_port: expected"),
        ({"security": "ssl"}, "publishers.email.security: expected"),
        ({"caption_target": "title"}, "publishers.email.caption_target: expected"),
        ({"subject_mode": "secret"}, "publishers.email.subject_mode: expected"),
        ({"confirmation_to_sender": "yes"}, "publishers.email.confirmation_to_sender: expected"),
        (
            {"confirmation_recipients": "a@b.c"},
            "publishers.email.confirmation_recipients: expected",
        ),
        ({"recipient": "not an address"}, "publishers.email.recipient: expected one e-mail"),
        (
            {"sender": "me@example.com\r\nBcc: x@y.z"},
            "publishers.email.sender: expected one e-mail",
        ),
        ({"smtp_port": 70000}, "publishers.email.smtp_port: expected a port"),
        ({"max_attempts": 0}, "publishers.email.max_attempts: expected 1 or more"),
        ({"max_attachment_mb": 0}, "publishers.email.max_attachment_mb: expected a positive"),
        ({"timeout_s": -1}, "publishers.email.timeout_s: expected a positive"),
        (
            {"ca_file": "/nonexistent/ca.pem"},
            "publishers.email.ca_file: '/nonexistent/ca.pem' is not a file",
        ),
        (
            {"security": "none"},
            "publishers.email.security: 'none' would send the password in clear",
        ),
    ],
)
def test_bad_values_are_config_errors_naming_the_key(overrides: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        create_publisher({**BASE, **overrides})
    assert str(caught.value).startswith(key)
    assert "s3cret-mail-password" not in str(caught.value)


def test_missing_required_settings_are_named() -> None:
    with pytest.raises(ConfigError, match=r"publishers\.email\.recipient: required"):
        create_publisher({k: v for k, v in BASE.items() if k != "recipient"})


def test_missing_password_names_the_environment_variable() -> None:
    with pytest.raises(ConfigError, match="CROSSPOST_EMAIL_PASSWORD is not set"):
        create_publisher({k: v for k, v in BASE.items() if k != "password"})


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_no_tls_is_allowed_on_loopback(host: str) -> None:
    assert settings(smtp_host=host, security="none").effective_port == 25


def test_no_tls_elsewhere_needs_allow_insecure() -> None:
    assert settings(security="none", allow_insecure=True).effective_security == "none"


def test_the_password_is_registered_with_the_log_sanitizer() -> None:
    create_publisher({**BASE, "password": "another-Secret-42"})
    assert "another-Secret-42" not in sanitize("login with another-Secret-42 failed")


def test_the_password_is_not_in_the_settings_repr() -> None:
    assert "s3cret-mail-password" not in repr(settings())


def test_registered_as_the_email_plugin() -> None:
    (entry,) = [ep for ep in entry_points(group="crosspost.publishers") if ep.name == "email"]
    assert entry.load() is create_publisher
    publisher = create_publisher(BASE)
    assert isinstance(publisher, EmailPublisher)
    assert publisher.platform_name == "email"
    assert publisher.is_enabled()


def test_public_api() -> None:
    assert set(crosspost_email.__all__) == {
        "EmailPublisher",
        "EmailSettings",
        "__version__",
        "clean_caption",
        "compose",
        "create_publisher",
    }
    for name in crosspost_email.__all__:
        assert getattr(crosspost_email, name) is not None
