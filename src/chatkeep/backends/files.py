"""The file backend: plain JSON and JSONL files are the system of record, and the SQL
store on a SQLite file beside them is a derived index that serves every read.

How a write works. Each store call runs the SQL store's logic unchanged against the
index, in one write transaction (which holds the vault's write lock across processes).
Temporary triggers on the index's connections note every row that changes. Just before
the index commits, :class:`FileWriter` turns those rows into file changes
(:mod:`chatkeep.backends.files_layout` says where each row lives) and makes them
durable in three steps:

1. *prepare*: every file to replace is written in full to a temp file beside it, and
   a line of ``files/journal.jsonl`` records, for transaction number N, each file to
   append to with its size before, each replacement, and each folder to delete;
2. *apply*: the appends (fsynced), the renames (a link keeps each replaced file's old
   content), the deletions (moved into ``files/trash``);
3. the index records N and commits. Only then does the call return.

A failure in step 2 undoes step 2 at once (truncate, rename back). A crash at any point
leaves a journal whose N is one past the index's: the next writer, or the next open,
undoes it the same way, under the write lock. So the files and the index move together,
and what a call acknowledged is in the files before it returns. If the index itself is
missing or does not match the journal, it is rebuilt from the files.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import secrets
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
from sqlalchemy import Engine, event, insert
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.exc import DBAPIError

from chatkeep import fsutil
from chatkeep.backends import files_layout as fl
from chatkeep.backends.sql import SqlStore, message_from_row
from chatkeep.backends.sqlite import (
    WRITE_OPTIONS,
    AppendConnections,
    compact,
    create_sqlite_engine,
    integrity_problems,
    register_functions,
    translate_error,
)
from chatkeep.backends.sqlite_search import SqliteSearch
from chatkeep.blobs import BlobStore
from chatkeep.errors import StorageError
from chatkeep.limits import BUSY_TIMEOUT_SECONDS
from chatkeep.location import VaultPaths
from chatkeep.migrations import migrate
from chatkeep.migrations.sqlite import MIGRATIONS as SQLITE_MIGRATIONS
from chatkeep.model import Problem, canonical_json
from chatkeep.render import message_markdown

# -- capturing changed rows on the index's connections ----------------------------------
_STATE_DDL = (
    "CREATE TABLE IF NOT EXISTS ck_files_state ("
    " id INTEGER PRIMARY KEY CHECK (id = 1),"
    " txn INTEGER NOT NULL"
    ")"
)
_CHANGES_DDL = (
    "CREATE TEMP TABLE IF NOT EXISTS ck_changes ("
    " n INTEGER PRIMARY KEY, tbl TEXT NOT NULL, op TEXT NOT NULL, rid INTEGER, old TEXT)"
)
#: What a deleted row must still tell: its key, and where its file is.
_ROUTE_COLUMNS = {
    "users": ("id",),
    "runtimes": ("user_id", "id", "origin"),
    "conversations": ("user_id", "id", "runtime_id", "origin"),
    "messages": ("user_id", "pk", "conversation_id"),
}


def _capture_ddl() -> list[str]:
    """Temporary triggers (this connection only) that note each changed row. Built from
    the schema's own table and column names, never from input."""
    statements = [_CHANGES_DDL]
    for name in fl.TABLES:
        present = {str(c.name) for c in fl.TABLES[name].columns}
        wanted = (*_ROUTE_COLUMNS.get(name, ()), "user_id", *fl.KEYS[name])
        columns = dict.fromkeys(c for c in wanted if c in present)
        old = ", ".join(f"'{c}', OLD.{c}" for c in columns)
        for event_name in ("INSERT", "UPDATE"):
            statements.append(
                f"CREATE TEMP TRIGGER IF NOT EXISTS ck_{name}_{event_name.lower()} "  # noqa: S608
                f"AFTER {event_name} ON main.{name} BEGIN "
                f"INSERT INTO ck_changes (tbl, op, rid) VALUES ('{name}', 'put', NEW.rowid); END"
            )
        statements.append(
            f"CREATE TEMP TRIGGER IF NOT EXISTS ck_{name}_delete AFTER DELETE ON main.{name} "  # noqa: S608
            f"BEGIN INSERT INTO ck_changes (tbl, op, rid, old) "
            f"VALUES ('{name}', 'del', OLD.rowid, json_object({old})); END"
        )
    statements.append(
        "CREATE TEMP TRIGGER IF NOT EXISTS ck_conversations_listed "
        "AFTER UPDATE OF title, state, trashed_at ON main.conversations BEGIN "
        "INSERT INTO ck_changes (tbl, op, rid) VALUES ('conversations', 'listed', NEW.rowid); END"
    )
    return statements


_CAPTURE_DDL = _capture_ddl()
_FETCH_SQL = {
    name: (
        f"SELECT t.* FROM temp.ck_changes c JOIN main.{name} t ON t.rowid = c.rid "  # noqa: S608
        f"WHERE c.tbl = '{name}' AND c.op = 'put' GROUP BY c.rid ORDER BY max(c.n)"
    )
    for name in fl.TABLES
}
_INSERT_SQL = {
    name: str(insert(table).compile(dialect=sqlite_dialect.dialect()))
    for name, table in fl.TABLES.items()
}
_INSERT_ORDER = {name: [str(c.name) for c in table.columns] for name, table in fl.TABLES.items()}


