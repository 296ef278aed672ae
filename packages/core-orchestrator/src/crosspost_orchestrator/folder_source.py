"""The operator's queue: a folder of images, each with an optional caption file beside it.

Images are `.jpg .jpeg .png .webp` files (any case; names starting with `.` are ignored),
taken in order of their names. `<stem>.txt` beside an image is its caption file: its first
line is the caption, and the whole file moves with the image. Once every enabled platform has
an image (as the ledger says, by content hash), the image and its caption file move to the
archive folder by an atomic rename on the same file system; a name already taken there gets
a `-1`, `-2`, ... suffix. Nothing is ever deleted or overwritten.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import shutil
from collections.abc import Collection, Iterable
from pathlib import Path

from crosspost_orchestrator.errors import ConfigError, InputError, NothingToPublishError
from crosspost_orchestrator.ledger import Ledger
from crosspost_orchestrator.source import (
    SelectedImage,
    clean_caption,
    read_caption,
    sha256_file,
    sidecar_of,
)

__all__ = ["IMAGE_SUFFIXES", "FolderSource", "clean_caption"]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp"})


def _is_image(entry: os.DirEntry[str]) -> bool:
    if entry.name.startswith("."):
        return False
    if os.path.splitext(entry.name)[1].lower() not in IMAGE_SUFFIXES:
        return False
    try:
        return entry.is_file()
    except OSError:
        return False


def _same_folder(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _move_no_clobber(src: str, dst: str) -> None:
    """Move `src` to `dst` atomically, failing with `FileExistsError` if `dst` exists."""
    try:
        # link() refuses an existing target, so two movers can never overwrite each other.
        os.link(src, dst, follow_symlinks=False)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
            raise
        # File systems without hard links: check, then rename (we hold the run lock).
        if os.path.lexists(dst):
            raise FileExistsError(errno.EEXIST, "exists", dst) from exc
        os.rename(src, dst)
        return
    os.unlink(src)


class FolderSource:
    """An `ImageSource` over `folder`, archiving into `archive`.

    `ledger` answers which platforms already have an image. `required_platforms`, when
    given, are the platforms an image must be on before it is archived (all enabled
    platforms of the configuration, even when a run publishes to fewer with `--only`);
    otherwise the platforms of the run decide.
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        archive: str | os.PathLike[str],
        ledger: Ledger,
        *,
        required_platforms: Iterable[str] | None = None,
    ) -> None:
        self.folder = Path(folder).absolute()
        self.archive_folder = Path(archive).absolute()
        self.ledger = ledger
        self.required_platforms = (
            frozenset(required_platforms) if required_platforms is not None else None
        )
        self._run_platforms: frozenset[str] = frozenset()

    # -- checks before a run -------------------------------------------------------------
    def preflight(self, *, create: bool = True) -> None:
        """Raise `ConfigError` unless the folder can be read and the archive written, on the
        same file system. With `create`, a missing archive folder is made (mode 0700 at
        most, as the umask allows); without it nothing is changed."""
        if not self.folder.is_dir():
            raise ConfigError(
                f"workflow.folder: {self.folder} is not a folder: create it or fix the path"
            )
        if not os.access(self.folder, os.R_OK | os.X_OK | os.W_OK):
            raise ConfigError(
                f"workflow.folder: {self.folder} is not readable and writable: fix its permissions"
            )
        archive = self.archive_folder
        if not archive.exists():
            if not create:
                parent = next(p for p in archive.parents if p.exists())
                if not os.access(parent, os.W_OK | os.X_OK):
                    raise ConfigError(
                        f"workflow.archive: {archive} does not exist and {parent} is not "
                        "writable: create it or fix the path"
                    )
                self._check_same_device(parent)
                return
            try:
                archive.mkdir(parents=True, mode=0o755, exist_ok=True)
            except OSError as exc:
                raise ConfigError(
                    f"workflow.archive: {archive} cannot be created ({exc.strerror}): "
                    "create it or fix the path"
                ) from exc
        if not archive.is_dir():
            raise ConfigError(f"workflow.archive: {archive} is not a folder: fix the path")
        if not os.access(archive, os.W_OK | os.X_OK):
            raise ConfigError(f"workflow.archive: {archive} is not writable: fix its permissions")
        self._check_same_device(archive)

    def _check_same_device(self, target: Path) -> None:
        if os.stat(target).st_dev != os.stat(self.folder).st_dev:
            raise ConfigError(
                f"workflow.archive: {self.archive_folder} is on another file system than "
                f"{self.folder}: put it on the same one, so images move by an atomic rename"
            )

    # -- ImageSource ---------------------------------------------------------------------
    def images(self) -> list[str]:
        """Paths of the images waiting in the folder, in order of their names."""
        try:
            with os.scandir(self.folder) as entries:
                names = sorted(entry.name for entry in entries if _is_image(entry))
        except FileNotFoundError as exc:
            raise ConfigError(
                f"workflow.folder: {self.folder} does not exist: create it or fix the path"
            ) from exc
        return [str(self.folder / name) for name in names]

    async def select(self, name: str | None, platforms: Collection[str]) -> SelectedImage:
        self._run_platforms = frozenset(platforms)
        if name is not None:
            return await asyncio.to_thread(self._select_named, name)
        wanted = set(platforms)
        for path in await asyncio.to_thread(self.images):
            digest = await asyncio.to_thread(sha256_file, path)
            if not wanted <= await self.ledger.published_platforms(digest):
                return await asyncio.to_thread(self._selected, path, digest)
        raise NothingToPublishError(
            f"nothing to publish: {self.folder} holds no image that still needs publishing"
        )

    def _select_named(self, name: str) -> SelectedImage:
        path = Path(name).expanduser()
        if not path.exists() and not path.is_absolute() and (self.folder / name).exists():
            path = self.folder / name
        if not path.exists():
            raise InputError(f"image not found: {name}: check the path")
        if not path.is_file():
            raise InputError(f"not a file: {name}: pass the path of an image file")
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            kinds = " ".join(sorted(IMAGE_SUFFIXES))
            raise InputError(f"{name}: not an image file name: use one of {kinds}")
        try:
            digest = sha256_file(str(path))
        except OSError as exc:
            raise InputError(f"cannot read {name} ({exc.strerror}): check its permissions") from exc
        return self._selected(str(path.absolute()), digest)

    @staticmethod
    def _selected(path: str, digest: str) -> SelectedImage:
        return SelectedImage(
            path=path, name=os.path.basename(path), caption=read_caption(path), sha256=digest
        )

    async def archive(self, image: SelectedImage) -> str | None:
        """Move the image and its caption file into the archive; returns the image's new
        path, or None when it stays (it is not in the queue folder, or a configured platform
        does not have it yet)."""
        if not _same_folder(Path(image.path).parent, self.folder):
            return None
        required = (
            self.required_platforms if self.required_platforms is not None else self._run_platforms
        )
        if not required <= await self.ledger.published_platforms(image.sha256):
            return None
        return await asyncio.to_thread(self._archive_sync, image.path)

    def _archive_sync(self, image_path: str) -> str:
        self.archive_folder.mkdir(parents=True, exist_ok=True)
        stem, suffix = os.path.splitext(os.path.basename(image_path))
        sidecar = sidecar_of(image_path)
        has_sidecar = os.path.isfile(sidecar)
        # Another queued image with the same stem (a.jpg and a.png) shares the caption file:
        # it then stays for that image and the archive gets a copy.
        shared = has_sidecar and any(
            os.path.splitext(other)[0] == os.path.splitext(image_path)[0]
            for other in self.images()
            if other != image_path
        )
        counter = 0
        while True:
            target_stem = stem if counter == 0 else f"{stem}-{counter}"
            target = str(self.archive_folder / (target_stem + suffix))
            target_sidecar = str(self.archive_folder / (target_stem + ".txt"))
            counter += 1
            if os.path.lexists(target) or (has_sidecar and os.path.lexists(target_sidecar)):
                continue
            try:
                _move_no_clobber(image_path, target)
            except FileExistsError:
                continue
            break
        if has_sidecar:
            if shared:
                with contextlib.suppress(FileExistsError):
                    self._copy_no_clobber(sidecar, target_sidecar)
            else:
                with contextlib.suppress(FileExistsError):
                    _move_no_clobber(sidecar, target_sidecar)
        return target

    @staticmethod
    def _copy_no_clobber(src: str, dst: str) -> None:
        with open(src, "rb") as source, open(dst, "xb") as out:
            shutil.copyfileobj(source, out)
        shutil.copystat(src, dst)
