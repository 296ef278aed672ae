"""Fixtures of the Telegram publisher's tests: publishers wired to the loopback sandbox."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from crosspost_sandbox.conformance import make_test_image
from crosspost_sandbox.telegram import TelegramSandbox
from crosspost_telegram import TelegramPublisher, create_publisher

MakePublisher = Callable[..., TelegramPublisher]


@pytest.fixture(autouse=True)
def _ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    # python-telegram-bot warns on every RetryAfter unless opted in to its timedelta form;
    # the root config turns warnings into errors (PLATFORMS.md).
    monkeypatch.setenv("PTB_TIMEDELTA", "true")


@pytest.fixture
def photo(tmp_path: Path) -> str:
    """A 1600x1200 photo-like JPEG."""
    return make_test_image(tmp_path / "photo.jpg", 1600, 1200)


@pytest.fixture
async def built_publishers() -> AsyncIterator[list[TelegramPublisher]]:
    made: list[TelegramPublisher] = []
    yield made
    await asyncio.gather(*(p.aclose() for p in made))


def sandbox_settings(sandbox: TelegramSandbox, **overrides: Any) -> dict[str, Any]:
    """A `[publishers.telegram]` table (with the token) pointing at `sandbox`, with short
    client timeouts."""
    values: dict[str, Any] = {
        "channel_id": sandbox.channel_id,
        "bot_token": sandbox.token,
        "api_base_url": sandbox.base_url,
        "connect_timeout_s": 2.0,
        "read_timeout_s": 5.0,
        "media_write_timeout_s": 5.0,
    }
    values.update(overrides)
    return values


@pytest.fixture
def make_publisher(
    telegram_sandbox: TelegramSandbox, built_publishers: list[TelegramPublisher]
) -> MakePublisher:
    """Build a publisher for the sandbox (or `sandbox=`), closed after the test."""

    def make(sandbox: TelegramSandbox | None = None, **overrides: Any) -> TelegramPublisher:
        publisher = create_publisher(sandbox_settings(sandbox or telegram_sandbox, **overrides))
        built_publishers.append(publisher)
        return publisher

    return make


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Forwarder:
    """A TCP relay from a port of our choosing to the sandbox, started on demand: before it
    starts, connections to its port are refused."""

    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self._target = target_port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._target)
        self._writers.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in self._writers:
                writer.close()
            await self._server.wait_closed()


@pytest.fixture
async def forwarder(telegram_sandbox: TelegramSandbox) -> AsyncIterator[Forwarder]:
    relay = Forwarder(telegram_sandbox.port)
    yield relay
    await relay.stop()
