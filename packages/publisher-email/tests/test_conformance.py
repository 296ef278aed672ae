"""The shared publisher conformance checks, run against the SMTP sandbox."""

from __future__ import annotations

import pytest

from crosspost_email import EmailPublisher, EmailSettings
from crosspost_sandbox.conformance import FaultSpec, PublisherConformance, PublisherFactory
from crosspost_sandbox.smtp import SmtpSandbox


class TestEmailConformance(PublisherConformance):
    @pytest.fixture
    def conformance_sandbox(self, smtp_sandbox: SmtpSandbox) -> SmtpSandbox:
        return smtp_sandbox

    @pytest.fixture
    def conformance_publisher(self, smtp_sandbox: SmtpSandbox) -> PublisherFactory:
        async def build() -> EmailPublisher:
            return EmailPublisher(
                EmailSettings(
                    smtp_host=smtp_sandbox.host,
                    smtp_port=smtp_sandbox.starttls_port,
                    sender=smtp_sandbox.username,
                    recipient="1234abcd@upload.fetlife.example",
                    password=smtp_sandbox.password,
                    ca_file=smtp_sandbox.ca_path,
                    confirmation_to_sender=True,
                    timeout_s=1.0,
                )
            )

        return build

    @pytest.fixture
    def conformance_secrets(self, smtp_sandbox: SmtpSandbox) -> list[str]:
        return [smtp_sandbox.password]

    @pytest.fixture
    def conformance_faults(self) -> list[FaultSpec]:
        return [
            "reject_auth",
            "transient_451",
            ("transient_451", {"operation": "rcpt"}),
            "5xx",
            "reject_recipient",
            "disconnect",
            ("disconnect", {"operation": "data"}),
            "disconnect_after_data",
            ("hang", {"operation": "data"}),
            "hang",
        ]
