"""Full-text search on SQLite FTS5: compiling a :class:`SearchQuery`, filtering, ranking.

Every term is double-quoted (quotes doubled) before it reaches MATCH, so user text can
never be read as FTS5 syntax: column filters, NEAR, operators and stray quotes are all
just words. Ranking is bm25 over message text, plus the conversation title's bm25
weighted :data:`TITLE_WEIGHT` times; a conversation whose title matches but none of its
messages does appears once, as a title match.
"""

from __future__ import annotations

import sqlite3
from collections import namedtuple
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from chatkeep.backends.search_base import (
    TITLE_WEIGHT,
    VECTOR_VERSION_SQL,
    SearchEngine,
    conditions,
)
from chatkeep.search import SearchFilters, SearchHit, SearchQuery, Term, spaced_cjk

#: Candidates ranked first, and the most before giving up for the full query.
_FIRST_CANDIDATES: Final = 16
_MAX_CANDIDATES: Final = 16_384
#: Most keys in one IN list (well under SQLite's limit on bound parameters), and most
#: matching titles the fast path takes (two values each) before the full query runs.
_IN_CHUNK: Final = 500
_MAX_TITLES: Final = 4_000


_TITLES_SQL: Final = (
    "SELECT c.id AS conversation_id, bm25(conversations_fts) AS rank,"
    " c.title AS title, c.runtime_id AS runtime_id"
    " FROM conversations_fts JOIN conversations c ON c.id = conversations_fts.conversation_id"
    " WHERE conversations_fts MATCH :q AND c.user_id = :user AND "
)
_ALLOWED_SQL: Final = (
    "SELECT m.pk AS pk, c.id AS conversation_id"
    " FROM messages m CROSS JOIN conversations c ON c.id = m.conversation_id"
    " WHERE m.pk IN (:pks) AND m.user_id = :user AND c.user_id = :user AND "
)
_DETAILS_SQL: Final = (
    "SELECT m.pk AS pk, m.id AS message_id, m.role AS role, m.created_at AS created_at,"
    " m.content AS content, c.id AS conversation_id, c.title AS title,"
    " c.runtime_id AS runtime_id, c.state AS state"
    " FROM messages m CROSS JOIN conversations c ON c.id = m.conversation_id"
    " WHERE m.pk IN (:pks) AND m.user_id = :user AND c.user_id = :user"
)


def _placeholders(prefix: str, values: Sequence[Any], into: dict[str, Any]) -> str:
    """Named placeholders for an IN list (``:k0, :k1, …``), their values put ``into``."""
    names = [f"{prefix}{n}" for n in range(len(values))]
    into.update(zip(names, values, strict=True))
    return ", ".join(f":{name}" for name in names)


@dataclass(frozen=True, order=True, slots=True)
class _Ranked:
    """A ranked page row; sorts as the full query orders (score, conversation, key)."""

    score: float
    conversation_id: str
    pk: int | None

    def __init__(self, pk: int | None, conversation_id: str, score: float) -> None:
        object.__setattr__(self, "score", float(score))
        object.__setattr__(self, "conversation_id", conversation_id)
        object.__setattr__(self, "pk", pk)


def _title_only(
    titles: dict[str, Any], passing: Iterable[Any], weight: float, worst: float | None
) -> list[_Ranked]:
    """Title hits of the matching ``titles`` none of whose messages match, from the
    ranked candidates alone. A message matching in a titled conversation scores better
    than its title alone (bm25 is negative), so when the title alone beats the
    ``worst`` candidate, such a message would be a candidate: a title with none among
    the candidates has none at all. Titles scoring no better than ``worst`` are left
    out; the caller's exactness check keeps them off the page. ``worst`` None: every
    match is a candidate."""
    with_messages = {row.conversation_id for row in passing}
    return [
        _Ranked(None, cid, weight * row.rank)
        for cid, row in titles.items()
        if cid not in with_messages and (worst is None or weight * row.rank < worst)
    ]


