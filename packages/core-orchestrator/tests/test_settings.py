"""settings_from_mapping: one [publishers.<name>] table into a typed, frozen dataclass."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pytest

from crosspost_orchestrator import ConfigError, secret_env_var, secret_field, settings_from_mapping


@dataclass(frozen=True)
class MailSettings:
    smtp_host: str
    sender: str
    password: str = secret_field()
    smtp_port: int = 587
    caption_target: Literal["subject", "body", "both"] = "subject"
    timeout_s: float | None = None
    cc: tuple[str, ...] = ()
    token: str = secret_field(required=False)


BASE = {"smtp_host": "localhost", "sender": "me@example.com", "password": "pw"}


def test_a_complete_table_builds_typed_settings() -> None:
    settings = settings_from_mapping(
        MailSettings, "email", {**BASE, "smtp_port": 465, "timeout_s": 5, "cc": ["x@y"]}
    )
    assert settings.smtp_port == 465
    assert settings.timeout_s == 5.0
    assert isinstance(settings.timeout_s, float)
    assert settings.cc == ("x@y",)
    assert settings.caption_target == "subject"
    assert settings.token == ""
    assert "pw" not in repr(settings)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({**BASE, "colour": 1}, r"^publishers\.email\.colour: unknown setting \(known settings: "),
        (
            {"sender": "a", "password": "pw"},
            r"^publishers\.email\.smtp_host: required setting is missing",
        ),
        (
            {**BASE, "smtp_port": "587"},
            r"^publishers\.email\.smtp_port: expected an integer, got '587'",
        ),
        ({**BASE, "smtp_port": True}, r"^publishers\.email\.smtp_port: expected an integer"),
        (
            {**BASE, "caption_target": "title"},
            r"^publishers\.email\.caption_target: expected 'subject' \| 'body' \| 'both'",
        ),
        ({**BASE, "cc": "x@y"}, r"^publishers\.email\.cc: expected a list of a string"),
    ],
)
def test_wrong_tables_name_the_key_and_what_is_expected(
    table: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        settings_from_mapping(MailSettings, "email", table)


def test_a_missing_secret_names_the_environment_variable() -> None:
    with pytest.raises(ConfigError, match="CROSSPOST_EMAIL_PASSWORD is not set"):
        settings_from_mapping(MailSettings, "email", {**BASE, "password": ""})


def test_a_mistyped_secret_is_never_echoed() -> None:
    with pytest.raises(ConfigError) as info:
        settings_from_mapping(MailSettings, "email", {**BASE, "password": 12345678})
    assert "12345678" not in str(info.value)
    assert "<secret>" in str(info.value)


def test_secret_env_var_naming() -> None:
    assert secret_env_var("telegram", "bot_token") == "CROSSPOST_TELEGRAM_BOT_TOKEN"
