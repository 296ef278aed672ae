"""The publisher conformance suite: one set of checks every publisher package runs against
its own sandbox server.

Use it by subclassing `PublisherConformance` in a test module and providing its fixtures::

    from crosspost_sandbox.conformance import PublisherConformance

    class TestTelegramConformance(PublisherConformance):
        @pytest.fixture
        def conformance_sandbox(self, telegram_sandbox):
            return telegram_sandbox

        @pytest.fixture
        def conformance_publisher(self, telegram_sandbox):
            async def build() -> TelegramPublisher:
                return TelegramPublisher(TelegramSettings(..., base_url=telegram_sandbox.base_url))
            return build

        @pytest.fixture
        def conformance_secrets(self, telegram_sandbox):
            return [telegram_sandbox.token]

        @pytest.fixture
        def conformance_faults(self):
            return ["hang", "5xx", ("flood", {"retry_after": 1}), "drop"]

What it pins, for the happy path and for every fault the module lists: `publish` returns a
`PublishResult` for its platform and never raises; exactly one `publisher_publish` event per
publish, with an integer `duration_ms`; the input image's bytes and mtime are unchanged;
cancelling an in-flight publish (sandbox hanging) ends it within 1 s, and `aclose()` then
leaves no connection open (checked when the sandbox exposes `open_connections`, as an
attribute or a counter; otherwise that sub-check is skipped); no configured secret appears
in any log record of any logger at DEBUG (client libraries included), nor in a result's
error or an exception message; `check()` describes what it verified in one line.

The checks are also importable functions (`run_publish`, `check_cancellation`,
`assert_no_secrets`, ...) raising `AssertionError` with a plain explanation.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import random
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol
from urllib.parse import quote

import pytest
from PIL import Image, ImageDraw, ImageFilter

from crosspost_orchestrator import Publisher, PublishResult
from crosspost_sandbox.faults import SafeCounter

__all__ = [
    "ConformanceSandbox",
    "FaultSpec",
    "ImageFingerprint",
    "PublisherConformance",
    "PublisherFactory",
    "assert_no_secrets",
    "capture_records",
    "check_cancellation",
    "image_fingerprint",
    "inject_fault",
    "make_test_image",
    "open_connections",
    "publish_events",
    "run_publish",
]


class ConformanceSandbox(Protocol):
    """What the suite needs of a sandbox server (every `SandboxServer` has it)."""

    @property
    def counters(self) -> SafeCounter: ...

    def inject(
        self, kind: str, *, operation: str | None = None, times: int | None = 1, **params: Any
    ) -> None: ...

    def set_latency(self, fixed_s: float = 0.0, jitter_s: float = 0.0) -> None: ...

    def clear_faults(self) -> None: ...


#: An async factory building a fresh publisher configured against the running sandbox.
PublisherFactory = Callable[[], Awaitable[Publisher]]

#: A fault: its kind (`"hang"`), or its kind and `inject` keyword arguments
#: (`("flood", {"retry_after": 1, "operation": "sendPhoto", "times": 1})`). Without `times`
#: the fault holds until cleared: the server keeps misbehaving through every retry.
FaultSpec = str | tuple[str, Mapping[str, Any]]

#: Loggers of the servers themselves: they are not the publisher's to keep clean.
SANDBOX_LOGGERS = ("crosspost_sandbox", "mail.log", "aiohttp.access", "aiohttp.server")


# -- images ------------------------------------------------------------------------------
def make_test_image(
    path: str | os.PathLike[str],
    width: int = 1600,
    height: int = 1200,
    *,
    seed: int = 0,
    quality: int = 90,
) -> str:
    """Write a photo-like JPEG (smooth gradients, shapes, soft edges and grain, so it
    compresses like a photograph rather than a flat test card); returns its path."""
    rng = random.Random(seed)
    horizontal = Image.linear_gradient("L").rotate(90).resize((width, height))
    vertical = Image.linear_gradient("L").resize((width, height))
    radial = Image.radial_gradient("L").resize((width, height))
    image = Image.merge("RGB", (horizontal, vertical, radial))
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x, y = rng.randrange(width), rng.randrange(height)
        r = rng.randrange(max(2, min(width, height) // 20), max(3, min(width, height) // 4))
        colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    image = image.filter(ImageFilter.GaussianBlur(radius=max(1, min(width, height) // 200)))
    grain = Image.effect_noise((width, height), 24).convert("RGB")
    image = Image.blend(image, grain, 0.08)
    target = os.fspath(path)
    image.save(target, "JPEG", quality=quality)
    return target


@dataclass(frozen=True, slots=True)
class ImageFingerprint:
    """What must not change about an input image: its content and its mtime."""

    sha256: str
    size: int
    mtime_ns: int


def image_fingerprint(path: str) -> ImageFingerprint:
    """The fingerprint of the file at `path`."""
    with open(path, "rb") as handle:
        digest = hashlib.sha256(handle.read()).hexdigest()
    stat = os.stat(path)
    return ImageFingerprint(digest, stat.st_size, stat.st_mtime_ns)


# -- logs --------------------------------------------------------------------------------
class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _is_ignored(name: str, ignored: Sequence[str]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in ignored)


@contextmanager
def capture_records(ignored: Sequence[str] = SANDBOX_LOGGERS) -> Iterator[list[logging.LogRecord]]:
    """Collect every log record of every logger at DEBUG while the block runs.

    Lowers the root and every existing logger (except `ignored` ones) to DEBUG, and listens
    on the root and on every logger that does not propagate, so a library's records are seen
    even if it configured its own handlers. Everything is restored afterwards.
    """
    collector = _Collector()
    root = logging.getLogger()
    saved_levels: list[tuple[logging.Logger, int]] = [(root, root.level)]
    listened: list[logging.Logger] = [root]
    root.setLevel(logging.DEBUG)
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if not isinstance(logger, logging.Logger) or _is_ignored(name, ignored):
            continue
        if logger.level > logging.DEBUG:
            saved_levels.append((logger, logger.level))
            logger.setLevel(logging.DEBUG)
        if not logger.propagate:
            listened.append(logger)
    for logger in listened:
        logger.addHandler(collector)
    try:
        yield collector.records
    finally:
        for logger in listened:
            logger.removeHandler(collector)
        for logger, level in saved_levels:
            logger.setLevel(level)


def publish_events(records: Iterable[logging.LogRecord], platform: str) -> list[dict[str, Any]]:
    """The `publisher_publish` events of `platform` among `records`."""
    found = []
    for record in records:
        fields = getattr(record, "crosspost_fields", None)
        if (
            isinstance(fields, Mapping)
            and fields.get("message") == "publisher_publish"
            and fields.get("platform") == platform
        ):
            found.append(dict(fields))
    return found


_STANDARD_RECORD_KEYS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
_formatter = logging.Formatter()


def _record_texts(record: logging.LogRecord) -> Iterator[str]:
    try:
        yield record.getMessage()
    except Exception:  # noqa: BLE001 - a record whose args do not fit its message
        yield str(record.msg)
        yield repr(record.args)
    if record.exc_info:
        yield _formatter.formatException(record.exc_info)
    if record.exc_text:
        yield record.exc_text
    if record.stack_info:
        yield record.stack_info
    for key, value in record.__dict__.items():
        if key not in _STANDARD_RECORD_KEYS:
            yield str(value)


def assert_no_secrets(
    secrets: Iterable[str],
    records: Iterable[logging.LogRecord] = (),
    texts: Iterable[str] = (),
    ignored: Sequence[str] = SANDBOX_LOGGERS,
) -> None:
    """Fail if any secret (or its URL-encoded form) is in any record or text.

    The failure names the logger and shows the line with the secret masked, never the
    secret itself.
    """
    forms = [
        (index, form)
        for index, secret in enumerate(s for s in secrets if s)
        for form in {secret, quote(secret, safe="")}
    ]
    if not forms:
        return
    leaks: list[str] = []

    def scan(where: str, text: str) -> None:
        for index, form in forms:
            if form in text:
                masked = " ".join(text.replace(form, f"<secret #{index}>").split())[:300]
                leaks.append(f"secret #{index} in {where}: {masked}")

    for record in records:
        if _is_ignored(record.name, ignored):
            continue
        for text in _record_texts(record):
            scan(f"a {record.levelname} record of logger {record.name!r}", text)
    for text in texts:
        scan("a result or error message", text)
    assert not leaks, "configured secrets leaked:\n" + "\n".join(leaks)


# -- sandbox helpers ---------------------------------------------------------------------
def inject_fault(sandbox: ConformanceSandbox, fault: FaultSpec) -> str:
    """Script `fault` on the sandbox (until cleared, unless it says `times`); returns its
    kind."""
    kind, params = (fault, {}) if isinstance(fault, str) else (fault[0], dict(fault[1]))
    params.setdefault("times", None)
    sandbox.inject(kind, **params)
    return kind


def open_connections(sandbox: object) -> int | None:
    """Connections the sandbox holds open now, if it tells (`open_connections` attribute or
    counter); None when it does not (a counter only exists once a client has connected)."""
    value = getattr(sandbox, "open_connections", None)
    if callable(value):
        value = value()
    if isinstance(value, int):
        return value
    counters = getattr(sandbox, "counters", None)
    if isinstance(counters, SafeCounter) and "open_connections" in counters.snapshot():
        return counters["open_connections"]
    return None


async def _wait_until(condition: Callable[[], bool], timeout_s: float) -> bool:
    """Poll `condition` (the sandbox offers no event to wait on) until true or timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(0.01)
    return True


