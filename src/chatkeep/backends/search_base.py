"""What full-text engines share: filters, message-key checks and vector queries.

:class:`~chatkeep.backends.sqlite_search.SqliteSearch` (FTS5) and
:class:`~chatkeep.backends.postgres_search.PostgresSearch` (``tsvector``) subclass it;
the store talks to whichever its backend gives it, through this interface. Filters are
fixed SQL fragments chosen by which filter is set; values are always bound parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from sqlalchemy import Connection, bindparam, text

from chatkeep.model import searchable_text
from chatkeep.search import SearchFilters, SearchHit, SearchQuery, make_snippet
from chatkeep.timeutil import optional_from_text, to_text

#: How much more a match in a conversation's title counts than one in a message.
TITLE_WEIGHT: Final = 2.0
_IN_CHUNK: Final = 500
#: The version of a user's vectors of one embedder (one row kept by triggers).
VECTOR_VERSION_SQL: Final = (
    "SELECT version FROM vector_versions WHERE user_id = :user AND embedder = :embedder"
)


@dataclass(frozen=True, slots=True)
class _Key:
    pk: int


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


def conditions(filters: SearchFilters, params: dict[str, Any]) -> tuple[list[str], list[str]]:
    states = ", ".join(f"'{state}'" for state in filters.states)  # fixed names, not input
    conversation = [f"c.state IN ({states})"]
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


class SearchEngine:
    """A backend's full-text engine, and the vector queries every SQL backend shares."""

    #: How a join is written so the planner starts from the candidate message keys.
    _KEY_JOIN: ClassVar[str] = "JOIN"

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
        """The page of hits at ``offset``, and whether another page follows."""
        raise NotImplementedError

    def rebuild(self, conn: Connection) -> int:
        """Drop every index entry and derive them again; return the messages indexed."""
        raise NotImplementedError

    def drift(self, conn: Connection) -> list[str]:
        """What is out of step between the index and the rows it is derived from."""
        raise NotImplementedError

    def page_hits(
        self,
        conn: Connection,
        user_id: str,
        query: SearchQuery,
        page: Sequence[Any],
        known: dict[int, Any] | None = None,
        known_titles: dict[str, Any] | None = None,
    ) -> list[SearchHit]:
        """Hits for a ranked page of (pk or None for a title match, conversation_id,
        score): details in one query each (of messages not already ``known``, as rows of
        :meth:`vector_details`; of conversations not in ``known_titles``, with their
        title and runtime), snippets cut in Python (no second MATCH)."""
        messages = dict(known or {})
        pks = [row.pk for row in page if row.pk is not None and row.pk not in messages]
        if pks:
            messages.update((row.pk, row) for row in self.vector_details(conn, user_id, pks))
        titles = dict(known_titles or {})
        titled = [
            row.conversation_id
            for row in page
            if row.pk is None and row.conversation_id not in titles
        ]
        if titled:
            sql = text(
                "SELECT id AS conversation_id, title, runtime_id FROM conversations"
                " WHERE id IN :ids AND user_id = :user"
            ).bindparams(bindparam("ids", expanding=True))
            for row in conn.execute(sql, {"ids": titled, "user": user_id}):
                titles[row.conversation_id] = row
        hits = []
        for ranked in page:
            if ranked.pk is not None and ranked.pk in messages:
                hits.append(_message_hit(messages[ranked.pk], query, float(ranked.score)))
            elif ranked.pk is None and ranked.conversation_id in titles:
                hits.append(_title_hit(titles[ranked.conversation_id], query, float(ranked.score)))
        return hits

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
        sql = text(
            f"SELECT m.pk, c.id AS conversation_id FROM messages m {self._KEY_JOIN} conversations c ON c.id = m.conversation_id WHERE m.pk IN :pks AND m.user_id = :user AND c.user_id = :user AND {where}"  # noqa: E501, S608 - fixed fragments, bound values
        ).bindparams(bindparam("pks", expanding=True))
        allowed: dict[int, str] = {}
        keys = [row.pk for row in candidates]
        for start in range(0, len(keys), _IN_CHUNK):
            chunk = {**params, "pks": keys[start : start + _IN_CHUNK]}
            allowed.update((row.pk, row.conversation_id) for row in conn.execute(sql, chunk))
        return allowed

    def vector_rows(
        self, conn: Connection, user_id: str, embedder: str, filters: SearchFilters
    ) -> list[Any]:
        """Every stored vector of the user's messages that the filters allow."""
        params: dict[str, Any] = {"user": user_id, "embedder": embedder}
        on_conversation, on_message = conditions(filters, params)
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
        on_conversation, on_message = conditions(filters, params)
        rows = [_Key(pk) for pk in pks]
        return set(self._allowed(conn, params, on_conversation, on_message, rows))

    def vector_version(self, conn: Connection, user_id: str, embedder: str) -> tuple[int, int]:
        """Changes whenever the user's vectors of ``embedder`` change (add or delete):
        one row kept by triggers (migration m0006)."""
        version = conn.execute(
            text(VECTOR_VERSION_SQL), {"embedder": embedder, "user": user_id}
        ).scalar()
        return int(version or 0), 0

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
        """The message and conversation behind each vector key (the user's only), with
        the conversation's state."""
        if not pks:
            return []
        sql = text(
            "SELECT m.pk AS pk, m.id AS message_id, m.role AS role, m.created_at AS created_at,"  # noqa: S608 - a class constant
            " m.content AS content, c.id AS conversation_id, c.title AS title,"
            " c.runtime_id AS runtime_id, c.state AS state"
            f" FROM messages m {self._KEY_JOIN} conversations c ON c.id = m.conversation_id"
            " WHERE m.pk IN :pks AND m.user_id = :user AND c.user_id = :user"
        ).bindparams(bindparam("pks", expanding=True))
        return list(conn.execute(sql, {"user": user_id, "pks": list(pks)}).all())


def _message_hit(row: Any, query: SearchQuery, score: float) -> SearchHit:
    snippet, highlights = make_snippet(searchable_text(row.content), query)
    return SearchHit(
        conversation_id=row.conversation_id,
        conversation_title=row.title,
        runtime_id=row.runtime_id,
        message_id=row.message_id,
        role=row.role,
        created_at=optional_from_text(row.created_at),
        snippet=snippet,
        highlights=highlights,
        score=score,
    )


def _title_hit(row: Any, query: SearchQuery, score: float) -> SearchHit:
    snippet, highlights = make_snippet(row.title, query)
    return SearchHit(
        conversation_id=row.conversation_id,
        conversation_title=row.title,
        runtime_id=row.runtime_id,
        message_id=None,
        role=None,
        created_at=None,
        snippet=snippet,
        highlights=highlights,
        score=score,
    )
