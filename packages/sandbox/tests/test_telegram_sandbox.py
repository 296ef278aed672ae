"""The Telegram sandbox driven by the real python-telegram-bot client."""

from __future__ import annotations

import asyncio
import datetime as dtm
import io
import json
import socket
import threading
import time
from collections.abc import AsyncIterator

import pytest
import telegram
from PIL import Image
from telegram.error import (
    BadRequest,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)

from crosspost_sandbox.telegram import TelegramSandbox


@pytest.fixture(autouse=True)
def _ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    # PTB warns on every RetryAfter unless opted in to its timedelta form (PLATFORMS.md).
    monkeypatch.setenv("PTB_TIMEDELTA", "true")


def jpeg(width: int, height: int, color: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


@pytest.fixture
async def bot(telegram_sandbox: TelegramSandbox) -> AsyncIterator[telegram.Bot]:
    async with telegram.Bot(telegram_sandbox.token, base_url=telegram_sandbox.base_url) as client:
        yield client


async def test_send_photo_returns_a_channel_message_and_records_the_photo(
    telegram_sandbox: TelegramSandbox, bot: telegram.Bot
) -> None:
    message = await bot.send_photo(
        telegram_sandbox.channel_id, photo=jpeg(800, 600), caption="hello", filename="a.jpg"
    )

    assert message.message_id == 1
    assert message.caption == "hello"
    assert message.chat.type == "channel"
    assert message.chat.username == "crosspost_sandbox"
    assert message.photo[-1].width == 800
    assert message.photo[-1].height == 600
    assert abs(message.date.timestamp() - time.time()) < 60
    (received,) = telegram_sandbox.photos
    assert (received.width, received.height, received.format) == (800, 600, "JPEG")
    assert received.caption == "hello"
    assert received.filename == "a.jpg"
    assert received.chat.id == message.chat.id
    assert Image.open(io.BytesIO(received.data)).size == (800, 600)
    assert telegram_sandbox.counters["photos_delivered"] == 1
    assert telegram_sandbox.counters[f"photos_delivered:{telegram_sandbox.channel_id}"] == 1
    assert telegram_sandbox.counters["sendPhoto"] == 1
    assert telegram_sandbox.counters["getMe"] == 1  # Bot.initialize()


async def test_get_me_describes_the_bot(
    telegram_sandbox: TelegramSandbox, bot: telegram.Bot
) -> None:
    me = await bot.get_me()

    assert me.is_bot
    assert me.id == telegram_sandbox.bot_id
    assert me.username == telegram_sandbox.bot_username


async def test_get_chat_and_get_chat_member_show_the_bot_can_post(
    telegram_sandbox: TelegramSandbox, bot: telegram.Bot
) -> None:
    chat = await bot.get_chat(telegram_sandbox.channel_id)
    member = await bot.get_chat_member(chat.id, bot.id)

    assert chat.type == "channel"
    assert chat.username == "crosspost_sandbox"
    assert isinstance(member, telegram.ChatMemberAdministrator)
    assert member.can_post_messages


async def test_chat_where_the_bot_cannot_post_is_refused() -> None:
    async with TelegramSandbox(chats=()) as sandbox:
        sandbox.add_chat("@removed", bot_is_member=False)
        sandbox.add_chat("@readonly", bot_can_post=False)
        async with telegram.Bot(sandbox.token, base_url=sandbox.base_url) as client:
            with pytest.raises(Forbidden, match="not a member of the channel"):
                await client.send_photo("@removed", photo=jpeg(50, 50))
            with pytest.raises(BadRequest, match="administrator rights"):
                await client.send_photo("@readonly", photo=jpeg(50, 50))
            member = await client.get_chat_member("@readonly", client.id)
            assert member.status == "member"
    assert sandbox.photos == []


async def test_message_ids_increase_per_chat() -> None:
    async with (
        TelegramSandbox(chats=["@one", "@two", -1009876543210]) as sandbox,
        telegram.Bot(sandbox.token, base_url=sandbox.base_url) as client,
    ):
        ids = [
            (await client.send_photo(chat, photo=jpeg(40, 30))).message_id
            for chat in ["@one", "@one", "@two", "@one", -1009876543210, "@ONE"]
        ]
    assert ids == [1, 2, 1, 3, 1, 4]
    assert len(sandbox.photos_in("@one")) == 4
    assert sandbox.counters["photos_delivered:-1009876543210"] == 1


async def test_wrong_token_is_invalid_token(telegram_sandbox: TelegramSandbox) -> None:
    client = telegram.Bot(
        "123456:AAwrongwrongwrongwrongwrongwrongwro", base_url=telegram_sandbox.base_url
    )

    with pytest.raises(InvalidToken):
        await client.initialize()

    assert telegram_sandbox.counters["status:401"] == 1
    await client.shutdown()


async def test_unknown_chat_is_bad_request_chat_not_found(bot: telegram.Bot) -> None:
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.send_photo("@nobody_here", photo=jpeg(50, 50))


@pytest.mark.parametrize(
    ("size", "accepted"),
    [
        ((5000, 5000), True),
        ((5001, 5000), False),  # width + height above 10000
        ((2000, 100), True),  # ratio exactly 20
        ((2100, 100), False),  # ratio 21
        ((100, 2100), False),
    ],
)
async def test_photo_dimensions_are_enforced(
    telegram_sandbox: TelegramSandbox, bot: telegram.Bot, size: tuple[int, int], accepted: bool
) -> None:
    send = bot.send_photo(telegram_sandbox.channel_id, photo=jpeg(*size))
    if accepted:
        await send
        assert telegram_sandbox.photos[0].width == size[0]
    else:
        with pytest.raises(BadRequest, match="Photo_invalid_dimensions"):
            await send
        assert telegram_sandbox.photos == []


async def test_caption_above_1024_characters_is_refused(
    telegram_sandbox: TelegramSandbox, bot: telegram.Bot
) -> None:
    await bot.send_photo(telegram_sandbox.channel_id, photo=jpeg(50, 50), caption="é" * 1024)

    with pytest.raises(BadRequest, match="caption is too long"):
        await bot.send_photo(telegram_sandbox.channel_id, photo=jpeg(50, 50), caption="x" * 1025)

    assert [len(p.caption) for p in telegram_sandbox.photos] == [1024]


async def test_photo_above_10_mb_is_refused(
    telegram_sandbox: TelegramSandbox, bot: telegram.Bot
) -> None:
    oversized = jpeg(100, 100) + b"\0" * (10 * 2**20)

    with pytest.raises(BadRequest, match="Photo_save_file_invalid"):
        await bot.send_photo(telegram_sandbox.channel_id, photo=oversized)

    assert telegram_sandbox.photos == []


async def test_bytes_that_are_no_image_are_refused(
    telegram_sandbox: TelegramSandbox, bot: telegram.Bot
) -> None:
    with pytest.raises(BadRequest, match="Image_process_failed"):
        await bot.send_photo(telegram_sandbox.channel_id, photo=b"GIF89a but not really")


@pytest.mark.parametrize(
    ("kind", "params", "error", "match"),
    [
        (
            "bad_request",
            {"description": "Bad Request: wrong type of the web page content"},
            BadRequest,
            "Wrong type",
        ),
        ("forbidden", {}, Forbidden, "bot is not a member of the channel chat"),
        ("unauthorized", {}, InvalidToken, "Unauthorized"),
        ("5xx", {}, NetworkError, "Internal Server Error"),
        ("5xx", {"status": 502}, NetworkError, "Bad Gateway"),
        ("drop", {}, NetworkError, "disconnected"),
    ],
)
async def test_scripted_fault_reaches_the_client_as_ptb_exception(
    telegram_sandbox: TelegramSandbox,
    bot: telegram.Bot,
    kind: str,
    params: dict[str, object],
    error: type[TelegramError],
    match: str,
) -> None:
    telegram_sandbox.inject(kind, operation="sendPhoto", **params)

    with pytest.raises(error, match=match) as caught:
        await bot.send_photo(telegram_sandbox.channel_id, photo=jpeg(60, 40))

    assert not isinstance(caught.value, TimedOut)
    assert telegram_sandbox.photos == []
    assert telegram_sandbox.counters[f"fault:{kind}"] == 1
    # The fault was used up: the next upload goes through.
    await bot.send_photo(telegram_sandbox.channel_id, photo=jpeg(60, 40))
    assert len(telegram_sandbox.photos) == 1


async def test_flood_fault_is_retry_after_with_the_asked_delay(
    telegram_sandbox: TelegramSandbox, bot: telegram.Bot
) -> None:
    telegram_sandbox.inject("flood", operation="sendPhoto", retry_after=7)

    with pytest.raises(RetryAfter) as caught:
        await bot.send_photo(telegram_sandbox.channel_id, photo=jpeg(60, 40))

    assert caught.value.retry_after == dtm.timedelta(seconds=7)
    assert telegram_sandbox.photos == []


async def test_hang_fault_times_out_the_client_and_delivers_nothing(
    telegram_sandbox: TelegramSandbox, bot: telegram.Bot
) -> None:
    telegram_sandbox.inject("hang", operation="sendPhoto")
    start = time.perf_counter()

    with pytest.raises(TimedOut):
        await bot.send_photo(telegram_sandbox.channel_id, photo=jpeg(60, 40), read_timeout=0.3)

    assert 0.25 < time.perf_counter() - start < 5
    assert telegram_sandbox.photos == []


@pytest.mark.parametrize(
    ("kind", "error"), [("drop_after_upload", NetworkError), ("hang_after_upload", TimedOut)]
)
async def test_fault_after_upload_delivers_the_photo_but_the_client_cannot_know(
    telegram_sandbox: TelegramSandbox, bot: telegram.Bot, kind: str, error: type[TelegramError]
) -> None:
    telegram_sandbox.inject(kind, operation="sendPhoto")

    with pytest.raises(error):
        await bot.send_photo(telegram_sandbox.channel_id, photo=jpeg(60, 40), read_timeout=0.3)

    assert len(telegram_sandbox.photos) == 1
    assert telegram_sandbox.counters["photos_delivered"] == 1


async def test_fault_for_one_operation_leaves_the_others_alone(
    telegram_sandbox: TelegramSandbox, bot: telegram.Bot
) -> None:
    telegram_sandbox.inject("5xx", operation="sendPhoto", times=None)

    assert (await bot.get_me()).id == telegram_sandbox.bot_id
    assert (await bot.get_chat(telegram_sandbox.channel_id)).type == "channel"
    for _ in range(2):
        with pytest.raises(NetworkError):
            await bot.send_photo(telegram_sandbox.channel_id, photo=jpeg(60, 40))

    telegram_sandbox.clear_faults()
    await bot.send_photo(telegram_sandbox.channel_id, photo=jpeg(60, 40))
    assert telegram_sandbox.counters["fault:5xx"] == 2


async def test_latency_delays_every_answer(
    telegram_sandbox: TelegramSandbox, bot: telegram.Bot
) -> None:
    telegram_sandbox.set_latency(0.2)
    start = time.perf_counter()

    await bot.get_me()
    await bot.get_me()

    assert time.perf_counter() - start >= 0.4


async def test_64_concurrent_uploads_all_arrive_without_resets(
    telegram_sandbox: TelegramSandbox, bot: telegram.Bot
) -> None:
    photo = jpeg(320, 240)
    telegram_sandbox.set_latency(0.05)  # keeps the 64 requests in flight together

    messages = await asyncio.gather(
        *(
            bot.send_photo(telegram_sandbox.channel_id, photo=photo, caption=f"#{n}")
            for n in range(64)
        )
    )

    assert sorted(m.message_id for m in messages) == list(range(1, 65))
    assert telegram_sandbox.counters["photos_delivered"] == 64
    assert sorted(p.caption for p in telegram_sandbox.photos) == sorted(f"#{n}" for n in range(64))
    assert telegram_sandbox.counters["connections"] >= 32


async def test_200_simultaneous_connections_are_accepted(
    telegram_sandbox: TelegramSandbox,
) -> None:
    request = (
        f"GET /bot{telegram_sandbox.token}/getMe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    ).encode()

    async def one() -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", telegram_sandbox.port)
        writer.write(request)
        answer = await reader.read()
        writer.close()
        await writer.wait_closed()
        return answer

    answers = await asyncio.gather(*(one() for _ in range(200)))

    assert all(a.startswith(b"HTTP/1.1 200 OK") for a in answers)


async def test_keep_alive_connection_serves_chunked_json_and_query_requests(
    telegram_sandbox: TelegramSandbox,
) -> None:
    token, chat = telegram_sandbox.token, telegram_sandbox.channel_id
    body = f"chat_id={chat}".encode()
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    json_body = json.dumps({"chat_id": chat}).encode()
    requests = [
        f"GET /bot{token}/getChat?chat_id={chat} HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
        (
            f"POST /bot{token}/getchat HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n\r\n"
        ).encode()
        + chunked,
        (
            f"POST /bot{token}/getChat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(json_body)}\r\n\r\n"
        ).encode()
        + json_body,
    ]
    reader, writer = await asyncio.open_connection("127.0.0.1", telegram_sandbox.port)
    try:
        for raw in requests:
            writer.write(raw)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
            answer = json.loads(await reader.readexactly(length))
            assert head.startswith(b"HTTP/1.1 200 OK")
            assert answer["ok"] is True
            assert answer["result"]["username"] == chat.removeprefix("@")
    finally:
        writer.close()
        await writer.wait_closed()
    assert telegram_sandbox.counters["connections"] == 1
    assert telegram_sandbox.counters["getChat"] == 3


async def test_unknown_method_is_not_found(telegram_sandbox: TelegramSandbox) -> None:
    client = telegram.Bot(telegram_sandbox.token, base_url=telegram_sandbox.base_url)
    async with client:
        with pytest.raises(EndPointNotFound, match="sendRocket"):
            await client.do_api_request("sendRocket", api_kwargs={"chat_id": "@x"})


async def test_shutdown_releases_hung_requests_and_leaves_no_task_or_socket() -> None:
    before = asyncio.all_tasks()
    sandbox = TelegramSandbox()
    async with sandbox:
        port = sandbox.port
        idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", port)
        client = telegram.Bot(sandbox.token, base_url=sandbox.base_url)
        await client.initialize()
        sandbox.inject("hang", operation="sendPhoto")
        hung = asyncio.create_task(client.send_photo(sandbox.channel_id, photo=jpeg(20, 20)))
        while sandbox.counters["fault:hang"] == 0:
            await asyncio.sleep(0.01)
        assert sandbox.counters["open_connections"] == 2
    with pytest.raises(NetworkError):
        await asyncio.wait_for(hung, timeout=5)
    assert await asyncio.wait_for(idle_reader.read(), timeout=5) == b""
    idle_writer.close()
    await idle_writer.wait_closed()
    await client.shutdown()

    assert sandbox.counters["open_connections"] == 0
    assert asyncio.all_tasks() - before == {asyncio.current_task()} - before
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


def test_run_in_thread_serves_a_synchronous_caller() -> None:
    sandbox = TelegramSandbox()
    threads_before = set(threading.enumerate())

    with sandbox.run_in_thread():
        start = time.perf_counter()

        async def post() -> int:
            async with telegram.Bot(sandbox.token, base_url=sandbox.base_url) as client:
                message = await client.send_photo(sandbox.channel_id, photo=jpeg(64, 48))
                return message.message_id

        assert asyncio.run(post()) == 1
        assert time.perf_counter() - start < 5
        port = sandbox.port

    assert len(sandbox.photos) == 1
    assert set(threading.enumerate()) <= threads_before
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


async def test_starts_in_under_a_second() -> None:
    start = time.perf_counter()
    async with TelegramSandbox() as sandbox:
        assert time.perf_counter() - start < 1
        assert sandbox.base_url == f"http://127.0.0.1:{sandbox.port}/bot"