# -- the checks --------------------------------------------------------------------------
async def run_publish(
    publisher: Publisher,
    image_path: str,
    caption: str,
    *,
    deadline_s: float = 30.0,
    label: str = "publish",
) -> tuple[PublishResult, list[logging.LogRecord]]:
    """Publish once and check the contract: returns a `PublishResult` of this platform
    within `deadline_s` without raising, logs exactly one `publisher_publish` event with an
    integer `duration_ms`, gives a one-line reason when it fails, leaves the image alone.
    Returns the result and every log record of the publish."""
    platform = publisher.platform_name
    before = image_fingerprint(image_path)
    with capture_records() as records:
        timeout = asyncio.timeout(deadline_s)
        try:
            async with timeout:
                result: object = await publisher.publish(image_path, caption)
        except TimeoutError as exc:
            if timeout.expired():
                raise AssertionError(
                    f"{label}: publish did not return within {deadline_s:g} s: give the "
                    "client short timeouts in the conformance_publisher factory"
                ) from exc
            raise AssertionError(f"{label}: publish raised TimeoutError: {exc}") from exc
        except Exception as exc:
            raise AssertionError(
                f"{label}: publish raised {type(exc).__name__}: {exc}; it must return "
                "PublishResult(success=False, error=...) instead"
            ) from exc
    assert isinstance(result, PublishResult), (
        f"{label}: publish returned {type(result).__name__}, not a PublishResult"
    )
    assert result.platform == platform, (
        f"{label}: result names platform {result.platform!r}, expected {platform!r}"
    )
    if not result.success:
        one_line = bool(result.error) and "\n" not in (result.error or "")
        assert one_line, f"{label}: a failed result needs a one-line error, got {result.error!r}"
    events = publish_events(records, platform)
    assert len(events) == 1, (
        f"{label}: expected exactly one publisher_publish event for {platform!r}, got {len(events)}"
    )
    duration = events[0].get("duration_ms")
    is_int = isinstance(duration, int) and not isinstance(duration, bool)
    assert is_int, f"{label}: publisher_publish duration_ms must be an int, got {duration!r}"
    assert events[0].get("success") is result.success, (
        f"{label}: publisher_publish success={events[0].get('success')!r} but the result "
        f"says {result.success!r}"
    )
    after = image_fingerprint(image_path)
    assert after == before, f"{label}: the input image was modified ({before} -> {after})"
    return result, records


