"""The public entry points: prepare, probe, ensure_max_width (sync and async)."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
from concurrent.futures import Future

from .cache import SingleFlight, cache_dir
from .decodes import decodes
from .formats import FileIdentity, identify_file, open_image
from .render import EXTENSIONS, probe_file, render
from .spec import MIME_TYPES, ImageInfo, ImageSpec, PreparedImage

__all__ = [
    "ensure_max_width",
    "ensure_max_width_async",
    "prepare_image",
    "prepare_image_async",
    "prepare_stats",
    "probe_image",
]

# Part of every derived file's name: bump it when renditions change, so a shared cache
# directory never serves a file made by an older algorithm.
_RENDITION_VERSION = 2


def _still_on_disk(result: PreparedImage) -> bool:
    if not result.derived:
        return True
    try:
        return os.stat(result.path).st_size == result.size_bytes
    except OSError:
        return False


_renditions: SingleFlight[PreparedImage] = SingleFlight(_still_on_disk)
_probes: SingleFlight[ImageInfo] = SingleFlight(lambda _info: True)


def prepare_stats() -> dict[str, int]:
    """Counters of `prepare_image*` since the process started.

    `computed`: renditions worked out (including "the original is fine"); `cache_hits`:
    answered from memory or from a file already in the cache directory; `joined`: waited
    for an identical request already in progress instead of computing again.
    `decodes`: source images decoded to make renditions; `decode_reuses`: renditions made
    from a reduced JPEG decode that another rendition of the same file had made or was
    making (renditions of one photo for different specs share one decode).
    """
    return {**_renditions.snapshot(), **decodes.snapshot()}


def _stem(ident: FileIdentity, spec: ImageSpec) -> str:
    text = repr((_RENDITION_VERSION, ident, spec))
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:40]


def _from_disk(directory: str, stem: str) -> PreparedImage | None:
    """A rendition another process (or an earlier run) already wrote for the same key."""
    for fmt, ext in EXTENSIONS.items():
        path = os.path.join(directory, stem + ext)
        try:
            size = os.stat(path).st_size
            with open_image(path, max_pixels=2**62) as image:
                width, height = image.size
        except (OSError, ValueError):
            continue
        return PreparedImage(path, width, height, size, fmt, MIME_TYPES[fmt], derived=True)
    return None


def _compute(image_path: str, ident: FileIdentity, spec: ImageSpec) -> tuple[PreparedImage, bool]:
    """The rendition, and whether it had to be computed (False: found in the cache dir)."""
    directory = cache_dir()
    stem = _stem(ident, spec)
    reused = _from_disk(directory, stem)
    if reused is not None:
        return reused, False
    made = render(image_path, ident, spec, directory, stem)
    if made is not None:
        return made, True
    info = _probe(image_path, ident, spec.max_pixels)
    original = PreparedImage(
        path=image_path,
        width=info.width,
        height=info.height,
        size_bytes=ident.size,
        format=info.format,
        mime_type=info.mime_type,
        derived=False,
    )
    return original, True


def _for_caller(result: PreparedImage, image_path: str) -> PreparedImage:
    # The cache is keyed by real path; an original is handed back under the caller's name.
    if result.derived or result.path == image_path:
        return result
    return dataclasses.replace(result, path=image_path)


def _prepare_or_join(image_path: str, spec: ImageSpec) -> PreparedImage | Future[PreparedImage]:
    """Answer from the cache, compute as the owner, or return the running flight to join."""
    ident = identify_file(image_path)
    key = (ident, spec)
    found = _renditions.begin(key)
    if found is None:
        try:
            result, computed = _compute(image_path, ident, spec)
        except BaseException as exc:
            _renditions.fail(key, exc)
            raise
        _renditions.finish(key, result, computed=computed)
        return _for_caller(result, image_path)
    if isinstance(found, Future):
        return found
    return _for_caller(found, image_path)


def prepare_image(image_path: str, spec: ImageSpec) -> PreparedImage:
    """Return a rendition of `image_path` that meets `spec` (blocking; call from a thread).

    The original is returned (`derived=False`) when it already meets the spec: size, ratio,
    format, byte size and, with `strip_metadata`, no EXIF/XMP and no orientation to apply.
    Otherwise a derived file is written atomically into the cache directory. Identical
    requests (same file path, size, mtime and spec) are computed once and then cached.
    The input file is only ever opened for reading.

    Raises ImageError for missing, empty, corrupt, truncated, oversized, animated or
    unsupported input, and for a ratio outside the spec's range with `fit="reject"`.
    """
    outcome = _prepare_or_join(image_path, spec)
    if isinstance(outcome, Future):
        return _for_caller(outcome.result(), image_path)
    return outcome


async def prepare_image_async(image_path: str, spec: ImageSpec) -> PreparedImage:
    """`prepare_image` off the event loop; waiting for an identical request holds no thread."""
    outcome = await asyncio.to_thread(_prepare_or_join, image_path, spec)
    if isinstance(outcome, Future):
        return _for_caller(await asyncio.wrap_future(outcome), image_path)
    return outcome


def ensure_max_width(image_path: str, max_width: int = 1280) -> str:
    """Return `image_path` itself if it is at most `max_width` pixels wide (as displayed),
    else the path of a derived copy scaled down to `max_width`, in the same format and with
    its metadata kept. The input file is never written."""
    if max_width < 1:
        raise ValueError(f"max_width must be a positive number of pixels, not {max_width!r}")
    spec = ImageSpec(max_width=max_width, strip_metadata=False, format="keep")
    return prepare_image(image_path, spec).path


async def ensure_max_width_async(image_path: str, max_width: int = 1280) -> str:
    """`ensure_max_width` in a worker thread, so the event loop never blocks."""
    return await asyncio.to_thread(ensure_max_width, image_path, max_width)


def _probe(image_path: str, ident: FileIdentity, max_pixels: int) -> ImageInfo:
    key = (ident, max_pixels)
    found = _probes.begin(key)
    if found is None:
        try:
            info = probe_file(image_path, max_pixels)
        except BaseException as exc:
            _probes.fail(key, exc)
            raise
        _probes.finish(key, info)
        return info
    if isinstance(found, Future):
        return found.result()
    return found


def probe_image(image_path: str, max_pixels: int = 100_000_000) -> ImageInfo:
    """Check that `image_path` is a still JPEG, PNG or WEBP of at most `max_pixels` pixels
    that decodes completely, and return its displayed size and format. Writes nothing.

    Raises ImageError naming the file and the problem otherwise. Results are cached by
    (path, size, mtime), so publishers validating the same file pay once.
    """
    return _probe(image_path, identify_file(image_path), max_pixels)
