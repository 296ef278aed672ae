"""A loopback SMTP submission server (aiosmtpd): STARTTLS, implicit TLS, AUTH, latency, faults.

Three listeners on 127.0.0.1 share one mailbox, one set of credentials and one fault queue:

- `starttls_port`: submission style (port 587): STARTTLS required before AUTH and MAIL;
- `tls_port`: implicit TLS (port 465 style): TLS from the first byte;
- `plain_port`: no TLS at all, AUTH allowed in clear (only for testing `security = "none"`).

Every accepted message is kept in `messages`. Faults are scripted with `inject(kind,
operation=..., times=...)`; see `FAULT_KINDS` and the README for what each does.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import ssl
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from functools import cached_property
from typing import Any, AnyStr, Literal, NoReturn

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session, TLSSetupException

from crosspost_sandbox.base import SandboxServer
from crosspost_sandbox.faults import Fault
from crosspost_sandbox.tls import SandboxCA

__all__ = ["FAULT_KINDS", "OPERATIONS", "ReceivedMessage", "SmtpSandbox"]

Listener = Literal["starttls", "tls", "plain"]

#: The points of an SMTP session a fault can be attached to.
OPERATIONS = frozenset({"connect", "ehlo", "starttls", "auth", "mail", "rcpt", "data", "quit"})

#: Fault kind -> the operations it applies to (None: any) and its default operation.
FAULT_KINDS: dict[str, tuple[frozenset[str] | None, str | None]] = {
    # 421 at connect (then the server hangs up), 454 at AUTH/STARTTLS, 451 elsewhere.
    "transient_451": (None, "data"),
    # 554 (at connect the server then hangs up).
    "5xx": (None, "data"),
    # 550 5.1.1 naming the refused address.
    "reject_recipient": (frozenset({"rcpt"}), "rcpt"),
    # 535 for every AUTH of the connection it hits, whatever the credentials.
    "reject_auth": (frozenset({"auth"}), "auth"),
    # No answer until the server stops (the client has to give up on its own).
    "hang": (None, None),
    # The server hangs up without answering.
    "disconnect": (None, None),
    # The message is stored and counted, then the server hangs up before its 250: the
    # "server accepted it but the client never heard" case, where a resend posts twice.
    "disconnect_after_data": (frozenset({"data"}), "data"),
}

_AUTH_INVALID = "535 5.7.8 Authentication credentials invalid"
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReceivedMessage:
    """One message the sandbox accepted: the envelope, the raw bytes and the parsed message."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes
    listener: Listener
    username: str | None
    queue_id: str

    @cached_property
    def message(self) -> EmailMessage:
        """The message parsed with `email.policy.default` on first access, with the wire's CRLF
        line endings turned into the newlines Python's email package works with."""
        parser = BytesParser(_class=EmailMessage, policy=policy.default)
        return parser.parsebytes(self.raw.replace(b"\r\n", b"\n"))


class _QuietSession(Session):
    """aiosmtpd's Session logs a deprecation warning on every successful AUTH through
    `login_data`, which its own AUTH code still sets; keep the value, drop the noise."""

    @property
    def login_data(self) -> Any:
        return self._login_data

    @login_data.setter
    def login_data(self, value: Any) -> None:
        self._login_data = value