async def check_cancellation(
    publisher: Publisher,
    sandbox: ConformanceSandbox,
    image_path: str,
    caption: str,
    *,
    hang: FaultSpec = "hang",
    within_s: float = 1.0,
    open_before: int | None = None,
    arrival_timeout_s: float = 5.0,
) -> None:
    """Cancel a publish the hanging sandbox holds, then close the publisher.

    Fails unless the publish ends within `within_s` of the cancel by raising
    `CancelledError`, `aclose()` returns promptly, and (when the sandbox counts open
    connections) the count is back to `open_before` (default: its value before the publish,
    0 if the counter did not exist yet) within 2 s. The publisher is closed in every case.
    """
    if open_before is None:
        open_before = open_connections(sandbox)
    sandbox.clear_faults()
    inject_fault(sandbox, hang)
    seen = sandbox.counters.snapshot()
    task = asyncio.create_task(publisher.publish(image_path, caption))
    try:
        # The sandbox offers no "request arrived" event: its counters moving is the signal.
        arrived = await _wait_until(
            lambda: task.done() or sandbox.counters.snapshot() != seen, arrival_timeout_s
        )
        assert not task.done(), (
            f"publish ended before it could be cancelled although the sandbox hangs "
            f"(result: {task.result() if not task.exception() else task.exception()!r})"
        )
        assert arrived, f"the sandbox saw no request within {arrival_timeout_s:g} s"
        loop = asyncio.get_running_loop()
        cancelled_at = loop.time()
        task.cancel()
        await asyncio.wait({task}, timeout=within_s)
        took = loop.time() - cancelled_at
        assert task.done(), f"publish was still running {within_s:g} s after cancellation"
        assert task.cancelled(), (
            "publish swallowed the cancellation (it must let CancelledError propagate); "
            f"it ended after {took:.2f} s with "
            f"{task.exception() if task.exception() else task.result()!r}"
        )
    finally:
        if not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=10)
        sandbox.clear_faults()
        try:
            async with asyncio.timeout(5):
                await publisher.aclose()
        except TimeoutError as exc:
            raise AssertionError("aclose() after a cancelled publish took over 5 s") from exc
    if open_before is None and open_connections(sandbox) is not None:
        open_before = 0  # the counter appeared with this publish's first connection
    if open_before is not None:
        closed = await _wait_until(lambda: open_connections(sandbox) == open_before, 2.0)
        assert closed, (
            f"the sandbox still holds {open_connections(sandbox)} open connection(s) "
            f"(expected {open_before}) after the cancelled publish and aclose()"
        )


