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

import chatkeep
from _common import (
    Summary,
    add_common_arguments,
    emit,
    progress,
    sample_count,
    summarise,
    summary_dict,
    verdict,
)
from chatkeep.backends.sqlite import register_functions

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
    warmup: int  # interleaved pairs before each size's samples, not recorded
    wal_commits: int = 1_000  # commits to wrap the WAL before the first size


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
        sizes, samples, warmup = (0, 1_000, 5_000), sample_count(args.samples, 50), 10
    else:
        sizes, samples, warmup = (0, 10_000, 100_000), sample_count(args.samples, 300), 30
    config = Config(sizes=sizes, samples=samples, warmup=warmup)
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
        self.side_conversation = self.store.route(USER, RUNTIME).id

    def warm_wal(self, commits: int) -> None:
        """Cycle the WAL through checkpoints, writing to another conversation.

        A fresh WAL file grows with every commit, and a commit that grows a file costs a
        journalled metadata update on top of its fsync; once the WAL has wrapped, commits
        overwrite it in place. Without this, history 0 would be measured on a growing
        WAL and look slower than it is, hiding a real slope in the flatness ratio.
        """
        for _ in range(commits):
            self.store.append_message(USER, self.side_conversation, chatkeep.user_message("w"))

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
            self.side_conversation = vault.store.route(USER, RUNTIME).id
            database = vault.paths.database
        self.db = sqlite3.connect(database, isolation_level=None)
        register_functions(self.db)  # the schema's search triggers call them
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.content = json.dumps(
            [{"kind": "text", "text": MESSAGE_TEXT}], separators=(",", ":"), sort_keys=True
        )
        self.content_sha256 = hashlib.sha256(self.content.encode()).hexdigest()
        self.next_seq = {self.conversation: 0, self.side_conversation: 0}

    def _row(self, conversation: str) -> tuple[Any, ...]:
        """The next row of ``conversation``: ids are unique and rise like chatkeep's."""
        seq = self.next_seq[conversation]
        self.next_seq[conversation] = seq + 1
        tag = "0" if conversation == self.conversation else "W"
        parent = f"m_{tag}{seq - 1:025d}" if seq else None
        created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        message_id = f"m_{tag}{seq:025d}"
        content = (self.content, self.content_sha256)
        return (message_id, USER, conversation, parent, seq, *content, created)

    def count(self) -> int:
        return self.next_seq[self.conversation]

    def warm_wal(self, commits: int) -> None:
        """As :meth:`ChatkeepSide.warm_wal`: both sides start from a wrapped WAL."""
        for _ in range(commits):
            self._commit([self._row(self.side_conversation)])

    def _commit(self, rows: list[tuple[Any, ...]]) -> None:
        self.db.execute("BEGIN")
        self.db.executemany(self.INSERT, rows)
        self.db.execute("COMMIT")

    def grow_to(self, size: int) -> None:
        while self.count() < size:
            self._commit(
                [self._row(self.conversation) for _ in range(min(size - self.count(), BATCH))]
            )

    def insert_one(self) -> int:
        row = self._row(self.conversation)
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
            ck_sample = ck.append_one()
            bare_sample = bare.insert_one()
        else:
            bare_sample = bare.insert_one()
            ck_sample = ck.append_one()
        if i >= config.warmup:
            ck_ns.append(ck_sample)
            bare_ns.append(bare_sample)
    return ck_ns, bare_ns


def run_size(ck: ChatkeepSide, bare: BareSide, size: int, config: Config) -> SizeResult:
    started = time.perf_counter()
    ck.grow_to(size)
    ck_grown = time.perf_counter()
    bare.grow_to(ck.count())  # same history on both sides: a like-for-like ratio
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
    # The sizes are sampled minutes apart, so machine noise can move this ratio; the
    # baseline's own ratio over the same sizes shows how much of it SQLite/noise explains.
    bare_flatness = last.bare.p50_ms / first.bare.p50_ms
    lines.append("(times in ms)")
    lines.append(
        f"flatness: chatkeep p50@{last.history:,} / p50@{first.history:,} = {flatness:.2f}"
        f"  target <= {FLATNESS_TARGET}  {verdict(flat_pass)}"
        f"  (bare, for context: {bare_flatness:.2f})"
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
            "bare_ratio": round(bare_flatness, 3),
        },
    }
    return lines, figures


def main() -> None:
    config, as_json = parse_config()
    with tempfile.TemporaryDirectory(prefix="chatkeep-bench-") as tmp:
        ck = ChatkeepSide(Path(tmp) / "chatkeep")
        bare = BareSide(Path(tmp) / "bare")
        try:
            progress(f"wrapping both WALs ({config.wal_commits} commits per side) ...")
            ck.warm_wal(config.wal_commits)
            bare.warm_wal(config.wal_commits)
            results = [run_size(ck, bare, size, config) for size in config.sizes]
        finally:
            ck.close()
            bare.close()
    lines, figures = report(results, config)
    emit(lines, figures, as_json)


if __name__ == "__main__":
    main()