class _Handler:
    """aiosmtpd handler hooks: RCPT and DATA faults, and keeping accepted messages."""

    def __init__(self, sandbox: SmtpSandbox) -> None:
        self._sandbox = sandbox

    async def handle_RCPT(
        self,
        server: _SandboxSMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        reply = await server.fault_reply("rcpt", address=address)
        if reply is not None:
            return reply
        if address.lower() in {a.lower() for a in self._sandbox.unknown_recipients}:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: _SandboxSMTP, session: Session, envelope: Envelope) -> str:
        fault = self._sandbox.faults.take("data")
        if fault is not None and fault.kind == "disconnect_after_data":
            self._sandbox.counters.add("faults")
            self._store(server, session, envelope)
            await server.drop()
        elif fault is not None:
            reply = await server.apply_fault(fault, "data")
            if reply is not None:
                return reply
        queue_id = self._store(server, session, envelope)
        return f"250 2.0.0 OK: queued as {queue_id}"

    def _store(self, server: _SandboxSMTP, session: Session, envelope: Envelope) -> str:
        sandbox = self._sandbox
        queue_id = f"{len(sandbox.messages) + 1:08X}"
        auth = session.auth_data
        username = (
            auth.login.decode("utf-8", "replace") if isinstance(auth, LoginPassword) else None
        )
        sandbox.messages.append(
            ReceivedMessage(
                mail_from=envelope.mail_from or "",
                rcpt_tos=tuple(envelope.rcpt_tos),
                raw=bytes(envelope.original_content or b""),
                listener=server.listener,
                username=username,
                queue_id=queue_id,
            )
        )
        sandbox.counters.add("messages")
        return queue_id

    async def handle_exception(self, error: Exception) -> str:
        if isinstance(error, TLSSetupException):
            # A client that refuses our certificate ends up here: an expected event.
            self._sandbox.counters.add("tls_failures")
            return "454 4.7.0 TLS handshake failed"
        self._sandbox.errors.append(error)
        _log.warning("smtp sandbox: unexpected %s: %s", type(error).__name__, error)
        return f"451 4.3.0 Sandbox error ({type(error).__name__})"


