"""Storage backends: implementations of the :class:`~chatkeep.store.Store` contract."""

from __future__ import annotations

import sqlite3

from sqlalchemy.exc import DBAPIError

from chatkeep.backends.sql import SqlStore
from chatkeep.backends.sqlite import (
    WRITE_OPTIONS,
    AppendConnections,
    compact,
    create_sqlite_engine,
    integrity_problems,
    translate_error,
)
from chatkeep.backends.sqlite_search import SqliteSearch
from chatkeep.blobs import BlobStore
from chatkeep.errors import VaultError
from chatkeep.location import VaultPaths
from chatkeep.migrations import migrate
from chatkeep.migrations.sqlite import MIGRATIONS as SQLITE_MIGRATIONS


def open_sqlite_store(paths: VaultPaths) -> SqlStore:
    """The embedded store of a vault: SQLite in the root, blobs beside it."""
    if paths.vault_file.exists() and not paths.database.exists() and _has_data(paths):
        raise VaultError(
            f"the vault at {paths.root} has lost its database file {paths.database.name}",
            hint="restore it from a backup; chatkeep will not start an empty one over it",
        )
    try:
        engine = create_sqlite_engine(paths.database)
    except sqlite3.DatabaseError as exc:
        raise translate_error(exc) from exc
    try:
        migrate(engine, SQLITE_MIGRATIONS, write_options=WRITE_OPTIONS)
    except DBAPIError as exc:
        engine.dispose()
        raise translate_error(exc.orig or exc) from exc
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
        search=SqliteSearch(),
        compact=lambda: compact(paths.database),
    )


def open_postgres_store(paths: VaultPaths, url: str) -> SqlStore:
    """A store on the PostgreSQL database at ``url``; blobs in the vault root, which
    every process sharing the database must also share (one filesystem)."""
    from chatkeep.backends import postgres
    from chatkeep.backends.postgres_search import PostgresSearch
    from chatkeep.migrations.postgres import MIGRATIONS as POSTGRES_MIGRATIONS

    engine = postgres.create_postgres_engine(url)
    try:
        migrate(engine, POSTGRES_MIGRATIONS, write_options=postgres.WRITE_OPTIONS)
    except DBAPIError as exc:
        engine.dispose()
        raise postgres.translate_error(exc.orig or exc) from exc
    except BaseException:
        engine.dispose()
        raise
    return SqlStore(
        engine,
        BlobStore(paths.blobs),
        write_options=postgres.WRITE_OPTIONS,
        raw_write=postgres.PostgresRawWrite(engine),
        translate=postgres.translate_error,
        dialect_checks=postgres.integrity_problems,
        search=PostgresSearch(),
        after_load=postgres.after_bulk_load,
    )


def open_files_store(paths: VaultPaths) -> SqlStore:
    """Plain files as the record, with a derived SQLite index (chatkeep.backends.files)."""
    from chatkeep.backends.files import open_files_store as open_files

    return open_files(paths)


#: The backends a vault can keep its data in (``vault.json`` records which).
BACKENDS = ("sqlite", "files", "postgresql")


def _has_data(paths: VaultPaths) -> bool:
    """Whether the vault ever held data: blobs, or the database's own WAL beside it."""
    wal = paths.database.with_name(paths.database.name + "-wal")
    return wal.exists() or any(paths.blobs.glob("??/*"))


__all__ = [
    "BACKENDS",
    "SqlStore",
    "open_files_store",
    "open_postgres_store",
    "open_sqlite_store",
]
