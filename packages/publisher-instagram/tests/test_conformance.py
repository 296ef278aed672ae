"""The shared publisher conformance suite, run against InstagramSandbox."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from crosspost_instagram import InstagramPublisher, InstagramSettings
from crosspost_sandbox.conformance import FaultSpec, PublisherConformance, PublisherFactory
from crosspost_sandbox.instagram import InstagramSandbox


class TestInstagramConformance(PublisherConformance):
    @pytest.fixture
    def conformance_sandbox(self, instagram_sandbox: InstagramSandbox) -> InstagramSandbox:
        return instagram_sandbox

    @pytest.fixture
    def conformance_publisher(
        self, make_settings: Callable[..., InstagramSettings]
    ) -> PublisherFactory:
        async def build() -> InstagramPublisher:
            return InstagramPublisher(make_settings(timeout_s=2.0))

        return build

    @pytest.fixture
    def conformance_secrets(self, instagram_sandbox: InstagramSandbox) -> list[str]:
        # The sandbox's list grows with every session id and authorization it hands out,
        # so the check at the end of a test covers the sessions made during it.
        return instagram_sandbox.issued_secrets

    @pytest.fixture
    def conformance_faults(self) -> list[FaultSpec]:
        return [
            "hang",
            "drop",
            "5xx",
            "throttle",
            "please_wait",
            "challenge",
            "two_factor",
            "bad_password",
            "login_required",
            "feedback",
            ("bad_request", {"operation": "configure"}),
            ("drop_after", {"operation": "configure"}),
            ("hang_after", {"operation": "configure"}),
        ]