def _fetch(conn: Connection, sql: str, params: dict[str, Any]) -> list[Any]:
    """The rows of ``sql`` (``:name`` placeholders), run on the driver's own connection
    inside the caller's transaction, as named tuples: a search runs two or three small
    statements, and SQLAlchemy's compile and result layers cost more than they do."""
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        rows = cursor.execute(sql, params).fetchall()
        shape = _row_shape(tuple(column[0] for column in cursor.description))
    except sqlite3.Error as exc:
        raise DBAPIError.instance(sql, params, exc, sqlite3.Error) from exc
    finally:
        cursor.close()
    return [shape._make(row) for row in rows]


@lru_cache(maxsize=64)
def _row_shape(columns: tuple[str, ...]) -> Any:
    return namedtuple("Row", columns)  # columns known only at run time


def _term(term: Term) -> str:
    quoted = '"' + spaced_cjk(term.text).replace('"', '""') + '"'
    return quoted + "*" if term.prefix else quoted


def fts5_expression(query: SearchQuery) -> str:
    """The MATCH expression for ``query``; only quoted terms and FTS5's own operators."""
    groups = ["(" + " OR ".join(_term(t) for t in group) + ")" for group in query.required]
    expression = " AND ".join(groups)
    if query.excluded:
        excluded = " OR ".join(_term(t) for t in query.excluded)
        expression = f"({expression}) NOT ({excluded})"
    return expression


