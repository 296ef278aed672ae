"""The e-mail publisher: the photo as an attachment, the caption cleaned for FetLife."""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiosmtplib

from crosspost_email.delivery import DeliveryError, SmtpSession, build_tls_context, explain
from crosspost_email.fetlife import clean_caption, clean_tags, compose, one_line
from crosspost_email.message import attachment_name, build_confirmation, build_upload
from crosspost_email.settings import EmailSettings
from crosspost_email.wire import WireMessage
from crosspost_images import ImageSpec, PreparedImage, prepare_image_async
from crosspost_logs import log_publisher_publish, now_monotonic, register_secret
from crosspost_orchestrator import CrosspostError, Publisher, PublishResult, settings_from_mapping

__all__ = ["EmailPublisher", "create_publisher"]

PLATFORM = "email"
_logger = logging.getLogger("crosspost_email")

#: aiosmtplib's time limit per command when the publisher has no `timeout_s`.
_DEFAULT_COMMAND_TIMEOUT_S = 60.0
#: Pause before retry n (0.2 s, 0.4 s, 0.8 s ... at most 2 s).
_BACKOFF_FIRST_S = 0.2
_BACKOFF_MAX_S = 2.0


@dataclass
class _Progress:
    """How far one publish got; read when it ends, however it ends."""

    attempts: int = 0
    message_id: str | None = None
    #: The connection in use; closed when the publish ends, however it ends.
    session: SmtpSession | None = None
    accepted: bool = False
    #: The confirmation is being built or sent.
    confirming: bool = False
    #: `loop.time()` by which the publish must end (None: no limit of its own).
    deadline: float | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def content_sent(self) -> bool:
        """The upload's content went out and no answer said it was refused."""
        return self.session is not None and self.session.content_sent and not self.accepted


def _built_key(prepared: PreparedImage, caption: str) -> tuple[object, ...]:
    """What a built upload message depends on: the rendition's file as it is now (a photo
    that needed no change is the caller's own file, which may be rewritten in place) and
    the caption."""
    st = os.stat(prepared.path)
    return (prepared.path, st.st_size, st.st_mtime_ns, st.st_ino, caption)


