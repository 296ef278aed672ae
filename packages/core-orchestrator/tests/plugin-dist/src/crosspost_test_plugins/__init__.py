"""Publisher plugins for crosspost-core-orchestrator's plugin tests.

`dummy` builds a working publisher from a typed settings table; `failing`'s factory raises;
`wrongtype`'s factory returns something that is not a Publisher; `broken` cannot be imported.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from crosspost_orchestrator import Publisher, PublishResult, settings_from_mapping


@dataclass(frozen=True)
class DummySettings:
    greeting: str = "hello"
    timeout_s: float | None = None


class DummyPublisher(Publisher):
    def __init__(self, settings: DummySettings) -> None:
        self.settings = settings

    @property
    def platform_name(self) -> str:
        return "dummy"

    @property
    def timeout_s(self) -> float | None:
        return self.settings.timeout_s

    async def publish(
        self, image_path: str, caption: str, context: dict[str, Any] | None = None
    ) -> PublishResult:
        return PublishResult(success=True, platform="dummy", post_id=self.settings.greeting)


def create_dummy(settings: Mapping[str, Any]) -> Publisher:
    return DummyPublisher(settings_from_mapping(DummySettings, "dummy", settings))


def create_failing(settings: Mapping[str, Any]) -> Publisher:
    raise RuntimeError("the failing plugin always fails to build")


def create_wrong_type(settings: Mapping[str, Any]) -> Publisher:
    return "not a publisher"  # type: ignore[return-value]
