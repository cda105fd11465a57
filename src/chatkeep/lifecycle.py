"""The end of data's life: retention (``chatkeep gc``) and deleting a whole account.

:func:`delete_account` removes the user's rows from every table in one transaction,
the attachment blobs no other user shares, the kept originals of the user's imports,
and then compacts the store (the full-text index merged, the database rebuilt without
free pages, the WAL emptied), so that a byte-for-byte scan of the vault's files finds
none of the user's content.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from chatkeep import fsutil
from chatkeep.errors import InvalidInput, UnsafeLocation
from chatkeep.ids import check_name
from chatkeep.store import DeleteReport, Store
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


def delete_import(vault: Vault, user_id: str, import_id: str) -> DeleteReport:
    """Delete what an import brought (see :meth:`Store.delete_import`) and the kept
    original of the export."""
    record = vault.store.get_import(user_id, import_id)
    report = vault.store.delete_import(user_id, import_id)
    if record.stored_path:
        folder = _import_folder(vault.root, record.stored_path)
        if folder.exists():
            fsutil.remove_tree(folder)
    return report


# -- retention ---------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How long things are kept, in days. A user can change theirs with the settings
    ``retention.trash_days``, ``retention.snapshot_days`` and ``retention.usage_days``."""

    trash_days: int = 30
    snapshot_days: int = 30
    usage_days: int = 90


_POLICY_KEYS = {
    "trash_days": "retention.trash_days",
    "snapshot_days": "retention.snapshot_days",
    "usage_days": "retention.usage_days",
}


def policy_for(store: Store, user_id: str) -> RetentionPolicy:
    """The user's policy: the defaults, overridden by their retention settings."""
    settings = store.list_settings(user_id, prefix="retention")
    values = {}
    for field_name, key in _POLICY_KEYS.items():
        value = settings.get(key)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise InvalidInput(f"the setting {key} must be a whole number of days")
        values[field_name] = value
    return RetentionPolicy(**values)


@dataclass(frozen=True, slots=True)
class CollectedGarbage:
    """What ``gc`` removed (or, in a dry run, would remove), per user."""

    dry_run: bool
    conversations: dict[str, list[str]]
    snapshots: dict[str, list[str]]
    usage_events: dict[str, int]
    blobs: int


def collect_garbage(
    vault: Vault, *, now: datetime | None = None, dry_run: bool = False
) -> CollectedGarbage:
    """Apply every user's retention policy as of ``now`` (the clock is a parameter so
    that retention can be tested): empty the trash of conversations trashed longer ago
    than the policy, remove snapshots that are not starred and old usage events; then
    remove blobs nothing uses and compact the store."""
    moment = now or datetime.now(UTC)
    conversations: dict[str, list[str]] = {}
    snapshots: dict[str, list[str]] = {}
    usage: dict[str, int] = {}
    for user in vault.store.list_users():
        policy = policy_for(vault.store, user.id)
        found = vault.store.expired(
            user.id,
            trashed_before=moment - timedelta(days=policy.trash_days),
            snapshots_before=moment - timedelta(days=policy.snapshot_days),
            usage_before=moment - timedelta(days=policy.usage_days),
        )
        conversations[user.id] = found["conversations"]
        snapshots[user.id] = found["snapshots"]
        usage[user.id] = len(found["usage_events"])
        if dry_run:
            continue
        for conversation_id in found["conversations"]:
            vault.store.delete_conversation(user.id, conversation_id)
        vault.store.purge(user.id, snapshots=found["snapshots"], usage_events=found["usage_events"])
    blobs = 0
    if not dry_run:
        blobs = vault.store.sweep_unused_blobs()
        vault.store.compact()
    return CollectedGarbage(
        dry_run=dry_run,
        conversations={u: ids for u, ids in conversations.items() if ids},
        snapshots={u: ids for u, ids in snapshots.items() if ids},
        usage_events={u: n for u, n in usage.items() if n},
        blobs=blobs,
    )
