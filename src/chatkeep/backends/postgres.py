"""PostgreSQL specifics: the engine, write serialisation, errors and checks.

* psycopg 3 through SQLAlchemy Core; the URL comes from ``CHATKEEP_DATABASE_URL``
  (``postgresql://user@host/db``; libpq options such as ``?options=-csearch_path%3Dx``
  pass through).
* **Writes are serialised** across every process and machine sharing the database, as
  SQLite's ``BEGIN IMMEDIATE`` serialises them on one machine: each write transaction
  first takes one transaction-scoped advisory lock. The store's invariants (message
  sequence numbers, counters, one home per runtime, merge-by-source-id imports) then hold
  exactly as on SQLite, with no retry loops. Reads never wait for it.
* A writer waits for the lock at most :data:`~chatkeep.limits.BUSY_TIMEOUT_SECONDS`
  (``lock_timeout``), then fails with :class:`StoreBusy`, as on SQLite.
* A commit returns once PostgreSQL has flushed its WAL (``synchronous_commit`` on, the
  server default), so an acknowledged write survives a killed client or server.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

from chatkeep.errors import ChatkeepError, InvalidInput, StorageError, StorageFull, StoreBusy
from chatkeep.limits import BUSY_TIMEOUT_SECONDS

#: Execution options that make a connection's transaction a write transaction.
WRITE_OPTIONS: Final = {"chatkeep_write": "1"}
#: The advisory lock every write transaction holds (an arbitrary constant: "chatkeep").
WRITE_LOCK_KEY: Final = 0x636B_6B70
# One round trip: the wait limit for this transaction, then the lock under it.
_LOCK_SQL: Final = (
    f"SELECT set_config('lock_timeout', '{int(BUSY_TIMEOUT_SECONDS * 1000)}ms', true),"
    f" pg_advisory_xact_lock({WRITE_LOCK_KEY})"
)


def engine_url(url: str) -> str:
    """``postgresql://…`` as SQLAlchemy's psycopg 3 URL; anything else is refused."""
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise InvalidInput(f"CHATKEEP_DATABASE_URL is not a database URL: {exc}") from None
    if parsed.get_backend_name() not in ("postgresql", "postgres"):
        raise InvalidInput(
            f"unsupported database URL scheme {parsed.drivername!r}",
            hint="use postgresql://user@host:5432/dbname (or leave CHATKEEP_DATABASE_URL unset)",
        )
    return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def _on_begin(conn: Connection) -> None:
    if conn.get_execution_options().get("chatkeep_write"):
        conn.exec_driver_sql(_LOCK_SQL)


def create_postgres_engine(url: str) -> Engine:
    engine = create_engine(engine_url(url), pool_pre_ping=True, pool_size=5, max_overflow=20)
    event.listen(engine, "begin", _on_begin)
    _forget_pool_after_fork(engine)
    return engine


def _forget_pool_after_fork(engine: Engine) -> None:
    """A forked child must not share the parent's server connections."""

    def forget() -> None:
        engine.dispose(close=False)

    os.register_at_fork(after_in_child=forget)


class PostgresRawWrite:
    """The append hot path's write transaction on a pooled psycopg connection: the same
    lock and timeout as every other write, without SQLAlchemy's per-call machinery."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @contextmanager
    def __call__(self) -> Iterator[Any]:
        import psycopg

        raw = self._engine.raw_connection()
        try:
            cursor = raw.cursor()
            try:
                cursor.execute(_LOCK_SQL)
                yield cursor
                raw.commit()
            except BaseException:
                raw.rollback()
                raise
            finally:
                cursor.close()
        except psycopg.Error as exc:
            raise translate_error(exc) from exc
        finally:
            raw.close()

    def close(self) -> None:
        """Connections belong to the engine's pool, closed with it."""


def translate_error(exc: BaseException) -> ChatkeepError:
    """A PostgreSQL error as the chatkeep error a caller can act on."""
    state = getattr(exc, "sqlstate", None) or ""
    if state in ("55P03", "40P01", "57014"):  # lock_not_available, deadlock, cancelled
        return StoreBusy(
            f"another writer held the store for longer than {BUSY_TIMEOUT_SECONDS:.0f} s",
            hint="retry; if it persists, look for a stuck chatkeep process",
        )
    if state in ("53100", "53200"):  # disk_full, out_of_memory
        return StorageFull("the database server is out of space", hint="free space and retry")
    if state.startswith("08") or "connection" in str(exc).lower():
        return StorageError(
            f"cannot reach the database: {exc}",
            hint="check CHATKEEP_DATABASE_URL and that the server is running",
        )
    return StorageError(f"the database failed: {exc}")


def after_bulk_load(conn: Connection) -> None:
    """Rows loaded with their own keys leave the identity behind: move it past them."""
    for statement in _RESET_IDENTITIES:
        conn.exec_driver_sql(statement)


_RESET_IDENTITIES: Final = (
    "SELECT setval(pg_get_serial_sequence('messages', 'pk'),"
    " (SELECT coalesce(max(pk), 0) + 1 FROM messages), false)",
    "SELECT setval(pg_get_serial_sequence('recording_events', 'pk'),"
    " (SELECT coalesce(max(pk), 0) + 1 FROM recording_events), false)",
)


def integrity_problems(_conn: Connection) -> list[str]:
    """PostgreSQL checks its own pages and enforces foreign keys on every write."""
    return []
