"""The two messages the publisher sends: the photo upload and the optional confirmation.

Both are built and serialized off the event loop (`asyncio.to_thread`), ready for DATA
(`wire.to_wire`). Headers only ever receive one-line text (`fetlife.one_line`), and the
`email` package refuses CR/LF in a header value as a second line of defence.
"""

from __future__ import annotations

import base64
import binascii
import os
import uuid
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from crosspost_email.fetlife import one_line
from crosspost_email.wire import WireLines, WireMessage, to_wire

__all__ = ["attachment_name", "build_confirmation", "build_upload", "encoded_words"]

# CRLF line endings as on the wire; 7-bit clean bodies (quoted-printable, base64) so any
# server takes them without 8BITMIME.
_POLICY = policy.SMTP
#: What the email package puts on one base64 line under that policy (78 // 4 * 3 bytes make
#: 76 characters), and how many such lines are encoded per step.
_BASE64_LINE_BYTES = 57
_BASE64_BLOCK_LINES = 1024


def attachment_name(image_path: str, fallback_extension: str = ".jpg") -> str:
    """The photo's original file name, made safe for a MIME header."""
    name = one_line(os.path.basename(image_path)).strip(". ")
    return name or f"photo{fallback_extension}"


def encoded_words(text: str) -> str:
    """`text` as RFC 2047 base64 encoded words, one per folded line, whitespace kept inside.

    Python before 3.13 folds long non-ASCII headers with a space *between* two encoded
    words, where readers drop it ("so calm" arrives as "socalm"); words holding their own
    spaces avoid that. Each word carries at most 42 bytes of UTF-8, so every line stays
    under 78 characters and no character is split.
    """
    words: list[str] = []
    chunk = ""
    for ch in text:
        if len((chunk + ch).encode("utf-8")) > 42:
            words.append(chunk)
            chunk = ""
        chunk += ch
    if chunk:
        words.append(chunk)
    encoded = [
        "=?utf-8?b?" + base64.b64encode(word.encode("utf-8")).decode("ascii") + "?="
        for word in words
    ]
    return "\n ".join(encoded)


def _set_subject(message: EmailMessage, subject: str) -> None:
    subject = one_line(subject)
    if subject.isascii():
        message["Subject"] = subject
    else:
        # Stored as is: the policy would re-fold it the faulty way.
        message.set_raw("Subject", encoded_words(subject))


def _domain(address: str) -> str:
    return address.rpartition("@")[2] or "localhost"


def _new_message(sender: str, to: tuple[str, ...], subject: str) -> tuple[EmailMessage, str]:
    message = EmailMessage(policy=_POLICY)
    message["From"] = sender
    message["To"] = ", ".join(to)
    _set_subject(message, subject)
    message["Date"] = formatdate(usegmt=True)
    # An explicit domain: without it make_msgid asks DNS for this machine's name.
    message_id = make_msgid(domain=_domain(sender))
    message["Message-ID"] = message_id
    return message, message_id


def _base64_lines(path: str) -> Iterator[bytes]:
    """The file's content as base64 lines of 76 characters ending in CRLF, exactly as the
    email package writes them, a block of lines at a time (each block a multiple of 57
    bytes, so lines never straddle two blocks)."""
    # One read, not one per block: a worker thread that gives up the GIL for I/O many times
    # a millisecond wins it back each time before the event loop's thread can take it, and
    # the loop then stalls for as long as the loop over blocks lasts. Pure CPU work is
    # interrupted every few milliseconds instead (sys.getswitchinterval).
    with open(path, "rb") as handle:
        data = handle.read()
    width = _BASE64_LINE_BYTES * 4 // 3
    step = _BASE64_LINE_BYTES * _BASE64_BLOCK_LINES
    for start in range(0, len(data), step):
        encoded = binascii.b2a_base64(data[start : start + step], newline=False)
        lines = [encoded[i : i + width] for i in range(0, len(encoded), width)]
        yield WireLines(b"\r\n".join(lines) + b"\r\n")


def build_upload(
    *,
    sender: str,
    recipient: str,
    subject: str,
    body: str,
    image_path: str,
    filename: str,
    mime_type: str,
) -> tuple[WireMessage, str]:
    """The upload message, ready for DATA, and its Message-ID: `body` as text if not empty,
    and the image at `image_path` attached as `filename` with type `mime_type`."""
    message, message_id = _new_message(sender, (recipient,), subject)
    if body:
        message.set_content(one_line(body), charset="utf-8", cte="quoted-printable")
    maintype, _, subtype = mime_type.partition("/")
    message.add_attachment(b"", maintype=maintype, subtype=subtype, filename=one_line(filename))
    # The photo's base64 is spliced in afterwards, block by block: the email package
    # encodes, scans and splits a 10 MB attachment in a few calls over all of it, each
    # holding the GIL (so stalling the event loop's thread too) for tens of milliseconds at a time.
    *_, attachment = message.iter_attachments()
    marker = f"crosspost-attachment-{uuid.uuid4().hex}"
    attachment.set_payload(marker)
    head, found, tail = message.as_bytes().partition(marker.encode("ascii"))
    if not found:
        raise AssertionError("the attachment placeholder is missing from the message")
    return to_wire([head, *_base64_lines(image_path), tail]), message_id


def build_confirmation(
    *,
    sender: str,
    to: tuple[str, ...],
    recipient: str,
    subject: str,
    body: str,
    filename: str,
    tags: list[str],
    upload_id: str,
) -> WireMessage:
    """The confirmation message, ready for DATA: what was posted, where, and the tags."""
    message, _ = _new_message(sender, to, f"crosspost: photo sent to {recipient}")
    message["In-Reply-To"] = upload_id
    message["References"] = upload_id
    lines = [
        f"The mail server accepted your photo for {recipient}.",
        "",
        f"File: {one_line(filename)}",
        f"Subject: {one_line(subject)}",
        f"Body: {one_line(body) or '(empty)'}",
    ]
    if tags:
        lines.append("Tags: " + ", ".join(one_line(tag) for tag in tags))
    lines.append(f"Message-ID: {upload_id}")
    message.set_content("\n".join(lines) + "\n", charset="utf-8", cte="quoted-printable")
    return to_wire([message.as_bytes()])
