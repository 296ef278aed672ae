"""The two messages the publisher sends: the photo upload and the optional confirmation.

Both are built and serialized off the event loop (`asyncio.to_thread`): base64 of a 10 MB
photo is real work. Headers only ever receive one-line text (`fetlife.one_line`), and the
`email` package refuses CR/LF in a header value as a second line of defence.
"""

from __future__ import annotations

import base64
import os
from email import policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from crosspost_email.fetlife import one_line

__all__ = ["attachment_name", "build_confirmation", "build_upload", "encoded_words"]

# CRLF line endings as on the wire; 7-bit clean bodies (quoted-printable, base64) so any
# server takes them without 8BITMIME.
_POLICY = policy.SMTP


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


def build_upload(
    *,
    sender: str,
    recipient: str,
    subject: str,
    body: str,
    image_path: str,
    filename: str,
    mime_type: str,
) -> tuple[bytes, str]:
    """The upload message (wire bytes) and its Message-ID: `body` as text if not empty,
    and the image at `image_path` attached as `filename` with type `mime_type`."""
    with open(image_path, "rb") as handle:
        data = handle.read()
    message, message_id = _new_message(sender, (recipient,), subject)
    if body:
        message.set_content(one_line(body), charset="utf-8", cte="quoted-printable")
    maintype, _, subtype = mime_type.partition("/")
    message.add_attachment(data, maintype=maintype, subtype=subtype, filename=one_line(filename))
    return message.as_bytes(), message_id


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
) -> bytes:
    """The confirmation message (wire bytes): what was posted, where, and the tags."""
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
    return message.as_bytes()
