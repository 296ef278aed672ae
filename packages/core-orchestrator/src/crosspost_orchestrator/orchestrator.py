"""The WorkflowOrchestrator: one image, every enabled platform at once, each under its own
time limit, every outcome recorded as soon as it is known."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Iterable, Sequence
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable

from crosspost_logs import (
    correlation_scope,
    elapsed_ms,
    log_json,
    log_publisher_publish,
    now_monotonic,
    sanitize,
)
from crosspost_orchestrator.errors import ConfigError, InputError
from crosspost_orchestrator.ledger import InMemoryLedger, Ledger
from crosspost_orchestrator.publisher import Publisher
from crosspost_orchestrator.results import PublishResult, WorkflowResult
from crosspost_orchestrator.source import ImageSource, SelectedImage, SingleImageSource

__all__ = ["WorkflowObserver", "WorkflowOrchestrator"]

logger = logging.getLogger(__name__)

#: How often the loop-lag monitor wakes up; short enough to see a 0.3 s stall clearly,
#: long enough to cost nothing measurable.
LOOP_LAG_INTERVAL_S = 0.005
#: How long a cancelled publish has to end before it is cancelled again.
_RECANCEL_S = 0.5
#: Bound on each `aclose()` during cancellation, so a stuck client cannot hold Ctrl-C hostage.
ACLOSE_TIMEOUT_S = 5.0


@runtime_checkable
class WorkflowObserver(Protocol):
    """Receives live progress of a run (the CLI's display). Called on the event loop; must
    return quickly and never block. An exception raised here is logged and ignored."""

    def on_publish_start(self, platform: str) -> None:
        """The publish to `platform` is about to start."""
        ...

    def on_publish_end(self, platform: str, result: PublishResult) -> None:
        """The publish to `platform` ended (success, failure, timeout or cancellation)."""
        ...


def one_line(text: str) -> str:
    """`text` on one line, secrets redacted."""
    return " ".join(sanitize(text).split())


def describe_exception(exc: BaseException) -> str:
    """`Type: message`, one line, secret-free."""
    message = one_line(str(exc))
    name = type(exc).__name__
    return f"{name}: {message}" if message else name


async def close_publishers(publishers: Iterable[Publisher]) -> None:
    """Close `publishers` concurrently, each bounded by `ACLOSE_TIMEOUT_S`; errors are
    logged, never raised."""

    async def close_one(publisher: Publisher) -> None:
        try:
            async with asyncio.timeout(ACLOSE_TIMEOUT_S):
                await publisher.aclose()
        except Exception as exc:  # noqa: BLE001 - closing must go on for the others
            logger.warning(
                "closing publisher %s failed: %s", publisher.platform_name, describe_exception(exc)
            )

    await asyncio.gather(*(close_one(p) for p in publishers))


class _LoopLagMonitor:
    """Measures how late the event loop wakes a sleeping task: a blocked loop shows up as
    lateness of the order of the block."""

    def __init__(self, interval_s: float = LOOP_LAG_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self.max_lag_s = 0.0
        self._task: asyncio.Task[None] | None = None
        self._expected = 0.0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="crosspost-loop-lag")

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._expected = loop.time() + self.interval_s
            await asyncio.sleep(self.interval_s)
            self._note(loop.time())

    def _note(self, now: float) -> None:
        if self._expected:  # zero until the first tick is scheduled
            self.max_lag_s = max(self.max_lag_s, now - self._expected)

    async def stop(self) -> int:
        """Stop monitoring; returns the largest lateness seen, in whole milliseconds."""
        if self._task is not None:
            # A stall that ends the phase leaves the monitor's wake-up overdue but not yet run.
            self._note(asyncio.get_running_loop().time())
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        return max(0, round(self.max_lag_s * 1000))


class WorkflowOrchestrator:
    """Publishes one image to every enabled publisher concurrently.

    `publishers` are driven in the given order (results keep that order). `source` selects
    the image (default: `SingleImageSource`, where the name is a path) and archives it once
    every enabled platform has it; `ledger` remembers which platform has which image
    (default: an `InMemoryLedger`). `timeout_s` bounds each publish whose publisher does not
    set its own `timeout_s`. `observer` gets live start/end callbacks.

    The orchestrator does not own the publishers: a normal run leaves them open for the next
    one; close them with `aclose()` or `async with`. A cancelled run closes them all.
    """

    def __init__(
        self,
        publishers: Iterable[Publisher],
        *,
        source: ImageSource | None = None,
        ledger: Ledger | None = None,
        timeout_s: float = 120.0,
        observer: WorkflowObserver | None = None,
    ) -> None:
        self.publishers: list[Publisher] = list(publishers)
        seen: set[str] = set()
        for publisher in self.publishers:
            if not isinstance(publisher, Publisher):
                raise TypeError(f"{publisher!r} is not a crosspost_orchestrator.Publisher")
            name = publisher.platform_name
            if name in seen:
                raise ConfigError(f"two publishers are named {name!r}: keep one of them")
            seen.add(name)
        if not timeout_s > 0:
            raise ConfigError(f"workflow.timeout_s: expected a positive number, got {timeout_s!r}")
        self.source: ImageSource = source if source is not None else SingleImageSource()
        self.ledger: Ledger = ledger if ledger is not None else InMemoryLedger()
        self.timeout_s = timeout_s
        self.observer = observer
        self._closed_by_cancel = False

    # -- lifecycle -----------------------------------------------------------------------
    async def aclose(self) -> None:
        """Close every publisher (concurrently); errors are logged, never raised."""
        await close_publishers(self.publishers)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- the run -------------------------------------------------------------------------
    async def execute(
        self,
        select_filename: str | None = None,
        dry_publish: bool = False,
        preview_mode: bool = False,
        caption_override: str | None = None,
    ) -> WorkflowResult:
        """Run the workflow once for one image.

        Raises `InputError` (before any platform is contacted) when the image or caption
        cannot be published, `NothingToPublishError` when the source has nothing waiting,
        `ConfigError` when no publisher is enabled, and re-raises cancellation after
        cancelling and closing every publisher. Any platform's failure or timeout is a
        result, never an exception.
        """
        enabled = [p for p in self.publishers if p.is_enabled()]
        if not enabled:
            raise ConfigError("no publisher is enabled: configure at least one [publishers.<name>]")
        self._closed_by_cancel = False
        with correlation_scope() as correlation_id:
            result = WorkflowResult(
                success=False,
                correlation_id=correlation_id,
                dry_publish=dry_publish,
                preview_mode=preview_mode,
            )
            try:
                await self._run(enabled, select_filename, caption_override, result)
            except asyncio.CancelledError:
                if not self._closed_by_cancel:
                    await self.aclose()
                raise
            finally:
                if result.image_name is not None:
                    self._log_timing(result)
            return result

    async def _run(
        self,
        enabled: Sequence[Publisher],
        select_filename: str | None,
        caption_override: str | None,
        result: WorkflowResult,
    ) -> None:
        started = now_monotonic()
        image = await self.source.select(select_filename, [p.platform_name for p in enabled])
        result.image_selection_ms = elapsed_ms(started)
        result.image_name = image.name
        result.image_path = image.path
        result.image_sha256 = image.sha256
        caption = caption_override if caption_override is not None else image.caption
        result.caption = caption
        if result.dry_publish or result.preview_mode:
            await self._rehearse(enabled, image, caption, result)
        else:
            await self._publish_all(enabled, image, caption, result)

    @staticmethod
    def _log_timing(result: WorkflowResult) -> None:
        log_json(
            logger,
            logging.INFO,
            "workflow_timing",
            image=result.image_name,
            image_selection_ms=result.image_selection_ms,
            publish_parallel_ms=result.publish_parallel_ms,
            archive_ms=result.archive_ms,
            loop_lag_max_ms=result.loop_lag_max_ms,
            preview_mode=result.preview_mode,
            dry_publish=result.dry_publish,
            success=result.success,
        )

    async def _validate(
        self, publishers: Sequence[Publisher], image: SelectedImage, caption: str
    ) -> dict[str, PublishResult]:
        """Every publisher's `validate`, concurrently.

        Input no platform can take (`ValueError`, `OSError`) raises `InputError` naming the
        platforms. A publisher whose `validate` fails in any other way is a bug of that
        publisher: it is returned as a failed result and left out, the others go on.
        """
        outcomes = await asyncio.gather(
            *(self._validate_one(p, image.path, caption) for p in publishers),
            return_exceptions=True,
        )
        problems: dict[str, list[str]] = {}
        broken: dict[str, PublishResult] = {}
        first: BaseException | None = None
        for publisher, outcome in zip(publishers, outcomes, strict=True):
            name = publisher.platform_name
            if isinstance(outcome, asyncio.CancelledError):
                raise outcome
            if isinstance(outcome, ValueError | OSError):
                first = first or outcome
                reason = one_line(str(outcome)) or describe_exception(outcome)
                problems.setdefault(reason, []).append(name)
            elif isinstance(outcome, Exception):
                error = f"could not check the input: {describe_exception(outcome)}"
                broken[name] = PublishResult(success=False, platform=name, error=error, attempts=0)
            elif isinstance(outcome, BaseException):
                raise outcome
        if problems:
            parts = [f"{reason} ({', '.join(names)})" for reason, names in problems.items()]
            raise InputError(f"{image.name}: {'; '.join(parts)}") from first
        return broken

    async def _validate_one(self, publisher: Publisher, image_path: str, caption: str) -> None:
        try:
            async with asyncio.timeout(self._timeout_for(publisher)):
                await publisher.validate(image_path, caption)
        except TimeoutError as exc:
            limit = self._timeout_for(publisher)
            raise InputError(f"checking the image took longer than {limit:g} s") from exc

    def _timeout_for(self, publisher: Publisher) -> float:
        own = publisher.timeout_s
        return own if own is not None else self.timeout_s

    async def _rehearse(
        self,
        enabled: Sequence[Publisher],
        image: SelectedImage,
        caption: str,
        result: WorkflowResult,
    ) -> None:
        """Dry run and preview: validate, then report what would happen; contact nothing,
        write nothing."""
        broken = await self._validate(enabled, image, caption)
        done_before = await self.ledger.published_platforms(image.sha256)
        result.already_published = tuple(
            p.platform_name for p in enabled if p.platform_name in done_before
        )
        for publisher in enabled:
            name = publisher.platform_name
            result.platform_captions[name] = publisher.format_caption(caption)
            result.publish_results[name] = broken.get(name) or PublishResult(
                success=True, platform=name, duration_ms=0, attempts=0
            )
        if result.preview_mode:
            previews = await asyncio.gather(
                *(p.preview(image.path, caption) for p in enabled), return_exceptions=True
            )
            for publisher, preview in zip(enabled, previews, strict=True):
                if isinstance(preview, asyncio.CancelledError):
                    raise preview
                if isinstance(preview, BaseException):
                    preview = {"error": describe_exception(preview)}
                result.previews[publisher.platform_name] = preview
        result.success = True

    async def _publish_all(
        self,
        enabled: Sequence[Publisher],
        image: SelectedImage,
        caption: str,
        result: WorkflowResult,
    ) -> None:
        done_before = await self.ledger.published_platforms(image.sha256)
        result.already_published = tuple(
            p.platform_name for p in enabled if p.platform_name in done_before
        )
        candidates = [p for p in enabled if p.platform_name not in done_before]
        broken = await self._validate(candidates, image, caption)
        to_run = [p for p in candidates if p.platform_name not in broken]
        for publisher in candidates:
            result.platform_captions[publisher.platform_name] = publisher.format_caption(caption)

        run = _PublishPhase(self, image, caption, result.correlation_id)
        if to_run:
            try:
                await run.run(to_run)
            finally:
                result.publish_parallel_ms = run.wall_ms
                result.loop_lag_max_ms = run.loop_lag_max_ms
                result.publish_timeline = dict(run.timeline)
        for publisher in candidates:
            name = publisher.platform_name
            result.publish_results[name] = broken.get(name) or run.results[name]

        succeeded = {name for name, r in result.publish_results.items() if r.success}
        result.success = bool(succeeded) or not candidates
        failures = [
            f"{name}: {r.error or r.status}"
            for name, r in result.publish_results.items()
            if not r.success
        ]
        if run.ledger_failed:
            failures.append("the ledger could not record every result; the image stays queued")
        everyone = {p.platform_name for p in enabled}
        if everyone <= done_before | succeeded and not run.ledger_failed:
            started = now_monotonic()
            try:
                result.archived_path = await self.source.archive(image)
                result.archived = True
            except (OSError, ValueError) as exc:
                failures.append(f"published, but archiving failed: {describe_exception(exc)}")
                log_json(
                    logger, logging.ERROR, "archive_failed", image=image.name,
                    error=describe_exception(exc),
                )  # fmt: skip
            result.archive_ms = elapsed_ms(started)
        result.error = "; ".join(failures) if failures else None


class _PublishPhase:
    """The concurrent part of one run: one task per publisher, a loop-lag monitor, results
    into the ledger as they arrive, and the drain-and-close path for cancellation."""

    def __init__(
        self,
        owner: WorkflowOrchestrator,
        image: SelectedImage,
        caption: str,
        correlation_id: str | None,
    ) -> None:
        self.owner = owner
        self.image = image
        self.caption = caption
        self.context: dict[str, Any] = {
            "correlation_id": correlation_id,
            "image_name": image.name,
            "image_sha256": image.sha256,
        }
        self.results: dict[str, PublishResult] = {}
        self.timeline: dict[str, tuple[int, int]] = {}
        self.started_at: dict[str, float] = {}
        self.wall_ms = 0
        self.loop_lag_max_ms = 0
        self.ledger_failed = False
        self.recorded: set[str] = set()
        self.ended: set[str] = set()
        self._phase_start = 0.0

    async def run(self, publishers: Sequence[Publisher]) -> None:
        monitor = _LoopLagMonitor()
        monitor.start()
        self._phase_start = now_monotonic()
        tasks = {
            asyncio.create_task(self._one(p), name=f"publish-{p.platform_name}"): p
            for p in publishers
        }
        try:
            await asyncio.wait(tasks)
        except asyncio.CancelledError:
            await self._drain_cancelled(tasks)
            raise
        else:
            for task, publisher in tasks.items():
                # Only a bug in this module could end a task without a result; say so.
                exc = task.exception()
                if publisher.platform_name not in self.results and exc is not None:
                    self.results[publisher.platform_name] = PublishResult(
                        success=False,
                        platform=publisher.platform_name,
                        error=f"internal error: {describe_exception(exc)}",
                    )
        finally:
            self.wall_ms = elapsed_ms(self._phase_start)
            self.loop_lag_max_ms = await _quietly(monitor.stop(), 0)

    async def _drain_cancelled(self, tasks: dict[asyncio.Task[None], Publisher]) -> None:
        """Cancel every running publish, wait for each, record it as cancelled, close every
        publisher. A second cancellation does not cut this short."""
        pending = set(tasks)
        while pending:
            # Cancelled again each round: a library can lose a cancellation (on Python 3.11
            # `asyncio.wait_for` drops one that arrives with its result), and the publish
            # would then run on to its own time limit.
            for task in pending:
                task.cancel()
            try:
                _done, pending = await asyncio.wait(pending, timeout=_RECANCEL_S)
            except asyncio.CancelledError:
                continue
        for task, publisher in tasks.items():
            name = publisher.platform_name
            if name not in self.results:
                exc = None if task.cancelled() else task.exception()
                if exc is not None:
                    error = describe_exception(exc)
                    self.results[name] = PublishResult(success=False, platform=name, error=error)
                else:
                    self.results[name] = PublishResult(
                        success=False,
                        platform=name,
                        error="cancelled",
                        cancelled=True,
                        duration_ms=self._elapsed_since_start(name),
                    )
            if name not in self.recorded:
                await _quietly(self._record(self.results[name]), None)
            if name not in self.ended:
                self._end(name, self.results[name])
        await self.owner.aclose()
        self.owner._closed_by_cancel = True

    def _elapsed_since_start(self, name: str) -> int | None:
        start = self.started_at.get(name)
        return elapsed_ms(start) if start is not None else None

    async def _one(self, publisher: Publisher) -> None:
        name = publisher.platform_name
        self._notify("on_publish_start", name)
        try:
            await self.owner.ledger.record_start(self.image.sha256, self.image.name, name)
        except Exception as exc:  # noqa: BLE001 - without a start row, do not post at all
            outcome = PublishResult(
                success=False,
                platform=name,
                attempts=0,
                error=f"not published: the ledger cannot be written ({describe_exception(exc)})",
            )
            self.ledger_failed = True
            self.results[name] = outcome
            self.recorded.add(name)
            self._end(name, outcome)
            return
        outcome = await self._publish(publisher)
        self.results[name] = outcome
        await self._record(outcome)
        self._end(name, outcome)

    async def _publish(self, publisher: Publisher) -> PublishResult:
        name = publisher.platform_name
        limit = self.owner._timeout_for(publisher)
        start = now_monotonic()
        self.started_at[name] = start
        timeout = asyncio.timeout(limit)
        try:
            async with timeout:
                returned: object = await publisher.publish(
                    self.image.path, self.caption, dict(self.context)
                )
        except TimeoutError as exc:
            error = f"timed out after {limit:g} s" if timeout.expired() else describe_exception(exc)
            return self._failed(name, start, error)
        except Exception as exc:  # noqa: BLE001 - a failing publisher must not touch the others
            return self._failed(name, start, describe_exception(exc))
        if not isinstance(returned, PublishResult):
            error = f"publisher returned {type(returned).__name__}, not a PublishResult"
            return self._failed(name, start, error)
        fixes: dict[str, Any] = {}
        if returned.duration_ms is None:
            fixes["duration_ms"] = elapsed_ms(start)
        if returned.platform != name:
            fixes["platform"] = name
        if returned.error is not None and one_line(returned.error) != returned.error:
            fixes["error"] = one_line(returned.error)
        return dataclasses.replace(returned, **fixes) if fixes else returned

    def _failed(self, name: str, start: float, error: str) -> PublishResult:
        # The publisher could not log its own event, so the orchestrator does it once here.
        duration = log_publisher_publish(logger, name, start, False, error=error, attempts=1)
        return PublishResult(success=False, platform=name, error=error, duration_ms=duration)

    async def _record(self, outcome: PublishResult) -> None:
        try:
            await self.owner.ledger.record_result(self.image.sha256, self.image.name, outcome)
        except Exception as exc:  # noqa: BLE001 - the result stands; the run must say so
            self.ledger_failed = True
            log_json(
                logger, logging.ERROR, "ledger_write_failed", platform=outcome.platform,
                status=outcome.status, error=describe_exception(exc),
            )  # fmt: skip
        # Not reached when cancelled mid-write: the drain then writes the row again.
        self.recorded.add(outcome.platform)

    def _end(self, name: str, outcome: PublishResult) -> None:
        start = self.started_at.get(name, self._phase_start)
        begin = max(0, round((start - self._phase_start) * 1000))
        self.timeline[name] = (begin, elapsed_ms(self._phase_start))
        self.ended.add(name)
        self._notify("on_publish_end", name, outcome)

    def _notify(self, method: str, *args: Any) -> None:
        observer = self.owner.observer
        if observer is None:
            return
        try:
            getattr(observer, method)(*args)
        except Exception as exc:  # noqa: BLE001 - a display bug must not break a run
            logger.warning("workflow observer %s failed: %s", method, describe_exception(exc))


async def _quietly(awaitable: Awaitable[Any], default: Any) -> Any:
    """Await, turning any ordinary exception into `default` (cleanup paths only)."""
    try:
        return await awaitable
    except Exception:  # noqa: BLE001 - cleanup must go on
        return default