# -- the write protocol -------------------------------------------------------------------
@dataclass
class _Plan:
    """The file changes of one transaction."""

    appends: dict[Path, list[bytes]] = field(default_factory=dict)
    replaces: dict[Path, bytes] = field(default_factory=dict)
    removes: list[Path] = field(default_factory=list)

    def append(self, path: Path, line: bytes) -> None:
        self.appends.setdefault(path, []).append(line)


class _Journal:
    """Steps 1 and 2 of the protocol for one transaction number, and their undoing."""

    def __init__(self, layout: fl.Layout, txn: int) -> None:
        self.layout = layout
        self.txn = txn
        self.appends: list[tuple[Path, int | None]] = []
        self.replaces: list[tuple[Path, Path, Path | None]] = []  # temp, target, old
        self.removes: list[tuple[Path, Path]] = []  # path, grave

    # step 1
    def prepare(self, plan: _Plan) -> None:
        attempt = secrets.token_hex(4)  # a number may be used again after an undo
        for number, (target, data) in enumerate(plan.replaces.items()):
            fsutil.ensure_dir(target.parent)
            temp = target.with_name(f"{fsutil.TEMP_PREFIX}new-{self.txn}-{attempt}-{number}")
            # No old content to keep when the target does not exist yet: undo removes it.
            old = (
                target.with_name(f"{fsutil.TEMP_PREFIX}old-{self.txn}-{attempt}-{number}")
                if target.exists()
                else None
            )
            fsutil.write_new_file(temp, data)
            self.replaces.append((temp, target, old))
        for path in plan.appends:
            fsutil.ensure_dir(path.parent)
            self.appends.append((path, _complete_size(path)))
        for number, path in enumerate(plan.removes):
            self.removes.append((path, self.layout.trash / f"{self.txn}-{number}"))
        self.record()

    def record(self, *, alone: bool = False) -> None:
        """Add this transaction's line to the journal (one fsync). ``alone``, or a
        journal grown past its limit, writes the file anew with this line only."""
        line = fl.log_line(self._record())
        journal = self.layout.journal
        fsutil.ensure_dir(journal.parent)
        size = journal.stat().st_size if journal.exists() else 0
        if alone or size > _JOURNAL_LIMIT or not _ends_a_line(journal, size):
            fsutil.atomic_write(journal, line)
        else:
            fsutil.append_durable(journal, line)

    def _record(self) -> dict[str, Any]:
        rel = self.layout.relative
        return {
            "txn": self.txn,
            "appends": [[rel(p), size] for p, size in self.appends],
            "replaces": [[rel(a), rel(b), rel(c) if c else None] for a, b, c in self.replaces],
            "removes": [[rel(p), rel(g)] for p, g in self.removes],
        }

    @classmethod
    def load(cls, layout: fl.Layout) -> _Journal | None:
        """The journal's last complete line (a torn one was never acted on: the files
        are touched only once their line is on disk)."""
        line, _end = _last_line(layout.journal)
        raw = fl.parse_line(line) if line else None
        if raw is None:
            if line:
                raise StorageError(f"the last line of {layout.journal} fails its checksum")
            return None
        journal = cls(layout, int(raw["txn"]))
        path = layout.absolute
        journal.appends = [(path(p), size) for p, size in raw["appends"]]
        journal.replaces = [
            (path(a), path(b), path(c) if c else None) for a, b, c in raw["replaces"]
        ]
        journal.removes = [(path(p), path(g)) for p, g in raw["removes"]]
        return journal

    # step 2
    def apply(self, plan: _Plan) -> None:
        for path, _size in self.appends:
            fsutil.append_durable(path, b"".join(plan.appends[path]))
        synced: set[Path] = set()
        for temp, target, old in self.replaces:
            if old is not None:
                fsutil.keep_link(target, old)
            fsutil.move(temp, target, sync=False)
            synced.add(target.parent)
        for directory in synced:
            fsutil.fsync_dir(directory)
        if self.removes:
            fsutil.ensure_dir(self.layout.trash)
        for path, grave in self.removes:
            fsutil.move(path, grave)

    def undo(self) -> None:
        """Put every file back as it was before :meth:`apply` (which may have stopped
        anywhere, or not run at all). Each step is tried even if an earlier one fails;
        the first failure is raised at the end (the journal stays, to try again)."""
        steps = [functools.partial(_unremove, p, g) for p, g in reversed(self.removes)]
        steps += [functools.partial(_unreplace, *r) for r in reversed(self.replaces)]
        steps += [functools.partial(_unappend, p, size) for p, size in reversed(self.appends)]
        failed: StorageError | None = None
        for step in steps:
            try:
                step()
            except StorageError as exc:
                failed = failed or exc
        if failed is not None:
            raise failed

    def clean(self) -> None:
        """After the commit: drop what only an undo would have needed."""
        for temp, _target, old in self.replaces:
            fsutil.remove_quietly(temp)
            if old is not None:
                fsutil.remove_quietly(old)
        for _path, grave in self.removes:
            fsutil.remove_quietly(grave)


def _unremove(path: Path, grave: Path) -> None:
    if grave.exists() and not path.exists():
        fsutil.ensure_dir(path.parent)
        fsutil.move(grave, path)


