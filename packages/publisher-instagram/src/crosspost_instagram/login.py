"""`crosspost login instagram`: an interactive login that answers Instagram's challenge and
two-factor questions through a prompt, then saves the session for later publishes."""

from __future__ import annotations

import getpass
from collections.abc import Callable

from crosspost_instagram.client import (
    build_client,
    close_client,
    register_session_secrets,
    register_settings_secrets,
    save_session,
    session_is_valid,
)
from crosspost_instagram.errors import InstagramError, describe_failure
from crosspost_instagram.session_file import read_session
from crosspost_instagram.settings import InstagramSettings
from crosspost_instagram.worker import RequestBudget
from crosspost_logs import register_secret

__all__ = ["login_interactive"]


def login_interactive(
    settings: InstagramSettings,
    prompt: Callable[[str], str] = input,
    *,
    password_prompt: Callable[[str], str] | None = None,
    force: bool = False,
) -> str:
    """Log in to Instagram, asking `prompt` for any code Instagram demands; save the session.

    Blocking (it waits for a person): call it from a thread when an event loop is running.
    A saved session that Instagram still accepts is kept unless `force` is true. The
    password is `settings.password`, else asked with `password_prompt` (default: getpass).
    Each request may take up to `settings.timeout_s` (default 120 s). Returns a one-line
    description of the outcome; raises `InstagramError` with a plain reason on failure.
    """
    from instagrapi.exceptions import TwoFactorRequired

    register_settings_secrets(settings)
    username = settings.username
    budget = RequestBudget(per_request_s=settings.time_limit_s)
    client = build_client(
        settings, budget, session=read_session(settings.session_file), code_prompt=prompt
    )
    try:
        if not force and session_is_valid(client, settings):
            return (
                f"already logged in to Instagram as {username} (session in {settings.session_file})"
            )
        password = settings.password or (password_prompt or getpass.getpass)(
            f"Instagram password for {username}: "
        )
        if not password:
            raise InstagramError("no Instagram password given: nothing was changed")
        register_secret(password)
        try:
            client.login(username, password, relogin=bool(client.user_id))
        except TwoFactorRequired:
            code = prompt(f"Instagram two-factor code for {username}: ").strip()
            if not code:
                raise InstagramError("no two-factor code given: nothing was changed") from None
            client.login(username, password, verification_code=code)
        register_session_secrets(client)
        try:
            save_session(client, settings)
        except OSError as exc:
            raise InstagramError(
                f"logged in to Instagram as {username}, but the session could not be saved to "
                f"{settings.session_file} ({exc.strerror or type(exc).__name__}): fix the "
                "path or its permissions and log in again"
            ) from None
        return f"logged in to Instagram as {username}; session saved to {settings.session_file}"
    except InstagramError:
        raise
    except Exception as exc:  # noqa: BLE001 - every failure becomes one plain InstagramError
        # Chaining would carry instagrapi's raw error text (the server's answer) along.
        raise InstagramError(describe_failure(exc, username).message) from None
    finally:
        close_client(client)
