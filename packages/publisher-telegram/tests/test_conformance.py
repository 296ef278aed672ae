"""The shared publisher conformance suite, run against the Telegram sandbox."""

from __future__ import annotations

from typing import Any

import pytest

from crosspost_sandbox.conformance import FaultSpec, PublisherConformance, PublisherFactory
from crosspost_sandbox.telegram import TelegramSandbox
from crosspost_telegram import TelegramPublisher, create_publisher


class TestTelegramConformance(PublisherConformance):
    @pytest.fixture
    def conformance_sandbox(self, telegram_sandbox: TelegramSandbox) -> TelegramSandbox:
        return telegram_sandbox

    @pytest.fixture
    def conformance_publisher(self, telegram_sandbox: TelegramSandbox) -> PublisherFactory:
        async def build() -> TelegramPublisher:
            settings: dict[str, Any] = {
                "channel_id": telegram_sandbox.channel_id,
                "bot_token": telegram_sandbox.token,
                "api_base_url": telegram_sandbox.base_url,
                "connect_timeout_s": 2.0,
                "read_timeout_s": 1.0,
                "media_write_timeout_s": 2.0,
                "max_retry_after_s": 1.0,
            }
            return create_publisher(settings)

        return build

    @pytest.fixture
    def conformance_secrets(self, telegram_sandbox: TelegramSandbox) -> list[str]:
        return [telegram_sandbox.token]

    @pytest.fixture
    def conformance_faults(self) -> list[FaultSpec]:
        return [
            ("flood", {"retry_after": 1}),
            "unauthorized",
            "hang",
            "drop",
            "5xx",
            ("5xx", {"status": 504}),
            "bad_request",
            "forbidden",
            "drop_after_upload",
            "hang_after_upload",
        ]
