"""Where the file backend keeps each row, and how a log line is written and checked.

Layout under the vault root (DESIGN.md, "File backend")::

    users/shard_NNNN/<user>/profile.json                        the user
    users/shard_NNNN/<user>/session_index.json                  derived: their conversations
    users/shard_NNNN/<user>/tables/<table>.jsonl                their other rows (pins, ...)
    users/shard_NNNN/<user>/instances/<runtime>/runtime.json    a native runtime
        .../instances/<runtime>/sessions/<conversation>/session_meta.json
        .../instances/<runtime>/sessions/<conversation>/messages.jsonl
        .../instances/<runtime>/chatty/chat_with_<runtime>.md   derived: its home conversation
    users/shard_NNNN/<user>/imports/<runtime>/...               the same, for imported data
    blobs/<aa>/<sha256>                                         attachments
    files/journal.jsonl                                         the writes' records
    index/chatkeep-index.db                                     the derived SQLite index

Imported conversations live under ``imports/<runtime>/``, named after the account's
runtime rather than after one import: a later export of the same account adds to the
same conversations, and their folder must not move.

A log line is ``{"rec": <record>, "crc": "<crc32 of the record's bytes>"}``: the record
is kept byte for byte between the fixed prefix and the fixed-length suffix, so checking
a line needs no second encoding. A line that does not end in a newline or whose
checksum fails is torn (a crash mid-append) or damaged.
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import orjson

from chatkeep.backends import schema as t
from chatkeep.ids import check_id, check_name

FORMAT: Final = "chatkeep-files/1"
INDEX_DIR: Final = "index"
INDEX_FILE: Final = "chatkeep-index.db"
STATE_DIR: Final = "files"
SHARDS: Final = 256

#: Rows kept in a per-user log under ``tables/`` (the rest have files of their own).
LOGGED_TABLES: Final = tuple(
    str(table.name)
    for table in t.DATA_TABLES
    if table.name not in ("users", "runtimes", "conversations", "messages")
)
TABLES: Final = {str(table.name): table for table in t.DATA_TABLES}
KEYS: Final = {
    name: tuple(str(c.name) for c in table.primary_key.columns) for name, table in TABLES.items()
}
#: Columns stored as bytes, written as base64 text.
BINARY: Final = {
    name: frozenset(str(c.name) for c in table.columns if c.type.python_type is bytes)
    for name, table in TABLES.items()
}

#: A conversation's columns that change with every message appended. When only these
#: change, the new row is appended to ``messages.jsonl`` (tagged with its table) rather
#: than ``session_meta.json`` written anew: one fsync instead of three.
VOLATILE_CONVERSATION: Final = frozenset(
    {"message_count", "total_tokens", "total_cost", "active_leaf_id", "updated_at"}
)

_PREFIX: Final = b'{"rec":'
_SUFFIX_LENGTH: Final = len(b',"crc":"00000000"}')


def shard(user_id: str) -> str:
    """The shard folder of a user: stable, spreading users over :data:`SHARDS` folders."""
    digest = hashlib.sha256(user_id.encode("utf-8")).digest()
    return f"shard_{int.from_bytes(digest[:2], 'big') % SHARDS:04d}"


def _area(origin: str) -> str:
    return "instances" if origin == "native" else "imports"


@dataclass(frozen=True, slots=True)
class Layout:
    """Paths of the file backend under one vault root. Every id is checked before it
    becomes part of a path."""

    root: Path

    @property
    def users(self) -> Path:
        return self.root / "users"

    @property
    def state(self) -> Path:
        return self.root / STATE_DIR

    @property
    def journal(self) -> Path:
        return self.state / "journal.jsonl"

    @property
    def trash(self) -> Path:
        return self.state / "trash"

    @property
    def index(self) -> Path:
        return self.root / INDEX_DIR / INDEX_FILE

    def user_dir(self, user_id: str) -> Path:
        check_name("user", user_id)
        return self.users / shard(user_id) / user_id

    def profile(self, user_id: str) -> Path:
        return self.user_dir(user_id) / "profile.json"

    def session_index(self, user_id: str) -> Path:
        return self.user_dir(user_id) / "session_index.json"

    def table_log(self, user_id: str, table: str) -> Path:
        if table not in LOGGED_TABLES:
            raise ValueError(f"{table} has no per-user log")
        return self.user_dir(user_id) / "tables" / f"{table}.jsonl"

    def runtime_dir(self, user_id: str, runtime_id: str, origin: str) -> Path:
        check_name("runtime", runtime_id)
        return self.user_dir(user_id) / _area(origin) / runtime_id

    def conversation_dir(
        self, user_id: str, runtime_id: str, origin: str, conversation_id: str
    ) -> Path:
        check_id("conversation", conversation_id)
        return self.runtime_dir(user_id, runtime_id, origin) / "sessions" / conversation_id

    def chatty(self, user_id: str, runtime_id: str, origin: str) -> Path:
        return (
            self.runtime_dir(user_id, runtime_id, origin) / "chatty" / f"chat_with_{runtime_id}.md"
        )

    def relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def absolute(self, relative: str) -> Path:
        path = self.root / relative
        if ".." in Path(relative).parts or Path(relative).is_absolute():
            raise ValueError(f"a journal path leaves the vault: {relative!r}")
        return path


# -- rows as JSON ---------------------------------------------------------------------
def row_to_json(table: str, row: dict[str, Any]) -> dict[str, Any]:
    """A row as JSON-ready values: bytes as base64, and a message's content (canonical
    JSON already) embedded as JSON rather than as a string, so people can read it."""
    out = dict(row)
    for name in BINARY[table]:
        if out.get(name) is not None:
            out[name] = base64.b64encode(out[name]).decode("ascii")
    if table == "messages":
        out["content"] = orjson.Fragment(out["content"])
    return out


def row_from_json(table: str, value: dict[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`row_to_json`, with the table's columns and nothing else."""
    row = {str(c.name): value.get(str(c.name)) for c in TABLES[table].columns}
    for name in BINARY[table]:
        encoded = row.get(name)
        if encoded is not None:
            row[name] = base64.b64decode(encoded)
    if table == "messages":
        row["content"] = orjson.dumps(row["content"], option=orjson.OPT_SORT_KEYS).decode()
    return row


