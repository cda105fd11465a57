"""Backups a vault can be restored from exactly, taken while writers go on.

A backup is a folder::

    manifest.json            format, version, backend, schema, counts, and the sha256 and
                             size of every other file in the folder
    tables/<table>.jsonl     every row of each data table, one canonical JSON per line
    blobs/<aa>/<sha256>      every attachment the rows refer to
    imports/<id>/<file>      the kept originals of imports

The rows come from one consistent snapshot of the store (one read transaction), so a
backup taken while another process appends holds exactly the writes acknowledged before
the snapshot began, and none half. It is written under a temporary name and renamed
when complete and synced: a folder named as the backup is always whole.

A restore checks every file against the manifest first, then fills an empty vault in
one transaction and checks it with ``doctor``. The same folder restores onto SQLite,
plain files or PostgreSQL, whichever backend it came from.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Final

import orjson

from chatkeep import fsutil, location
from chatkeep.blobs import BlobStore
from chatkeep.errors import InvalidInput, StorageError, UnsafeLocation, VaultError
from chatkeep.model import Problem, canonical_json
from chatkeep.vault import Vault, open_vault

FORMAT: Final = "chatkeep-backup"
FORMAT_VERSION: Final = 1
MANIFEST: Final = "manifest.json"
_CHUNK: Final = 1024 * 1024


@dataclass(frozen=True, slots=True)
class BackupReport:
    path: Path
    rows: dict[str, int]
    blobs: int
    originals: int
    bytes: int


@dataclass(frozen=True, slots=True)
class RestoreReport:
    root: Path
    rows: dict[str, int]
    blobs: int
    originals: int
    problems: list[Problem]


# -- rows as lines ---------------------------------------------------------------------
def _line(row: dict[str, Any]) -> bytes:
    plain = {k: ({"$bytes": v.hex()} if isinstance(v, bytes) else v) for k, v in row.items()}
    return canonical_json(plain) + b"\n"


def _row(line: bytes) -> dict[str, Any]:
    value = orjson.loads(line)
    if not isinstance(value, dict):
        raise InvalidInput("a backup table line is not a JSON object")
    return {
        k: (bytes.fromhex(v["$bytes"]) if isinstance(v, dict) and set(v) == {"$bytes"} else v)
        for k, v in value.items()
    }


# -- backup ----------------------------------------------------------------------------
def backup_vault(
    vault: Vault, out: str | os.PathLike[str], *, progress: Callable[[int], None] | None = None
) -> BackupReport:
    """Write a backup of ``vault`` to the new folder ``out``."""
    target = Path(out).absolute()
    if target.exists():
        raise InvalidInput(f"{target} already exists", hint="choose a new folder for the backup")
    if location.enclosing_git_work_tree(target.parent) is not None:
        raise UnsafeLocation(
            f"refusing to write a backup inside the git work tree of {target.parent}",
            hint="a backup holds every conversation: keep it out of source trees",
        )
    staging = target.with_name(f"{fsutil.TEMP_PREFIX}{secrets.token_hex(6)}-{target.name}")
    fsutil.ensure_dir(staging / "tables")
    try:
        rows, shas, originals = _write_tables(vault, staging, progress)
        blobs = _copy_blobs(vault, staging, shas, progress)
        kept = _copy_originals(vault, staging, originals)
        files = _inventory(staging)
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "created_at": datetime.now(UTC).isoformat(),
            "backend": location.read_vault_file(vault.root).get("backend", "sqlite"),
            "schema": vault.store.schema_version(),
            "rows": rows,
            "files": files,
        }
        fsutil.atomic_write(staging / MANIFEST, orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
        fsutil.sync_tree(staging)
        fsutil.publish_dir(staging, target)
    except BaseException:
        fsutil.remove_tree(staging)
        raise
    size = sum(entry["size"] for entry in files.values())
    return BackupReport(path=target, rows=rows, blobs=blobs, originals=kept, bytes=size)


def _write_tables(
    vault: Vault, staging: Path, progress: Callable[[int], None] | None
) -> tuple[dict[str, int], set[str], list[str]]:
    rows: dict[str, int] = {}
    shas: set[str] = set()
    originals: list[str] = []
    for name, table_rows in vault.store.dump_snapshot():
        counted = _TableWriter(name, table_rows, shas, originals, progress)
        fsutil.atomic_write_with(staging / "tables" / f"{name}.jsonl", counted.write)
        rows[name] = counted.count
    return rows, shas, originals


class _TableWriter:
    """Writes one table's rows as lines, noting the blobs and originals they refer to."""

    def __init__(
        self,
        name: str,
        rows: Iterator[dict[str, Any]],
        shas: set[str],
        originals: list[str],
        progress: Callable[[int], None] | None,
    ) -> None:
        self.name, self.rows, self.count = name, rows, 0
        self.shas, self.originals, self.progress = shas, originals, progress

    def write(self, out: BinaryIO) -> None:
        for row in self.rows:
            out.write(_line(row))
            self.count += 1
            if self.name == "attachments":
                self.shas.add(row["sha256"])
            elif self.name == "imports" and row.get("stored_path"):
                self.originals.append(row["stored_path"])
            if self.progress is not None and self.count % 1000 == 0:
                self.progress(1000)


