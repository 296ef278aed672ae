"""InstagramSandbox driven by the real instagrapi client, through its CONNECT proxy."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from instagrapi import Client
from instagrapi.exceptions import (
    BadPassword,
    ChallengeRequired,
    ClientConnectionError,
    ClientError,
    ClientThrottledError,
    FeedbackRequired,
    LoginRequired,
    PhotoNotUpload,
    PleaseWaitFewMinutes,
    TwoFactorRequired,
    UnknownError,
)
from PIL import Image

from crosspost_sandbox.instagram import InstagramSandbox
from crosspost_sandbox.instagrapi_pauses import instant_pauses

PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def _instagrapi_for_tests(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # requests lets these override `verify`, which must pin the sandbox CA here.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    # photo_upload sleeps 3 s before configuring and the challenge flow 5 s a step.
    with instant_pauses():
        yield


@pytest.fixture
def sandbox() -> Iterator[InstagramSandbox]:
    with InstagramSandbox(password=PASSWORD).run_in_thread() as server:
        yield server


def make_client(sandbox: InstagramSandbox, **kwargs: Any) -> Client:
    """A client as a careful caller builds one: HTTP/1.1, no pauses, no silent retries."""
    options: dict[str, Any] = {
        "proxy": sandbox.proxy_url,
        "tls_verify": sandbox.ca_path,
        "private_transport": "requests",
        "request_timeout": 0,
        "session_retry_total": 0,
    }
    options.update(kwargs)
    return Client(**options)


@pytest.fixture
def photo(tmp_path: Path) -> str:
    path = tmp_path / "photo.jpg"
    Image.new("RGB", (1080, 1350), (200, 30, 30)).save(path, "JPEG")
    return str(path)


def with_read_timeout(client: Client, seconds: float) -> None:
    """Give every request of the client a socket timeout (instagrapi sets none)."""
    for session in (client.private, client.public):
        original = session.request

        def request(
            method: str, url: str, _original: Callable[..., Any] = original, **kw: Any
        ) -> Any:
            kw["timeout"] = seconds
            return _original(method, url, **kw)

        session.request = request  # type: ignore[method-assign]


# -- login, session, upload ------------------------------------------------------------------
def test_login_with_the_right_password_opens_a_session(sandbox: InstagramSandbox) -> None:
    client = make_client(sandbox)

    assert client.login(sandbox.username, PASSWORD) is True

    assert client.user_id == sandbox.user_pk
    assert client.sessionid
    assert client.sessionid.startswith(str(sandbox.user_pk))
    assert sandbox.counters["logins"] == 1
    assert sandbox.counters["password_checks"] == 1
    assert sandbox.active_sessions == 1
    assert sandbox.counters["unknown_endpoints"] == 0
    # TLS was terminated for the hosts instagrapi hard-codes.
    assert {r.host for r in sandbox.requests} == {"i.instagram.com", "b.i.instagram.com"}


def test_the_password_is_decrypted_from_instagrapis_envelope(sandbox: InstagramSandbox) -> None:
    client = make_client(sandbox)

    encrypted = client.password_encrypt("pässword ✓")

    assert encrypted.startswith("#PWD_INSTAGRAM:4:")
    assert sandbox.decrypt_password(encrypted) == "pässword ✓"
    with pytest.raises(ValueError, match="not an encrypted"):
        sandbox.decrypt_password("plain text")


def test_photo_upload_stores_the_photo_and_answers_with_the_media(
    sandbox: InstagramSandbox, photo: str
) -> None:
    client = make_client(sandbox)
    client.login(sandbox.username, PASSWORD)

    media = client.photo_upload(Path(photo), "Sunset #sea")

    (post,) = sandbox.posts
    assert (post.width, post.height, post.format) == (1080, 1350, "JPEG")
    assert post.caption == "Sunset #sea"
    assert post.data[:2] == b"\xff\xd8"
    assert media.id == post.media_id == f"{post.media_pk}_{sandbox.user_pk}"
    assert media.code == post.code
    assert media.caption_text == "Sunset #sea"
    assert media.user.username == sandbox.username
    assert media.media_type == 1
    assert sandbox.counters["uploads"] == sandbox.counters["configures"] == 1


def test_media_ids_increase_and_the_profile_feed_lists_them(
    sandbox: InstagramSandbox, photo: str
) -> None:
    client = make_client(sandbox)
    client.login(sandbox.username, PASSWORD)

    first = client.photo_upload(Path(photo), "one")
    second = client.photo_upload(Path(photo), "two")

    assert int(second.pk) > int(first.pk)
    listed = client.user_medias_v1(client.user_id, amount=10)
    assert [m.id for m in listed] == [second.id, first.id]


def test_a_saved_session_is_restored_without_a_password_login(
    sandbox: InstagramSandbox, tmp_path: Path
) -> None:
    first = make_client(sandbox)
    first.login(sandbox.username, PASSWORD)
    first.dump_settings(tmp_path / "session.json")

    restored = make_client(sandbox)
    restored.load_settings(tmp_path / "session.json")
    account = restored.account_info()

    assert account.username == sandbox.username
    assert sandbox.counters["logins"] == 1
    assert sandbox.counters["session_checks"] == 1


def test_an_expired_session_gets_login_required(sandbox: InstagramSandbox) -> None:
    client = make_client(sandbox)
    client.login(sandbox.username, PASSWORD)

    sandbox.expire_sessions()

    with pytest.raises(LoginRequired):
        client.account_info()
    assert sandbox.counters["sessions_rejected"] == 1


def test_instagrapi_relogs_in_once_when_its_session_expired(sandbox: InstagramSandbox) -> None:
    client = make_client(sandbox)
    client.login(sandbox.username, PASSWORD)
    sandbox.expire_sessions()

    assert client.login(sandbox.username, PASSWORD) is True

    assert sandbox.counters["logins"] == 2
    assert client.account_info().username == sandbox.username


# -- login failures --------------------------------------------------------------------------
def test_a_wrong_password_is_refused_as_bad_password(sandbox: InstagramSandbox) -> None:
    with pytest.raises(BadPassword):
        make_client(sandbox).login(sandbox.username, "not the password")

    assert sandbox.counters["logins"] == 0
    assert sandbox.counters["bad_passwords"] == 1
    # Instagram sends the app back to the legacy endpoint, which names the failure.
    assert any(r.path == "/api/v1/accounts/login/" for r in sandbox.requests)


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("bad_password", BadPassword),
        ("two_factor", TwoFactorRequired),
        ("challenge", ChallengeRequired),
        ("throttle", ClientThrottledError),
        ("please_wait", PleaseWaitFewMinutes),
        ("login_required", LoginRequired),
        ("feedback", FeedbackRequired),
        ("5xx", ClientError),
        ("drop", ClientConnectionError),
    ],
)
def test_login_faults_raise_what_instagrapi_raises_for_instagram(
    sandbox: InstagramSandbox, kind: str, expected: type[Exception]
) -> None:
    sandbox.inject(kind, operation="login")
    client = make_client(sandbox, with_challenge_flow=False)

    started = time.perf_counter()
    with pytest.raises(expected):
        client.login(sandbox.username, PASSWORD)

    assert time.perf_counter() - started < 5
    assert sandbox.counters["logins"] == 0
    assert sandbox.faults.pending() == []


def test_a_fault_for_one_attempt_leaves_the_next_login_alone(sandbox: InstagramSandbox) -> None:
    sandbox.inject("bad_password", operation="login")
    with pytest.raises(BadPassword):
        make_client(sandbox).login(sandbox.username, PASSWORD)

    assert make_client(sandbox).login(sandbox.username, PASSWORD) is True
    assert sandbox.counters["logins"] == 1


def test_a_two_factor_code_completes_the_login(sandbox: InstagramSandbox) -> None:
    sandbox.inject("two_factor", operation="login", times=2)
    client = make_client(sandbox)
    with pytest.raises(TwoFactorRequired):
        client.login(sandbox.username, PASSWORD)

    assert client.login(sandbox.username, PASSWORD, verification_code=sandbox.verification_code)

    assert client.user_id == sandbox.user_pk
    assert sandbox.counters["logins"] == 1


def test_a_wrong_two_factor_code_is_refused(sandbox: InstagramSandbox) -> None:
    sandbox.inject("two_factor", operation="login")
    client = make_client(sandbox)

    with pytest.raises(UnknownError, match="security code"):
        client.login(sandbox.username, PASSWORD, verification_code="000000")
    assert sandbox.counters["logins"] == 0


def test_a_challenge_is_passed_with_the_emailed_code(sandbox: InstagramSandbox) -> None:
    sandbox.inject("challenge", operation="login")
    client = make_client(sandbox)
    asked: list[str] = []

    def code_handler(username: str, choice: object) -> str:
        asked.append(username)
        return sandbox.verification_code

    client.challenge_code_handler = code_handler

    assert client.login(sandbox.username, PASSWORD) is True

    assert asked == [sandbox.username]
    assert sandbox.counters["challenges_passed"] == 1
    assert sandbox.counters["logins"] == 1


# -- upload failures -------------------------------------------------------------------------
@pytest.fixture
def logged_in(sandbox: InstagramSandbox) -> Client:
    client = make_client(sandbox)
    client.login(sandbox.username, PASSWORD)
    return client


def test_a_failed_rupload_raises_photo_not_upload(
    sandbox: InstagramSandbox, logged_in: Client, photo: str
) -> None:
    sandbox.inject("5xx", operation="upload", status=503)

    with pytest.raises(PhotoNotUpload):
        logged_in.photo_upload(Path(photo), "caption")
    assert sandbox.posts == []


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("bad_request", UnknownError),
        ("throttle", ClientThrottledError),
        ("please_wait", PleaseWaitFewMinutes),
        ("feedback", FeedbackRequired),
        ("login_required", LoginRequired),
    ],
)
def test_configure_refusals_create_no_post(
    sandbox: InstagramSandbox,
    logged_in: Client,
    photo: str,
    kind: str,
    expected: type[Exception],
) -> None:
    sandbox.inject(kind, operation="configure")

    with pytest.raises(expected):
        logged_in.photo_upload(Path(photo), "caption")
    assert len(sandbox.uploads) == 1
    assert sandbox.posts == []


def test_drop_after_configure_creates_the_post_the_client_never_hears_of(
    sandbox: InstagramSandbox, logged_in: Client, photo: str
) -> None:
    sandbox.inject("drop_after", operation="configure")

    with pytest.raises(ClientConnectionError):
        logged_in.photo_upload(Path(photo), "maybe posted")
    (post,) = sandbox.posts
    assert post.caption == "maybe posted"


def test_configure_enforces_instagrams_caption_limits(
    sandbox: InstagramSandbox, logged_in: Client, photo: str
) -> None:
    with pytest.raises(UnknownError, match="too long"):
        logged_in.photo_upload(Path(photo), "x" * 2201)
    with pytest.raises(UnknownError, match="hashtags"):
        logged_in.photo_upload(Path(photo), " ".join(f"#t{i}" for i in range(31)))

    logged_in.photo_upload(Path(photo), " ".join(f"#t{i}" for i in range(30)))
    assert len(sandbox.posts) == 1


def test_an_upload_without_a_session_is_refused(
    sandbox: InstagramSandbox, logged_in: Client, photo: str
) -> None:
    sandbox.expire_sessions()

    with pytest.raises(PhotoNotUpload):
        logged_in.photo_upload(Path(photo), "caption")
    assert sandbox.uploads == []


# -- hang, latency, proxy, lifecycle ---------------------------------------------------------
def test_a_hang_holds_the_request_until_the_client_gives_up(sandbox: InstagramSandbox) -> None:
    sandbox.inject("hang", operation="session")
    client = make_client(sandbox)
    client.login(sandbox.username, PASSWORD)
    with_read_timeout(client, 0.5)

    started = time.perf_counter()
    # Without retries, urllib3's read timeout reaches instagrapi as a connection error.
    with pytest.raises(ClientConnectionError, match="Read timed out"):
        client.account_info()
    assert 0.4 < time.perf_counter() - started < 3
    assert sandbox.requests[-1].fault == "hang"


def test_stopping_releases_a_hung_request_and_leaves_nothing_open() -> None:
    threads_before = set(threading.enumerate())
    server = InstagramSandbox(password=PASSWORD)
    outcome: list[BaseException] = []
    with server.run_in_thread():
        server.inject("hang")
        client = make_client(server)

        def call() -> None:
            try:
                client.login(server.username, PASSWORD)
            except BaseException as exc:  # noqa: BLE001 - handed to the test thread
                outcome.append(exc)

        worker = threading.Thread(target=call, daemon=True)
        worker.start()
        deadline = time.monotonic() + 5
        while not server.requests and time.monotonic() < deadline:
            time.sleep(0.01)  # polling the server thread; no event crosses the two threads
        assert server.requests
        assert server.requests[-1].fault == "hang"
        stop_started = time.perf_counter()
    assert time.perf_counter() - stop_started < 2
    worker.join(timeout=5)
    assert not worker.is_alive()
    assert outcome
    assert isinstance(outcome[0], ClientConnectionError | ClientError)
    assert server.counters["open_connections"] == 0
    assert set(threading.enumerate()) <= threads_before | {threading.current_thread()}


def test_latency_is_added_to_every_request(sandbox: InstagramSandbox) -> None:
    client = make_client(sandbox)
    client.login(sandbox.username, PASSWORD)
    sandbox.set_latency(0.2)

    started = time.perf_counter()
    client.account_info()
    assert time.perf_counter() - started >= 0.2


def test_the_proxy_tunnels_only_to_instagram(sandbox: InstagramSandbox) -> None:
    session = requests.Session()
    session.trust_env = False
    proxies = {"https": sandbox.proxy_url}

    with pytest.raises(requests.exceptions.ProxyError):
        session.get("https://example.com/", proxies=proxies, verify=sandbox.ca_path, timeout=5)
    answer = session.get(
        "https://i.instagram.com/api/v1/qe/sync/",
        proxies=proxies,
        verify=sandbox.ca_path,
        timeout=5,
    )
    assert answer.status_code == 200
    assert int(answer.headers["ig-set-password-encryption-key-id"]) in range(1, 256)
    assert answer.headers["ig-set-password-encryption-pub-key"]


async def test_the_pytest_fixture_serves_on_the_tests_own_loop(
    instagram_sandbox: InstagramSandbox,
) -> None:
    client = make_client(instagram_sandbox)

    await asyncio.to_thread(client.login, instagram_sandbox.username, instagram_sandbox.password)

    assert instagram_sandbox.counters["logins"] == 1
    assert instagram_sandbox.proxy_url.startswith("http://127.0.0.1:")
