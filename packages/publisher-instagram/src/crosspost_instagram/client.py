"""The blocking side, run in a worker thread: an instagrapi client set up for crosspost, its
saved session, and the upload.

instagrapi is imported inside these functions only (importing it costs about 0.3 s, and a
run without Instagram must not pay for it). Every client built here:

- speaks HTTP/1.1 through `requests` (`private_transport="requests"`): instagrapi's default
  private transport is HTTP/2-only curl, which the sandbox, TLS-inspecting proxies and the
  socket-level controls below do not work with;
- makes no silent retries (`session_retry_total=0`): a retried configure can post twice;
- gives every request a socket timeout from the `RequestBudget` and registers its sockets,
  so a hung server ends the request at the deadline, and a cancel ends it at once;
- trusts `ca_file` for every request when set (passed per request: `requests` would let
  `REQUESTS_CA_BUNDLE` override a session-wide setting);
- never asks for input: a challenge or two-factor demand fails, unless the caller is the
  interactive login, whose prompt answers it;
- logs through `crosspost_instagram.instagrapi*` loggers that redact secrets at the source.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from crosspost_instagram.errors import InstagramError
from crosspost_instagram.session_file import read_session, write_session
from crosspost_instagram.settings import InstagramSettings
from crosspost_instagram.worker import RequestBudget
from crosspost_logs import RedactingFilter, log_json, register_secret

__all__ = [
    "Progress",
    "build_client",
    "check_blocking",
    "close_client",
    "open_session",
    "publish_blocking",
    "register_session_secrets",
    "register_settings_secrets",
    "save_session",
    "session_is_valid",
    "upload_photo",
]

logger = logging.getLogger(__name__)

#: File name endings instagrapi accepts for a photo.
_PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
_LOGIN_COMMAND = "`crosspost login instagram`"


def _redacting_logger(name: str) -> logging.Logger:
    # A filter on the logger itself changes the record before any handler sees it (tests'
    # capture handlers included), unlike the handler filters setup_logging installs.
    log = logging.getLogger(name)
    if not any(isinstance(f, RedactingFilter) for f in log.filters):
        log.addFilter(RedactingFilter())
    return log


_INSTAGRAPI_LOGGER = _redacting_logger("crosspost_instagram.instagrapi")
_REQUEST_LOGGERS = {
    attribute: _redacting_logger(f"crosspost_instagram.instagrapi.{attribute}")
    for attribute in ("private_request_logger", "public_request_logger", "request_logger")
}


@dataclass(slots=True)
class Progress:
    """How far one publish got (written by the worker thread, read by the loop)."""

    login: str | None = None  # "session" (a saved one was valid) or "password"
    configure_sent: bool = False  # the request that creates the post went out


def register_settings_secrets(settings: InstagramSettings) -> None:
    """Redact the password, and a proxy's password, from every later log record."""
    if settings.password:
        register_secret(settings.password)
    if settings.proxy:
        proxy_password = urlsplit(settings.proxy).password
        if proxy_password:
            register_secret(proxy_password)


def register_session_secrets(client: Any) -> None:
    """Redact the client's session id and authorization header from every later record."""
    sessionid = client.sessionid
    if sessionid:
        register_secret(str(sessionid))
    authorization = client.authorization
    if authorization:
        register_secret(str(authorization))
        register_secret(str(authorization).rsplit(":", 1)[-1])


