"""A loopback Instagram private API, reached the way instagrapi 3.2.x reaches the real one.

instagrapi hard-codes `https://i.instagram.com` and `https://b.i.instagram.com`, so the sandbox
is an HTTP CONNECT proxy on 127.0.0.1 that terminates TLS for Instagram's hosts with a
certificate from its own CA and answers the private API over HTTP/1.1 inside the tunnel. A
client reaches it with::

    Client(proxy=sandbox.proxy_url, tls_verify=sandbox.ca_path, private_transport="requests")

(instagrapi's default private transport speaks HTTP/2 only; `requests` speaks HTTP/1.1). The
environment variables `REQUESTS_CA_BUNDLE` / `CURL_CA_BUNDLE` override `tls_verify` in
`requests`: unset them, or pass `verify=` per request, to pin the sandbox CA.

What it serves, as instagrapi 3.2.x uses it:

- the password key (`GET /api/v1/qe/sync/` with `ig-set-password-encryption-*` headers); the
  client's `#PWD_INSTAGRAM:4:` password is decrypted (RSA-wrapped AES-GCM key) and compared;
- the current Android login ("CAA": USDID registration, Bloks `process_client_data`,
  keystore attestation, OAuth preflight, `send_login_request`), and the legacy
  `accounts/login/` and `accounts/two_factor_login/` it falls back to. A wrong password is
  answered the way Instagram does: CAA routes the client back to the legacy endpoint
  (`CAA_LOGIN_FALLBACK:`), which answers `bad_password`, so instagrapi raises `BadPassword`;
- the challenge steps (`/challenge/<pk>/<nonce>/`: choose e-mail, send the code);
- a restored session's check (`GET /api/v1/accounts/current_user/?edit=true`, 403
  `login_required` once `expire_sessions()` ran), the feeds instagrapi reads after login and
  before an upload, `POST /rupload_igphoto/<name>` and `POST /api/v1/media/configure/`,
  which enforces Instagram's feed limits (aspect ratio 4:5 to 1.91:1, caption <= 2200
  characters and <= 30 hashtags) and answers with a realistic media object.

Faults (`inject(kind, operation=...)`). Operations: `login` (the password check: one per
login attempt, at CAA `send_login_request`, so `times` counts login attempts), `prelogin`
(the other login steps), `session` (`current_user`), `feed`, `upload` (rupload),
`configure`, `challenge`, `two_factor`; None means the next request whatever it is. Callers
that want one fault to hit exactly once should build their client with
`session_retry_total=0`: instagrapi's default retries 429 and 5xx answers (with back-off).

- `throttle` — 429 (instagrapi: `ClientThrottledError`)
- `please_wait` — 400 "Please wait a few minutes before you try again." (`PleaseWaitFewMinutes`)
- `challenge` — 400 `challenge_required` (`ChallengeRequired`; resolvable with the code
  `verification_code` by a client whose challenge flow is on)
- `two_factor` — this login attempt needs a two-factor code (`TwoFactorRequired`; the code is
  `verification_code`, sent to `accounts/two_factor_login/`)
- `bad_password` — this login attempt's password is refused even if right (`BadPassword`)
- `login_required` — 403 `login_required` (`LoginRequired`)
- `feedback` — 400 `feedback_required` (`FeedbackRequired`)
- `bad_request` — 400 with `message` (param; default: an aspect-ratio refusal)
- `5xx` — 500 (param `status`: 500, 502, 503 or 504)
- `hang` — read the request, never answer (until the client leaves or the server stops)
- `drop` — read the request, close the connection without answering
- `drop_after` / `hang_after` — do the work (an upload is stored, a post is created), then
  drop / hang: the client cannot know the outcome
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import random
import re
import secrets
import ssl
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from PIL import Image, UnidentifiedImageError

from crosspost_sandbox.base import SandboxServer
from crosspost_sandbox.faults import Fault
from crosspost_sandbox.tls import SandboxCA

__all__ = [
    "CAPTION_MAX_CHARS",
    "HASHTAGS_MAX",
    "INSTAGRAM_HOSTS",
    "MAX_RATIO",
    "MIN_RATIO",
    "InstagramSandbox",
    "ReceivedRequest",
    "ReceivedUpload",
]

#: The hosts the proxy terminates TLS for; a CONNECT to any other host is refused.
INSTAGRAM_HOSTS = (
    "instagram.com",
    "i.instagram.com",
    "b.i.instagram.com",
    "www.instagram.com",
    "graph.instagram.com",
    "*.instagram.com",
    "*.i.instagram.com",
)
#: Feed photo limits (width / height), with instagrapi's own upper bound (90/47) as tolerance.
MIN_RATIO = 0.8
MAX_RATIO = 1.91
_RATIO_TOLERANCE = 0.01
CAPTION_MAX_CHARS = 2200
HASHTAGS_MAX = 30

_MAX_HEAD_BYTES = 64 * 1024
_MAX_BODY_BYTES = 60 * 2**20
_HASHTAG = re.compile(r"(?<!\w)#\w+")
_SHORTCODE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_CAA_ACTION = "/api/v1/bloks/async_action/"
_CHALLENGE_PATH = re.compile(r"^/api(?:/v1)?/challenge/(\d+)/([^/]+)/?$")
_FEED_USER_PATH = re.compile(r"^/api/v1/feed/user/(\d+)/?$")
#: A legacy verdict waits this long for instagrapi's CAA retry that follows a bad password.
_VERDICT_TTL_S = 60.0


@dataclass(slots=True)
class ReceivedUpload:
    """A photo received by `rupload_igphoto`, and what `configure` made of it.

    `data` is the exact body received; `width`/`height`/`format` were read from it.
    `caption`, `media_pk`, `media_id` and `code` are set once a configure published it.
    """

    upload_id: str
    upload_name: str
    data: bytes
    width: int
    height: int
    format: str
    received_at: float
    caption: str | None = None
    media_pk: int | None = None
    media_id: str | None = None
    code: str | None = None
    configured_at: float | None = None

    @property
    def ratio(self) -> float:
        return self.width / self.height

    @property
    def configured(self) -> bool:
        return self.media_id is not None


@dataclass(frozen=True, slots=True)
class ReceivedRequest:
    """One HTTP request received inside a tunnel (for asserts and debugging)."""

    method: str
    host: str
    path: str
    operation: str
    status: int | None
    fault: str | None = None


@dataclass(slots=True)
class _Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    host: str
    keep_alive: bool

    def form(self) -> dict[str, Any]:
        """The body's parameters: url-encoded fields, a `signed_body` JSON, or a JSON body."""
        text = self.body.decode("utf-8", "replace")
        stripped = text.lstrip()
        if stripped.startswith("{"):
            with contextlib.suppress(ValueError):
                loaded = json.loads(stripped)
                if isinstance(loaded, dict):
                    return loaded
        fields: dict[str, Any] = {
            k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()
        }
        signed = fields.get("signed_body")
        if isinstance(signed, str) and signed.startswith("SIGNATURE."):
            with contextlib.suppress(ValueError):
                loaded = json.loads(signed[len("SIGNATURE.") :])
                if isinstance(loaded, dict):
                    fields.update(loaded)
        return fields


