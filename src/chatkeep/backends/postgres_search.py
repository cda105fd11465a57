"""Full-text search on PostgreSQL: ``tsvector`` columns with GIN indexes.

The same query language and filters as on SQLite (:mod:`chatkeep.search`), compiled to
a ``tsquery`` built only from bound values: every word or phrase goes through
``phraseto_tsquery`` (which reads any text as plain words, never as syntax), a prefix
term through ``to_tsquery`` of word characters alone. Text is folded the same way on
both sides (lower case, common diacritics removed; ``chatkeep_fold`` in the schema).

Ranking mirrors SQLite's: the message's rank plus the title's rank weighted
:data:`~chatkeep.backends.search_base.TITLE_WEIGHT` times, best first (scores are
negated so that, as with bm25, lower sorts first); a title-only match appears once.
"""

from __future__ import annotations

import re
from typing import Any, Final

from sqlalchemy import Connection, text

from chatkeep.backends.search_base import TITLE_WEIGHT, SearchEngine, conditions
from chatkeep.search import SearchFilters, SearchHit, SearchQuery, Term, spaced_cjk

_WORD: Final = re.compile(r"\w+")


def tsquery_sql(query: SearchQuery, params: dict[str, Any]) -> str:
    """A SQL ``tsquery`` expression for ``query``; its values go into ``params``."""

    def term(item: Term) -> str:
        name = f"term_{len(params)}"
        if item.prefix:
            words = _WORD.findall(spaced_cjk(item.text))
            if not words:
                return "''::tsquery"
            params[name] = " <-> ".join(words) + ":*"
            return f"to_tsquery('simple', chatkeep_fold(:{name}))"
        params[name] = spaced_cjk(item.text)
        return f"phraseto_tsquery('simple', chatkeep_fold(:{name}))"

    groups = ["(" + " || ".join(term(t) for t in group) + ")" for group in query.required]
    expression = " && ".join(groups)
    if query.excluded:
        excluded = " || ".join(term(t) for t in query.excluded)
        expression = f"({expression}) && !!({excluded})"
    return expression


class PostgresSearch(SearchEngine):
    """Runs searches on one PostgreSQL database."""

    _KEY_JOIN = "JOIN"

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
            "user": user_id,
            "weight": TITLE_WEIGHT,
            "limit": limit + 1,  # one more tells whether another page follows
            "offset": offset,
        }
        expression = tsquery_sql(query, params)
        on_conversation, on_message = conditions(filters, params)
        page = conn.execute(
            text(self._ranking_sql(expression, on_conversation, on_message)), params
        ).all()
        return self.page_hits(conn, user_id, query, page[:limit]), len(page) > limit

    @staticmethod
    def _ranking_sql(expression: str, on_conversation: list[str], on_message: list[str]) -> str:
        conversation_sql = " AND ".join(on_conversation)
        message_sql = "".join(f" AND {fragment}" for fragment in on_message)
        title_only = (
            ""
            if on_message
            else f"""
            UNION ALL
            SELECT NULL::bigint, c.id, -(:weight * ts_rank(c.title_vector, q.query))
            FROM conversations c, q
            WHERE c.title_vector @@ q.query AND c.user_id = :user AND {conversation_sql}
              AND c.id NOT IN (SELECT conversation_id FROM hits)
            """  # noqa: S608 - fragments come from fixed tables, values are bound
        )
        return f"""
            WITH q AS MATERIALIZED (SELECT {expression} AS query),
            hits AS (
                SELECT m.pk AS pk, c.id AS conversation_id,
                       -(ts_rank(m.search_vector, q.query)
                         + CASE WHEN c.title_vector @@ q.query
                                THEN :weight * ts_rank(c.title_vector, q.query) ELSE 0 END)
                       AS score
                FROM q, messages m
                JOIN conversations c ON c.id = m.conversation_id
                WHERE m.search_vector @@ q.query AND m.user_id = :user AND c.user_id = :user
                  AND {conversation_sql}{message_sql}
            )
            SELECT pk, conversation_id, score FROM hits
            {title_only}
            ORDER BY score, conversation_id, pk
            LIMIT :limit OFFSET :offset
        """  # noqa: S608 - fragments come from fixed tables, values are bound

    def rebuild(self, conn: Connection) -> int:
        """The vectors are generated columns, always in step with the rows; what can be
        lost or damaged is their GIN indexes, which this builds again from scratch."""
        for drop, create in _INDEXES.values():
            conn.exec_driver_sql(drop)
            conn.exec_driver_sql(create)
        return int(conn.execute(text("SELECT count(*) FROM messages")).scalar_one())

    def drift(self, conn: Connection) -> list[str]:
        """Missing search indexes (the vectors themselves cannot drift)."""
        present = set(
            conn.execute(
                text("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()")
            ).scalars()
        )
        return [f"the search index {name} is missing" for name in _INDEXES if name not in present]


#: The GIN indexes over the generated search vectors (as migration m0003 made them).
_INDEXES: Final = {
    "messages_search": (
        "DROP INDEX IF EXISTS messages_search",
        "CREATE INDEX messages_search ON messages USING GIN (search_vector)",
    ),
    "conversations_search": (
        "DROP INDEX IF EXISTS conversations_search",
        "CREATE INDEX conversations_search ON conversations USING GIN (title_vector)",
    ),
}
