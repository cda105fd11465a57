"""Durable-append latency of chatkeep against bare SQLite, at growing history sizes.

Why: appending a message is the hot path of every chat turn, and it must stay durable
(fsynced) and flat as a conversation grows. The only honest yardstick is the floor the
database itself imposes, so each chatkeep sample is paired with a bare stdlib ``sqlite3``
``BEGIN; INSERT; COMMIT`` of the same row shape, on a database with the same schema, the
same pragmas and the same number of rows, measured in the same run and interleaved so
that noise from the shared machine hits both sides alike.

Run: ``.venv/bin/python bench/append_latency.py [--quick] [--samples N] [--json]``
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _common import (
    Summary,
    add_common_arguments,
    emit,
    progress,
    summarise,
    summary_dict,
    verdict,
)

import chatkeep

USER = "bench"
RUNTIME = "bench-runtime"
MESSAGE_TEXT = "How do I keep a conversation log durable without slowing down every turn?"
BATCH = 10_000  # the store's per-call limit: one transaction per batch
RATIO_TARGET = 1.5  # chatkeep p50 / bare p50 at every history size
FLATNESS_TARGET = 1.2  # chatkeep p50 at the largest size / p50 at size 0


@dataclass(frozen=True, slots=True)
class Config:
    sizes: tuple[int, ...]
    samples: int
    warmup: int


@dataclass(frozen=True, slots=True)
class SizeResult:
    history: int
    chatkeep: Summary
    bare: Summary

    @property
    def ratio(self) -> float:
        return self.chatkeep.p50_ms / self.bare.p50_ms


def parse_config() -> tuple[Config, bool]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser, default_samples=300)
    args = parser.parse_args()
    if args.quick:
        config = Config(sizes=(0, 1_000, 5_000), samples=args.samples or 50, warmup=10)
    else:
        config = Config(sizes=(0, 10_000, 100_000), samples=args.samples or 300, warmup=30)
    if config.samples < 1:
        parser.error("--samples must be at least 1")
    return config, args.json


class ChatkeepSide:
    """One conversation in its own vault, appended to through the public store API."""

    def __init__(self, home: Path) -> None:
        self.vault = chatkeep.open(home=home, create=True)
        self.store = self.vault.store
        self.store.add_user(USER)
        self.store.create_runtime(USER, RUNTIME)
        self.conversation = self.store.create_conversation(USER, RUNTIME, title="bench").id

    def count(self) -> int:
        return self.store.get_conversation(USER, self.conversation).message_count

    def grow_to(self, size: int) -> None:
        """Preload history in batches: one transaction (one fsync) per 10,000 messages."""
        missing = size - self.count()
        while missing > 0:
            batch = [chatkeep.user_message(MESSAGE_TEXT) for _ in range(min(missing, BATCH))]
            self.store.append_messages(USER, self.conversation, batch)
            missing -= len(batch)

    def append_one(self) -> int:
        message = chatkeep.user_message(MESSAGE_TEXT)
        start = time.perf_counter_ns()
        self.store.append_message(USER, self.conversation, message)
        return time.perf_counter_ns() - start

    def close(self) -> None:
        self.vault.close()


class BareSide:
    """The floor: stdlib sqlite3 writing the same row shape into an identical schema.

    The schema comes from a separate chatkeep vault, so it cannot drift from the real
    one; the rows satisfy its constraints (existing user and conversation, unique id
    and seq, parent = previous row, like chatkeep's single active branch).
    """

    INSERT = (
        "INSERT INTO messages (id, user_id, conversation_id, parent_id, seq, role, author,"
        " content, content_sha256, created_at, model, tokens, cost, metadata, hidden)"
        " VALUES (?, ?, ?, ?, ?, 'user', NULL, ?, ?, ?, NULL, NULL, NULL, '{}', 0)"
    )

    def __init__(self, home: Path) -> None:
        with chatkeep.open(home=home, create=True) as vault:
            vault.store.add_user(USER)
            vault.store.create_runtime(USER, RUNTIME)
            self.conversation = vault.store.create_conversation(USER, RUNTIME).id
            database = vault.paths.database
        self.db = sqlite3.connect(database, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.content = json.dumps(
            [{"kind": "text", "text": MESSAGE_TEXT}], separators=(",", ":"), sort_keys=True
        )
        self.content_sha256 = hashlib.sha256(self.content.encode()).hexdigest()
        self.next_seq = 0

    def _row(self) -> tuple[Any, ...]:
        seq = self.next_seq
        self.next_seq += 1
        parent = f"m_{seq - 1:026d}" if seq else None
        created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return (f"m_{seq:026d}", USER, self.conversation, parent, seq) + (
            self.content,
            self.content_sha256,
            created,
        )

    def grow_to(self, size: int) -> None:
        while self.next_seq < size:
            rows = [self._row() for _ in range(min(size - self.next_seq, BATCH))]
            self.db.execute("BEGIN")
            self.db.executemany(self.INSERT, rows)
            self.db.execute("COMMIT")

    def insert_one(self) -> int:
        row = self._row()
        start = time.perf_counter_ns()
        self.db.execute("BEGIN")
        self.db.execute(self.INSERT, row)
        self.db.execute("COMMIT")
        return time.perf_counter_ns() - start

    def close(self) -> None:
        self.db.close()


def measure(ck: ChatkeepSide, bare: BareSide, config: Config) -> tuple[list[int], list[int]]:
    """Alternate which side goes first, so neither always inherits the other's I/O."""
    ck_ns: list[int] = []
    bare_ns: list[int] = []
    gc.collect()
    for i in range(config.warmup + config.samples):
        if i % 2:
            pair = (ck.append_one(), bare.insert_one())
        else:
            bare_first = bare.insert_one()
            pair = (ck.append_one(), bare_first)
        if i >= config.warmup:
            ck_ns.append(pair[0])
            bare_ns.append(pair[1])
    return ck_ns, bare_ns


def run_size(ck: ChatkeepSide, bare: BareSide, size: int, config: Config) -> SizeResult:
    started = time.perf_counter()
    ck.grow_to(size)
    ck_grown = time.perf_counter()
    bare.grow_to(ck.count())
    progress(
        f"history {size:,}: preloaded chatkeep in {ck_grown - started:.1f} s, "
        f"bare in {time.perf_counter() - ck_grown:.1f} s; sampling ..."
    )
    history = ck.count()
    ck_ns, bare_ns = measure(ck, bare, config)
    return SizeResult(history=history, chatkeep=summarise(ck_ns), bare=summarise(bare_ns))


def report(results: list[SizeResult], config: Config) -> tuple[list[str], dict[str, Any]]:
    lines = [
        "chatkeep durable append vs bare sqlite3 (WAL, synchronous=FULL); "
        f"{config.samples} samples per size per side, interleaved",
        f"{'history':>9}  {'ck p50':>8}  {'ck p99':>8}  {'bare p50':>8}  {'bare p99':>8}"
        f"  {'p50 ratio':>9}  target <= {RATIO_TARGET}",
    ]
    sizes = []
    for r in results:
        passed = r.ratio <= RATIO_TARGET
        lines.append(
            f"{r.history:>9,}  {r.chatkeep.p50_ms:>8.3f}  {r.chatkeep.p99_ms:>8.3f}"
            f"  {r.bare.p50_ms:>8.3f}  {r.bare.p99_ms:>8.3f}  {r.ratio:>9.2f}  {verdict(passed)}"
        )
        sizes.append(
            {
                "history": r.history,
                "chatkeep": summary_dict(r.chatkeep),
                "bare": summary_dict(r.bare),
                "ratio_p50": round(r.ratio, 3),
                "ratio_pass": passed,
            }
        )
    first, last = results[0], results[-1]
    flatness = last.chatkeep.p50_ms / first.chatkeep.p50_ms
    flat_pass = flatness <= FLATNESS_TARGET
    lines.append("(times in ms)")
    lines.append(
        f"flatness: chatkeep p50@{last.history:,} / p50@{first.history:,} = {flatness:.2f}"
        f"  target <= {FLATNESS_TARGET}  {verdict(flat_pass)}"
    )
    figures = {
        "benchmark": "append_latency",
        "unit": "ms",
        "samples_per_side": config.samples,
        "targets": {"ratio_p50": RATIO_TARGET, "flatness": FLATNESS_TARGET},
        "sizes": sizes,
        "flatness": {
            "from_history": first.history,
            "to_history": last.history,
            "ratio": round(flatness, 3),
            "pass": flat_pass,
        },
    }
    return lines, figures


def main() -> None:
    config, as_json = parse_config()
    with tempfile.TemporaryDirectory(prefix="chatkeep-bench-") as tmp:
        ck = ChatkeepSide(Path(tmp) / "chatkeep")
        bare = BareSide(Path(tmp) / "bare")
        try:
            results = [run_size(ck, bare, size, config) for size in config.sizes]
        finally:
            ck.close()
            bare.close()
    lines, figures = report(results, config)
    emit(lines, figures, as_json)


if __name__ == "__main__":
    main()