@dataclass(slots=True)
class _Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = "application/json; charset=utf-8"
    after: str | None = None  # "drop" | "hang" once the work is done

    @classmethod
    def json(
        cls, payload: Any, status: int = 200, headers: Iterable[tuple[str, str]] = ()
    ) -> _Response:
        return cls(status, json.dumps(payload).encode(), list(headers))


class _Drop(Exception):
    """Close the connection without answering."""


class _Hang(Exception):
    """Never answer this request."""


class _BadRequest(Exception):
    pass


@dataclass(slots=True)
class _DeviceState:
    """What the server remembers about one device (instagrapi's android device id)."""

    verdict: str | None = None  # the legacy endpoint's answer for this login attempt
    verdict_at: float = 0.0
    reject_next_caa: bool = False  # instagrapi retries CAA after a legacy bad_password
    challenge_passed: bool = False


class InstagramSandbox(SandboxServer):
    """Instagram's private API behind a TLS-terminating CONNECT proxy on 127.0.0.1.

    Exposes `proxy_url`, `ca_path`, `username`, `password`, `user_pk` and
    `verification_code` (the code a challenge or two-factor demand accepts). Records every
    photo in `uploads` (`posts`: the configured ones), every request in `requests`, and
    the secrets it handed out in `issued_secrets`.
    Counters: `connections`, `open_connections`, `requests`, `password_checks`, `logins`,
    `bad_passwords`, `session_checks`, `sessions_rejected`, `uploads`, `configures`,
    `challenges_passed`, `faults`, `unknown_endpoints`.
    """

    def __init__(
        self,
        *,
        username: str = "sandbox.user",
        password: str | None = None,
        user_pk: int | None = None,
        verification_code: str = "123456",
        latency_s: float = 0.0,
        jitter_s: float = 0.0,
        ca: SandboxCA | None = None,
    ) -> None:
        super().__init__(latency_s=latency_s, jitter_s=jitter_s)
        self.username = username
        self.password = password if password is not None else secrets.token_urlsafe(12)
        self.user_pk = user_pk if user_pk is not None else random.randint(10**10, 10**11 - 1)
        self.verification_code = verification_code
        self.full_name = "Sandbox User"
        #: The account password and every session id and authorization value handed out
        #: since (a list that grows): what a client must never log.
        self.issued_secrets: list[str] = [self.password]
        self.uploads: list[ReceivedUpload] = []
        self.requests: list[ReceivedRequest] = []
        self._given_ca = ca
        self._ca: SandboxCA | None = None
        self._tls: ssl.SSLContext | None = None
        self._server: asyncio.Server | None = None
        self._port = 0
        self._handlers: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._lock = threading.Lock()
        self._sessions: dict[str, int] = {}
        self._devices: dict[str, _DeviceState] = {}
        self._aacs: set[str] = set()
        self._two_factor_ids: dict[str, str] = {}  # identifier -> device id
        self._challenges: dict[str, str] = {}  # nonce -> device id
        self._uploads_by_id: dict[str, ReceivedUpload] = {}
        self._key_id = random.randint(1, 255)
        self._private_key: rsa.RSAPrivateKey | None = None
        self._public_key_b64 = ""
        self._next_pk = 3_100_000_000_000_000_000 + random.randint(0, 10**15)

    # -- public surface --------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._port

    @property
    def proxy_url(self) -> str:
        """The proxy for `instagrapi.Client(proxy=...)`."""
        return f"http://127.0.0.1:{self._port}"

    @property
    def ca_path(self) -> str:
        """PEM file of the CA that signed the sandbox's Instagram certificate."""
        if self._ca is None:
            raise RuntimeError("the sandbox is not started")
        return self._ca.ca_path

    @property
    def posts(self) -> list[ReceivedUpload]:
        """The uploads a configure turned into posts, oldest first."""
        return [u for u in self.uploads if u.configured]

    @property
    def active_sessions(self) -> int:
        with self._lock:
            return len(self._sessions)

    def expire_sessions(self) -> None:
        """Invalidate every session: later requests with one get 403 `login_required`."""
        with self._lock:
            self._sessions.clear()

    # -- lifecycle -------------------------------------------------------------------------
    async def _start(self) -> None:
        self._ca = self._given_ca or SandboxCA()
        self._tls = self._ca.server_context(*INSTAGRAM_HOSTS)
        self._private_key = await asyncio.to_thread(
            rsa.generate_private_key, public_exponent=65537, key_size=2048
        )
        pem = self._private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self._public_key_b64 = base64.b64encode(pem).decode()
        self._server = await asyncio.start_server(
            self._on_connection, host="127.0.0.1", port=0, backlog=128, limit=_MAX_HEAD_BYTES
        )
        self._port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        handlers = list(self._handlers)
        for task in handlers:
            task.cancel()
        if handlers:
            await asyncio.gather(*handlers, return_exceptions=True)
        for writer in list(self._writers):
            writer.transport.abort()
        await server.wait_closed()
        await asyncio.sleep(0)
        if self._given_ca is None and self._ca is not None:
            self._ca.cleanup()

    # -- connections -----------------------------------------------------------------------
    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._writers.add(writer)
        self.counters.add("connections")
        self.counters.add("open_connections")
        try:
            host = await self._accept_tunnel(reader, writer)
            if host is not None:
                await self._serve(reader, writer, host)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, _Drop):
            pass  # the client went away, or the fault closes the connection
        except asyncio.CancelledError:
            if self._stopping is None or not self._stopping.is_set():
                raise
        finally:
            self.counters.add("open_connections", -1)
            self._writers.discard(writer)
            self._handlers.discard(task)
            writer.transport.abort()

    async def _accept_tunnel(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> str | None:
        head = await reader.readuntil(b"\r\n\r\n")
        line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = line.split()
        if len(parts) != 3 or parts[0].upper() != "CONNECT":
            writer.write(
                b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            await writer.drain()
            return None
        host, _, port = parts[1].rpartition(":")
        if port != "443" or not _is_instagram_host(host):
            writer.write(
                b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            await writer.drain()
            return None
        self.counters.add("connects")
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        assert self._tls is not None
        await writer.start_tls(self._tls)
        return host.lower()

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str
    ) -> None:
        while True:
            try:
                request = await _read_request(reader, host)
            except _BadRequest:
                await _write_response(
                    writer,
                    _Response(400, b"bad request", content_type="text/plain"),
                    keep_alive=False,
                )
                return
            if request is None:
                return
            self.counters.add("requests")
            await self.latency.sleep()
            operation = _operation_of(request)
            try:
                response, fault = self._dispatch(request, operation)
            except _Drop:
                self._record(request, operation, None, "drop")
                raise
            except _Hang:
                self._record(request, operation, None, "hang")
                await self._hang_until_gone(reader)
                return
            self._record(request, operation, response.status, fault)
            if response.after == "drop":
                raise _Drop
            if response.after == "hang":
                await self._hang_until_gone(reader)
                return
            await _write_response(writer, response, keep_alive=request.keep_alive)
            if not request.keep_alive:
                return

    async def _hang_until_gone(self, reader: asyncio.StreamReader) -> None:
        """Wait until the client closes the connection or the server stops."""
        assert self._stopping is not None
        stop = asyncio.ensure_future(self._stopping.wait())
        gone = asyncio.ensure_future(reader.read(1))
        try:
            await asyncio.wait({stop, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in (stop, gone):
                waiter.cancel()
            await asyncio.gather(stop, gone, return_exceptions=True)

    def _record(
        self, request: _Request, operation: str, status: int | None, fault: str | None
    ) -> None:
        self.requests.append(
            ReceivedRequest(request.method, request.host, request.path, operation, status, fault)
        )

    # -- routing ---------------------------------------------------------------------------
    def _dispatch(self, request: _Request, operation: str) -> tuple[_Response, str | None]:
        path = request.path
        fault = None if operation == "login" else self.faults.take(operation)
        if fault is not None:
            self.counters.add("faults")
            early = self._fault_response(fault, request)
            if early is not None:
                return early, fault.kind
        response = _after(self._route(request, path), fault)
        return response, (fault.kind if fault is not None else None)

    def _route(self, request: _Request, path: str) -> _Response:
        if path == "/api/v1/qe/sync/":
            return self._qe_sync()
        if path == "/graphql_www":
            return _Response.json({"data": {"usdid_registration": {"success": True}}})
        if path.startswith(_CAA_ACTION):
            return self._bloks_action(request, path[len(_CAA_ACTION) :].strip("/"))
        if path == "/api/v1/attestation/create_android_keystore/":
            return _Response.json(
                {
                    "challenge_nonce": base64.b64encode(secrets.token_bytes(24)).decode(),
                    "key_nonce": base64.b64encode(secrets.token_bytes(24)).decode(),
                    "status": "ok",
                }
            )
        if path == "/api/v1/accounts/login/":
            return self._legacy_login(request)
        if path == "/api/v1/accounts/two_factor_login/":
            return self._two_factor_login(request)
        if match := _CHALLENGE_PATH.match(path):
            return self._challenge_step(request, int(match.group(1)), match.group(2))
        if path in (
            "/api/v1/launcher/sync/",
            "/api/v1/accounts/contact_point_prefill/",
            "/api/v1/accounts/get_prefill_candidates/",
        ):
            return _Response.json({"status": "ok"})
        if path == "/api/v1/accounts/current_user/":
            return self._current_user(request)
        if path == "/api/v1/feed/reels_tray/":
            return self._authorized(request) or _Response.json({"tray": [], "status": "ok"})
        if path == "/api/v1/feed/timeline/":
            return self._authorized(request) or _Response.json(
                {"feed_items": [], "num_results": 0, "more_available": False, "status": "ok"}
            )
        if match := _FEED_USER_PATH.match(path):
            return self._user_feed(request, int(match.group(1)))
        if path.startswith("/rupload_igphoto/"):
            return self._rupload(request, path[len("/rupload_igphoto/") :])
        if path == "/api/v1/media/configure/":
            return self._configure(request)
        self.counters.add("unknown_endpoints")
        return _Response.json({"message": "Page not found", "status": "fail"}, 404)

    def _fault_response(self, fault: Fault, request: _Request) -> _Response | None:
        """The answer a fault gives instead of the real one (None: answer normally)."""
        kind = fault.kind
        if kind == "hang":
            raise _Hang
        if kind == "drop":
            raise _Drop
        if kind in ("drop_after", "hang_after"):
            return None
        if kind == "throttle":
            return _Response.json({"message": "rate limited", "status": "fail"}, 429)
        if kind == "please_wait":
            return _Response.json(
                {"message": "Please wait a few minutes before you try again.", "status": "fail"},
                400,
            )
        if kind == "challenge":
            return self._challenge_required(_device_of(request.form()))
        if kind == "two_factor":
            return self._two_factor_required(_device_of(request.form()))
        if kind == "bad_password":
            return _bad_password_response()
        if kind == "login_required":
            return _login_required_response()
        if kind == "feedback":
            return _Response.json(
                {
                    "message": "feedback_required",
                    "feedback_title": "Try Again Later",
                    "feedback_message": "We restrict certain activity to protect our community.",
                    "status": "fail",
                },
                400,
            )
        if kind == "bad_request":
            message = str(
                fault.params.get("message", "Uploaded image isn't in an allowed aspect ratio")
            )
            return _Response.json({"message": message, "status": "fail"}, 400)
        if kind == "5xx":
            status = int(fault.params.get("status", 500))
            return _Response(status, HTTPStatus(status).phrase.encode(), content_type="text/plain")
        raise ValueError(f"unknown Instagram sandbox fault {kind!r}")

    # -- login -----------------------------------------------------------------------------
    def _qe_sync(self) -> _Response:
        return _Response.json(
            {"experiments": [], "status": "ok"},
            headers=[
                ("ig-set-password-encryption-key-id", str(self._key_id)),
                ("ig-set-password-encryption-pub-key", self._public_key_b64),
                ("ig-set-x-mid", "Z" + secrets.token_urlsafe(20)),
            ],
        )

    def _bloks_action(self, request: _Request, action: str) -> _Response:
        if action.endswith("caa.login.process_client_data_and_redirect"):
            aac = secrets.token_urlsafe(24)
            with self._lock:
                self._aacs.add(aac)
            return _Response.json(
                _bloks_layout(
                    data=[{"data": {"key": "CAA_ACCOUNT_ACCESS_CONTEXT:aac", "initial": aac}}]
                )
            )
        if action.endswith("caa.login.async.send_login_request"):
            return self._caa_login(request)
        return _Response.json(_bloks_layout())

    def _caa_login(self, request: _Request) -> _Response:
        """The password check of the current login flow: one per login attempt."""
        params = _json_field(request.form(), "params")
        inputs = params.get("client_input_params") or {}
        device = str(inputs.get("device_id") or "")
        with self._lock:
            state = self._devices.setdefault(device, _DeviceState())
            known_aac = inputs.get("aac") in self._aacs
            if state.reject_next_caa:
                state.reject_next_caa = False
                return _Response.json(_caa_fallback())
            # A challenge just passed on this device covers the login it interrupted.
            verified, state.challenge_passed = state.challenge_passed, False
        if not known_aac:
            return _Response.json(
                {"message": "Invalid account access context", "status": "fail"}, 400
            )
        fault = None if verified else self.faults.take("login")
        if fault is not None:
            self.counters.add("faults")
            if fault.kind == "challenge":
                return self._challenge_required(device)
            if fault.kind not in ("bad_password", "two_factor"):
                early = self._fault_response(fault, request)
                if early is not None:
                    return early
        password_ok = self._password_matches(
            str(inputs.get("password") or ""), str(inputs.get("contact_point") or "")
        )
        if not password_ok or (fault is not None and fault.kind in ("bad_password", "two_factor")):
            # Instagram answers these on the legacy endpoint it routes the client back to.
            verdict = fault.kind if password_ok and fault is not None else "bad_password"
            self._set_verdict(state, verdict)
            return _Response.json(_caa_fallback())
        _sessionid, authorization, cookies = self._new_session()
        embedded = {
            "login_response": json.dumps(
                {"logged_in_user": self._user_dict(), "session_flush_nonce": None, "status": "ok"}
            ),
            "headers": json.dumps({"IG-Set-Authorization": authorization, "ig-set-ig-u-rur": ""}),
            "cookies": "; ".join(f"Set-Cookie: {name}={value}; Path=/" for name, value in cookies),
        }
        action = "(bk.action.caa.PresentLoginSuccess, " + json.dumps(json.dumps(embedded)) + ")"
        return _after(_Response.json(_bloks_layout(action=action)), fault)

    def _legacy_login(self, request: _Request) -> _Response:
        form = request.form()
        device = _device_of(form)
        with self._lock:
            state = self._devices.setdefault(device, _DeviceState())
            verdict = (
                state.verdict if time.monotonic() - state.verdict_at < _VERDICT_TTL_S else None
            )
            state.verdict = None
        fault = None
        if verdict is None:
            fault = self.faults.take("login")
            if fault is not None:
                self.counters.add("faults")
                early = self._fault_response(fault, request)
                if early is not None:
                    return early
            if not self._password_matches(
                str(form.get("enc_password") or ""), str(form.get("username") or "")
            ):
                verdict = "bad_password"
        if verdict == "bad_password":
            with self._lock:
                state.reject_next_caa = True
            self.counters.add("bad_passwords")
            return _bad_password_response()
        if verdict == "two_factor":
            return self._two_factor_required(device)
        return _after(self._login_success(), fault)

    def _two_factor_login(self, request: _Request) -> _Response:
        form = request.form()
        with self._lock:
            known = form.get("two_factor_identifier") in self._two_factor_ids
        if not known:
            return _Response.json(
                {
                    "message": "Invalid parameters",
                    "status": "fail",
                    "error_type": "invalid_parameters",
                },
                400,
            )
        if str(form.get("verification_code") or "").strip() != self.verification_code:
            return _Response.json(
                {
                    "message": "Please check the security code and try again.",
                    "status": "fail",
                    "error_type": "sms_code_validation_code_invalid",
                },
                400,
            )
        with self._lock:
            self._two_factor_ids.pop(str(form.get("two_factor_identifier")), None)
        return self._login_success()

    def _login_success(self) -> _Response:
        _sessionid, authorization, cookies = self._new_session()
        return _Response.json(
            {"logged_in_user": self._user_dict(), "session_flush_nonce": None, "status": "ok"},
            headers=[
                ("ig-set-authorization", authorization),
                *(
                    (
                        "Set-Cookie",
                        f"{name}={value}; Domain=.instagram.com; Path=/; Secure; HttpOnly",
                    )
                    for name, value in cookies
                ),
            ],
        )

    def _challenge_required(self, device: str) -> _Response:
        nonce = secrets.token_urlsafe(8).replace("-", "x").replace("_", "y")
        with self._lock:
            self._challenges[nonce] = device
        api_path = f"/challenge/{self.user_pk}/{nonce}/"
        return _Response.json(
            {
                "message": "challenge_required",
                "challenge": {
                    "url": f"https://i.instagram.com{api_path}",
                    "api_path": api_path,
                    "hide_webview_header": True,
                    "lock": True,
                    "logout": False,
                    "native_flow": False,
                    "flow_render_type": 0,
                },
                "status": "fail",
                "error_type": "checkpoint_challenge_required",
            },
            400,
        )

    def _challenge_step(self, request: _Request, user_pk: int, nonce: str) -> _Response:
        with self._lock:
            device = self._challenges.get(nonce)
        if device is None or user_pk != self.user_pk:
            return _Response.json(
                {"message": "This page is no longer available", "status": "fail"}, 400
            )
        form = request.form() if request.method == "POST" else {}
        base = {"nonce_code": nonce, "user_id": self.user_pk, "status": "ok"}
        if "security_code" in form:
            if str(form["security_code"]).strip() != self.verification_code:
                return _Response.json(
                    {
                        "message": "Please check the code we sent you and try again.",
                        "status": "fail",
                    },
                    400,
                )
            with self._lock:
                self._challenges.pop(nonce, None)
                self._devices.setdefault(device, _DeviceState()).challenge_passed = True
            self.counters.add("challenges_passed")
            return _Response.json(
                {"action": "close", "location": "instagram://checkpoint/dismiss", "status": "ok"}
            )
        if "choice" in form:
            return _Response.json(
                {
                    **base,
                    "step_name": "verify_email",
                    "step_data": {
                        "security_code": "None",
                        "resend_delay": 60,
                        "contact_point": "s******x@e******.com",
                        "form_type": "email",
                    },
                }
            )
        return _Response.json(
            {
                **base,
                "step_name": "select_verify_method",
                "step_data": {"choice": "1", "email": "s******x@e******.com"},
            }
        )

    def _two_factor_required(self, device: str) -> _Response:
        identifier = secrets.token_urlsafe(16)
        with self._lock:
            self._two_factor_ids[identifier] = device
        return _Response.json(
            {
                "message": "",
                "two_factor_required": True,
                "two_factor_info": {
                    "username": self.username,
                    "sms_two_factor_on": False,
                    "totp_two_factor_on": True,
                    "obfuscated_phone_number": "",
                    "two_factor_identifier": identifier,
                    "show_messenger_code_option": False,
                    "show_new_login_screen": True,
                    "show_trusted_device_option": True,
                    "pending_trusted_notification": False,
                },
                "status": "fail",
                "error_type": "two_factor_required",
            },
            400,
        )

    def _set_verdict(self, state: _DeviceState, verdict: str) -> None:
        with self._lock:
            state.verdict = verdict
            state.verdict_at = time.monotonic()

    def _password_matches(self, enc_password: str, username: str) -> bool:
        self.counters.add("password_checks")
        try:
            password = self.decrypt_password(enc_password)
        except ValueError:
            return False
        return username.strip().lower() == self.username.lower() and password == self.password

    def decrypt_password(self, enc_password: str) -> str:
        """Invert instagrapi's `password_encrypt` (`#PWD_INSTAGRAM:4:<time>:<base64>`).

        The payload is: version 1, key id, 12-byte IV, 2-byte little-endian length, the
        RSA-PKCS#1 v1.5 wrapped AES key, the 16-byte GCM tag, the ciphertext; the timestamp is
        the GCM associated data. Raises ValueError for anything else.
        """
        assert self._private_key is not None
        prefix, version, stamp, payload_b64 = [*enc_password.split(":", 3), "", "", ""][:4]
        if prefix != "#PWD_INSTAGRAM" or version != "4":
            raise ValueError("not an encrypted Instagram password")
        try:
            payload = base64.b64decode(payload_b64, validate=True)
        except ValueError as exc:
            raise ValueError("bad password payload") from exc
        if len(payload) < 1 + 1 + 12 + 2 + 16 or payload[0] != 1 or payload[1] != self._key_id:
            raise ValueError("bad password payload header")
        iv = payload[2:14]
        size = int.from_bytes(payload[14:16], "little")
        wrapped = payload[16 : 16 + size]
        tag = payload[16 + size : 32 + size]
        ciphertext = payload[32 + size :]
        try:
            key = self._private_key.decrypt(wrapped, padding.PKCS1v15())
            plain = AESGCM(key).decrypt(iv, ciphertext + tag, stamp.encode())
        except Exception as exc:
            raise ValueError("the password does not decrypt") from exc
        return plain.decode("utf-8")

    def _new_session(self) -> tuple[str, str, list[tuple[str, str]]]:
        sessionid = f"{self.user_pk}%3A{secrets.token_urlsafe(18)}%3A{random.randint(1, 29)}"
        with self._lock:
            self._sessions[sessionid] = self.user_pk
        self.counters.add("logins")
        authorization_data = {
            "ds_user_id": str(self.user_pk),
            "sessionid": sessionid,
            "should_use_header_over_cookies": True,
        }
        token = base64.b64encode(json.dumps(authorization_data).encode()).decode()
        authorization = "Bearer IGT:2:" + token
        self.issued_secrets.extend((sessionid, token))
        cookies = [
            ("sessionid", sessionid),
            ("ds_user_id", str(self.user_pk)),
            ("csrftoken", secrets.token_hex(16)),
        ]
        return sessionid, authorization, cookies

    # -- a logged-in user ------------------------------------------------------------------
    def _session_of(self, request: _Request) -> int | None:
        """The user pk of the request's session (Authorization header first, then cookie)."""
        candidates: list[str] = []
        authorization = request.headers.get("authorization", "")
        if ":" in authorization:
            with contextlib.suppress(ValueError, TypeError):
                data = json.loads(base64.b64decode(authorization.rsplit(":", 1)[-1]))
                if isinstance(data, dict) and data.get("sessionid"):
                    candidates.append(str(data["sessionid"]))
        for part in request.headers.get("cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == "sessionid" and value:
                candidates.append(value)
        with self._lock:
            for sessionid in candidates:
                for form in (sessionid, unquote_plus(sessionid)):
                    if form in self._sessions:
                        return self._sessions[form]
        return None

    def _authorized(self, request: _Request) -> _Response | None:
        """None when the request carries a live session, else the 403 Instagram sends."""
        if self._session_of(request) is None:
            self.counters.add("sessions_rejected")
            return _login_required_response()
        return None

    def _current_user(self, request: _Request) -> _Response:
        self.counters.add("session_checks")
        return self._authorized(request) or _Response.json(
            {"user": self._user_dict(), "status": "ok"}
        )

    def _user_feed(self, request: _Request, user_pk: int) -> _Response:
        denied = self._authorized(request)
        if denied is not None:
            return denied
        items = (
            [self._media_dict(u) for u in reversed(self.posts)] if user_pk == self.user_pk else []
        )
        return _Response.json(
            {"items": items, "num_results": len(items), "more_available": False, "status": "ok"}
        )

    def _rupload(self, request: _Request, name: str) -> _Response:
        denied = self._authorized(request)
        if denied is not None:
            return denied
        try:
            params = json.loads(request.headers.get("x-instagram-rupload-params", "{}"))
        except ValueError:
            params = {}
        upload_id = str(params.get("upload_id") or name.split("_", 1)[0])
        try:
            with Image.open(io.BytesIO(request.body)) as image:
                width, height = image.size
                fmt = image.format or "?"
                image.verify()
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
            return _Response.json(
                {"debug_info": {"message": "Invalid image"}, "status": "fail"}, 400
            )
        upload = ReceivedUpload(upload_id, name, request.body, width, height, fmt, time.time())
        with self._lock:
            self.uploads.append(upload)
            self._uploads_by_id[upload_id] = upload
        self.counters.add("uploads")
        return _Response.json({"upload_id": upload_id, "xsharing_nonces": {}, "status": "ok"})

    def _configure(self, request: _Request) -> _Response:
        denied = self._authorized(request)
        if denied is not None:
            return denied
        form = request.form()
        upload_id = str(form.get("upload_id") or "")
        caption = str(form.get("caption") or "")
        with self._lock:
            upload = self._uploads_by_id.get(upload_id)
        if upload is None:
            return _Response.json(
                {
                    "message": "media_needs_reupload",
                    "error_title": "Upload not found",
                    "status": "fail",
                },
                400,
            )
        if not MIN_RATIO - _RATIO_TOLERANCE <= upload.ratio <= 90 / 47 + _RATIO_TOLERANCE:
            return _Response.json(
                {"message": "Uploaded image isn't in an allowed aspect ratio", "status": "fail"},
                400,
            )
        if len(caption) > CAPTION_MAX_CHARS:
            return _Response.json({"message": "The caption is too long.", "status": "fail"}, 400)
        if len(_HASHTAG.findall(caption)) > HASHTAGS_MAX:
            return _Response.json(
                {
                    "message": f"Captions can't have more than {HASHTAGS_MAX} hashtags.",
                    "status": "fail",
                },
                400,
            )
        with self._lock:
            if upload.media_pk is None:
                self._next_pk += random.randint(10**6, 10**9)
                upload.media_pk = self._next_pk
                upload.media_id = f"{upload.media_pk}_{self.user_pk}"
                upload.code = _shortcode(upload.media_pk)
                upload.caption = caption
                upload.configured_at = time.time()
                created = True
            else:
                created = False
        if created:
            self.counters.add("configures")
        return _Response.json(
            {"media": self._media_dict(upload), "upload_id": upload_id, "status": "ok"}
        )

    def _user_dict(self) -> dict[str, Any]:
        return {
            "pk": self.user_pk,
            "pk_id": str(self.user_pk),
            "username": self.username,
            "full_name": self.full_name,
            "is_private": False,
            "is_verified": False,
            "is_business": False,
            "profile_pic_url": f"https://scontent.cdninstagram.com/v/t51.2885-19/{self.user_pk}_n.jpg",
            "biography": "",
            "external_url": "",
            "birthday": None,
            "phone_number": "",
            "gender": 3,
            "email": f"{self.username}@example.com",
        }

    def _media_dict(self, upload: ReceivedUpload) -> dict[str, Any]:
        assert upload.media_pk is not None
        assert upload.configured_at is not None
        taken_at = int(upload.configured_at)
        url = f"https://scontent.cdninstagram.com/v/t51.29350-15/{upload.media_pk}_n.jpg"
        return {
            "taken_at": taken_at,
            "pk": upload.media_pk,
            "id": upload.media_id,
            "code": upload.code,
            "media_type": 1,
            "product_type": "feed",
            "original_width": upload.width,
            "original_height": upload.height,
            "image_versions2": {
                "candidates": [
                    {"width": upload.width, "height": upload.height, "url": url},
                    {
                        "width": 320,
                        "height": max(1, round(320 / upload.ratio)),
                        "url": url.replace("_n.jpg", "_s320.jpg"),
                    },
                ]
            },
            "user": {
                "pk": self.user_pk,
                "pk_id": str(self.user_pk),
                "username": self.username,
                "full_name": self.full_name,
                "is_private": False,
                "profile_pic_url": f"https://scontent.cdninstagram.com/v/t51.2885-19/{self.user_pk}_n.jpg",
            },
            "caption": (
                {
                    "pk": str(upload.media_pk + 1),
                    "text": upload.caption,
                    "user_id": self.user_pk,
                    "created_at": taken_at,
                    "type": 1,
                }
                if upload.caption
                else None
            ),
            "like_count": 0,
            "comment_count": 0,
            "has_liked": False,
            "caption_is_edited": False,
            "comments_disabled": False,
        }


# -- helpers -----------------------------------------------------------------------------------
def _is_instagram_host(host: str) -> bool:
    host = host.lower().rstrip(".")
    return host == "instagram.com" or host.endswith(".instagram.com")


def _operation_of(request: _Request) -> str:
    path = request.path
    if path.endswith("caa.login.async.send_login_request/") or path in ("/api/v1/accounts/login/",):
        return "login"
    if path == "/api/v1/accounts/two_factor_login/":
        return "two_factor"
    if _CHALLENGE_PATH.match(path):
        return "challenge"
    if path == "/api/v1/accounts/current_user/":
        return "session"
    if path.startswith("/rupload_igphoto/"):
        return "upload"
    if path == "/api/v1/media/configure/":
        return "configure"
    if path.startswith("/api/v1/feed/"):
        return "feed"
    return "prelogin"


def _device_of(form: dict[str, Any]) -> str:
    if "device_id" in form:
        return str(form["device_id"])
    inputs = _json_field(form, "params").get("client_input_params") or {}
    return str(inputs.get("device_id") or "")


def _json_field(form: dict[str, Any], name: str) -> dict[str, Any]:
    value = form.get(name)
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            loaded = json.loads(value)
            if isinstance(loaded, dict):
                return loaded
    return {}


def _bloks_layout(*, data: list[dict[str, Any]] | None = None, action: str = "") -> dict[str, Any]:
    return {
        "layout": {"bloks_payload": {"data": data or [], "action": action, "tree": {}}},
        "status": "ok",
    }


def _caa_fallback() -> dict[str, Any]:
    # Instagram's CAA answer that sends the client to the legacy accounts/login endpoint,
    # which carries the typed failure (bad_password, two_factor_required).
    return _bloks_layout(
        data=[{"data": {"key": "CAA_LOGIN_FALLBACK:legacy_password_login", "initial": True}}]
    )


def _bad_password_response() -> _Response:
    return _Response.json(
        {
            "message": "The password you entered is incorrect. Please try again.",
            "invalid_credentials": True,
            "error_title": "Incorrect Password",
            "status": "fail",
            "error_type": "bad_password",
        },
        400,
    )


def _login_required_response() -> _Response:
    return _Response.json({"message": "login_required", "logout_reason": 2, "status": "fail"}, 403)


def _after(response: _Response, fault: Fault | None) -> _Response:
    """Mark a response built normally to be dropped or withheld by a `*_after` fault."""
    if fault is not None and fault.kind in ("drop_after", "hang_after"):
        response.after = "drop" if fault.kind == "drop_after" else "hang"
    return response


def _shortcode(pk: int) -> str:
    code = ""
    while pk:
        pk, digit = divmod(pk, 64)
        code = _SHORTCODE_ALPHABET[digit] + code
    return code


async def _read_request(reader: asyncio.StreamReader, host: str) -> _Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial.strip():
            raise _BadRequest from exc
        return None
    except asyncio.LimitOverrunError as exc:
        raise _BadRequest from exc
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split()
    if len(parts) != 3:
        raise _BadRequest
    method, target, version = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise _BadRequest
        key = name.strip().lower()
        headers[key] = (
            f"{headers[key]}; {value.strip()}"
            if key in headers and key == "cookie"
            else value.strip()
        )
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = await _read_chunked(reader)
    else:
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError as exc:
            raise _BadRequest from exc
        if length < 0 or length > _MAX_BODY_BYTES:
            raise _BadRequest
        body = await reader.readexactly(length) if length else b""
    split = urlsplit(target)
    connection = headers.get("connection", "").lower()
    keep_alive = connection != "close" and (version == "HTTP/1.1" or connection == "keep-alive")
    return _Request(
        method.upper(),
        split.path or "/",
        headers,
        body,
        host,
        keep_alive,
    )


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        size_line = await reader.readuntil(b"\r\n")
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError as exc:
            raise _BadRequest from exc
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":
                pass
            return b"".join(chunks)
        total += size
        if total > _MAX_BODY_BYTES:
            raise _BadRequest
        chunks.append(await reader.readexactly(size))
        await reader.readexactly(2)


async def _write_response(
    writer: asyncio.StreamWriter, response: _Response, *, keep_alive: bool
) -> None:
    reason = HTTPStatus(response.status).phrase
    head = [
        f"HTTP/1.1 {response.status} {reason}",
        f"Content-Type: {response.content_type}",
        f"Content-Length: {len(response.body)}",
        f"Connection: {'keep-alive' if keep_alive else 'close'}",
        f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S GMT', time.gmtime())}",
    ]
    head += [f"{name}: {value}" for name, value in response.headers]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + response.body)
    await writer.drain()