# -- the client --------------------------------------------------------------------------
def build_client(
    settings: InstagramSettings,
    budget: RequestBudget,
    *,
    session: dict[str, Any] | None = None,
    code_prompt: Callable[[str], str] | None = None,
) -> Any:
    """An instagrapi `Client` for `settings`, restored from `session` when given.

    With `code_prompt`, a challenge asks it for the security code Instagram sent; without,
    a challenge fails at once.
    """
    from instagrapi import Client

    client = Client(
        settings=session,
        proxy=settings.proxy,
        delay_range=list(settings.delay_range_s) if settings.delay_range_s else None,
        logger=_INSTAGRAPI_LOGGER,
        tls_verify=settings.ca_file or True,
        private_transport="requests",
        session_retry_total=0,
        with_challenge_flow=code_prompt is not None,
    )
    # A restored session carries the transport, retry and TLS settings of whoever saved
    # it; ours apply whatever the file says.
    client.set_retry_config(
        session_retry_total=0, private_transport="requests", public_transport="requests"
    )
    client.set_tls_verify(settings.ca_file or True)
    client.set_proxy(settings.proxy)
    client.with_challenge_flow = code_prompt is not None
    client.challenge_code_handler = _code_handler(settings.username, code_prompt)
    client.change_password_handler = _refuse_password_change
    for attribute, request_logger in _REQUEST_LOGGERS.items():
        setattr(client, attribute, request_logger)
    for http in _sessions(client):
        adapter = _tracking_adapter(budget)
        http.mount("https://", adapter)
        http.mount("http://", adapter)
        _bound_requests(http, budget, settings.ca_file)
    if session is not None:
        register_session_secrets(client)
    return client


def close_client(client: Any) -> None:
    """Close the client's connections."""
    # The last response instagrapi keeps holds its connection open past the pool's close.
    for attribute in ("last_response", "last_public_response"):
        response = getattr(client, attribute, None)
        if response is not None:
            response.close()
            setattr(client, attribute, None)
    for http in _sessions(client):
        http.close()


def _sessions(client: Any) -> list[Any]:
    return [s for s in (getattr(client, n, None) for n in ("private", "public", "graphql")) if s]


