"""Full-text search latency over a large generated vault, beside bare FTS5 MATCH.

    .venv/bin/python bench/search_latency.py                # 1,000,000 messages
    .venv/bin/python bench/search_latency.py --messages 100000 --quick
    .venv/bin/python bench/search_latency.py --vault DIR   # loads once; later runs reuse it

The vault gets N messages of Zipf-distributed words (20,000-word vocabulary) in
conversations of 100 messages across 4 runtimes, loaded with ``append_messages`` (the
index is kept by the same triggers as every write). Then, for each query kind (one
word, two words, a phrase that occurs in the text, a phrase of two very common words,
one word with runtime + role filters), ``store.search`` (limit 20: join, filters,
bm25 with title weight, snippets) is timed against the bare
``SELECT rowid FROM messages_fts WHERE messages_fts MATCH ? ORDER BY rank LIMIT 20`` on
the same database, interleaved. Targets: p50 at most 1.5x bare, and p50 <= 20 ms.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import chatkeep
from chatkeep.backends.sqlite_search import fts5_expression
from chatkeep.model import searchable_text
from chatkeep.search import SearchFilters, parse_query

BARE_SQL = "SELECT rowid FROM messages_fts WHERE messages_fts MATCH ? ORDER BY rank LIMIT 20"
VOCABULARY = 20_000
PER_CONVERSATION = 100
RUNTIMES = ("work", "home", "study", "misc")


def word(rank: int) -> str:
    consonants, vowels = "bcdfghjklmnprstvz", "aeiou"
    letters = []
    value = rank + 1
    while value:
        value, digit = divmod(value, 85)
        letters.append(consonants[digit % 17] + vowels[digit // 17])
    return "".join(letters)


def zipf_words(rng: random.Random, count: int, weights: list[float]) -> list[str]:
    return [word(i) for i in rng.choices(range(VOCABULARY), cum_weights=weights, k=count)]


def load(store: chatkeep.Store, messages: int, rng: random.Random) -> None:
    cumulative, total = [], 0.0
    for rank in range(VOCABULARY):
        total += 1.0 / (rank + 1)
        cumulative.append(total)
    store.add_user("bench")
    for runtime in RUNTIMES:
        store.create_runtime("bench", runtime)
    done, started = 0, time.perf_counter()
    while done < messages:
        runtime = RUNTIMES[(done // PER_CONVERSATION) % len(RUNTIMES)]
        title = " ".join(zipf_words(rng, 4, cumulative))
        conversation = store.create_conversation("bench", runtime, title=title).id
        batch = [
            chatkeep.NewMessage(
                role="user" if i % 2 == 0 else "assistant",
                parts=(
                    chatkeep.Part(
                        "text", " ".join(zipf_words(rng, rng.randint(8, 60), cumulative))
                    ),
                ),
            )
            for i in range(min(PER_CONVERSATION, messages - done))
        ]
        store.append_messages("bench", conversation, batch)
        done += len(batch)
        if done % 100_000 == 0:
            print(
                f"  loaded {done:,} messages ({time.perf_counter() - started:.0f} s)",
                file=sys.stderr,
            )
    print(
        f"loaded {messages:,} messages in {time.perf_counter() - started:.1f} s "
        f"({messages / (time.perf_counter() - started):,.0f} msg/s with indexing)",
        file=sys.stderr,
    )


def loaded(database: Path) -> int:
    """How many messages an earlier run left in a kept vault (0: none)."""
    with sqlite3.connect(database) as db:
        return int(db.execute("SELECT count(*) FROM messages").fetchone()[0])


def warm(database: Path) -> None:
    """Read the database file once, so that both sides start from the operating
    system's cache: on a VM that hands idle page cache back to its host (this one does,
    within minutes), chatkeep's reads of message rows would otherwise come from disk
    while the bare query reads only the index, which its own queries keep warm."""
    with database.open("rb") as source:
        while source.read(1 << 20):
            pass


def stored_phrase(db: sqlite3.Connection, rng: random.Random) -> str:
    """Two adjacent words of a random stored message: a phrase that occurs, drawn as
    text draws its words (Zipf: about one pair in seven is two of the 30 most frequent
    words, the "common phrase" kind's worst case)."""
    top = int(db.execute("SELECT max(pk) FROM messages").fetchone()[0])
    while True:
        row = db.execute("SELECT content FROM messages WHERE pk = ?", (rng.randint(1, top),))
        found = row.fetchone()
        words = searchable_text(found[0]).split() if found else []
        if len(words) >= 2:
            at = rng.randrange(len(words) - 1)
            return f"{words[at]} {words[at + 1]}"


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def measure(
    ours: Callable[[], object], bare: Callable[[], object], runs: int
) -> tuple[list[float], list[float]]:
    mine, floor = [], []
    for index in range(runs):
        pair = [(mine, ours), (floor, bare)]
        if index % 2:
            pair.reverse()
        for sink, call in pair:
            start = time.perf_counter_ns()
            call()
            sink.append((time.perf_counter_ns() - start) / 1e6)
    return mine, floor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="50 runs per query kind")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--vault",
        type=Path,
        help="keep the loaded vault here and reuse it when it holds --messages already",
    )
    args = parser.parse_args()
    runs = 50 if args.quick else args.runs
    rng = random.Random(7)
    results = {}
    with tempfile.TemporaryDirectory(prefix="chatkeep-bench-") as scratch:
        vault = chatkeep.open(home=args.vault or Path(scratch), create=True)
        if loaded(vault.paths.database) != args.messages:
            if loaded(vault.paths.database):
                sys.exit(f"{args.vault} holds another number of messages: use a new folder")
            load(vault.store, args.messages, rng)
        rng = random.Random(8)  # the queries are the same whether loaded now or before
        bare_db = sqlite3.connect(vault.paths.database)
        mid = [word(r) for r in range(200, 2_000)]
        kinds = {
            "one word": (lambda: rng.choice(mid), SearchFilters()),
            "two words": (lambda: f"{rng.choice(mid)} {rng.choice(mid[:300])}", SearchFilters()),
            "phrase": (lambda: f'"{stored_phrase(bare_db, rng)}"', SearchFilters()),
            "common phrase": (
                lambda: f'"{word(rng.randrange(0, 30))} {word(rng.randrange(0, 30))}"',
                SearchFilters(),
            ),
            "filtered": (
                lambda: rng.choice(mid),
                SearchFilters(runtime_id="home", role="assistant"),
            ),
        }
        for kind, (make, filters) in kinds.items():
            warm(vault.paths.database)
            queries = [make() for _ in range(runs)]
            expressions = [fts5_expression(parse_query(q)) for q in queries]
            ours_next, bare_next = iter(queries * 2), iter(expressions * 2)

            def ours(pending: Iterator[str] = ours_next, chosen: SearchFilters = filters) -> object:
                return vault.store.search("bench", next(pending), filters=chosen, limit=20)

            def bare(pending: Iterator[str] = bare_next) -> object:
                return bare_db.execute(BARE_SQL, (next(pending),)).fetchall()

            mine, floor = measure(ours, bare, runs)
            results[kind] = {
                "p50": statistics.median(mine),
                "p99": percentile(mine, 0.99),
                "bare_p50": statistics.median(floor),
                "bare_p99": percentile(floor, 0.99),
            }
        vault.close()
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"search over {args.messages:,} messages, {runs} queries per kind (ms)")
    print(f"{'kind':<13} {'p50':>8} {'p99':>8} {'bare p50':>9} {'bare p99':>9} {'ratio':>6}")
    for kind, r in results.items():
        ratio = r["p50"] / r["bare_p50"]
        verdict = "PASS" if ratio <= 1.5 and r["p50"] <= 20 else "FAIL"
        print(
            f"{kind:<13} {r['p50']:8.2f} {r['p99']:8.2f} {r['bare_p50']:9.2f} "
            f"{r['bare_p99']:9.2f} {ratio:6.2f}  {verdict} (target <= 1.5x and p50 <= 20 ms)"
        )


if __name__ == "__main__":
    main()
