"""Bringing an export into a vault: detect, parse, keep the original, write, report.

The parse streams (one conversation in memory at a time); the write is one
transaction (see :mod:`chatkeep.backends.sql_import`). The original export is kept,
read-only, at ``imports/<import id>/`` in the vault (a folder is kept as a zip).
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from chatkeep import fsutil, importers
from chatkeep.encryption import refuse_import_if_encrypted
from chatkeep.exporting import import_chatkeep_export, is_chatkeep_export
from chatkeep.ids import check_name, new_id
from chatkeep.importers.source import ExportSource
from chatkeep.model import ImportRecord
from chatkeep.store import ImportFile
from chatkeep.vault import Vault

IMPORTS_DIR = "imports"


@dataclass(frozen=True, slots=True)
class ImportResult:
    """An import's record, and whether it was a dry run or a repeat of an earlier one."""

    record: ImportRecord
    dry_run: bool = False
    already_imported: bool = False


def import_export(
    vault: Vault,
    user_id: str,
    path: str | os.PathLike[str],
    *,
    platform: str | None = None,
    dry_run: bool = False,
    again: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> ImportResult:
    """Import the export at ``path`` (a zip, a folder or a file) for ``user_id``.

    The same file imported again changes nothing and returns the earlier record with
    ``already_imported``; with ``again`` it is merged anyway (restoring what was deleted
    since, adding nothing twice). A failing import leaves the vault as it was. A
    chatkeep export (:mod:`chatkeep.exporting`) is merged as it is when every row in it
    belongs to ``user_id``; its result's record is a summary, not kept.
    """
    check_name("user", user_id)
    vault.store.get_user(user_id)
    export = Path(path).resolve()  # "." must keep a name
    if platform is None and is_chatkeep_export(export):  # chatkeep's own: the user's rows only
        report = import_chatkeep_export(vault, export, user_id=user_id, dry_run=dry_run)
        return ImportResult(record=report.as_record(), dry_run=dry_run)
    # A chatkeep export carries sealed rows as they are; a platform export would be kept
    # and indexed in clear: refused for an encrypted user, before anything is written.
    refuse_import_if_encrypted(vault.store, user_id)
    with ExportSource.open(export) as source:
        importer = importers.choose(source, platform)
        sha256, size = _fingerprint(export)
        earlier = vault.store.find_import(user_id, sha256)
        if earlier is not None and not again:
            return ImportResult(record=earlier, dry_run=dry_run, already_imported=True)
        parsed = importer.parse(source)
        import_id = new_id("import")
        stored = None if dry_run else _keep_original(vault.root, import_id, export)
        file = ImportFile(
            import_id=import_id, name=export.name, size=size, sha256=sha256, stored_path=stored
        )
        try:
            record = vault.store.write_import(
                user_id, parsed, source, file, dry_run=dry_run, progress=progress
            )
        except BaseException:
            if stored is not None:
                fsutil.remove_tree(vault.root / IMPORTS_DIR / import_id)
            raise
    return ImportResult(record=record, dry_run=dry_run)


def _fingerprint(export: Path) -> tuple[str, int]:
    """sha256 and size of a file; of a folder, over its sorted names and contents."""
    digest = hashlib.sha256()
    if export.is_file():
        with export.open("rb") as handle:
            size = _feed(digest, handle)
        return digest.hexdigest(), size
    size = 0
    for item in sorted(p for p in export.rglob("*") if p.is_file()):
        digest.update(item.relative_to(export).as_posix().encode() + b"\0")
        with item.open("rb") as handle:
            size += _feed(digest, handle)
    return digest.hexdigest(), size


def _feed(digest: Any, handle: BinaryIO) -> int:
    total = 0
    while chunk := handle.read(1024 * 1024):
        digest.update(chunk)
        total += len(chunk)
    return total


def _keep_original(root: Path, import_id: str, export: Path) -> str:
    folder = root / IMPORTS_DIR / import_id
    fsutil.ensure_dir(folder)
    if export.is_file():
        name = export.name
        with export.open("rb") as source:
            fsutil.atomic_write_with(folder / name, lambda out: _copy(source, out), mode=0o400)
    else:
        name = export.name + ".zip"
        fsutil.atomic_write_with(folder / name, lambda out: _zip_folder(export, out), mode=0o400)
    return f"{IMPORTS_DIR}/{import_id}/{name}"


def _copy(source: BinaryIO, out: BinaryIO) -> None:
    while chunk := source.read(1024 * 1024):
        out.write(chunk)


def _zip_folder(folder: Path, out: BinaryIO) -> None:
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for item in sorted(p for p in folder.rglob("*") if p.is_file()):
            archive.write(item, item.relative_to(folder).as_posix())
