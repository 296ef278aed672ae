"""The `[publishers.telegram]` table and the plugin entry point."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

import pytest

import crosspost_telegram
from crosspost_orchestrator import ConfigError, Publisher
from crosspost_telegram import DEFAULT_API_BASE_URL, TelegramPublisher, TelegramSettings

TOKEN = "1234567:AAsettings-test-token-settings-test-to"


def test_minimal_table_gets_the_documented_defaults() -> None:
    settings = TelegramSettings.from_mapping({"channel_id": "@mine", "bot_token": TOKEN})

    assert settings.api_base_url == DEFAULT_API_BASE_URL
    assert settings.max_width == 1280
    assert settings.max_attempts == 3
    assert settings.max_retry_after_s == 60
    assert settings.timeout_s is None
    assert TOKEN not in repr(settings)


def test_numeric_channel_id_is_accepted() -> None:
    settings = TelegramSettings.from_mapping({"channel_id": -1001234567890, "bot_token": TOKEN})

    assert settings.channel_id == -1001234567890


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            {"channel_id": "@a", "bot_token": TOKEN, "chanel": 1},
            r"publishers\.telegram\.chanel: unknown setting",
        ),
        (
            {"channel_id": "@a", "bot_token": TOKEN, "max_width": "big"},
            r"publishers\.telegram\.max_width: expected an integer",
        ),
        (
            {"channel_id": "@a", "bot_token": TOKEN, "max_attempts": 0},
            r"publishers\.telegram\.max_attempts: expected a positive integer",
        ),
        (
            {"channel_id": "@a", "bot_token": TOKEN, "read_timeout_s": -1},
            r"publishers\.telegram\.read_timeout_s: expected a positive number",
        ),
        (
            {"channel_id": "@a", "bot_token": TOKEN, "api_base_url": "api.telegram.org"},
            r"publishers\.telegram\.api_base_url: expected an http\(s\) URL",
        ),
        ({"bot_token": TOKEN}, r"publishers\.telegram\.channel_id: required setting is missing"),
        ({"channel_id": "@a"}, r"CROSSPOST_TELEGRAM_BOT_TOKEN is not set"),
    ],
)
def test_bad_table_is_a_config_error_naming_the_key(table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        crosspost_telegram.create_publisher(table)

    assert TOKEN not in str(caught.value)


def test_entry_point_builds_a_publisher_with_its_timeout() -> None:
    (entry,) = entry_points(group="crosspost.publishers", name="telegram")

    publisher = entry.load()({"channel_id": "@a", "bot_token": TOKEN, "timeout_s": 30})

    assert isinstance(publisher, TelegramPublisher)
    assert isinstance(publisher, Publisher)
    assert publisher.platform_name == "telegram"
    assert publisher.timeout_s == 30.0


def test_public_names_are_exported() -> None:
    for name in crosspost_telegram.__all__:
        assert getattr(crosspost_telegram, name) is not None


def test_importing_the_plugin_leaves_python_telegram_bot_unloaded() -> None:
    # Loading every plugin must stay cheap: the client library is imported on first use.
    code = "import sys, crosspost_telegram; sys.exit('telegram' in sys.modules)"

    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
