"""Full-text search on SQLite FTS5: compiling a :class:`SearchQuery`, filtering, ranking.

Every term is double-quoted (quotes doubled) before it reaches MATCH, so user text can
never be read as FTS5 syntax: column filters, NEAR, operators and stray quotes are all
just words. Ranking is bm25 over message text, plus the conversation title's bm25
weighted :data:`TITLE_WEIGHT` times; a conversation whose title matches but none of its
messages does appears once, as a title match.
"""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy import Connection, text

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
            "open": HIGHLIGHT_OPEN,
            "close": HIGHLIGHT_CLOSE,
            "weight": TITLE_WEIGHT,
            "words": SNIPPET_WORDS,
            "limit": limit,
            "offset": offset,
        }
        on_conversation, on_message = _conditions(filters, params)
        conversation_sql = " AND ".join(on_conversation)
        message_sql = "".join(f" AND {fragment}" for fragment in on_message)
        # A title-only match has no message to satisfy message-level filters.
        title_part = "" if on_message else self._title_only_sql(conversation_sql)
        sql = f"""
            SELECT m.id AS message_id, m.role AS role, m.created_at AS created_at,
                   c.id AS conversation_id, c.title AS title, c.runtime_id AS runtime_id,
                   snippet(messages_fts, 0, :open, :close, '…', :words) AS snippet,
                   bm25(messages_fts) + :weight * coalesce(t.rank, 0) AS score
            FROM messages_fts
            JOIN messages m ON m.pk = messages_fts.rowid
            JOIN conversations c ON c.id = m.conversation_id
            LEFT JOIN (
                SELECT conversation_id, bm25(conversations_fts) AS rank
                FROM conversations_fts WHERE conversations_fts MATCH :q
            ) t ON t.conversation_id = c.id
            WHERE messages_fts MATCH :q AND m.user_id = :user AND c.user_id = :user
              AND {conversation_sql}{message_sql}
            {title_part}
            ORDER BY score, conversation_id, message_id
            LIMIT :limit OFFSET :offset
        """  # noqa: S608 - fragments come from the fixed tables above, values are bound
        rows = conn.execute(text(sql), params).all()
        return [_hit(row) for row in rows]

    @staticmethod
    def _title_only_sql(conversation_sql: str) -> str:
        return f"""
            UNION ALL
            SELECT NULL, NULL, NULL, c.id, c.title, c.runtime_id,
                   highlight(conversations_fts, 0, :open, :close),
                   :weight * bm25(conversations_fts)
            FROM conversations_fts
            JOIN conversations c ON c.id = conversations_fts.conversation_id
            WHERE conversations_fts MATCH :q AND c.user_id = :user AND {conversation_sql}
              AND NOT EXISTS (
                SELECT 1 FROM messages_fts JOIN messages m2 ON m2.pk = messages_fts.rowid
                WHERE messages_fts MATCH :q AND m2.conversation_id = c.id
              )
        """  # noqa: S608 - see search()

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


def _hit(row: Any) -> SearchHit:
    snippet, highlights = split_highlights(row.snippet or "")
    return SearchHit(
        conversation_id=row.conversation_id,
        conversation_title=row.title,
        runtime_id=row.runtime_id,
        message_id=row.message_id,
        role=row.role,
        created_at=optional_from_text(row.created_at),
        snippet=snippet,
        highlights=highlights,
        score=float(row.score),
    )
