"""WorkflowOrchestrator behaviour with small in-test publishers (the things it drives)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Collection
from pathlib import Path
from typing import Any

import pytest

from crosspost_logs import get_correlation_id, log_publisher_publish, now_monotonic
from crosspost_orchestrator import (
    ConfigError,
    InMemoryLedger,
    InputError,
    Publisher,
    PublishResult,
    SelectedImage,
    SingleImageSource,
    WorkflowOrchestrator,
    sha256_file,
)

log = logging.getLogger("test.publisher")


class Recorder(Publisher):
    """Publishes instantly (or after `delay`), logs its own event, remembers every call."""

    def __init__(
        self,
        name: str,
        *,
        delay: float = 0.0,
        raises: BaseException | None = None,
        returns: Any = None,
        timeout_s: float | None = None,
        enabled: bool = True,
        invalid: BaseException | None = None,
        caption_prefix: str = "",
    ) -> None:
        self.name = name
        self.delay = delay
        self.raises = raises
        self.returns = returns
        self._timeout_s = timeout_s
        self.enabled = enabled
        self.invalid = invalid
        self.caption_prefix = caption_prefix
        self.calls: list[tuple[str, str, dict[str, Any] | None]] = []
        self.validated: list[str] = []
        self.correlation_ids: list[str | None] = []
        self.closed = 0

    @property
    def platform_name(self) -> str:
        return self.name

    @property
    def timeout_s(self) -> float | None:
        return self._timeout_s

    def is_enabled(self) -> bool:
        return self.enabled

    async def validate(self, image_path: str, caption: str) -> None:
        self.validated.append(image_path)
        if self.invalid is not None:
            raise self.invalid

    def format_caption(self, caption: str) -> str:
        return self.caption_prefix + caption

    async def preview(self, image_path: str, caption: str) -> dict[str, Any]:
        return {"caption": self.format_caption(caption), "platform": self.name}

    async def publish(
        self, image_path: str, caption: str, context: dict[str, Any] | None = None
    ) -> PublishResult:
        self.calls.append((image_path, caption, context))
        self.correlation_ids.append(get_correlation_id())
        start = now_monotonic()
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.raises is not None:
            raise self.raises
        if self.returns is not None:
            return self.returns  # type: ignore[no-any-return]
        duration = log_publisher_publish(log, self.name, start, True, post_id=f"{self.name}-1")
        return PublishResult(
            success=True, platform=self.name, post_id=f"{self.name}-1", duration_ms=duration
        )

    async def aclose(self) -> None:
        self.closed += 1


class ArchivingSource(SingleImageSource):
    """The single-image source, remembering what it was asked to archive."""

    def __init__(self) -> None:
        self.archived: list[SelectedImage] = []
        self.selected: list[tuple[str | None, Collection[str]]] = []

    async def select(self, name: str | None, platforms: Collection[str]) -> SelectedImage:
        self.selected.append((name, list(platforms)))
        return await super().select(name, platforms)

    async def archive(self, image: SelectedImage) -> str | None:
        self.archived.append(image)
        return "/archive/" + image.name


@pytest.fixture
def image(tmp_path: Path) -> str:
    path = tmp_path / "photo.jpg"
    path.write_bytes(b"\xff\xd8 not decoded by these publishers \xff\xd9")
    return str(path)


def events(caplog: pytest.LogCaptureFixture, message: str) -> list[dict[str, Any]]:
    found = []
    for record in caplog.records:
        fields = getattr(record, "crosspost_fields", None)
        if fields is not None and fields.get("message") == message:
            found.append(json.loads(record.getMessage()))
    return found


async def test_every_enabled_publisher_runs_and_results_keep_publisher_order(image: str) -> None:
    pubs = [Recorder("b", delay=0.02), Recorder("a"), Recorder("off", enabled=False)]
    ledger = InMemoryLedger()
    result = await WorkflowOrchestrator(pubs, ledger=ledger).execute(image)
    assert result.success
    assert list(result.publish_results) == ["b", "a"]
    assert pubs[2].calls == []
    assert all(r.success for r in result.publish_results.values())
    digest = sha256_file(image)
    assert result.image_sha256 == digest
    assert ledger.entry(digest, "a").status == "published"  # type: ignore[union-attr]
    assert ledger.entry(digest, "b").post_id == "b-1"  # type: ignore[union-attr]
    assert ledger.entry(digest, "off") is None
    assert result.error is None
    assert result.archived


async def test_caption_comes_from_sidecar_unless_overridden(image: str) -> None:
    Path(image).with_suffix(".txt").write_text("from the sidecar\nsecond line\n", encoding="utf-8")
    pub = Recorder("a", caption_prefix="A: ")
    orchestrator = WorkflowOrchestrator([pub])
    first = await orchestrator.execute(image)
    assert first.caption == "from the sidecar"
    assert pub.calls[0][1] == "from the sidecar"
    assert first.platform_captions == {"a": "A: from the sidecar"}
    second = await orchestrator.execute(image, caption_override="", dry_publish=True)
    assert second.caption == ""


async def test_publisher_sees_the_run_correlation_id_in_context_and_logs(image: str) -> None:
    pub = Recorder("a")
    result = await WorkflowOrchestrator([pub]).execute(image)
    assert result.correlation_id
    assert pub.correlation_ids == [result.correlation_id]
    context = pub.calls[0][2]
    assert context is not None
    assert context["correlation_id"] == result.correlation_id
    assert context["image_sha256"] == result.image_sha256
    assert get_correlation_id() is None


async def test_raising_publisher_becomes_a_failure_logged_once_by_the_orchestrator(
    image: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    pubs = [Recorder("bad", raises=RuntimeError("boom\nwith a second line")), Recorder("good")]
    ledger = InMemoryLedger()
    result = await WorkflowOrchestrator(pubs, ledger=ledger).execute(image)
    bad = result.publish_results["bad"]
    assert not bad.success
    assert bad.error == "RuntimeError: boom with a second line"
    assert bad.duration_ms is not None
    assert result.publish_results["good"].success
    assert result.success
    assert not result.archived
    assert result.error == "bad: RuntimeError: boom with a second line"
    published = events(caplog, "publisher_publish")
    assert sorted(e["platform"] for e in published) == ["bad", "good"]
    assert ledger.entry(sha256_file(image), "bad").status == "failed"  # type: ignore[union-attr]


async def test_publisher_own_timeout_overrides_the_default(image: str) -> None:
    slow = Recorder("slow", delay=30, timeout_s=0.05)
    start = now_monotonic()
    result = await WorkflowOrchestrator([slow], timeout_s=60).execute(image)
    assert now_monotonic() - start < 5
    assert result.publish_results["slow"].error == "timed out after 0.05 s"
    assert not result.success


async def test_default_timeout_applies_when_the_publisher_has_none(image: str) -> None:
    result = await WorkflowOrchestrator([Recorder("slow", delay=30)], timeout_s=0.05).execute(image)
    assert result.publish_results["slow"].error == "timed out after 0.05 s"


async def test_timeout_error_raised_by_the_publisher_itself_is_not_reported_as_ours(
    image: str,
) -> None:
    pub = Recorder("a", raises=TimeoutError("read timed out"))
    result = await WorkflowOrchestrator([pub], timeout_s=60).execute(image)
    assert result.publish_results["a"].error == "TimeoutError: read timed out"


async def test_missing_duration_and_foreign_platform_name_are_filled_in(image: str) -> None:
    pub = Recorder("a", returns=PublishResult(success=True, platform="other", error=None))
    result = await WorkflowOrchestrator([pub]).execute(image)
    got = result.publish_results["a"]
    assert got.platform == "a"
    assert isinstance(got.duration_ms, int)


async def test_non_result_return_value_is_a_failure(image: str) -> None:
    pub = Recorder("a", returns={"ok": True})
    result = await WorkflowOrchestrator([pub]).execute(image)
    assert result.publish_results["a"].error == "publisher returned dict, not a PublishResult"


async def test_invalid_input_raises_input_error_before_any_publish_or_ledger_write(
    image: str,
) -> None:
    ledger = InMemoryLedger()
    ok = Recorder("ok")
    bad = Recorder("picky", invalid=ValueError("image is 30000 px wide; at most 10000"))
    with pytest.raises(
        InputError, match=r"photo\.jpg: image is 30000 px wide; at most 10000 \(picky\)"
    ):
        await WorkflowOrchestrator([ok, bad], ledger=ledger).execute(image)
    assert ok.calls == []
    assert bad.calls == []
    assert ok.validated == [str(Path(image).resolve())]
    assert await ledger.published_platforms(sha256_file(image)) == set()
    assert ledger.entry(sha256_file(image), "ok") is None


async def test_same_input_problem_on_several_platforms_is_reported_once(image: str) -> None:
    pubs = [Recorder(n, invalid=ValueError("not an image")) for n in ("a", "b")]
    with pytest.raises(InputError) as info:
        await WorkflowOrchestrator(pubs).execute(image)
    assert str(info.value) == "photo.jpg: not an image (a, b)"


async def test_validate_bug_fails_only_that_publisher(image: str) -> None:
    buggy = Recorder("buggy", invalid=KeyError("width"))
    fine = Recorder("fine")
    result = await WorkflowOrchestrator([buggy, fine]).execute(image)
    assert buggy.calls == []
    assert result.publish_results["buggy"].error == "could not check the input: KeyError: 'width'"
    assert result.publish_results["fine"].success
    assert not result.archived


async def test_missing_image_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="image not found"):
        await WorkflowOrchestrator([Recorder("a")]).execute(str(tmp_path / "nope.jpg"))


async def test_already_published_platforms_are_skipped_and_the_image_archived(
    image: str,
) -> None:
    ledger = InMemoryLedger()
    source = ArchivingSource()
    first_a = Recorder("a")
    failing_b = Recorder("b", raises=OSError("connection refused"))
    first = await WorkflowOrchestrator([first_a, failing_b], source=source, ledger=ledger).execute(
        image
    )
    assert first.success
    assert not first.archived
    assert source.archived == []

    again_a, fixed_b = Recorder("a"), Recorder("b")
    second = await WorkflowOrchestrator([again_a, fixed_b], source=source, ledger=ledger).execute(
        image
    )
    assert again_a.calls == []
    assert len(fixed_b.calls) == 1
    assert second.already_published == ("a",)
    assert list(second.publish_results) == ["b"]
    assert second.archived
    assert second.archived_path == "/archive/photo.jpg"
    assert len(source.archived) == 1

    third_a = Recorder("a")
    third = await WorkflowOrchestrator([third_a], source=source, ledger=ledger).execute(image)
    assert third.success
    assert third.publish_results == {}
    assert third_a.calls == []
    assert third.already_published == ("a",)


async def test_source_gets_the_enabled_platform_names(image: str) -> None:
    source = ArchivingSource()
    pubs = [Recorder("a"), Recorder("x", enabled=False), Recorder("b")]
    await WorkflowOrchestrator(pubs, source=source).execute(image)
    assert source.selected == [(image, ["a", "b"])]


async def test_dry_run_contacts_nothing_and_writes_nothing(
    image: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    ledger = InMemoryLedger()
    source = ArchivingSource()
    pubs = [Recorder("a"), Recorder("b")]
    result = await WorkflowOrchestrator(pubs, ledger=ledger, source=source).execute(
        image, dry_publish=True
    )
    assert result.success
    assert result.dry_publish
    assert [p.calls for p in pubs] == [[], []]
    assert all(p.validated for p in pubs)
    assert result.publish_parallel_ms == 0
    assert all(r.success for r in result.publish_results.values())
    assert ledger.entry(sha256_file(image), "a") is None
    assert source.archived == []
    assert not result.archived
    (timing,) = events(caplog, "workflow_timing")
    assert timing["dry_publish"] is True
    assert timing["preview_mode"] is False


async def test_preview_reports_each_platform_caption_and_preview(image: str) -> None:
    pubs = [Recorder("a", caption_prefix="[a] "), Recorder("b")]
    result = await WorkflowOrchestrator(pubs).execute(
        image, preview_mode=True, caption_override="hi"
    )
    assert [p.calls for p in pubs] == [[], []]
    assert result.platform_captions == {"a": "[a] hi", "b": "hi"}
    assert result.previews["a"] == {"caption": "[a] hi", "platform": "a"}
    assert result.preview_mode
    assert result.success


async def test_workflow_timing_is_logged_once_with_the_documented_fields(
    image: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    result = await WorkflowOrchestrator([Recorder("a", delay=0.01)]).execute(image)
    (timing,) = events(caplog, "workflow_timing")
    for key in (
        "timestamp",
        "correlation_id",
        "image",
        "image_selection_ms",
        "publish_parallel_ms",
        "archive_ms",
        "loop_lag_max_ms",
        "preview_mode",
        "dry_publish",
    ):
        assert key in timing, key
    assert timing["correlation_id"] == result.correlation_id
    assert timing["image"] == "photo.jpg"
    assert timing["publish_parallel_ms"] == result.publish_parallel_ms >= 10


async def test_observer_sees_every_start_and_end_and_its_errors_are_ignored(
    image: str,
) -> None:
    seen: list[tuple[str, str, bool | None]] = []

    class Observer:
        def on_publish_start(self, platform: str) -> None:
            seen.append(("start", platform, None))
            raise RuntimeError("display bug")

        def on_publish_end(self, platform: str, result: PublishResult) -> None:
            seen.append(("end", platform, result.success))

    pubs = [Recorder("a"), Recorder("b", raises=RuntimeError("x"))]
    result = await WorkflowOrchestrator(pubs, observer=Observer()).execute(image)
    assert sorted(seen) == [
        ("end", "a", True),
        ("end", "b", False),
        ("start", "a", None),
        ("start", "b", None),
    ]
    assert result.publish_results["a"].success
    assert set(result.publish_timeline) == {"a", "b"}


async def test_each_result_reaches_the_ledger_as_soon_as_it_arrives(image: str) -> None:
    ledger = InMemoryLedger()
    fast_done = asyncio.Event()
    seen_by_slow: list[str | None] = []

    class Observer:
        def on_publish_start(self, platform: str) -> None:
            pass

        def on_publish_end(self, platform: str, result: PublishResult) -> None:
            if platform == "fast":
                fast_done.set()

    class Slow(Recorder):
        async def publish(
            self, image_path: str, caption: str, context: dict[str, Any] | None = None
        ) -> PublishResult:
            await fast_done.wait()
            entry = ledger.entry(sha256_file(image_path), "fast")
            seen_by_slow.append(entry.status if entry else None)
            return await super().publish(image_path, caption, context)

    await WorkflowOrchestrator(
        [Slow("slow"), Recorder("fast")], ledger=ledger, observer=Observer()
    ).execute(image)
    assert seen_by_slow == ["published"]


async def test_unwritable_ledger_stops_that_publish_and_the_archive(image: str) -> None:
    class BrokenLedger(InMemoryLedger):
        async def record_start(self, sha256: str, image_name: str, platform: str) -> None:
            if platform == "a":
                raise OSError("database is locked")
            await super().record_start(sha256, image_name, platform)

    source = ArchivingSource()
    pub_a, pub_b = Recorder("a"), Recorder("b")
    result = await WorkflowOrchestrator(
        [pub_a, pub_b], ledger=BrokenLedger(), source=source
    ).execute(image)
    assert pub_a.calls == []
    assert "ledger cannot be written" in (result.publish_results["a"].error or "")
    assert result.publish_results["b"].success
    assert source.archived == []


async def test_two_publishers_with_one_name_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match="two publishers are named 'a'"):
        WorkflowOrchestrator([Recorder("a"), Recorder("a")])


async def test_no_enabled_publisher_is_a_config_error(image: str) -> None:
    with pytest.raises(ConfigError, match="no publisher is enabled"):
        await WorkflowOrchestrator([Recorder("a", enabled=False)]).execute(image)


async def test_normal_run_leaves_publishers_open_and_async_with_closes_them(image: str) -> None:
    pubs = [Recorder("a"), Recorder("b")]
    async with WorkflowOrchestrator(pubs) as orchestrator:
        await orchestrator.execute(image)
        assert [p.closed for p in pubs] == [0, 0]
    assert [p.closed for p in pubs] == [1, 1]


async def test_publisher_check_default_says_nothing_to_check() -> None:
    assert await Recorder("a").check() == "no check available for a"


async def test_cancelling_during_validation_closes_every_publisher_and_writes_nothing(
    image: str,
) -> None:
    validating = asyncio.Event()

    class SlowCheck(Recorder):
        async def validate(self, image_path: str, caption: str) -> None:
            validating.set()
            await asyncio.Event().wait()

    ledger = InMemoryLedger()
    pubs = [SlowCheck("slow"), Recorder("quick")]
    run = asyncio.create_task(WorkflowOrchestrator(pubs, ledger=ledger).execute(image))
    await asyncio.wait_for(validating.wait(), timeout=5)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert [p.closed for p in pubs] == [1, 1]
    assert [p.calls for p in pubs] == [[], []]
    assert ledger.entry(sha256_file(image), "quick") is None


async def test_cancelled_run_closes_each_publisher_once(image: str) -> None:
    started = asyncio.Event()

    class Hanging(Recorder):
        async def publish(
            self, image_path: str, caption: str, context: dict[str, Any] | None = None
        ) -> PublishResult:
            started.set()
            await asyncio.Event().wait()
            raise AssertionError("unreachable")

    pubs = [Hanging("h"), Recorder("r")]
    run = asyncio.create_task(WorkflowOrchestrator(pubs).execute(image))
    await asyncio.wait_for(started.wait(), timeout=5)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert [p.closed for p in pubs] == [1, 1]
