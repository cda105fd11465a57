"""Content-addressed blob directory: each distinct attachment's bytes stored once.

Layout: ``<root>/blobs/<first two hex digits>/<sha256>``. Blobs are written *before* the
database row that refers to them and removed only *after* the row is gone and committed,
so a crash can leave an unreferenced blob (``doctor`` reports it, clean-up removes it) but
never a row that points at nothing.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from chatkeep import fsutil
from chatkeep.limits import MAX_ATTACHMENT_BYTES

_SHA256_RE = re.compile(r"[0-9a-f]{64}")
#: Most bytes a background writer holds in memory while its files are written.
_MAX_PENDING_BYTES = 32 * 1024 * 1024


class BlobStore:
    """Put, open, verify and remove blobs under one directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path_for(self, sha256: str) -> Path:
        if _SHA256_RE.fullmatch(sha256) is None:
            raise ValueError(f"not a sha256 digest: {sha256!r}")
        return self.directory / sha256[:2] / sha256

    def put(self, source: bytes | BinaryIO, *, durable: bool = True) -> tuple[str, int]:
        """Store bytes or a binary stream; return (sha256, size).

        Durable on return, unless ``durable=False``: then :meth:`sync` must run on the
        digest before anything that refers to it is committed.
        """
        sha, size, _ = fsutil.write_content_addressed(
            self.directory, source, max_bytes=MAX_ATTACHMENT_BYTES, durable=durable
        )
        return sha, size

    def background_writer(self) -> fsutil.BackgroundContentWriter:
        """A writer that stores many in-memory blobs on a worker thread: not durable
        until it is closed and :meth:`sync` has run on the digests."""
        return fsutil.BackgroundContentWriter(
            self.directory, max_bytes=MAX_ATTACHMENT_BYTES, max_pending=_MAX_PENDING_BYTES
        )

    def sync(self, digests: Iterable[str]) -> None:
        """Make blobs stored with ``durable=False`` durable, in one pass."""
        fsutil.sync_names(self.path_for(sha) for sha in sorted(set(digests)))

    def exists(self, sha256: str) -> bool:
        return self.path_for(sha256).is_file()

    def read(self, sha256: str) -> bytes:
        return self.path_for(sha256).read_bytes()

    def hash_of(self, sha256: str) -> str:
        """Recompute the digest of a stored blob (for ``doctor``)."""
        digest = hashlib.sha256()
        with self.path_for(sha256).open("rb") as handle:
            while chunk := handle.read(1024 * 1024):
                digest.update(chunk)
        return digest.hexdigest()

    def remove(self, sha256: str) -> bool:
        return fsutil.remove_file(self.path_for(sha256))

    def all_digests(self) -> Iterator[str]:
        if not self.directory.is_dir():
            return
        for path in self.directory.glob("??/*"):
            if _SHA256_RE.fullmatch(path.name):
                yield path.name
