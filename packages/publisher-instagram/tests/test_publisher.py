"""The Instagram publisher against InstagramSandbox, with the real instagrapi client."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import stat
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from crosspost_instagram import InstagramError, InstagramPublisher, InstagramSettings
from crosspost_sandbox.conformance import publish_events
from crosspost_sandbox.instagram import InstagramSandbox

SettingsFactory = Callable[..., InstagramSettings]
PhotoFactory = Callable[..., str]


def received(sandbox: InstagramSandbox) -> Image.Image:
    (post,) = sandbox.posts
    return Image.open(io.BytesIO(post.data))


# -- sessions --------------------------------------------------------------------------------
async def test_first_publish_logs_in_and_saves_the_session_owner_only(
    instagram_sandbox: InstagramSandbox,
    make_settings: SettingsFactory,
    photo: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    settings = make_settings()

    result = await InstagramPublisher(settings).publish(photo, "Morning light #sea")

    assert result.success, result.error
    (post,) = instagram_sandbox.posts
    assert result.post_id == post.media_id
    assert post.caption == "Morning light #sea"
    assert instagram_sandbox.counters["logins"] == 1
    saved = Path(settings.session_file)
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert json.loads(saved.read_text())["authorization_data"]["ds_user_id"] == str(
        instagram_sandbox.user_pk
    )
    assert not [p for p in saved.parent.iterdir() if p != saved]  # no temp file left
    (event,) = publish_events(caplog.records, "instagram")
    assert event["success"] is True
    assert event["post_id"] == post.media_id
    assert event["login"] == "password"
    assert isinstance(event["duration_ms"], int)


async def test_a_second_publisher_reuses_the_saved_session(
    instagram_sandbox: InstagramSandbox, make_settings: SettingsFactory, photo: str
) -> None:
    assert (await InstagramPublisher(make_settings()).publish(photo, "one")).success

    result = await InstagramPublisher(make_settings()).publish(photo, "two")

    assert result.success, result.error
    assert instagram_sandbox.counters["logins"] == 1
    assert instagram_sandbox.counters["password_checks"] == 1
    assert instagram_sandbox.counters["session_checks"] == 1
    assert [p.caption for p in instagram_sandbox.posts] == ["one", "two"]


async def test_a_saved_session_needs_no_password(
    instagram_sandbox: InstagramSandbox, make_settings: SettingsFactory, photo: str
) -> None:
    assert (await InstagramPublisher(make_settings()).publish(photo, "one")).success

    result = await InstagramPublisher(make_settings(password="")).publish(photo, "two")

    assert result.success, result.error
    assert instagram_sandbox.counters["logins"] == 1


async def test_without_session_or_password_the_error_says_what_to_do(
    instagram_sandbox: InstagramSandbox, make_settings: SettingsFactory, photo: str
) -> None:
    result = await InstagramPublisher(make_settings(password="")).publish(photo, "x")

    assert not result.success
    assert "CROSSPOST_INSTAGRAM_PASSWORD is not set" in (result.error or "")
    assert "crosspost login instagram" in (result.error or "")
    assert instagram_sandbox.counters["password_checks"] == 0


async def test_an_expired_session_leads_to_exactly_one_fresh_login(
    instagram_sandbox: InstagramSandbox, make_settings: SettingsFactory, photo: str
) -> None:
    settings = make_settings()
    assert (await InstagramPublisher(settings).publish(photo, "one")).success
    first_session = json.loads(Path(settings.session_file).read_text())["cookies"]["sessionid"]
    instagram_sandbox.expire_sessions()

    result = await InstagramPublisher(settings).publish(photo, "two")

    assert result.success, result.error
    assert instagram_sandbox.counters["logins"] == 2
    assert instagram_sandbox.counters["sessions_rejected"] == 1
    saved = json.loads(Path(settings.session_file).read_text())
    assert saved["cookies"]["sessionid"] != first_session
    assert stat.S_IMODE(Path(settings.session_file).stat().st_mode) == 0o600


async def test_a_world_readable_session_file_is_tightened(
    make_settings: SettingsFactory, photo: str
) -> None:
    settings = make_settings()
    assert (await InstagramPublisher(settings).publish(photo, "one")).success
    os.chmod(settings.session_file, 0o644)

    assert (await InstagramPublisher(settings).publish(photo, "two")).success

    assert stat.S_IMODE(os.stat(settings.session_file).st_mode) == 0o600


async def test_concurrent_publishes_of_one_publisher_share_one_login(
    instagram_sandbox: InstagramSandbox, make_settings: SettingsFactory, photo: str
) -> None:
    publisher = InstagramPublisher(make_settings())

    results = await asyncio.gather(publisher.publish(photo, "a"), publisher.publish(photo, "b"))

    assert all(r.success for r in results), [r.error for r in results]
    assert instagram_sandbox.counters["logins"] == 1
    assert sorted(p.caption or "" for p in instagram_sandbox.posts) == ["a", "b"]


async def test_the_ca_file_wins_over_the_ca_environment_variables(
    instagram_sandbox: InstagramSandbox,
    make_settings: SettingsFactory,
    photo: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stranger = tmp_path / "other-ca.pem"
    stranger.write_text(Path(instagram_sandbox.ca_path).read_text().replace("MII", "MIJ", 1))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(stranger))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(stranger))

    result = await InstagramPublisher(make_settings()).publish(photo, "pinned")

    assert result.success, result.error


# -- the photo and the caption ---------------------------------------------------------------
async def test_a_tall_portrait_arrives_padded_to_four_by_five(
    instagram_sandbox: InstagramSandbox, make_settings: SettingsFactory, make_photo: PhotoFactory
) -> None:
    portrait = make_photo(1080, 1920, (20, 160, 40))
    before = Path(portrait).read_bytes(), os.stat(portrait).st_mtime_ns

    result = await InstagramPublisher(make_settings()).publish(portrait, "tall")

    assert result.success, result.error
    image = received(instagram_sandbox).convert("RGB")
    assert image.width <= 1080
    assert 0.8 <= image.width / image.height <= 0.81
    # White bars left and right, the photo's green in the middle.
    left, right = image.getpixel((2, image.height // 2)), image.getpixel((image.width - 3, 10))
    middle = image.getpixel((image.width // 2, image.height // 2))
    assert min(left) > 235
    assert min(right) > 235
    assert middle[1] > 120
    assert middle[0] < 80
    assert (Path(portrait).read_bytes(), os.stat(portrait).st_mtime_ns) == before


async def test_a_wide_panorama_arrives_within_one_point_nine_one(
    instagram_sandbox: InstagramSandbox, make_settings: SettingsFactory, make_photo: PhotoFactory
) -> None:
    panorama = make_photo(4000, 1000)

    result = await InstagramPublisher(make_settings()).publish(panorama, "wide")

    assert result.success, result.error
    image = received(instagram_sandbox)
    assert image.width <= 1080
    assert 1.85 <= image.width / image.height <= 1.91


async def test_fit_crop_crops_instead_of_padding(
    instagram_sandbox: InstagramSandbox, make_settings: SettingsFactory, make_photo: PhotoFactory
) -> None:
    portrait = make_photo(1080, 1920, (20, 160, 40))

    result = await InstagramPublisher(make_settings(fit="crop")).publish(portrait, "tall")

    assert result.success, result.error
    image = received(instagram_sandbox).convert("RGB")
    assert 0.79 <= image.width / image.height <= 0.81
    assert image.getpixel((2, image.height // 2))[0] < 80  # type: ignore[index]


async def test_photo_location_data_never_reaches_instagram(
    instagram_sandbox: InstagramSandbox, make_settings: SettingsFactory, tmp_path: Path
) -> None:
    source = Image.new("RGB", (1600, 1200), (90, 90, 200))
    exif = Image.Exif()
    exif[0x010F] = "CameraMaker"
    exif[0x8825] = {1: "N", 2: (52.0, 31.0, 12.0)}  # GPS latitude
    path = tmp_path / "gps.jpg"
    source.save(path, "JPEG", exif=exif)

    result = await InstagramPublisher(make_settings()).publish(str(path), "where?")

    assert result.success, result.error
    assert not received(instagram_sandbox).getexif()
    assert b"CameraMaker" not in instagram_sandbox.posts[0].data


async def test_hashtags_beyond_thirty_are_dropped_before_sending(
    instagram_sandbox: InstagramSandbox, make_settings: SettingsFactory, photo: str
) -> None:
    caption = "Tags " + " ".join(f"#tag{i}" for i in range(35))

    result = await InstagramPublisher(make_settings()).publish(photo, caption)

    assert result.success, result.error
    sent = instagram_sandbox.posts[0].caption or ""
    assert sent.split() == ["Tags", *(f"#tag{i}" for i in range(30))]


async def test_an_image_that_cannot_be_read_fails_without_contacting_instagram(
    instagram_sandbox: InstagramSandbox, make_settings: SettingsFactory, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really a jpeg")
    publisher = InstagramPublisher(make_settings())

    result = await publisher.publish(str(broken), "x")

    assert not result.success
    assert "photo" in (result.error or "")
    assert instagram_sandbox.counters["requests"] == 0
    with pytest.raises(ValueError):
        await publisher.validate(str(broken), "x")


# -- failures --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fault", "operation", "words"),
    [
        ("bad_password", "login", "refused the password"),
        ("challenge", "login", "challenge required"),
        ("two_factor", "login", "two-factor code"),
        ("throttle", "login", "Instagram asks to wait; try later"),
        ("please_wait", "login", "Instagram asks to wait; try later"),
        ("throttle", "configure", "Instagram asks to wait; try later"),
    ],
)
async def test_login_and_rate_limit_failures_are_plain_and_prompt(
    instagram_sandbox: InstagramSandbox,
    make_settings: SettingsFactory,
    photo: str,
    fault: str,
    operation: str,
    words: str,
) -> None:
    instagram_sandbox.inject(fault, operation=operation, times=None)
    publisher = InstagramPublisher(make_settings())

    started = time.perf_counter()
    result = await publisher.publish(photo, "caption")
    took = time.perf_counter() - started

    assert not result.success
    assert words in (result.error or "")
    assert "\n" not in (result.error or "")
    assert not result.outcome_unknown
    assert took < 2.0
    assert instagram_sandbox.posts == []


async def test_a_wrong_password_fails_plainly(
    instagram_sandbox: InstagramSandbox, make_settings: SettingsFactory, photo: str
) -> None:
    result = await InstagramPublisher(make_settings(password="wrong")).publish(photo, "x")

    assert not result.success
    assert result.error == (
        f"Instagram refused the password of {instagram_sandbox.username}: check "
        "CROSSPOST_INSTAGRAM_PASSWORD (or log in once with `crosspost login instagram`)"
    )
    assert not Path(make_settings().session_file).exists()


async def test_challenge_and_two_factor_say_to_run_the_login_command(
    instagram_sandbox: InstagramSandbox, make_settings: SettingsFactory, photo: str
) -> None:
    for fault in ("challenge", "two_factor"):
        instagram_sandbox.inject(fault, operation="login")
        result = await InstagramPublisher(make_settings()).publish(photo, "x")
        assert "run `crosspost login instagram`" in (result.error or ""), result.error
    assert instagram_sandbox.counters["challenges_passed"] == 0


async def test_a_refused_configure_is_a_definite_failure(
    instagram_sandbox: InstagramSandbox, make_settings: SettingsFactory, photo: str
) -> None:
    instagram_sandbox.inject("bad_request", operation="configure", message="Media type invalid")

    result = await InstagramPublisher(make_settings()).publish(photo, "x")

    assert not result.success
    assert result.error == "Instagram rejected the post: Media type invalid"
    assert not result.outcome_unknown


async def test_a_rejected_upload_says_so(
    instagram_sandbox: InstagramSandbox, make_settings: SettingsFactory, photo: str
) -> None:
    instagram_sandbox.inject("5xx", operation="upload", status=503)

    result = await InstagramPublisher(make_settings()).publish(photo, "x")

    assert not result.success
    assert result.error == "Instagram rejected the photo upload (HTTP 503); try again later"
    assert not result.outcome_unknown


async def test_a_lost_configure_answer_is_not_retried_and_may_have_posted(
    instagram_sandbox: InstagramSandbox,
    make_settings: SettingsFactory,
    photo: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    instagram_sandbox.inject("drop_after", operation="configure")

    result = await InstagramPublisher(make_settings()).publish(photo, "maybe")

    assert not result.success
    assert result.outcome_unknown
    assert "may exist" in (result.error or "")
    assert instagram_sandbox.counters["configures"] == 1
    assert len(instagram_sandbox.posts) == 1
    configure_requests = [r for r in instagram_sandbox.requests if r.operation == "configure"]
    assert len(configure_requests) == 1
    (event,) = publish_events(caplog.records, "instagram")
    assert event["outcome_unknown"] is True


# -- hangs -----------------------------------------------------------------------------------
async def test_a_hung_instagram_fails_at_the_timeout_and_the_loop_keeps_running(
    instagram_sandbox: InstagramSandbox, make_settings: SettingsFactory, photo: str
) -> None:
    instagram_sandbox.inject("hang", times=None)
    publisher = InstagramPublisher(make_settings(timeout_s=1.0))
    lags: list[float] = []
    ticking = True

    async def ticker() -> None:
        loop = asyncio.get_running_loop()
        while ticking:
            planned = loop.time() + 0.01
            await asyncio.sleep(0.01)
            lags.append(loop.time() - planned)

    threads_before = threading.active_count()
    tick_task = asyncio.create_task(ticker())
    started = time.perf_counter()
    result = await publisher.publish(photo, "x")
    took = time.perf_counter() - started
    ticking = False
    await tick_task

    assert not result.success
    assert result.error is not None
    assert result.error.startswith("timed out after")
    assert 0.9 <= took < 2.5
    assert len(lags) > 40  # the loop ran its timer the whole time
    assert max(lags) < 0.2
    # The worker thread gave up with the publish: its socket was shut at the deadline.
    deadline = time.monotonic() + 3
    while threading.active_count() > threads_before and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert threading.active_count() <= threads_before
    await asyncio.sleep(0.1)
    assert instagram_sandbox.counters["open_connections"] == 0


async def test_a_hang_after_the_post_was_created_reports_it_may_exist(
    instagram_sandbox: InstagramSandbox, make_settings: SettingsFactory, photo: str
) -> None:
    instagram_sandbox.inject("hang_after", operation="configure")

    result = await InstagramPublisher(make_settings(timeout_s=1.0)).publish(photo, "x")

    assert not result.success
    assert result.outcome_unknown
    assert "may exist" in (result.error or "")
    assert len(instagram_sandbox.posts) == 1


CLI_LIKE_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys, time
    from crosspost_instagram import InstagramPublisher, InstagramSettings
    from crosspost_instagram.worker import run_in_daemon_thread
    import threading

    async def main():
        settings = InstagramSettings(
            username=sys.argv[1], password=sys.argv[2], session_file=sys.argv[3],
            proxy=sys.argv[4], ca_file=sys.argv[5], timeout_s=1.0,
        )
        result = await InstagramPublisher(settings).publish(sys.argv[6], "hung")
        # A thread that never ends, as a library stuck in C code would be.
        try:
            await asyncio.wait_for(run_in_daemon_thread(threading.Event().wait), 0.2)
        except asyncio.TimeoutError:
            pass
        print(repr(result.error), flush=True)
        print(time.monotonic(), flush=True)

    asyncio.run(main())
    """
)


