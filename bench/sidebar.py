"""Sidebar latency: one page of a runtime's conversations when the user has thousands.

Why: the sidebar is drawn on every screen change, so its first page must come back in a
few milliseconds however many conversations a runtime has piled up. It is timed through
the public store API (``list_conversations`` with ``runtime_id`` and ``limit=50``) and,
in the same run and interleaved, against a bare stdlib ``sqlite3`` SELECT of the same 50
rows by last activity from the same database file: the floor set by SQLite itself.

The fixture makes both queries return the same 50 ids, so the ratio compares like with
like: the home conversation is written to last (it is the most recent) and the pins are
chosen among the most recent conversations, so "home, then pins, then by activity"
and "by activity" pick the same page.

Run: ``.venv/bin/python bench/sidebar.py [--quick] [--samples N] [--json]``
"""

from __future__ import annotations

import argparse
import gc
import sqlite3
import tempfile
import time
from dataclasses import dataclass
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

USER = "bench"
RUNTIME = "bench-runtime"
PAGE = 50
PINS = 5
P50_TARGET_MS = 5.0
SETUP_BUDGET_S = 60.0  # creating the conversations one by one (one fsync each)

BARE_QUERY = (
    "SELECT * FROM conversations"
    " WHERE user_id = ? AND runtime_id = ? AND state = 'active'"
    " ORDER BY updated_at DESC, id DESC LIMIT ?"
)


@dataclass(frozen=True, slots=True)
class Config:
    conversations: int
    samples: int
    warmup: int


@dataclass(frozen=True, slots=True)
class Fixture:
    """A vault holding one user with ``conversations`` in one runtime, plus pins."""

    vault: chatkeep.Vault
    created: int
    setup_seconds: float


def parse_config() -> tuple[Config, bool]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser, default_samples=300)
    args = parser.parse_args()
    if args.quick:
        config = Config(conversations=1_000, samples=sample_count(args.samples, 50), warmup=10)
    else:
        config = Config(conversations=10_000, samples=sample_count(args.samples, 300), warmup=30)
    if config.samples < 1:
        parser.error("--samples must be at least 1")
    return config, args.json


def build_fixture(home: Path, conversations: int) -> Fixture:
    """Create the conversations through the store, one transaction each, as a user would."""
    vault = chatkeep.open(home=home, create=True)
    store = vault.store
    store.add_user(USER)
    store.create_runtime(USER, RUNTIME)
    started = time.perf_counter()
    ids = [
        store.create_conversation(USER, RUNTIME, title=f"conversation {n}").id
        for n in range(conversations - 1)  # the runtime's home conversation is the last one
    ]
    setup_seconds = time.perf_counter() - started
    for conversation_id in recent_pins(ids):
        store.pin_conversation(USER, conversation_id)
    home_id = store.route(USER, RUNTIME).id
    store.append_message(USER, home_id, chatkeep.user_message("hello"))
    return Fixture(vault=vault, created=len(ids), setup_seconds=setup_seconds)


def recent_pins(ids: list[str]) -> list[str]:
    """Every fifth of the 25 newest: pins spread inside the first page, not bunched up."""
    return ids[-PAGE // 2 :: 5][:PINS]


def timed_store_page(store: chatkeep.Store) -> tuple[int, list[str]]:
    start = time.perf_counter_ns()
    page = store.list_conversations(USER, runtime_id=RUNTIME, limit=PAGE)
    return time.perf_counter_ns() - start, [c.id for c in page]


def timed_bare_page(db: sqlite3.Connection) -> tuple[int, list[str]]:
    """Read the full rows, as the store does, not only the ids."""
    start = time.perf_counter_ns()
    rows = db.execute(BARE_QUERY, (USER, RUNTIME, PAGE)).fetchall()
    return time.perf_counter_ns() - start, [row[0] for row in rows]


def measure(
    store: chatkeep.Store, db: sqlite3.Connection, config: Config
) -> tuple[list[int], list[int], bool]:
    """Interleave the two sides, alternating which goes first; report if the ids agree."""
    store_ns: list[int] = []
    bare_ns: list[int] = []
    same_ids = True
    gc.collect()
    for i in range(config.warmup + config.samples):
        if i % 2:
            (s_ns, s_ids), (b_ns, b_ids) = timed_store_page(store), timed_bare_page(db)
        else:
            (b_ns, b_ids), (s_ns, s_ids) = timed_bare_page(db), timed_store_page(store)
        same_ids = same_ids and set(s_ids) == set(b_ids) and len(s_ids) == PAGE
        if i >= config.warmup:
            store_ns.append(s_ns)
            bare_ns.append(b_ns)
    return store_ns, bare_ns, same_ids


def report(
    fixture: Fixture, store: Summary, bare: Summary, same_ids: bool, config: Config
) -> tuple[list[str], dict[str, Any]]:
    passed = store.p50_ms <= P50_TARGET_MS
    setup_ok = fixture.setup_seconds <= SETUP_BUDGET_S * fixture.created / 10_000
    per_create_ms = fixture.setup_seconds * 1000 / max(fixture.created, 1)
    ratio = store.p50_ms / bare.p50_ms
    lines = [
        f"sidebar page of {PAGE}: {config.conversations:,} conversations in one runtime,"
        f" {PINS} pins; {config.samples} samples per side, interleaved",
        f"setup: {fixture.created:,} create_conversation calls in {fixture.setup_seconds:.1f} s"
        f" ({per_create_ms:.2f} ms each)  budget ~{SETUP_BUDGET_S:.0f} s per 10,000"
        f"  {verdict(setup_ok)}",
        f"{'':>9}  {'p50 ms':>8}  {'p99 ms':>8}",
        f"{'chatkeep':>9}  {store.p50_ms:>8.3f}  {store.p99_ms:>8.3f}"
        f"  target p50 <= {P50_TARGET_MS}  {verdict(passed)}",
        f"{'bare':>9}  {bare.p50_ms:>8.3f}  {bare.p99_ms:>8.3f}",
        f"ratio chatkeep p50 / bare p50 = {ratio:.1f} (no target; for reading only)",
        f"same 50 ids on both sides: {'yes' if same_ids else 'NO (the baseline is off)'}",
    ]
    figures = {
        "benchmark": "sidebar",
        "unit": "ms",
        "conversations": config.conversations,
        "pins": PINS,
        "samples_per_side": config.samples,
        "setup_seconds": round(fixture.setup_seconds, 2),
        "setup_pass": setup_ok,
        "chatkeep": summary_dict(store),
        "bare": summary_dict(bare),
        "ratio_p50": round(ratio, 3),
        "target_p50_ms": P50_TARGET_MS,
        "pass": passed,
        "same_ids": same_ids,
    }
    return lines, figures


def main() -> None:
    config, as_json = parse_config()
    with tempfile.TemporaryDirectory(prefix="chatkeep-bench-") as tmp:
        progress(f"creating {config.conversations:,} conversations one by one ...")
        fixture = build_fixture(Path(tmp) / "vault", config.conversations)
        db = sqlite3.connect(fixture.vault.paths.database, isolation_level=None)
        try:
            progress("sampling ...")
            store_ns, bare_ns, same_ids = measure(fixture.vault.store, db, config)
        finally:
            db.close()
            fixture.vault.close()
    lines, figures = report(fixture, summarise(store_ns), summarise(bare_ns), same_ids, config)
    emit(lines, figures, as_json)


if __name__ == "__main__":
    main()