class _SandboxSMTP(SMTP):
    """One connection: aiosmtpd's SMTP plus latency, faults and bookkeeping."""

    def __init__(
        self, sandbox: SmtpSandbox, listener: Listener, require_auth: bool, **kwargs: Any
    ) -> None:
        self._sandbox = sandbox
        super().__init__(_Handler(sandbox), authenticator=self.authenticate, **kwargs)
        self.listener: Listener = listener
        # aiosmtpd warns when AUTH is required without *its own* STARTTLS, which is always the
        # case under implicit TLS; so AUTH is required here rather than through aiosmtpd.
        self._require_auth = require_auth
        self._reject_auth = False

    def _create_session(self) -> Session:
        return _QuietSession(self.loop)

    # -- lifecycle -----------------------------------------------------------------------
    async def _handle_client(self) -> None:
        sandbox = self._sandbox
        task = asyncio.current_task()
        assert task is not None
        sandbox._live[self] = task
        sandbox.counters.add("connections")
        sandbox.counters.add("open_connections")
        try:
            reply = await self.fault_reply("connect")
            if reply is not None:
                await self.push(reply)
                await self.drop(graceful=True)
            await super()._handle_client()
        except (ConnectionError, TLSSetupException):
            pass  # the client went away mid-command: its business, not a server error
        except Exception as exc:  # noqa: BLE001 - recorded for the test to see, not lost in a task
            sandbox.errors.append(exc)
            _log.warning("smtp sandbox: session ended by %s: %s", type(exc).__name__, exc)
        finally:
            # After the client's EOF, asyncio keeps a half-closed socket open until the
            # server closes its side; aiosmtpd does that only once its command loop runs.
            if self.transport is not None:
                self.transport.close()
            sandbox.counters.add("open_connections", -1)
            sandbox._live.pop(self, None)

    async def push(self, status: AnyStr) -> None:
        # The added latency is paid once per reply (not per line of a multi-line reply).
        final = status[3:4] not in ("-", b"-")
        if final:
            await self._sandbox.latency.sleep()
        await super().push(status)

    async def drop(self, *, graceful: bool = False) -> NoReturn:
        """Hang up (abruptly, or after flushing what was said), then wait for aiosmtpd to
        cancel this session, which it does once the connection is lost."""
        transport = self.transport
        if isinstance(transport, asyncio.Transport) and not graceful:
            transport.abort()
        elif transport is not None:
            transport.close()
        await asyncio.get_running_loop().create_future()
        raise AssertionError("a dropped session is cancelled, never resumed")

    # -- faults --------------------------------------------------------------------------
    async def fault_reply(self, operation: str, *, address: str | None = None) -> str | None:
        """The reply a scripted fault imposes on `operation`, or None to proceed normally."""
        fault = self._sandbox.faults.take(operation)
        if fault is None:
            return None
        return await self.apply_fault(fault, operation, address=address)

    async def apply_fault(
        self, fault: Fault, operation: str, *, address: str | None = None
    ) -> str | None:
        self._sandbox.counters.add("faults")
        code = fault.params.get("code")
        text = fault.params.get("text")
        if fault.kind == "hang":
            await self._sandbox.hang()
            await self.drop()
        if fault.kind in ("disconnect", "disconnect_after_data"):
            await self.drop()
        if fault.kind == "reject_auth":
            self._reject_auth = True
            return None
        if fault.kind == "reject_recipient":
            return f"{code or 550} 5.1.1 <{address}>: {text or 'Recipient address rejected: User unknown'}"
        if fault.kind == "transient_451":
            default = {
                "connect": (421, "4.3.2 Service not available, closing transmission channel"),
                "auth": (454, "4.7.0 Temporary authentication failure, try again later"),
                "starttls": (454, "4.7.0 TLS not available due to temporary reason"),
            }.get(operation, (451, "4.3.0 Temporary failure, try again later"))
            return f"{code or default[0]} {text or default[1]}"
        if fault.kind == "5xx":
            default_text = (
                "5.3.2 No SMTP service here"
                if operation == "connect"
                else "5.7.1 Rejected by policy"
            )
            return f"{code or 554} {text or default_text}"
        return f"554 5.0.0 Sandbox fault {fault.kind!r} does not apply to {operation}"

    async def _intercepted(self, operation: str) -> bool:
        reply = await self.fault_reply(operation)
        if reply is None:
            return False
        await self.push(reply)
        return True

    # -- commands ------------------------------------------------------------------------
    async def smtp_EHLO(self, hostname: str) -> None:
        if not await self._intercepted("ehlo"):
            await super().smtp_EHLO(hostname)

    async def smtp_HELO(self, hostname: str) -> None:
        if not await self._intercepted("ehlo"):
            await super().smtp_HELO(hostname)

    async def smtp_STARTTLS(self, arg: str) -> None:
        if not await self._intercepted("starttls"):
            await super().smtp_STARTTLS(arg)

    async def smtp_AUTH(self, arg: str) -> None:
        if not await self._intercepted("auth"):
            await super().smtp_AUTH(arg)

    async def smtp_MAIL(self, arg: str | None) -> None:
        if not await self._intercepted("mail"):
            await super().smtp_MAIL(arg)

    async def smtp_QUIT(self, arg: str) -> None:
        if not await self._intercepted("quit"):
            await super().smtp_QUIT(arg)

    async def check_auth_needed(self, caller_method: str) -> bool:
        assert self.session is not None
        if self._require_auth and not self.session.authenticated:
            await self.push("530 5.7.0 Authentication required")
            return True
        return False

    def authenticate(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        mechanism: str,
        auth_data: Any,
    ) -> AuthResult:
        """aiosmtpd authenticator: the configured username and password, compared safely."""
        sandbox = self._sandbox
        ok = (
            not self._reject_auth
            and isinstance(auth_data, LoginPassword)
            and hmac.compare_digest(auth_data.login, sandbox.username.encode())
            and hmac.compare_digest(auth_data.password, sandbox.password.encode())
        )
        if ok:
            sandbox.counters.add("auth_successes")
            return AuthResult(success=True, auth_data=auth_data)
        sandbox.counters.add("auth_failures")
        # handled=False makes aiosmtpd answer 535 itself; handled=True would leave the
        # client waiting for an answer nobody sends.
        return AuthResult(success=False, handled=False, message=_AUTH_INVALID)


