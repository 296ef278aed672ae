"""`login_interactive`: the codes Instagram asks for come from the prompt, never a keyboard."""

from __future__ import annotations

import asyncio
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from crosspost_instagram import (
    InstagramError,
    InstagramPublisher,
    InstagramSettings,
    login_interactive,
)
from crosspost_sandbox.instagram import InstagramSandbox

SettingsFactory = Callable[..., InstagramSettings]


class Prompt:
    """Answers prompts in order and remembers what was asked."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.asked: list[str] = []

    def __call__(self, question: str) -> str:
        self.asked.append(question)
        return self.answers.pop(0)


async def test_a_two_factor_code_from_the_prompt_logs_in_and_saves_the_session(
    instagram_sandbox: InstagramSandbox, make_settings: SettingsFactory, photo: str
) -> None:
    instagram_sandbox.inject("two_factor", operation="login", times=2)
    settings = make_settings()
    prompt = Prompt(instagram_sandbox.verification_code)

    outcome = await asyncio.to_thread(login_interactive, settings, prompt)

    assert outcome == (
        f"logged in to Instagram as {instagram_sandbox.username}; session saved to "
        f"{settings.session_file}"
    )
    assert prompt.asked == [f"Instagram two-factor code for {instagram_sandbox.username}: "]
    assert stat.S_IMODE(Path(settings.session_file).stat().st_mode) == 0o600
    # The next publish needs neither the password nor a code.
    result = await InstagramPublisher(make_settings(password="")).publish(photo, "after 2FA")
    assert result.success, result.error
    assert instagram_sandbox.counters["logins"] == 1


async def test_a_challenge_code_from_the_prompt_passes_the_challenge(
    instagram_sandbox: InstagramSandbox, make_settings: SettingsFactory
) -> None:
    instagram_sandbox.inject("challenge", operation="login")
    prompt = Prompt(instagram_sandbox.verification_code)

    outcome = await asyncio.to_thread(login_interactive, make_settings(), prompt)

    assert outcome.startswith("logged in to Instagram as")
    assert len(prompt.asked) == 1
    assert "security code by e-mail" in prompt.asked[0]
    assert instagram_sandbox.counters["challenges_passed"] == 1


async def test_a_valid_session_is_kept_unless_forced(
    instagram_sandbox: InstagramSandbox, make_settings: SettingsFactory
) -> None:
    settings = make_settings()
    await asyncio.to_thread(login_interactive, settings, Prompt())

    again = await asyncio.to_thread(login_interactive, settings, Prompt())
    forced = await asyncio.to_thread(login_interactive, settings, Prompt(), force=True)

    assert again.startswith("already logged in to Instagram as")
    assert forced.startswith("logged in to Instagram as")
    assert instagram_sandbox.counters["logins"] == 2


async def test_the_password_is_asked_when_not_configured(
    instagram_sandbox: InstagramSandbox, make_settings: SettingsFactory
) -> None:
    asked = Prompt(instagram_sandbox.password)

    await asyncio.to_thread(
        login_interactive, make_settings(password=""), Prompt(), password_prompt=asked
    )

    assert asked.asked == [f"Instagram password for {instagram_sandbox.username}: "]
    assert instagram_sandbox.counters["logins"] == 1


async def test_a_wrong_code_fails_in_plain_words(
    instagram_sandbox: InstagramSandbox, make_settings: SettingsFactory
) -> None:
    instagram_sandbox.inject("two_factor", operation="login", times=2)

    with pytest.raises(InstagramError, match="refused the request") as caught:
        await asyncio.to_thread(login_interactive, make_settings(), Prompt("000000"))
    assert caught.value.__cause__ is None
    assert not Path(make_settings().session_file).exists()
