"""Writing a parsed export into the SQL store: one transaction, merged by source ids.

* All or nothing: the whole import is one write transaction. A failure rolls it back,
  and the blobs it stored that nothing uses are removed afterwards.
* Kept apart: imported conversations live under an imported runtime (one per platform
  and account), with ``origin = 'imported'``; nothing here touches a native one.
* Idempotent: conversations are matched by (platform, source id) and messages by
  (conversation, source id). Only what is new is added; stored messages never change.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Dialect, bindparam, delete, insert, select, update

from chatkeep import limits
from chatkeep.backends import schema as t
from chatkeep.backends.appender import Prepared, attachment_row
from chatkeep.blobs import BlobStore
from chatkeep.errors import InvalidInput
from chatkeep.ids import new_id, primary_conversation_title
from chatkeep.importers.graph import PreparedConversation, prepare
from chatkeep.importers.model import ParsedExport, SourceFile, SourceMessage
from chatkeep.importers.source import ExportSource
from chatkeep.model import ROLES, Attachment, NewMessage, Part, canonical_json
from chatkeep.timeutil import from_text, to_text, utcnow
from chatkeep.validate import (
    check_imported_message,
    check_new_message,
    check_short_text,
    decode_json,
    encode_json_object,
)

Progress = Callable[[int, int], None]
#: Attachments up to this size are read into memory and written on a worker thread;
#: larger ones are streamed.
_IN_MEMORY_BLOB_BYTES = 4 * 1024 * 1024
_LABEL_RE = re.compile(r"[^a-z0-9]+")
_MESSAGE_COLUMNS = [c.name for c in t.messages.columns if c.name != "pk"]
#: The fields of a message row as :meth:`ImportWriter._message_rows` makes it.
_MESSAGE_ROW = (
    "id",
    "user_id",
    "conversation_id",
    "parent_id",
    "seq",
    "role",
    "author",
    "content",
    "content_sha256",
    "created_at",
    "model",
    "tokens",
    "cost",
    "metadata",
    "hidden",
    "source_id",
)
_ATTACHMENT_COLUMNS = [c.name for c in t.attachments.columns]
_CONVERSATION_COLUMNS = [c.name for c in t.conversations.columns]


class _Statements:
    """The statements an import runs per conversation and message, written in Core and
    compiled once for the connection's dialect (as the append path does)."""

    def __init__(self, dialect: Dialect) -> None:
        c, m = t.conversations, t.messages
        self.find_conversation = Prepared.of(
            select(
                c.c.id,
                c.c.message_count,
                c.c.total_tokens,
                c.c.total_cost,
                c.c.active_leaf_id,
                c.c.title,
                c.c.updated_at,
                c.c.metadata,
            ).where(
                c.c.user_id == bindparam("user_id"),
                c.c.runtime_id == bindparam("runtime_id"),
                c.c.source_id == bindparam("source_id"),
            ),
            dialect,
        )
        self.known_messages = Prepared.of(
            select(m.c.source_id, m.c.id).where(
                m.c.conversation_id == bindparam("conversation_id"), m.c.source_id.is_not(None)
            ),
            dialect,
        )
        self.insert_conversation = Prepared.of(
            insert(c).values({name: bindparam(name) for name in _CONVERSATION_COLUMNS}), dialect
        )
        merged: dict[str, Any] = {
            name: bindparam(name)
            for name in (
                "message_count",
                "total_tokens",
                "total_cost",
                "active_leaf_id",
                "import_id",
                "updated_at",
                "metadata",
            )
        }
        where = c.c.id == bindparam("conversation_id")
        self.update_conversation = Prepared.of(update(c).where(where).values(merged), dialect)
        self.update_conversation_titled = Prepared.of(
            update(c).where(where).values({**merged, "title": bindparam("title")}), dialect
        )
        message_insert = insert(m).values({name: bindparam(name) for name in _MESSAGE_COLUMNS})
        self.insert_message = Prepared.of(message_insert, dialect)
        # Message rows are tuples (_MESSAGE_ROW): a positional driver (sqlite3) takes them
        # as they are when its parameters come in that order; otherwise each is a dict.
        compiled = message_insert.compile(dialect=dialect)
        self.message_tuples = bool(compiled.positional) and (
            tuple(compiled.positiontup or ()) == _MESSAGE_ROW
        )
        self.insert_attachment = Prepared.of(
            insert(t.attachments).values({name: bindparam(name) for name in _ATTACHMENT_COLUMNS}),
            dialect,
        )


