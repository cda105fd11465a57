"""Storage backends: implementations of the :class:`~chatkeep.store.Store` contract."""

from __future__ import annotations

from chatkeep.backends.sql import SqlStore
from chatkeep.backends.sqlite import (
    WRITE_OPTIONS,
    AppendConnections,
    create_sqlite_engine,
    integrity_problems,
    translate_error,
)
from chatkeep.blobs import BlobStore
from chatkeep.location import VaultPaths
from chatkeep.migrations import migrate
from chatkeep.migrations.sqlite import MIGRATIONS as SQLITE_MIGRATIONS


def open_sqlite_store(paths: VaultPaths) -> SqlStore:
    """The embedded store of a vault: SQLite in the root, blobs beside it."""
    engine = create_sqlite_engine(paths.database)
    try:
        migrate(engine, SQLITE_MIGRATIONS, write_options=WRITE_OPTIONS)
    except BaseException:
        engine.dispose()
        raise
    return SqlStore(
        engine,
        BlobStore(paths.blobs),
        write_options=WRITE_OPTIONS,
        raw_write=AppendConnections(paths.database),
        translate=translate_error,
        dialect_checks=integrity_problems,
    )


__all__ = ["SqlStore", "open_sqlite_store"]
