"""The IVF index (chatkeep.ann, FAISS) on small data, and semantic search reading it.

Speed and recall at a million rows are measured by ``bench/ann_recall.py``, never here.
"""

from __future__ import annotations

import os
import signal
import weakref
from collections.abc import Iterator

import numpy as np
import pytest

import chatkeep
from chatkeep import ann, semantic
from chatkeep.search import SearchFilters
from chatkeep.semantic import index_pending, semantic_search
from chatkeep.store import Store

DIMENSION = 32


def unit(matrix: np.ndarray) -> np.ndarray:
    return (matrix / np.linalg.norm(matrix, axis=1, keepdims=True)).astype(np.float32)


def clustered(rows: int, seed: int = 0, centres: int = 40) -> np.ndarray:
    rng = np.random.default_rng(seed)
    middle = unit(rng.standard_normal((centres, DIMENSION)))
    labels = rng.integers(0, centres, size=rows)
    return unit(middle[labels] + 0.15 * rng.standard_normal((rows, DIMENSION)))


def exact(data: np.ndarray, query: np.ndarray, k: int) -> list[int]:
    scores = data @ query
    return np.lexsort((np.arange(len(data)), -scores))[:k].tolist()


def found(index: ann.IVFIndex, query: np.ndarray, k: int, nprobe: int) -> list[int]:
    rows, _ = index.search(query, k, nprobe)
    return rows.tolist()


def test_probing_every_list_is_exact() -> None:
    data = clustered(3_000)
    index = ann.IVFIndex.build(data, seed=1)
    assert len(index) == 3_000 and index.nlist == ann.default_nlist(3_000)
    for query in clustered(20, seed=5):
        rows, scores = index.search(query, 10, nprobe=index.nlist)
        assert rows.tolist() == exact(data, query, 10)
        np.testing.assert_allclose(scores, data[rows] @ query, rtol=1e-5)
        assert np.all(np.diff(scores) <= 0)
    # every row, each once, when k covers them all
    rows, _ = index.search(data[0], 10_000, nprobe=index.nlist)
    assert sorted(rows.tolist()) == list(range(3_000))


def test_default_probe_finds_nearly_all_neighbours_of_clustered_rows() -> None:
    data = clustered(5_000)
    index = ann.IVFIndex.build(data, seed=0)
    assert index.nlist > ann.DEFAULT_NPROBE  # not an exhaustive scan in disguise
    queries = unit(data[:50] + 0.05 * np.random.default_rng(9).standard_normal((50, DIMENSION)))
    hits = sum(
        len(set(found(index, q, 10, ann.DEFAULT_NPROBE)) & set(exact(data, q, 10))) for q in queries
    )
    assert hits / 500 >= 0.95
    # one list is much less work and still finds the nearest row most of the time
    assert sum(found(index, q, 1, 1) == exact(data, q, 1) for q in queries) >= 30


def test_one_list_reads_only_that_list() -> None:
    data = clustered(2_000)
    index = ann.IVFIndex.build(data, seed=0)
    query = data[7]
    rows, _ = index.search(query, 2_000, nprobe=1)
    nearest = int(np.argmax(index.centroids @ query))
    filed = np.argmax(data @ index.centroids.T, axis=1)  # each row in its best list
    assert sorted(rows.tolist()) == np.flatnonzero(filed == nearest).tolist()


def test_the_same_seed_trains_the_same_centroids() -> None:
    data = clustered(2_000)
    first, second = (ann.IVFIndex.build(data, seed=3) for _ in range(2))
    np.testing.assert_array_equal(first.centroids, second.centroids)
    query = data[11]
    assert found(first, query, 10, 4) == found(second, query, 10, 4)
    other = ann.IVFIndex.build(data, seed=4)
    assert not np.array_equal(first.centroids, other.centroids)
    np.testing.assert_allclose(np.linalg.norm(first.centroids, axis=1), 1.0, rtol=1e-5)


def test_trained_centroids_can_be_reused() -> None:
    data = clustered(2_000)
    first = ann.IVFIndex.build(data, seed=0)
    more = np.concatenate([data, clustered(500, seed=8)])
    second = ann.IVFIndex.build(more, centroids=first.centroids, trained_rows=first.trained_rows)
    assert second.centroids is first.centroids and second.trained_rows == 2_000
    assert len(second) == 2_500
    query = more[2_100]
    assert found(second, query, 5, second.nlist) == exact(more, query, 5)


