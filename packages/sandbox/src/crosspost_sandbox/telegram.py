"""A loopback Telegram Bot API server: `getMe`, `getChat`, `getChatMember` and `sendPhoto`.

It speaks plain HTTP/1.1 on 127.0.0.1 (keep-alive, Content-Length and chunked bodies,
multipart/form-data, url-encoded and JSON parameters), checks the bot token in the path and
the chat, enforces sendPhoto's real limits by reading the uploaded image with Pillow, and
answers with the JSON Telegram sends (`{"ok": true, "result": ...}` or
`{"ok": false, "error_code": ..., "description": ...}`), so `telegram.Bot(token,
base_url=sandbox.base_url)` works against it unchanged.

Faults (`inject(kind, operation=...)`, operations `getMe`, `getChat`, `getChatMember`,
`sendPhoto`):

- `flood` — 429 with `parameters.retry_after` (param `retry_after`, default 1 second)
- `bad_request` — 400 (param `description`, default "Bad Request: IMAGE_PROCESS_FAILED")
- `forbidden` — 403 "Forbidden: bot is not a member of the channel chat"
- `unauthorized` — 401 "Unauthorized"
- `5xx` — 500 "Internal Server Error" (param `status`: 500, 502, 503 or 504)
- `hang` — read the request, never answer (until the client leaves or the server stops)
- `drop` — read the request, close the connection without answering
- `drop_after_upload` — process the request (the photo is delivered and recorded), then
  close without answering: the client cannot know the outcome
- `hang_after_upload` — process the request, then never answer (the client times out)
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import email.message
import email.utils
import io
import json
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from PIL import Image, UnidentifiedImageError

from crosspost_sandbox.base import SandboxServer
from crosspost_sandbox.faults import Fault

__all__ = [
    "CAPTION_MAX_CHARS",
    "PHOTO_MAX_BYTES",
    "PHOTO_MAX_RATIO",
    "PHOTO_MAX_SIDES_SUM",
    "ReceivedPhoto",
    "SandboxChat",
    "TelegramSandbox",
]

#: sendPhoto's limits, as Telegram documents them.
PHOTO_MAX_BYTES = 10 * 2**20
PHOTO_MAX_SIDES_SUM = 10_000
PHOTO_MAX_RATIO = 20.0
CAPTION_MAX_CHARS = 1024
#: Telegram refuses any multipart upload above 50 MB before reading it.
_MAX_BODY_BYTES = 50 * 2**20
_MAX_HEAD_BYTES = 64 * 1024
#: Telegram stores a photo in several sizes; the longest side of each (the original is capped).
_PHOTO_SIDES = (90, 320, 800, 1280, 2560)

#: Bot API method names are case-insensitive; faults and counters use the canonical spelling.
_OPERATIONS = {name.lower(): name for name in ("getMe", "getChat", "getChatMember", "sendPhoto")}


@dataclass(frozen=True, slots=True)
class SandboxChat:
    """A channel the sandbox knows: its numeric id, public `@username` (if any) and title.

    `bot_is_member=False` makes every post to it fail with 403 (the bot was removed);
    `bot_can_post=False` makes it fail with 400 (the bot is a member but no administrator).
    """

    id: int
    username: str | None
    title: str
    bot_is_member: bool = True
    bot_can_post: bool = True

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "type": "channel", "title": self.title}
        if self.username:
            data["username"] = self.username
        return data


@dataclass(frozen=True, slots=True)
class ReceivedPhoto:
    """One photo the sandbox accepted (and answered, unless a fault dropped the answer)."""

    chat_id: str
    chat: SandboxChat
    message_id: int
    caption: str
    data: bytes = field(repr=False)
    width: int
    height: int
    format: str
    filename: str | None
    content_type: str
    received_at: float

    @property
    def size_bytes(self) -> int:
        return len(self.data)


class _HttpError(Exception):
    """A request the sandbox answers with a Bot API error (or a bare HTTP error)."""

    def __init__(self, status: int, description: str, **parameters: Any) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters


class _MalformedRequest(Exception):
    """The bytes on the wire are not HTTP: answer 400 and close the connection."""


@dataclass(slots=True)
class _FilePart:
    filename: str | None
    content_type: str
    data: bytes


@dataclass(slots=True)
class _Request:
    method: str
    target: str
    version: str
    headers: dict[str, str]
    body: bytes

    @property
    def keep_alive(self) -> bool:
        connection = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            return "keep-alive" in connection
        return "close" not in connection


@dataclass(slots=True)
class _Params:
    fields: dict[str, str]
    files: dict[str, _FilePart]


def _random_token() -> tuple[int, str]:
    bot_id = 5_000_000_000 + secrets.randbelow(1_000_000_000)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
    tail = "".join(secrets.choice(alphabet) for _ in range(33))
    return bot_id, f"{bot_id}:AA{tail}"


def _file_id() -> str:
    return "AgACAgQAAx0" + base64.urlsafe_b64encode(secrets.token_bytes(48)).decode().rstrip("=")


class TelegramSandbox(SandboxServer):
    """A Telegram Bot API server on 127.0.0.1 for `telegram.Bot(token, base_url=base_url)`.

    `chats` are the channels that exist, given as Telegram chat ids (`"@name"` or a numeric
    id such as `-1001234567890`); anything else is "chat not found". Everything received is
    kept: `photos` (every delivered photo with its bytes, decoded size and caption) and
    `counters` (`requests`, one per operation name, `photos_delivered`,
    `photos_delivered:<chat id>`, `connections`, `open_connections`, `status:<code>`,
    `fault:<kind>`).
    """

    def __init__(
        self,
        *,
        chats: Iterable[str | int] = ("@crosspost_sandbox",),
        token: str | None = None,
        bot_username: str = "crosspost_sandbox_bot",
        latency_s: float = 0.0,
        jitter_s: float = 0.0,
        backlog: int = 512,
    ) -> None:
        super().__init__(latency_s=latency_s, jitter_s=jitter_s)
        bot_id, generated = _random_token()
        if token is not None:
            head = token.split(":", 1)[0]
            bot_id = int(head) if head.isdigit() else bot_id
        self.token: str = token if token is not None else generated
        self.bot_id = bot_id
        self.bot_username = bot_username
        self.backlog = max(backlog, 128)
        self._lock = threading.Lock()
        self._chats: dict[str, SandboxChat] = {}
        self._configured: list[str] = []
        self._next_message_id: dict[int, int] = {}
        self._photos: list[ReceivedPhoto] = []
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._port: int | None = None
        for chat in chats:
            self.add_chat(chat)

    # -- configuration -------------------------------------------------------------------
    def add_chat(
        self,
        chat_id: str | int,
        *,
        title: str | None = None,
        bot_is_member: bool = True,
        bot_can_post: bool = True,
    ) -> SandboxChat:
        """Make a channel exist (by `@username` or numeric id); returns its record."""
        key = str(chat_id)
        with self._lock:
            numeric = -1_001_000_000_000 - len(self._configured) - 1
            if key.startswith("@"):
                username: str | None = key[1:]
                identifier = numeric
            else:
                username = None
                identifier = int(key)
            chat = SandboxChat(
                id=identifier,
                username=username,
                title=title or (f"{username} (sandbox)" if username else f"Channel {identifier}"),
                bot_is_member=bot_is_member,
                bot_can_post=bot_can_post,
            )
            if key not in self._configured:
                self._configured.append(key)
            self._chats[key.lower()] = chat
            self._chats[str(chat.id)] = chat
            return chat

    @property
    def chats(self) -> tuple[str, ...]:
        """The chat ids that exist, as configured (`"@name"` or numeric ids as strings)."""
        with self._lock:
            return tuple(self._configured)

    @property
    def channel_id(self) -> str:
        """The first configured chat id (what a one-channel test posts to)."""
        return self.chats[0]

    def chat(self, chat_id: str | int) -> SandboxChat | None:
        """The channel `chat_id` names (`"@name"` in any case, or its numeric id), if any."""
        with self._lock:
            return self._chats.get(str(chat_id).lower())

    # -- what was received ---------------------------------------------------------------
    @property
    def photos(self) -> list[ReceivedPhoto]:
        """Every delivered photo, in arrival order (a copy)."""
        with self._lock:
            return list(self._photos)

    def photos_in(self, chat_id: str | int) -> list[ReceivedPhoto]:
        """The photos delivered to one channel."""
        chat = self.chat(chat_id)
        return [p for p in self.photos if chat is not None and p.chat.id == chat.id]

    # -- addresses -----------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the Telegram sandbox is not running: start it first")
        return self._port

    @property
    def base_url(self) -> str:
        """`base_url` for `telegram.Bot`: the token is appended by the library."""
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    # -- lifecycle -----------------------------------------------------------------------
    async def _start(self) -> None:
        self._server = await asyncio.start_server(
            self._on_connection,
            host="127.0.0.1",
            port=0,
            backlog=self.backlog,
            limit=_MAX_HEAD_BYTES,
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
        # Let the transports run their connection_lost callbacks, which close the sockets.
        await asyncio.sleep(0)

    # -- the connection loop -------------------------------------------------------------
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
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away; nothing to answer
        except asyncio.CancelledError:
            # Our own shutdown cancels the handlers; ending quietly keeps asyncio (3.11) from
            # reporting the cancelled connection task as an error.
            if self._stopping is None or not self._stopping.is_set():
                raise
        finally:
            self.counters.add("open_connections", -1)
            self._writers.discard(writer)
            self._handlers.discard(task)
            writer.close()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                request = await self._read_request(reader, writer)
            except _MalformedRequest as exc:
                writer.write(_raw_response(400, str(exc).encode(), "text/plain", keep_alive=False))
                await writer.drain()
                return
            except _HttpError as exc:
                writer.write(_error_response(exc, keep_alive=False))
                await writer.drain()
                return
            if request is None:
                return
            self.counters.add("requests")
            answer = await self._answer(request, reader)
            if answer is None:
                return  # dropped (or hung until the client left): close without a word
            writer.write(answer)
            await writer.drain()
            if not request.keep_alive:
                return

    async def _read_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> _Request | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if exc.partial.strip():
                raise _MalformedRequest("incomplete request head") from exc
            return None
        except asyncio.LimitOverrunError as exc:
            raise _HttpError(431, "Request Header Fields Too Large") from exc
        lines = head.decode("latin-1").lstrip("\r\n").split("\r\n")
        try:
            method, target, version = lines[0].split(" ")
        except ValueError as exc:
            raise _MalformedRequest("malformed request line") from exc
        if not version.startswith("HTTP/1."):
            raise _MalformedRequest("only HTTP/1.x is spoken here")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if not line:
                continue
            name, sep, value = line.partition(":")
            if not sep:
                raise _MalformedRequest("malformed header line")
            key = name.strip().lower()
            headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
        if headers.get("expect", "").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await writer.drain()
        body = await self._read_body(reader, headers)
        return _Request(method.upper(), target, version, headers, body)

    async def _read_body(self, reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            chunks: list[bytes] = []
            total = 0
            while True:
                size_line = await reader.readuntil(b"\r\n")
                try:
                    size = int(size_line.split(b";", 1)[0].strip(), 16)
                except ValueError as exc:
                    raise _MalformedRequest("malformed chunk size") from exc
                if size == 0:
                    while (await reader.readuntil(b"\r\n")) != b"\r\n":
                        pass  # trailers carry nothing the Bot API uses
                    return b"".join(chunks)
                total += size
                if total > _MAX_BODY_BYTES:
                    raise _HttpError(413, "Request Entity Too Large")
                chunks.append(await reader.readexactly(size))
                await reader.readexactly(2)
        length_text = headers.get("content-length")
        if not length_text:
            return b""
        try:
            length = int(length_text)
        except ValueError as exc:
            raise _MalformedRequest("malformed Content-Length") from exc
        if length < 0:
            raise _MalformedRequest("malformed Content-Length")
        if length > _MAX_BODY_BYTES:
            raise _HttpError(413, "Request Entity Too Large")
        return await reader.readexactly(length)

    # -- answering -----------------------------------------------------------------------
    async def _answer(self, request: _Request, reader: asyncio.StreamReader) -> bytes | None:
        """The response bytes, or None when the connection must close without an answer."""
        keep_alive = request.keep_alive
        await self.latency.sleep()
        path = urlsplit(request.target).path
        prefix, _, rest = path.partition("/bot")
        token, _, method_name = rest.partition("/")
        operation = _OPERATIONS.get(method_name.lower()) if not prefix else None
        if operation is None:
            return _error_response(_HttpError(404, "Not Found"), keep_alive=keep_alive)
        self.counters.add(operation)
        fault = self.faults.take(operation)
        if fault is not None:
            self.counters.add(f"fault:{fault.kind}")
            early = await self._early_fault(fault, reader)
            if early == "close":
                return None
            if isinstance(early, _HttpError):
                return _error_response(early, keep_alive=keep_alive)
        try:
            if token != self.token:
                raise _HttpError(401, "Unauthorized")
            if request.method not in ("GET", "POST"):
                raise _HttpError(405, "Method Not Allowed")
            params = _parse_params(request)
            handler = self._operation_handler(operation)
            result = await handler(params)
        except _HttpError as exc:
            self.counters.add(f"status:{exc.status}")
            return _error_response(exc, keep_alive=keep_alive)
        if fault is not None and fault.kind == "drop_after_upload":
            return None
        if fault is not None and fault.kind == "hang_after_upload":
            await self._hang_until_client_leaves(reader)
            return None
        self.counters.add("status:200")
        payload = json.dumps({"ok": True, "result": result}).encode()
        return _raw_response(200, payload, "application/json", keep_alive=keep_alive)

    async def _early_fault(
        self, fault: Fault, reader: asyncio.StreamReader
    ) -> _HttpError | Literal["close", "later"]:
        """What a fault does before the request is processed: the error to answer, "close"
        the connection without answering, or nothing yet ("later": it acts afterwards)."""
        kind = fault.kind
        if kind == "flood":
            retry_after = int(fault.params.get("retry_after", 1))
            return _HttpError(
                429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after
            )
        if kind == "bad_request":
            return _HttpError(
                400, str(fault.params.get("description", "Bad Request: IMAGE_PROCESS_FAILED"))
            )
        if kind == "forbidden":
            description = "Forbidden: bot is not a member of the channel chat"
            return _HttpError(403, str(fault.params.get("description", description)))
        if kind == "unauthorized":
            return _HttpError(401, "Unauthorized")
        if kind == "5xx":
            status = int(fault.params.get("status", 500))
            return _HttpError(status, HTTPStatus(status).phrase)
        if kind == "drop":
            return "close"
        if kind == "hang":
            await self._hang_until_client_leaves(reader)
            return "close"
        if kind in ("drop_after_upload", "hang_after_upload"):
            return "later"
        raise ValueError(f"unknown Telegram sandbox fault {kind!r}")

    async def _hang_until_client_leaves(self, reader: asyncio.StreamReader) -> None:
        """Never answer: wait until the server stops or the client closes its end."""
        stop = asyncio.ensure_future(self.hang())
        eof = asyncio.ensure_future(reader.read())
        try:
            await asyncio.wait({stop, eof}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in (stop, eof):
                waiter.cancel()
            await asyncio.gather(stop, eof, return_exceptions=True)

    def _operation_handler(self, operation: str) -> Callable[[_Params], Awaitable[dict[str, Any]]]:
        handlers: dict[str, Callable[[_Params], Awaitable[dict[str, Any]]]] = {
            "getMe": self._get_me,
            "getChat": self._get_chat,
            "getChatMember": self._get_chat_member,
            "sendPhoto": self._send_photo,
        }
        return handlers[operation]

    def _bot_user(self) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "Crosspost Sandbox",
            "username": self.bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def _require_chat(self, params: _Params) -> SandboxChat:
        chat_id = params.fields.get("chat_id", "").strip()
        if not chat_id:
            raise _HttpError(400, "Bad Request: chat_id is empty")
        chat = self.chat(chat_id)
        if chat is None:
            raise _HttpError(400, "Bad Request: chat not found")
        return chat

    async def _get_me(self, params: _Params) -> dict[str, Any]:
        return self._bot_user()

    async def _get_chat(self, params: _Params) -> dict[str, Any]:
        chat = self._require_chat(params)
        return {
            **chat.to_json(),
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
            "has_visible_history": True,
        }

    async def _get_chat_member(self, params: _Params) -> dict[str, Any]:
        chat = self._require_chat(params)
        user_id = params.fields.get("user_id", "").strip()
        if user_id != str(self.bot_id):
            raise _HttpError(400, "Bad Request: user not found")
        if not chat.bot_is_member:
            return {"status": "left", "user": self._bot_user()}
        if not chat.bot_can_post:
            return {"status": "member", "user": self._bot_user()}
        rights = (
            "can_manage_chat",
            "can_delete_messages",
            "can_invite_users",
            "can_change_info",
            "can_post_messages",
            "can_edit_messages",
        )
        denied = (
            "can_be_edited",
            "is_anonymous",
            "can_manage_video_chats",
            "can_restrict_members",
            "can_promote_members",
            "can_post_stories",
            "can_edit_stories",
            "can_delete_stories",
        )
        return {
            "status": "administrator",
            "user": self._bot_user(),
            **dict.fromkeys(rights, True),
            **dict.fromkeys(denied, False),
        }

    async def _send_photo(self, params: _Params) -> dict[str, Any]:
        chat = self._require_chat(params)
        if not chat.bot_is_member:
            raise _HttpError(403, "Forbidden: bot is not a member of the channel chat")
        if not chat.bot_can_post:
            raise _HttpError(400, "Bad Request: need administrator rights in the channel chat")
        caption = params.fields.get("caption", "")
        if len(caption) > CAPTION_MAX_CHARS:
            raise _HttpError(400, "Bad Request: message caption is too long")
        photo = params.files.get("photo")
        reference = params.fields.get("photo", "")
        if photo is None and reference.startswith("attach://"):
            photo = params.files.get(reference.removeprefix("attach://"))
        if photo is None:
            if reference:
                raise _HttpError(400, "Bad Request: wrong file identifier/HTTP URL specified")
            raise _HttpError(400, "Bad Request: there is no photo in the request")
        if len(photo.data) > PHOTO_MAX_BYTES:
            raise _HttpError(400, "Bad Request: PHOTO_SAVE_FILE_INVALID")
        # Only the header is parsed (and PNG checksums checked): milliseconds even for 10 MB,
        # so it runs inline rather than in an executor thread that would outlive the server.
        width, height, image_format = _decode_photo(photo.data)
        if width + height > PHOTO_MAX_SIDES_SUM or (
            max(width, height) / min(width, height) > PHOTO_MAX_RATIO
        ):
            raise _HttpError(400, "Bad Request: PHOTO_INVALID_DIMENSIONS")
        with self._lock:
            message_id = self._next_message_id.get(chat.id, 0) + 1
            self._next_message_id[chat.id] = message_id
            received = ReceivedPhoto(
                chat_id=params.fields["chat_id"].strip(),
                chat=chat,
                message_id=message_id,
                caption=caption,
                data=photo.data,
                width=width,
                height=height,
                format=image_format,
                filename=photo.filename,
                content_type=photo.content_type,
                received_at=time.time(),
            )
            self._photos.append(received)
        self.counters.add("photos_delivered")
        self.counters.add(f"photos_delivered:{received.chat_id}")
        message: dict[str, Any] = {
            "message_id": message_id,
            "sender_chat": chat.to_json(),
            "chat": chat.to_json(),
            "date": int(received.received_at),
            "photo": _photo_sizes(width, height, len(photo.data)),
        }
        if caption:
            message["caption"] = caption
        return message


def _decode_photo(data: bytes) -> tuple[int, int, str]:
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            image_format = image.format or "unknown"
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise _HttpError(400, "Bad Request: IMAGE_PROCESS_FAILED") from None
    if width <= 0 or height <= 0:
        raise _HttpError(400, "Bad Request: IMAGE_PROCESS_FAILED")
    return width, height, image_format


def _photo_sizes(width: int, height: int, size_bytes: int) -> list[dict[str, Any]]:
    """The PhotoSize array: Telegram's thumbnails, then the largest stored copy."""
    longest = max(width, height)
    sizes: list[dict[str, Any]] = []
    for side in _PHOTO_SIDES:
        scale = min(1.0, side / longest)
        entry = {
            "file_id": _file_id(),
            "file_unique_id": secrets.token_urlsafe(12),
            "width": max(1, round(width * scale)),
            "height": max(1, round(height * scale)),
        }
        entry["file_size"] = max(1, round(size_bytes * scale * scale))
        sizes.append(entry)
        if scale == 1.0:
            break
    return sizes


