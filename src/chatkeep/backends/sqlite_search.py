"""Full-text search on SQLite FTS5: compiling a :class:`SearchQuery`, filtering, ranking.

Every term is double-quoted (quotes doubled) before it reaches MATCH, so user text can
never be read as FTS5 syntax: column filters, NEAR, operators and stray quotes are all
just words. Ranking is bm25 over message text, plus the conversation title's bm25
weighted :data:`TITLE_WEIGHT` times; a conversation whose title matches but none of its
messages does appears once, as a title match.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Connection, bindparam, text

from chatkeep.search import (
    HIGHLIGHT_CLOSE,
    HIGHLIGHT_OPEN,
    SearchFilters,
    SearchHit,
    SearchQuery,
    Term,
    split_highlights,
)
from chatkeep.timeutil import optional_from_text, to_text

#: How much more a match in a conversation's title counts than one in a message.
TITLE_WEIGHT: Final = 2.0
#: Words of context a snippet shows around the matches.
SNIPPET_WORDS: Final = 16
_IN_CHUNK: Final = 500


@dataclass(frozen=True, slots=True)
class _Key:
    pk: int


def _term(term: Term) -> str:
    quoted = '"' + term.text.replace('"', '""') + '"'
    return quoted + "*" if term.prefix else quoted


def fts5_expression(query: SearchQuery) -> str:
    """The MATCH expression for ``query``; only quoted terms and FTS5's own operators."""
    groups = ["(" + " OR ".join(_term(t) for t in group) + ")" for group in query.required]
    expression = " AND ".join(groups)
    if query.excluded:
        excluded = " OR ".join(_term(t) for t in query.excluded)
        expression = f"({expression}) NOT ({excluded})"
    return expression


# Conditions on the conversation and on the message, each a fixed SQL fragment chosen by
# which filter is set; values are always bound parameters.
_CONVERSATION_FILTERS: Final = {
    "runtime_id": "c.runtime_id = :runtime_id",
    "origin": "c.origin = :origin",
    "platform": "c.source_platform = :platform",
    "import_id": "c.import_id = :import_id",
    "conversation_id": "c.id = :conversation_id",
    "tag": (
        "EXISTS (SELECT 1 FROM conversation_tags ct"
        " WHERE ct.conversation_id = c.id AND ct.tag = :tag)"
    ),
}
_MESSAGE_FILTERS: Final = {
    "role": "m.role = :role",
    "model": "(m.model = :model OR (m.model IS NULL AND c.model = :model))",
    "since": "m.created_at >= :since",
    "until": "m.created_at <= :until",
}


def _conditions(filters: SearchFilters, params: dict[str, Any]) -> tuple[list[str], list[str]]:
    states = "('active', 'archived')" if filters.include_archived else "('active')"
    conversation = [f"c.state IN {states}"]
    message: list[str] = []
    for name, fragment in _CONVERSATION_FILTERS.items():
        value = getattr(filters, name)
        if value is not None:
            conversation.append(fragment)
            params[name] = value
    for name, fragment in _MESSAGE_FILTERS.items():
        value = getattr(filters, name)
        if value is not None:
            message.append(fragment)
            params[name] = to_text(value) if name in ("since", "until") else value
    return conversation, message


