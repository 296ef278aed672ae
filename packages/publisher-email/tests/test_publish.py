"""EmailPublisher against the SMTP sandbox: real TLS, real AUTH, real aiosmtplib."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import time
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

import pytest
from PIL import Image

from crosspost_email import EmailPublisher
from crosspost_images import ImageError
from crosspost_orchestrator import CrosspostError, PublishStatus
from crosspost_sandbox.smtp import ReceivedMessage, SmtpSandbox

FETLIFE = "1234abcd@upload.fetlife.example"
GPS_IFD = 0x8825
Events = Callable[[], list[dict[str, Any]]]


def attachment_of(received: ReceivedMessage) -> tuple[str | None, str, bytes]:
    (part,) = list(received.message.iter_attachments())
    assert isinstance(part, EmailMessage)
    payload = part.get_content()
    assert isinstance(payload, bytes)
    return part.get_filename(), part.get_content_type(), payload


def fingerprint(path: str) -> tuple[str, int]:
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest(), os.stat(path).st_mtime_ns


@pytest.mark.parametrize("mode", ["starttls", "tls"])
async def test_delivers_the_photo_over_verified_tls(
    smtp_sandbox: SmtpSandbox, publishers: Callable[..., EmailPublisher], photo: str, mode: str
) -> None:
    port = smtp_sandbox.starttls_port if mode == "starttls" else smtp_sandbox.tls_port
    publisher = publishers(security=mode, smtp_port=port)

    result = await publisher.publish(photo, "Evening light #sunset")

    assert result.success, result.error
    assert result.attempts == 1
    assert result.status == PublishStatus.PUBLISHED
    (received,) = smtp_sandbox.messages
    assert received.listener == mode
    assert received.rcpt_tos == (FETLIFE,)
    assert received.mail_from == smtp_sandbox.username
    assert received.message["Message-ID"] == result.post_id
    assert received.message["Subject"] == "Evening light"
    assert received.message["From"] == smtp_sandbox.username


async def test_untrusted_certificate_is_refused_with_a_clear_error(
    smtp_sandbox: SmtpSandbox, publishers: Callable[..., EmailPublisher], photo: str
) -> None:
    publisher = publishers(ca_file=None)  # the sandbox CA is not in the system store

    result = await publisher.publish(photo, "caption")

    assert not result.success
    assert result.error is not None
    assert "certificate" in result.error
    assert "not trusted" in result.error
    assert "ca_file" in result.error
    assert result.attempts == 1
    assert smtp_sandbox.messages == []
    assert smtp_sandbox.counters["auth_successes"] == 0


async def test_certificate_for_another_host_name_is_refused(
    smtp_sandbox: SmtpSandbox, publishers: Callable[..., EmailPublisher], photo: str
) -> None:
    # "127.1" reaches 127.0.0.1, but the certificate names 127.0.0.1 and localhost only.
    publisher = publishers(smtp_host="127.1")

    result = await publisher.publish(photo, "caption")

    assert not result.success
    assert result.error is not None
    assert "not trusted" in result.error
    assert "Hostname mismatch" in result.error
    assert "127.1" in result.error
    assert result.attempts == 1
    assert smtp_sandbox.messages == []


@pytest.mark.parametrize("target", ["subject", "body", "both"])
@pytest.mark.parametrize("mode", ["normal", "private", "avatar"])
async def test_caption_target_and_subject_mode_shape_the_received_message(
    smtp_sandbox: SmtpSandbox,
    publishers: Callable[..., EmailPublisher],
    photo: str,
    target: str,
    mode: str,
) -> None:
    publisher = publishers(caption_target=target, subject_mode=mode)
    original = fingerprint(photo)

    result = await publisher.publish(photo, "Lake at dusk\n#lake #dusk  ✨")

    assert result.success, result.error
    (received,) = smtp_sandbox.messages
    message = received.message
    prefix = {"normal": "", "private": "Private: ", "avatar": "Avatar: "}[mode]
    caption = "Lake at dusk ✨"
    expected_subject = prefix + ("Photo upload" if target == "body" else caption)
    assert message["Subject"] == expected_subject
    body = message.get_body(preferencelist=("plain",))
    if target == "subject":
        assert body is None
    else:
        assert body is not None
        assert body.get_content().strip() == caption
    name, content_type, payload = attachment_of(received)
    assert name == "Sunset at the Lake.jpg"
    assert content_type == "image/jpeg"
    with Image.open(io.BytesIO(payload)) as image:
        image.load()
        assert image.format == "JPEG"
        assert image.size == (640, 480)
        exif = image.getexif()
        assert not exif.get_ifd(GPS_IFD)
        assert 0x010F not in exif  # no camera make either: the EXIF block is gone
        assert "exif" not in image.info
    assert fingerprint(photo) == original
    for header in ("Subject", "From", "To"):
        assert "\n" not in str(message[header])
        assert "\r" not in str(message[header])


async def test_long_messy_caption_arrives_clean_and_short(
    smtp_sandbox: SmtpSandbox, publishers: Callable[..., EmailPublisher], photo: str
) -> None:
    caption = ("Morning fog 🌫️ over the river, so calm\n\n#fog #river #calm 💙 " * 12)[:600]
    assert len(caption) == 600
    publisher = publishers(caption_target="both")

    result = await publisher.publish(photo, caption)

    assert result.success, result.error
    message = smtp_sandbox.messages[0].message
    subject = message["Subject"]
    assert subject == publisher.format_caption(caption)
    assert len(subject) <= 240
    assert "#" not in subject
    assert "\n" not in subject
    assert "🌫️" in subject
    assert "💙" in subject
    assert (message.get_body(preferencelist=("plain",)) or message).get_content().strip() == subject


async def test_header_injection_through_caption_and_file_name_is_neutralised(
    smtp_sandbox: SmtpSandbox,
    publishers: Callable[..., EmailPublisher],
    make_photo: Callable[..., str],
) -> None:
    path = make_photo("evil\r\nBcc: victim@example.com.jpg")
    publisher = publishers()

    result = await publisher.publish(path, "hello\r\nBcc: victim@example.com\r\n\r\nbody")

    assert result.success, result.error
    received = smtp_sandbox.messages[0]
    assert received.rcpt_tos == (FETLIFE,)
    assert received.message["Bcc"] is None
    assert received.message["Subject"] == "hello Bcc: victim@example.com body"
    name, _type, _payload = attachment_of(received)
    assert name == "evil Bcc: victim@example.com.jpg"


async def test_photo_over_the_size_limit_is_reencoded_smaller_under_its_name(
    smtp_sandbox: SmtpSandbox,
    publishers: Callable[..., EmailPublisher],
    make_photo: Callable[..., str],
) -> None:
    path = make_photo("big.jpg", 1600, 1200)
    limit_mb = 0.05
    assert os.path.getsize(path) > limit_mb * 2**20
    original = fingerprint(path)
    publisher = publishers(max_attachment_mb=limit_mb)

    preview = await publisher.preview(path, "x")
    result = await publisher.publish(path, "x")

    assert result.success, result.error
    name, content_type, payload = attachment_of(smtp_sandbox.messages[0])
    assert (name, content_type) == ("big.jpg", "image/jpeg")
    assert len(payload) <= limit_mb * 2**20
    assert preview["attachment_bytes"] == len(payload)
    assert preview["reencoded"] is True
    with Image.open(io.BytesIO(payload)) as image:
        image.load()
    assert fingerprint(path) == original


async def test_wrong_password_fails_once_naming_authentication(
    smtp_sandbox: SmtpSandbox,
    publishers: Callable[..., EmailPublisher],
    photo: str,
    events: Events,
) -> None:
    publisher = publishers(password="definitely-wrong-pw")

    started = time.monotonic()
    result = await publisher.publish(photo, "caption")

    assert not result.success
    assert result.error == (
        "authentication failed (535): check the username and CROSSPOST_EMAIL_PASSWORD"
    )
    assert result.attempts == 1
    assert time.monotonic() - started < 3.0
    assert smtp_sandbox.counters["connections"] == 1
    assert smtp_sandbox.messages == []
    (event,) = events()
    assert event["success"] is False
    assert event["attempts"] == 1


async def test_refused_recipient_fails_naming_the_address(
    smtp_sandbox: SmtpSandbox, publishers: Callable[..., EmailPublisher], photo: str
) -> None:
    smtp_sandbox.inject("reject_recipient", times=None)
    result = await publishers().publish(photo, "caption")

    assert not result.success
    assert result.error is not None
    assert FETLIFE in result.error
    assert "550" in result.error
    assert result.attempts == 1


async def test_transient_451_twice_then_accepted_takes_three_attempts(
    smtp_sandbox: SmtpSandbox,
    publishers: Callable[..., EmailPublisher],
    photo: str,
    events: Events,
) -> None:
    smtp_sandbox.inject("transient_451", operation="data", times=2)

    result = await publishers().publish(photo, "caption")

    assert result.success, result.error
    assert result.attempts == 3
    assert len(smtp_sandbox.messages) == 1
    (event,) = events()
    assert event["success"] is True
    assert event["attempts"] == 3
    assert event["post_id"] == result.post_id


async def test_transient_refusals_give_up_after_max_attempts(
    smtp_sandbox: SmtpSandbox, publishers: Callable[..., EmailPublisher], photo: str
) -> None:
    smtp_sandbox.inject("transient_451", operation="rcpt", times=None)

    result = await publishers(max_attempts=2).publish(photo, "caption")

    assert not result.success
    assert result.attempts == 2
    assert result.error is not None
    assert "temporarily refused" in result.error
    assert "gave up after 2 attempts" in result.error


async def test_dropped_connections_before_data_are_retried(
    smtp_sandbox: SmtpSandbox, publishers: Callable[..., EmailPublisher], photo: str
) -> None:
    smtp_sandbox.inject("disconnect", operation="connect", times=1)
    smtp_sandbox.inject("disconnect", operation="mail", times=1)

    result = await publishers().publish(photo, "caption")

    assert result.success, result.error
    assert result.attempts == 3
    assert smtp_sandbox.counters["connections"] == 3
    assert len(smtp_sandbox.messages) == 1


async def test_unreachable_server_fails_after_the_attempts(
    publishers: Callable[..., EmailPublisher], photo: str
) -> None:
    async with SmtpSandbox() as gone:
        port = gone.starttls_port
    result = await publishers(smtp_port=port).publish(photo, "caption")

    assert not result.success
    assert result.attempts == 3
    assert result.error is not None
    assert result.error.startswith(f"cannot connect to 127.0.0.1:{port}")


async def test_permanent_5xx_is_not_retried(
    smtp_sandbox: SmtpSandbox, publishers: Callable[..., EmailPublisher], photo: str
) -> None:
    smtp_sandbox.inject("5xx", times=None)

    result = await publishers().publish(photo, "caption")

    assert not result.success
    assert result.attempts == 1
    assert result.error is not None
    assert "554" in result.error


async def test_disconnect_after_data_accepted_is_not_resent(
    smtp_sandbox: SmtpSandbox, publishers: Callable[..., EmailPublisher], photo: str
) -> None:
    smtp_sandbox.inject("disconnect_after_data")

    result = await publishers().publish(photo, "caption")

    assert not result.success
    assert result.outcome_unknown
    assert result.status == PublishStatus.UNKNOWN
    assert result.attempts == 1
    assert result.error is not None
    assert "may have been delivered" in result.error
    assert len(smtp_sandbox.messages) == 1  # the server has it: exactly once
    assert smtp_sandbox.counters["connections"] == 1


async def test_hang_fails_at_timeout(
    smtp_sandbox: SmtpSandbox, publishers: Callable[..., EmailPublisher], photo: str
) -> None:
    smtp_sandbox.inject("hang", operation="rcpt", times=None)
    publisher = publishers(timeout_s=0.5)

    started = time.monotonic()
    result = await publisher.publish(photo, "caption")
    elapsed = time.monotonic() - started

    assert not result.success
    assert result.error is not None
    assert "timed out" in result.error or "no answer" in result.error
    assert 0.45 <= elapsed < 2.0
    assert not result.outcome_unknown  # the message content never left


async def test_hang_after_the_content_was_sent_is_an_unknown_outcome(
    smtp_sandbox: SmtpSandbox, publishers: Callable[..., EmailPublisher], photo: str
) -> None:
    smtp_sandbox.inject("hang", operation="data", times=None)

    result = await publishers(timeout_s=0.5).publish(photo, "caption")

    assert not result.success
    assert result.outcome_unknown
    assert result.attempts == 1


async def test_confirmation_goes_over_the_same_connection_with_tags(
    smtp_sandbox: SmtpSandbox, publishers: Callable[..., EmailPublisher], photo: str
) -> None:
    publisher = publishers(
        confirmation_to_sender=True, caption_target="both", confirmation_tags_count=2
    )

    result = await publisher.publish(
        photo, "Lake #view", {"analysis_tags": ["lake", "#water", "dusk"]}
    )

    assert result.success, result.error
    assert result.warnings == ()
    upload, confirmation = smtp_sandbox.messages
    assert upload.rcpt_tos == (FETLIFE,)
    assert confirmation.rcpt_tos == (smtp_sandbox.username,)
    assert smtp_sandbox.counters["connections"] == 1
    text = confirmation.message.get_content()
    assert "Subject: Lake" in text
    assert "Body: Lake" in text
    assert "Tags: lake, water\n" in text
    assert result.post_id in text
    assert confirmation.message["In-Reply-To"] == result.post_id
    assert list(confirmation.message.iter_attachments()) == []


async def test_failed_confirmation_keeps_the_publish_a_success(
    smtp_sandbox: SmtpSandbox,
    publishers: Callable[..., EmailPublisher],
    photo: str,
    events: Events,
) -> None:
    smtp_sandbox.unknown_recipients.add("nobody@example.test")
    publisher = publishers(
        confirmation_to_sender=True, confirmation_recipients=["nobody@example.test"]
    )

    result = await publisher.publish(photo, "caption")

    assert result.success, result.error
    assert result.attempts == 1
    (warning,) = result.warnings
    assert warning.startswith("confirmation e-mail not sent:")
    assert "nobody@example.test" in warning
    assert len(smtp_sandbox.messages) == 1
    (event,) = events()
    assert event["success"] is True
    assert event["warnings"] == [warning]


async def test_plain_smtp_on_loopback(
    smtp_sandbox: SmtpSandbox, publishers: Callable[..., EmailPublisher], photo: str
) -> None:
    publisher = publishers(security="none", smtp_port=smtp_sandbox.plain_port, ca_file=None)
    result = await publisher.publish(photo, "caption")
    assert result.success, result.error
    assert smtp_sandbox.messages[0].listener == "plain"


async def test_starttls_is_required_when_configured(
    smtp_sandbox: SmtpSandbox, publishers: Callable[..., EmailPublisher], photo: str
) -> None:
    result = await publishers(smtp_port=smtp_sandbox.plain_port).publish(photo, "caption")
    assert not result.success
    assert result.error is not None
    assert "STARTTLS" in result.error
    assert smtp_sandbox.counters["auth_successes"] == 0


async def test_one_event_per_publish_with_message_id_and_no_password(
    smtp_sandbox: SmtpSandbox,
    publishers: Callable[..., EmailPublisher],
    photo: str,
    events: Events,
    caplog: pytest.LogCaptureFixture,
) -> None:
    publisher = publishers()
    first = await publisher.publish(photo, "one")
    second = await publisher.publish(photo, "two")

    found = events()
    assert [e["post_id"] for e in found] == [first.post_id, second.post_id]
    assert first.post_id != second.post_id
    for event in found:
        assert event["platform"] == "email"
        assert isinstance(event["duration_ms"], int)
        assert event["attempts"] == 1
        assert event["success"] is True
        assert event["error"] is None
    assert smtp_sandbox.password not in caplog.text


async def test_check_logs_in_without_sending(
    smtp_sandbox: SmtpSandbox, publishers: Callable[..., EmailPublisher]
) -> None:
    description = await publishers().check()

    assert description.startswith(f"email: logged in to 127.0.0.1:{smtp_sandbox.starttls_port}")
    assert "STARTTLS" in description
    assert smtp_sandbox.messages == []
    assert smtp_sandbox.counters["auth_successes"] == 1


async def test_check_reports_a_wrong_password(
    smtp_sandbox: SmtpSandbox, publishers: Callable[..., EmailPublisher]
) -> None:
    with pytest.raises(CrosspostError, match=r"authentication failed \(535\)"):
        await publishers(password="nope-nope").check()


async def test_validate_refuses_a_broken_image_before_any_connection(
    smtp_sandbox: SmtpSandbox, publishers: Callable[..., EmailPublisher], tmp_path: Any
) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    publisher = publishers()

    with pytest.raises(ImageError):
        await publisher.validate(str(broken), "caption")
    result = await publisher.publish(str(broken), "caption")

    assert not result.success
    assert result.attempts == 0
    assert result.error is not None
    assert "broken.jpg" in result.error
    assert smtp_sandbox.counters["connections"] == 0


async def test_preview_is_local_and_describes_the_message(
    smtp_sandbox: SmtpSandbox, publishers: Callable[..., EmailPublisher], photo: str
) -> None:
    publisher = publishers(subject_mode="private", caption_target="both")

    preview = await publisher.preview(photo, "Lake #view\nat dusk")

    assert preview["subject"] == "Private: Lake at dusk"
    assert preview["body"] == "Lake at dusk"
    assert preview["caption"] == "Lake at dusk"
    assert preview["attachment_name"] == "Sunset at the Lake.jpg"
    assert preview["attachment_type"] == "image/jpeg"
    assert preview["reencoded"] is True  # the EXIF has to go
    assert 0 < preview["attachment_bytes"] < os.path.getsize(photo)
    assert smtp_sandbox.counters["connections"] == 0


async def test_cancellation_propagates_and_hangs_up(
    smtp_sandbox: SmtpSandbox, publishers: Callable[..., EmailPublisher], photo: str
) -> None:
    smtp_sandbox.inject("hang", operation="data", times=None)
    task = asyncio.create_task(publishers(timeout_s=30).publish(photo, "caption"))
    while smtp_sandbox.counters["faults"] == 0:
        await asyncio.sleep(0.01)

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 1.0)
    deadline = time.monotonic() + 2
    while smtp_sandbox.counters["open_connections"] and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert smtp_sandbox.counters["open_connections"] == 0


async def test_non_ascii_file_name_and_subject_arrive_intact(
    smtp_sandbox: SmtpSandbox,
    publishers: Callable[..., EmailPublisher],
    make_photo: Callable[..., str],
) -> None:
    path = make_photo("Café ☕ am Süßwassersee · Sommer 2024.jpg")
    caption = "Über den See 🌊 " * 8

    result = await publishers().publish(path, caption)

    assert result.success, result.error
    received = smtp_sandbox.messages[0]
    assert received.raw.isascii()  # 7-bit clean: any server takes it
    assert received.message["Subject"] == caption.strip()
    name, _type, _payload = attachment_of(received)
    assert name == "Café ☕ am Süßwassersee · Sommer 2024.jpg"


async def test_server_silent_after_accepting_still_counts_as_published(
    smtp_sandbox: SmtpSandbox, publishers: Callable[..., EmailPublisher], photo: str
) -> None:
    smtp_sandbox.inject("hang", operation="quit")

    started = time.monotonic()
    result = await publishers(timeout_s=0.5, confirmation_to_sender=True).publish(photo, "x")

    assert result.success, result.error
    assert result.warnings == ()
    assert time.monotonic() - started < 2.0
    assert len(smtp_sandbox.messages) == 2


async def test_backoff_never_sleeps_past_the_time_limit(
    smtp_sandbox: SmtpSandbox, publishers: Callable[..., EmailPublisher], photo: str
) -> None:
    smtp_sandbox.inject("disconnect", operation="connect", times=None)

    started = time.monotonic()
    result = await publishers(timeout_s=0.5, max_attempts=10).publish(photo, "caption")

    assert not result.success
    # 0.2 s then 0.4 s of backoff would end past 0.5 s: it stops after the second attempt
    # with the real reason instead of a bare timeout.
    assert result.attempts == 2
    assert result.error is not None
    assert result.error.startswith("cannot connect to")
    assert "gave up after 2 attempts" in result.error
    assert time.monotonic() - started < 0.5


async def test_a_photo_rewritten_after_validate_is_sent_as_it_is_now(
    publishers: Any, smtp_sandbox: SmtpSandbox, tmp_path: Any
) -> None:
    """`validate` builds the message ahead of time; a photo replaced in place before the
    publish (no metadata, so it is sent as it is) must not go out with the old bytes."""
    path = str(tmp_path / "plain.jpg")
    Image.new("RGB", (320, 240), (200, 40, 40)).save(path, "JPEG")
    publisher = publishers()
    await publisher.validate(path, "first")
    Image.new("RGB", (400, 300), (40, 40, 200)).save(path, "JPEG")
    now = time.time() + 5  # a different mtime even on a coarse clock
    os.utime(path, (now, now))

    result = await publisher.publish(path, "first")

    assert result.success, result.error
    _name, _type, payload = attachment_of(smtp_sandbox.messages[-1])
    with open(path, "rb") as handle:
        assert payload == handle.read()