@pytest.mark.parametrize("rows", [0, 1, 2, 7])
def test_empty_and_tiny_inputs(rows: int) -> None:
    data = clustered(rows) if rows else np.zeros((0, DIMENSION), dtype=np.float32)
    index = ann.IVFIndex.build(data)
    assert len(index) == rows
    found_rows, scores = index.search(np.ones(DIMENSION, dtype=np.float32), 10)
    assert len(found_rows) == len(scores) == rows
    assert sorted(found_rows.tolist()) == list(range(rows))


def test_k_beyond_the_rows_returns_all_of_the_probed_lists() -> None:
    data = clustered(300)
    index = ann.IVFIndex.build(data)
    rows, _ = index.search(data[0], 10_000, nprobe=index.nlist)
    assert sorted(rows.tolist()) == list(range(300))


def test_bad_shapes_and_arguments_are_refused() -> None:
    index = ann.IVFIndex.build(clustered(200))
    with pytest.raises(ValueError, match="dimensions"):
        index.search(np.ones(DIMENSION + 1, dtype=np.float32), 5)
    with pytest.raises(ValueError, match="2-D"):
        ann.IVFIndex.build(np.ones(DIMENSION, dtype=np.float32))
    with pytest.raises(ValueError, match="dimensions"):
        ann.IVFIndex.build(np.ones((10, DIMENSION + 2)), centroids=index.centroids)
    with pytest.raises(ValueError, match="at least 1"):
        index.search(np.ones(DIMENSION, dtype=np.float32), 0)
    with pytest.raises(ValueError, match="at least 1"):
        ann.train_centroids(clustered(10), nlist=0)
    with pytest.raises(ValueError, match="no rows"):
        ann.train_centroids(np.zeros((0, DIMENSION), dtype=np.float32))


@pytest.mark.parametrize("kind", ["random", "clustered", "duplicated"])
def test_the_half_screen_bounds_every_row_it_leaves_out(kind: str) -> None:
    rng = np.random.default_rng(3)
    if kind == "random":
        data = unit(rng.standard_normal((700, DIMENSION)))
    elif kind == "clustered":
        data = clustered(700, seed=4)
    else:  # a few rows many times over: scores tie far past k
        data = np.repeat(unit(rng.standard_normal((7, DIMENSION))), 100, axis=0)
    screen = ann.HalfScreen.build(data, parts=3)
    for number in range(0, 700, 70):
        query = data[number] + 0.01 * rng.standard_normal(DIMENSION).astype(np.float32)
        found = screen.search(query, 40)
        scores = data @ query
        assert len(found.rows) == 3 * 40 == len(set(found.rows.tolist()))
        assert np.abs(scores[found.rows] - found.scores).max() <= screen.error(query)
        left_out = np.setdiff1d(np.arange(len(data)), found.rows)
        assert scores[left_out].max() <= found.unseen
    everything = screen.search(data[0], 1_000)
    assert sorted(everything.rows.tolist()) == list(range(700))
    assert everything.unseen == -np.inf


# -- semantic search with the index ---------------------------------------------------

MESSAGES = 600  # per user, above the lowered threshold


class TableEmbedder:
    """``"m<i>"`` embeds to row ``i`` of a clustered table, ``"q<i>"`` to a query near row
    ``i``: both users get the very same vectors, so a leak would rank at the top."""

    name = "test-table-32"
    dimension = DIMENSION

    def __init__(self) -> None:
        self.rows = clustered(MESSAGES, seed=11, centres=12)
        noise = 0.05 * np.random.default_rng(12).standard_normal(self.rows.shape)
        self.queries = unit(self.rows + noise)

    def embed(self, texts: list[str]) -> np.ndarray:
        table = {"m": self.rows, "q": self.queries}
        return np.stack([table[text[0]][int(text[1:])] for text in texts])


# The index sits above the store, so one backend is enough for what concerns only it;
# the test of users and filters runs on every backend.
SQLITE_ONLY = pytest.mark.parametrize("vault", ["sqlite"], indirect=True)
BOB: set[str] = set()  # the ids of bob's messages


