"""Shared fixtures: instagrapi's fixed pauses neutralised, settings and photos for the sandbox."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from crosspost_instagram import InstagramSettings
from crosspost_sandbox.instagram import InstagramSandbox
from crosspost_sandbox.instagrapi_pauses import instant_pauses


@pytest.fixture(autouse=True)
def _no_instagrapi_pauses() -> Iterator[None]:
    with instant_pauses():
        yield


@pytest.fixture(autouse=True)
def _no_keyboard(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(prompt: object = "") -> str:
        raise AssertionError(f"something asked the keyboard: {prompt!r}")

    monkeypatch.setattr("builtins.input", refuse)
    monkeypatch.setattr("getpass.getpass", refuse)


SettingsFactory = Callable[..., InstagramSettings]


@pytest.fixture
def make_settings(instagram_sandbox: InstagramSandbox, tmp_path: Path) -> SettingsFactory:
    """Settings pointing at the sandbox, with a session file in tmp_path; keywords override."""

    def build(**overrides: Any) -> InstagramSettings:
        values: dict[str, Any] = {
            "username": instagram_sandbox.username,
            "password": instagram_sandbox.password,
            "session_file": str(tmp_path / "session" / "instagram.json"),
            "proxy": instagram_sandbox.proxy_url,
            "ca_file": instagram_sandbox.ca_path,
            "timeout_s": 10.0,
        }
        values.update(overrides)
        return InstagramSettings(**values)

    return build


PhotoFactory = Callable[..., str]


@pytest.fixture
def make_photo(tmp_path: Path) -> PhotoFactory:
    """Write a one-colour JPEG of the given size into tmp_path; returns its path."""

    def write(
        width: int, height: int, colour: tuple[int, int, int] = (200, 40, 40), name: str = ""
    ) -> str:
        path = tmp_path / (name or f"photo-{width}x{height}.jpg")
        Image.new("RGB", (width, height), colour).save(path, "JPEG", quality=92)
        return str(path)

    return write


@pytest.fixture
def photo(make_photo: PhotoFactory) -> str:
    return make_photo(1200, 1200)
