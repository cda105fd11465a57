"""Semantic top-10 over N stored chunk vectors, beside NumPy brute force on the same vectors.

    .venv/bin/python bench/semantic_latency.py              # 100,000 chunks
    .venv/bin/python bench/semantic_latency.py --chunks 20000 --quick

The vault gets N one-chunk messages; their vectors (384 dimensions, unit length,
seeded random) are stored through the store, so the benchmark measures search, not a
model. Each sample is ``semantic_search(..., limit=10)`` (cached in-memory matrix,
version check, scoring, partial sort, ownership and filter check, message lookup)
against ``numpy`` ``matrix @ query`` + ``argpartition`` top-10 on the same matrix,
alternating in blocks of ten queries, each block after one call not counted (see
the loop). From ``semantic.SCREEN_MIN_ROWS`` rows chatkeep scores in half precision
first on every core, then exactly. Target: p50 at most 1.2x brute force. The report
also gives how many of brute force's ten chatkeep returned (1.000 below
``semantic.ANN_MIN_ROWS``: exact).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

import chatkeep
from chatkeep import semantic
from chatkeep.search_embed import default_embedder
from chatkeep.semantic import semantic_search

DIMENSION = 384
BLOCK = 10


class RandomEmbedder:
    """Seeded unit vectors: stands in for a model, so only search is timed."""

    name = "bench-random-384"
    dimension = DIMENSION

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self.ready: dict[str, np.ndarray] = {}

    def embed(self, texts: list[str]) -> np.ndarray:
        """One vector per text, the same every time (seeded by the text), so that the
        query chatkeep embeds is the one brute force scores. Queries are embedded
        before the timing (``ready``), as brute force gets its vector for free."""
        if len(texts) == 1 and texts[0] in self.ready:
            return self.ready[texts[0]][None, :]
        vectors = np.stack(
            [
                np.random.default_rng([self._seed, zlib.crc32(text.encode())]).standard_normal(
                    DIMENSION, dtype=np.float32
                )
                for text in texts
            ]
        )
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def indexing_throughput(messages: int) -> None:
    """``index_pending`` with the default embedder over ``messages`` generated messages
    of 10 to 400 words (some long enough for several chunks), beside the embedder's own
    ``embed`` on the same chunks: what chunking, the store's reads and the writes of
    the vectors add to the model's time."""
    rng = np.random.default_rng(3)
    words = [f"w{rank}" for rank in range(5_000)]
    texts = [
        " ".join(rng.choice(words, size=int(rng.integers(10, 400))).tolist())
        for _ in range(messages)
    ]
    embedder = default_embedder()
    with tempfile.TemporaryDirectory(prefix="chatkeep-bench-") as scratch:
        vault = chatkeep.open(home=Path(scratch), create=True)
        store = vault.store
        store.add_user("bench")
        store.create_runtime("bench", "r")
        for start in range(0, messages, 1_000):
            conversation = store.create_conversation("bench", "r").id
            batch = texts[start : start + 1_000]
            store.append_messages("bench", conversation, [chatkeep.user_message(t) for t in batch])
        pieces = [piece for text in texts for piece in semantic.chunks(text)]
        begin = time.perf_counter()
        for start in range(0, len(pieces), semantic.INDEX_BATCH):
            embedder.embed(pieces[start : start + semantic.INDEX_BATCH])
        model = time.perf_counter() - begin
        begin = time.perf_counter()
        done = semantic.index_pending(store, embedder)
        indexing = time.perf_counter() - begin
        vault.close()
    print(f"indexing {done:,} messages ({len(pieces):,} chunks) with {embedder.name}")
    print(f"  chatkeep index  {indexing:6.2f} s  {done / indexing:8,.0f} messages/s")
    print(f"  embed() alone   {model:6.2f} s  {done / model:8,.0f} messages/s")
    print(f"  ratio {indexing / model:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="50 runs")
    parser.add_argument(
        "--index-messages",
        type=int,
        default=5_000,
        help="messages for the indexing throughput (0: skip it)",
    )
    args = parser.parse_args()
    runs = 50 if args.quick else args.runs
    if args.index_messages:
        indexing_throughput(args.index_messages)
    embedder = RandomEmbedder(1)
    with tempfile.TemporaryDirectory(prefix="chatkeep-bench-") as scratch:
        vault = chatkeep.open(home=Path(scratch), create=True)
        store = vault.store
        store.add_user("bench")
        store.create_runtime("bench", "r")
        started = time.perf_counter()
        pks: list[int] = []
        for start in range(0, args.chunks, 10_000):
            conversation = store.create_conversation("bench", "r").id
            count = min(10_000, args.chunks - start)
            store.append_messages(
                "bench",
                conversation,
                [chatkeep.user_message(f"chunk {start + i}") for i in range(count)],
            )
        todo = store.messages_to_embed(embedder.name, limit=args.chunks + 10)
        vectors = embedder.embed([text for _, _, text in todo])
        store.store_vectors(
            embedder.name,
            [
                (pk, 0, user, vector.astype("<f4").tobytes())
                for (pk, user, _), vector in zip(todo, vectors, strict=True)
            ],
        )
        pks = [pk for pk, _, _ in todo]
        print(
            f"stored {len(pks):,} vectors in {time.perf_counter() - started:.1f} s", file=sys.stderr
        )
        matrix = vectors.astype(np.float32)
        queries = [f"query {i}" for i in range(runs)]
        embedder.ready = {query: embedder.embed([query])[0] for query in queries}
        semantic_search(store, "bench", "warm", embedder=embedder, limit=10)  # load the matrix
        row_of = {text: row for row, (_, _, text) in enumerate(todo)}
        mine, brute = [], []
        agreement = []
        answers: dict[str, dict[str, object]] = {"ck": {}, "np": {}}

        def ours(text: str) -> object:
            return semantic_search(store, "bench", text, embedder=embedder, limit=10)

        def numpy_top10(text: str) -> object:
            scores = matrix @ embedder.ready[text]
            top = np.argpartition(-scores, 9)[:10]
            return top[np.argsort(-scores[top])]

        # In blocks, the first call of each not counted: OpenBLAS's threads keep spinning
        # for a while after each matrix product, and would slow whatever ran next on
        # this machine's two cores (chatkeep's screen runs on both).
        for start in range(0, len(queries), BLOCK):
            block = queries[start : start + BLOCK]
            sides = [("ck", mine, ours), ("np", brute, numpy_top10)]
            if (start // BLOCK) % 2:
                sides.reverse()
            for name, sink, call in sides:
                call(block[0])
                for query in block:
                    begin = time.perf_counter_ns()
                    answers[name][query] = call(query)
                    sink.append((time.perf_counter_ns() - begin) / 1e6)
        for query in queries:
            found = {row_of[hit.snippet] for hit in answers["ck"][query].hits}  # type: ignore[attr-defined]
            agreement.append(len(found & set(answers["np"][query].tolist())) / 10)  # type: ignore[attr-defined]
        vault.close()
    p50, base = statistics.median(mine), statistics.median(brute)
    print(f"semantic top-10 over {len(pks):,} vectors ({DIMENSION} dims), {runs} queries (ms)")
    print(f"  chatkeep  p50 {p50:7.2f}  p99 {sorted(mine)[int(0.99 * (len(mine) - 1))]:7.2f}")
    print(f"  numpy     p50 {base:7.2f}  p99 {sorted(brute)[int(0.99 * (len(brute) - 1))]:7.2f}")
    verdict = "PASS" if p50 / base <= 1.2 else "FAIL"
    print(f"  ratio {p50 / base:.2f}  target <= 1.2  {verdict}")
    exact = "exact search" if len(pks) < semantic.ANN_MIN_ROWS else "the approximate index"
    print(
        f"  same top-10 as brute force: {statistics.fmean(agreement):.3f} "
        f"(chatkeep used {exact}: ANN_MIN_ROWS = {semantic.ANN_MIN_ROWS:,})"
    )


if __name__ == "__main__":
    main()
