"""Image sources: where the image of a run comes from, and where it goes after."""

from __future__ import annotations

import asyncio
import hashlib
import os
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from crosspost_orchestrator.errors import InputError

__all__ = ["ImageSource", "SelectedImage", "SingleImageSource", "sha256_file"]


_KEPT_CONTROLS = frozenset("\n\t")


def clean_caption(text: str) -> str:
    """`text` without control characters (NUL, escape sequences, ...), keeping newlines and
    tabs; Windows line ends become `\\n`; surrounding whitespace is trimmed."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    kept = (ch for ch in text if ch in _KEPT_CONTROLS or unicodedata.category(ch) != "Cc")
    return "".join(kept).strip()


def read_caption(image_path: str) -> str:
    """The caption of `image_path`: the first line of its `<stem>.txt`, cleaned (empty
    without one). Raises `InputError` for a caption file that cannot be read as UTF-8."""
    sidecar = sidecar_of(image_path)
    try:
        with open(sidecar, encoding="utf-8") as handle:
            first = handle.readline()
    except FileNotFoundError:
        return ""
    except UnicodeDecodeError as exc:
        raise InputError(f"caption file {sidecar} is not UTF-8 text: save it as UTF-8") from exc
    except OSError as exc:
        raise InputError(f"caption file {sidecar} cannot be read ({exc.strerror})") from exc
    return clean_caption(first.removeprefix("\ufeff"))


def sidecar_of(image_path: str) -> str:
    """The caption file beside `image_path`."""
    return os.path.splitext(image_path)[0] + ".txt"


@dataclass(frozen=True, slots=True)
class SelectedImage:
    """The image one run publishes: absolute path, display name, caption, content hash."""

    path: str
    name: str
    caption: str
    sha256: str


@runtime_checkable
class ImageSource(Protocol):
    """Chooses the image of a run and archives it once every platform has it."""

    async def select(self, name: str | None, platforms: Collection[str]) -> SelectedImage:
        """The image named `name`, or (None) the next one not yet on all `platforms`.

        Raises `InputError` for a named image that cannot be used and
        `NothingToPublishError` when nothing is waiting.
        """
        ...

    async def archive(self, image: SelectedImage) -> str | None:
        """Move the image (and what belongs to it) out of the queue; returns where to."""
        ...


def sha256_file(path: str, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file's content, read in chunks (call it off the event loop)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


class SingleImageSource:
    """The source of a run without a queue: `select(name)` is the image's path.

    The caption is the sidecar `<image>.txt`'s first line when there is one, else empty.
    Archiving does nothing: an explicit file stays where it is.
    """

    async def select(self, name: str | None, platforms: Collection[str]) -> SelectedImage:
        if name is None:
            raise InputError("no image given: pass the path of the image to publish")
        return await asyncio.to_thread(self._select_sync, name)

    @staticmethod
    def _select_sync(name: str) -> SelectedImage:
        path = os.path.abspath(name)
        if not os.path.exists(path):
            raise InputError(f"image not found: {name}: check the path")
        if not os.path.isfile(path):
            raise InputError(f"not a file: {name}: pass the path of an image file")
        try:
            digest = sha256_file(path)
        except OSError as exc:
            raise InputError(f"cannot read {name}: {exc.strerror or exc}") from exc
        caption = read_caption(path)
        return SelectedImage(path=path, name=os.path.basename(path), caption=caption, sha256=digest)

    async def archive(self, image: SelectedImage) -> str | None:
        return None
