"""How the bench builds the real publishers against the sandbox and runs them through the
real `WorkflowOrchestrator`, one `asyncio.run` per run (as one `crosspost publish` does)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crosspost_orchestrator import Publisher, PublishResult, WorkflowResult

CAPTION = "Golden hour over the old harbour, shot from the pier #sunset #harbour #photography"
PLATFORMS = ("email", "telegram", "instagram")
#: The sandbox server each platform talks to (keys of `SandboxHost.details`).
SANDBOX_OF = {"email": "smtp", "telegram": "telegram", "instagram": "instagram"}
#: Keys of each settings table that are secrets: they travel in the environment, never TOML.
SECRET_KEYS = {"email": ("password",), "telegram": ("bot_token",), "instagram": ("password",)}


def _factories() -> dict[str, Any]:
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group="crosspost.publishers")}


def available(details: Mapping[str, Any]) -> tuple[str, ...]:
    """The platforms this install can publish to: a sandbox server and a loadable plugin."""
    factories = _factories()
    found = []
    for platform in PLATFORMS:
        if platform not in factories or not details.get(SANDBOX_OF[platform]):
            continue
        try:
            factories[platform].load()
        except (ImportError, AttributeError):
            continue
        found.append(platform)
    return tuple(found)


def telegram_spec() -> Any:
    """The ImageSpec the Telegram publisher asks for (1280 wide), from the publisher."""
    from crosspost_telegram import telegram_image_spec

    return telegram_image_spec()


def instagram_spec() -> Any:
    """The ImageSpec the Instagram publisher asks for (1080 wide), from the publisher."""
    from crosspost_instagram import instagram_image_spec

    return instagram_image_spec()


def settings(
    platform: str, details: Mapping[str, Any], scratch: Path, chat: str | None = None
) -> dict[str, Any]:
    """The `[publishers.<platform>]` table (secrets included) for the sandbox in `details`."""
    if platform == "email":
        smtp = details["smtp"]
        return {
            "smtp_host": smtp["host"],
            "smtp_port": smtp["starttls_port"],
            "security": "starttls",
            "username": smtp["username"],
            "sender": smtp["username"],
            "recipient": "1234@upload.fetlife.example",
            "ca_file": smtp["ca_path"],
            "password": smtp["password"],
        }
    if platform == "telegram":
        telegram = details["telegram"]
        return {
            "channel_id": chat or telegram["chats"][0],
            "api_base_url": telegram["base_url"],
            "bot_token": telegram["token"],
        }
    if platform == "instagram":
        instagram = details["instagram"]
        return {
            "username": instagram["username"],
            "session_file": str(scratch / "instagram-session.json"),
            "proxy": instagram["proxy"],
            "ca_file": instagram["ca_path"],
            "password": instagram["password"],
        }
    raise ValueError(f"unknown platform {platform!r}")


def build(platform: str, table: Mapping[str, Any]) -> Publisher:
    """A publisher from its plugin's factory (entry point `crosspost.publishers`), as the
    CLI builds it."""
    publisher = _factories()[platform].load()(dict(table))
    assert isinstance(publisher, Publisher)
    return publisher


class Named(Publisher):
    """One of N publishers of the same platform under a name of its own.

    The orchestrator keys results by platform name, so sixteen Telegram channels in one run
    need sixteen names; everything else is delegated unchanged.
    """

    def __init__(self, inner: Publisher, name: str) -> None:
        self.inner = inner
        self._name = name

    @property
    def platform_name(self) -> str:
        return self._name

    @property
    def timeout_s(self) -> float | None:
        return self.inner.timeout_s

    def is_enabled(self) -> bool:
        return self.inner.is_enabled()

    async def validate(self, image_path: str, caption: str) -> None:
        await self.inner.validate(image_path, caption)

    def format_caption(self, caption: str) -> str:
        return self.inner.format_caption(caption)

    async def publish(
        self, image_path: str, caption: str, context: dict[str, Any] | None = None
    ) -> PublishResult:
        return await self.inner.publish(image_path, caption, context)

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass
class Run:
    """One measured `execute`: the orchestrator's result plus the wall time around it."""

    result: WorkflowResult
    execute_ms: float

    @property
    def parallel_ms(self) -> int:
        return self.result.publish_parallel_ms

    @property
    def loop_lag_ms(self) -> int:
        return self.result.loop_lag_max_ms


async def _execute(publishers: Sequence[Publisher], image: Path, timeout_s: float) -> Run:
    from crosspost_orchestrator.orchestrator import WorkflowOrchestrator

    async with WorkflowOrchestrator(publishers, timeout_s=timeout_s) as orchestrator:
        start = time.perf_counter()
        result = await orchestrator.execute(str(image), caption_override=CAPTION)
        return Run(result, (time.perf_counter() - start) * 1000)


def run_once(publishers: Sequence[Publisher], image: Path, timeout_s: float = 60.0) -> Run:
    """Publish `image` to `publishers` through the orchestrator on a fresh event loop; the
    publishers are closed afterwards. Raises if any platform failed (a failed publish is
    fast and would make every timing meaningless)."""
    run = asyncio.run(_execute(publishers, image, timeout_s))
    failed = {n: r.error for n, r in run.result.publish_results.items() if not r.success}
    if failed or not run.result.publish_results:
        raise RuntimeError(f"publish failed: {failed or run.result.error}")
    return run


def idle_loop_lag_ms(duration_s: float = 0.3, interval_s: float = 0.005) -> int:
    """The machine's own noise floor for loop lag: the largest lateness of a 5 ms timer on
    an event loop with nothing else to do (the orchestrator's monitor, without a publish)."""

    async def watch() -> float:
        loop = asyncio.get_running_loop()
        worst = 0.0
        end = loop.time() + duration_s
        while loop.time() < end:
            expected = loop.time() + interval_s
            await asyncio.sleep(interval_s)
            worst = max(worst, loop.time() - expected)
        return worst

    return round(asyncio.run(watch()) * 1000)