def key_of(table: str, row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[name] for name in KEYS[table])


# -- log lines --------------------------------------------------------------------------
def log_line(record: dict[str, Any]) -> bytes:
    body = orjson.dumps(record)
    return b'%s%s,"crc":"%08x"}\n' % (_PREFIX, body, zlib.crc32(body))


def put_line(table: str, txn: int, row: dict[str, Any], *, tagged: bool = False) -> bytes:
    """A put of ``row``; ``tagged`` names its table (a row kept in another table's log)."""
    record: dict[str, Any] = {"op": "put", "txn": txn, "row": row_to_json(table, row)}
    if tagged:
        record["table"] = table
    return log_line(record)


def del_line(table: str, txn: int, key: dict[str, Any]) -> bytes:
    return log_line({"op": "del", "txn": txn, "key": key})


def parse_line(line: bytes) -> dict[str, Any] | None:
    """The record of a complete line (newline included), or None if it is damaged."""
    if not line.endswith(b"\n") or not line.startswith(_PREFIX):
        return None
    body = line[len(_PREFIX) : -1 - _SUFFIX_LENGTH]
    suffix = line[-1 - _SUFFIX_LENGTH : -1]
    if suffix != b',"crc":"%08x"}' % zlib.crc32(body):
        return None
    try:
        record = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None


@dataclass(slots=True)
class LogRead:
    """A log's records, and what had to be left out."""

    records: list[tuple[dict[str, Any], bytes]]
    good_size: int  # bytes up to the end of the last good line
    torn: bytes  # an unfinished last line (a crash mid-append)
    damaged: list[int]  # line numbers (1-based) of bad lines before the end


def read_log(path: Path) -> LogRead:
    data = path.read_bytes() if path.exists() else b""
    records: list[tuple[dict[str, Any], bytes]] = []
    damaged: list[int] = []
    offset = good_size = 0
    number = 0
    for line in _lines(data):
        number += 1
        offset += len(line)
        record = parse_line(line)
        if record is None:
            if offset == len(data):  # the last line: torn by a crash
                return LogRead(records, good_size, line, damaged)
            damaged.append(number)
            continue
        records.append((record, line))
        good_size = offset
    return LogRead(records, good_size, b"", damaged)


def _lines(data: bytes) -> Iterator[bytes]:
    start = 0
    while start < len(data):
        end = data.find(b"\n", start)
        stop = len(data) if end < 0 else end + 1
        yield data[start:stop]
        start = stop


def fold(table: str, records: list[tuple[dict[str, Any], bytes]]) -> dict[tuple[Any, ...], Any]:
    """The live rows of a log (puts, less the later deletes), keyed, with their line:
    ``{key: (row as JSON, line)}`` in the order rows first appeared."""
    live: dict[tuple[Any, ...], Any] = {}
    names = KEYS[table]
    for record, line in records:
        if record.get("table", table) != table:
            continue  # a tagged row of another table (see VOLATILE_CONVERSATION)
        if record.get("op") == "put" and isinstance(record.get("row"), dict):
            row = record["row"]
            live[tuple(row.get(n) for n in names)] = (row, line)
        elif record.get("op") == "del" and isinstance(record.get("key"), dict):
            live.pop(tuple(record["key"].get(n) for n in names), None)
    return live


def latest_tagged(
    table: str, records: list[tuple[dict[str, Any], bytes]]
) -> tuple[dict[str, Any], int, bytes] | None:
    """The last put tagged with ``table`` in a log: (row as JSON, txn, line)."""
    for record, line in reversed(records):
        if record.get("table") == table and isinstance(record.get("row"), dict):
            return record["row"], int(record.get("txn", 0)), line
    return None


def live_lines(
    table: str,
    records: list[tuple[dict[str, Any], bytes]],
    *,
    without: Collection[tuple[Any, ...]] = (),
) -> list[bytes]:
    """What a compacted log keeps: its live rows (less the keys ``without``), then the
    last tagged conversation row."""
    lines = [line for key, (_row, line) in fold(table, records).items() if key not in without]
    tagged = latest_tagged("conversations", records) if table == "messages" else None
    if tagged is not None:
        lines.append(tagged[2])
    return lines


def json_file(txn: int, row: dict[str, Any], table: str) -> bytes:
    return orjson.dumps(
        {"format": FORMAT, "txn": txn, "row": row_to_json(table, row)},
        option=orjson.OPT_INDENT_2,
    )
