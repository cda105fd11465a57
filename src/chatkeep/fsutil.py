"""The only module that writes files.

Every write is durable before it returns: data goes to a temporary file in the target
directory, is fsynced, renamed over the target (atomic on POSIX), and the directory is
fsynced so the rename itself survives a power loss. A crash leaves either the old file
or the new one, never a mix; at worst a stray ``.tmp-*`` file that :func:`remove_stale_temp`
clears. An fsync error is never retried (see PostgreSQL's "fsyncgate"): it fails the write.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, NoReturn

from chatkeep.errors import LimitExceeded, StorageError, StorageFull

TEMP_PREFIX = ".tmp-"
_CHUNK = 1024 * 1024


def fsync_dir(directory: Path) -> None:
    """Make a directory's entries (a create, a rename) durable."""
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_dir(directory: Path, *, mode: int = 0o700) -> None:
    """Create ``directory`` (and parents) durably if it does not exist."""
    missing = []
    current = directory
    while not current.exists():
        missing.append(current)
        current = current.parent
    try:
        for path in reversed(missing):
            with contextlib.suppress(FileExistsError):
                path.mkdir(mode=mode)
            fsync_dir(path.parent)
    except OSError as exc:
        _raise_storage(exc, f"directory {directory.name}")


def _raise_storage(exc: OSError, what: str) -> NoReturn:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        raise StorageFull(
            f"disk full while writing {what}", hint="free some space and retry"
        ) from exc
    raise StorageError(f"could not write {what}: {exc.strerror or exc}") from exc


@contextlib.contextmanager
def _temp_beside(target: Path) -> Iterator[tuple[BinaryIO, Path]]:
    temp = target.with_name(f"{TEMP_PREFIX}{secrets.token_hex(8)}-{target.name}")
    try:
        with temp.open("xb") as handle:
            yield handle, temp
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise


def atomic_write(target: Path, data: bytes | Iterable[bytes], *, mode: int = 0o600) -> None:
    """Replace ``target`` with ``data`` atomically and durably."""
    chunks = [data] if isinstance(data, bytes) else data

    def produce(handle: BinaryIO) -> None:
        for chunk in chunks:
            handle.write(chunk)

    atomic_write_with(target, produce, mode=mode)


def atomic_write_with(
    target: Path, produce: Callable[[BinaryIO], None], *, mode: int = 0o600
) -> None:
    """Like :func:`atomic_write`, with ``produce`` writing into the temp file's handle."""
    try:
        with _temp_beside(target) as (handle, temp):
            produce(handle)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
            temp.replace(target)
        fsync_dir(target.parent)
    except OSError as exc:
        _raise_storage(exc, str(target.name))


def remove_tree(directory: Path) -> None:
    """Delete a directory this vault wrote (files first, then folders), durably."""
    if not directory.exists():
        return
    for path in sorted(directory.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_dir() and not path.is_symlink():
            path.rmdir()
        else:
            path.chmod(0o600)
            path.unlink()
    directory.rmdir()
    fsync_dir(directory.parent)


def write_content_addressed(
    directory: Path, source: bytes | BinaryIO, *, max_bytes: int, durable: bool = True
) -> tuple[str, int, Path]:
    """Store ``source`` under ``directory/<aa>/<sha256>``; return (sha256, size, path).

    The bytes are hashed while they are written, so a large file is read once and never
    held in memory. If a blob with the same hash exists already, the new copy is dropped.
    With ``durable=False`` the caller promises to call :func:`sync_files` on the path
    before it acknowledges anything that refers to it (many files, one flush).
    """
    ensure_dir(directory)
    digest = hashlib.sha256()
    size = 0
    staging = directory / f"{TEMP_PREFIX}{secrets.token_hex(8)}"
    try:
        with staging.open("xb") as handle:
            for chunk in _chunks(source):
                size += len(chunk)
                if size > max_bytes:
                    raise LimitExceeded(f"attachment is larger than the {max_bytes}-byte limit")
                digest.update(chunk)
                handle.write(chunk)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        sha = digest.hexdigest()
        final = directory / sha[:2] / sha
        if final.exists():
            staging.unlink()
        else:
            ensure_dir(final.parent)
            staging.chmod(0o400)
            staging.replace(final)
            if durable:
                fsync_dir(final.parent)
        return sha, size, final
    except OSError as exc:
        with contextlib.suppress(FileNotFoundError):
            staging.unlink()
        _raise_storage(exc, "an attachment")
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            staging.unlink()
        raise


def new_spool(directory: Path, name: str) -> tuple[BinaryIO, Path]:
    """A new private file ``name`` for data arriving in pieces (an upload), alone in a
    fresh temp folder under ``directory`` so it keeps the name its sender gave it.

    The folder carries the temp prefix, so a process killed while filling it leaves
    nothing that :func:`remove_stale_temp` will not clear. The caller closes the file
    and removes the folder (:func:`remove_tree` of ``path.parent``).
    """
    folder = directory / f"{TEMP_PREFIX}{secrets.token_hex(8)}"
    ensure_dir(folder)
    path = folder / name
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        _raise_storage(exc, f"create {name}")
    return os.fdopen(fd, "wb"), path


def sync_files(paths: Iterable[Path]) -> None:
    """fsync files written with ``durable=False``, then their directories, once each."""
    directories = set()
    try:
        for path in paths:
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            directories.add(path.parent)
        for directory in directories:
            fsync_dir(directory)
    except OSError as exc:
        _raise_storage(exc, "attachments")


def _chunks(source: bytes | BinaryIO) -> Iterator[bytes]:
    if isinstance(source, bytes):
        for start in range(0, len(source), _CHUNK):
            yield source[start : start + _CHUNK]
        return
    while chunk := source.read(_CHUNK):
        yield chunk


def remove_file(path: Path) -> bool:
    """Delete ``path`` durably; return whether it existed."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    except OSError as exc:
        _raise_storage(exc, str(path.name))
    fsync_dir(path.parent)
    return True


def stale_temp_files(directory: Path, *, older_than: float = 0.0) -> list[Path]:
    """Temp files a killed writer left behind, untouched for ``older_than`` seconds."""
    if not directory.is_dir():
        return []
    cutoff = time.time() - older_than
    found = []
    for path in directory.rglob(f"{TEMP_PREFIX}*"):
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_mtime <= cutoff:
                found.append(path)
    return sorted(found)


def remove_stale_temp(directory: Path, *, older_than: float) -> int:
    """Remove temp files untouched for ``older_than`` seconds; return how many.

    The grace period keeps a file another process is still writing.
    """
    removed = 0
    for path in stale_temp_files(directory, older_than=older_than):
        if path.is_dir():  # an upload's spool folder
            remove_tree(path)
            removed += 1
        else:
            removed += remove_file(path)
    return removed
