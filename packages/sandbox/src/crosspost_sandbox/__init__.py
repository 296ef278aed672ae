"""Loopback SMTP, Telegram Bot API and Instagram servers with latency and fault injection, and
the publisher conformance suite.

The servers are imported on first use (`crosspost_sandbox.SmtpSandbox` or
`from crosspost_sandbox.smtp import SmtpSandbox`), so importing the package stays cheap.
"""

from __future__ import annotations

import importlib
from importlib.metadata import version as _version
from typing import TYPE_CHECKING, Any

from crosspost_sandbox.base import SandboxServer
from crosspost_sandbox.faults import Fault, FaultInjector, Latency, SafeCounter

if TYPE_CHECKING:
    from crosspost_sandbox.instagram import InstagramSandbox, ReceivedUpload
    from crosspost_sandbox.smtp import ReceivedMessage, SmtpSandbox
    from crosspost_sandbox.telegram import ReceivedPhoto, SandboxChat, TelegramSandbox
    from crosspost_sandbox.tls import SandboxCA

__version__ = _version("crosspost-sandbox")

_LAZY = {
    "SmtpSandbox": "crosspost_sandbox.smtp",
    "ReceivedMessage": "crosspost_sandbox.smtp",
    "TelegramSandbox": "crosspost_sandbox.telegram",
    "ReceivedPhoto": "crosspost_sandbox.telegram",
    "SandboxChat": "crosspost_sandbox.telegram",
    "InstagramSandbox": "crosspost_sandbox.instagram",
    "ReceivedUpload": "crosspost_sandbox.instagram",
    # trustme and cryptography: about 60 ms of imports, for the servers with TLS only.
    "SandboxCA": "crosspost_sandbox.tls",
}

__all__ = [
    "Fault",
    "FaultInjector",
    "InstagramSandbox",
    "Latency",
    "ReceivedMessage",
    "ReceivedPhoto",
    "ReceivedUpload",
    "SafeCounter",
    "SandboxCA",
    "SandboxChat",
    "SandboxServer",
    "SmtpSandbox",
    "TelegramSandbox",
    "__version__",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'crosspost_sandbox' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