def _unreplace(temp: Path, target: Path, old: Path | None) -> None:
    """``old`` is None when the target did not exist before: remove what was put there.
    Otherwise the link keeps the old content, unless the step never got that far (then
    the target was not touched)."""
    fsutil.remove_quietly(temp)
    if old is None:
        if target.exists():
            fsutil.remove_file(target)
    elif old.exists():
        fsutil.move(old, target)
        # If the target still was that same file (the step stopped before its rename),
        # rename() between two links of one file does nothing: drop the spare link.
        fsutil.remove_quietly(old)


def _unappend(path: Path, size: int | None) -> None:
    if size is None:
        fsutil.remove_quietly(path)
    else:
        fsutil.truncate_durable(path, size)


#: Past this size the journal is written anew with its last line only.
_JOURNAL_LIMIT = 1 << 20


def _last_line(path: Path) -> tuple[bytes, int]:
    """The last complete line of ``path`` and where it ends (``b""`` if there is none),
    read from the end: a torn tail after it is ignored."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return b"", 0
    with handle:
        size = handle.seek(0, 2)
        window = 1 << 16
        while True:
            start = max(0, size - window)
            handle.seek(start)
            data = handle.read(size - start)
            end = data.rfind(b"\n")
            begin = data.rfind(b"\n", 0, max(end, 0)) + 1
            if (end < 0 or begin == 0) and start > 0:
                window *= 4
                continue
            if end < 0:
                return b"", 0
            return data[begin : end + 1], start + end + 1


def _ends_a_line(path: Path, size: int) -> bool:
    """Whether the file of ``size`` bytes is empty or ends with a complete line."""
    if size == 0:
        return True
    with path.open("rb") as handle:
        handle.seek(size - 1)
        return handle.read(1) == b"\n"


def _complete_size(path: Path) -> int | None:
    """The size of a log up to its last complete line (None if there is no log). An
    unfinished last line is set aside first: a new line must not be glued to it."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return None
    if _ends_a_line(path, size):
        return size
    data = path.read_bytes()
    complete = data.rfind(b"\n") + 1
    set_aside(path, complete, data[complete:])
    return complete


def set_aside(path: Path, complete: int, tail: bytes) -> None:
    """Move an unfinished last line into ``<log>.torn`` (kept for a person to look at)
    and cut the log back to its complete lines."""
    fsutil.append_durable(path.with_name(path.name + ".torn"), tail + b"\n")
    fsutil.truncate_durable(path, complete)


def _sweep_trash(layout: fl.Layout, committed: int) -> None:
    """Remove deleted folders of committed transactions that a crash left behind."""
    if not layout.trash.is_dir():
        return
    for grave in layout.trash.iterdir():
        number = grave.name.split("-", 1)[0]
        if number.isdigit() and int(number) <= committed:
            fsutil.remove_quietly(grave)


def _index_txn(conn: sqlite3.Connection) -> int | None:
    row = conn.execute("SELECT txn FROM ck_files_state WHERE id = 1").fetchone()
    return None if row is None else int(row[0])


def _set_index_txn(conn: sqlite3.Connection, txn: int) -> None:
    conn.execute("INSERT OR REPLACE INTO ck_files_state (id, txn) VALUES (1, ?)", (txn,))


def settle(layout: fl.Layout, conn: sqlite3.Connection) -> bool:
    """Under the write lock: undo the journal of a transaction that did not commit, tidy
    after one that did. Returns False when the index and the files disagree beyond
    that (the index must be rebuilt)."""
    committed = _index_txn(conn)
    journal = _Journal.load(layout)
    if committed is None:
        return False
    if journal is not None:
        if journal.txn == committed + 1:
            journal.undo()
            _Journal(layout, committed).record(alone=True)
        elif journal.txn == committed:
            journal.clean()
            if journal.removes:  # it names deleted folders: leave no trace of them
                _Journal(layout, committed).record(alone=True)
        else:
            return False
    elif committed != 0:
        return False
    _sweep_trash(layout, committed)
    return True


class FileWriter:
    """The :class:`~chatkeep.backends.hooks.WriteHooks` of the file backend."""

    def __init__(self, layout: fl.Layout) -> None:
        self.layout = layout
        # Per thread: a server's threads share this writer, and a transaction's hooks
        # all run on the thread that opened it.
        self._local = threading.local()

    @property
    def _pending(self) -> _Journal | None:
        return getattr(self._local, "pending", None)

    @_pending.setter
    def _pending(self, journal: _Journal | None) -> None:
        self._local.pending = journal

    def on_connect(self, dbapi_connection: Any) -> None:
        for statement in _CAPTURE_DDL:
            dbapi_connection.execute(statement)

    def before_commit(self, dbapi_connection: Any) -> None:
        conn: sqlite3.Connection = dbapi_connection
        changes = _Changes.read(conn)
        if not changes:
            return
        if not settle(self.layout, conn):
            raise StorageError(
                "the files and the index of this vault disagree",
                hint="close every chatkeep process and open the vault again to rebuild it",
            )
        committed = _index_txn(conn) or 0
        txn = committed + 1
        plan, derived = _Planner(self.layout, conn, txn, changes).plan()
        derived.add_to(plan, conn)
        journal = _Journal(self.layout, txn)
        self._pending = journal
        journal.prepare(plan)
        try:
            journal.apply(plan)
        except BaseException:
            self._pending = None
            journal.undo()
            _Journal(self.layout, committed).record(alone=True)
            raise
        _set_index_txn(conn, txn)

    def after_commit(self) -> None:
        journal, self._pending = self._pending, None
        if journal is not None:
            with contextlib.suppress(StorageError):
                journal.clean()

    def after_rollback(self) -> None:
        """The index did not commit after the files were written: undo them, under the
        write lock again (another writer may come first; it undoes them itself)."""
        journal, self._pending = self._pending, None
        if journal is None:
            return
        with contextlib.suppress(StorageError, sqlite3.Error), _locked(self.layout.index) as conn:
            settle(self.layout, conn)


