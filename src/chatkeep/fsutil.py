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
import queue
import secrets
import threading
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
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
    The file is fsynced before it gets its final name, always: a name that exists is
    taken as "already stored", so it must never point at bytes a power loss could cut.
    With ``durable=False`` the directory entry is not fsynced, and the caller promises
    to call :func:`sync_files` on the path before it acknowledges anything that refers
    to it (many files, one flush of their directories).
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


class BackgroundContentWriter:
    """:func:`write_content_addressed` for many files held in memory, the file system's
    part done on worker threads.

    :meth:`put` hashes the bytes at once (the caller needs the digest) and queues the
    write; creating and flushing a file can take milliseconds on a busy file system, and
    the caller's own work goes on meanwhile. Several threads write, so that their fsyncs
    wait together (the file system commits them at once) rather than one after another.
    Files are handed over in batches (waking a thread costs time as well). At most
    ``max_pending`` bytes wait in memory (one larger item waits alone).

    Each file is fsynced before it gets its name; its directory entry is not. So
    :meth:`close` (which waits for every file and raises the first error a write met)
    must be followed by :func:`sync_files` on the paths before anything that refers to
    them is committed; that pass then finds little left to flush. After a failure, later
    writes are skipped.
    """

    _BATCH_FILES = 16
    _BATCH_BYTES = 1024 * 1024
    _THREADS = 4

    def __init__(self, directory: Path, *, max_bytes: int, max_pending: int) -> None:
        self._directory = directory
        self._max_bytes = max_bytes
        self._max_pending = max_pending
        self._pending = 0  # bytes put and not yet written
        self._batch: list[tuple[bytes, Path]] = []
        self._batch_bytes = 0
        self._changed = threading.Condition()
        self._queue: queue.SimpleQueue[list[tuple[bytes, Path]] | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._error: BaseException | None = None

    def put(self, data: bytes) -> tuple[str, int, Path]:
        """Queue ``data``; return (sha256, size, path) at once."""
        if len(data) > self._max_bytes:
            raise LimitExceeded(f"attachment is larger than the {self._max_bytes}-byte limit")
        sha = hashlib.sha256(data).hexdigest()
        final = self._directory / sha[:2] / sha
        with self._changed:
            if self._pending and self._pending + len(data) > self._max_pending:
                self._flush()
                while self._pending and self._pending + len(data) > self._max_pending:
                    self._changed.wait()
            if self._error is not None:
                raise self._error
            self._pending += len(data)
        self._batch.append((data, final))
        self._batch_bytes += len(data)
        if len(self._batch) >= self._BATCH_FILES or self._batch_bytes >= self._BATCH_BYTES:
            self._flush()
        return sha, len(data), final

    def close(self) -> None:
        """Wait until every queued file is written; raise the first error."""
        self._flush()
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()
        self._threads = []
        if self._error is not None:
            raise self._error

    def _flush(self) -> None:
        if not self._batch:
            return
        if not self._threads:
            self._threads = [
                threading.Thread(target=self._work, name="chatkeep-content-writer", daemon=True)
                for _ in range(self._THREADS)
            ]
            for thread in self._threads:
                thread.start()
        self._queue.put(self._batch)
        self._batch, self._batch_bytes = [], 0

    def _work(self) -> None:
        while (batch := self._queue.get()) is not None:
            for data, final in batch:
                try:
                    if self._error is None:
                        self._write(data, final)
                except BaseException as exc:  # handed to the caller by put() or close()
                    with self._changed:
                        self._error = self._error or exc
                finally:
                    with self._changed:
                        self._pending -= len(data)
                        self._changed.notify_all()

    def _write(self, data: bytes, final: Path) -> None:
        # Plain os calls: each call that blocks lets the caller's thread run, and each
        # return waits for the GIL again, so the fewer the better.
        ensure_dir(final.parent)
        if final.exists():  # the same bytes, stored already (synced by the caller)
            return
        staging = self._directory / f"{TEMP_PREFIX}{secrets.token_hex(8)}"
        try:
            fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fchmod(fd, 0o400)
                os.fsync(fd)
            finally:
                os.close(fd)
            staging.replace(final)
        except OSError as exc:
            with contextlib.suppress(FileNotFoundError):
                staging.unlink()
            _raise_storage(exc, "an attachment")


#: Threads :func:`sync_files` fsyncs on. Each fsync, even of a file with nothing left to
#: write, waits for a flush of the disk's cache; fsyncs that wait together share one.
_SYNC_THREADS = 4


def sync_files(paths: Iterable[Path]) -> None:
    """fsync files written with ``durable=False``, then their directories, once each."""
    files = list(paths)
    try:
        _fsync_each(files, _fsync_file)
        _fsync_each(list({path.parent: None for path in files}), fsync_dir)
    except OSError as exc:
        _raise_storage(exc, "attachments")


def sync_names(paths: Iterable[Path]) -> None:
    """Make the names of content-addressed files durable: fsync their directories, once
    each. Enough for files from :func:`write_content_addressed` and
    :class:`BackgroundContentWriter`, which fsync every file before it gets its name
    (an error of that fsync was raised then, and is never retried)."""
    try:
        _fsync_each(list({path.parent: None for path in paths}), fsync_dir)
    except OSError as exc:
        _raise_storage(exc, "attachments")


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_each(paths: list[Path], fsync: Callable[[Path], None]) -> None:
    """``fsync(path)`` for every path, on up to ``_SYNC_THREADS`` threads; a thread stops
    at its first error, which is raised once every thread is done."""

    def run(share: list[Path]) -> None:
        for path in share:
            fsync(path)

    if len(paths) < 2 * _SYNC_THREADS:
        run(paths)
        return
    shares = [paths[start::_SYNC_THREADS] for start in range(_SYNC_THREADS)]
    with ThreadPoolExecutor(_SYNC_THREADS, thread_name_prefix="chatkeep-fsync") as pool:
        for _ in pool.map(run, shares):
            pass


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


def publish_dir(staging: Path, target: Path) -> None:
    """Give a fully written, synced folder its final name, durably: a reader sees either
    no ``target`` or all of it (a backup is never found half written)."""
    if target.exists():
        raise StorageError(f"{target} already exists")
    try:
        staging.rename(target)
    except OSError as exc:
        _raise_storage(exc, target.name)
    fsync_dir(target.parent)


def sync_tree(directory: Path) -> None:
    """fsync every file and folder under ``directory`` (after writing it in pieces)."""
    for path in sorted(directory.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_dir():
            fsync_dir(path)
        else:
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            except OSError as exc:
                _raise_storage(exc, path.name)
            finally:
                os.close(fd)
    fsync_dir(directory)


def copy_file(source: Path, target: Path, *, mode: int = 0o600) -> None:
    """Copy ``source`` to ``target`` atomically and durably (folders made as needed)."""
    ensure_dir(target.parent)
    with source.open("rb") as handle:

        def pipe(out: BinaryIO) -> None:
            while chunk := handle.read(_CHUNK):
                out.write(chunk)

        atomic_write_with(target, pipe, mode=mode)


def copy_into_zip(archive: zipfile.ZipFile, source: Path, info: zipfile.ZipInfo) -> None:
    """Stream the file ``source`` into ``archive`` as the member ``info`` (the archive's
    own file being one this module writes, e.g. through :func:`atomic_write_with`)."""
    with source.open("rb") as handle, archive.open(info, "w", force_zip64=True) as out:
        while chunk := handle.read(_CHUNK):
            out.write(chunk)


# -- the file backend's primitives (chatkeep.backends.files) ----------------------------
# Its write protocol (journal, then appends and renames, then the index's commit) is
# described there; these are the steps, each durable before it returns unless said.


def _write_synced(fd: int, data: bytes) -> None:
    """Write all of ``data`` to the open ``fd``, fsync, close."""
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def append_durable(path: Path, data: bytes) -> None:
    """Append ``data`` to ``path`` (created if missing) and fsync it; a new file's
    directory entry is fsynced too."""
    try:
        created = not path.exists()
        _write_synced(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), data)
        if created:
            fsync_dir(path.parent)
    except OSError as exc:
        _raise_storage(exc, path.name)


def truncate_durable(path: Path, size: int) -> None:
    """Cut ``path`` back to ``size`` bytes (undoing an append), durably."""
    try:
        fd = os.open(path, os.O_WRONLY)
        try:
            os.ftruncate(fd, size)
            os.fsync(fd)
        finally:
            os.close(fd)
    except FileNotFoundError:
        return
    except OSError as exc:
        _raise_storage(exc, path.name)


def write_new_file(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Create ``path`` (which must not exist) holding ``data``, fsynced; its directory
    entry is not (the rename that publishes it is fsynced by the caller)."""
    try:
        _write_synced(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode), data)
    except OSError as exc:
        with contextlib.suppress(OSError):
            path.unlink()
        _raise_storage(exc, path.name)


def keep_link(path: Path, link: Path) -> bool:
    """A second name for ``path``'s current content (kept until :func:`remove_file`), so
    that replacing ``path`` can be undone; False when ``path`` does not exist."""
    try:
        os.link(path, link)
    except FileNotFoundError:
        return False
    except FileExistsError:
        return True  # made by an earlier attempt of the same step
    except OSError as exc:
        _raise_storage(exc, path.name)
    return True


def move(source: Path, target: Path, *, sync: bool = True) -> bool:
    """Rename ``source`` to ``target`` (same file system, replacing a file there); with
    ``sync``, both directories are fsynced. False when ``source`` does not exist."""
    try:
        source.replace(target)
    except FileNotFoundError:
        return False
    except OSError as exc:
        _raise_storage(exc, target.name)
    if sync:
        fsync_dir(target.parent)
        if source.parent != target.parent:
            fsync_dir(source.parent)
    return True


def remove_quietly(path: Path) -> None:
    """Delete a file or a folder tree if it is there, without fsync: for leftovers
    whose removal only tidies (a crash before it changes nothing)."""
    try:
        if path.is_dir() and not path.is_symlink():
            for child in sorted(path.rglob("*"), key=lambda p: len(p.parts), reverse=True):
                if child.is_dir() and not child.is_symlink():
                    child.rmdir()
                else:
                    child.unlink()
            path.rmdir()
        else:
            path.unlink()
    except FileNotFoundError:
        return
    except OSError as exc:
        _raise_storage(exc, path.name)
