"""The Telegram publisher against the loopback Bot API server (TelegramSandbox)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
import warnings
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from crosspost_images import ImageError, prepare_stats
from crosspost_orchestrator import CrosspostError, PublishResult
from crosspost_sandbox.conformance import (
    capture_records,
    image_fingerprint,
    make_test_image,
    publish_events,
)
from crosspost_sandbox.telegram import TelegramSandbox
from crosspost_telegram import TelegramPublisher

pytestmark = pytest.mark.timeout(60)


def solid_jpeg(path: Path, width: int, height: int) -> str:
    Image.new("RGB", (width, height), (30, 120, 200)).save(path, "JPEG", quality=85)
    return str(path)


# -- success -----------------------------------------------------------------------------
async def test_publish_posts_one_photo_with_its_caption_to_the_channel(
    telegram_sandbox: TelegramSandbox,
    make_publisher: Any,
    photo: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    publisher = make_publisher()
    before = image_fingerprint(photo)
    caplog.set_level(logging.INFO)

    result = await publisher.publish(photo, "Sunset over the harbour #sea")

    assert result.success, result.error
    assert result.attempts == 1
    assert not result.outcome_unknown
    (received,) = telegram_sandbox.photos
    assert received.chat_id == telegram_sandbox.channel_id
    assert received.caption == "Sunset over the harbour #sea"
    assert result.post_id == str(received.message_id)
    assert received.width <= 1280
    assert abs(received.width / received.height - 1600 / 1200) <= 0.01 * 1600 / 1200
    assert received.format == "JPEG"
    assert received.filename == "photo.jpg"
    assert image_fingerprint(photo) == before
    (event,) = publish_events(caplog.records, "telegram")
    assert event["platform"] == "telegram"
    assert event["success"] is True
    assert event["error"] is None
    assert event["attempts"] == 1
    assert event["post_id"] == result.post_id
    assert isinstance(event["duration_ms"], int)


async def test_photo_is_sent_without_exif_and_the_original_keeps_its_own(
    telegram_sandbox: TelegramSandbox, make_publisher: Any, tmp_path: Path
) -> None:
    original = tmp_path / "gps.jpg"
    exif = Image.Exif()
    exif[0x010F] = "CameraMaker"
    exif.get_ifd(0x8825)[2] = (48.0, 51.0, 24.0)  # GPS latitude
    Image.new("RGB", (2000, 1000), (10, 200, 10)).save(original, "JPEG", exif=exif)

    result = await make_publisher().publish(str(original), "no location please")

    assert result.success, result.error
    with Image.open(io.BytesIO(telegram_sandbox.photos[0].data)) as sent:
        assert not sent.getexif()
    with Image.open(original) as kept:
        assert kept.getexif()[0x010F] == "CameraMaker"


async def test_many_concurrent_publishes_share_one_bot(
    telegram_sandbox: TelegramSandbox, make_publisher: Any, photo: str
) -> None:
    publisher = make_publisher()

    results = await asyncio.gather(*(publisher.publish(photo, f"#{n}") for n in range(24)))

    assert all(r.success for r in results), [r.error for r in results if not r.success]
    assert sorted(int(r.post_id or 0) for r in results) == list(range(1, 25))
    assert telegram_sandbox.counters["photos_delivered"] == 24
    assert telegram_sandbox.counters["getMe"] == 0  # no round trip before the first post


async def test_sixteen_channels_publish_the_same_image_concurrently_resizing_it_once(
    tmp_path: Path, make_publisher: Any
) -> None:
    channels = [f"@channel_{n:02d}" for n in range(16)]
    image = make_test_image(tmp_path / "shared.jpg", 3000, 2000, seed=16)
    async with TelegramSandbox(chats=channels) as sandbox:
        publishers: list[TelegramPublisher] = [
            make_publisher(sandbox, channel_id=channel) for channel in channels
        ]
        computed_before = prepare_stats()["computed"]
        start = time.perf_counter()

        results = await asyncio.gather(
            *(p.publish(image, "one image, sixteen channels") for p in publishers)
        )

        wall_s = time.perf_counter() - start
    assert all(r.success for r in results), [r.error for r in results if not r.success]
    assert prepare_stats()["computed"] - computed_before == 1
    assert sorted(p.chat_id for p in sandbox.photos) == channels
    assert {p.data for p in sandbox.photos} == {sandbox.photos[0].data}
    assert wall_s < 20


# -- flood control -----------------------------------------------------------------------
async def test_flood_control_waits_the_time_asked_then_succeeds(
    telegram_sandbox: TelegramSandbox, make_publisher: Any, photo: str
) -> None:
    publisher = make_publisher()
    telegram_sandbox.inject("flood", operation="sendPhoto", retry_after=1)
    start = time.perf_counter()

    result = await publisher.publish(photo, "after the flood")

    assert result.success, result.error
    assert result.attempts == 2
    assert time.perf_counter() - start >= 1.0
    assert len(telegram_sandbox.photos) == 1


async def test_flood_control_works_with_retry_after_as_plain_seconds(
    telegram_sandbox: TelegramSandbox,
    make_publisher: Any,
    photo: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Without PTB_TIMEDELTA (what a user gets by default) retry_after is an int and the
    # library warns that this will change; the publisher handles both forms.
    monkeypatch.delenv("PTB_TIMEDELTA")
    publisher = make_publisher()
    telegram_sandbox.inject("flood", operation="sendPhoto", retry_after=1)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        result = await publisher.publish(photo, "int retry_after")

    assert result.success, result.error
    assert result.attempts == 2


async def test_flood_wait_above_max_retry_after_fails_at_once_saying_how_long(
    telegram_sandbox: TelegramSandbox, make_publisher: Any, photo: str
) -> None:
    publisher = make_publisher(max_retry_after_s=10)
    telegram_sandbox.inject("flood", operation="sendPhoto", retry_after=45)
    start = time.perf_counter()

    result = await publisher.publish(photo, "too long a wait")

    assert not result.success
    assert "45 s" in (result.error or "")
    assert "max_retry_after_s" in (result.error or "")
    assert result.attempts == 1
    assert time.perf_counter() - start < 5
    assert telegram_sandbox.photos == []


async def test_flood_wait_beyond_the_publish_timeout_fails_at_once(
    telegram_sandbox: TelegramSandbox, make_publisher: Any, photo: str
) -> None:
    publisher = make_publisher(timeout_s=5.0)
    telegram_sandbox.inject("flood", operation="sendPhoto", retry_after=20)
    start = time.perf_counter()

    result = await publisher.publish(photo, "no time for that")

    assert not result.success
    assert "20 s" in (result.error or "")
    assert "timeout_s" in (result.error or "")
    assert time.perf_counter() - start < 4


# -- final failures ----------------------------------------------------------------------
async def test_unknown_chat_is_a_final_failure_after_one_attempt(
    telegram_sandbox: TelegramSandbox, make_publisher: Any, photo: str
) -> None:
    result = await make_publisher(channel_id="@no_such_channel").publish(photo, "hello?")

    assert not result.success
    assert result.attempts == 1
    assert result.error is not None
    assert result.error.startswith("chat not found")
    assert "@no_such_channel" in result.error
    assert telegram_sandbox.counters["sendPhoto"] == 1


async def test_wrong_token_is_a_final_failure_after_one_attempt(
    telegram_sandbox: TelegramSandbox, make_publisher: Any, photo: str
) -> None:
    wrong = "1234567890:AAwrongwrongwrongwrongwrongwrongwrong"

    result = await make_publisher(bot_token=wrong).publish(photo, "who am I")

    assert not result.success
    assert result.attempts == 1
    assert result.error == (
        "the bot token was rejected by Telegram: check CROSSPOST_TELEGRAM_BOT_TOKEN"
    )
    assert telegram_sandbox.counters["status:401"] == 1


async def test_bot_removed_from_the_channel_is_a_final_failure(
    telegram_sandbox: TelegramSandbox, make_publisher: Any, photo: str
) -> None:
    telegram_sandbox.inject("forbidden", operation="sendPhoto", times=None)

    result = await make_publisher().publish(photo, "anyone?")

    assert not result.success
    assert result.attempts == 1
    assert "the bot is not a member of the channel" in (result.error or "")


# -- retries and the unknown outcome -----------------------------------------------------
async def test_connection_refused_before_the_upload_is_retried_with_backoff(
    telegram_sandbox: TelegramSandbox, make_publisher: Any, photo: str, forwarder: Any
) -> None:
    # Nothing listens on the forwarder's port until the first attempt has failed.
    publisher = make_publisher(api_base_url=f"http://127.0.0.1:{forwarder.port}/bot")
    first_failure = asyncio.Event()

    class Watch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "telegram_attempt_failed" in record.getMessage():
                first_failure.set()

    watch = Watch()
    logging.getLogger("crosspost_telegram").addHandler(watch)
    try:
        task = asyncio.create_task(publisher.publish(photo, "second time lucky"))
        await asyncio.wait_for(first_failure.wait(), timeout=10)
        await forwarder.start()
        result = await task
    finally:
        logging.getLogger("crosspost_telegram").removeHandler(watch)

    assert result.success, result.error
    assert result.attempts == 2
    assert len(telegram_sandbox.photos) == 1


async def test_unreachable_api_fails_after_max_attempts_saying_so(
    make_publisher: Any, photo: str, forwarder: Any
) -> None:
    publisher = make_publisher(
        api_base_url=f"http://127.0.0.1:{forwarder.port}/bot", max_attempts=2
    )

    result = await publisher.publish(photo, "nobody home")

    assert not result.success
    assert not result.outcome_unknown
    assert result.attempts == 2
    assert f"could not connect to 127.0.0.1:{forwarder.port}" in (result.error or "")
    assert "gave up after 2 attempts" in (result.error or "")


async def test_server_error_is_retried(
    telegram_sandbox: TelegramSandbox, make_publisher: Any, photo: str
) -> None:
    telegram_sandbox.inject("5xx", operation="sendPhoto", status=502)

    result = await make_publisher().publish(photo, "bad gateway once")

    assert result.success, result.error
    assert result.attempts == 2
    assert len(telegram_sandbox.photos) == 1


@pytest.mark.parametrize("fault", ["hang_after_upload", "drop_after_upload"])
async def test_no_answer_after_the_upload_is_outcome_unknown_and_never_retried(
    telegram_sandbox: TelegramSandbox, make_publisher: Any, photo: str, fault: str
) -> None:
    telegram_sandbox.inject(fault, operation="sendPhoto", times=None)
    publisher = make_publisher(read_timeout_s=0.5)

    result = await publisher.publish(photo, "did it arrive?")

    assert not result.success
    assert result.outcome_unknown
    assert result.status == "unknown"
    assert result.attempts == 1
    assert "may have been posted" in (result.error or "")
    # It was delivered, exactly once: a blind retry would have posted it twice.
    assert len(telegram_sandbox.photos) == 1


# -- limits ------------------------------------------------------------------------------
async def test_long_caption_arrives_cut_at_a_word_boundary_with_an_ellipsis(
    telegram_sandbox: TelegramSandbox, make_publisher: Any, photo: str
) -> None:
    words = ("harbour", "sunset", "gulls", "over", "the", "water")
    caption = " ".join(words[n % len(words)] for n in range(300))[:1500]
    assert len(caption) == 1500

    result = await make_publisher().publish(photo, caption)

    assert result.success, result.error
    sent = telegram_sandbox.photos[0].caption
    assert len(sent) <= 1024
    assert sent.endswith("…")
    assert caption.startswith(sent[:-1])
    assert caption[len(sent) - 1] == " "  # the cut fell between two words


async def test_image_with_sides_beyond_20_to_1_is_refused_before_any_request(
    telegram_sandbox: TelegramSandbox, make_publisher: Any, tmp_path: Path
) -> None:
    banner = solid_jpeg(tmp_path / "banner.jpg", 12000, 300)
    publisher = make_publisher()

    with pytest.raises(ImageError, match="40:1"):
        await publisher.validate(banner, "too wide")
    result = await publisher.publish(banner, "too wide")

    assert not result.success
    assert result.attempts == 0
    assert "40:1" in (result.error or "")
    assert "at most 20:1" in (result.error or "")
    assert telegram_sandbox.counters["requests"] == 0


async def test_huge_square_image_arrives_within_telegram_limits(
    telegram_sandbox: TelegramSandbox, make_publisher: Any, tmp_path: Path
) -> None:
    big = solid_jpeg(tmp_path / "big.jpg", 9000, 9000)

    result = await make_publisher().publish(big, "big")

    assert result.success, result.error
    received = telegram_sandbox.photos[0]
    assert received.width <= 1280
    assert received.width + received.height <= 10000
    assert received.width == received.height
    assert received.size_bytes <= 10 * 2**20


# -- logs --------------------------------------------------------------------------------
async def test_bot_token_appears_in_no_log_line_at_debug(
    make_publisher: Any, photo: str, caplog: pytest.LogCaptureFixture
) -> None:
    # A token without the usual shape: only its registration can redact it.
    token = "sandbox-secret-token-without-the-usual-shape"
    async with TelegramSandbox(token=token) as sandbox:
        with capture_records(ignored=()) as records:
            caplog.set_level(logging.DEBUG)
            publisher = make_publisher(sandbox)
            await publisher.check()
            results = [await publisher.publish(photo, "logged")]
            sandbox.inject("flood", operation="sendPhoto", retry_after=1)
            results.append(await publisher.publish(photo, "flooded"))
            results.append(await make_publisher(sandbox, channel_id="@nowhere").publish(photo, "x"))
            await publisher.aclose()

    assert all(r.success for r in results[:2])
    assert not results[2].success
    httpx_lines = [r.getMessage() for r in records if r.name == "httpx"]
    assert httpx_lines, "httpx logged no request: the check would prove nothing"
    assert all("/bot[REDACTED]/" in line for line in httpx_lines)
    assert any(r.name.startswith("telegram") for r in records)
    assert token not in caplog.text
    for record in records:
        assert token not in record.getMessage(), record.name
    for result in results:
        assert token not in (result.error or "")


# -- check, preview, settings ------------------------------------------------------------
async def test_check_names_the_bot_and_the_channel_it_can_post_to(
    telegram_sandbox: TelegramSandbox, make_publisher: Any
) -> None:
    description = await make_publisher().check()

    assert description == (
        "bot @crosspost_sandbox_bot can post to @crosspost_sandbox (crosspost_sandbox (sandbox))"
    )
    assert telegram_sandbox.counters["sendPhoto"] == 0


async def test_check_fails_in_plain_words_when_the_bot_may_not_post(
    telegram_sandbox: TelegramSandbox, make_publisher: Any
) -> None:
    telegram_sandbox.add_chat("@read_only", bot_can_post=False)

    with pytest.raises(CrosspostError, match="may not post there: make it an administrator"):
        await make_publisher(channel_id="@read_only").check()
    with pytest.raises(CrosspostError, match="chat not found"):
        await make_publisher(channel_id="@missing").check()
    with pytest.raises(CrosspostError, match="bot token was rejected") as caught:
        await make_publisher(bot_token="42:nope").check()
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


async def test_preview_reports_caption_and_rendition_without_contacting_telegram(
    telegram_sandbox: TelegramSandbox, make_publisher: Any, photo: str
) -> None:
    preview = await make_publisher(max_width=800).preview(photo, "  a caption  ")

    assert preview["caption"] == "a caption"
    assert (preview["image_width"], preview["image_height"]) == (800, 600)
    assert preview["image_format"] == "JPEG"
    assert preview["channel"] == telegram_sandbox.channel_id
    assert telegram_sandbox.counters["requests"] == 0


async def test_aclose_closes_every_connection(
    telegram_sandbox: TelegramSandbox, make_publisher: Any, photo: str
) -> None:
    publisher = make_publisher()
    results = await asyncio.gather(*(publisher.publish(photo, "c") for _ in range(4)))
    assert all(r.success for r in results)
    assert telegram_sandbox.counters["open_connections"] >= 1

    await publisher.aclose()

    deadline = time.perf_counter() + 5
    while telegram_sandbox.counters["open_connections"] and time.perf_counter() < deadline:
        await asyncio.sleep(0.01)  # the sandbox offers no "connection closed" event
    assert telegram_sandbox.counters["open_connections"] == 0
    # Closed is not broken: the next publish builds a new client.
    assert (await publisher.publish(photo, "again")).success


async def test_publish_result_is_logged_once_as_json(
    make_publisher: Any, photo: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)

    result: PublishResult = await make_publisher(channel_id="@gone").publish(photo, "x")

    (record,) = [r for r in caplog.records if "publisher_publish" in r.getMessage()]
    event = json.loads(record.getMessage())
    assert record.levelno == logging.ERROR
    assert event["success"] is False
    assert event["error"] == result.error
    assert event["attempts"] == 1
    assert event["post_id"] is None