def _parse_params(request: _Request) -> _Params:
    """Query-string parameters plus the body's (url-encoded, JSON or multipart)."""
    fields = dict(parse_qsl(urlsplit(request.target).query, keep_blank_values=True))
    files: dict[str, _FilePart] = {}
    content_type = request.headers.get("content-type", "")
    header = email.message.Message()
    header["content-type"] = content_type or "application/octet-stream"
    mime = header.get_content_type()
    if not request.body:
        return _Params(fields, files)
    if mime == "multipart/form-data":
        boundary = header.get_param("boundary")
        if not isinstance(boundary, str) or not boundary:
            raise _HttpError(400, "Bad Request: multipart boundary is missing")
        for name, part in _parse_multipart(request.body, boundary.encode("latin-1")):
            if part.filename is not None:
                files[name] = part
            else:
                fields[name] = part.data.decode("utf-8", "replace")
    elif mime == "application/json":
        try:
            data = json.loads(request.body)
        except ValueError:
            raise _HttpError(400, "Bad Request: can't parse JSON object") from None
        if not isinstance(data, dict):
            raise _HttpError(400, "Bad Request: can't parse JSON object")
        for key, value in data.items():
            fields[key] = value if isinstance(value, str) else json.dumps(value)
    elif mime == "application/x-www-form-urlencoded":
        fields.update(parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))
    else:
        raise _HttpError(400, f"Bad Request: unsupported Content-Type {mime}")
    return _Params(fields, files)