# -- the reusable test class -------------------------------------------------------------
class PublisherConformance:
    """Base test class: subclass it as `Test<Platform>Conformance` and provide the fixtures.

    Required fixtures (define them in the subclass):
    - `conformance_publisher`: a `PublisherFactory`, an async callable building a fresh
      publisher configured against the running sandbox, with short client timeouts (a few
      seconds) so a hanging server yields a failed result well within
      `conformance_deadline_s`. The suite closes every publisher it builds.
    - `conformance_sandbox`: the started sandbox the publisher talks to.
    - `conformance_secrets`: every secret configured (password, token, session id...).
    - `conformance_faults`: the `FaultSpec`s to exercise (kinds the sandbox knows).

    Optional: `conformance_image` (default: a 1600x1200 photo-like JPEG in `tmp_path`) and
    the class attributes below.
    """

    #: Longest a single publish may take under any fault before the suite fails it.
    conformance_deadline_s: ClassVar[float] = 30.0
    #: The fault that makes the sandbox hold a request without answering.
    conformance_hang_fault: ClassVar[FaultSpec] = "hang"
    #: The caption every publish uses.
    conformance_caption: ClassVar[str] = "Conformance check: café, #crosspost ✓"

    # -- fixtures the subclass provides ----------------------------------------------------
    @pytest.fixture
    def conformance_publisher(self) -> PublisherFactory:
        pytest.fail("define the conformance_publisher fixture in your conformance test class")

    @pytest.fixture
    def conformance_sandbox(self) -> ConformanceSandbox:
        pytest.fail("define the conformance_sandbox fixture in your conformance test class")

    @pytest.fixture
    def conformance_secrets(self) -> list[str]:
        pytest.fail("define the conformance_secrets fixture in your conformance test class")

    @pytest.fixture
    def conformance_faults(self) -> list[FaultSpec]:
        pytest.fail("define the conformance_faults fixture in your conformance test class")

    @pytest.fixture
    def conformance_image(self, tmp_path: Path) -> str:
        return make_test_image(tmp_path / "conformance.jpg", 1600, 1200)

    # -- the tests -------------------------------------------------------------------------
    async def test_happy_path_publish_succeeds_with_one_timed_event(
        self,
        conformance_publisher: PublisherFactory,
        conformance_sandbox: ConformanceSandbox,
        conformance_image: str,
    ) -> None:
        conformance_sandbox.clear_faults()
        publisher = await conformance_publisher()
        try:
            result, _records = await run_publish(
                publisher,
                conformance_image,
                self.conformance_caption,
                deadline_s=self.conformance_deadline_s,
                label="happy path",
            )
        finally:
            await publisher.aclose()
        assert result.success, f"happy-path publish failed: {result.error}"

    async def test_every_publish_logs_exactly_one_event(
        self,
        conformance_publisher: PublisherFactory,
        conformance_sandbox: ConformanceSandbox,
        conformance_image: str,
    ) -> None:
        conformance_sandbox.clear_faults()
        publisher = await conformance_publisher()
        try:
            for attempt in (1, 2):
                await run_publish(
                    publisher,
                    conformance_image,
                    f"{self.conformance_caption} {attempt}",
                    deadline_s=self.conformance_deadline_s,
                    label=f"publish #{attempt} with one publisher",
                )
        finally:
            await publisher.aclose()

    async def test_publish_never_raises_whatever_the_server_does(
        self,
        conformance_publisher: PublisherFactory,
        conformance_sandbox: ConformanceSandbox,
        conformance_faults: list[FaultSpec],
        conformance_image: str,
    ) -> None:
        assert conformance_faults, "conformance_faults is empty: list the faults to exercise"
        problems: list[str] = []
        for fault in conformance_faults:
            conformance_sandbox.clear_faults()
            kind = inject_fault(conformance_sandbox, fault)
            publisher = await conformance_publisher()
            try:
                await run_publish(
                    publisher,
                    conformance_image,
                    self.conformance_caption,
                    deadline_s=self.conformance_deadline_s,
                    label=f"fault {kind!r}",
                )
            except AssertionError as exc:
                problems.append(str(exc))
            finally:
                conformance_sandbox.clear_faults()
                await publisher.aclose()
        assert not problems, "\n".join(problems)

    async def test_cancelled_publish_ends_within_a_second_and_closes_its_connections(
        self,
        conformance_publisher: PublisherFactory,
        conformance_sandbox: ConformanceSandbox,
        conformance_image: str,
    ) -> None:
        open_before = open_connections(conformance_sandbox)
        publisher = await conformance_publisher()
        await check_cancellation(
            publisher,
            conformance_sandbox,
            conformance_image,
            self.conformance_caption,
            hang=self.conformance_hang_fault,
            open_before=open_before,
        )

    async def test_no_secret_reaches_any_log_record_at_debug(
        self,
        conformance_publisher: PublisherFactory,
        conformance_sandbox: ConformanceSandbox,
        conformance_secrets: list[str],
        conformance_faults: list[FaultSpec],
        conformance_image: str,
    ) -> None:
        assert any(conformance_secrets), "conformance_secrets is empty: list the secrets used"
        texts: list[str] = []
        conformance_sandbox.clear_faults()
        with capture_records() as records:
            publisher = await conformance_publisher()
            try:
                try:
                    texts.append(await publisher.check())
                except Exception as exc:  # noqa: BLE001 - its message is scanned, too
                    texts.append(f"{type(exc).__name__}: {exc}")
                result, _ = await run_publish(
                    publisher,
                    conformance_image,
                    self.conformance_caption,
                    deadline_s=self.conformance_deadline_s,
                )
                texts.append(result.error or "")
                texts.extend(result.warnings)
                for fault in conformance_faults[:2]:
                    inject_fault(conformance_sandbox, fault)
                    try:
                        result, _ = await run_publish(
                            publisher,
                            conformance_image,
                            self.conformance_caption,
                            deadline_s=self.conformance_deadline_s,
                        )
                    finally:
                        conformance_sandbox.clear_faults()
                    texts.append(result.error or "")
                    texts.extend(result.warnings)
            finally:
                await publisher.aclose()
        assert_no_secrets(conformance_secrets, records, texts)

    async def test_check_describes_what_it_verified_in_one_line(
        self,
        conformance_publisher: PublisherFactory,
        conformance_sandbox: ConformanceSandbox,
    ) -> None:
        conformance_sandbox.clear_faults()
        publisher = await conformance_publisher()
        try:
            async with asyncio.timeout(self.conformance_deadline_s):
                description = await publisher.check()
        finally:
            await publisher.aclose()
        assert isinstance(description, str), f"check() returned {type(description).__name__}"
        assert description.strip(), "check() returned an empty description"
        assert "\n" not in description, f"check() must return one line, got {description!r}"
        assert not description.startswith("no check available"), (
            "check() is not implemented: verify configuration, credentials and reachability"
        )

    async def test_aclose_twice_is_harmless(
        self, conformance_publisher: PublisherFactory, conformance_sandbox: ConformanceSandbox
    ) -> None:
        publisher = await conformance_publisher()
        await publisher.aclose()
        await publisher.aclose()
