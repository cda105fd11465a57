"""Append, sidebar and search on every backend, side by side, each beside its floor.

For each backend (SQLite in a temp vault; plain files in a temp vault; PostgreSQL in a
temp schema of the server at ``CHATKEEP_BENCH_POSTGRES_URL``, default
``postgresql://postgres@127.0.0.1:5432/test``):

* **append**: ``store.append_message`` to a conversation already holding ``--history``
  messages, against the floor of the same backend: the bare driver's ``INSERT`` of a row
  of the same shape into the same ``messages`` table plus ``COMMIT`` (stdlib ``sqlite3``
  with the vault's pragmas; ``psycopg`` with the server's durable commit), or for files
  one JSON line of the same shape appended to a log and fsynced. Samples are
  interleaved.
* **sidebar**: the first page (50) of a runtime with ``--conversations`` conversations.
* **search**: a one-word full-text query over the appended history (limit 20).

Medians are the headline; the ratio is chatkeep's p50 over the floor's, same run.

Run: ``.venv/bin/python bench/backends.py [--quick] [--json]``
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import chatkeep
from _common import emit, progress, summarise, summary_dict
from chatkeep.backends.sqlite import register_functions

USER = "bench"
RUNTIME = "bench"
TEXT = "How do I keep a conversation log durable without slowing down every turn?"
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


@contextmanager
def postgres_schema(base: str) -> Iterator[str]:
    import psycopg

    schema = f"ck_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        separator = "&" if "?" in base else "?"
        yield f"{base}{separator}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def _fill(store: chatkeep.Store, history: int, conversations: int) -> str:
    store.add_user(USER)
    store.create_runtime(USER, RUNTIME)
    target = store.create_conversation(USER, RUNTIME, title="target").id
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]
    for start in range(0, history, 5_000):
        batch = [
            chatkeep.user_message(f"{TEXT} {words[n % len(words)]} {n}")
            for n in range(start, min(history, start + 5_000))
        ]
        store.append_messages(USER, target, batch)
    for n in range(conversations):
        store.create_conversation(USER, RUNTIME, title=f"conversation {n}")
    return target


class BareInsert:
    """The floor: one row of the same shape into the same table, then COMMIT."""

    def __init__(self, kind: str, target: str, where: Any) -> None:
        self.kind, self.target, self.seq = kind, target, 10**9
        if kind == "files":
            self.log = Path(where) / "bare-messages.jsonl"
            self.fd = os.open(self.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            return
        if kind == "sqlite":
            self.db = sqlite3.connect(where, isolation_level=None)
            register_functions(self.db)  # the schema's search triggers call them
            self.db.execute("PRAGMA synchronous = FULL")
            self.mark = "?"
        else:
            import psycopg

            self.db = psycopg.connect(where.replace("postgresql+psycopg", "postgresql"))
            self.mark = "%s"
        self.sql = (
            "INSERT INTO messages (id, user_id, conversation_id, parent_id, seq, role, content,"
            " content_sha256, created_at, metadata, hidden) VALUES ("
            + ", ".join([self.mark] * 11)
            + ")"
        )

    def row(self) -> tuple[Any, ...]:
        self.seq += 1
        content = json.dumps([{"kind": "text", "text": TEXT}], separators=(",", ":"))
        now = datetime.now(UTC).isoformat()
        return (
            f"m_bare{self.seq}",
            USER,
            self.target,
            None,
            self.seq,
            "user",
            content,
            hashlib.sha256(content.encode()).hexdigest(),
            now,
            "{}",
            0,
        )

    def insert_one(self) -> int:
        row = self.row()
        if self.kind == "files":
            line = json.dumps(row, separators=(",", ":")).encode() + b"\n"
            start = time.perf_counter_ns()
            os.write(self.fd, line)
            os.fsync(self.fd)
            return time.perf_counter_ns() - start
        start = time.perf_counter_ns()
        if self.kind == "sqlite":
            self.db.execute("BEGIN")
            self.db.execute(self.sql, row)
            self.db.execute("COMMIT")
        else:
            with self.db.cursor() as cursor:
                cursor.execute(self.sql, row)
            self.db.commit()
        return time.perf_counter_ns() - start

    def close(self) -> None:
        if self.kind == "files":
            os.close(self.fd)
            self.log.unlink()
            return
        self.db.close()


def _timed(call: Callable[[], Any]) -> int:
    start = time.perf_counter_ns()
    call()
    return time.perf_counter_ns() - start


def measure_backend(name: str, vault: chatkeep.Vault, bare_where: Any, args: Any) -> dict[str, Any]:
    store = vault.store
    progress(f"{name}: filling {args.history:,} messages, {args.conversations:,} conversations")
    target = _fill(store, args.history, args.conversations)
    bare = BareInsert(name, target, bare_where)
    ours: list[int] = []
    floor: list[int] = []
    message = chatkeep.user_message(TEXT)
    progress(f"{name}: append")
    for n in range(args.samples + 20):
        pair = [
            lambda: ours.append(_timed(lambda: store.append_message(USER, target, message))),
            lambda: floor.append(bare.insert_one()),
        ]
        if n % 2:
            pair.reverse()
        for run in pair:
            run()
    bare.close()
    del ours[:20], floor[:20]
    progress(f"{name}: sidebar and search")
    sidebar = [
        _timed(lambda: store.list_conversations(USER, runtime_id=RUNTIME, limit=50))
        for _ in range(args.samples)
    ]
    search = [_timed(lambda: store.search(USER, "foxtrot", limit=20)) for _ in range(args.samples)]
    append, base = summarise(ours), summarise(floor)
    return {
        "append": summary_dict(append),
        "append_floor": summary_dict(base),
        "append_ratio": round(append.p50_ms / base.p50_ms, 3),
        "sidebar": summary_dict(summarise(sidebar)),
        "search": summary_dict(summarise(search)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a fast smoke run")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    args.history = 2_000 if args.quick else 20_000
    args.conversations = 500 if args.quick else 2_000
    args.samples = 50 if args.quick else 300
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="chatkeep-bench-") as scratch:
        with chatkeep.open(home=Path(scratch) / "sqlite", create=True, url="") as vault:
            results["sqlite"] = measure_backend("sqlite", vault, vault.paths.database, args)
        files_home = Path(scratch) / "files"
        with chatkeep.open(home=files_home, create=True, url="", backend="files") as vault:
            results["files"] = measure_backend("files", vault, vault.root, args)
        base = os.environ.get("CHATKEEP_BENCH_POSTGRES_URL", DEFAULT_POSTGRES)
        try:
            with (
                postgres_schema(base) as url,
                chatkeep.open(home=Path(scratch) / "pg", create=True, url=url) as vault,
            ):
                results["postgres"] = measure_backend("postgres", vault, url, args)
        except Exception as exc:  # no server: say so, keep the SQLite figures
            progress(f"postgres skipped: {exc}")
    lines = [
        f"history {args.history:,} messages, {args.conversations:,} conversations, "
        f"{args.samples} samples; p50 (p99) in ms",
        "",
        f"{'':<22}" + "".join(f"{name:>22}" for name in results),
    ]
    rows = [
        ("append", "append"),
        ("floor (bare write)", "append_floor"),
        ("sidebar (50 of many)", "sidebar"),
        ("search one word", "search"),
    ]
    for label, key in rows:
        cells = "".join(
            f"{r[key]['p50_ms']:>13.3f} ({r[key]['p99_ms']:>6.2f})" for r in results.values()
        )
        lines.append(f"{label:<22}{cells}")
    lines.append(
        f"{'append / bare':<22}" + "".join(f"{r['append_ratio']:>22.2f}" for r in results.values())
    )
    emit(lines, results, args.json)


if __name__ == "__main__":
    main()
