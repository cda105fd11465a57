"""Search by meaning, and hybrid search that fuses it with full text.

Messages are cut into chunks (a model reads only the start of a long text), each chunk
embedded once by the chosen :class:`~chatkeep.search_embed.Embedder` and its vector kept
in the vault beside the message. Indexing is incremental: :func:`index_pending` embeds
only what no vector of that embedder covers yet, so it can run after every import, on
a schedule, or after each append. A semantic search scores chunks by cosine similarity
and keeps each message's best chunk: every chunk (exact, brute force with NumPy), or,
from :data:`ANN_MIN_ROWS` chunks of a user on, those of the nearest lists of an IVF
index (:mod:`chatkeep.ann`, FAISS; approximate, a few percent of the work). The index
is derived: built in memory from the stored vectors when a search first needs it.
:func:`hybrid_search` fuses the full-text and semantic rankings by reciprocal rank.
"""

from __future__ import annotations

import math
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from chatkeep import ann, limits
from chatkeep.errors import InvalidInput
from chatkeep.model import searchable_text
from chatkeep.search import SearchFilters, SearchHit, SearchPage, parse_query
from chatkeep.search_embed import Embedder, default_embedder
from chatkeep.store import Store
from chatkeep.timeutil import optional_from_text
from chatkeep.validate import check_page

#: Characters per chunk, and how much consecutive chunks overlap.
CHUNK_CHARS: Final = 1_000
CHUNK_OVERLAP: Final = 100
#: Messages embedded per write transaction while indexing.
INDEX_BATCH: Final = 256
#: Reciprocal-rank-fusion constant (the usual 60) and how deep each ranking is read.
RRF_K: Final = 60
FUSION_DEPTH: Final = 100
#: From this many chunk vectors of a user (and embedder), searches read an IVF index;
#: below it, scoring every chunk is fast enough (about 8 ms at 100,000 on two cores,
#: 15 ms here at 200,000) and exact. The index, about 3 % of the work at a million
#: rows, is approximate: it pays off only where brute force gets slow.
ANN_MIN_ROWS: Final = 200_000
#: From this many (and below :data:`ANN_MIN_ROWS`), exact search first screens every
#: row in half precision on every core (:class:`~chatkeep.ann.HalfScreen`, about half
#: the time of scoring every row at full precision), then ranks the candidates exactly.
#: Below it a full scan takes a millisecond or two and loading FAISS is not worth it.
#: The screen's copy of the vectors adds half the matrix's memory.
SCREEN_MIN_ROWS: Final = 20_000


def chunks(text: str) -> list[str]:
    """``text`` cut into overlapping pieces of at most :data:`CHUNK_CHARS` characters."""
    stripped = text.strip()
    pieces: list[str] = []
    start = 0
    while start < len(stripped):
        pieces.append(stripped[start : start + CHUNK_CHARS])
        if start + CHUNK_CHARS >= len(stripped):
            break
        start += CHUNK_CHARS - CHUNK_OVERLAP
    return pieces


