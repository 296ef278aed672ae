"""Platform faults, one platform at a time, through the CLI against the sandbox servers.

For every platform and every fault its sandbox offers (a hang, a server error, a permanent
refusal, a dropped connection, flood control or throttling), with the other two healthy:
the healthy ones publish, the faulty one fails with an error naming the platform and the
cause, the run ends within the faulty platform's timeout plus 2 s, the ledger says exactly
that, and the image stays in the queue. Once the fault is cleared, the next run publishes to
that platform only and archives the image: every server then holds exactly one post of it.

Hangs run as the real `crosspost` process (a stuck connection must not keep the process
alive); the other faults run the same CLI entry point in this process, which is faster.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

PLATFORMS = ("email", "telegram", "instagram")
FAULTY_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Fault:
    """A sandbox fault kept up until cleared, and the words the error must contain (one of
    `causes`, case-insensitive)."""

    platform: str
    name: str
    kind: str
    operation: str | None
    causes: tuple[str, ...]
    params: dict[str, Any] = field(default_factory=dict)
    #: Ledger statuses that tell the truth: "unknown" where the request may have arrived.
    statuses: frozenset[str] = frozenset({"failed"})

    @property
    def id(self) -> str:
        return f"{self.platform}-{self.name}"


MAYBE_ARRIVED = frozenset({"failed", "unknown"})
TIMED_OUT = ("timed out", "timeout", "no answer")

FAULTS = [
    # Telegram Bot API: operation sendPhoto.
    Fault("telegram", "hang", "hang", "sendPhoto", TIMED_OUT, statuses=MAYBE_ARRIVED),
    Fault("telegram", "server-error", "5xx", "sendPhoto", ("500", "internal server error", "server error"), {"status": 500}, MAYBE_ARRIVED),
    Fault("telegram", "refused", "forbidden", "sendPhoto", ("403", "forbidden", "not a member")),
    Fault("telegram", "dropped", "drop", "sendPhoto", ("connection", "closed", "disconnect", "may have"), statuses=MAYBE_ARRIVED),
    Fault("telegram", "flood", "flood", "sendPhoto", ("flood", "429", "too many requests"), {"retry_after": 30}),
    # SMTP: a 4xx reply is SMTP's "try later", a 5xx its "never".
    Fault("email", "hang", "hang", None, TIMED_OUT, statuses=MAYBE_ARRIVED),
    Fault("email", "server-error", "transient_451", "data", ("451", "temporar", "local error")),
    Fault("email", "refused", "reject_recipient", "rcpt", ("550", "recipient", "rejected", "refused")),
    Fault("email", "dropped", "disconnect", "data", ("disconnect", "closed", "connection", "may have"), statuses=MAYBE_ARRIVED),
    Fault("email", "throttled", "transient_451", "mail", ("450", "rate", "too many", "try again"), {"code": 450, "text": "4.7.1 Rate limit exceeded, try again later"}),
    # Instagram private API: the photo upload, and the configure call that makes the post.
    Fault("instagram", "hang", "hang", "upload", TIMED_OUT, statuses=MAYBE_ARRIVED),
    Fault("instagram", "server-error", "5xx", "upload", ("500", "server error", "internal"), {"status": 500}, MAYBE_ARRIVED),
    Fault("instagram", "refused", "bad_request", "configure", ("rejected", "refused", "400", "aspect ratio")),
    Fault("instagram", "dropped", "drop", "upload", ("connection", "closed", "aborted", "reset", "may have"), statuses=MAYBE_ARRIVED),
    Fault("instagram", "throttled", "throttle", "upload", ("wait", "429", "rate", "throttl", "try later")),
]  # fmt: skip


def _iso(moment: str) -> float:
    return datetime.fromisoformat(moment.replace("Z", "+00:00")).timestamp()


def _faults_seen(sandboxes: Any, fault: Fault) -> int:
    counters = sandboxes.by_platform()[fault.platform].counters
    if fault.platform == "telegram":
        return int(counters[f"fault:{fault.kind}"])
    return int(counters["faults"])


def _run_first(deployment: Any, sandboxes: Any, fault: Fault, helpers: Any) -> Any:
    """The run under the fault. A hang runs as the real process, timed from the moment its
    publish started (the ledger's start row) to the moment the process ended."""
    if fault.name != "hang":
        run = deployment.run("publish")
        return run, run.elapsed_s
    process = deployment.start("publish")
    helpers.wait_for(lambda: _faults_seen(sandboxes, fault), what=f"{fault.id} to be hit")
    process.wait(timeout=60)
    ended = datetime.now(UTC).timestamp()
    run = deployment.finish(process, 0.0)
    started = _iso(deployment.rows()[fault.platform].started_at)
    return run, ended - started


def test_healthy_run_publishes_once_everywhere_and_archives(deployment: Any) -> None:
    deployment.add_photo("calm")
    run = deployment.run("publish")
    assert run.status == 0, run.describe()
    assert run.payload["archived"] is True
    assert deployment.posts("calm") == dict.fromkeys(PLATFORMS, 1)
    assert {row.status for row in deployment.rows().values()} == {"published"}
    assert deployment.queued() == []
    assert deployment.archived() == ["calm.jpg", "calm.txt"]


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.id)
def test_one_faulty_platform_fails_alone_and_the_next_run_completes_it_once(
    deployment: Any, sandboxes: Any, helpers: Any, fault: Fault
) -> None:
    healthy = [p for p in PLATFORMS if p != fault.platform]
    deployment.configure(timeouts={fault.platform: FAULTY_TIMEOUT_S})
    deployment.add_photo("dusk")
    server = sandboxes.by_platform()[fault.platform]
    server.inject(fault.kind, operation=fault.operation, times=None, **fault.params)

    # -- the run under the fault -----------------------------------------------------
    first, elapsed = _run_first(deployment, sandboxes, fault, helpers)
    assert first.status == 1, first.describe()
    assert elapsed <= FAULTY_TIMEOUT_S + 2.0, f"the run took {elapsed:.1f} s\n{first.describe()}"
    assert "Traceback" not in first.err
    payload = first.payload
    results = payload["publish_results"]
    for name in healthy:
        assert results[name]["status"] == "published", first.describe()
    failed = results[fault.platform]
    assert failed["success"] is False
    reason = (failed["error"] or "").lower()
    assert any(word in reason for word in fault.causes), f"cause missing from {reason!r}"
    assert "\n" not in failed["error"]
    assert f"{fault.platform}:" in (payload["error"] or ""), payload["error"]
    assert payload["failed_platforms"] == [fault.platform]
    assert payload["archived"] is False

    rows = deployment.rows()
    assert sorted(rows) == sorted(PLATFORMS)
    ids = deployment.post_ids("dusk")
    for name in healthy:
        row = rows[name]
        assert row.status == "published"
        assert row.post_id in ids[name], (name, row.post_id, ids[name])
        assert row.error is None
        assert row.started_at is not None
        assert row.finished_at is not None
    bad = rows[fault.platform]
    assert bad.status in fault.statuses, bad
    if bad.status == "failed":
        # Nothing was posted, so there is no post to name (an "unknown" row may keep the
        # id the post would have, to look it up by).
        assert bad.post_id is None, f"a failed {fault.platform} row names post {bad.post_id}"
    assert any(word in (bad.error or "").lower() for word in fault.causes), bad.error
    assert bad.finished_at is not None
    assert deployment.posts("dusk") == {**dict.fromkeys(healthy, 1), fault.platform: 0}
    assert deployment.queued() == ["dusk.jpg", "dusk.txt"]
    assert deployment.archived() == []

    # -- the fault cleared: the next run goes to that platform only --------------------
    server.clear_faults()
    contacts = sandboxes.contacts()
    second = deployment.run("publish")
    assert second.status == 0, second.describe()
    payload = second.payload
    assert sorted(payload["already_published"]) == sorted(healthy)
    assert list(payload["publish_results"]) == [fault.platform]
    assert payload["publish_results"][fault.platform]["status"] == "published"
    assert payload["archived"] is True
    after = sandboxes.contacts()
    for name in healthy:
        assert after[name] == contacts[name], f"{name} was contacted again"
    assert deployment.posts("dusk") == dict.fromkeys(PLATFORMS, 1)

    rerows = deployment.rows()
    for name in healthy:
        assert rerows[name] == rows[name], f"the {name} row changed"
    done = rerows[fault.platform]
    assert done.status == "published"
    assert done.post_id in deployment.post_ids("dusk")[fault.platform]
    assert done.error is None
    assert deployment.queued() == []
    assert deployment.archived() == ["dusk.jpg", "dusk.txt"]
    assert deployment.integrity() == "ok"
