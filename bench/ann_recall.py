"""Recall@10 and latency of the IVF index (chatkeep.ann, FAISS) beside exact NumPy brute force.

    .venv/bin/python bench/ann_recall.py            # 1,000,000 x 384, clustered and random
    .venv/bin/python bench/ann_recall.py --quick    # 100,000 rows, fewer queries

For each data set the benchmark builds N unit vectors in memory (not in a vault: loading
a million vectors through the store would dominate), builds the index (timed), and runs
Q queries. Each query is timed twice, interleaved: ``IVFIndex.search(q, 10)`` at the
default ``nprobe`` and brute force ``matrix @ q`` + ``argpartition`` top-10 + sort on the
same matrix. Recall@10 is the share of the exact ten the index returns. A sweep of
``nprobe`` (index only, the same queries) shows the trade-off. Data sets:

clustered
    a Gaussian mixture on the unit sphere shaped like text embeddings: 200 topics of 10
    sub-topics each (2,000 centres, sizes log-normal), related sub-topics close
    (cosine ~0.5), rows at cosine ~0.7-0.8 to their centre; queries are data rows
    perturbed to cosine ~0.9. Embeddings of real text have this kind of structure.
    ``--topics 2000`` makes 20,000 smaller centres: much harder for any IVF index.
random
    uniform on the sphere: no structure at all, the worst case for any IVF index.

Target (the issue): recall@10 >= 0.95 at ANN p50 <= 0.1 x brute-force p50 at 1,000,000.

Then, unless ``--no-vault``, an end-to-end check through a real vault: ``semantic_search``
top-10 with the index (the threshold lowered to the vault's size if need be) against
the same search with the threshold raised (brute force), on clustered vectors.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

import chatkeep
from _common import add_common_arguments, emit, progress, sample_count, summarise, verdict
from chatkeep import semantic
from chatkeep.ann import DEFAULT_NPROBE, IVFIndex

DIMENSION = 384
TOPICS, PER_TOPIC = 200, 10
SUB_SPREAD = 0.05  # per dimension: a sub-topic at cosine ~0.7 to its topic
ROW_SPREAD = (0.038, 0.052)  # per centre: rows at cosine ~0.7-0.8 to it
QUERY_SPREAD = 0.025  # a query at cosine ~0.9 to the row it was made from
SWEEP = (8, 16, 32, 64, 96, 128, 256, 1024)
BLOCK = 50_000

Matrix = npt.NDArray[np.float32]


def unit(matrix: Matrix) -> Matrix:
    return (matrix / np.linalg.norm(matrix, axis=1, keepdims=True)).astype(np.float32)


def random_data(rows: int, rng: np.random.Generator) -> Matrix:
    out = np.empty((rows, DIMENSION), dtype=np.float32)
    for start in range(0, rows, BLOCK):
        count = min(BLOCK, rows - start)
        out[start : start + count] = unit(rng.standard_normal((count, DIMENSION), dtype=np.float32))
    return out


def clustered_data(rows: int, rng: np.random.Generator, topics: int = TOPICS) -> Matrix:
    middles = unit(rng.standard_normal((topics, DIMENSION), dtype=np.float32))
    centres = unit(
        np.repeat(middles, PER_TOPIC, axis=0)
        + SUB_SPREAD * rng.standard_normal((topics * PER_TOPIC, DIMENSION), dtype=np.float32)
    )
    weights = rng.lognormal(0.0, 1.0, size=len(centres))
    labels = rng.choice(len(centres), size=rows, p=weights / weights.sum())
    spreads = rng.uniform(*ROW_SPREAD, size=len(centres)).astype(np.float32)
    out = np.empty((rows, DIMENSION), dtype=np.float32)
    for start in range(0, rows, BLOCK):
        label = labels[start : start + BLOCK]
        noise = rng.standard_normal((len(label), DIMENSION), dtype=np.float32)
        out[start : start + len(label)] = unit(centres[label] + spreads[label, None] * noise)
    return out


def make_queries(data: Matrix, count: int, kind: str, rng: np.random.Generator) -> Matrix:
    if kind == "random":
        return random_data(count, rng)
    picked = data[rng.choice(len(data), size=count, replace=False)]
    return unit(picked + QUERY_SPREAD * rng.standard_normal(picked.shape, dtype=np.float32))


def exact_top10(matrix: Matrix, query: Matrix) -> npt.NDArray[np.int64]:
    scores = matrix @ query
    top = np.argpartition(-scores, 9)[:10]
    return top[np.argsort(-scores[top])]  # type: ignore[no-any-return]


def run_set(kind: str, rows: int, count: int, seed: int, topics: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    data = random_data(rows, rng) if kind == "random" else clustered_data(rows, rng, topics)
    queries = make_queries(data, count, kind, rng)
    progress(f"{kind}: {rows:,} x {DIMENSION} generated in {time.perf_counter() - started:.1f} s")
    started, cpu = time.perf_counter(), time.process_time()
    index = IVFIndex.build(data, seed=seed)
    build, build_cpu = time.perf_counter() - started, time.process_time() - cpu
    sizes = index.list_sizes()
    progress(
        f"{kind}: index built in {build:.1f} s ({build_cpu:.1f} s CPU), "
        f"{index.nlist} lists "
        f"(rows per list: median {int(np.median(sizes))}, max {int(sizes.max())})"
    )
    for query in queries[:5]:  # warm-up, not recorded
        index.search(query, 10)
        exact_top10(data, query)
    ann_ns: list[int] = []
    brute_ns: list[int] = []
    truth: list[set[int]] = []
    found = 0
    for number, query in enumerate(queries):
        sides = ["ann", "brute"] if number % 2 else ["brute", "ann"]
        for side in sides:
            begin = time.perf_counter_ns()
            if side == "ann":
                rows_found, _ = index.search(query, 10)
                elapsed = time.perf_counter_ns() - begin
                ann_ns.append(elapsed)
                got = {int(row) for row in rows_found}
            else:
                best = exact_top10(data, query)
                brute_ns.append(time.perf_counter_ns() - begin)
                truth.append({int(row) for row in best})
        found += len(got & truth[-1])
    ann, brute = summarise(ann_ns), summarise(brute_ns)
    sweep = []
    for nprobe in SWEEP:
        timings, hits = [], 0
        for query, exact in zip(queries, truth, strict=True):
            begin = time.perf_counter_ns()
            rows_found, _ = index.search(query, 10, nprobe=nprobe)
            timings.append(time.perf_counter_ns() - begin)
            hits += len({int(row) for row in rows_found} & exact)
        p50 = statistics.median(timings) / 1e6
        sweep.append(
            {
                "nprobe": nprobe,
                "recall_at_10": hits / (10 * count),
                "p50_ms": round(p50, 3),
                "ratio": round(p50 / brute.p50_ms, 4),
            }
        )
    return {
        "data": kind if kind == "random" else f"clustered ({topics * PER_TOPIC:,} centres)",
        "rows": rows,
        "queries": count,
        "nlist": index.nlist,
        "nprobe": DEFAULT_NPROBE,
        "build_seconds": round(build, 2),
        "build_cpu_seconds": round(build_cpu, 2),
        "recall_at_10": found / (10 * count),
        "ann_p50_ms": round(ann.p50_ms, 3),
        "ann_p99_ms": round(ann.p99_ms, 3),
        "brute_p50_ms": round(brute.p50_ms, 3),
        "brute_p99_ms": round(brute.p99_ms, 3),
        "ratio_p50": round(ann.p50_ms / brute.p50_ms, 4),
        "sweep": sweep,
    }


class FixedEmbedder:
    """Hands out prepared vectors: query text ``"q<i>"`` embeds to ``queries[i]``."""

    name = "bench-ann-384"
    dimension = DIMENSION

    def __init__(self, queries: Matrix) -> None:
        self.queries = queries

    def embed(self, texts: list[str]) -> Matrix:
        return self.queries[[int(text[1:]) for text in texts]]


def vault_check(rows: int, count: int, seed: int) -> dict[str, Any]:
    """Top-10 of semantic_search with the index against brute force, through a vault."""
    rng = np.random.default_rng(seed)
    data = clustered_data(rows, rng)
    embedder = FixedEmbedder(make_queries(data, count, "clustered", rng))
    with tempfile.TemporaryDirectory(prefix="chatkeep-bench-") as scratch:
        vault = chatkeep.open(home=Path(scratch), create=True)
        store = vault.store
        store.add_user("bench")
        store.create_runtime("bench", "r")
        started = time.perf_counter()
        for start in range(0, rows, 10_000):
            conversation = store.create_conversation("bench", "r").id
            amount = min(10_000, rows - start)
            store.append_messages(
                "bench",
                conversation,
                [chatkeep.user_message(f"chunk {start + i}") for i in range(amount)],
            )
        todo = store.messages_to_embed(embedder.name, limit=rows + 10)
        store.store_vectors(
            embedder.name,
            [
                (pk, 0, user, vector.astype("<f4").tobytes())
                for (pk, user, _), vector in zip(todo, data, strict=True)
            ],
        )
        progress(f"vault: {rows:,} vectors stored in {time.perf_counter() - started:.1f} s")

        timings: list[int] = []

        def top10(query: str) -> list[str | None]:
            begin = time.perf_counter_ns()
            page = semantic.semantic_search(store, "bench", query, embedder=embedder, limit=10)
            timings.append(time.perf_counter_ns() - begin)
            return [hit.message_id for hit in page.hits]

        def run(label: str) -> tuple[list[list[str | None]], float, float]:
            semantic._MATRICES.clear()
            started = time.perf_counter()
            top10("q0")  # loads the matrix (and builds the index)
            first = time.perf_counter() - started
            progress(f"vault: first search ({label}) {first:.1f} s")
            timings.clear()
            return [top10(f"q{i}") for i in range(count)], first, summarise(timings).p50_ms

        threshold = semantic.ANN_MIN_ROWS
        try:
            semantic.ANN_MIN_ROWS = min(threshold, rows)  # the index on, whatever the size
            with_index, first_index, p50_index = run("load + index")
            semantic.ANN_MIN_ROWS = rows + 1
            exact, first_exact, p50_exact = run("load only")
        finally:
            semantic.ANN_MIN_ROWS = threshold
            semantic._MATRICES.clear()
        vault.close()
    pairs = list(zip(with_index, exact, strict=True))
    overlap = [len(set(a) & set(b)) / 10 for a, b in pairs]
    return {
        "rows": rows,
        "queries": count,
        "first_search_seconds_with_index": round(first_index, 2),
        "first_search_seconds_without": round(first_exact, 2),
        "search_p50_ms_with_index": round(p50_index, 3),
        "search_p50_ms_without": round(p50_exact, 3),
        "recall_at_10": statistics.fmean(overlap),
        "same_top_hit": statistics.fmean(a[:1] == b[:1] for a, b in pairs),
        "queries_with_recall_at_least_0.9": statistics.fmean(o >= 0.9 for o in overlap),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    add_common_arguments(parser, default_samples=200)
    parser.add_argument("--rows", type=int, help="default 1,000,000 (100,000 with --quick)")
    parser.add_argument("--data", choices=["both", "clustered", "random"], default="both")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--topics",
        type=int,
        default=TOPICS,
        help=f"topics of the clustered set, {PER_TOPIC} centres each (default {TOPICS})",
    )
    parser.add_argument("--vault-rows", type=int, default=60_000)
    parser.add_argument("--no-vault", action="store_true", help="skip the end-to-end check")
    args = parser.parse_args()
    rows = args.rows or (100_000 if args.quick else 1_000_000)
    count = sample_count(args.samples, 50 if args.quick else 200)
    if count < 1 or rows < 10:
        parser.error("need at least one query and ten rows")
    kinds = ["clustered", "random"] if args.data == "both" else [args.data]
    results = [run_set(kind, rows, count, args.seed, args.topics) for kind in kinds]
    report = [f"IVF index vs brute force, {rows:,} x {DIMENSION}, {count} queries, top-10 (ms)"]
    for result in results:
        passed = result["recall_at_10"] >= 0.95 and result["ratio_p50"] <= 0.1
        report += [
            f"  {result['data']}: {result['nlist']} lists, nprobe {result['nprobe']}, "
            f"built in {result['build_seconds']:.1f} s ({result['build_cpu_seconds']:.1f} s CPU)",
            f"    recall@10 {result['recall_at_10']:.3f}   ann p50 {result['ann_p50_ms']:7.2f}"
            f"  p99 {result['ann_p99_ms']:7.2f}   brute p50 {result['brute_p50_ms']:7.2f}"
            f"  p99 {result['brute_p99_ms']:7.2f}",
            f"    ratio {result['ratio_p50']:.3f}  target recall >= 0.95 at ratio <= 0.1  "
            f"{verdict(passed)}",
            "    sweep  nprobe  recall@10  p50 ms  ratio",
        ]
        report += [
            f"          {s['nprobe']:6d}  {s['recall_at_10']:9.3f}  {s['p50_ms']:6.2f}"
            f"  {s['ratio']:.3f}"
            for s in result["sweep"]
        ]
    figures: dict[str, Any] = {
        "rows": rows,
        "queries": count,
        "topics": args.topics,
        "sets": results,
    }
    if not args.no_vault:
        check = vault_check(args.vault_rows, min(count, 100), args.seed)
        figures["vault"] = check
        report += [
            f"  vault end to end ({check['rows']:,} vectors, index on, {check['queries']} "
            f"queries): recall@10 vs brute force {check['recall_at_10']:.3f}, same top hit "
            f"{check['same_top_hit']:.2f}, queries with >= 9 of 10: "
            f"{check['queries_with_recall_at_least_0.9']:.2f}",
            f"    semantic_search p50 {check['search_p50_ms_with_index']:.2f} ms with the index, "
            f"{check['search_p50_ms_without']:.2f} ms without; first search (load) "
            f"{check['first_search_seconds_with_index']:.1f} s with the build, "
            f"{check['first_search_seconds_without']:.1f} s without",
        ]
    emit(report, figures, args.json)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