async def test_a_cli_like_process_exits_promptly_after_a_hung_publish(
    instagram_sandbox: InstagramSandbox, make_settings: SettingsFactory, photo: str
) -> None:
    instagram_sandbox.inject("hang", times=None)
    settings = make_settings()
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CLI_LIKE_SCRIPT,
        settings.username, settings.password, settings.session_file,
        str(settings.proxy), str(settings.ca_file), photo,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(30):
        out, err = await process.communicate()
    ended = time.monotonic()

    assert process.returncode == 0, err.decode()
    error_line, printed_at = out.decode().splitlines()[-2:]
    assert "timed out after" in error_line
    assert ended - float(printed_at) < 3.0
    assert time.perf_counter() - started < 15


# -- check and logs --------------------------------------------------------------------------
async def test_check_logs_in_and_says_as_whom(
    instagram_sandbox: InstagramSandbox, make_settings: SettingsFactory
) -> None:
    publisher = InstagramPublisher(make_settings())

    first = await publisher.check()
    second = await publisher.check()

    assert first.startswith(f"logged in as {instagram_sandbox.username} (password login")
    assert second.startswith(f"logged in as {instagram_sandbox.username} (the saved session")
    assert instagram_sandbox.counters["logins"] == 1
    assert instagram_sandbox.posts == []


