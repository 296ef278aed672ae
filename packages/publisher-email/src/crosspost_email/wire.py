"""A message as it travels in SMTP's DATA phase, and sending it without stalling the loop.

aiosmtplib's `SMTP.data()` normalises the line endings and dot-stuffs the whole message with
two regular expressions on the event loop, then hands it to the transport in one `write()`,
where TLS encrypts all of it at once: for a 6 MB photo that was about 60 ms here in which
no other publisher made progress. Here the message is made ready in a worker
thread (`to_wire`), in pieces short enough that no single step holds the GIL for long, and
`send_data` writes one piece per turn of the loop, waiting whenever the transport's buffer is
full, so each turn encrypts and sends at most one piece.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import aiosmtplib
from aiosmtplib import SMTPDataError, SMTPResponse, SMTPServerDisconnected, SMTPTimeoutError
from aiosmtplib.protocol import SMTPProtocol

__all__ = ["WireLines", "WireMessage", "send_data", "to_wire"]

#: The largest piece `to_wire` works on or `send_data` writes at once: the regular expression
#: of the slow path needs about a millisecond for it, TLS a fraction of that.
PIECE_BYTES = 128 * 1024

_LINE_ENDING = re.compile(rb"\r\n|\n|\r(?!\n)")
_CRLF = b"\r\n"
_END_OF_DATA = b".\r\n"


@dataclass(frozen=True)
class WireMessage:
    """A message ready for DATA: CRLF line endings, every line that starts with a dot
    doubled ("dot-stuffed"), and the closing lone-dot line, in pieces of about
    `PIECE_BYTES` or less."""

    pieces: tuple[bytes, ...]
    #: The message's size before dot-stuffing, for the SIZE parameter of MAIL FROM.
    size: int


class WireLines(bytes):
    """Bytes already fit for DATA as they are: whole lines, each ending in CRLF, no lone CR
    or LF, none starting with a dot (base64, for instance). `to_wire` passes them through
    without scanning them, when they start at the beginning of a line."""


def _split(chunk: bytes) -> Iterator[bytes]:
    if len(chunk) <= PIECE_BYTES:
        yield chunk
    else:
        for start in range(0, len(chunk), PIECE_BYTES):
            yield chunk[start : start + PIECE_BYTES]


def _crlf(piece: bytes) -> bytes:
    newlines = piece.count(b"\n")
    if piece.count(b"\r") == newlines == piece.count(_CRLF):
        return piece
    return _LINE_ENDING.sub(_CRLF, piece)


def to_wire(chunks: Iterable[bytes]) -> WireMessage:
    """The message made of `chunks` (in order) as it goes over the wire in DATA: lone CR and
    LF become CRLF, the message ends with CRLF, lines starting with "." get a second one, and
    the closing ".\\r\\n" is added; the same bytes `aiosmtplib.SMTP.data()` would send.

    CPU work proportional to the message: call it in a worker thread.
    """
    pieces: list[bytes] = []
    size = 0
    # A CR at the end of a chunk may be the first half of a CRLF split across two chunks.
    carry = b""
    at_line_start = True
    for whole in chunks:
        if isinstance(whole, WireLines) and at_line_start and not carry:
            pieces.extend(_split(whole))
            size += len(whole)
            continue
        for chunk in _split(whole):
            piece = carry + chunk if carry else chunk
            carry = b""
            if piece.endswith(b"\r"):
                piece, carry = piece[:-1], b"\r"
            if not piece:
                continue
            piece = _crlf(piece)
            size += len(piece)
            # Every LF is now the end of a CRLF, so "\n." is exactly a line starting with a
            # dot.
            if at_line_start and piece.startswith(b"."):
                piece = b"." + piece
            if b"\n." in piece:
                piece = piece.replace(b"\n.", b"\n..")
            at_line_start = piece.endswith(b"\n")
            pieces.append(piece)
    ending = _CRLF if carry or not at_line_start or not pieces else b""
    size += len(ending)
    pieces.append(ending + _END_OF_DATA)
    return WireMessage(tuple(pieces), size)


async def _drained(protocol: SMTPProtocol, timeout_s: float | None) -> None:
    # aiosmtplib's protocol carries the standard library's stream flow control
    # (pause_writing/resume_writing); `_drain_helper` is what StreamWriter.drain() awaits.
    try:
        async with asyncio.timeout(timeout_s):
            await protocol._drain_helper()
    except TimeoutError:
        raise SMTPTimeoutError("Timed out sending the message to the server") from None
    except ConnectionResetError as exc:
        raise SMTPServerDisconnected("Connection lost") from exc
    # Let everything else on the loop run between two pieces, even when nothing is paused.
    await asyncio.sleep(0)


async def _reply(protocol: SMTPProtocol, timeout_s: float | None) -> SMTPResponse:
    # `asyncio.timeout`, not aiosmtplib's own `wait_for`, which on Python 3.11 can swallow a
    # cancellation arriving together with the reply.
    try:
        async with asyncio.timeout(timeout_s):
            return await protocol.read_response(timeout=None)
    except TimeoutError:
        raise SMTPTimeoutError("Timed out waiting for server response") from None


async def send_data(
    client: aiosmtplib.SMTP, message: WireMessage, timeout_s: float | None
) -> SMTPResponse:
    """Send DATA, then `message` (from `to_wire`), and return the server's final reply.

    What `client.data()` promises: 354 expected after DATA and 250 after the message,
    `SMTPDataError` otherwise (the connection stays usable); `SMTPServerDisconnected` or
    `SMTPTimeoutError` when the connection is lost or silent for `timeout_s` seconds (no
    progress sending, or no reply). Cut off in the middle for any reason, cancellation
    included, the connection is dropped at once: it cannot carry another command.
    """
    protocol = client.protocol
    # Private parts of aiosmtplib 5 (pinned <6): its command lock, which keeps other
    # commands off the connection, and the flag that makes the protocol keep a reply.
    lock = protocol._command_lock if protocol is not None else None
    if protocol is None or lock is None:
        raise SMTPServerDisconnected("Connection lost")
    try:
        async with lock:
            protocol._response_pending = True
            protocol.write(b"DATA\r\n")
            start = await _reply(protocol, timeout_s)
            if start.code != aiosmtplib.SMTPStatus.start_input:
                raise SMTPDataError(start.code, start.message)
            # Armed before the content goes out: a server may answer before the last piece.
            protocol._response_pending = True
            for piece in message.pieces:
                protocol.write(piece)
                await _drained(protocol, timeout_s)
            reply = await _reply(protocol, timeout_s)
    except SMTPDataError:
        raise
    except BaseException:
        transport = protocol.transport
        if isinstance(transport, asyncio.Transport):
            transport.abort()
        client.close()
        raise
    if reply.code != aiosmtplib.SMTPStatus.completed:
        raise SMTPDataError(reply.code, reply.message)
    return reply