class SqliteSearch(SearchEngine):
    """Runs searches and rebuilds the index on one SQLite database."""

    # CROSS JOIN keeps SQLite from starting at the conversations (by state) and walking
    # all their messages: the candidate keys are the selective side.
    _KEY_JOIN = "CROSS JOIN"

    def search(
        self,
        conn: Connection,
        user_id: str,
        query: SearchQuery,
        filters: SearchFilters,
        *,
        limit: int,
        offset: int,
    ) -> tuple[list[SearchHit], bool]:
        if query.empty:
            return [], False
        params: dict[str, Any] = {
            "q": fts5_expression(query),
            "user": user_id,
            "weight": TITLE_WEIGHT,
            "limit": limit + 1,  # one more tells whether another page follows
            "offset": offset,
        }
        on_conversation, on_message = conditions(filters, params)
        wanted = offset + limit + 1
        best = self._best_candidates(conn, params, on_conversation, on_message, wanted)
        if best is not None:
            ranked, known, titles = best
            page = ranked[offset : offset + limit]
            hits = self.page_hits(conn, user_id, query, page, known, titles)
            return hits, len(ranked) > offset + limit
        exact = _fetch(conn, self._ranking_sql(on_conversation, on_message), params)
        return self.page_hits(conn, user_id, query, exact[:limit]), len(exact) > limit

    @staticmethod
    def _ranking_sql(on_conversation: list[str], on_message: list[str]) -> str:
        conversation_sql = " AND ".join(on_conversation)
        message_sql = "".join(f" AND {fragment}" for fragment in on_message)
        # A title-only match has no message to satisfy message-level filters.
        title_only = (
            ""
            if on_message
            else f"""
            UNION ALL
            SELECT NULL, c.id, :weight * bm25(conversations_fts)
            FROM conversations_fts
            JOIN conversations c ON c.id = conversations_fts.conversation_id
            WHERE conversations_fts MATCH :q AND c.user_id = :user AND {conversation_sql}
              AND c.id NOT IN (SELECT conversation_id FROM hits)
            """  # noqa: S608 - fragments come from the fixed tables above, values are bound
        )
        return f"""
            WITH titles AS MATERIALIZED (
                SELECT conversation_id, bm25(conversations_fts) AS rank
                FROM conversations_fts WHERE conversations_fts MATCH :q
            ),
            hits AS (
                SELECT m.pk AS pk, c.id AS conversation_id,
                       bm25(messages_fts) + :weight * coalesce(t.rank, 0) AS score
                FROM messages_fts
                JOIN messages m ON m.pk = messages_fts.rowid
                JOIN conversations c ON c.id = m.conversation_id
                LEFT JOIN titles t ON t.conversation_id = c.id
                WHERE messages_fts MATCH :q AND m.user_id = :user AND c.user_id = :user
                  AND {conversation_sql}{message_sql}
            )
            SELECT pk, conversation_id, score FROM hits
            {title_only}
            ORDER BY score, conversation_id, pk
            LIMIT :limit OFFSET :offset
        """  # noqa: S608 - fragments come from the fixed tables above, values are bound

    def _titles(
        self, conn: Connection, params: dict[str, Any], on_conversation: list[str]
    ) -> dict[str, Any]:
        """The user's conversations whose title matches and which the filters allow, with
        the title's bm25 (``rank``), title and runtime, by id."""
        sql = _TITLES_SQL + " AND ".join(on_conversation)
        return {row.conversation_id: row for row in _fetch(conn, sql, params)}

    def _allowed(
        self,
        conn: Connection,
        params: dict[str, Any],
        on_conversation: list[str],
        on_message: list[str],
        candidates: Sequence[Any],
    ) -> dict[int, str]:
        """As the base query, as the driver's own statement (no compile per call)."""
        keys = [row.pk for row in candidates]
        where = " AND ".join(on_conversation + on_message)
        allowed: dict[int, str] = {}
        for start in range(0, len(keys), _IN_CHUNK):
            values = dict(params)
            placeholders = _placeholders("k", keys[start : start + _IN_CHUNK], values)
            sql = _ALLOWED_SQL.replace(":pks", placeholders) + where
            allowed.update((row.pk, row.conversation_id) for row in _fetch(conn, sql, values))
        return allowed

    def vector_version(self, conn: Connection, user_id: str, embedder: str) -> tuple[int, int]:
        """As the base query, as the driver's own statement: every semantic search asks."""
        rows = _fetch(conn, VECTOR_VERSION_SQL, {"user": user_id, "embedder": embedder})
        return (int(rows[0].version or 0) if rows else 0), 0

    def vector_details(self, conn: Connection, user_id: str, pks: Sequence[int]) -> list[Any]:
        """As the base query, as the driver's own statement (a page of hits needs it)."""
        if not pks:
            return []
        values: dict[str, Any] = {"user": user_id}
        sql = _DETAILS_SQL.replace(":pks", _placeholders("k", pks, values))
        return _fetch(conn, sql, values)

    def _best_candidates(
        self,
        conn: Connection,
        params: dict[str, Any],
        on_conversation: list[str],
        on_message: list[str],
        wanted: int,
    ) -> tuple[list[_Ranked], dict[int, Any], dict[str, Any]] | None:
        """The best ``wanted`` hits, exactly as the full query ranks them, without ranking
        every match with joins: FTS5 ranks its best K messages (as fast as a bare MATCH),
        the user and the filters are checked on those K alone, and K grows only when too
        few pass. Messages of conversations whose title matches get the title's weight
        inside the same scan, so the K are the best by the full query's own score; a
        title match with no matching message is added as a title hit. Exact because any
        other match beyond the K-th scores no better than it. None: too many fail (or
        too many titles match); run the full query.
        The details of the candidates that pass (as :meth:`vector_details` gives them)
        and of the matching titles come with them: no second query for the page."""
        titles = self._titles(conn, params, on_conversation)
        if len(titles) > _MAX_TITLES:
            return None  # too many bound values for one statement: the full query
        sql, values = self._candidates_sql(params, on_conversation, on_message, titles)
        # Most candidates pass when nothing but the user filters (one user, few in the
        # trash): a few spare, since each candidate costs two lookups by key while
        # ranking more costs almost nothing; with message filters far fewer pass, so
        # rank more at once.
        size = max(_FIRST_CANDIDATES, wanted * 16 if on_message else wanted + wanted // 4 + 4)
        while size <= _MAX_CANDIDATES:
            rows = _fetch(conn, sql, {**values, "k": size})
            everything = len(rows) < size  # every match was ranked
            known = {row.pk: row for row in rows if row.conversation_id is not None}
            kept = [_Ranked(row.pk, row.conversation_id, row.score) for row in known.values()]
            if titles and not on_message:  # (a title match has no message to filter)
                worst = None if everything else rows[-1].score
                kept += _title_only(titles, known.values(), float(params["weight"]), worst)
            kept.sort()
            if everything or (len(kept) >= wanted and kept[wanted - 1].score < rows[-1].score):
                return kept, known, titles
            size *= 4
        return None

    @staticmethod
    def _candidates_sql(
        params: dict[str, Any],
        on_conversation: list[str],
        on_message: list[str],
        titles: dict[str, Any],
    ) -> tuple[str, dict[str, Any]]:
        """One statement: FTS5's best K (``:k``) by the full query's score, each with its
        details when the user owns it and the filters allow it (NULL conversation: not
        the user's, or filtered out); and its bound values."""
        values = dict(params)
        score = "bm25(messages_fts)"
        boost = ""
        if titles:
            # A message of a conversation whose title matches (and which the user owns
            # and the filters allow) gets the title's weighted bm25 added, in the same
            # scan: every match is ranked by the full query's score at once.
            pairs = ", ".join(f"(:t{n}, :r{n})" for n in range(len(titles)))
            for n, row in enumerate(titles.values()):
                values[f"t{n}"], values[f"r{n}"] = row.conversation_id, row.rank
            boost = (
                f"titles(cid, rank) AS (VALUES {pairs}),"  # noqa: S608 - placeholders only
                " titled AS MATERIALIZED (SELECT m.pk AS pk, titles.rank AS rank"
                " FROM titles JOIN messages m ON m.conversation_id = titles.cid),"
            )
            score = (
                "bm25(messages_fts) + CASE WHEN rowid IN (SELECT pk FROM titled) THEN"
                " :weight * (SELECT rank FROM titled WHERE titled.pk = messages_fts.rowid)"
                " ELSE 0 END"
            )
        # Conditions on the message alone are checked before its conversation is read.
        on_row = "".join(f" AND {f}" for f in on_message if "c." not in f)
        where = " AND ".join(on_conversation + [f for f in on_message if "c." in f])
        # The LEFT JOINs keep the candidates as the outer loop: one lookup by key each.
        # bm25() ranks as the "rank" column does, a third faster here.
        sql = (
            f"WITH {boost} candidates AS MATERIALIZED (SELECT rowid AS pk,"  # noqa: S608 - fixed fragments, bound values
            f" {score} AS score FROM messages_fts WHERE messages_fts MATCH :q"
            " ORDER BY score LIMIT :k)"
            " SELECT candidates.pk AS pk, candidates.score AS score,"
            " c.id AS conversation_id, m.id AS message_id, m.role AS role,"
            " m.created_at AS created_at,"
            " CASE WHEN c.id IS NOT NULL THEN m.content END AS content,"
            " c.title AS title, c.runtime_id AS runtime_id"
            " FROM candidates"
            f" LEFT JOIN messages m ON m.pk = candidates.pk AND m.user_id = :user{on_row}"
            " LEFT JOIN conversations c ON c.id = m.conversation_id"
            f" AND c.user_id = :user AND {where}"
            " ORDER BY candidates.score"
        )
        return sql, values

    def rebuild(self, conn: Connection) -> int:
        """Drop every index entry and derive them again from the messages and titles."""
        conn.execute(text("INSERT INTO messages_fts (messages_fts) VALUES ('delete-all')"))
        conn.execute(
            text("INSERT INTO messages_fts (rowid, body) SELECT pk, body FROM message_search")
        )
        conn.execute(text("DELETE FROM conversations_fts"))
        conn.execute(
            text(
                "INSERT INTO conversations_fts (title, conversation_id)"
                " SELECT chatkeep_index_text(title), id FROM conversations"
            )
        )
        return int(conn.execute(text("SELECT count(*) FROM messages_fts_docsize")).scalar_one())

    def drift(self, conn: Connection) -> list[str]:
        """What is out of step between the index and the rows it is derived from."""
        problems = []
        indexed = conn.execute(text("SELECT count(*) FROM messages_fts_docsize")).scalar_one()
        stored = conn.execute(text("SELECT count(*) FROM messages")).scalar_one()
        if indexed != stored:
            problems.append(f"the search index holds {indexed} messages, the store {stored}")
        titles = conn.execute(text("SELECT count(*) FROM conversations_fts")).scalar_one()
        conversations = conn.execute(text("SELECT count(*) FROM conversations")).scalar_one()
        if titles != conversations:
            problems.append(
                f"the search index holds {titles} titles, the store {conversations} conversations"
            )
        return problems