@pytest.fixture
def indexed(vault: chatkeep.Vault, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    monkeypatch.setattr(semantic, "ANN_MIN_ROWS", 100)
    # 600 rows make 24 lists: probe a third of them, not all (the default, 32, would)
    monkeypatch.setattr(ann, "DEFAULT_NPROBE", 8)
    semantic._MATRICES.clear()
    BOB.clear()
    store = vault.store
    for user in ("alice", "bob"):
        store.add_user(user)
        for runtime in ("home", "work"):
            store.create_runtime(user, runtime)
        halves = (("home", range(MESSAGES // 2)), ("work", range(MESSAGES // 2, MESSAGES)))
        for runtime, half in halves:
            conversation = store.create_conversation(user, runtime, title=f"{user} {runtime}").id
            added = store.append_messages(
                user,
                conversation,
                [
                    (chatkeep.user_message if i % 2 else chatkeep.assistant_message)(f"m{i}")
                    for i in half
                ],
            )
            if user == "bob":
                BOB.update(message.id for message in added)
    index_pending(store, TableEmbedder())
    yield store
    semantic._MATRICES.clear()


def ids(store: Store, user: str, query: str, **filters: str) -> list[str | None]:
    page = semantic_search(
        store, user, query, embedder=TableEmbedder(), filters=SearchFilters(**filters), limit=10
    )
    return [hit.message_id for hit in page.hits]


def matrix_of(user: str) -> semantic._Matrix:
    return next(m for key, m in semantic._MATRICES.items() if key[1] == user)


def test_semantic_search_through_the_index_stays_inside_the_user_and_filters(
    indexed: Store,
) -> None:
    store = indexed
    assert len(BOB) == MESSAGES
    for number in range(0, MESSAGES, 37):
        query = f"q{number}"
        plain = semantic_search(store, "alice", query, embedder=TableEmbedder(), limit=10)
        assert matrix_of("alice").index is not None
        assert len(plain.hits) == 10 and plain.has_more
        assert not {hit.message_id for hit in plain.hits} & BOB
        assert {hit.conversation_title for hit in plain.hits} <= {"alice home", "alice work"}
        narrowed = semantic_search(
            store,
            "alice",
            query,
            embedder=TableEmbedder(),
            filters=SearchFilters(role="user", runtime_id="work"),
            limit=10,
        )
        assert narrowed.hits
        assert {(h.role, h.conversation_title) for h in narrowed.hits} == {("user", "alice work")}


@SQLITE_ONLY
def test_the_index_agrees_with_brute_force(indexed: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    queries = [f"q{number}" for number in range(0, MESSAGES, 29)]
    probes: list[int] = []
    search = ann.IVFIndex.search

    def recorded(self: ann.IVFIndex, query: np.ndarray, k: int, nprobe: int = 1) -> object:
        probes.append(nprobe)
        return search(self, query, k, nprobe)

    with monkeypatch.context() as patch:
        patch.setattr(ann.IVFIndex, "search", recorded)
        approximate = [ids(indexed, "alice", q) for q in queries]
    nlist = matrix_of("alice").index.nlist  # type: ignore[union-attr]
    assert probes and max(probes) < nlist  # the probed lists alone answered these
    filtered = [ids(indexed, "alice", q, role="user") for q in queries]
    monkeypatch.setattr(semantic, "ANN_MIN_ROWS", 10**9)
    semantic._MATRICES.clear()
    exact = [ids(indexed, "alice", q) for q in queries]
    assert matrix_of("alice").index is None
    overlap = [len(set(a) & set(b)) / 10 for a, b in zip(approximate, exact, strict=True)]
    assert sum(overlap) / len(overlap) >= 0.95
    assert filtered == [ids(indexed, "alice", q, role="user") for q in queries]


@SQLITE_ONLY
def test_too_few_candidates_in_the_probed_lists_fall_back_to_every_row(
    indexed: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    search = ann.IVFIndex.search
    exhaustive: list[int] = []

    def one_list(self: ann.IVFIndex, query: np.ndarray, k: int, nprobe: int = 1) -> object:
        if nprobe >= self.nlist:  # the exact fallback: every list
            exhaustive.append(k)
            return search(self, query, k, nprobe)
        return search(self, query, k, 1)

    # The filter passes 150 messages; a single list holds far fewer, so the index
    # cannot fill the page and every row is scored: the exact answer.
    monkeypatch.setattr(ann.IVFIndex, "search", one_list)
    narrow = ids(indexed, "alice", "q5", runtime_id="home", role="user")
    assert matrix_of("alice").index is not None and exhaustive
    page = semantic_search(
        indexed,
        "alice",
        "q5",
        embedder=TableEmbedder(),
        filters=SearchFilters(runtime_id="home", role="user"),
        limit=10,
        offset=140,
    )
    assert len(page.hits) == 10 and not page.has_more  # 150 user messages at home
    monkeypatch.setattr(semantic, "ANN_MIN_ROWS", 10**9)
    semantic._MATRICES.clear()
    assert ids(indexed, "alice", "q5", runtime_id="home", role="user") == narrow
    assert len(narrow) == 10


@SQLITE_ONLY
def test_a_new_version_keeps_the_trained_centroids(indexed: Store) -> None:
    ids(indexed, "alice", "q1")
    before = matrix_of("alice")
    assert before.vectors is None  # the index holds the only copy
    conversation = indexed.route("alice", "home").id
    indexed.append_message("alice", conversation, chatkeep.user_message("m3"))
    index_pending(indexed, TableEmbedder())
    ids(indexed, "alice", "q1")
    after = matrix_of("alice")
    assert after.version != before.version
    assert after.index is not None and before.index is not None
    assert after.index.centroids is before.index.centroids
    assert len(after.keys) == len(before.keys) + 1 == len(after.index)


@SQLITE_ONLY
def test_the_screened_search_ranks_exactly_as_scoring_every_row(
    indexed: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    def answers() -> list[list[str | None]]:
        semantic._MATRICES.clear()
        found = []
        for number in range(0, MESSAGES, 41):
            query = f"q{number}"
            found += [ids(indexed, "alice", query), ids(indexed, "alice", query, role="user")]
            page = semantic_search(
                indexed,
                "alice",
                query,
                embedder=TableEmbedder(),
                filters=SearchFilters(runtime_id="home", role="user"),
                limit=10,
                offset=140,
            )
            found.append([hit.message_id for hit in page.hits])
        return found

    monkeypatch.setattr(semantic, "ANN_MIN_ROWS", 10**9)
    monkeypatch.setattr(ann, "SCREEN_THREADS", 2)
    exact = answers()
    assert matrix_of("alice").screen is None
    monkeypatch.setattr(semantic, "SCREEN_MIN_ROWS", 100)
    fallbacks: list[int] = []
    everywhere = semantic._everywhere

    def counted(scores: np.ndarray, depth: int) -> Iterator[tuple[int, float]]:
        fallbacks.append(depth)
        return everywhere(scores, depth)

    monkeypatch.setattr(semantic, "_everywhere", counted)
    assert answers() == exact
    assert matrix_of("alice").screen is not None
    assert not fallbacks  # the screen's candidates were enough
    # Were the half-precision scores far less certain, every search would go on to
    # score every row past the first candidate: still the same answers.
    monkeypatch.setattr(ann, "HALF_ERROR", 10.0)
    assert answers() == exact
    assert fallbacks


def _screened_matrix(vectors: np.ndarray) -> semantic._Matrix:
    return semantic._Matrix(
        version=(0, 0),
        keys=np.arange(len(vectors), dtype=np.int64),
        chunks=np.zeros(len(vectors), dtype=np.int64),
        vectors=vectors,
        owner=weakref.ref(_screened_matrix),  # (no store: never looked up by one)
        screen=ann.HalfScreen.build(vectors, parts=2),
    )


def _order(pairs: Iterator[tuple[int, float]], count: int) -> list[int]:
    return [row for row, _ in list(pairs)[:count]]


@pytest.mark.parametrize("scale", [1.0, 1e-6, 1e-8, 1e5])
def test_the_screen_ranks_exactly_at_any_scale(scale: float) -> None:
    """Tiny rows round to float16's subnormals or to zero, huge ones beyond its range:
    the error bound covers the first, and the second get no screen at all (every row
    scored)."""
    data = np.ascontiguousarray(clustered(3_000, seed=5) * np.float32(scale))
    matrix = _screened_matrix(data)
    for number in range(0, 3_000, 300):
        query = clustered(3_000, seed=5)[number]
        every = semantic._everywhere(data @ query, 3_000)
        exact = [row for row, _ in every][:300]
        assert _order(semantic._screened(matrix, query, 64), 300) == exact


def test_nan_in_a_row_or_the_query_falls_back_to_every_row() -> None:
    data = clustered(2_000, seed=6)
    data[777] = np.nan
    matrix = _screened_matrix(data)
    assert sum(1 for _ in semantic._screened(matrix, data[5].copy(), 64)) == 2_000
    nan_query = np.full(DIMENSION, np.nan, dtype=np.float32)
    assert (
        sum(1 for _ in semantic._screened(_screened_matrix(clustered(500)), nan_query, 64)) == 500
    )


def test_the_screen_works_in_a_forked_child() -> None:
    data = clustered(1_000, seed=7)
    screen = ann.HalfScreen.build(data, parts=2)
    expected = screen.search(data[0], 10).rows.tolist()
    child = os.fork()
    if child == 0:  # the pool's threads are the parent's: the child must make its own
        signal.alarm(20)
        ok = screen.search(data[0], 10).rows.tolist() == expected
        os._exit(0 if ok else 1)
    _, status = os.waitpid(child, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
