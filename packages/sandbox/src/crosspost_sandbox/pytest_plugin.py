"""pytest plugin (entry point `pytest11`): fixtures `smtp_sandbox`, `telegram_sandbox`,
`instagram_sandbox`, each a started server on 127.0.0.1, stopped after the test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest_asyncio

if TYPE_CHECKING:
    from crosspost_sandbox.instagram import InstagramSandbox
    from crosspost_sandbox.smtp import SmtpSandbox
    from crosspost_sandbox.telegram import TelegramSandbox


@pytest_asyncio.fixture
async def smtp_sandbox() -> AsyncIterator[SmtpSandbox]:
    from crosspost_sandbox.smtp import SmtpSandbox

    async with SmtpSandbox() as sandbox:
        yield sandbox


@pytest_asyncio.fixture
async def telegram_sandbox() -> AsyncIterator[TelegramSandbox]:
    from crosspost_sandbox.telegram import TelegramSandbox

    async with TelegramSandbox() as sandbox:
        yield sandbox


@pytest_asyncio.fixture
async def instagram_sandbox() -> AsyncIterator[InstagramSandbox]:
    from crosspost_sandbox.instagram import InstagramSandbox

    async with InstagramSandbox() as sandbox:
        yield sandbox
