"""Shared fixtures: a photo with GPS in its EXIF, and publishers wired to the SMTP sandbox."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from PIL import Image

from crosspost_email import EmailPublisher, EmailSettings
from crosspost_sandbox.conformance import make_test_image
from crosspost_sandbox.smtp import SmtpSandbox

FETLIFE_ADDRESS = "1234abcd@upload.fetlife.example"
GPS_IFD = 0x8825


def write_photo(path: str | os.PathLike[str], width: int = 640, height: int = 480) -> str:
    """A photo-like JPEG whose EXIF holds a camera make and a GPS position."""
    target = make_test_image(path, width, height)
    exif = Image.Exif()
    exif[0x010F] = "TestCam"
    exif[GPS_IFD] = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 36.0)}
    with Image.open(target) as image:
        image.load()
        rgb = image.convert("RGB")
    rgb.save(target, "JPEG", quality=92, exif=exif)
    return target


@pytest.fixture
def make_photo(tmp_path: Any) -> Callable[..., str]:
    """`make_photo(name, width=640, height=480)`: a JPEG with GPS EXIF in `tmp_path`."""
    return lambda name, width=640, height=480: write_photo(tmp_path / name, width, height)


@pytest.fixture
def photo(tmp_path: Any) -> str:
    path = write_photo(tmp_path / "Sunset at the Lake.jpg")
    with Image.open(path) as image:
        assert image.getexif().get_ifd(GPS_IFD), "the test photo must carry GPS data"
    return path


PublisherFactory = Callable[..., EmailPublisher]


@pytest.fixture
async def publishers(smtp_sandbox: SmtpSandbox) -> AsyncIterator[PublisherFactory]:
    """Build publishers against the sandbox (STARTTLS by default); closes them afterwards."""
    made: list[EmailPublisher] = []

    def make(**overrides: Any) -> EmailPublisher:
        values: dict[str, Any] = {
            "smtp_host": smtp_sandbox.host,
            "smtp_port": smtp_sandbox.starttls_port,
            "security": "starttls",
            "sender": smtp_sandbox.username,
            "recipient": FETLIFE_ADDRESS,
            "password": smtp_sandbox.password,
            "ca_file": smtp_sandbox.ca_path,
            "timeout_s": 5.0,
        }
        values.update(overrides)
        publisher = EmailPublisher(EmailSettings(**values))
        made.append(publisher)
        return publisher

    yield make
    for publisher in made:
        await publisher.aclose()


def publish_events(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The `publisher_publish` events logged so far (as their JSON)."""
    return [
        json.loads(record.getMessage())
        for record in caplog.records
        if getattr(record, "crosspost_fields", None)
        and record.crosspost_fields.get("message") == "publisher_publish"
    ]


@pytest.fixture
def events(caplog: pytest.LogCaptureFixture) -> Callable[[], list[dict[str, Any]]]:
    caplog.set_level(logging.DEBUG)
    return lambda: publish_events(caplog)