def index_pending(
    store: Store,
    embedder: Embedder | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Embed every message ``embedder`` has no vector for; return how many were done."""
    chosen = embedder or default_embedder()
    total = store.count_messages_to_embed(chosen.name)
    done = 0
    while True:
        batch = store.messages_to_embed(chosen.name, limit=INDEX_BATCH)
        if not batch:
            return done
        pieces: list[tuple[int, int, str]] = []
        rows: list[tuple[int, int, str, bytes]] = []
        for pk, user_id, text in batch:
            parts = chunks(text)
            if not parts:
                rows.append((pk, 0, user_id, b""))  # nothing to embed: never asked again
            pieces += [(pk, index, part) for index, part in enumerate(parts)]
        owners = {pk: user_id for pk, user_id, _ in batch}
        if pieces:
            vectors = chosen.embed([part for _, _, part in pieces])
            rows += [
                (pk, index, owners[pk], np.asarray(vector, dtype="<f4").tobytes())
                for (pk, index, _), vector in zip(pieces, vectors, strict=True)
            ]
        store.store_vectors(chosen.name, rows)
        done += len(batch)
        if progress is not None:
            progress(done, total)


def semantic_search(
    store: Store,
    user_id: str,
    query: str,
    *,
    embedder: Embedder | None = None,
    filters: SearchFilters | None = None,
    limit: int = 20,
    offset: int = 0,
) -> SearchPage:
    """Messages closest in meaning to ``query``, best first (only indexed messages)."""
    check_page(limit, offset)
    chosen = embedder or default_embedder()
    details: dict[int, Any] = {}
    ranked, more = _ranked(store, user_id, query, chosen, filters, offset + limit, details)
    return SearchPage(
        hits=tuple(_hits(store, user_id, ranked[offset : offset + limit], details)),
        limit=limit,
        offset=offset,
        has_more=more,
        query=parse_query(query),
    )


@dataclass(slots=True)
class _Matrix:
    """A user's vectors of one embedder, in memory, valid for one version: row ``i`` is
    chunk ``chunks[i]`` of message ``keys[i]``. With an index, the index holds the only
    copy of the vectors (``vectors`` is None) and its ids are these row numbers."""

    version: tuple[int, int]
    keys: npt.NDArray[np.int64]
    chunks: npt.NDArray[np.int64]
    vectors: npt.NDArray[np.float32] | None
    owner: weakref.ref[Any]  # the store these are from
    index: ann.IVFIndex | None = None
    screen: ann.HalfScreen | None = None

    @property
    def nbytes(self) -> int:
        """About how much memory this holds: the keys, and each copy of the vectors."""
        rows = len(self.keys)
        size = self.keys.nbytes + self.chunks.nbytes
        if self.vectors is not None:
            size += self.vectors.nbytes
        if self.screen is not None and self.vectors is not None:
            size += self.vectors.nbytes // 2  # float16
        if self.index is not None:
            size += rows * (self.index.dimension * 4 + 8) + self.index.centroids.nbytes
        return size


# Per (store, user, embedder), least recently searched first; re-read only when the
# stored vectors change, and bounded by limits.MAX_VECTOR_CACHE_BYTES.
_MATRICES: dict[tuple[int, str, str], _Matrix] = {}
_MATRICES_LOCK = threading.Lock()
# Ids of stores that have been collected: their matrices go at the next search. (The
# weak reference's callback may run inside any allocation, even under the lock, so it
# only appends here.)
_COLLECTED: list[int] = []
_CACHE_LINE: Final = 64


def _matrix(store: Store, user_id: str, embedder: Embedder) -> _Matrix:
    key = (id(store), user_id, embedder.name)
    with _MATRICES_LOCK:
        _drop_collected()
        cached = _MATRICES.pop(key, None)
        if cached is not None and cached.owner() is not store:
            # Another store's, which was collected and whose address this store now
            # has: its version may well equal this store's, so it must never be used.
            cached = None
        if cached is not None:
            _MATRICES[key] = cached  # the most recently searched, last
    version, rows = store.vector_snapshot(
        user_id, embedder.name, cached.version if cached else None
    )
    if rows is None and cached is not None:
        return cached
    rows = rows or []
    vectors = np.frombuffer(b"".join(row.vector for row in rows), dtype="<f4")
    if vectors.size % embedder.dimension:
        raise InvalidInput(
            f"stored vectors do not match the embedder {embedder.name!r}",
            hint="re-index with 'chatkeep index'",
        )
    fresh = _Matrix(
        version=version,
        keys=np.fromiter((row.pk for row in rows), dtype=np.int64, count=len(rows)),
        chunks=np.fromiter((row.chunk for row in rows), dtype=np.int64, count=len(rows)),
        vectors=_aligned(vectors.reshape(len(rows), embedder.dimension)),
        owner=_owner(store),
    )
    if len(rows) >= ANN_MIN_ROWS:
        fresh = _indexed(fresh, cached.index if cached else None)
    elif len(rows) >= SCREEN_MIN_ROWS:
        fresh = replace(fresh, screen=ann.HalfScreen.build(vectors.reshape(len(rows), -1)))
    with _MATRICES_LOCK:
        _MATRICES.pop(key, None)
        _MATRICES[key] = fresh
        total = sum(kept.nbytes for kept in _MATRICES.values())
        while total > limits.MAX_VECTOR_CACHE_BYTES and len(_MATRICES) > 1:
            total -= _MATRICES.pop(next(iter(_MATRICES))).nbytes  # never the one just made
    return fresh


def _owner(store: Store) -> weakref.ref[Any]:
    """A weak reference to ``store`` that notes its id in :data:`_COLLECTED` when the
    store is collected (before its address can be reused)."""
    token = id(store)
    return weakref.ref(store, lambda _gone: _COLLECTED.append(token))


def _drop_collected() -> None:
    """Forget the matrices of collected stores (call with the lock held)."""
    while _COLLECTED:
        token = _COLLECTED.pop()
        for key in [key for key in _MATRICES if key[0] == token]:
            if _MATRICES[key].owner() is None:
                del _MATRICES[key]


def _aligned(vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """A copy of ``vectors`` that owns its memory, starting on a cache line: scoring
    reads the whole matrix for every query, and BLAS reads a view into a bytes object
    (as ``frombuffer`` gives) about a tenth slower."""
    spare = _CACHE_LINE // vectors.itemsize
    block = np.empty(vectors.size + spare, dtype=np.float32)
    skip = (-block.ctypes.data % _CACHE_LINE) // vectors.itemsize
    copy = block[skip : skip + vectors.size].reshape(vectors.shape)
    copy[...] = vectors
    return copy


def _indexed(matrix: _Matrix, previous: ann.IVFIndex | None) -> _Matrix:
    """``matrix`` with an index, which takes over its vectors (no second copy). The
    centroids of ``previous`` are kept while the row count stays within a factor of two
    of the count they were trained on: no training, only filing the rows (most of the
    time)."""
    assert matrix.vectors is not None
    centroids, trained = None, None
    if (
        previous is not None
        and previous.nlist
        and previous.dimension == matrix.vectors.shape[1]
        and previous.trained_rows / 2 <= len(matrix.keys) <= previous.trained_rows * 2
    ):
        centroids, trained = previous.centroids, previous.trained_rows
    index = ann.IVFIndex.build(matrix.vectors, centroids=centroids, trained_rows=trained)
    return _Matrix(matrix.version, matrix.keys, matrix.chunks, None, matrix.owner, index)


def _ranked(
    store: Store,
    user_id: str,
    query: str,
    embedder: Embedder,
    filters: SearchFilters | None,
    wanted: int,
    details: dict[int, Any] | None = None,
) -> tuple[list[tuple[int, int, float]], bool]:
    """The best ``wanted`` (message key, best chunk, cosine) the filters allow, best
    first, and whether more exist. Scoring runs on the in-memory matrix; candidates are
    checked against ownership and filters in the store, more fetched when too few pass.
    With an index, the candidates are the rows of its nearest lists; when too few of
    them pass (narrow filters), every row is scored instead."""
    if filters is not None and filters.runtime_id is not None:
        store.get_runtime(user_id, filters.runtime_id)  # a clear error, as full text gives
    if not query.strip():
        return [], False
    matrix = _matrix(store, user_id, embedder)
    if not len(matrix.keys):
        return [], False
    vector = np.asarray(embedder.embed([query])[0], dtype=np.float32)  # as the matrix
    depth = max(256, wanted * 16)
    if matrix.index is not None:
        nearby = _nearby(matrix.index, vector, depth)
        allowed = _allowed(store, user_id, filters, matrix, nearby, wanted, details)
        if len(allowed) > wanted:
            return allowed[:wanted], True
        every = _nearby(matrix.index, vector, depth, nprobe=matrix.index.nlist)
    elif matrix.screen is not None:
        every = _screened(matrix, vector, depth)
    else:
        assert matrix.vectors is not None
        every = _everywhere(matrix.vectors @ vector, depth)
    allowed = _allowed(store, user_id, filters, matrix, every, wanted, details)
    return allowed[:wanted], len(allowed) > wanted


def _allowed(
    store: Store,
    user_id: str,
    filters: SearchFilters | None,
    matrix: _Matrix,
    candidates: Iterable[tuple[int, float]],
    wanted: int,
    details: dict[int, Any] | None = None,
) -> list[tuple[int, int, float]]:
    """(message key, chunk, score) of the first ``wanted + 1`` messages among
    ``candidates`` (matrix row, score; best first) that the user owns and the filters
    allow, or all of them; checked in the store in batches that grow. With no filter
    but the conversation's state, the check is the lookup of the messages' details
    (which carry the state), kept in ``details`` for the hits: one query, not two."""
    states = _states_only(filters)
    seen: set[int] = set()
    allowed: list[tuple[int, int, float]] = []
    rows = iter(candidates)
    # Without filters nearly every candidate passes (only the trash is left out), so
    # the first check asks about little more than a page; each next batch is 4x larger.
    step = max(16, 2 * (wanted + 1))
    while len(allowed) <= wanted:
        batch: list[tuple[int, int, float]] = []
        for index, score in rows:
            pk = int(matrix.keys[index])
            if pk not in seen:  # the first seen is the message's best chunk
                seen.add(pk)
                batch.append((pk, int(matrix.chunks[index]), score))
                if len(batch) >= step:
                    break
        if not batch:
            break
        keys = [pk for pk, _, _ in batch]
        found = store.vector_details(user_id, keys) if states is not None else []
        if states is not None and found and all(hasattr(row, "state") for row in found):
            passing = {row.pk for row in found if row.state in states}
            if details is not None:
                details.update((row.pk, row) for row in found if row.pk in passing)
        else:
            passing = store.allowed_message_keys(user_id, keys, filters)
        allowed += [item for item in batch if item[0] in passing]
        step *= 4
    return allowed


def _everywhere(scores: npt.NDArray[np.float32], depth: int) -> Iterator[tuple[int, float]]:
    """Every row, best first: the best ``depth`` sorted, the rest sorted when reached."""
    order = _best_first(scores, depth)
    yield from ((index, float(scores[index])) for index in order)
    if len(order) < len(scores):
        done = set(order)
        rest = (index for index in _best_first(scores, len(scores)) if index not in done)
        yield from ((index, float(scores[index])) for index in rest)


def _screened(
    matrix: _Matrix, vector: npt.NDArray[np.float32], depth: int
) -> Iterator[tuple[int, float]]:
    """Every row, best first, exactly as :func:`_everywhere` ranks them: the screen's
    candidates by their exact scores for as long as no row it left out could score
    as well (its error bound), then, past that (narrow filters), every row scored."""
    assert matrix.vectors is not None and matrix.screen is not None
    found = matrix.screen.search(vector, depth)
    # Not a BLAS product: its threads spin for a while after it, taking the cores the
    # next search's screen runs on.
    exact = (matrix.vectors[found.rows] * vector).sum(axis=1, dtype=np.float32)
    done: set[int] = set()
    for position in np.lexsort((found.rows, -exact)).tolist():
        score = float(exact[position])
        if score <= found.unseen:
            break  # a row the screen left out might score as well as this one
        done.add(int(found.rows[position]))
        yield int(found.rows[position]), score
    else:
        if found.unseen == -math.inf:
            return  # every row was a candidate
    rest = _everywhere(matrix.vectors @ vector, depth + len(done))
    yield from ((row, score) for row, score in rest if row not in done)


def _nearby(
    index: ann.IVFIndex, vector: npt.NDArray[np.float32], depth: int, nprobe: int | None = None
) -> Iterator[tuple[int, float]]:
    """The rows of the ``nprobe`` lists nearest ``vector`` (every list: every row, exactly
    ranked), best first, as :func:`_everywhere`: the best ``depth``, then the rest."""
    probes = ann.DEFAULT_NPROBE if nprobe is None else nprobe
    rows, scores = index.search(vector, depth, probes)
    yield from zip(rows.tolist(), scores.tolist(), strict=True)
    if len(rows) == depth:
        done = set(rows.tolist())
        more, scores = index.search(vector, len(index), probes)
        yield from (
            (row, score)
            for row, score in zip(more.tolist(), scores.tolist(), strict=True)
            if row not in done
        )


def _best_first(scores: npt.NDArray[np.float32], count: int) -> list[int]:
    """Indexes of the ``count`` highest scores, highest first (ties by index)."""
    if count >= len(scores):
        return np.argsort(-scores, kind="stable").tolist()  # type: ignore[no-any-return]
    top = np.argpartition(-scores, count - 1)[:count]
    return top[np.lexsort((top, -scores[top]))].tolist()  # type: ignore[no-any-return]


def _states_only(filters: SearchFilters | None) -> tuple[str, ...] | None:
    """The conversation states allowed when ``filters`` restrict nothing else, or None."""
    chosen = filters or SearchFilters()
    if replace(chosen, include_archived=False) != SearchFilters():
        return None
    return chosen.states


def _hits(
    store: Store,
    user_id: str,
    ranked: list[tuple[int, int, float]],
    known: dict[int, Any] | None = None,
) -> list[SearchHit]:
    details = dict(known or {})
    missing = [pk for pk, _, _ in ranked if pk not in details]
    if missing:
        details.update((row.pk, row) for row in store.vector_details(user_id, missing))
    return [_hit(details[pk], chunk, score) for pk, chunk, score in ranked if pk in details]


def _hit(row: Any, chunk: int, score: float) -> SearchHit:
    text = searchable_text(row.content)
    start = chunk * (CHUNK_CHARS - CHUNK_OVERLAP)
    return SearchHit(
        conversation_id=row.conversation_id,
        conversation_title=row.title,
        runtime_id=row.runtime_id,
        message_id=row.message_id,
        role=row.role,
        created_at=optional_from_text(row.created_at),
        snippet=text[start : start + 200],
        highlights=(),
        score=score,
    )


def hybrid_search(
    store: Store,
    user_id: str,
    query: str,
    *,
    embedder: Embedder | None = None,
    filters: SearchFilters | None = None,
    limit: int = 20,
    offset: int = 0,
) -> SearchPage:
    """Full-text and semantic rankings fused by reciprocal rank (RRF, k = 60)."""
    check_page(limit, offset)
    chosen = embedder or default_embedder()
    words = store.search(user_id, query, filters=filters, limit=FUSION_DEPTH).hits
    details: dict[int, Any] = {}
    ranked = _ranked(store, user_id, query, chosen, filters, FUSION_DEPTH, details)[0]
    meaning = _hits(store, user_id, ranked, details)
    fused: dict[tuple[str, str | None], float] = {}
    chosen_hit: dict[tuple[str, str | None], SearchHit] = {}
    for ranking in (words, meaning):
        for rank, hit in enumerate(ranking, start=1):
            key = (hit.conversation_id, hit.message_id)
            fused[key] = fused.get(key, 0.0) + 1.0 / (RRF_K + rank)
            # Prefer the full-text hit: its snippet carries highlights.
            chosen_hit.setdefault(key, hit)
    ordered = sorted(fused, key=lambda key: (-fused[key], key))
    window = ordered[offset : offset + limit]
    hits = tuple(_rescored(chosen_hit[key], fused[key]) for key in window)
    return SearchPage(
        hits=hits,
        limit=limit,
        offset=offset,
        has_more=len(ordered) > offset + limit,
        query=parse_query(query),
    )


def _rescored(hit: SearchHit, score: float) -> SearchHit:
    return replace(hit, score=score)