class EmailPublisher(Publisher):
    """Publishes a photo by e-mail (to a FetLife upload address, for instance).

    One SMTP connection per publish (STARTTLS, implicit TLS, or none on loopback), verified
    TLS, AUTH, then the upload and the optional confirmation over the same connection.
    Connection failures and temporary refusals before the server has the message are
    retried with backoff; once the message content was sent it is never sent again.
    """

    def __init__(self, settings: EmailSettings) -> None:
        self.settings = settings
        register_secret(settings.password)
        self._tls: ssl.SSLContext | None = None
        # Upload messages built by `validate`, waiting for their `publish` (see `_built_key`).
        self._built: dict[tuple[object, ...], tuple[WireMessage, str]] = {}

    @property
    def platform_name(self) -> str:
        return PLATFORM

    @property
    def timeout_s(self) -> float | None:
        return self.settings.timeout_s

    # -- local work ----------------------------------------------------------------------
    def format_caption(self, caption: str) -> str:
        """The caption as it appears in the subject and/or body: hashtags removed,
        whitespace collapsed, at most 240 characters cut at a word boundary."""
        return clean_caption(caption)

    def _spec(self) -> ImageSpec:
        return ImageSpec(max_bytes=self.settings.max_attachment_bytes, strip_metadata=True)

    async def _prepare(self, image_path: str) -> PreparedImage:
        # Cached by image-utils: validate, preview and publish share one rendition.
        return await prepare_image_async(image_path, self._spec())

    async def validate(self, image_path: str, caption: str) -> None:
        """Raise `ImageError` unless the photo can be attached (readable, a still JPEG, PNG
        or WEBP, small enough or shrinkable to `max_attachment_mb`).

        Also does the CPU work of the publish now, before any platform's network work
        starts: the TLS context (~20 ms) and the upload message (base64 of the photo, ~20 ms
        for 8 MB). In worker threads either still competes for the GIL with the event
        loop's thread, and would delay every other platform's I/O in the publish phase.
        """
        await asyncio.gather(self._upload_message(image_path, caption), self._tls_context())

    async def preview(self, image_path: str, caption: str) -> dict[str, Any]:
        """What would be sent: addresses, subject, body and the attachment (no network)."""
        prepared = await self._prepare(image_path)
        settings = self.settings
        cleaned, subject, body = compose(caption, settings.caption_target, settings.subject_mode)
        return {
            "caption": cleaned,
            "from": settings.sender,
            "to": settings.recipient,
            "subject": subject,
            "body": body,
            "attachment_name": attachment_name(image_path),
            "attachment_bytes": prepared.size_bytes,
            "attachment_type": prepared.mime_type,
            "width": prepared.width,
            "height": prepared.height,
            "reencoded": prepared.derived,
            "confirmation_to": list(settings.confirmation_to)
            if settings.confirmation_to_sender
            else [],
            "server": f"{settings.smtp_host}:{settings.effective_port} ({settings.effective_security})",
        }

    async def _upload_message(
        self, image_path: str, caption: str, *, keep: bool = True
    ) -> tuple[WireMessage, str]:
        """The upload message for this photo and caption, and its Message-ID; with `keep`,
        also kept for the next `publish` of the same photo and caption."""
        settings = self.settings
        prepared = await self._prepare(image_path)
        _cleaned, subject, body = compose(caption, settings.caption_target, settings.subject_mode)
        built = await asyncio.to_thread(
            build_upload,
            sender=settings.sender,
            recipient=settings.recipient,
            subject=subject,
            body=body,
            image_path=prepared.path,
            filename=attachment_name(image_path),
            mime_type=prepared.mime_type,
        )
        if keep:
            self._built[_built_key(prepared, caption)] = built
        return built

    async def aclose(self) -> None:
        self._built.clear()

    # -- network -------------------------------------------------------------------------
    async def _tls_context(self) -> ssl.SSLContext | None:
        if self.settings.effective_security == "none":
            return None
        if self._tls is None:
            self._tls = await asyncio.to_thread(build_tls_context, self.settings.ca_file)
        return self._tls

    def _session(self, tls: ssl.SSLContext | None) -> SmtpSession:
        return SmtpSession(
            self.settings, tls, self.settings.timeout_s or _DEFAULT_COMMAND_TIMEOUT_S
        )

    async def check(self) -> str:
        """Connect, secure, log in and say goodbye; nothing is sent."""
        settings = self.settings
        where = f"{settings.smtp_host}:{settings.effective_port}"
        limit = settings.timeout_s or 30.0
        session: SmtpSession | None = None
        try:
            async with asyncio.timeout(limit):
                session = self._session(await self._tls_context())
                await session.open()
                await session.quit(timeout_s=min(5.0, limit))
        except TimeoutError:
            raise CrosspostError(f"email: no answer from {where} within {limit:g} s") from None
        except (DeliveryError, aiosmtplib.SMTPException, OSError, ValueError) as exc:
            raise CrosspostError(f"email: {explain(exc, settings).reason}") from None
        finally:
            if session is not None:
                session.close()
        security = {"starttls": "STARTTLS", "tls": "implicit TLS", "none": "no TLS"}
        return (
            f"email: logged in to {where} as {settings.login} over "
            f"{security[settings.effective_security]}"
        )

    async def publish(
        self, image_path: str, caption: str, context: dict[str, Any] | None = None
    ) -> PublishResult:
        """Mail the photo; never raises (except `CancelledError`)."""
        start = now_monotonic()
        progress = _Progress()
        if self.settings.timeout_s is not None:
            progress.deadline = asyncio.get_running_loop().time() + self.settings.timeout_s
        error: str | None = None
        unknown = False
        try:
            async with asyncio.timeout(self.settings.timeout_s):
                await self._deliver(image_path, caption, context or {}, progress)
        except asyncio.CancelledError:
            accepted = " after the server accepted the message" if progress.accepted else ""
            self._log(start, progress, f"cancelled{accepted}")
            raise
        except TimeoutError:
            timeout_s = self.settings.timeout_s
            limit = f" after {timeout_s:g} s" if timeout_s else ""
            if progress.confirming:
                progress.warnings.append(f"confirmation e-mail not sent: timed out{limit}")
            elif not progress.accepted:
                error = f"timed out{limit}"
                if progress.content_sent:
                    error += ": the message may have been delivered, so it was not sent again"
                    unknown = True
        except DeliveryError as exc:
            error, unknown = exc.reason, exc.outcome_unknown
        except (OSError, ValueError) as exc:  # the image (ImageError is a ValueError), mostly
            error = one_line(str(exc)) or type(exc).__name__
        except Exception as exc:  # noqa: BLE001 - publish never raises: the contract
            error = f"unexpected {type(exc).__name__}: {one_line(str(exc))}"
        # A definite failure has no post to name; an unknown outcome keeps the Message-ID,
        # which is how the operator finds out whether the message arrived.
        if error is not None and not unknown:
            progress.message_id = None
        duration = self._log(start, progress, error)
        return PublishResult(
            success=error is None,
            platform=PLATFORM,
            post_id=progress.message_id,
            error=error,
            duration_ms=duration,
            attempts=progress.attempts,
            warnings=tuple(progress.warnings),
            outcome_unknown=unknown,
        )

    def _log(self, start: float, progress: _Progress, error: str | None) -> int:
        return log_publisher_publish(
            _logger,
            PLATFORM,
            start,
            error is None,
            error,
            attempts=progress.attempts,
            post_id=progress.message_id,
            warnings=list(progress.warnings),
        )

    async def _deliver(
        self, image_path: str, caption: str, context: Mapping[str, Any], progress: _Progress
    ) -> None:
        settings = self.settings
        _cleaned, subject, body = compose(caption, settings.caption_target, settings.subject_mode)
        filename = attachment_name(image_path)
        # Prepared again (from image-utils' cache): a photo changed since `validate` gets a
        # new rendition, and so a new message.
        prepared = await self._prepare(image_path)
        built = self._built.pop(_built_key(prepared, caption), None)
        if built is None:
            built = await self._upload_message(image_path, caption, keep=False)
        upload, message_id = built
        progress.message_id = message_id
        tls = await self._tls_context()
        try:
            session = await self._upload(tls, upload, progress)
            progress.accepted = True
            if settings.confirmation_to_sender:
                progress.confirming = True
                await self._confirm(session, context, subject, body, filename, progress)
                progress.confirming = False
            await session.quit(timeout_s=min(5.0, settings.timeout_s or 5.0))
        finally:
            if progress.session is not None:
                progress.session.close()

    async def _upload(
        self, tls: ssl.SSLContext | None, upload: WireMessage, progress: _Progress
    ) -> SmtpSession:
        """Send the upload, retrying what is safe to retry; returns the open session."""
        settings = self.settings
        loop = asyncio.get_running_loop()
        for attempt in range(1, settings.max_attempts + 1):
            progress.attempts = attempt
            session = progress.session
            try:
                if session is None or not session.connected:
                    if session is not None:
                        session.close()
                    session = progress.session = self._session(tls)
                    await session.open()
                await session.send(settings.sender, (settings.recipient,), upload)
                return session
            except (DeliveryError, aiosmtplib.SMTPException, OSError, ValueError) as exc:
                failure = explain(exc, settings, content_sent=progress.content_sent)
                delay = min(_BACKOFF_FIRST_S * 2 ** (attempt - 1), _BACKOFF_MAX_S)
                # A pause that would end past the deadline only turns a clear error into a
                # timeout.
                out_of_time = progress.deadline is not None and (
                    loop.time() + delay >= progress.deadline
                )
                if not failure.transient or attempt == settings.max_attempts or out_of_time:
                    if attempt > 1 and failure.transient:
                        failure = DeliveryError(
                            f"{failure.reason} (gave up after {attempt} attempts)",
                            transient=False,
                            outcome_unknown=failure.outcome_unknown,
                        )
                    raise failure from None
                # A transient failure means the server does not have the message.
                if session is not None:
                    session.content_sent = False
                await asyncio.sleep(delay)
        raise AssertionError("max_attempts >= 1 always returns or raises")

    async def _confirm(
        self,
        session: SmtpSession,
        context: Mapping[str, Any],
        subject: str,
        body: str,
        filename: str,
        progress: _Progress,
    ) -> None:
        """Mail the confirmation over the upload's connection; a failure is only a warning:
        the photo is posted either way."""
        settings = self.settings
        assert progress.message_id is not None
        confirmation = await asyncio.to_thread(
            build_confirmation,
            sender=settings.sender,
            to=settings.confirmation_to,
            recipient=settings.recipient,
            subject=subject,
            body=body,
            filename=filename,
            tags=clean_tags(context.get("analysis_tags"), settings.confirmation_tags_count),
            upload_id=progress.message_id,
        )
        try:
            if not session.connected:
                raise DeliveryError(
                    "the server closed the connection after the upload", transient=False
                )
            await session.send(settings.sender, settings.confirmation_to, confirmation)
        except (DeliveryError, aiosmtplib.SMTPException, OSError, ValueError) as exc:
            reason = explain(exc, settings, content_sent=session.content_sent).reason
            progress.warnings.append(f"confirmation e-mail not sent: {reason}")


def create_publisher(settings: Mapping[str, Any]) -> EmailPublisher:
    """The `email` plugin factory: the `[publishers.email]` table (plus `password` from
    `CROSSPOST_EMAIL_PASSWORD`) -> an `EmailPublisher`. Raises `ConfigError` naming the key."""
    return EmailPublisher(settings_from_mapping(EmailSettings, PLATFORM, settings))
