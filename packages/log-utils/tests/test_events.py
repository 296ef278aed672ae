from __future__ import annotations

import asyncio
import json
import logging
import threading
import uuid
from datetime import UTC, datetime

import pytest

from crosspost_logs import (
    REDACTED,
    correlation_scope,
    elapsed_ms,
    get_correlation_id,
    log_json,
    log_publisher_publish,
    now_monotonic,
)

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


@pytest.fixture
def logger(caplog: pytest.LogCaptureFixture) -> logging.Logger:
    name = f"crosspost.test.{uuid.uuid4().hex}"
    caplog.set_level(logging.DEBUG, logger=name)
    return logging.getLogger(name)


def _events(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    return [
        json.loads(r.getMessage())
        for r in caplog.records
        if getattr(r, "crosspost_fields", None) is not None
    ]


def test_log_json_logs_one_json_object_with_timestamp_and_fields(
    logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    log_json(logger, logging.WARNING, "cache_miss", key="abc", size=3, ratio=0.5, tags=["a"])
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    event = json.loads(record.getMessage())
    assert event == record.crosspost_fields  # type: ignore[attr-defined]
    assert event["message"] == "cache_miss"
    assert event["correlation_id"] is None
    assert (event["key"], event["size"], event["ratio"], event["tags"]) == ("abc", 3, 0.5, ["a"])
    stamp = datetime.fromisoformat(str(event["timestamp"]))
    assert stamp.utcoffset() is not None
    assert stamp.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert abs((datetime.now(UTC) - stamp).total_seconds()) < 60
    assert record.funcName == "test_log_json_logs_one_json_object_with_timestamp_and_fields"


def test_log_json_sanitizes_every_string_including_nested(
    logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    log_json(
        logger,
        logging.INFO,
        f"calling https://api.telegram.org/bot{TOKEN}/sendPhoto",
        url=f"https://api.telegram.org/bot{TOKEN}/getMe",
        nested={"headers": {"Authorization": f"Bearer {TOKEN}"}, "list": [f"x {TOKEN}"]},
    )
    (record,) = caplog.records
    assert TOKEN not in record.getMessage()
    event = _events(caplog)[0]
    assert event["url"] == f"https://api.telegram.org/bot{REDACTED}/getMe"
    assert event["nested"] == {"headers": {"Authorization": REDACTED}, "list": [f"x {REDACTED}"]}


def test_log_json_redacts_values_under_secret_keys_whatever_they_look_like(
    logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    log_json(
        logger,
        logging.INFO,
        "login",
        password="plain",
        headers={"Cookie": "a=b", "Accept": "*/*"},
        session={"sessionid": "1:2", "user": "me"},
    )
    event = _events(caplog)[0]
    assert event["password"] == REDACTED
    assert event["headers"] == {"Cookie": REDACTED, "Accept": "*/*"}
    assert event["session"] == {"sessionid": REDACTED, "user": "me"}


def test_log_json_turns_unserializable_values_into_strings(
    logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    log_json(logger, logging.INFO, "odd", error=ValueError("bad"), nan=float("nan"))
    event = _events(caplog)[0]
    assert event["error"] == "bad"
    assert event["nan"] == "nan"


def test_log_json_skips_work_for_disabled_levels(
    logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    logger.setLevel(logging.ERROR)
    log_json(logger, logging.INFO, "quiet")
    assert caplog.records == []


def test_publisher_publish_success_is_info_with_fields_and_duration(
    logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    start = now_monotonic() - 0.25
    with correlation_scope("run-1"):
        duration = log_publisher_publish(logger, "telegram", start, True, attempts=2, post_id="42")
    (record,) = caplog.records
    assert record.levelno == logging.INFO
    event = json.loads(record.getMessage())
    assert event["message"] == "publisher_publish"
    assert event["platform"] == "telegram"
    assert event["success"] is True
    assert event["error"] is None
    assert event["correlation_id"] == "run-1"
    assert event["attempts"] == 2
    assert event["post_id"] == "42"
    assert event["duration_ms"] == duration
    assert isinstance(duration, int)
    assert 250 <= duration < 250 + 5000


def test_publisher_publish_failure_is_error_and_error_is_sanitized(
    logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    log_publisher_publish(
        logger, "email", now_monotonic(), False, error=f"auth failed at smtp://me:{TOKEN}@host/"
    )
    (record,) = caplog.records
    assert record.levelno == logging.ERROR
    event = json.loads(record.getMessage())
    assert event["success"] is False
    assert event["error"] == f"auth failed at smtp://{REDACTED}@host/"
    assert 0 <= event["duration_ms"] < 5000  # type: ignore[operator]


def test_elapsed_ms_counts_whole_milliseconds_from_start() -> None:
    start = now_monotonic()
    assert elapsed_ms(start) >= 0
    assert 1000 <= elapsed_ms(start - 1.0) < 1000 + 5000
    assert elapsed_ms(now_monotonic() + 10) == 0


def test_correlation_scope_binds_and_restores() -> None:
    assert get_correlation_id() is None
    with correlation_scope() as outer:
        assert len(outer) == 32
        int(outer, 16)
        assert get_correlation_id() == outer
        with correlation_scope("inner") as inner:
            assert inner == "inner"
            assert get_correlation_id() == "inner"
        assert get_correlation_id() == outer
    assert get_correlation_id() is None


async def test_correlation_id_follows_work_into_to_thread(
    logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    def work() -> tuple[str | None, int]:
        log_json(logger, logging.INFO, "in_thread")
        return get_correlation_id(), threading.get_ident()

    with correlation_scope("threaded-run"):
        seen, ident = await asyncio.to_thread(work)
    assert ident != threading.get_ident()
    assert seen == "threaded-run"
    assert _events(caplog)[0]["correlation_id"] == "threaded-run"


async def test_concurrent_tasks_keep_their_own_correlation_ids(
    logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    both_bound = asyncio.Barrier(2)

    async def run(name: str) -> None:
        with correlation_scope(name):
            await both_bound.wait()
            await asyncio.to_thread(log_json, logger, logging.INFO, "step", who=name)

    await asyncio.gather(run("a"), run("b"))
    events = _events(caplog)
    assert sorted((e["who"], e["correlation_id"]) for e in events) == [("a", "a"), ("b", "b")]  # type: ignore[type-var]
