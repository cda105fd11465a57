"""Writing a parsed export into the SQL store: one transaction, merged by source ids.

* All or nothing: the whole import is one write transaction. A failure rolls it back,
  and the blobs it stored that nothing uses are removed afterwards.
* Kept apart: imported conversations live under an imported runtime (one per platform
  and account), with ``origin = 'imported'``; nothing here touches a native one.
* Idempotent: conversations are matched by (platform, source id) and messages by
  (conversation, source id). Only what is new is added; stored messages never change.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select, update

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
from chatkeep.validate import check_new_message, check_short_text, decode_json, encode_json_object

Progress = Callable[[int, int], None]
_LABEL_RE = re.compile(r"[^a-z0-9]+")
_MESSAGE_COLUMNS = [c.name for c in t.messages.columns if c.name != "pk"]
_ATTACHMENT_COLUMNS = [c.name for c in t.attachments.columns]


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
        # Bulk inserts bypass SQLAlchemy's per-row parameter handling: statements written
        # in Core, compiled once, run by the driver's executemany in this transaction.
        dialect = conn.dialect
        self._insert_message = Prepared.of(
            insert(t.messages).values({c: bindparam(c) for c in _MESSAGE_COLUMNS}), dialect
        )
        self._insert_attachment = Prepared.of(
            insert(t.attachments).values({c: bindparam(c) for c in _ATTACHMENT_COLUMNS}), dialect
        )

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
        try:
            return encode_json_object(what, value)
        except InvalidInput as error:
            # Provider metadata is kept only when it is storable JSON within limits.
            return canonical_json({"dropped": error.message}).decode()

    # -- conversations ------------------------------------------------------------------
    def write(
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

    def _insert_many(self, prepared: Prepared, rows: list[dict[str, Any]]) -> None:
        if rows:
            cursor = self._conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            try:
                cursor.executemany(prepared.sql, [prepared.bind(row) for row in rows])
            finally:
                cursor.close()

    def _existing(self, runtime_id: str, source_id: str) -> _Existing | None:
        c, m = t.conversations, t.messages
        row = self._conn.execute(
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
                c.c.user_id == self._user,
                c.c.runtime_id == runtime_id,
                c.c.source_id == source_id,
            )
        ).first()
        if row is None:
            return None
        known: dict[str, str] = {
            source_id: message_id
            for source_id, message_id in self._conn.execute(
                select(m.c.source_id, m.c.id).where(
                    m.c.conversation_id == row.id, m.c.source_id.is_not(None)
                )
            )
        }
        return _Existing(
            id=row.id,
            message_count=row.message_count,
            total_tokens=row.total_tokens,
            total_cost=row.total_cost,
            active_leaf_id=row.active_leaf_id,
            title=row.title,
            messages=known,
            source_title=decode_json(row.metadata).get("source_title"),
            updated_at=row.updated_at,
            metadata=decode_json(row.metadata),
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
        existing = self._existing(runtime_id, conv.source_id)
        if existing is None:
            self._insert_conversation(
                runtime_id, title=title, source=prepared, import_id=import_id, platform=platform
            )
            existing = self._existing(runtime_id, conv.source_id)
            assert existing is not None  # just inserted, in this transaction
            outcome.add("conversations_added")
            is_new = True
        else:
            is_new = False
        new_messages = [m for m in prepared.messages if m.source_id not in existing.messages]
        rows, attachments = self._message_rows(existing, new_messages, outcome)
        self._insert_many(self._insert_message, rows)
        self._insert_many(self._insert_attachment, attachments)
        leaf = existing.messages.get(prepared.active_leaf_source_id or "")
        # A title the user changed since the last import is theirs; otherwise follow the
        # export's. The export's title is remembered either way.
        renamed = existing.source_title is not None and existing.title != existing.source_title
        new_title = existing.title if renamed else title
        changed = (
            bool(rows)
            or leaf != existing.active_leaf_id
            or new_title != existing.title
            or (not is_new and existing.source_title != title)
        )
        if not is_new:
            outcome.add("conversations_updated" if changed else "conversations_unchanged")
        if changed:
            source_time = to_text(conv.updated_at) if conv.updated_at else None
            self._conn.execute(
                update(t.conversations)
                .where(t.conversations.c.id == existing.id)
                .values(
                    message_count=existing.message_count,
                    total_tokens=existing.total_tokens,
                    total_cost=existing.total_cost,
                    active_leaf_id=leaf,
                    title=new_title,
                    import_id=import_id,
                    updated_at=max(
                        filter(None, (existing.updated_at, source_time)), default=self._now
                    ),
                    metadata=self._json_object(
                        "conversation metadata", {**existing.metadata, "source_title": title}
                    ),
                )
            )
        outcome.add("messages_added", len(rows))
        return len(rows), existing.id

    def _message_rows(
        self, existing: _Existing, messages: Sequence[SourceMessage], outcome: ImportOutcome
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        rows: list[dict[str, Any]] = []
        attachment_rows: list[dict[str, Any]] = []
        for message in messages:
            message_id = new_id("message")
            stored = [self._attachment(f, message_id, existing.id, outcome) for f in message.files]
            parts = _with_file_parts(message.parts, message.files, stored)
            checked = self._checked(message, parts, outcome, stored, message_id, existing.id)
            rows.append(
                {
                    "id": message_id,
                    "user_id": self._user,
                    "conversation_id": existing.id,
                    "parent_id": existing.messages.get(message.parent_source_id or ""),
                    "seq": existing.message_count,
                    "role": checked.new.role,
                    "author": checked.new.author,
                    "content": checked.content,
                    "content_sha256": checked.content_sha256,
                    "created_at": to_text(message.created_at) if message.created_at else None,
                    "model": checked.new.model,
                    "tokens": None,
                    "cost": None,
                    "metadata": checked.metadata,
                    "hidden": int(message.hidden),
                    "source_id": message.source_id,
                }
            )
            attachment_rows += [
                {"user_id": self._user, **attachment_row(a)} for a in stored if a is not None
            ]
            existing.messages[message.source_id] = message_id
            existing.message_count += 1
        return rows, attachment_rows

    def _checked(
        self,
        message: SourceMessage,
        parts: list[Part],
        outcome: ImportOutcome,
        stored: list[Attachment | None],
        message_id: str,
        conversation_id: str,
    ) -> Any:
        role = message.role if message.role in ROLES else "tool"
        if role != message.role:
            outcome.warn(
                f"message {message.source_id!r}: unknown role {message.role!r} stored as tool"
            )
        new = NewMessage(
            role=role,
            parts=tuple(parts) or (Part("text", ""),),
            author=_short(message.author),
            model=_short(message.model),
            metadata={**message.metadata, "source_id": message.source_id},
        )
        try:
            return check_new_message(new, json_checked=True)
        except InvalidInput as error:
            outcome.warn(f"message {message.source_id!r}: {error.message}; content kept as a file")
            moved = self._oversized(new, message, message_id, conversation_id)
            stored.append(moved[1])  # a real attachment: readable, and never swept
            return check_new_message(moved[0], json_checked=True)

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
        sha, _ = self._blobs.put(data, durable=False)
        self._note_blob(sha)
        return sha

    def _note_blob(self, sha: str) -> None:
        self.new_blobs.add(sha)


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
