from __future__ import annotations

import io
import logging
import uuid
from collections.abc import Iterator

import pytest

from crosspost_logs import reset_logging

BOT_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


@pytest.fixture(autouse=True)
def _restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    level = root.level
    handlers = list(root.handlers)
    yield
    reset_logging()
    root.setLevel(level)
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)


@pytest.fixture
def stream() -> io.StringIO:
    return io.StringIO()


@pytest.fixture
def bot_token() -> str:
    return BOT_TOKEN


@pytest.fixture
def unique_secret() -> str:
    """A secret no other test registers: the registry is process-wide and never shrinks."""
    return f"s3cr3t-{uuid.uuid4().hex}"
