"""The conformance suite run against a tiny line-protocol server and publisher, plus proof
that each of its checks fails for a publisher that breaks the rule it pins."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from PIL import Image

from crosspost_logs import RedactingFilter, log_publisher_publish, now_monotonic, register_secret
from crosspost_orchestrator import Publisher, PublishResult
from crosspost_sandbox.base import SandboxServer
from crosspost_sandbox.conformance import (
    FaultSpec,
    PublisherConformance,
    PublisherFactory,
    assert_no_secrets,
    capture_records,
    check_cancellation,
    image_fingerprint,
    make_test_image,
    open_connections,
    run_publish,
)

TOKEN = "line-token-9f8e7d6c5b4a"

_log = logging.getLogger("selftest.line")
# The publisher's own client logger redacts at the source, as real publishers must do for
# their client libraries: a record never carries the token, whatever handler sees it.
_log.addFilter(RedactingFilter())
_leaky_log = logging.getLogger("selftest.leaky")


class LineSandbox(SandboxServer):
    """Line protocol on 127.0.0.1: `<token> POST <caption>` -> `OK <id>`; `<token> PING` ->
    `PONG`. Faults (operation "post"): hang, 5xx, drop."""

    def __init__(self, token: str = TOKEN) -> None:
        super().__init__()
        self.token = token
        self.port = 0
        self.posts: list[str] = []
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[Any]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        assert self._server is not None
        self._server.close()
        # Closing each connection ends its handler; cancelling the handler tasks instead makes
        # asyncio (3.11) log an error from the stream callback.
        for writer in list(self._writers):
            writer.close()
        if self._handlers:
            await asyncio.wait(self._handlers)
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._writers.add(writer)
        self.counters.add("connections")
        self.counters.add("open_connections")
        try:
            while line := await reader.readline():
                self.counters.add("requests")
                await self.latency.sleep()
                token, _, rest = line.decode().rstrip("\n").partition(" ")
                command, _, caption = rest.partition(" ")
                fault = self.faults.take("post") if command == "POST" else None
                if fault is not None and fault.kind == "hang":
                    # Hold the request until the client goes away or the server stops.
                    waits = {
                        asyncio.ensure_future(self.hang()),
                        asyncio.ensure_future(reader.read()),
                    }
                    _done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                    for waiting in pending:
                        waiting.cancel()
                    await asyncio.gather(*pending, return_exceptions=True)
                    break
                if fault is not None and fault.kind == "drop":
                    break
                if fault is not None and fault.kind == "5xx":
                    writer.write(b"ERR 500 internal error\n")
                elif token != self.token:
                    writer.write(b"ERR 401 unauthorized\n")
                elif command == "PING":
                    writer.write(b"PONG\n")
                else:
                    self.posts.append(caption)
                    writer.write(f"OK {len(self.posts)}\n".encode())
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            self.counters.add("open_connections", -1)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            self._handlers.discard(task)
            self._writers.discard(writer)


class LinePublisher(Publisher):
    """A well-behaved publisher: one reused connection, a client timeout, one event per
    publish, the token registered and redacted at the source, connections closed on
    cancellation and in aclose."""

    logger = _log

    def __init__(self, port: int, token: str = TOKEN, *, client_timeout_s: float = 1.0) -> None:
        register_secret(token)
        self.port = port
        self.token = token
        self.client_timeout_s = client_timeout_s
        self._conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    @property
    def platform_name(self) -> str:
        return "line"

    async def _request(self, line: str) -> str:
        if self._conn is None:
            self._conn = await asyncio.open_connection("127.0.0.1", self.port)
        reader, writer = self._conn
        self.logger.debug("sending %s", line)
        writer.write(line.encode() + b"\n")
        await writer.drain()
        reply = await reader.readline()
        if not reply:
            raise ConnectionResetError("the server closed the connection")
        return reply.decode().strip()

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn[1].close()
            with contextlib.suppress(Exception):
                await conn[1].wait_closed()

    async def publish(
        self, image_path: str, caption: str, context: dict[str, Any] | None = None
    ) -> PublishResult:
        start = now_monotonic()
        try:
            async with asyncio.timeout(self.client_timeout_s):
                reply = await self._request(f"{self.token} POST {caption}")
        except asyncio.CancelledError:
            await asyncio.shield(self._drop())
            raise
        except TimeoutError:
            await self._drop()
            reply = f"ERR no answer within {self.client_timeout_s:g} s"
        except OSError as exc:
            await self._drop()
            reply = f"ERR {type(exc).__name__}: {exc}"
        ok = reply.startswith("OK ")
        error = None if ok else reply.removeprefix("ERR ")
        post_id = reply.removeprefix("OK ") if ok else None
        duration = log_publisher_publish(
            self.logger, "line", start, ok, error=error, post_id=post_id
        )
        return PublishResult(ok, "line", post_id=post_id, error=error, duration_ms=duration)

    async def check(self) -> str:
        async with asyncio.timeout(self.client_timeout_s):
            reply = await self._request(f"{self.token} PING")
        if reply != "PONG":
            raise ConnectionError(f"line server refused the check: {reply}")
        return f"line server 127.0.0.1:{self.port} reachable, token accepted"

    async def aclose(self) -> None:
        await self._drop()


@pytest_asyncio.fixture
async def line_sandbox() -> AsyncIterator[LineSandbox]:
    async with LineSandbox() as sandbox:
        yield sandbox


class TestLinePublisherConformance(PublisherConformance):
    conformance_deadline_s = 10.0

    @pytest.fixture
    def conformance_sandbox(self, line_sandbox: LineSandbox) -> LineSandbox:
        return line_sandbox

    @pytest.fixture
    def conformance_publisher(self, line_sandbox: LineSandbox) -> PublisherFactory:
        async def build() -> Publisher:
            return LinePublisher(line_sandbox.port, client_timeout_s=0.5)

        return build

    @pytest.fixture
    def conformance_secrets(self) -> list[str]:
        return [TOKEN]

    @pytest.fixture
    def conformance_faults(self) -> list[FaultSpec]:
        return ["5xx", "drop", ("hang", {"times": 1})]


# -- each check fails for the publisher that breaks its rule -------------------------------
@pytest.fixture
def image(tmp_path: Path) -> str:
    return make_test_image(tmp_path / "in.jpg", 64, 48)


class RaisingPublisher(LinePublisher):
    async def publish(
        self, image_path: str, caption: str, context: dict[str, Any] | None = None
    ) -> PublishResult:
        raise ConnectionRefusedError("no server")


class TwiceLoggingPublisher(LinePublisher):
    async def publish(
        self, image_path: str, caption: str, context: dict[str, Any] | None = None
    ) -> PublishResult:
        log_publisher_publish(self.logger, "line", now_monotonic(), False, error="first try")
        return await super().publish(image_path, caption, context)


class SilentPublisher(LinePublisher):
    logger = logging.getLogger("selftest.silent")

    async def publish(
        self, image_path: str, caption: str, context: dict[str, Any] | None = None
    ) -> PublishResult:
        self.logger.disabled = True
        try:
            return await super().publish(image_path, caption, context)
        finally:
            self.logger.disabled = False


class TouchingPublisher(LinePublisher):
    async def publish(
        self, image_path: str, caption: str, context: dict[str, Any] | None = None
    ) -> PublishResult:
        with Image.open(image_path) as img:
            img.load()
            img.save(image_path, "JPEG", quality=50)  # "optimises" the original in place
        return await super().publish(image_path, caption, context)


class LeakyLoggingPublisher(LinePublisher):
    logger = _leaky_log  # no redacting filter on this client logger


class NoTimeoutPublisher(LinePublisher):
    def __init__(self, port: int) -> None:
        super().__init__(port, client_timeout_s=3600)


class StubbornPublisher(LinePublisher):
    async def publish(
        self, image_path: str, caption: str, context: dict[str, Any] | None = None
    ) -> PublishResult:
        try:
            return await super().publish(image_path, caption, context)
        except asyncio.CancelledError:
            return PublishResult(False, "line", error="cancelled")


class LeakingConnectionPublisher(LinePublisher):
    """Forgets its connection on cancellation and in aclose (closed by the test itself)."""

    leaked: list[asyncio.StreamWriter]

    async def _drop(self) -> None:
        if self._conn is not None:
            self.leaked = [self._conn[1]]
        self._conn = None


async def test_run_publish_fails_a_publisher_that_raises(
    line_sandbox: LineSandbox, image: str
) -> None:
    with pytest.raises(AssertionError, match="publish raised ConnectionRefusedError"):
        await run_publish(RaisingPublisher(line_sandbox.port), image, "x")


async def test_run_publish_fails_two_events_for_one_publish(
    line_sandbox: LineSandbox, image: str
) -> None:
    publisher = TwiceLoggingPublisher(line_sandbox.port)
    try:
        with pytest.raises(AssertionError, match=r"exactly one publisher_publish event.*got 2"):
            await run_publish(publisher, image, "x")
    finally:
        await publisher.aclose()


async def test_run_publish_fails_a_publish_without_event(
    line_sandbox: LineSandbox, image: str
) -> None:
    publisher = SilentPublisher(line_sandbox.port)
    try:
        with pytest.raises(AssertionError, match="got 0"):
            await run_publish(publisher, image, "x")
    finally:
        await publisher.aclose()


async def test_run_publish_fails_a_publisher_that_rewrites_the_image(
    line_sandbox: LineSandbox, image: str
) -> None:
    publisher = TouchingPublisher(line_sandbox.port)
    try:
        with pytest.raises(AssertionError, match="input image was modified"):
            await run_publish(publisher, image, "x")
    finally:
        await publisher.aclose()


async def test_run_publish_fails_a_publisher_that_only_touches_the_mtime(
    line_sandbox: LineSandbox, image: str
) -> None:
    class Touch(LinePublisher):
        async def publish(
            self, image_path: str, caption: str, context: dict[str, Any] | None = None
        ) -> PublishResult:
            stat = os.stat(image_path)
            os.utime(image_path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
            return await super().publish(image_path, caption, context)

    publisher = Touch(line_sandbox.port)
    try:
        with pytest.raises(AssertionError, match="input image was modified"):
            await run_publish(publisher, image, "x")
    finally:
        await publisher.aclose()


async def test_run_publish_fails_a_publish_that_outlives_the_deadline(
    line_sandbox: LineSandbox, image: str
) -> None:
    line_sandbox.inject("hang", operation="post", times=None)
    publisher = NoTimeoutPublisher(line_sandbox.port)
    try:
        with pytest.raises(AssertionError, match=r"did not return within 0\.3 s"):
            await run_publish(publisher, image, "x", deadline_s=0.3)
    finally:
        await publisher.aclose()


async def test_secrets_check_catches_a_library_logging_the_token(
    line_sandbox: LineSandbox, image: str
) -> None:
    publisher = LeakyLoggingPublisher(line_sandbox.port)
    try:
        with capture_records() as records:
            await publisher.publish(image, "x")
    finally:
        await publisher.aclose()
    with pytest.raises(
        AssertionError, match=r"secret #0 in a DEBUG record of logger 'selftest\.leaky'"
    ) as info:
        assert_no_secrets([TOKEN], records)
    assert TOKEN not in str(info.value)


async def test_secrets_check_passes_the_redacting_publisher_and_scans_texts(
    line_sandbox: LineSandbox, image: str
) -> None:
    publisher = LinePublisher(line_sandbox.port)
    try:
        with capture_records() as records:
            await publisher.publish(image, "x")
    finally:
        await publisher.aclose()
    assert any(r.name == "selftest.line" and r.levelno == logging.DEBUG for r in records)
    assert_no_secrets([TOKEN], records)
    with pytest.raises(AssertionError, match="result or error message"):
        assert_no_secrets([TOKEN], texts=[f"401 for /bot{TOKEN}/"])


async def test_capture_records_lowers_library_levels_and_restores_them() -> None:
    library = logging.getLogger("selftest.quiet_library")
    library.setLevel(logging.WARNING)
    library.propagate = False
    try:
        with capture_records() as records:
            library.debug("chatty detail")
        assert [r.getMessage() for r in records if r.name == library.name] == ["chatty detail"]
        assert library.level == logging.WARNING
        assert library.handlers == []
    finally:
        library.propagate = True


async def test_cancellation_check_fails_a_publisher_that_swallows_cancel(
    line_sandbox: LineSandbox, image: str
) -> None:
    with pytest.raises(AssertionError, match="swallowed the cancellation"):
        await check_cancellation(StubbornPublisher(line_sandbox.port), line_sandbox, image, "x")


async def test_cancellation_check_fails_a_publisher_that_leaves_connections_open(
    line_sandbox: LineSandbox, image: str
) -> None:
    publisher = LeakingConnectionPublisher(line_sandbox.port)
    try:
        with pytest.raises(AssertionError, match="still holds 1 open connection"):
            await check_cancellation(publisher, line_sandbox, image, "x")
    finally:
        for writer in publisher.leaked:
            writer.close()
            await writer.wait_closed()
    assert open_connections(line_sandbox) is not None


async def test_open_connections_reads_an_attribute_or_a_counter(line_sandbox: LineSandbox) -> None:
    assert open_connections(line_sandbox) is None  # the counter appears with the first client
    reader, writer = await asyncio.open_connection("127.0.0.1", line_sandbox.port)
    writer.write(f"{TOKEN} PING\n".encode())
    assert await reader.readline() == b"PONG\n"
    assert open_connections(line_sandbox) == 1
    writer.close()
    await writer.wait_closed()

    class WithAttribute:
        open_connections = 3

    assert open_connections(WithAttribute()) == 3
    assert open_connections(object()) is None


def test_make_test_image_writes_a_photo_like_jpeg(tmp_path: Path) -> None:
    path = make_test_image(tmp_path / "p.jpg", 800, 600, seed=3)
    with Image.open(path) as img:
        assert img.format == "JPEG"
        assert img.size == (800, 600)
        colours = img.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is None or len(colours) > 1000  # many colours: not a flat test card
    assert os.path.getsize(path) > 20_000
    assert image_fingerprint(path).sha256 == hashlib.sha256(Path(path).read_bytes()).hexdigest()