def _bound_requests(http: Any, budget: RequestBudget, ca_file: str | None) -> None:
    """Give every request of the `requests` session `http` the budget's socket timeout."""
    original = http.request

    def request(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        limit = budget.request_timeout()
        given = kwargs.get("timeout")
        if isinstance(given, int | float):
            limit = min(limit, float(given))
        elif isinstance(given, tuple):
            limit = min([limit, *(float(part) for part in given if part is not None)])
        kwargs["timeout"] = limit
        if ca_file:
            kwargs["verify"] = ca_file
        return original(method, url, *args, **kwargs)

    http.request = request


def _tracking_adapter(budget: RequestBudget) -> Any:
    """A `requests` adapter without retries whose sockets the budget can shut down."""
    from requests.adapters import HTTPAdapter
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    class TrackedHTTPConnection(HTTPConnection):
        def _new_conn(self) -> Any:
            sock = super()._new_conn()
            budget.track(sock)
            return sock

    class TrackedHTTPSConnection(HTTPSConnection):
        def _new_conn(self) -> Any:
            sock = super()._new_conn()
            budget.track(sock)
            return sock

        def connect(self) -> None:
            super().connect()
            if self.sock is not None:  # the TLS socket wrapping the tracked one
                budget.track(self.sock)

    class TrackedHTTPPool(HTTPConnectionPool):
        ConnectionCls = TrackedHTTPConnection

    class TrackedHTTPSPool(HTTPSConnectionPool):
        ConnectionCls = TrackedHTTPSConnection

    pools = {"http": TrackedHTTPPool, "https": TrackedHTTPSPool}

    class TrackingAdapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = pools

        def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
            manager = super().proxy_manager_for(proxy, **proxy_kwargs)
            manager.pool_classes_by_scheme = pools
            return manager

    return TrackingAdapter(max_retries=0)


def _code_handler(username: str, prompt: Callable[[str], str] | None) -> Callable[..., str]:
    def ask(_username: str, choice: Any = None) -> str:
        if prompt is None:
            raise InstagramError(
                f"Instagram asks to confirm it is really {username} (challenge required): "
                f"run {_LOGIN_COMMAND} to answer it, then publish again"
            )
        where = "by SMS" if getattr(choice, "name", "") == "SMS" else "by e-mail"
        return prompt(f"Instagram sent a security code {where} for {username}; enter it: ").strip()

    return ask


def _refuse_password_change(username: str) -> str:
    raise InstagramError(
        f"Instagram asks to change the password of {username}: change it in the Instagram "
        "app, update CROSSPOST_INSTAGRAM_PASSWORD, then publish again"
    )


# -- the session ---------------------------------------------------------------------------
def open_session(
    client: Any, settings: InstagramSettings, progress: Progress, *, password: str | None = None
) -> None:
    """Make `client` logged in: keep its restored session if Instagram still accepts it for
    this account, else log in with the password and save the new session."""
    relogin = False
    if client.user_id:
        if session_is_valid(client, settings):
            progress.login = "session"
            return
        relogin = True
    password = password or settings.password
    if not password:
        raise InstagramError(
            f"no valid saved Instagram session for {settings.username} in "
            f"{settings.session_file} and CROSSPOST_INSTAGRAM_PASSWORD is not set: set it, "
            f"or run {_LOGIN_COMMAND}"
        )
    client.login(settings.username, password, relogin=relogin)
    progress.login = "password"
    register_session_secrets(client)
    try:
        save_session(client, settings)
    except OSError as exc:
        # The login stands and this publish goes on; the next one logs in again.
        log_json(
            logger,
            logging.WARNING,
            "instagram_session_not_saved",
            path=settings.session_file,
            error=f"{type(exc).__name__}: {exc.strerror or exc}",
        )


def session_is_valid(client: Any, settings: InstagramSettings) -> bool:
    """Whether Instagram still accepts the client's restored session for this account."""
    from instagrapi.exceptions import LoginRequired

    if not client.user_id:
        return False
    try:
        account = client.account_info()
    except LoginRequired:
        log_json(logger, logging.INFO, "instagram_session_expired", username=settings.username)
        return False
    return str(account.username).lower() == settings.username.lower()


def save_session(client: Any, settings: InstagramSettings) -> None:
    """Write the client's session to `settings.session_file` (atomically, mode 0600)."""
    write_session(settings.session_file, client.get_settings())
    log_json(
        logger,
        logging.INFO,
        "instagram_session_saved",
        username=settings.username,
        path=settings.session_file,
    )


# -- the upload ----------------------------------------------------------------------------
def upload_photo(client: Any, photo_path: str, caption: str, progress: Progress) -> tuple[str, str]:
    """Upload the photo and publish it with the caption; returns (media id, shortcode).

    The configure request, which creates the post, goes out at most once: instagrapi would
    resend it after some failures, and a second one can post twice.
    """
    send = client._send_private_request

    def send_configure_once(endpoint: str, *args: Any, **kwargs: Any) -> Any:
        if "media/configure" in str(endpoint):
            if progress.configure_sent:
                raise InstagramError(
                    "Instagram did not confirm the post and it is not sent twice; it may "
                    "exist: check the profile before publishing again",
                    outcome_unknown=True,
                )
            progress.configure_sent = True
        return send(endpoint, *args, **kwargs)

    client._send_private_request = send_configure_once
    with tempfile.TemporaryDirectory(prefix="crosspost-instagram-") as scratch:
        path = Path(photo_path)
        if path.suffix.lower() not in _PHOTO_SUFFIXES:
            # instagrapi goes by the name's ending; the rendition is a JPEG whatever its name.
            copy = Path(scratch) / "photo.jpg"
            shutil.copyfile(path, copy)
            path = copy
        media = client.photo_upload(path, caption)
    return str(media.id), str(media.code)


# -- what the publisher runs in its worker thread ------------------------------------------
def publish_blocking(
    settings: InstagramSettings,
    budget: RequestBudget,
    photo_path: str,
    caption: str,
    progress: Progress,
) -> tuple[str, str]:
    """Log in (or restore the session), upload and publish; returns (media id, shortcode)."""
    client = build_client(settings, budget, session=read_session(settings.session_file))
    try:
        open_session(client, settings, progress)
        return upload_photo(client, photo_path, caption, progress)
    finally:
        close_client(client)


def check_blocking(settings: InstagramSettings, budget: RequestBudget, progress: Progress) -> None:
    """Log in (or check the saved session) without posting anything."""
    client = build_client(settings, budget, session=read_session(settings.session_file))
    try:
        open_session(client, settings, progress)
    finally:
        close_client(client)