def _copy_blobs(
    vault: Vault, staging: Path, shas: set[str], progress: Callable[[int], None] | None
) -> int:
    """The blobs the snapshot refers to, re-hashed on the way."""
    source, copy = BlobStore(vault.paths.blobs), BlobStore(staging / "blobs")
    for sha in sorted(shas):
        path = source.path_for(sha)
        if not path.exists():
            raise StorageError(
                f"the blob {sha} was removed while the backup ran",
                hint="run the backup again (an attachment was deleted meanwhile)",
            )
        with path.open("rb") as handle:
            got, _size = copy.put(handle, durable=False)
        if got != sha:
            raise StorageError(f"the blob {sha} is damaged in the vault (its bytes hash to {got})")
        if progress is not None:
            progress(1)
    return len(shas)


def _copy_originals(vault: Vault, staging: Path, originals: list[str]) -> int:
    copied = 0
    for stored in originals:
        relative = _safe_relative(stored)
        origin = vault.root / relative
        if not origin.is_file():
            continue  # doctor reports it; the record itself is in the backup
        fsutil.copy_file(origin, staging / relative)
        copied += 1
    return copied


def _safe_relative(stored: str) -> Path:
    relative = Path(stored)
    if relative.is_absolute() or ".." in relative.parts or relative.parts[:1] != ("imports",):
        raise UnsafeLocation(f"an import original is kept at an odd path {stored!r}")
    return relative


def _inventory(folder: Path) -> dict[str, dict[str, Any]]:
    files = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(folder).as_posix()
        if relative == MANIFEST:
            continue
        files[relative] = {"sha256": _sha256(path), "size": path.stat().st_size}
    return files


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


# -- restore ---------------------------------------------------------------------------
def read_manifest(backup: Path) -> dict[str, Any]:
    try:
        manifest = orjson.loads((backup / MANIFEST).read_bytes())
    except FileNotFoundError:
        raise InvalidInput(f"{backup} is not a chatkeep backup (no {MANIFEST})") from None
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"{backup / MANIFEST} is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InvalidInput(f"{backup} is not a chatkeep backup")
    if manifest.get("format_version", 0) > FORMAT_VERSION:
        raise VaultError(
            f"the backup has format version {manifest['format_version']}; this chatkeep "
            f"reads up to {FORMAT_VERSION}",
            hint="restore it with a newer chatkeep",
        )
    return manifest


def verify_backup(backup: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest, once every file it lists is there with its size and sha256 and no
    other file is; :class:`InvalidInput` naming the first difference otherwise."""
    folder = Path(backup)
    manifest = read_manifest(folder)
    listed: dict[str, dict[str, Any]] = manifest.get("files", {})
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} - {
        MANIFEST
    }
    if present != set(listed):
        odd = sorted(present ^ set(listed))[:5]
        raise InvalidInput(f"the backup's files differ from its manifest: {', '.join(odd)}")
    for relative, entry in listed.items():
        path = folder / relative
        if path.stat().st_size != entry["size"] or _sha256(path) != entry["sha256"]:
            raise InvalidInput(f"the backup file {relative} is damaged (its sha256 differs)")
    return manifest


def restore_vault(
    backup: str | os.PathLike[str],
    home: str | os.PathLike[str] | None = None,
    *,
    env: str | None = None,
    url: str | None = None,
    backend: str | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> RestoreReport:
    """Restore ``backup`` into a new vault at ``home``/``env`` (SQLite, plain files with
    ``backend="files"``, or PostgreSQL at ``url``), verify the files first and run
    ``doctor`` after."""
    folder = Path(backup)
    manifest = verify_backup(folder)
    root = location.resolve_root(home, env)
    if (root / location.VAULT_FILE).exists():
        with open_vault(home, env=env, url=url) as existing:
            if existing.store.list_users():
                raise InvalidInput(
                    f"the vault at {root} already holds data",
                    hint="restore into a new, empty location",
                )
    with open_vault(home, env=env, url=url, create=True, backend=backend) as vault:
        blobs = _restore_blobs(folder, vault)
        originals = _restore_originals(folder, vault)
        rows = vault.store.load_tables(
            ((name, _table_rows(folder, name)) for name in manifest["rows"]),
            progress=progress,
        )
        problems = vault.doctor()
    return RestoreReport(root=root, rows=rows, blobs=blobs, originals=originals, problems=problems)


def _table_rows(folder: Path, name: str) -> Iterator[dict[str, Any]]:
    path = folder / "tables" / f"{name}.jsonl"
    with path.open("rb") as handle:
        for line in handle:
            yield _row(line)


def _restore_blobs(folder: Path, vault: Vault) -> int:
    source, target = BlobStore(folder / "blobs"), BlobStore(vault.paths.blobs)
    count = 0
    for sha in source.all_digests():
        with source.path_for(sha).open("rb") as handle:
            target.put(handle)
        count += 1
    return count


def _restore_originals(folder: Path, vault: Vault) -> int:
    count = 0
    for path in sorted((folder / "imports").rglob("*")) if (folder / "imports").is_dir() else []:
        if not path.is_file():
            continue
        relative = _safe_relative(path.relative_to(folder).as_posix())
        fsutil.copy_file(path, vault.root / relative, mode=0o400)
        count += 1
    return count
