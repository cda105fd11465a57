"""SQLite specifics: the engine, its pragmas, write locking and integrity checks.

* WAL journal, so readers never block the writer nor the writer the readers.
* ``synchronous=FULL``: a commit is on disk (the WAL is fsynced) before it returns, so an
  acknowledged write survives a power loss, not only a killed process.
* Every write transaction starts with ``BEGIN IMMEDIATE``: it takes the write lock up
  front and waits for it under the busy timeout. A deferred transaction that reads and
  then writes can fail at once with "database is locked" whatever the timeout.
* pysqlite's own implicit transactions are switched off; SQLAlchemy's ``begin`` event
  issues our ``BEGIN``.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Connection, Engine, create_engine, event, text

from chatkeep.backends.hooks import WriteHooks
from chatkeep.errors import ChatkeepError, StorageError, StorageFull, StoreBusy
from chatkeep.limits import BUSY_TIMEOUT_SECONDS
from chatkeep.search import spaced_cjk

#: Execution options that make a connection's transaction a write transaction.
WRITE_OPTIONS: Final = {"sqlite_begin": "IMMEDIATE"}
_BEGIN_SQL: Final = {"DEFERRED": "BEGIN DEFERRED", "IMMEDIATE": "BEGIN IMMEDIATE"}
# Built once from a declared constant, never from input.
_BUSY_TIMEOUT_PRAGMA: Final = "PRAGMA busy_timeout = " + str(int(BUSY_TIMEOUT_SECONDS * 1000))


def _index_text(value: Any) -> Any:
    return spaced_cjk(value) if isinstance(value, str) else value


def register_functions(dbapi_connection: sqlite3.Connection) -> None:
    """The SQL functions the schema's search triggers call: every connection that may
    write messages or titles needs them (a program without them cannot, and so cannot
    leave the index out of step)."""
    dbapi_connection.create_function("chatkeep_index_text", 1, _index_text, deterministic=True)


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None
    register_functions(dbapi_connection)
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute(_BUSY_TIMEOUT_PRAGMA)
    finally:
        cursor.close()


def _on_begin(conn: Connection) -> None:
    mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
    if mode not in _BEGIN_SQL:
        raise ValueError(f"unknown SQLite transaction mode {mode!r}")
    conn.exec_driver_sql(_BEGIN_SQL[mode])


def create_sqlite_engine(path: Path) -> Engine:
    """An engine on the database file at ``path``, configured as described above."""
    engine = create_engine(
        f"sqlite+pysqlite:///{path}",
        connect_args={"timeout": BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
    )
    event.listen(engine, "connect", _on_connect)
    event.listen(engine, "begin", _on_begin)
    _forget_pool_after_fork(engine)
    _ensure_wal(engine)
    return engine


def _forget_pool_after_fork(engine: Engine) -> None:
    """A forked child must not reuse the parent's pooled connections (SQLite's
    "how to corrupt" list); it drops them without closing them and opens its own."""
    ref = weakref.ref(engine)

    def forget() -> None:
        alive = ref()
        if alive is not None:
            alive.dispose(close=False)

    os.register_at_fork(after_in_child=forget)


def _ensure_wal(engine: Engine) -> None:
    # The journal mode is stored in the database file; switching needs a moment of
    # exclusive access, so only do it when the file is not in WAL mode yet.
    # Raw DBAPI connection: outside any transaction, as the pragma requires.
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        (mode,) = cursor.execute("PRAGMA journal_mode").fetchone()
        if str(mode).lower() != "wal":
            cursor.execute("PRAGMA journal_mode = WAL")
        cursor.close()
    finally:
        raw.close()


class AppendConnections:
    """A small pool of plain sqlite3 connections for the append hot path.

    Same pragmas (connect hook), same locking (``BEGIN IMMEDIATE`` under the busy
    timeout), same durability as every other write, without SQLAlchemy's per-call
    machinery. A connection is checked out for one transaction and returned, so the
    pool holds as many connections as there were concurrent appends, not one per thread
    ever seen. A connection is never used across ``fork()`` (a known way to corrupt
    SQLite): a child process starts a pool of its own.
    """

    def __init__(self, path: Path, hooks: WriteHooks | None = None) -> None:
        self._path = path
        self._hooks = hooks
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._idle: list[sqlite3.Connection] = []

    def _checkout(self) -> sqlite3.Connection:
        with self._lock:
            if self._pid != os.getpid():
                # Inherited from the parent: never touch (or close) its connections.
                self._pid, self._idle = os.getpid(), []
            if self._idle:
                return self._idle.pop()
        conn = sqlite3.connect(self._path, timeout=BUSY_TIMEOUT_SECONDS, check_same_thread=False)
        _on_connect(conn, None)
        if self._hooks is not None:
            self._hooks.on_connect(conn)
        return conn

    def _checkin(self, conn: sqlite3.Connection) -> None:
        with self._lock:
            if self._pid == os.getpid() and not conn.in_transaction:
                self._idle.append(conn)
                return
        conn.close()

    @contextmanager
    def __call__(self) -> Iterator[sqlite3.Cursor]:
        conn = self._checkout()
        cursor = conn.cursor()
        try:
            cursor.execute("BEGIN IMMEDIATE")
            try:
                yield cursor
                if self._hooks is not None:
                    self._hooks.before_commit(conn)
                cursor.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    cursor.execute("ROLLBACK")
                if self._hooks is not None:
                    self._hooks.after_rollback()
                raise
            if self._hooks is not None:
                self._hooks.after_commit()
        except sqlite3.DatabaseError as exc:
            raise translate_error(exc) from exc
        finally:
            cursor.close()
            self._checkin(conn)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


def compact(path: Path) -> None:
    """Leave no deleted bytes in the database's files: merge the full-text index (which
    keeps deleted entries until a merge), rebuild the file without free pages, and
    checkpoint the WAL down to nothing. Takes the write lock like any writer."""
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
    try:
        _on_connect(conn, None)
        conn.execute("PRAGMA secure_delete = ON")
        conn.execute("INSERT INTO messages_fts (messages_fts) VALUES ('optimize')")
        conn.execute("INSERT INTO conversations_fts (conversations_fts) VALUES ('optimize')")
        conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.DatabaseError as exc:
        raise translate_error(exc) from exc
    finally:
        conn.close()


def translate_error(exc: BaseException) -> ChatkeepError:
    """A SQLite error as the chatkeep error a caller can act on."""
    text_ = str(exc).lower()
    if "locked" in text_ or "busy" in text_:
        return StoreBusy(
            "the store stayed locked by another writer for longer than "
            f"{BUSY_TIMEOUT_SECONDS:.0f} s",
            hint="retry; if it persists, look for a stuck chatkeep process",
        )
    if "full" in text_:
        return StorageFull("the database is full", hint="free some disk space and retry")
    if "malformed" in text_ or "not a database" in text_ or "corrupt" in text_:
        return StorageError(
            f"the database file is damaged: {exc}",
            hint="run 'chatkeep doctor' to see what is wrong; restore from a backup",
        )
    return StorageError(f"the database failed: {exc}")


def integrity_problems(conn: Connection) -> list[str]:
    """What SQLite's own checks report: page-level integrity and foreign keys."""
    found: list[str] = []
    for (line,) in conn.execute(text("PRAGMA integrity_check")):
        if line != "ok":
            found.append(f"integrity_check: {line}")
    for row in conn.execute(text("PRAGMA foreign_key_check")):
        found.append(f"foreign key violation in {row[0]} (rowid {row[1]}) -> {row[2]}")
    return found