@dataclass(slots=True)
class ImportOutcome:
    """What an import did (or, in a dry run, would do)."""

    runtime_id: str
    runtime_created: bool
    counts: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def add(self, key: str, amount: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + amount

    def warn(self, text: str) -> None:
        self.add("warnings")
        if len(self.warnings) < limits.MAX_IMPORT_WARNINGS:
            self.warnings.append(text)


@dataclass(slots=True)
class _Existing:
    id: str
    message_count: int
    total_tokens: int
    total_cost: float
    active_leaf_id: str | None
    title: str
    messages: dict[str, str]  # source id -> message id
    source_title: str | None = None  # the title the export gave it last time
    updated_at: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


class ImportWriter:
    """Writes one parsed export on an open write connection."""

    def __init__(
        self,
        conn: Connection,
        blobs: BlobStore,
        user_id: str,
        source: ExportSource,
        *,
        dry_run: bool,
        progress: Progress | None,
    ) -> None:
        self._conn, self._blobs, self._user = conn, blobs, user_id
        self._source, self._dry_run, self._progress = source, dry_run, progress
        self._now = to_text(utcnow())
        #: Blobs this import stored: removed again if the import fails.
        self.new_blobs: set[str] = set()
        # Attachment files are created on worker threads while the import goes on;
        # write() waits for them (and fails with them) before it returns.
        self._blob_writer = blobs.background_writer()
        self._time_text = _TimeText()
        # Runtimes this import created, with the source ids of the conversations it wrote
        # under them: no other conversation can be found there, so none is looked up.
        self._fresh: dict[str, set[str]] = {}
        # Bulk inserts bypass SQLAlchemy's per-row parameter handling: statements written
        # in Core, compiled once, run by the driver's executemany in this transaction.
        self._statements = _Statements(conn.dialect)

    # -- the runtime ----------------------------------------------------------------
    def runtime_for(
        self, parsed: ParsedExport, source_runtime: str | None = None
    ) -> tuple[str, bool]:
        """The imported runtime of this platform and account (and, for a platform with
        runtimes of its own, of that runtime), created with its home if new."""
        r = t.runtimes
        account = (parsed.account or "") + (f"/{source_runtime}" if source_runtime else "")
        found = self._conn.execute(
            select(r.c.id).where(
                r.c.user_id == self._user,
                r.c.source_platform == parsed.platform,
                r.c.account == account,
            )
        ).scalar()
        if found is not None:
            return found, False
        label = source_runtime or parsed.account_label or "import"
        runtime_id = self._free_runtime_id(parsed.platform, label)
        self._fresh[runtime_id] = set()
        self._conn.execute(
            insert(r).values(
                user_id=self._user,
                id=runtime_id,
                name=source_runtime
                or f"{parsed.platform} ({parsed.account_label or parsed.account or 'import'})",
                origin="imported",
                config="{}",
                primary_conversation_id=None,
                created_at=self._now,
                updated_at=self._now,
                source_platform=parsed.platform,
                account=account,
            )
        )
        primary = self._insert_conversation(
            runtime_id, title=primary_conversation_title(runtime_id), source=None
        )
        self._conn.execute(
            update(r)
            .where(r.c.user_id == self._user, r.c.id == runtime_id)
            .values(primary_conversation_id=primary)
        )
        return runtime_id, True

    def _free_runtime_id(self, platform: str, label: str) -> str:
        cleaned = _LABEL_RE.sub("-", label.lower()).strip("-")
        base = f"{platform}-{cleaned[:40] or 'import'}"
        taken = set(
            self._conn.scalars(
                select(t.runtimes.c.id).where(
                    t.runtimes.c.user_id == self._user, t.runtimes.c.id.like(f"{base}-%")
                )
            )
        )
        number = 1
        while f"{base}-{number:03d}" in taken:
            number += 1
        return f"{base}-{number:03d}"

    def _insert_conversation(
        self,
        runtime_id: str,
        *,
        title: str,
        source: PreparedConversation | None,
        import_id: str | None = None,
        platform: str | None = None,
    ) -> str:
        conversation_id = new_id("conversation")
        conv = source.conversation if source else None
        created = conv.created_at if conv and conv.created_at else None
        updated = conv.updated_at if conv and conv.updated_at else created
        self._conn.execute(
            insert(t.conversations).values(
                id=conversation_id,
                user_id=self._user,
                runtime_id=runtime_id,
                title=title,
                origin="imported",
                state="archived" if conv and conv.archived else "active",
                model=conv.model if conv else None,
                message_count=0,
                total_tokens=0,
                total_cost=0.0,
                active_leaf_id=None,
                created_at=to_text(created) if created else self._now,
                updated_at=to_text(updated) if updated else self._now,
                trashed_at=None,
                source_platform=platform,
                source_id=conv.source_id if conv else None,
                import_id=import_id,
                metadata=self._json_object(
                    "conversation metadata",
                    {**conv.metadata, "source_title": title} if conv else {},
                ),
            )
        )
        return conversation_id

    def _json_object(self, what: str, value: dict[str, Any]) -> str:
        return self._json_object_kept(what, value)[0]

    def _json_object_kept(self, what: str, value: dict[str, Any]) -> tuple[str, bool]:
        try:
            return encode_json_object(what, value), True
        except InvalidInput as error:
            # Provider metadata is kept only when it is storable JSON within limits.
            return canonical_json({"dropped": error.message}).decode(), False

    # -- conversations ------------------------------------------------------------------
    def write(
        self, parsed: ParsedExport, runtime_id: str, import_id: str, outcome: ImportOutcome
    ) -> None:
        """Write every conversation. On return, every blob the import stored is written
        (not yet synced: the caller syncs ``new_blobs`` before it commits)."""
        try:
            self._write_all(parsed, runtime_id, import_id, outcome)
        except BaseException:
            # No file may appear after the caller cleans up; the first failure is the
            # one to report.
            with contextlib.suppress(Exception):
                self._blob_writer.close()
            raise
        self._blob_writer.close()

    def _write_all(
        self, parsed: ParsedExport, runtime_id: str, import_id: str, outcome: ImportOutcome
    ) -> None:
        done_messages = 0
        runtimes: dict[str, str] = {}
        for index, conversation in enumerate(parsed.conversations, start=1):
            prepared = prepare(conversation)
            for warning in prepared.warnings:
                outcome.warn(warning)
            target = runtime_id
            if conversation.source_runtime:
                if conversation.source_runtime not in runtimes:
                    made, created = self.runtime_for(parsed, conversation.source_runtime)
                    runtimes[conversation.source_runtime] = made
                    if created:
                        outcome.add("runtimes_created")
                target = runtimes[conversation.source_runtime]
            added, conversation_id = self._write_conversation(
                prepared, parsed.platform, target, import_id, outcome
            )
            done_messages += added
            if conversation.primary:
                self._make_home(target, conversation_id)
            if self._progress is not None:
                self._progress(index, done_messages)

    def _make_home(self, runtime_id: str, conversation_id: str) -> None:
        """Make an imported home transcript its runtime's home conversation, in place of
        the empty one the runtime was created with (a home that holds messages stays)."""
        r, c = t.runtimes, t.conversations
        current = self._conn.execute(
            select(r.c.primary_conversation_id).where(
                r.c.user_id == self._user, r.c.id == runtime_id
            )
        ).scalar()
        if current == conversation_id:
            return
        empty = self._conn.execute(
            select(c.c.id).where(c.c.id == current, c.c.message_count == 0)
        ).scalar()
        if current is not None and empty is None:
            return
        self._conn.execute(
            update(r)
            .where(r.c.user_id == self._user, r.c.id == runtime_id)
            .values(primary_conversation_id=conversation_id)
        )
        if empty is not None:
            self._conn.execute(delete(c).where(c.c.id == empty))

    def _run(self, prepared: Prepared, values: dict[str, Any]) -> list[Any]:
        """One compiled statement on this transaction's DBAPI connection; its rows."""
        cursor = self._conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(prepared.sql, prepared.bind(values))
            return list(cursor.fetchall()) if cursor.description else []
        finally:
            cursor.close()

    def _insert_many(self, prepared: Prepared, rows: list[dict[str, Any]]) -> None:
        self._execute_many(prepared.sql, [prepared.bind(row) for row in rows])

    def _insert_messages(self, rows: list[tuple[Any, ...]]) -> None:
        """Rows made by :meth:`_message_rows` (fields as ``_MESSAGE_ROW``)."""
        prepared = self._statements.insert_message
        if not self._statements.message_tuples:
            rows = [prepared.bind(dict(zip(_MESSAGE_ROW, row, strict=True))) for row in rows]
        self._execute_many(prepared.sql, rows)

    def _execute_many(self, sql: str, parameters: list[Any]) -> None:
        if parameters:
            cursor = self._conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            try:
                cursor.executemany(sql, parameters)
            finally:
                cursor.close()

    def _existing(self, runtime_id: str, source_id: str) -> _Existing | None:
        found = self._run(
            self._statements.find_conversation,
            {"user_id": self._user, "runtime_id": runtime_id, "source_id": source_id},
        )
        if not found:
            return None
        (
            conversation_id,
            message_count,
            total_tokens,
            total_cost,
            active_leaf_id,
            title,
            updated_at,
            metadata_text,
        ) = found[0]
        known: dict[str, str] = dict(
            self._run(self._statements.known_messages, {"conversation_id": conversation_id})
        )
        metadata = decode_json(metadata_text)
        return _Existing(
            id=conversation_id,
            message_count=message_count,
            total_tokens=total_tokens,
            total_cost=total_cost,
            active_leaf_id=active_leaf_id,
            title=title,
            messages=known,
            source_title=metadata.get("source_title"),
            updated_at=updated_at,
            metadata=metadata,
        )

    def _write_conversation(
        self,
        prepared: PreparedConversation,
        platform: str,
        runtime_id: str,
        import_id: str,
        outcome: ImportOutcome,
    ) -> tuple[int, str]:
        conv = prepared.conversation
        title = _title(conv.title)
        written = self._fresh.get(runtime_id)
        if written is not None and conv.source_id not in written:
            existing = None  # in a runtime this import created, and not written yet
            written.add(conv.source_id)
        else:
            existing = self._existing(runtime_id, conv.source_id)
        if existing is None:
            return self._write_new_conversation(
                prepared, title, platform, runtime_id, import_id, outcome
            )
        new_messages = [m for m in prepared.messages if m.source_id not in existing.messages]
        rows, attachments = self._message_rows(existing, new_messages, outcome)
        self._insert_messages(rows)
        self._insert_many(self._statements.insert_attachment, attachments)
        leaf = existing.messages.get(prepared.active_leaf_source_id or "")
        # A title the user changed since the last import is theirs; otherwise follow the
        # export's. The export's title is remembered either way.
        renamed = existing.source_title is not None and existing.title != existing.source_title
        new_title = existing.title if renamed else title
        changed = (
            bool(rows)
            or leaf != existing.active_leaf_id
            or new_title != existing.title
            or existing.source_title != title
        )
        outcome.add("conversations_updated" if changed else "conversations_unchanged")
        if changed:
            source_time = to_text(conv.updated_at) if conv.updated_at else None
            values = {
                "conversation_id": existing.id,
                "message_count": existing.message_count,
                "total_tokens": existing.total_tokens,
                "total_cost": existing.total_cost,
                "active_leaf_id": leaf,
                "import_id": import_id,
                "updated_at": max(
                    filter(None, (existing.updated_at, source_time)), default=self._now
                ),
                "metadata": self._json_object(
                    "conversation metadata", {**existing.metadata, "source_title": title}
                ),
            }
            # Setting the title, even to the same text, fires the trigger that rewrites
            # its full-text entry: only when it changes.
            if new_title != existing.title:
                self._run(
                    self._statements.update_conversation_titled, {**values, "title": new_title}
                )
            else:
                self._run(self._statements.update_conversation, values)
        outcome.add("messages_added", len(rows))
        return len(rows), existing.id

    def _write_new_conversation(
        self,
        prepared: PreparedConversation,
        title: str,
        platform: str,
        runtime_id: str,
        import_id: str,
        outcome: ImportOutcome,
    ) -> tuple[int, str]:
        """A conversation seen for the first time: its row is written once, with its final
        counts and active leaf, before its messages (which refer to it)."""
        conv = prepared.conversation
        state = _Existing(
            id=new_id("conversation"),
            message_count=0,
            total_tokens=0,
            total_cost=0.0,
            active_leaf_id=None,
            title=title,
            messages={},
        )
        rows, attachments = self._message_rows(state, prepared.messages, outcome)
        created = conv.created_at
        updated = conv.updated_at or created
        metadata, kept = self._json_object_kept(
            "conversation metadata", {**conv.metadata, "source_title": title}
        )
        if not kept:
            # As a merge does with what it finds stored: the export's title remembered.
            metadata = self._json_object(
                "conversation metadata", {**decode_json(metadata), "source_title": title}
            )
        self._run(
            self._statements.insert_conversation,
            {
                "id": state.id,
                "user_id": self._user,
                "runtime_id": runtime_id,
                "title": title,
                "origin": "imported",
                "state": "archived" if conv.archived else "active",
                "model": conv.model,
                "message_count": state.message_count,
                "total_tokens": state.total_tokens,
                "total_cost": state.total_cost,
                "active_leaf_id": state.messages.get(prepared.active_leaf_source_id or ""),
                "forked_from_conversation_id": None,
                "forked_from_message_id": None,
                "created_at": to_text(created) if created else self._now,
                "updated_at": to_text(updated) if updated else self._now,
                "trashed_at": None,
                "source_platform": platform,
                "source_id": conv.source_id,
                "import_id": import_id,
                "metadata": metadata,
            },
        )
        self._insert_messages(rows)
        self._insert_many(self._statements.insert_attachment, attachments)
        outcome.add("conversations_added")
        outcome.add("messages_added", len(rows))
        return len(rows), state.id

    def _message_rows(
        self, existing: _Existing, messages: Sequence[SourceMessage], outcome: ImportOutcome
    ) -> tuple[list[tuple[Any, ...]], list[dict[str, Any]]]:
        rows: list[tuple[Any, ...]] = []
        attachment_rows: list[dict[str, Any]] = []
        user, conversation_id, known = self._user, existing.id, existing.messages
        for message in messages:
            message_id = new_id("message")
            stored: list[Attachment | None] = []
            parts = message.parts
            if message.files:
                stored = [
                    self._attachment(f, message_id, conversation_id, outcome) for f in message.files
                ]
                parts = _with_file_parts(parts, message.files, stored)
            role, author, model, content, content_sha256, metadata = self._checked(
                message, parts, outcome, stored, message_id, conversation_id
            )
            created = message.created_at
            rows.append(
                (  # as _MESSAGE_ROW
                    message_id,
                    user,
                    conversation_id,
                    known.get(message.parent_source_id or ""),  # parent_id
                    existing.message_count,  # seq
                    role,
                    author,
                    content,
                    content_sha256,
                    self._time_text(created) if created else None,
                    model,
                    None,  # tokens
                    None,  # cost
                    metadata,
                    int(message.hidden),
                    message.source_id,
                )
            )
            if stored:
                attachment_rows += [
                    {"user_id": user, **attachment_row(a)} for a in stored if a is not None
                ]
            known[message.source_id] = message_id
            existing.message_count += 1
        return rows, attachment_rows

    def _checked(
        self,
        message: SourceMessage,
        parts: Sequence[Part],
        outcome: ImportOutcome,
        stored: list[Attachment | None],
        message_id: str,
        conversation_id: str,
    ) -> tuple[str, str | None, str | None, str, str, str]:
        """(role, author, model, content, content sha256, metadata) of a message, checked
        as :func:`check_new_message` checks an append; content too large (or odd) to
        store inline is moved to an attachment."""
        role = message.role if message.role in ROLES else "tool"
        if role != message.role:
            outcome.warn(
                f"message {message.source_id!r}: unknown role {message.role!r} stored as tool"
            )
        parts = parts or (Part("text", ""),)
        author = None if message.author is None else _short(message.author)
        model = None if message.model is None else _short(message.model)
        metadata = {**message.metadata, "source_id": message.source_id}
        try:
            return (
                role,
                author,
                model,
                *check_imported_message(role, parts, author, model, metadata),
            )
        except InvalidInput as error:
            outcome.warn(f"message {message.source_id!r}: {error.message}; content kept as a file")
            new = NewMessage(
                role=role, parts=tuple(parts), author=author, model=model, metadata=metadata
            )
            moved, attachment = self._oversized(new, message, message_id, conversation_id)
            stored.append(attachment)  # a real attachment: readable, and never swept
            checked = check_new_message(moved, json_checked=True)
            return (
                role,
                moved.author,
                moved.model,
                checked.content,
                checked.content_sha256,
                checked.metadata,
            )

    def _oversized(
        self, new: NewMessage, message: SourceMessage, message_id: str, conversation_id: str
    ) -> tuple[NewMessage, Attachment]:
        """A message too large (or odd) to store inline: its content as a JSON attachment."""
        encoded = canonical_json([p.to_dict() for p in new.parts if _jsonable(p)])
        sha = self._put(encoded)
        attachment = Attachment(
            id=new_id("attachment"),
            message_id=message_id,
            conversation_id=conversation_id,
            sha256=sha,
            size=len(encoded),
            mime_type="application/json",
            name="content.json",
            created_at=from_text(self._now),
        )
        preview = next((p.text for p in new.parts if p.kind == "text" and p.text), "")[:4000]
        moved = NewMessage(
            role=new.role,
            parts=(
                Part("text", preview),
                _file_part(SourceFile("content.json", "application/json"), attachment),
            ),
            author=new.author,
            model=new.model,
            metadata={"source_id": message.source_id, "content_moved_to_blob": True},
        )
        return moved, attachment

    def _attachment(
        self, file: SourceFile, message_id: str, conversation_id: str, outcome: ImportOutcome
    ) -> Attachment | None:
        if file.member is None or not self._source.exists(file.member):
            outcome.add("files_missing")
            return None
        outcome.add("files_stored")
        if self._dry_run:
            sha, size = "0" * 64, self._source.size(file.member)
        else:
            with self._source.open_member(file.member) as handle:
                if self._source.size(file.member) <= _IN_MEMORY_BLOB_BYTES:
                    sha, size, _ = self._blob_writer.put(handle.read())
                else:  # streamed, never held in memory
                    sha, size = self._blobs.put(handle, durable=False)
            self._note_blob(sha)
        return Attachment(
            id=new_id("attachment"),
            message_id=message_id,
            conversation_id=conversation_id,
            sha256=sha,
            size=size,
            mime_type=check_short_text("mime type", file.mime_type) or "application/octet-stream",
            name=check_short_text("file name", file.name[: limits.MAX_TITLE_LENGTH]) or "file",
            created_at=from_text(self._now),
        )

    def _put(self, data: bytes) -> str:
        if self._dry_run:
            return hashlib.sha256(data).hexdigest()
        sha, _, _ = self._blob_writer.put(data)
        self._note_blob(sha)
        return sha

    def _note_blob(self, sha: str) -> None:
        self.new_blobs.add(sha)


_TWO_DIGITS = tuple(f"{number:02d}" for number in range(100))


class _TimeText:
    """``to_text(moment)``, formatted faster for the UTC moments importers make: the
    date once per day (by ``to_text`` itself), the time from a table. An import stores
    one per message."""

    __slots__ = ("_days",)

    def __init__(self) -> None:
        self._days: dict[int, str] = {}

    def __call__(self, moment: datetime) -> str:
        if moment.tzinfo is not UTC:
            return to_text(moment)
        day = self._days.get(moment.toordinal())
        if day is None:
            if len(self._days) >= 4096:
                self._days.clear()
            day = self._days[moment.toordinal()] = to_text(moment)[:11]  # YYYY-MM-DDT
        two = _TWO_DIGITS
        return (
            f"{day}{two[moment.hour]}:{two[moment.minute]}:{two[moment.second]}"
            f".{moment.microsecond:06d}Z"
        )


def _title(title: str) -> str:
    cleaned = (title or "").replace("\x00", "").strip()
    return cleaned[: limits.MAX_TITLE_LENGTH] or "Untitled"


def _short(value: str | None) -> str | None:
    if value is None:
        return None
    return value.replace("\x00", "")[: limits.MAX_TITLE_LENGTH] or None


def _jsonable(part: Part) -> bool:
    try:
        canonical_json(part.to_dict())
    except TypeError:
        return False
    return True


def _with_file_parts(
    parts: Sequence[Part], files: Sequence[SourceFile], stored: Sequence[Attachment | None]
) -> list[Part]:
    """The message's parts, each file's attachment data merged into the part that points
    at it (a parser's image part), or appended as a part of its own."""
    merged = list(parts)
    for file, attachment in zip(files, stored, strict=True):
        extra = _file_part(file, attachment)
        for index, part in enumerate(merged):
            if (
                file.pointer
                and part.kind in ("image", "file")
                and part.data.get("asset_pointer") == file.pointer
            ):
                merged[index] = Part(part.kind, part.text, {**part.data, **extra.data})
                break
        else:
            merged.append(extra)
    return merged


def _file_part(file: SourceFile, stored: Attachment | None) -> Part:
    kind = "image" if file.mime_type.startswith("image/") else "file"
    data: dict[str, Any] = {"name": file.name, "mime_type": file.mime_type}
    if file.pointer:
        data["pointer"] = file.pointer
    if stored is None:
        data["missing"] = True
        if file.size is not None:
            data["size"] = file.size
    else:
        data.update(attachment_id=stored.id, size=stored.size, sha256=stored.sha256)
    return Part(kind, None, data)
