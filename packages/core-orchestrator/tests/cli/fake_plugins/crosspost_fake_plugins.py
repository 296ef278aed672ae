"""Publisher plugins for the CLI tests, installed per test as a real distribution (a
dist-info folder with entry points on sys.path / PYTHONPATH).

Each publish appends one JSON line to `<outbox_dir>/<platform>.jsonl`, so a test counts the
posts a platform "received" from real files. `fail = true` makes every publish fail,
`delay_s` makes it slow, `max_caption` cuts captions like a real platform does.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from crosspost_logs import log_publisher_publish, now_monotonic
from crosspost_orchestrator import (
    CrosspostError,
    Publisher,
    PublishResult,
    secret_field,
    settings_from_mapping,
)

logger = logging.getLogger("crosspost_fake_plugins")

_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"RIFF")


@dataclass(frozen=True)
class FakeSettings:
    outbox_dir: str
    fail: bool = False
    delay_s: float = 0.0
    max_caption: int = 50
    timeout_s: float | None = None


@dataclass(frozen=True)
class FakeSecretSettings:
    outbox_dir: str
    password: str = secret_field()
    fail: bool = False
    delay_s: float = 0.0
    max_caption: int = 50
    timeout_s: float | None = None


class FakePublisher(Publisher):
    def __init__(self, name: str, settings: FakeSettings | FakeSecretSettings) -> None:
        self._name = name
        self.settings = settings

    @property
    def platform_name(self) -> str:
        return self._name

    @property
    def timeout_s(self) -> float | None:
        return self.settings.timeout_s

    def format_caption(self, caption: str) -> str:
        return caption[: self.settings.max_caption]

    async def validate(self, image_path: str, caption: str) -> None:
        with open(image_path, "rb") as handle:
            head = handle.read(8)
        if not head.startswith(_MAGIC):
            raise ValueError("not a JPEG, PNG or WebP image")

    async def preview(self, image_path: str, caption: str) -> dict[str, Any]:
        return {"caption": self.format_caption(caption), "bytes": os.path.getsize(image_path)}

    async def check(self) -> str:
        if self.settings.fail:
            raise CrosspostError(f"{self._name} is unreachable (fake)")
        return f"{self._name} reachable (fake)"

    async def publish(
        self, image_path: str, caption: str, context: dict[str, Any] | None = None
    ) -> PublishResult:
        start = now_monotonic()
        if self.settings.delay_s:
            await asyncio.sleep(self.settings.delay_s)
        if self.settings.fail:
            error = f"{self._name} refused the post (fake)"
            duration = log_publisher_publish(
                logger, self._name, start, False, error=error, attempts=1
            )
            return PublishResult(False, self._name, error=error, duration_ms=duration)
        outbox = os.path.join(self.settings.outbox_dir, f"{self._name}.jsonl")
        record = {
            "image": os.path.basename(image_path),
            "caption": self.format_caption(caption),
            "bytes": os.path.getsize(image_path),
        }
        await asyncio.to_thread(_append, outbox, json.dumps(record))
        with open(outbox, encoding="utf-8") as handle:
            post_id = f"{self._name}-{sum(1 for _ in handle)}"
        duration = log_publisher_publish(
            logger, self._name, start, True, attempts=1, post_id=post_id
        )
        return PublishResult(True, self._name, post_id=post_id, duration_ms=duration)


def _append(path: str, line: str) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")


def create_fakea(settings: Mapping[str, Any]) -> Publisher:
    return FakePublisher("fakea", settings_from_mapping(FakeSettings, "fakea", settings))


def create_fakeb(settings: Mapping[str, Any]) -> Publisher:
    return FakePublisher("fakeb", settings_from_mapping(FakeSecretSettings, "fakeb", settings))


def create_fakec(settings: Mapping[str, Any]) -> Publisher:
    return FakePublisher("fakec", settings_from_mapping(FakeSettings, "fakec", settings))