class SqliteSearch:
    """Runs searches and rebuilds the index on one SQLite database."""

    def search(
        self,
        conn: Connection,
        user_id: str,
        query: SearchQuery,
        filters: SearchFilters,
        *,
        limit: int,
        offset: int,
    ) -> list[SearchHit]:
        if query.empty:
            return []
        params: dict[str, Any] = {
            "q": fts5_expression(query),
            "user": user_id,
            "weight": TITLE_WEIGHT,
            "limit": limit,
            "offset": offset,
        }
        on_conversation, on_message = _conditions(filters, params)
        # Phase one ranks every match but carries only keys and scores; snippets, the
        # costly part, are made in phase two for the page alone.
        page = conn.execute(text(self._ranking_sql(on_conversation, on_message)), params).all()
        return self._hits(conn, params, page)

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

    def _allowed(
        self,
        conn: Connection,
        params: dict[str, Any],
        on_conversation: list[str],
        on_message: list[str],
        candidates: Sequence[Any],
    ) -> dict[int, str]:
        """Candidate message keys the user owns and the filters allow -> conversation."""
        if not candidates:
            return {}
        where = " AND ".join(on_conversation + on_message)
        # CROSS JOIN keeps SQLite from starting at the conversations (by state) and
        # walking all their messages: the candidate keys are the selective side.
        sql = text(
            f"SELECT m.pk, c.id AS conversation_id FROM messages m CROSS JOIN conversations c ON c.id = m.conversation_id WHERE m.pk IN :pks AND m.user_id = :user AND c.user_id = :user AND {where}"  # noqa: E501, S608 - fixed fragments, bound values
        ).bindparams(bindparam("pks", expanding=True))
        allowed: dict[int, str] = {}
        keys = [row.pk for row in candidates]
        for start in range(0, len(keys), _IN_CHUNK):
            chunk = {**params, "pks": keys[start : start + _IN_CHUNK]}
            allowed.update((row.pk, row.conversation_id) for row in conn.execute(sql, chunk))
        return allowed

    def _hits(
        self, conn: Connection, params: dict[str, Any], page: Sequence[Any]
    ) -> list[SearchHit]:
        if not page:
            return []
        marks = {"q": params["q"], "open": HIGHLIGHT_OPEN, "close": HIGHLIGHT_CLOSE}
        pks = [row.pk for row in page if row.pk is not None]
        titled = [row.conversation_id for row in page if row.pk is None]
        messages: dict[int, Any] = {}
        if pks:
            for row in conn.execute(
                text(
                    "SELECT messages_fts.rowid AS pk, m.id, m.role, m.created_at,"
                    " c.id AS conversation_id, c.title, c.runtime_id,"
                    " snippet(messages_fts, 0, :open, :close, '…', :words) AS snippet"
                    " FROM messages_fts JOIN messages m ON m.pk = messages_fts.rowid"
                    " JOIN conversations c ON c.id = m.conversation_id"
                    " WHERE messages_fts MATCH :q AND messages_fts.rowid IN :pks"
                ).bindparams(bindparam("pks", expanding=True)),
                {**marks, "pks": pks, "words": SNIPPET_WORDS},
            ):
                messages[row.pk] = row
        titles: dict[str, Any] = {}
        if titled:
            for row in conn.execute(
                text(
                    "SELECT c.id AS conversation_id, c.title, c.runtime_id,"
                    " highlight(conversations_fts, 0, :open, :close) AS snippet"
                    " FROM conversations_fts"
                    " JOIN conversations c ON c.id = conversations_fts.conversation_id"
                    " WHERE conversations_fts MATCH :q AND c.id IN :ids"
                ).bindparams(bindparam("ids", expanding=True)),
                {**marks, "ids": titled},
            ):
                titles[row.conversation_id] = row
        hits = []
        for ranked in page:
            found = (
                messages.get(ranked.pk)
                if ranked.pk is not None
                else titles.get(ranked.conversation_id)
            )
            if found is not None:
                hits.append(_hit(found, ranked.score, is_message=ranked.pk is not None))
        return hits

    def vector_rows(
        self, conn: Connection, user_id: str, embedder: str, filters: SearchFilters
    ) -> list[Any]:
        """Every stored vector of the user's messages that the filters allow."""
        params: dict[str, Any] = {"user": user_id, "embedder": embedder}
        on_conversation, on_message = _conditions(filters, params)
        where = " AND ".join(on_conversation + on_message)
        sql = f"""
            SELECT v.vector AS vector, v.chunk AS chunk, v.message_pk AS pk
            FROM message_vectors v
            JOIN messages m ON m.pk = v.message_pk
            JOIN conversations c ON c.id = m.conversation_id
            WHERE v.embedder = :embedder AND v.user_id = :user AND m.user_id = :user
              AND c.user_id = :user AND length(v.vector) > 0 AND {where}
        """  # noqa: S608 - fragments come from the fixed tables above, values are bound
        return list(conn.execute(text(sql), params).all())

    def allowed_keys(
        self, conn: Connection, user_id: str, pks: Sequence[int], filters: SearchFilters
    ) -> set[int]:
        """Which of these message keys the user owns and the filters allow."""
        params: dict[str, Any] = {"user": user_id}
        on_conversation, on_message = _conditions(filters, params)
        rows = [_Key(pk) for pk in pks]
        return set(self._allowed(conn, params, on_conversation, on_message, rows))

    def vector_version(self, conn: Connection, user_id: str, embedder: str) -> tuple[int, int]:
        """Changes whenever the user's vectors of ``embedder`` change (add or delete)."""
        row = conn.execute(
            text(
                "SELECT count(*), coalesce(max(rowid), 0) FROM message_vectors"
                " WHERE embedder = :embedder AND user_id = :user"
            ),
            {"embedder": embedder, "user": user_id},
        ).one()
        return int(row[0]), int(row[1])

    def all_vectors(self, conn: Connection, user_id: str, embedder: str) -> list[Any]:
        return list(
            conn.execute(
                text(
                    "SELECT message_pk AS pk, chunk, vector FROM message_vectors"
                    " WHERE embedder = :embedder AND user_id = :user AND length(vector) > 0"
                ),
                {"embedder": embedder, "user": user_id},
            ).all()
        )

    def vector_details(self, conn: Connection, user_id: str, pks: Sequence[int]) -> list[Any]:
        """The message and conversation behind each vector key (the user's only)."""
        if not pks:
            return []
        sql = text(
            "SELECT m.pk AS pk, m.id AS message_id, m.role AS role, m.created_at AS created_at,"
            " m.content AS content, c.id AS conversation_id, c.title AS title,"
            " c.runtime_id AS runtime_id"
            " FROM messages m CROSS JOIN conversations c ON c.id = m.conversation_id"
            " WHERE m.pk IN :pks AND m.user_id = :user AND c.user_id = :user"
        ).bindparams(bindparam("pks", expanding=True))
        return list(conn.execute(sql, {"user": user_id, "pks": list(pks)}).all())

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
                " SELECT title, id FROM conversations"
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


def _hit(row: Any, score: float, *, is_message: bool) -> SearchHit:
    snippet, highlights = split_highlights(row.snippet or "")
    return SearchHit(
        conversation_id=row.conversation_id,
        conversation_title=row.title,
        runtime_id=row.runtime_id,
        message_id=row.id if is_message else None,
        role=row.role if is_message else None,
        created_at=optional_from_text(row.created_at) if is_message else None,
        snippet=snippet,
        highlights=highlights,
        score=float(score),
    )