def _parse_multipart(body: bytes, boundary: bytes) -> list[tuple[str, _FilePart]]:
    """The parts of a multipart/form-data body, as (field name, part)."""
    delimiter = b"--" + boundary
    bad = _HttpError(400, "Bad Request: can't parse multipart/form-data")
    position = body.find(delimiter)
    if position < 0:
        raise bad
    position += len(delimiter)
    parts: list[tuple[str, _FilePart]] = []
    while not body.startswith(b"--", position):
        line_end = body.find(b"\r\n", position)
        end = body.find(b"\r\n" + delimiter, line_end)
        if line_end < 0 or end < 0:
            raise bad
        raw = body[line_end + 2 : end]
        head, separator, data = raw.partition(b"\r\n\r\n")
        if not separator:
            if not raw.startswith(b"\r\n"):
                raise bad
            head, data = b"", raw[2:]
        headers = email.message.Message()
        for line in head.decode("utf-8", "replace").split("\r\n"):
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip()] = value.strip()
        field_name = headers.get_param("name", header="content-disposition")
        if field_name is None:
            raise bad
        filename = headers.get_filename()
        parts.append(
            (
                email.utils.collapse_rfc2231_value(field_name),
                _FilePart(filename, headers.get_content_type(), data),
            )
        )
        position = end + 2 + len(delimiter)
    return parts


def _raw_response(status: int, payload: bytes, content_type: str, *, keep_alive: bool) -> bytes:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    head = (
        f"HTTP/1.1 {status} {phrase}\r\n"
        "Server: crosspost-sandbox\r\n"
        f"Date: {email.utils.formatdate(usegmt=True)}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(payload)}\r\n"
        f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n"
        "\r\n"
    )
    return head.encode("latin-1") + payload


def _error_response(error: _HttpError, *, keep_alive: bool) -> bytes:
    data: dict[str, Any] = {
        "ok": False,
        "error_code": error.status,
        "description": error.description,
    }
    if error.parameters:
        data["parameters"] = error.parameters
    return _raw_response(
        error.status, json.dumps(data).encode(), "application/json", keep_alive=keep_alive
    )
