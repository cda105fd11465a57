"""Search by meaning, and hybrid search that fuses it with full text.

Messages are cut into chunks (a model reads only the start of a long text), each chunk
embedded once by the chosen :class:`~chatkeep.search_embed.Embedder` and its vector kept
in the vault beside the message. Indexing is incremental: :func:`index_pending` embeds
only what no vector of that embedder covers yet, so it can run after every import, on
a schedule, or after each append. A semantic search scores every allowed chunk by cosine
similarity (exact, brute force with NumPy) and keeps each message's best chunk.
:func:`hybrid_search` fuses the full-text and semantic rankings by reciprocal rank.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, Final

import numpy as np

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
    ranked = _ranked(store, user_id, query, chosen, filters)
    return SearchPage(
        hits=tuple(_hits(store, user_id, ranked[offset : offset + limit])),
        limit=limit,
        offset=offset,
        has_more=len(ranked) > offset + limit,
        query=parse_query(query),
    )


def _ranked(
    store: Store,
    user_id: str,
    query: str,
    embedder: Embedder,
    filters: SearchFilters | None,
) -> list[tuple[int, int, float]]:
    """(message key, best chunk, cosine) of every allowed message, best first. Scoring
    reads vectors only; messages are looked up for the page alone."""
    if not query.strip():
        return []
    rows = store.vector_rows(user_id, embedder.name, filters)
    if not rows:
        return []
    matrix = np.frombuffer(b"".join(row.vector for row in rows), dtype="<f4")
    if matrix.size % embedder.dimension:
        raise InvalidInput(
            f"stored vectors do not match the embedder {embedder.name!r}",
            hint="re-index with 'chatkeep index'",
        )
    scores = matrix.reshape(len(rows), embedder.dimension) @ embedder.embed([query])[0]
    best: dict[int, tuple[int, float]] = {}
    for index in np.argsort(-scores, kind="stable").tolist():
        row = rows[index]
        if row.pk not in best:  # the first seen is its best chunk
            best[row.pk] = (row.chunk, float(scores[index]))
    return [(pk, chunk, score) for pk, (chunk, score) in best.items()]


def _hits(store: Store, user_id: str, ranked: list[tuple[int, int, float]]) -> list[SearchHit]:
    details = {row.pk: row for row in store.vector_details(user_id, [pk for pk, _, _ in ranked])}
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
    meaning = _hits(store, user_id, _ranked(store, user_id, query, chosen, filters)[:FUSION_DEPTH])
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
