"""The hot path: appending messages, one durable transaction per call.

An append is what a chat platform does most, and its cost should be the commit's
fsync, not Python. So this path skips SQLAlchemy's per-call statement building and
transaction machinery: its statements are written with SQLAlchemy Core once, compiled
once for the engine's dialect, and run on the pooled DBAPI connection inside the
dialect's own write transaction (``BEGIN IMMEDIATE`` on SQLite). Everything else in
the backend goes through Core as usual.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Protocol, cast

from sqlalchemy import Dialect, bindparam, exists, insert, select, update
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement

from chatkeep import limits
from chatkeep.backends import schema as t
from chatkeep.errors import Conflict, InvalidInput, KeyRequired, LimitExceeded, NotFound
from chatkeep.ids import new_id
from chatkeep.model import ENCRYPTED_PART, Attachment, Message, Part, canonical_json
from chatkeep.timeutil import from_text, to_text, utcnow
from chatkeep.validate import CheckedMessage, decode_json


class RawWrite(Protocol):
    """The dialect's write transaction on a DBAPI connection of its own; yields a cursor."""

    def __call__(self) -> AbstractContextManager[Any]: ...

    def close(self) -> None: ...


class Prepared:
    """A Core statement compiled once; ``bind`` orders parameters for the driver."""

    __slots__ = ("_order", "sql")

    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        self.sql = str(compiled)
        names = tuple(compiled.positiontup or ())
        # Positional drivers (sqlite3's qmark) get a tuple in statement order; named
        # ones (psycopg's pyformat) take the dict as it is.
        self._order: Callable[[dict[str, Any]], Any] | None = None
        if compiled.positional:
            self._order = (
                (lambda values: (values[names[0]],))
                if len(names) == 1
                else cast(Callable[[dict[str, Any]], Any], itemgetter(*names))
            )

    @classmethod
    def of(cls, statement: ClauseElement, dialect: Dialect) -> Prepared:
        return cls(statement, dialect)

    def bind(self, values: dict[str, Any]) -> Any:
        return values if self._order is None else self._order(values)


_MESSAGE_COLUMNS = [c.name for c in t.messages.columns if c.name != "pk"]
_ATTACHMENT_COLUMNS = [c.name for c in t.attachments.columns]


class AppendStatements:
    """The append path's statements, compiled for one dialect."""

    def __init__(self, dialect: Dialect) -> None:
        c, m, u = t.conversations, t.messages, t.users
        self.conversation = Prepared.of(
            select(
                c.c.state,
                c.c.message_count,
                c.c.total_tokens,
                c.c.total_cost,
                c.c.active_leaf_id,
                # Checked in the append's own transaction: a key made by another process
                # a moment ago still stops a message in clear.
                exists().where(t.user_keys.c.user_id == bindparam("user_id")).label("encrypted"),
            ).where(c.c.id == bindparam("conversation_id"), c.c.user_id == bindparam("user_id")),
            dialect,
        )
        self.user = Prepared.of(select(u.c.id).where(u.c.id == bindparam("user_id")), dialect)
        self.parent = Prepared.of(
            select(m.c.conversation_id).where(
                m.c.id == bindparam("message_id"), m.c.user_id == bindparam("user_id")
            ),
            dialect,
        )
        self.insert_message = Prepared.of(
            insert(m).values({name: bindparam(name) for name in _MESSAGE_COLUMNS}), dialect
        )
        self.insert_attachment = Prepared.of(
            insert(t.attachments).values({name: bindparam(name) for name in _ATTACHMENT_COLUMNS}),
            dialect,
        )
        self.update_conversation = Prepared.of(
            update(c)
            .where(c.c.id == bindparam("conversation_id"))
            .values(
                message_count=bindparam("message_count"),
                total_tokens=bindparam("total_tokens"),
                total_cost=bindparam("total_cost"),
                active_leaf_id=bindparam("active_leaf_id"),
                updated_at=bindparam("updated_at"),
            ),
            dialect,
        )


@dataclass(slots=True)
class _Tip:
    """The running state of the conversation while messages are appended."""

    message_count: int
    total_tokens: int
    total_cost: float
    active_leaf_id: str | None
    encrypted: bool  # the user has a key: only sealed messages go in


@dataclass(frozen=True, slots=True)
class PendingAttachment:
    """An attachment whose blob is stored; ``ensure`` re-stores it under the lock."""

    sha256: str
    size: int
    name: str
    mime_type: str
    ensure: Callable[[], None]


