"""The DATA phase done off the loop: `to_wire` must send exactly what aiosmtplib would, and
`send_data` must deliver it intact and in pieces."""

from __future__ import annotations

import asyncio
import base64
import random
from email import message_from_bytes, policy

import aiosmtplib
import pytest
from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings

from crosspost_email.message import build_upload
from crosspost_email.wire import PIECE_BYTES, WireLines, WireMessage, send_data, to_wire
from crosspost_sandbox.smtp import SmtpSandbox


def aiosmtplib_wire(message: bytes) -> bytes:
    """What `aiosmtplib.SMTP.data(message)` puts on the wire after DATA."""
    return PERIOD_REGEX.sub(b"..", normalize_message_line_endings(message)) + b".\r\n"


def random_chunks(rng: random.Random, data: bytes) -> list[bytes]:
    cuts = sorted(rng.sample(range(1, len(data)), k=min(len(data) - 1, rng.randint(0, 12))))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


@pytest.mark.parametrize("seed", range(200))
def test_to_wire_matches_aiosmtplib_for_any_split(seed: int) -> None:
    rng = random.Random(seed)
    alphabet = [b"\r", b"\n", b".", b"a", b"\r\n", b"\n.", b"\r."]
    data = b"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 300)))
    wire = to_wire(random_chunks(rng, data))
    assert b"".join(wire.pieces) == aiosmtplib_wire(data)
    assert wire.size == len(normalize_message_line_endings(data))


@pytest.mark.parametrize(
    "data",
    [b"", b".", b"\r", b"\n", b"abc", b".\r\n", b"a\r\n.\r\n", b"\r\r\n\n"],
    ids=repr,
)
def test_to_wire_edge_cases(data: bytes) -> None:
    wire = to_wire([data])
    assert b"".join(wire.pieces) == aiosmtplib_wire(data)


def test_large_messages_are_cut_into_bounded_pieces() -> None:
    body = base64.encodebytes(random.Random(1).randbytes(3 * 2**20)).replace(b"\n", b"\r\n")
    wire = to_wire([b"Subject: x\r\n\r\n", body])
    assert max(len(piece) for piece in wire.pieces) <= PIECE_BYTES + 2
    assert len(wire.pieces) >= len(body) // PIECE_BYTES
    assert b"".join(wire.pieces) == aiosmtplib_wire(b"Subject: x\r\n\r\n" + body)


def test_spliced_attachment_is_byte_identical_to_the_file(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "photo.jpg"
    content = random.Random(7).randbytes(1_000_003)
    path.write_bytes(content)
    wire, message_id = build_upload(
        sender="me@example.org",
        recipient="them@example.org",
        subject="Photo upload",
        body="hello",
        image_path=str(path),
        filename="photo.jpg",
        mime_type="image/jpeg",
    )
    # Undo the DATA transformation, then parse as any mail server would.
    raw = b"".join(wire.pieces)[: -len(b".\r\n")].replace(b"\r\n..", b"\r\n.")
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["Message-ID"] == message_id
    (attachment,) = parsed.iter_attachments()  # type: ignore[attr-defined]
    assert attachment.get_filename() == "photo.jpg"
    assert attachment.get_content() == content
    assert all(len(line) <= 78 for line in raw.split(b"\r\n"))


async def test_send_data_delivers_a_large_message_and_keeps_the_loop_turning(
    smtp_sandbox: SmtpSandbox,
) -> None:
    payload = base64.encodebytes(random.Random(3).randbytes(4 * 2**20)).replace(b"\n", b"\r\n")
    message = (
        b"From: me@example.org\r\nTo: them@example.org\r\nSubject: big\r\n\r\n.leading dot\r\n"
        + payload
    )
    wire = to_wire([message])
    ticks = 0
    sending = True

    async def ticker() -> None:
        nonlocal ticks
        while sending:
            ticks += 1
            await asyncio.sleep(0)

    client = aiosmtplib.SMTP(
        hostname=smtp_sandbox.host, port=smtp_sandbox.plain_port, start_tls=False
    )
    await client.connect()
    try:
        await client.login(smtp_sandbox.username, smtp_sandbox.password)
        await client.mail("me@example.org")
        await client.rcpt("them@example.org")
        task = asyncio.create_task(ticker())
        reply = await send_data(client, wire, 10.0)
        sending = False
        await task
        assert reply.code == 250
        # The loop ran other work between pieces, not only while waiting for the reply.
        assert ticks >= len(wire.pieces) // 2
        # The connection is still good for another command afterwards.
        assert (await client.noop()).code == 250
    finally:
        client.close()
    received = smtp_sandbox.messages[-1]
    assert received.message.get_payload(decode=False).startswith(".leading dot")


async def test_send_data_reports_a_refused_message_and_keeps_the_connection(
    smtp_sandbox: SmtpSandbox,
) -> None:
    client = aiosmtplib.SMTP(
        hostname=smtp_sandbox.host, port=smtp_sandbox.plain_port, start_tls=False
    )
    await client.connect()
    try:
        with pytest.raises(aiosmtplib.SMTPResponseException):
            # DATA without MAIL FROM is refused by any server with 503.
            await send_data(client, WireMessage((b"x\r\n.\r\n",), 3), 5.0)
        assert client.is_connected
        assert (await client.noop()).code == 250
    finally:
        client.close()


@pytest.mark.parametrize("seed", range(50))
def test_wire_lines_pass_through_unchanged_and_match_aiosmtplib(seed: int) -> None:
    rng = random.Random(seed)
    lines = WireLines(b"".join(base64.b64encode(rng.randbytes(57)) + b"\r\n" for _ in range(9)))
    head = rng.choice([b"Subject: x\r\n\r\n", b"Subject: x\n\n", b".dot\r", b"no newline"])
    tail = rng.choice([b"\r\n--b--\r\n", b".\n", b""])
    wire = to_wire([head, lines, tail])
    assert b"".join(wire.pieces) == aiosmtplib_wire(head + bytes(lines) + tail)
    assert wire.size == len(normalize_message_line_endings(head + bytes(lines) + tail))
