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

from pathlib import Path
from typing import Any, Final

from sqlalchemy import Connection, Engine, create_engine, event, text

from chatkeep.limits import BUSY_TIMEOUT_SECONDS

#: Execution options that make a connection's transaction a write transaction.
WRITE_OPTIONS: Final = {"sqlite_begin": "IMMEDIATE"}
_BEGIN_MODES: Final = {"DEFERRED", "IMMEDIATE"}


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
    finally:
        cursor.close()


def _on_begin(conn: Connection) -> None:
    mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
    if mode not in _BEGIN_MODES:
        raise ValueError(f"unknown SQLite transaction mode {mode!r}")
    conn.exec_driver_sql(f"BEGIN {mode}")


def create_sqlite_engine(path: Path) -> Engine:
    """An engine on the database file at ``path``, configured as described above."""
    engine = create_engine(
        f"sqlite+pysqlite:///{path}",
        connect_args={"timeout": BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
    )
    event.listen(engine, "connect", _on_connect)
    event.listen(engine, "begin", _on_begin)
    _ensure_wal(engine)
    return engine


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


def integrity_problems(conn: Connection) -> list[str]:
    """What SQLite's own checks report: page-level integrity and foreign keys."""
    found: list[str] = []
    for (line,) in conn.execute(text("PRAGMA integrity_check")):
        if line != "ok":
            found.append(f"integrity_check: {line}")
    for row in conn.execute(text("PRAGMA foreign_key_check")):
        found.append(f"foreign key violation in {row[0]} (rowid {row[1]}) -> {row[2]}")
    return found
