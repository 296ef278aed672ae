"""Caption limits, settings parsing, the plugin entry point and the lazy instagrapi import."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

import pytest

from crosspost_instagram import (
    CAPTION_MAX_CHARS,
    HASHTAGS_MAX,
    InstagramPublisher,
    InstagramSettings,
    count_hashtags,
    create_publisher,
    format_caption,
)
from crosspost_orchestrator import ConfigError


# -- caption ---------------------------------------------------------------------------------
def test_a_short_caption_is_only_trimmed() -> None:
    assert format_caption("  Hello #world  \n") == "Hello #world"


def test_hashtags_after_the_thirtieth_are_dropped_from_the_end() -> None:
    caption = "Sunset " + " ".join(f"#t{i}" for i in range(33)) + " the end"

    formatted = format_caption(caption)

    assert count_hashtags(formatted) == HASHTAGS_MAX
    assert formatted == "Sunset " + " ".join(f"#t{i}" for i in range(30)) + " the end"


def test_a_hash_inside_a_word_is_not_a_hashtag() -> None:
    caption = "I write C# and F# " + " ".join(f"#t{i}" for i in range(30))

    assert format_caption(caption) == caption
    assert count_hashtags(caption) == 30


def test_a_long_caption_is_cut_at_a_word_with_an_ellipsis() -> None:
    formatted = format_caption("word " * 1000)

    assert len(formatted) <= CAPTION_MAX_CHARS
    assert formatted.endswith("word…")


def test_a_caption_of_exactly_the_limit_is_kept() -> None:
    caption = "x" * CAPTION_MAX_CHARS

    assert format_caption(caption) == caption


def test_the_publisher_formats_captions_the_same_way() -> None:
    publisher = InstagramPublisher(InstagramSettings(username="me"))

    assert publisher.format_caption("a " + "#x " * 40) == format_caption("a " + "#x " * 40)


# -- settings --------------------------------------------------------------------------------
def test_settings_have_the_documented_defaults() -> None:
    settings = InstagramSettings.from_mapping({"username": "me", "password": "pw"})

    assert settings.fit == "pad"
    assert settings.max_width == 1080
    assert settings.session_file == "instagram-session.json"
    assert settings.delay_range_s is None
    assert settings.timeout_s is None
    assert "pw" not in repr(settings)


def test_delay_range_is_read_from_a_list() -> None:
    settings = InstagramSettings.from_mapping({"username": "me", "delay_range_s": [1, 3]})

    assert settings.delay_range_s == (1.0, 3.0)


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ({"username": "me", "colour": "red"}, "colour"),
        ({"username": "me", "fit": "stretch"}, "fit"),
        ({"username": "me", "max_width": "1080"}, "max_width"),
        ({"username": "me", "max_width": 5000}, "max_width"),
        ({"username": "me", "delay_range_s": [3, 1]}, "delay_range_s"),
        ({"username": "me", "timeout_s": 0}, "timeout_s"),
        ({"username": "me", "proxy": "127.0.0.1:8080"}, "proxy"),
        ({"username": ""}, "username"),
        ({}, "username"),
    ],
)
def test_wrong_settings_are_config_errors_naming_the_key(
    table: dict[str, object], key: str
) -> None:
    with pytest.raises(ConfigError, match=rf"^publishers\.instagram\.{key}: "):
        InstagramSettings.from_mapping(table)


def test_the_entry_point_builds_the_publisher() -> None:
    (entry,) = [e for e in entry_points(group="crosspost.publishers") if e.name == "instagram"]

    publisher = entry.load()({"username": "me", "timeout_s": 30})

    assert isinstance(publisher, InstagramPublisher)
    assert publisher.platform_name == "instagram"
    assert publisher.timeout_s == 30
    assert create_publisher({"username": "me"}).settings.username == "me"


# -- instagrapi is loaded only when Instagram is used -----------------------------------------
def test_importing_and_configuring_the_publisher_does_not_load_instagrapi() -> None:
    script = (
        "import sys, asyncio\n"
        "import crosspost_instagram\n"
        "p = crosspost_instagram.create_publisher({'username': 'me'})\n"
        "p.format_caption('#a')\n"
        "assert 'instagrapi' not in sys.modules, 'instagrapi was imported'\n"
        "print('ok')\n"
    )

    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
