"""Moving a whole vault from one backend to another, and proving the copy.

:func:`copy_vault` copies every data table row for row (ids, keys and timestamps kept)
into an empty destination in one transaction, the attachment blobs and the kept import
originals beside it, then checks the copy: a sha256 of every table, computed on both
sides from a canonical dump, must agree. A copy that fails leaves the destination's
database empty and removes the files it added.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatkeep import fsutil
from chatkeep.backends.schema import DATA_TABLES
from chatkeep.blobs import BlobStore
from chatkeep.errors import StorageError, UnsafeLocation
from chatkeep.model import canonical_json
from chatkeep.store import Store
from chatkeep.vault import Vault

TABLES = tuple(str(table.name) for table in DATA_TABLES)


@dataclass(frozen=True, slots=True)
class CopyReport:
    """What a copy moved, and the per-table sha256 both sides agreed on."""

    rows: dict[str, int]
    blobs: int
    originals: int
    digests: dict[str, str]


def _canonical_row(row: dict[str, Any]) -> bytes:
    plain = {k: (v.hex() if isinstance(v, bytes) else v) for k, v in row.items()}
    return canonical_json(plain)


def canonical_dump(store: Store) -> Iterator[bytes]:
    """Every data row as ``table<TAB>canonical JSON`` lines, tables in reference order and
    rows by primary key: two stores with the same data give the same bytes."""
    for name in TABLES:
        for row in store.dump_table(name):
            yield name.encode() + b"\t" + _canonical_row(row) + b"\n"


def table_digests(store: Store) -> dict[str, str]:
    digests = {}
    for name in TABLES:
        digest = hashlib.sha256()
        for row in store.dump_table(name):
            digest.update(_canonical_row(row) + b"\n")
        digests[name] = digest.hexdigest()
    return digests


def copy_vault(
    source: Vault,
    destination: Vault,
    *,
    progress: Callable[[str, int], None] | None = None,
) -> CopyReport:
    """Copy everything in ``source`` into the empty ``destination`` and verify it.

    ``progress(stage, n)`` is called as blobs and rows are copied.
    """
    added: list[Path] = []
    try:
        blobs = _copy_blobs(source, destination, added, progress)
        originals = _copy_originals(source, destination, added)
        rows = destination.store.load_tables(
            ((name, source.store.dump_table(name)) for name in TABLES), progress=progress
        )
    except BaseException:
        for path in added:
            fsutil.remove_file(path)
        raise
    digests = table_digests(source.store)
    copied = table_digests(destination.store)
    wrong = [name for name in TABLES if digests[name] != copied[name]]
    if wrong:
        raise StorageError(
            f"the copy differs from the source in: {', '.join(wrong)}",
            hint="delete the destination vault and run the migration again",
        )
    return CopyReport(rows=rows, blobs=blobs, originals=originals, digests=digests)


def _copy_blobs(
    source: Vault,
    destination: Vault,
    added: list[Path],
    progress: Callable[[str, int], None] | None,
) -> int:
    """Every blob an attachment refers to, re-hashed on the way: a damaged source blob
    stops the copy instead of spreading."""
    wanted = sorted({row["sha256"] for row in source.store.dump_table("attachments")})
    from_blobs, to_blobs = BlobStore(source.paths.blobs), BlobStore(destination.paths.blobs)
    for sha in wanted:
        target = to_blobs.path_for(sha)
        existed = target.exists()
        with from_blobs.path_for(sha).open("rb") as handle:
            got, _size = to_blobs.put(handle)
        if got != sha:
            raise StorageError(f"the source blob {sha} is damaged (its content hashes to {got})")
        if not existed:
            added.append(target)
        if progress is not None:
            progress("blobs", 1)
    return len(wanted)


def _copy_originals(source: Vault, destination: Vault, added: list[Path]) -> int:
    """The kept originals of imports (``imports/<id>/<file>``), read-only as before."""
    copied = 0
    for row in source.store.dump_table("imports"):
        stored = row.get("stored_path")
        if not stored:
            continue
        relative = Path(stored)
        if relative.is_absolute() or ".." in relative.parts or relative.parts[0] != "imports":
            raise UnsafeLocation(f"import {row['id']} keeps its original at an odd path {stored!r}")
        origin, target = source.root / relative, destination.root / relative
        if not origin.is_file():
            continue  # doctor reports it at the source; the record itself still moves
        fsutil.copy_file(origin, target, mode=0o400)
        added.append(target)
        copied += 1
    return copied


def dump_text(store: Store) -> str:
    """The canonical dump as text (for tests and eyes)."""
    return b"".join(canonical_dump(store)).decode()


__all__ = ["TABLES", "CopyReport", "canonical_dump", "copy_vault", "dump_text", "table_digests"]
