from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest

from crosspost_logs import (
    REDACTED,
    RedactingFilter,
    correlation_scope,
    log_json,
    log_publisher_publish,
    now_monotonic,
    register_secret,
    setup_logging,
)


def _json_lines(text: str) -> list[dict[str, object]]:
    lines = text.splitlines()
    assert lines, "nothing was logged"
    return [json.loads(line) for line in lines]


def _our_handlers() -> list[logging.Handler]:
    return [h for h in logging.getLogger().handlers if getattr(h, "_crosspost_logs_handler", False)]


def test_httpx_record_with_bot_token_url_is_redacted_in_output(
    stream: io.StringIO, bot_token: str
) -> None:
    setup_logging(logging.INFO, json=True, stream=stream)
    logging.getLogger("httpx").info(
        'HTTP Request: %s %s "%s"',
        "POST",
        f"https://api.telegram.org/bot{bot_token}/sendPhoto",
        "HTTP/1.1 200 OK",
    )
    output = stream.getvalue()
    assert bot_token not in output
    (event,) = _json_lines(output)
    assert event["logger"] == "httpx"
    assert event["level"] == "INFO"
    assert event["message"] == (
        f'HTTP Request: POST https://api.telegram.org/bot{REDACTED}/sendPhoto "HTTP/1.1 200 OK"'
    )
    assert event["correlation_id"] is None
    assert "timestamp" in event


@pytest.mark.parametrize("name", ["telegram.ext.Application", "instagrapi", "aiosmtplib"])
@pytest.mark.parametrize("as_json", [True, False])
def test_third_party_records_are_redacted_in_json_and_text_mode(
    stream: io.StringIO, unique_secret: str, bot_token: str, name: str, as_json: bool
) -> None:
    register_secret(unique_secret)
    setup_logging(json=as_json, stream=stream)
    logging.getLogger(name).warning(
        "login with %s, cookie sessionid=abc%%3A1; token %s", unique_secret, bot_token
    )
    output = stream.getvalue()
    assert unique_secret not in output
    assert bot_token not in output
    assert "sessionid=abc" not in output
    assert REDACTED in output
    if as_json:
        assert _json_lines(output)[0]["logger"] == name


def test_exception_tracebacks_are_redacted(stream: io.StringIO, unique_secret: str) -> None:
    register_secret(unique_secret)
    setup_logging(stream=stream)
    try:
        raise ConnectionError(f"server refused password {unique_secret}")
    except ConnectionError:
        logging.getLogger("aiosmtplib").exception("send failed")
    output = stream.getvalue()
    assert unique_secret not in output
    (event,) = _json_lines(output)
    assert "ConnectionError" in str(event["exception"])


def test_own_events_pass_through_unchanged_and_foreign_ones_become_json(
    stream: io.StringIO,
) -> None:
    setup_logging(stream=stream)
    logger = logging.getLogger("crosspost.test")
    with correlation_scope("run-7"):
        log_publisher_publish(logger, "email", now_monotonic(), True, post_id="<id@x>")
        logging.getLogger("instagrapi").info("plain text %d", 5)
    own, foreign = stream.getvalue().splitlines()
    assert json.loads(own)["message"] == "publisher_publish"
    assert json.loads(own)["correlation_id"] == "run-7"
    assert set(json.loads(foreign)) == {"timestamp", "level", "logger", "message", "correlation_id"}
    assert json.loads(foreign)["message"] == "plain text 5"
    assert json.loads(foreign)["correlation_id"] == "run-7"


def test_every_line_is_valid_json_for_awkward_messages(stream: io.StringIO) -> None:
    setup_logging(logging.DEBUG, stream=stream)
    awkward = [
        'quote " and \\ backslash',
        "multi\nline",
        "emoji \U0001f4f8",
        "nul \x00",
        "{not json",
    ]
    for text in awkward:
        logging.getLogger("httpx").debug(text)
        log_json(logging.getLogger("crosspost.t"), logging.INFO, text, caption=text)
    events = _json_lines(stream.getvalue())
    assert len(events) == 2 * len(awkward)
    assert [e["message"] for e in events] == [t for t in awkward for _ in range(2)]


def test_setup_is_idempotent(stream: io.StringIO, tmp_path: Path) -> None:
    root = logging.getLogger()
    before = len(root.handlers)
    setup_logging(stream=stream, file=tmp_path / "log.jsonl")
    setup_logging(stream=stream, file=tmp_path / "log.jsonl")
    assert len(root.handlers) == before + 2
    assert len(_our_handlers()) == 2
    assert all(any(isinstance(f, RedactingFilter) for f in h.filters) for h in _our_handlers())
    logging.getLogger("httpx").warning("once")
    assert len(stream.getvalue().splitlines()) == 1


def test_setup_again_replaces_level_and_format(stream: io.StringIO) -> None:
    setup_logging(logging.WARNING, json=True, stream=stream)
    setup_logging(logging.DEBUG, json=False, stream=stream)
    logging.getLogger("telegram").debug("text now")
    (line,) = stream.getvalue().splitlines()
    assert line.endswith("DEBUG telegram: text now")


def test_file_handler_appends_json_lines(tmp_path: Path, bot_token: str) -> None:
    path = tmp_path / "logs" / "crosspost.jsonl"
    path.parent.mkdir()
    path.write_text('{"earlier": true}\n', encoding="utf-8")
    setup_logging(json=False, stream=io.StringIO(), file=path)
    logging.getLogger("httpx").info("GET https://api.telegram.org/bot%s/getMe", bot_token)
    log_json(logging.getLogger("crosspost.t"), logging.INFO, "done", n=1)
    setup_logging(json=False, stream=io.StringIO(), file=path)  # closes and reopens the file
    logging.getLogger("instagrapi").error("second run")
    setup_logging(stream=io.StringIO())  # closes the file handler so the content is flushed
    text = path.read_text(encoding="utf-8")
    assert bot_token not in text
    events = _json_lines(text)
    assert [e.get("message") for e in events] == [
        None,
        f"GET https://api.telegram.org/bot{REDACTED}/getMe",
        "done",
        "second run",
    ]


def test_setup_adds_the_filter_to_handlers_already_on_the_root_logger(
    caplog: pytest.LogCaptureFixture, bot_token: str
) -> None:
    setup_logging(stream=io.StringIO())
    caplog.set_level(logging.INFO)
    logging.getLogger("httpx").info("https://api.telegram.org/bot%s/getMe", bot_token)
    assert bot_token not in caplog.text
    assert REDACTED in caplog.records[0].getMessage()


def test_console_false_logs_to_the_file_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "only.jsonl"
    setup_logging(file=path, console=False)
    log_json(logging.getLogger("crosspost.t"), logging.INFO, "quiet", n=2)
    setup_logging(console=False)  # closes the file handler so the content is flushed
    assert len(_our_handlers()) == 0
    assert capsys.readouterr().err == ""
    assert [e["message"] for e in _json_lines(path.read_text(encoding="utf-8"))] == ["quiet"]