class SmtpSandbox(SandboxServer):
    """A real SMTP submission server on 127.0.0.1 with TLS made on the fly.

    After start: `host`, `starttls_port` (587 style), `tls_port` (465 style), `plain_port`
    (no TLS), `ca_path` (PEM of the CA to trust), `username`/`password` (AUTH PLAIN and LOGIN),
    `messages` (every accepted message, in order), `counters` (`connections`,
    `open_connections`, `messages`, `auth_successes`, `auth_failures`, `faults`,
    `tls_failures`) and `errors` (unexpected server-side exceptions; empty in a healthy run).
    Addresses in `unknown_recipients` are always refused with 550 (a mailbox that does not
    exist), independently of the scripted faults.

    Latency (`set_latency`) is added before every reply: the greeting, each command's reply
    and each AUTH challenge, so it models a round trip per command.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        username: str = "sender@example.test",
        password: str = "sandbox-password",  # noqa: S107 - a throw-away loopback credential
        require_auth: bool = True,
        max_message_bytes: int = 25 * 2**20,
        latency_s: float = 0.0,
        jitter_s: float = 0.0,
        library_log_level: int | None = logging.INFO,
    ) -> None:
        """`library_log_level`: level set on aiosmtpd's `mail.log` logger at start, because at
        DEBUG it logs every line of every message (None leaves that logger alone)."""
        super().__init__(latency_s=latency_s, jitter_s=jitter_s)
        self.host = host
        self.username = username
        self.password = password
        self.require_auth = require_auth
        self.max_message_bytes = max_message_bytes
        self.library_log_level = library_log_level
        self.starttls_port = 0
        self.tls_port = 0
        self.plain_port = 0
        self.ca_path = ""
        self.messages: list[ReceivedMessage] = []
        self.unknown_recipients: set[str] = set()
        self.errors: list[BaseException] = []
        self._ca: SandboxCA | None = None
        self._servers: list[asyncio.Server] = []
        self._live: dict[_SandboxSMTP, asyncio.Task[Any]] = {}

    def inject(
        self, kind: str, *, operation: str | None = None, times: int | None = 1, **params: Any
    ) -> None:
        """Script `kind` (see `FAULT_KINDS`) for the next `times` hits of `operation`.

        Without `operation`: the kind's default (`data` for transient_451, 5xx and
        disconnect_after_data; `rcpt` for reject_recipient; `auth` for reject_auth); hang and
        disconnect then hit the very next step of any session (the connection itself).
        `code=` and `text=` override the reply of transient_451, 5xx and reject_recipient.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown SMTP fault {kind!r}; known: {', '.join(FAULT_KINDS)}")
        allowed, default = FAULT_KINDS[kind]
        operation = operation or default
        if operation is not None and operation not in OPERATIONS:
            raise ValueError(f"unknown SMTP operation {operation!r}; known: {sorted(OPERATIONS)}")
        if allowed is not None and operation not in allowed:
            raise ValueError(f"SMTP fault {kind!r} applies only to {sorted(allowed)}")
        super().inject(kind, operation=operation, times=times, **params)

    def client_tls_context(self) -> ssl.SSLContext:
        """A client TLS context trusting only this sandbox's CA."""
        assert self._ca is not None, "start the sandbox first"
        return self._ca.client_context()

    async def _start(self) -> None:
        if self.library_log_level is not None:
            logging.getLogger("mail.log").setLevel(self.library_log_level)
        loop = asyncio.get_running_loop()
        # A fresh CA each start: the certificate is valid for the loopback names only.
        self._ca = await asyncio.to_thread(SandboxCA)
        self.ca_path = self._ca.ca_path
        server_tls = self._ca.server_context("127.0.0.1", "localhost", self.host)

        def factory(listener: Listener, **kwargs: Any) -> Any:
            def make() -> _SandboxSMTP:
                return _SandboxSMTP(
                    self,
                    listener,
                    self.require_auth,
                    loop=loop,
                    hostname="localhost",
                    ident="crosspost sandbox ESMTP",
                    data_size_limit=self.max_message_bytes,
                    enable_SMTPUTF8=True,
                    timeout=60,
                    **kwargs,
                )

            return make

        try:
            starttls = await loop.create_server(
                factory(
                    "starttls", tls_context=server_tls, require_starttls=True, auth_require_tls=True
                ),
                self.host,
                0,
            )
            self._servers.append(starttls)
            tls = await loop.create_server(
                factory("tls", auth_require_tls=False), self.host, 0, ssl=server_tls
            )
            self._servers.append(tls)
            plain = await loop.create_server(factory("plain", auth_require_tls=False), self.host, 0)
            self._servers.append(plain)
        except BaseException:
            await self._stop()
            raise
        self.starttls_port = starttls.sockets[0].getsockname()[1]
        self.tls_port = tls.sockets[0].getsockname()[1]
        self.plain_port = plain.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        for server in self._servers:
            server.close()
        # Hung sessions were released by the stop event; hang up on everyone still connected.
        for protocol in list(self._live):
            if isinstance(protocol.transport, asyncio.Transport):
                protocol.transport.abort()
        tasks = list(self._live.values())
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=5)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
        if self._ca is not None:
            self._ca.cleanup()
            self._ca = None
