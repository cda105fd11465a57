"""The end of data's life: deleting a whole account so that nothing of it remains.

:func:`delete_account` removes the user's rows from every table in one transaction,
the attachment blobs no other user shares, the kept originals of the user's imports,
and then compacts the store (the full-text index merged, the database rebuilt without
free pages, the WAL emptied), so that a byte-for-byte scan of the vault's files finds
none of the user's content.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from chatkeep import fsutil
from chatkeep.errors import UnsafeLocation
from chatkeep.ids import check_name
from chatkeep.vault import Vault


@dataclass(frozen=True, slots=True)
class AccountDeletion:
    """What deleting an account removed: rows per table, blobs and import originals."""

    user_id: str
    rows: dict[str, int]
    blobs: int
    originals: int


def delete_account(vault: Vault, user_id: str) -> AccountDeletion:
    """Delete ``user_id`` and everything of theirs, for good; :class:`NotFound` if no such
    user. Other users' data, and blobs they also use, are untouched."""
    check_name("user", user_id)
    originals = [r.stored_path for r in vault.store.list_imports(user_id) if r.stored_path]
    rows = vault.store.delete_user(user_id)
    removed = 0
    for stored in originals:
        folder = _import_folder(vault.root, stored)
        if folder.exists():
            fsutil.remove_tree(folder)
            removed += 1
    vault.store.compact()
    blobs = rows.pop("blobs", 0)
    return AccountDeletion(user_id=user_id, rows=rows, blobs=blobs, originals=removed)


def _import_folder(root: Path, stored: str) -> Path:
    relative = Path(stored)
    if relative.is_absolute() or ".." in relative.parts or len(relative.parts) != 3:
        raise UnsafeLocation(f"an import original is kept at an odd path {stored!r}")
    if relative.parts[0] != "imports":
        raise UnsafeLocation(f"an import original is kept at an odd path {stored!r}")
    return root / relative.parent