async def test_check_with_a_wrong_password_raises_a_plain_error(
    instagram_sandbox: InstagramSandbox, make_settings: SettingsFactory
) -> None:
    with pytest.raises(InstagramError, match="refused the password") as caught:
        await InstagramPublisher(make_settings(password="wrong")).check()
    assert caught.value.__cause__ is None


async def test_neither_password_nor_session_reaches_any_debug_log(
    instagram_sandbox: InstagramSandbox,
    make_settings: SettingsFactory,
    photo: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("crosspost_instagram", "urllib3", "instagrapi", "private_request"):
        caplog.set_level(logging.DEBUG, logger=name)
    settings = make_settings()

    assert (await InstagramPublisher(settings).publish(photo, "one")).success
    instagram_sandbox.expire_sessions()
    assert (await InstagramPublisher(settings).publish(photo, "two")).success
    instagram_sandbox.inject("bad_request", operation="configure")
    assert not (await InstagramPublisher(settings).publish(photo, "three")).success

    texts = [r.getMessage() for r in caplog.records] + [r.exc_text or "" for r in caplog.records]
    assert any("private_request" in t for t in texts)  # instagrapi's own debug lines were seen
    saved = json.loads(Path(settings.session_file).read_text())
    secrets = [
        *instagram_sandbox.issued_secrets,
        saved["cookies"]["sessionid"],
        saved["usdid"]["private_key"].splitlines()[1],
    ]
    assert len(secrets) >= 6
    leaks = [(s[:4], t[:120]) for s in secrets for t in texts if s in t]
    assert not leaks


async def test_an_unwritable_session_file_does_not_stop_the_publish(
    instagram_sandbox: InstagramSandbox,
    make_settings: SettingsFactory,
    photo: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    settings = make_settings(session_file=str(blocker / "session.json"))

    result = await InstagramPublisher(settings).publish(photo, "still posted")

    assert result.success, result.error
    assert "instagram_session_not_saved" in caplog.text
    assert len(instagram_sandbox.posts) == 1