@contextlib.contextmanager
def _locked(index: Path) -> Iterator[sqlite3.Connection]:
    """A plain connection to the index holding its write lock (no capture triggers)."""
    conn = sqlite3.connect(index, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
    try:
        register_functions(conn)
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    finally:
        conn.close()


# -- from changed rows to file changes ----------------------------------------------------
@dataclass
class _Changes:
    puts: dict[str, list[dict[str, Any]]]
    dels: dict[str, list[dict[str, Any]]]
    listed: set[str]  # users whose list of conversations changed

    def __bool__(self) -> bool:
        return bool(self.puts or self.dels)

    @classmethod
    def read(cls, conn: sqlite3.Connection) -> _Changes:
        kinds = conn.execute("SELECT DISTINCT tbl, op FROM temp.ck_changes").fetchall()
        puts: dict[str, list[dict[str, Any]]] = {}
        dels: dict[str, list[dict[str, Any]]] = {}
        listed: set[str] = set()
        for name, op in kinds:
            if op == "put":
                cursor = conn.execute(_FETCH_SQL[name])
                columns = [d[0] for d in cursor.description]
                puts[name] = [dict(zip(columns, row, strict=True)) for row in cursor]
        for name, old in conn.execute(
            "SELECT tbl, old FROM temp.ck_changes WHERE op = 'del' ORDER BY n"
        ):
            dels.setdefault(name, []).append(orjson.loads(old))
        for (user,) in conn.execute(
            "SELECT DISTINCT c.user_id FROM temp.ck_changes k JOIN main.conversations c "
            "ON c.rowid = k.rid WHERE k.tbl = 'conversations' AND k.op = 'listed'"
        ):
            listed.add(user)
        conn.execute("DELETE FROM temp.ck_changes")
        # A row deleted and put again (same key) in one transaction is simply put.
        for name, rows in dels.items():
            kept = {fl.key_of(name, row) for row in puts.get(name, ())}
            dels[name] = [row for row in rows if fl.key_of(name, row) not in kept]
        for name in [n for n, rows in dels.items() if not rows]:
            del dels[name]
        return cls(puts, dels, listed)


class _Planner:
    def __init__(
        self, layout: fl.Layout, conn: sqlite3.Connection, txn: int, changes: _Changes
    ) -> None:
        self.layout = layout
        self.conn = conn
        self.txn = txn
        self.changes = changes
        self.plan_ = _Plan()
        self.derived = _Derived(layout)
        self.gone_users = {row["id"] for row in changes.dels.get("users", ())}
        self.gone_dirs: set[Path] = set()
        self._routes: dict[str, tuple[str, str, str]] = {}

    def plan(self) -> tuple[_Plan, _Derived]:
        self._users()
        self._runtimes()
        self._conversations()
        self._messages()
        for name in fl.LOGGED_TABLES:
            self._logged(name)
        self.derived.listed |= {u for u in self.changes.listed if u not in self.gone_users}
        return self.plan_, self.derived

    def _live(self, user_id: str) -> bool:
        return user_id not in self.gone_users

    def _users(self) -> None:
        for row in self.changes.puts.get("users", ()):
            self.plan_.replaces[self.layout.profile(row["id"])] = fl.json_file(
                self.txn, row, "users"
            )
        for user in self.gone_users:
            directory = self.layout.user_dir(user)
            if directory.exists():
                self.plan_.removes.append(directory)

    def _runtimes(self) -> None:
        for row in self.changes.puts.get("runtimes", ()):
            path = self.layout.runtime_dir(row["user_id"], row["id"], row["origin"])
            self.plan_.replaces[path / "runtime.json"] = fl.json_file(self.txn, row, "runtimes")
        for row in self.changes.dels.get("runtimes", ()):
            if self._live(row["user_id"]):
                path = self.layout.runtime_dir(row["user_id"], row["id"], row["origin"])
                if path.exists():
                    self.plan_.removes.append(path)
                    self.gone_dirs.add(path)

    def _conversations(self) -> None:
        for row in self.changes.puts.get("conversations", ()):
            path = self.layout.conversation_dir(
                row["user_id"], row["runtime_id"], row["origin"], row["id"]
            )
            if not path.exists():  # a new conversation: the user's list changes
                self.derived.listed.add(row["user_id"])
            self._routes[row["id"]] = (row["user_id"], row["runtime_id"], row["origin"])
            if _only_volatile_changed(path / "session_meta.json", row):
                line = fl.put_line("conversations", self.txn, row, tagged=True)
                self.plan_.append(path / "messages.jsonl", line)
            else:
                self.plan_.replaces[path / "session_meta.json"] = fl.json_file(
                    self.txn, row, "conversations"
                )
            self.derived.touched.add(row["id"])
        for row in self.changes.dels.get("conversations", ()):
            if not self._live(row["user_id"]):
                continue
            path = self.layout.conversation_dir(
                row["user_id"], row["runtime_id"], row["origin"], row["id"]
            )
            self.gone_dirs.add(path)
            self.derived.listed.add(row["user_id"])
            if path.exists() and not self._under_gone(path.parent):
                self.plan_.removes.append(path)

    def _under_gone(self, path: Path) -> bool:
        return any(parent in self.gone_dirs for parent in (path, *path.parents))

    def _route(self, conversation_id: str) -> tuple[str, str, str] | None:
        route = self._routes.get(conversation_id)
        if route is None:
            row = self.conn.execute(
                "SELECT user_id, runtime_id, origin FROM main.conversations WHERE id = ?",
                (conversation_id,),
            ).fetchone()
            if row is None:
                return None
            route = self._routes[conversation_id] = (row[0], row[1], row[2])
        return route

    def _messages_log(self, conversation_id: str) -> Path | None:
        route = self._route(conversation_id)
        if route is None or not self._live(route[0]):
            return None
        directory = self.layout.conversation_dir(*route, conversation_id)
        return None if self._under_gone(directory) else directory / "messages.jsonl"

    def _messages(self) -> None:
        rewrites: dict[Path, list[dict[str, Any]]] = {}
        for row in self.changes.dels.get("messages", ()):
            path = self._messages_log(row["conversation_id"])
            if path is not None:
                rewrites.setdefault(path, []).append(row)
        for row in self.changes.puts.get("messages", ()):
            path = self._messages_log(row["conversation_id"])
            if path is None:
                raise StorageError(f"message {row['id']} has no conversation to be written to")
            self.plan_.append(path, fl.put_line("messages", self.txn, row))
            self.derived.messages.setdefault(row["conversation_id"], []).append(row)
        for path, gone in rewrites.items():
            self._rewrite(path, "messages", gone)

    def _logged(self, name: str) -> None:
        rewrites: dict[Path, list[dict[str, Any]]] = {}
        for row in self.changes.dels.get(name, ()):
            if self._live(row["user_id"]):
                rewrites.setdefault(self.layout.table_log(row["user_id"], name), []).append(row)
        for row in self.changes.puts.get(name, ()):
            self.plan_.append(
                self.layout.table_log(row["user_id"], name), fl.put_line(name, self.txn, row)
            )
        for path, gone in rewrites.items():
            self._rewrite(path, name, gone)

    def _rewrite(self, path: Path, table: str, gone: list[dict[str, Any]]) -> None:
        """Deleted rows leave the log for real: it is written anew without them (and
        with this transaction's new lines)."""
        keys = {fl.key_of(table, row) for row in gone}
        lines = fl.live_lines(table, fl.read_log(path).records, without=keys)
        lines.extend(self.plan_.appends.pop(path, []))
        self.plan_.replaces[path] = b"".join(lines)


# -- derived files: the session index and the home conversation's Markdown -----------------
class _Derived:
    """Files made from the index (they could be rebuilt), written through the journal
    like the rest so that they never show a write the index did not commit."""

    def __init__(self, layout: fl.Layout) -> None:
        self.layout = layout
        self.listed: set[str] = set()
        self.touched: set[str] = set()  # conversations whose row changed
        self.messages: dict[str, list[dict[str, Any]]] = {}

    def add_to(self, plan: _Plan, conn: sqlite3.Connection) -> None:
        for user in sorted(self.listed):
            plan.replaces[self.layout.session_index(user)] = session_index(self.layout, conn, user)
        for conversation_id in sorted(self.touched | set(self.messages)):
            home = _home_of(conn, conversation_id)
            if home is None:
                continue
            path, data, appended = render_chatty(
                self.layout, conn, home, self.messages.get(conversation_id, [])
            )
            if appended:
                plan.append(path, data)
            else:
                plan.replaces[path] = data


_LISTED_COLUMNS = ("id", "runtime_id", "title", "origin", "state", "created_at", "import_id")


def session_index(layout: fl.Layout, conn: sqlite3.Connection, user_id: str) -> bytes:
    """``session_index.json``: the user's conversations and where their folders are."""
    rows = conn.execute(
        "SELECT id, runtime_id, title, origin, state, created_at, import_id "
        "FROM main.conversations WHERE user_id = ? ORDER BY created_at, id",
        (user_id,),
    ).fetchall()
    entries = []
    for row in rows:
        entry = dict(zip(_LISTED_COLUMNS, row, strict=True))
        directory = layout.conversation_dir(user_id, row[1], row[3], row[0])
        entry["path"] = directory.relative_to(layout.user_dir(user_id)).as_posix()
        entries.append(entry)
    document = {"format": fl.FORMAT, "derived": True, "conversations": entries}
    return orjson.dumps(document, option=orjson.OPT_INDENT_2)


@dataclass(frozen=True, slots=True)
class _Home:
    user_id: str
    runtime_id: str
    conversation: dict[str, Any]


def _home_of(conn: sqlite3.Connection, conversation_id: str) -> _Home | None:
    cursor = conn.execute(
        "SELECT c.* FROM main.conversations c JOIN main.runtimes r "
        "ON r.user_id = c.user_id AND r.id = c.runtime_id "
        "WHERE c.id = ? AND r.primary_conversation_id = c.id",
        (conversation_id,),
    )
    row = cursor.fetchone()
    if row is None:
        return None
    conversation = dict(zip([d[0] for d in cursor.description], row, strict=True))
    return _Home(conversation["user_id"], conversation["runtime_id"], conversation)


def _chatty_header(conversation: dict[str, Any]) -> bytes:
    title = orjson.dumps(conversation["title"]).decode()
    return (
        f"---\nid: {conversation['id']}\ntitle: {title}\n"
        f"runtime: {conversation['runtime_id']}\nderived: true\n---\n\n"
        f"# {conversation['title']}\n"
    ).encode()


def _message_section(row: dict[str, Any]) -> bytes:
    return ("\n" + message_markdown(message_from_row(SimpleNamespace(**row), ())) + "\n").encode(
        "utf-8"
    )


def render_chatty(
    layout: fl.Layout, conn: sqlite3.Connection, home: _Home, new: list[dict[str, Any]]
) -> tuple[Path, bytes, bool]:
    """The home conversation's active branch as Markdown: its path, and either the
    sections to append (new messages that continue the branch already rendered: True)
    or the whole file (False)."""
    origin = conn.execute(
        "SELECT origin FROM main.runtimes WHERE user_id = ? AND id = ?",
        (home.user_id, home.runtime_id),
    ).fetchone()[0]
    path = layout.chatty(home.user_id, home.runtime_id, origin)
    header = _chatty_header(home.conversation)
    leaf = home.conversation["active_leaf_id"]
    if new and path.exists() and _extends(path, header, new, leaf):
        ordered = sorted(new, key=lambda row: row["seq"])
        return path, b"".join(_message_section(row) for row in ordered), True
    sections = [_message_section(row) for row in _active_branch(conn, home.conversation)]
    return path, b"".join([header, *sections]), False


def _extends(path: Path, header: bytes, new: list[dict[str, Any]], leaf: str | None) -> bool:
    ordered = sorted(new, key=lambda row: row["seq"])
    if ordered[-1]["id"] != leaf:
        return False
    if any(row["parent_id"] != before["id"] for before, row in itertools.pairwise(ordered)):
        return False
    with path.open("rb") as handle:
        if handle.read(len(header)) != header:
            return False
        handle.seek(0, 2)
        size = handle.tell()
        handle.seek(max(0, size - 65536))
        tail = handle.read()
    marker = tail.rfind(b"<!-- ")
    if marker < 0:
        return ordered[0]["parent_id"] is None
    last = tail[marker + 5 :].split(b" ", 1)[0].decode("utf-8", "replace")
    return bool(ordered[0]["parent_id"] == last)


def _active_branch(conn: sqlite3.Connection, conversation: dict[str, Any]) -> list[dict[str, Any]]:
    cursor = conn.execute(
        "SELECT * FROM main.messages WHERE conversation_id = ?", (conversation["id"],)
    )
    columns = [d[0] for d in cursor.description]
    by_id = {row[1]: dict(zip(columns, row, strict=True)) for row in cursor}
    branch: list[dict[str, Any]] = []
    current = conversation["active_leaf_id"]
    while current is not None and current in by_id and len(branch) <= len(by_id):
        branch.append(by_id[current])
        current = by_id[current]["parent_id"]
    branch.reverse()
    return branch


# -- rebuilding the index from the files ----------------------------------------------------
@dataclass
class RebuildReport:
    rows: dict[str, int] = field(default_factory=dict)
    set_aside: list[str] = field(default_factory=list)  # torn last lines moved aside
    torn: list[str] = field(default_factory=list)  # torn last lines left (not repairing)
    set_aside_before: list[str] = field(default_factory=list)  # logs with a .torn beside
    damaged: list[str] = field(default_factory=list)  # bad lines skipped
    mismatched: list[str] = field(default_factory=list)  # content that fails its hash


def rebuild_index(layout: fl.Layout, conn: sqlite3.Connection) -> RebuildReport:
    """Under the write lock, inside a transaction: empty the index's data tables and
    fill them again from the files (the search index follows through its triggers)."""
    report = RebuildReport()
    conn.execute("PRAGMA defer_foreign_keys = ON")
    _empty_data_tables(conn)
    for table, rows in _rows_from_files(layout, report):
        order = _INSERT_ORDER[table]
        batch = [tuple(row[c] for c in order) for row in rows]
        if batch:
            conn.executemany(_INSERT_SQL[table], batch)
            report.rows[table] = report.rows.get(table, 0) + len(batch)
    journal = _Journal.load(layout)
    _set_index_txn(conn, journal.txn if journal is not None else 0)
    _write_derived(layout, conn)
    return report


def _write_derived(layout: fl.Layout, conn: sqlite3.Connection) -> None:
    """Every derived file made anew (after a rebuild, under the write lock)."""
    for user in _user_ids(layout):
        fsutil.atomic_write(layout.session_index(user), session_index(layout, conn, user))
    for (conversation_id,) in conn.execute(
        "SELECT primary_conversation_id FROM main.runtimes WHERE primary_conversation_id "
        "IS NOT NULL ORDER BY user_id, id"
    ).fetchall():
        home = _home_of(conn, conversation_id)
        if home is not None:
            path, data, _appended = render_chatty(layout, conn, home, [])
            fsutil.ensure_dir(path.parent)
            fsutil.atomic_write(path, data)


def _empty_data_tables(conn: sqlite3.Connection) -> None:
    """Delete every data row with the index's own triggers set aside: their deletes from
    the search index would fail on an index that is itself damaged or empty, and it is
    emptied wholesale instead. The triggers are put back as they were."""
    triggers = conn.execute(
        "SELECT name, sql FROM main.sqlite_master WHERE type = 'trigger' AND sql IS NOT NULL"
    ).fetchall()
    for name, _sql in triggers:
        conn.execute(_drop_trigger_sql(name))
    for table in reversed(list(fl.TABLES)):
        conn.execute(_DELETE_SQL[table])
    conn.execute("INSERT INTO main.messages_fts (messages_fts) VALUES ('delete-all')")
    conn.execute("DELETE FROM main.conversations_fts")
    for _name, sql in triggers:
        conn.execute(sql)


def _drop_trigger_sql(name: str) -> str:
    # The name comes from the database's own catalogue, quoted as an identifier.
    return 'DROP TRIGGER main."' + name.replace('"', '""') + '"'


def _rebuild_trusting_files(layout: fl.Layout, conn: sqlite3.Connection) -> RebuildReport:
    """The index is new, or does not match the journal: the files are the truth, so
    the journal's last transaction counts as done."""
    journal = _Journal.load(layout)
    if journal is not None:
        journal.clean()
    return rebuild_index(layout, conn)


_DELETE_SQL = {name: "DELETE FROM main." + name for name in fl.TABLES}  # noqa: S608


def _user_ids(layout: fl.Layout) -> list[str]:
    if not layout.users.is_dir():
        return []
    return sorted(p.parent.name for p in layout.users.glob("shard_*/*/profile.json"))


def _rows_from_files(
    layout: fl.Layout, report: RebuildReport, *, repair: bool = True
) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    for user in _user_ids(layout):
        user_dir = layout.user_dir(user)
        yield "users", [_json_row(user_dir / "profile.json", "users")]
        for area in ("instances", "imports"):
            yield (
                "runtimes",
                [_json_row(p, "runtimes") for p in sorted(user_dir.glob(f"{area}/*/runtime.json"))],
            )
            for meta in sorted(user_dir.glob(f"{area}/*/sessions/*/session_meta.json")):
                log = meta.with_name("messages.jsonl")
                read = _read_log(layout, log, report, repair)
                yield "conversations", [_conversation_row(meta, read.records)]
                yield "messages", _live_rows(layout, log, "messages", read, report)
        for name in fl.LOGGED_TABLES:
            log = user_dir / "tables" / f"{name}.jsonl"
            yield name, _log_rows(layout, log, name, report, repair)


def _conversation_row(meta: Path, records: list[tuple[dict[str, Any], bytes]]) -> dict[str, Any]:
    """``session_meta.json``, or the newer row its ``messages.jsonl`` holds."""
    row, txn = _json_document(meta, "conversations")
    tagged = fl.latest_tagged("conversations", records)
    if tagged is not None and tagged[1] > txn:
        return fl.row_from_json("conversations", tagged[0])
    return row


def _only_volatile_changed(meta: Path, row: dict[str, Any]) -> bool:
    """Whether ``row`` differs from the conversation's current record only in the
    counters every append changes (then a line in its log records it)."""
    try:
        document = orjson.loads(meta.read_bytes())
    except FileNotFoundError:
        return False
    kept = document.get("row") if isinstance(document, dict) else None
    if not isinstance(kept, dict):
        return False
    new = fl.row_to_json("conversations", row)
    return all(
        kept.get(name) == value
        for name, value in new.items()
        if name not in fl.VOLATILE_CONVERSATION
    )


def _json_row(path: Path, table: str) -> dict[str, Any]:
    return _json_document(path, table)[0]


def _json_document(path: Path, table: str) -> tuple[dict[str, Any], int]:
    try:
        document = orjson.loads(path.read_bytes())
        return fl.row_from_json(table, document["row"]), int(document.get("txn", 0))
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise StorageError(
            f"{path} is damaged: {exc}", hint="restore it from a backup, then open the vault"
        ) from exc


def _log_rows(
    layout: fl.Layout, path: Path, table: str, report: RebuildReport, repair: bool = True
) -> list[dict[str, Any]]:
    return _live_rows(layout, path, table, _read_log(layout, path, report, repair), report)


def _read_log(layout: fl.Layout, path: Path, report: RebuildReport, repair: bool) -> fl.LogRead:
    read = fl.read_log(path)
    where = layout.relative(path)
    if read.torn and repair:
        set_aside(path, read.good_size, read.torn)
        report.set_aside.append(where)
    elif read.torn:
        report.torn.append(where)
    if path.with_name(path.name + ".torn").exists():
        report.set_aside_before.append(where)
    report.damaged.extend(f"{where}:{n}" for n in read.damaged)
    return read


def _live_rows(
    layout: fl.Layout, path: Path, table: str, read: fl.LogRead, report: RebuildReport
) -> list[dict[str, Any]]:
    where = layout.relative(path)
    rows = []
    for value, _line in fl.fold(table, read.records).values():
        row = fl.row_from_json(table, value)
        if table == "messages" and not _content_matches(row):
            report.mismatched.append(f"{where}: message {row['id']}")
        rows.append(row)
    return rows


def _content_matches(row: dict[str, Any]) -> bool:
    return bool(hashlib.sha256(row["content"].encode("utf-8")).hexdigest() == row["content_sha256"])


# -- the store ---------------------------------------------------------------------------
class FileStore(SqlStore):
    """The :class:`~chatkeep.store.Store` contract with plain files as the record."""

    def __init__(self, layout: fl.Layout, engine: Engine, blobs: BlobStore) -> None:
        self.layout = layout
        writer = FileWriter(layout)
        event.listen(engine, "connect", lambda dbapi, _record: writer.on_connect(dbapi))
        super().__init__(
            engine,
            blobs,
            write_options=WRITE_OPTIONS,
            raw_write=AppendConnections(layout.index, writer),
            translate=translate_error,
            dialect_checks=integrity_problems,
            search=SqliteSearch(),
            compact=self._compact_all,
            hooks=writer,
        )

    def rebuild_from_files(self) -> RebuildReport:
        """Drop the index's content and read it all again from the files."""
        with _locked(self.layout.index) as conn:
            if settle(self.layout, conn):
                return rebuild_index(self.layout, conn)
            return _rebuild_trusting_files(self.layout, conn)

    def rebuild_search_index(self) -> int:
        report = self.rebuild_from_files()
        return report.rows.get("messages", 0)

    def _compact_all(self) -> None:
        """Logs written anew with only their live rows, then the index compacted."""
        with _locked(self.layout.index) as conn:
            if not settle(self.layout, conn):
                raise StorageError("the files and the index disagree; reopen the vault first")
            for path, table in _all_logs(self.layout):
                fsutil.atomic_write(path, fl.live_lines(table, fl.read_log(path).records))
        compact(self.layout.index)

    def check(self) -> list[Problem]:
        return super().check() + self._file_problems()

    def _file_problems(self) -> list[Problem]:
        """Every log read once: its damaged or unfinished lines, and whether the index
        holds exactly what the files hold (per table, the number of rows and an
        order-free sum of their hashes, from both sides)."""
        from_files: dict[str, tuple[int, int]] = {}
        report = RebuildReport()
        for table, rows in _rows_from_files(self.layout, report, repair=False):
            count, total = from_files.get(table, (0, 0))
            more, added = _rows_hash(rows)
            from_files[table] = (count + more, (total + added) % _MODULUS)
        problems = _log_problems(report)
        for table in fl.TABLES:
            indexed = _rows_hash(self.dump_table(table))
            if from_files.get(table, (0, 0)) != indexed:
                problems.append(
                    Problem(
                        "files",
                        f"the index holds {indexed[0]} rows of {table}, the files "
                        f"{from_files.get(table, (0, 0))[0]} (or other values)",
                        subject=table,
                    )
                )
        if any(p.subject in fl.TABLES for p in problems):
            problems.append(
                Problem(
                    "files",
                    "the index does not match the files: 'chatkeep doctor --rebuild' "
                    "rebuilds it from them",
                    severity="warning",
                )
            )
        return problems


_MODULUS = 1 << 256


def _rows_hash(rows: Iterable[dict[str, Any]]) -> tuple[int, int]:
    """How many rows, and a sum of their sha256 (mod 2**256): the same for the same rows
    in any order."""
    count = total = 0
    for row in rows:
        plain = {k: (v.hex() if isinstance(v, bytes) else v) for k, v in row.items()}
        total += int.from_bytes(hashlib.sha256(canonical_json(plain)).digest(), "big")
        count += 1
    return count, total % _MODULUS


def _log_problems(report: RebuildReport) -> list[Problem]:
    problems = [Problem("files", f"{where}: its last line is unfinished") for where in report.torn]
    problems += [
        Problem(
            "files",
            f"{where}.torn holds an unfinished line set aside after a crash; "
            "look at it, then delete it",
            severity="warning",
        )
        for where in report.set_aside_before
    ]
    problems += [
        Problem("files", f"{where}: the line fails its checksum") for where in report.damaged
    ]
    problems += [
        Problem("files", f"{where}: the content does not match its sha256")
        for where in report.mismatched
    ]
    return problems


def _all_logs(layout: fl.Layout) -> Iterator[tuple[Path, str]]:
    for user in _user_ids(layout):
        user_dir = layout.user_dir(user)
        for log in sorted(user_dir.glob("*/*/sessions/*/messages.jsonl")):
            yield log, "messages"
        for name in fl.LOGGED_TABLES:
            path = user_dir / "tables" / f"{name}.jsonl"
            if path.exists():
                yield path, name


def open_files_store(paths: VaultPaths) -> FileStore:
    """The file backend of a vault: settle or rebuild the index, then serve."""
    layout = fl.Layout(paths.root)
    fsutil.ensure_dir(layout.index.parent)
    fsutil.ensure_dir(layout.state)
    try:
        engine = create_sqlite_engine(layout.index)
        migrate(engine, SQLITE_MIGRATIONS, write_options=WRITE_OPTIONS)
    except sqlite3.DatabaseError as exc:
        raise translate_error(exc) from exc
    except DBAPIError as exc:
        raise translate_error(exc.orig or exc) from exc
    engine.dispose()
    with _locked(layout.index) as conn:
        conn.execute(_STATE_DDL)
        if not settle(layout, conn):
            _rebuild_trusting_files(layout, conn)
    return FileStore(layout, engine, BlobStore(paths.blobs))
