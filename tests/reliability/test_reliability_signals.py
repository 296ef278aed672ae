"""Crashes and Ctrl-C of the real `crosspost publish` process.

A platform "still in flight" is one whose sandbox received the request and holds it without
answering (a `hang` fault on the request that creates the post), so the process can be
killed at a known point without sleeping and hoping.

The one window where a post can be duplicated: the platform accepted the post, and the
process died before the ledger recorded it. The orchestrator writes a `started` row just
before each platform's request and the result as soon as the answer arrives, so the window
is the answer's trip back plus one SQLite write (measured below on a healthy run). A row
still `started` after a crash marks exactly those platforms that may have the post; the next
run sends them again. `test_the_one_duplicate_window_is_the_unanswered_accepted_post` pins it.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

PLATFORMS = ("email", "telegram", "instagram")


def _iso(moment: str) -> float:
    return datetime.fromisoformat(moment.replace("Z", "+00:00")).timestamp()


def _fault_count(sandboxes: Any, platform: str) -> int:
    if platform == "telegram":
        return int(sandboxes.telegram.counters["fault:hang"])
    server = sandboxes.smtp if platform == "email" else sandboxes.instagram
    return int(server.counters["faults"])


def _hold(sandboxes: Any, *platforms: str) -> Callable[[], bool]:
    """Make each platform's next post request arrive and never be answered (nor accepted);
    returns a check: has every one of them been held yet?"""
    before = {p: _fault_count(sandboxes, p) for p in platforms}
    for platform in platforms:
        if platform == "telegram":
            sandboxes.telegram.inject("hang", operation="sendPhoto")
        elif platform == "email":
            sandboxes.smtp.inject("hang", operation="data")
        else:
            sandboxes.instagram.inject("hang", operation="configure")
    return lambda: all(_fault_count(sandboxes, p) > before[p] for p in platforms)


def _kill_when(deployment: Any, helpers: Any, ready: Any, what: str) -> Any:
    process = deployment.start("publish")
    try:
        helpers.wait_for(ready, what=what)
    finally:
        helpers.kill_hard(process)
        run = deployment.finish(process, 0.0)
    assert run.status == -signal.SIGKILL, run.describe()
    return run


def test_sigkill_before_any_platform_finished_then_the_rerun_posts_each_once(
    deployment: Any, sandboxes: Any, helpers: Any
) -> None:
    deployment.add_photo("night")
    held = _hold(sandboxes, *PLATFORMS)

    def all_in_flight() -> bool:
        rows = deployment.rows()
        return held() and all(
            rows.get(p) is not None and rows[p].status == "started" for p in PLATFORMS
        )

    _kill_when(deployment, helpers, all_in_flight, "every platform in flight")
    assert deployment.integrity() == "ok"
    assert {p: r.status for p, r in deployment.rows().items()} == dict.fromkeys(
        PLATFORMS, "started"
    )
    assert deployment.posts("night") == dict.fromkeys(PLATFORMS, 0)
    assert deployment.queued() == ["night.jpg", "night.txt"]

    sandboxes.reset()
    rerun = deployment.run("publish", subprocess_run=True)
    assert rerun.status == 0, rerun.describe()
    assert sorted(rerun.payload["publish_results"]) == sorted(PLATFORMS)
    assert rerun.payload["archived"] is True
    assert deployment.posts("night") == dict.fromkeys(PLATFORMS, 1)
    assert {r.status for r in deployment.rows().values()} == {"published"}
    assert deployment.integrity() == "ok"


def test_sigkill_after_one_platform_finished_then_the_rerun_completes_only_the_others(
    deployment: Any, sandboxes: Any, helpers: Any
) -> None:
    deployment.add_photo("noon")
    slow = ("email", "instagram")
    held = _hold(sandboxes, *slow)

    def telegram_done_others_in_flight() -> bool:
        row = deployment.rows().get("telegram")
        return row is not None and row.status == "published" and held()

    _kill_when(deployment, helpers, telegram_done_others_in_flight, "telegram done")
    assert deployment.integrity() == "ok"
    rows = deployment.rows()
    assert {p: r.status for p, r in rows.items()} == {
        "telegram": "published",
        "email": "started",
        "instagram": "started",
    }
    assert deployment.posts("noon") == {"telegram": 1, "email": 0, "instagram": 0}
    # The duplicate window on this healthy publish: accepted by the server -> recorded.
    (photo,) = sandboxes.telegram.photos_in(deployment.chat)
    window_s = _iso(rows["telegram"].finished_at) - photo.received_at
    assert window_s < 1.0, f"accepted {window_s:.3f} s before the ledger knew it"

    sandboxes.reset()
    telegram_contacts = sandboxes.contacts()["telegram"]
    rerun = deployment.run("publish", subprocess_run=True)
    assert rerun.status == 0, rerun.describe()
    assert rerun.payload["already_published"] == ["telegram"]
    assert sorted(rerun.payload["publish_results"]) == sorted(slow)
    assert sandboxes.contacts()["telegram"] == telegram_contacts
    assert deployment.posts("noon") == dict.fromkeys(PLATFORMS, 1)
    assert deployment.rows()["telegram"] == rows["telegram"]
    assert rerun.payload["archived"] is True
    assert deployment.integrity() == "ok"


def test_the_one_duplicate_window_is_the_unanswered_accepted_post(
    deployment: Any, sandboxes: Any, helpers: Any
) -> None:
    """Telegram stores the photo but its answer never comes; the process is killed while
    waiting. The ledger row stays `started`: "this platform may have it". The next run
    cannot know, and sends it again: the one duplicate the design allows."""
    deployment.add_photo("dawn")
    sandboxes.telegram.inject("hang_after_upload", operation="sendPhoto")

    def accepted_unanswered() -> bool:
        rows = deployment.rows()
        others_done = all(
            rows.get(p) is not None and rows[p].status == "published"
            for p in ("email", "instagram")
        )
        return others_done and deployment.posts("dawn")["telegram"] == 1

    _kill_when(deployment, helpers, accepted_unanswered, "telegram to accept unanswered")
    rows = deployment.rows()
    assert rows["telegram"].status == "started"
    assert rows["telegram"].post_id is None
    assert deployment.integrity() == "ok"

    sandboxes.reset()
    rerun = deployment.run("publish", subprocess_run=True)
    assert rerun.status == 0, rerun.describe()
    assert list(rerun.payload["publish_results"]) == ["telegram"]
    assert deployment.posts("dawn") == {"telegram": 2, "email": 1, "instagram": 1}


@pytest.mark.parametrize(
    ("signum", "status", "word"),
    [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")],
    ids=["ctrl-c", "sigterm"],
)
def test_ctrl_c_or_sigterm_mid_publish_exits_within_2_s_and_records_the_cancelled_platforms(
    deployment: Any, sandboxes: Any, helpers: Any, signum: int, status: int, word: str
) -> None:
    """Ctrl-C (SIGINT to the process group, as a terminal sends it) and SIGTERM (what `kill`,
    systemd and cron timeouts send) end a run the same way, with their own exit status."""
    deployment.add_photo("dusk")
    running = ("email", "instagram")
    held = _hold(sandboxes, *running)
    process = deployment.start("publish")
    sent = 0.0
    try:

        def telegram_done_others_in_flight() -> bool:
            row = deployment.rows().get("telegram")
            return row is not None and row.status == "published" and held()

        helpers.wait_for(telegram_done_others_in_flight, what="telegram done, others running")
        threads = helpers.thread_count(process.pid)
        sent = time.monotonic()
        os.killpg(process.pid, signum)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            helpers.kill_hard(process)
        run = deployment.finish(process, time.monotonic() - sent if sent else 0.0)
    assert run.status == status, run.describe()
    took = run.elapsed_s
    assert took <= 2.0, f"exit took {took:.2f} s after {signum!r} ({threads} threads running)"
    assert "Traceback" not in run.err
    assert word in run.err.strip().splitlines()[-1]
    assert helpers.processes_of_session(process.pid) == [], "a process was left behind"

    rows = deployment.rows()
    assert {p: r.status for p, r in rows.items()} == {
        "telegram": "published",
        "email": "cancelled",
        "instagram": "cancelled",
    }
    assert all(rows[p].finished_at is not None for p in running)
    assert deployment.posts("dusk") == {"telegram": 1, "email": 0, "instagram": 0}
    assert deployment.queued() == ["dusk.jpg", "dusk.txt"]
    assert deployment.archived() == []
    assert deployment.integrity() == "ok"

    sandboxes.reset()
    rerun = deployment.run("publish", subprocess_run=True)
    assert rerun.status == 0, rerun.describe()
    assert sorted(rerun.payload["publish_results"]) == sorted(running)
    assert deployment.posts("dusk") == dict.fromkeys(PLATFORMS, 1)
    assert rerun.payload["archived"] is True


def test_ctrl_c_at_any_moment_of_the_publish_exits_130_within_2_s(
    deployment: Any, sandboxes: Any, helpers: Any
) -> None:
    """Ctrl-C lands wherever it lands: while connecting, during TLS, mid-upload. Each
    moment here is a short, fixed offset after Telegram finished (there is no event for
    "somewhere inside the e-mail session"), which spreads them over the other two
    publishes. A library that swallows a cancellation (Python 3.11's `asyncio.wait_for`
    does when its inner future completes in the same loop iteration) must not make Ctrl-C
    wait for a platform's timeout."""
    # Short limits on the held platforms, so a lost cancellation costs seconds, not minutes.
    deployment.configure(timeouts={"email": 5.0, "instagram": 5.0})
    slow: list[str] = []
    for number, offset_s in enumerate((0.0, 0.005, 0.01, 0.02, 0.04, 0.08)):
        stem = f"moment{number}"
        deployment.add_photo(stem)
        sandboxes.reset()
        # Whatever the moment, the post requests themselves then never get an answer: a
        # cancellation that got lost earlier would leave the run waiting here.
        _hold(sandboxes, "email", "instagram")
        process = deployment.start("publish", stem + ".jpg")
        try:
            helpers.wait_for(
                lambda stem=stem: any(
                    r.platform == "telegram"
                    and r.image_name == f"{stem}.jpg"
                    and r.status == "published"
                    for r in deployment.all_rows()
                ),
                what=f"telegram to publish {stem}",
            )
            time.sleep(offset_s)  # the offset is the parameter under test, not a wait
            sent = time.monotonic()
            os.killpg(process.pid, signal.SIGINT)
            process.wait(timeout=60)
        finally:
            if process.poll() is None:
                helpers.kill_hard(process)
            run = deployment.finish(process, time.monotonic() - sent)
        if run.status != 130 or run.elapsed_s > 2.0:
            slow.append(
                f"+{offset_s:g} s: exit {run.status} after {run.elapsed_s:.2f} s\n{run.describe()}"
            )
        assert "Traceback" not in run.err
        statuses = {r.status for r in deployment.all_rows() if r.image_name == f"{stem}.jpg"}
        assert statuses <= {"published", "cancelled"}, statuses
    assert deployment.integrity() == "ok"
    assert not slow, "Ctrl-C was slow or wrong: " + "; ".join(slow)