class Appender:
    """Appends checked messages to a conversation in one write transaction."""

    def __init__(self, statements: AppendStatements, raw_write: RawWrite) -> None:
        self._sql = statements
        self._raw_write = raw_write

    def append(
        self,
        user_id: str,
        conversation_id: str,
        checked: Sequence[CheckedMessage],
        attachments: Sequence[Sequence[PendingAttachment]],
    ) -> list[Message]:
        now = to_text(utcnow())
        with self._raw_write() as cursor:
            tip = self._tip(cursor, user_id, conversation_id)
            appended = [
                self._insert(cursor, user_id, conversation_id, tip, item, pending, now)
                for item, pending in zip(checked, attachments, strict=True)
            ]
            self._run(
                cursor,
                self._sql.update_conversation,
                conversation_id=conversation_id,
                message_count=tip.message_count,
                total_tokens=tip.total_tokens,
                total_cost=tip.total_cost,
                active_leaf_id=tip.active_leaf_id,
                updated_at=now,
            )
        return appended

    def _run(self, cursor: Any, prepared: Prepared, **values: Any) -> Any:
        return cursor.execute(prepared.sql, prepared.bind(values))

    def _tip(self, cursor: Any, user_id: str, conversation_id: str) -> _Tip:
        row = self._run(
            cursor, self._sql.conversation, conversation_id=conversation_id, user_id=user_id
        ).fetchone()
        if row is None:
            if self._run(cursor, self._sql.user, user_id=user_id).fetchone() is None:
                raise NotFound(f"no user {user_id!r}")
            raise NotFound(f"no conversation {conversation_id}")
        state, message_count, total_tokens, total_cost, active_leaf_id, encrypted = row
        if state == "trashed":
            raise Conflict(
                f"conversation {conversation_id} is in the trash",
                hint="restore it before adding messages",
            )
        return _Tip(message_count, total_tokens, total_cost, active_leaf_id, bool(encrypted))

    def _parent(
        self, cursor: Any, user_id: str, conversation_id: str, item: CheckedMessage, tip: _Tip
    ) -> str | None:
        new = item.new
        if new.root:
            return None
        if new.parent_id is None:
            return tip.active_leaf_id
        row = self._run(cursor, self._sql.parent, message_id=new.parent_id, user_id=user_id)
        found = row.fetchone()
        if found is None:
            raise NotFound(f"no parent message {new.parent_id}")
        if found[0] != conversation_id:
            raise InvalidInput(
                f"parent message {new.parent_id} belongs to another conversation, "
                f"not {conversation_id}"
            )
        return new.parent_id

    def _insert(
        self,
        cursor: Any,
        user_id: str,
        conversation_id: str,
        tip: _Tip,
        item: CheckedMessage,
        pending: Sequence[PendingAttachment],
        now: str,
    ) -> Message:
        new = item.new
        if tip.encrypted and not (len(new.parts) == 1 and new.parts[0].kind == ENCRYPTED_PART):
            raise KeyRequired(
                f"the content of user {user_id} is encrypted: this message is in clear",
                hint="append through the vault (vault.store), which seals it",
            )
        parent_id = self._parent(cursor, user_id, conversation_id, item, tip)
        message_id = new_id("message")
        created = to_text(new.created_at) if new.created_at else now
        stored_attachments = [_attachment(p, message_id, conversation_id, now) for p in pending]
        parts = new.parts
        content, content_sha = item.content, item.content_sha256
        if stored_attachments:
            parts = parts + tuple(attachment_part(a) for a in stored_attachments)
            encoded = canonical_json([p.to_dict() for p in parts])
            if len(encoded) > limits.MAX_MESSAGE_BYTES:
                raise LimitExceeded("the message with its attachment references is too large")
            content, content_sha = encoded.decode("utf-8"), hashlib.sha256(encoded).hexdigest()
        cost = float(new.cost) if new.cost is not None else None
        self._run(
            cursor,
            self._sql.insert_message,
            id=message_id,
            user_id=user_id,
            conversation_id=conversation_id,
            parent_id=parent_id,
            seq=tip.message_count,
            role=new.role,
            author=new.author,
            content=content,
            content_sha256=content_sha,
            created_at=created,
            model=new.model,
            tokens=new.tokens,
            cost=cost,
            metadata=item.metadata,
            hidden=int(new.hidden),
            source_id=None,
        )
        for attachment, source in zip(stored_attachments, pending, strict=True):
            source.ensure()  # under the write lock: see PendingAttachment
            self._run(
                cursor, self._sql.insert_attachment, user_id=user_id, **attachment_row(attachment)
            )
        message = Message(
            id=message_id,
            conversation_id=conversation_id,
            parent_id=parent_id,
            seq=tip.message_count,
            role=new.role,  # type: ignore[arg-type]
            author=new.author,
            parts=tuple(parts),
            created_at=from_text(created),
            model=new.model,
            tokens=new.tokens,
            cost=cost,
            metadata=decode_json(item.metadata),
            hidden=new.hidden,
            content_sha256=content_sha,
            attachments=tuple(stored_attachments),
        )
        tip.message_count += 1
        tip.total_tokens += new.tokens or 0
        tip.total_cost += cost or 0.0
        tip.active_leaf_id = message_id
        return message


def _attachment(
    pending: PendingAttachment, message_id: str, conversation_id: str, now: str
) -> Attachment:
    return Attachment(
        id=new_id("attachment"),
        message_id=message_id,
        conversation_id=conversation_id,
        sha256=pending.sha256,
        size=pending.size,
        mime_type=pending.mime_type,
        name=pending.name,
        created_at=from_text(now),
    )


def attachment_row(attachment: Attachment) -> dict[str, Any]:
    """An attachment as the values of its row (without the owner)."""
    return {
        "id": attachment.id,
        "message_id": attachment.message_id,
        "conversation_id": attachment.conversation_id,
        "sha256": attachment.sha256,
        "size": attachment.size,
        "mime_type": attachment.mime_type,
        "name": attachment.name,
        "created_at": to_text(attachment.created_at),
    }


def attachment_part(attachment: Attachment) -> Part:
    """The content part that refers to an attachment."""
    kind = "image" if attachment.mime_type.startswith("image/") else "file"
    return Part(
        kind=kind,
        data={
            "attachment_id": attachment.id,
            "name": attachment.name,
            "mime_type": attachment.mime_type,
            "size": attachment.size,
            "sha256": attachment.sha256,
        },
    )
