"""Full-text search on SQLite FTS5: compiling a :class:`SearchQuery`, filtering, ranking.

Every term is double-quoted (quotes doubled) before it reaches MATCH, so user text can
never be read as FTS5 syntax: column filters, NEAR, operators and stray quotes are all
just words. Ranking is bm25 over message text, plus the conversation title's bm25
weighted :data:`TITLE_WEIGHT` times; a conversation whose title matches but none of its
messages does appears once, as a title match.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, text

from chatkeep.backends.search_base import (
    SNIPPET_WORDS,
    TITLE_WEIGHT,
    SearchEngine,
    conditions,
    hit_from_row,
)
from chatkeep.search import (
    HIGHLIGHT_CLOSE,
    HIGHLIGHT_OPEN,
    SearchFilters,
    SearchHit,
    SearchQuery,
    Term,
)


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


class SqliteSearch(SearchEngine):
    """Runs searches and rebuilds the index on one SQLite database."""

    # CROSS JOIN keeps SQLite from starting at the conversations (by state) and walking
    # all their messages: the candidate keys are the selective side.
    _KEY_JOIN = "CROSS JOIN"
    _VECTOR_ORDER = "rowid"

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
        on_conversation, on_message = conditions(filters, params)
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
                hits.append(hit_from_row(found, ranked.score, is_message=ranked.pk is not None))
        return hits

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
