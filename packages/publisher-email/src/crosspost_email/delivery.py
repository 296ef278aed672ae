"""One SMTP session on aiosmtplib, and what each failure means for a retry.

The line that matters: until the message content has been sent, a lost connection or a
temporary (4xx) answer means the server does not have the message, so trying again is safe.
Once the content is on its way, only an explicit refusal says so; a lost connection or a
silence may hide an accepted message, and a resend would post the photo twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiosmtplib

from crosspost_email.fetlife import one_line
from crosspost_email.settings import EmailSettings
from crosspost_email.wire import WireMessage, send_data
from crosspost_logs import sanitize

__all__ = ["DeliveryError", "SmtpSession", "build_tls_context", "explain"]


class DeliveryError(Exception):
    """A failed SMTP step: a one-line, secret-free reason, whether trying again may help,
    and whether the server may have the message anyway."""

    def __init__(self, reason: str, *, transient: bool, outcome_unknown: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient
        self.outcome_unknown = outcome_unknown


def build_tls_context(ca_file: str | None) -> ssl.SSLContext:
    """A verifying client context: the system trust store plus `ca_file` (blocking: tens of
    milliseconds, so call it in a thread). Host names are checked."""
    context = ssl.create_default_context()
    if ca_file:
        try:
            context.load_verify_locations(cafile=ca_file)
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise DeliveryError(
                f"publishers.email.ca_file: cannot load {ca_file!r} as PEM certificates "
                f"({one_line(str(exc))})",
                transient=False,
            ) from None
    return context


def _server_text(message: str) -> str:
    text = sanitize(one_line(message))
    return text if len(text) <= 200 else text[:199] + "…"


def _find(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def explain(
    exc: BaseException, settings: EmailSettings, *, content_sent: bool = False
) -> DeliveryError:
    """What `exc` (raised by aiosmtplib or the network) means, as a `DeliveryError`.

    `content_sent`: the message content had been handed to the server when it happened.
    """
    if isinstance(exc, DeliveryError):
        return exc
    where = f"{settings.smtp_host}:{settings.effective_port}"
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        if 400 <= exc.code < 500:
            return DeliveryError(
                f"temporary authentication failure at {where} ({exc.code} {_server_text(exc.message)})",
                transient=True,
            )
        return DeliveryError(
            f"authentication failed ({exc.code}): check the username and CROSSPOST_EMAIL_PASSWORD",
            transient=False,
        )
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        refused = exc.recipients
        transient = bool(refused) and all(400 <= r.code < 500 for r in refused)
        first = refused[0] if refused else None
        detail = f" ({first.code} {_server_text(first.message)})" if first else ""
        addresses = ", ".join(r.recipient for r in refused) or "the recipient"
        verb = "temporarily refused" if transient else "refused"
        return DeliveryError(
            f"recipient {addresses} {verb} by {where}{detail}", transient=transient
        )
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        reply = f"{exc.code} {_server_text(exc.message)}"
        if isinstance(exc, aiosmtplib.SMTPConnectResponseError):
            what = "not accepting connections"
        elif isinstance(exc, aiosmtplib.SMTPSenderRefused):
            what = f"refused the sender {exc.sender}"
        else:
            what = "refused the message"
        if 400 <= exc.code < 500:
            return DeliveryError(f"{where} {what} for now ({reply})", transient=True)
        return DeliveryError(f"{where} {what} ({reply})", transient=False)

    certificate = _find(exc, ssl.SSLCertVerificationError)
    if isinstance(certificate, ssl.SSLCertVerificationError):
        reason = certificate.verify_message or certificate.reason or "verification failed"
        return DeliveryError(
            f"TLS certificate of {where} is not trusted ({one_line(str(reason))}): "
            "if the server uses a private CA, set ca_file to its PEM file",
            transient=False,
        )
    tls_error = _find(exc, ssl.SSLError)
    if tls_error is not None:
        return DeliveryError(
            f"TLS with {where} failed ({one_line(str(tls_error))}): check security "
            f"({settings.effective_security}) and smtp_port",
            transient=False,
        )
    if content_sent and isinstance(exc, TimeoutError | ConnectionError | OSError):
        what = "no answer from" if isinstance(exc, TimeoutError) else "connection lost to"
        return DeliveryError(
            f"{what} {where} after the message was sent: it may have been delivered, "
            "so it was not sent again",
            transient=False,
            outcome_unknown=True,
        )
    if isinstance(exc, aiosmtplib.SMTPTimeoutError | TimeoutError):
        return DeliveryError(
            f"no answer from {where} in time ({one_line(str(exc))})", transient=True
        )
    if isinstance(exc, aiosmtplib.SMTPConnectError):
        cause = exc.__cause__
        detail = one_line(str(cause)) if cause is not None else one_line(str(exc))
        return DeliveryError(f"cannot connect to {where}: {detail}", transient=True)
    if isinstance(exc, ConnectionError | OSError):
        return DeliveryError(
            f"connection to {where} lost ({one_line(str(exc)) or type(exc).__name__})",
            transient=True,
        )
    if isinstance(exc, aiosmtplib.SMTPException):
        return DeliveryError(f"{where}: {_server_text(str(exc))}", transient=False)
    return DeliveryError(
        f"unexpected {type(exc).__name__} talking to {where}: {_server_text(str(exc))}",
        transient=False,
    )


@dataclass
class SmtpSession:
    """One connection: connect, TLS as configured, AUTH; then any number of messages."""

    settings: EmailSettings
    tls_context: ssl.SSLContext | None
    command_timeout_s: float
    client: aiosmtplib.SMTP | None = None
    #: The content of the message being sent has been handed to the server.
    content_sent: bool = False

    async def open(self) -> None:
        """Connect, secure the connection as configured, and log in."""
        settings = self.settings
        security = settings.effective_security
        self.client = aiosmtplib.SMTP(
            hostname=settings.smtp_host,
            port=settings.effective_port,
            use_tls=security == "tls",
            start_tls=security == "starttls",
            tls_context=self.tls_context if security != "none" else None,
            # No aiosmtplib timeouts: they are `asyncio.wait_for`, which on Python 3.11
            # swallows a cancellation that arrives as the awaited reply does (Ctrl-C would
            # then wait for the publish's own time limit). `_step` bounds each step instead.
            timeout=None,
        )
        async with self._step():
            await self.client.connect()
        async with self._step():
            await self.client.login(settings.login, settings.password)

    @contextlib.asynccontextmanager
    async def _step(self) -> AsyncIterator[None]:
        """Bound one protocol step by `command_timeout_s`, failing as aiosmtplib would."""
        try:
            async with asyncio.timeout(self.command_timeout_s):
                yield
        except TimeoutError:
            raise aiosmtplib.SMTPTimeoutError("Timed out waiting for the server") from None

    @property
    def connected(self) -> bool:
        return self.client is not None and self.client.is_connected

    async def send(self, sender: str, recipients: tuple[str, ...], message: WireMessage) -> str:
        """Send one message (made ready by `wire.to_wire`); returns the server's final reply
        text.

        Partially refused recipients are fine as long as one accepts; a refusal of all of
        them raises `SMTPRecipientsRefused`. After any refusal the envelope is reset, so the
        connection can carry a retry.
        """
        client = self.client
        assert client is not None, "open() first"
        self.content_sent = False
        options = [f"SIZE={message.size}"] if client.supports_extension("size") else []
        try:
            async with self._step():
                await client.mail(sender, options=options)
            refused: list[aiosmtplib.SMTPRecipientRefused] = []
            for recipient in recipients:
                try:
                    async with self._step():
                        await client.rcpt(recipient)
                except aiosmtplib.SMTPRecipientRefused as exc:
                    refused.append(exc)
            if len(refused) == len(recipients):
                raise aiosmtplib.SMTPRecipientsRefused(refused)
            self.content_sent = True
            response = await send_data(client, message, self.command_timeout_s)
        except (aiosmtplib.SMTPResponseException, aiosmtplib.SMTPRecipientsRefused):
            if client.is_connected:
                try:
                    async with self._step():
                        await client.rset()
                except (aiosmtplib.SMTPException, OSError):
                    client.close()
            raise
        return response.message

    async def quit(self, timeout_s: float) -> None:
        """Say goodbye politely; a server that does not answer is simply hung up on."""
        if self.client is not None and self.client.is_connected:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                async with asyncio.timeout(timeout_s):
                    await self.client.quit()
        self.close()

    def close(self) -> None:
        """Hang up now (safe to call at any time, and more than once)."""
        if self.client is not None:
            self.client.close()
