"""The SQL implementation of the :class:`~chatkeep.store.Store` contract.

Written against SQLAlchemy Core only, so SQLite and PostgreSQL share it; what differs
(engine set-up, write locking, integrity pragmas) is handed in by the dialect module.

Write protocol for attachments: the blob is written and fsynced *before* the transaction
that inserts its row, and re-checked inside that transaction (a concurrent delete may have
removed it); blobs are removed only in a later transaction that finds no row using them.
A crash can therefore leave an unreferenced blob, never a row without its blob.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Row,
    Table,
    and_,
    delete,
    exists,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError

from chatkeep import limits
from chatkeep.backends import schema as t
from chatkeep.backends.appender import (
    Appender,
    AppendStatements,
    PendingAttachment,
    RawWrite,
    attachment_row,
)
from chatkeep.backends.hooks import WriteHooks
from chatkeep.backends.search_base import SearchEngine
from chatkeep.backends.sql_import import ImportOutcome, ImportWriter, Progress
from chatkeep.backends.sql_lifecycle import LifecycleTables
from chatkeep.blobs import BlobStore
from chatkeep.errors import (
    ChatkeepError,
    Conflict,
    InvalidInput,
    LimitExceeded,
    NotFound,
    StorageError,
)
from chatkeep.ids import check_id, check_name, check_setting_key, new_id, primary_conversation_title
from chatkeep.importers.model import ParsedExport
from chatkeep.importers.source import ExportSource
from chatkeep.model import (
    ApiToken,
    Attachment,
    Branch,
    Conversation,
    ConversationState,
    ImportRecord,
    Message,
    NewAttachment,
    NewMessage,
    Part,
    Problem,
    Runtime,
    User,
    searchable_text,
)
from chatkeep.search import SearchFilters, SearchPage, parse_query
from chatkeep.store import DeleteReport, ImportFile
from chatkeep.timeutil import from_text, optional_from_text, to_text, utcnow
from chatkeep.validate import (
    check_new_message,
    check_page,
    check_short_text,
    check_tags,
    check_vectors,
    decode_json,
    encode_json,
    encode_json_object,
)

_COST_TOLERANCE = 1e-6


class SqlStore(LifecycleTables):
    """:class:`~chatkeep.store.Store` on a SQL database through SQLAlchemy Core."""

    def __init__(
        self,
        engine: Engine,
        blobs: BlobStore,
        *,
        write_options: dict[str, str],
        raw_write: RawWrite,
        translate: Callable[[BaseException], ChatkeepError],
        dialect_checks: Callable[[Connection], list[str]],
        search: SearchEngine,
        after_load: Callable[[Connection], None] = lambda _conn: None,
        compact: Callable[[], None] = lambda: None,
        hooks: WriteHooks | None = None,
    ) -> None:
        self._hooks = hooks
        self._compact = compact
        self._engine = engine
        self._after_load = after_load
        self._blobs = blobs
        self._write_options = write_options
        self._translate = translate
        self._dialect_checks = dialect_checks
        self._search = search
        self._raw_write = raw_write
        self._appender = Appender(AppendStatements(engine.dialect), raw_write)

    # -- transactions --------------------------------------------------------------
    @contextmanager
    def _write(self) -> Iterator[Connection]:
        hooks = self._hooks
        try:
            connection = self._engine.connect().execution_options(**self._write_options)
            with connection as conn:
                try:
                    with conn.begin():
                        yield conn
                        if hooks is not None:
                            hooks.before_commit(conn.connection.dbapi_connection)
                except BaseException:
                    if hooks is not None:
                        hooks.after_rollback()
                    raise
            if hooks is not None:
                hooks.after_commit()
        except DBAPIError as exc:
            raise self._translate(exc.orig or exc) from exc

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        try:
            with self._engine.connect() as conn, conn.begin():
                yield conn
        except DBAPIError as exc:
            raise self._translate(exc.orig or exc) from exc

    def close(self) -> None:
        self._raw_write.close()
        self._engine.dispose()

    # -- users ---------------------------------------------------------------------
    def add_user(self, user_id: str, *, display_name: str | None = None) -> User:
        check_name("user", user_id)
        check_short_text("display name", display_name)
        now = utcnow()
        with self._write() as conn:
            if conn.execute(select(t.users.c.id).where(t.users.c.id == user_id)).first():
                raise Conflict(f"user {user_id!r} exists already")
            conn.execute(
                insert(t.users).values(
                    id=user_id, display_name=display_name, created_at=to_text(now)
                )
            )
        return User(id=user_id, display_name=display_name, created_at=from_text(to_text(now)))

    def get_user(self, user_id: str) -> User:
        check_name("user", user_id)
        with self._read() as conn:
            row = conn.execute(select(t.users).where(t.users.c.id == user_id)).first()
        if row is None:
            raise _user_not_found(user_id)
        return _user(row)

    def list_users(self) -> list[User]:
        with self._read() as conn:
            rows = conn.execute(select(t.users).order_by(t.users.c.id)).all()
        return [_user(row) for row in rows]

    def _require_user(self, conn: Connection, user_id: str) -> None:
        check_name("user", user_id)
        if conn.execute(select(t.users.c.id).where(t.users.c.id == user_id)).first() is None:
            raise _user_not_found(user_id)

    # -- runtimes ------------------------------------------------------------------
    def create_runtime(
        self,
        user_id: str,
        runtime_id: str,
        *,
        name: str | None = None,
        config: dict[str, Any] | None = None,
    ) -> Runtime:
        check_name("runtime", runtime_id)
        check_short_text("runtime name", name)
        config_json = encode_json_object("runtime configuration", config or {})
        with self._write() as conn:
            self._require_user(conn, user_id)
            if self._runtime_row(conn, user_id, runtime_id, required=False) is not None:
                raise Conflict(f"runtime {runtime_id!r} exists already")
            now = to_text(utcnow())
            conn.execute(
                insert(t.runtimes).values(
                    user_id=user_id,
                    id=runtime_id,
                    name=name or runtime_id,
                    origin="native",
                    config=config_json,
                    primary_conversation_id=None,
                    created_at=now,
                    updated_at=now,
                )
            )
            self._create_primary(conn, user_id, runtime_id)
            return _runtime(self._runtime_row(conn, user_id, runtime_id))

    def _create_primary(self, conn: Connection, user_id: str, runtime_id: str) -> str:
        conversation_id = self._insert_conversation(
            conn, user_id, runtime_id, title=primary_conversation_title(runtime_id)
        )
        conn.execute(
            update(t.runtimes)
            .where(t.runtimes.c.user_id == user_id, t.runtimes.c.id == runtime_id)
            .values(primary_conversation_id=conversation_id)
        )
        return conversation_id

    def get_runtime(self, user_id: str, runtime_id: str) -> Runtime:
        with self._read() as conn:
            return _runtime(self._runtime_row(conn, user_id, runtime_id))

    def list_runtimes(self, user_id: str) -> list[Runtime]:
        with self._read() as conn:
            self._require_user(conn, user_id)
            rows = conn.execute(
                select(t.runtimes).where(t.runtimes.c.user_id == user_id).order_by(t.runtimes.c.id)
            ).all()
        return [_runtime(row) for row in rows]

    def update_runtime(
        self,
        user_id: str,
        runtime_id: str,
        *,
        name: str | None = None,
        config: dict[str, Any] | None = None,
    ) -> Runtime:
        check_short_text("runtime name", name)
        values: dict[str, Any] = {"updated_at": to_text(utcnow())}
        if name is not None:
            values["name"] = name
        if config is not None:
            values["config"] = encode_json_object("runtime configuration", config)
        with self._write() as conn:
            self._runtime_row(conn, user_id, runtime_id)
            conn.execute(
                update(t.runtimes)
                .where(t.runtimes.c.user_id == user_id, t.runtimes.c.id == runtime_id)
                .values(**values)
            )
            return _runtime(self._runtime_row(conn, user_id, runtime_id))

    def delete_runtime(self, user_id: str, runtime_id: str) -> DeleteReport:
        with self._write() as conn:
            runtime = self._runtime_row(conn, user_id, runtime_id)
            c = t.conversations
            others = conn.execute(
                select(func.count())
                .select_from(c)
                .where(
                    c.c.user_id == user_id,
                    c.c.runtime_id == runtime_id,
                    c.c.id != (runtime.primary_conversation_id or ""),
                )
            ).scalar_one()
            if others:
                raise Conflict(
                    f"runtime {runtime_id!r} still has {others} other conversation(s)",
                    hint="delete them (including trashed ones) before the runtime",
                )
            report, shas = self._delete_conversation_rows(
                conn, user_id, [runtime.primary_conversation_id]
            )
            conn.execute(
                delete(t.pins).where(t.pins.c.user_id == user_id, t.pins.c.runtime_id == runtime_id)
            )
            conn.execute(
                delete(t.runtimes).where(
                    t.runtimes.c.user_id == user_id, t.runtimes.c.id == runtime_id
                )
            )
        return self._finish_delete(report, shas)

    def route(self, user_id: str, runtime_id: str) -> Conversation:
        with self._read() as conn:
            runtime = self._runtime_row(conn, user_id, runtime_id)
            if runtime.primary_conversation_id and self._is_live_primary(
                conn, user_id, runtime.primary_conversation_id
            ):
                return self._conversation(conn, user_id, runtime.primary_conversation_id)
        with self._write() as conn:
            # Re-read under the write lock: another process may have repaired it already.
            runtime = self._runtime_row(conn, user_id, runtime_id)
            primary = runtime.primary_conversation_id
            if primary and self._conversation_row(conn, user_id, primary, required=False):
                conn.execute(
                    update(t.conversations)
                    .where(t.conversations.c.id == primary)
                    .values(state="active", trashed_at=None)
                )
            else:
                primary = self._create_primary(conn, user_id, runtime_id)
            return self._conversation(conn, user_id, primary)

    def _is_live_primary(self, conn: Connection, user_id: str, conversation_id: str) -> bool:
        row = self._conversation_row(conn, user_id, conversation_id, required=False)
        return row is not None and row.state == "active"

    def _runtime_row(
        self, conn: Connection, user_id: str, runtime_id: str, *, required: bool = True
    ) -> Any:
        check_name("user", user_id)
        check_name("runtime", runtime_id)
        row = conn.execute(
            select(t.runtimes).where(t.runtimes.c.user_id == user_id, t.runtimes.c.id == runtime_id)
        ).first()
        if row is None and required:
            self._require_user(conn, user_id)
            raise NotFound(
                f"no runtime {runtime_id!r}", hint="list runtimes with 'chatkeep runtime ls'"
            )
        return row

    # -- conversations -------------------------------------------------------------
    def _insert_conversation(
        self,
        conn: Connection,
        user_id: str,
        runtime_id: str,
        *,
        title: str,
        model: str | None = None,
        forked_from: tuple[str, str] | None = None,
    ) -> str:
        conversation_id = new_id("conversation")
        now = to_text(utcnow())
        conn.execute(
            insert(t.conversations).values(
                id=conversation_id,
                user_id=user_id,
                runtime_id=runtime_id,
                title=title,
                origin="native",
                state="active",
                model=model,
                message_count=0,
                total_tokens=0,
                total_cost=0.0,
                active_leaf_id=None,
                forked_from_conversation_id=forked_from[0] if forked_from else None,
                forked_from_message_id=forked_from[1] if forked_from else None,
                created_at=now,
                updated_at=now,
                trashed_at=None,
            )
        )
        return conversation_id

    def create_conversation(
        self,
        user_id: str,
        runtime_id: str,
        *,
        title: str | None = None,
        model: str | None = None,
        tags: Sequence[str] = (),
    ) -> Conversation:
        check_short_text("title", title)
        check_short_text("model", model)
        checked_tags = check_tags(tags)
        if len(checked_tags) > limits.MAX_TAGS_PER_CONVERSATION:
            raise LimitExceeded(f"at most {limits.MAX_TAGS_PER_CONVERSATION} tags")
        with self._write() as conn:
            self._runtime_row(conn, user_id, runtime_id)
            conversation_id = self._insert_conversation(
                conn, user_id, runtime_id, title=title or "New conversation", model=model
            )
            self._add_tags(conn, user_id, conversation_id, checked_tags)
            return self._conversation(conn, user_id, conversation_id)

    def get_conversation(self, user_id: str, conversation_id: str) -> Conversation:
        check_name("user", user_id)
        check_id("conversation", conversation_id)
        with self._read() as conn:
            return self._conversation(conn, user_id, conversation_id)

    def list_conversations(
        self,
        user_id: str,
        *,
        runtime_id: str | None = None,
        state: ConversationState = "active",
        limit: int = 50,
        offset: int = 0,
    ) -> list[Conversation]:
        if state not in ("active", "archived", "trashed"):
            raise InvalidInput(f"unknown state {state!r}")
        check_page(limit, offset)
        with self._read() as conn:
            self._require_user(conn, user_id)
            if runtime_id is None or state != "active":
                if runtime_id is not None:
                    self._runtime_row(conn, user_id, runtime_id)
                return self._list_by_activity(conn, user_id, runtime_id, state, limit, offset)
            return self._sidebar(conn, user_id, runtime_id, limit, offset)

    def _sidebar(
        self, conn: Connection, user_id: str, runtime_id: str, limit: int, offset: int
    ) -> list[Conversation]:
        runtime = self._runtime_row(conn, user_id, runtime_id)
        c, p = t.conversations, t.pins
        primary_id = runtime.primary_conversation_id or ""
        head_ids: list[str] = []
        if primary_id and self._is_live_primary(conn, user_id, primary_id):
            head_ids.append(primary_id)
        head_ids += conn.scalars(
            select(p.c.conversation_id)
            .join(c, c.c.id == p.c.conversation_id)
            .where(
                p.c.user_id == user_id,
                p.c.runtime_id == runtime_id,
                c.c.state == "active",
                c.c.id != primary_id,
            )
            .order_by(p.c.pinned_at.desc(), p.c.conversation_id.desc())
        ).all()
        page_ids = head_ids[offset : offset + limit]
        remaining = limit - len(page_ids)
        if remaining > 0:
            pinned = exists().where(
                p.c.user_id == user_id, p.c.runtime_id == runtime_id, p.c.conversation_id == c.c.id
            )
            page_ids += conn.scalars(
                select(c.c.id)
                .where(
                    c.c.user_id == user_id,
                    c.c.runtime_id == runtime_id,
                    c.c.state == "active",
                    c.c.id != primary_id,
                    ~pinned,
                )
                .order_by(c.c.updated_at.desc(), c.c.id.desc())
                .limit(remaining)
                .offset(max(0, offset - len(head_ids)))
            ).all()
        return self._conversations(conn, user_id, page_ids)

    def _list_by_activity(
        self,
        conn: Connection,
        user_id: str,
        runtime_id: str | None,
        state: str,
        limit: int,
        offset: int,
    ) -> list[Conversation]:
        c = t.conversations
        query = select(c.c.id).where(c.c.user_id == user_id, c.c.state == state)
        if runtime_id is not None:
            query = query.where(c.c.runtime_id == runtime_id)
        ids = conn.scalars(
            query.order_by(c.c.updated_at.desc(), c.c.id.desc()).limit(limit).offset(offset)
        ).all()
        return self._conversations(conn, user_id, list(ids))

    def rename_conversation(self, user_id: str, conversation_id: str, title: str) -> Conversation:
        checked = check_short_text("title", title, required=True)
        return self._update_conversation(user_id, conversation_id, title=checked)

    def tag_conversation(
        self,
        user_id: str,
        conversation_id: str,
        *,
        add: Sequence[str] = (),
        remove: Sequence[str] = (),
    ) -> Conversation:
        to_add, to_remove = check_tags(add), check_tags(remove)
        with self._write() as conn:
            self._conversation_row(conn, user_id, conversation_id)
            tags = t.conversation_tags
            if to_remove:
                conn.execute(
                    delete(tags).where(
                        tags.c.conversation_id == conversation_id, tags.c.tag.in_(to_remove)
                    )
                )
            added = self._add_tags(conn, user_id, conversation_id, to_add)
            count = conn.execute(
                select(func.count()).where(tags.c.conversation_id == conversation_id)
            ).scalar_one()
            if count > limits.MAX_TAGS_PER_CONVERSATION:
                raise LimitExceeded(
                    f"a conversation can have at most {limits.MAX_TAGS_PER_CONVERSATION} tags"
                )
            if added or to_remove:
                self._touch(conn, conversation_id)
            return self._conversation(conn, user_id, conversation_id)

    def _add_tags(
        self, conn: Connection, user_id: str, conversation_id: str, tags: Sequence[str]
    ) -> int:
        ct = t.conversation_tags
        existing = set(
            conn.scalars(select(ct.c.tag).where(ct.c.conversation_id == conversation_id))
        )
        new = [tag for tag in tags if tag not in existing]
        if new:
            conn.execute(
                insert(ct),
                [
                    {"conversation_id": conversation_id, "user_id": user_id, "tag": tag}
                    for tag in new
                ],
            )
        return len(new)

    def pin_conversation(self, user_id: str, conversation_id: str) -> Conversation:
        with self._write() as conn:
            row = self._conversation_row(conn, user_id, conversation_id)
            p = t.pins
            already = conn.execute(
                select(p.c.conversation_id).where(
                    p.c.user_id == user_id,
                    p.c.runtime_id == row.runtime_id,
                    p.c.conversation_id == conversation_id,
                )
            ).first()
            if already is None:
                conn.execute(
                    insert(p).values(
                        user_id=user_id,
                        runtime_id=row.runtime_id,
                        conversation_id=conversation_id,
                        pinned_at=to_text(utcnow()),
                    )
                )
            return self._conversation(conn, user_id, conversation_id)

    def unpin_conversation(self, user_id: str, conversation_id: str) -> Conversation:
        with self._write() as conn:
            self._conversation_row(conn, user_id, conversation_id)
            conn.execute(
                delete(t.pins).where(
                    t.pins.c.user_id == user_id, t.pins.c.conversation_id == conversation_id
                )
            )
            return self._conversation(conn, user_id, conversation_id)

    def archive_conversation(self, user_id: str, conversation_id: str) -> Conversation:
        return self._change_state(user_id, conversation_id, "archived", allowed_from=("active",))

    def unarchive_conversation(self, user_id: str, conversation_id: str) -> Conversation:
        return self._change_state(user_id, conversation_id, "active", allowed_from=("archived",))

    def trash_conversation(self, user_id: str, conversation_id: str) -> Conversation:
        return self._change_state(
            user_id, conversation_id, "trashed", allowed_from=("active", "archived")
        )

    def restore_conversation(self, user_id: str, conversation_id: str) -> Conversation:
        return self._change_state(user_id, conversation_id, "active", allowed_from=("trashed",))

    def _change_state(
        self,
        user_id: str,
        conversation_id: str,
        target: ConversationState,
        *,
        allowed_from: tuple[str, ...],
    ) -> Conversation:
        with self._write() as conn:
            row = self._conversation_row(conn, user_id, conversation_id)
            if row.state == target:
                return self._conversation(conn, user_id, conversation_id)
            if target != "active" and self._is_primary(conn, row):
                raise Conflict(
                    f"{conversation_id} is the home conversation of runtime "
                    f"{row.runtime_id!r} and cannot be {target}",
                    hint="delete the runtime to remove its home conversation",
                )
            if row.state not in allowed_from:
                raise Conflict(
                    f"conversation {conversation_id} is {row.state}, not {allowed_from[0]}"
                )
            now = to_text(utcnow())
            conn.execute(
                update(t.conversations)
                .where(t.conversations.c.id == conversation_id)
                .values(
                    state=target, trashed_at=now if target == "trashed" else None, updated_at=now
                )
            )
            return self._conversation(conn, user_id, conversation_id)

    def _is_primary(self, conn: Connection, row: Any) -> bool:
        runtime = self._runtime_row(conn, row.user_id, row.runtime_id, required=False)
        return runtime is not None and runtime.primary_conversation_id == row.id

    def _update_conversation(
        self, user_id: str, conversation_id: str, **values: Any
    ) -> Conversation:
        with self._write() as conn:
            self._conversation_row(conn, user_id, conversation_id)
            conn.execute(
                update(t.conversations)
                .where(t.conversations.c.id == conversation_id)
                .values(updated_at=to_text(utcnow()), **values)
            )
            return self._conversation(conn, user_id, conversation_id)

    def _touch(self, conn: Connection, conversation_id: str) -> None:
        conn.execute(
            update(t.conversations)
            .where(t.conversations.c.id == conversation_id)
            .values(updated_at=to_text(utcnow()))
        )

    def delete_conversation(self, user_id: str, conversation_id: str) -> DeleteReport:
        with self._write() as conn:
            row = self._conversation_row(conn, user_id, conversation_id)
            if self._is_primary(conn, row):
                raise Conflict(
                    f"{conversation_id} is the home conversation of runtime {row.runtime_id!r} "
                    "and cannot be deleted while the runtime exists",
                    hint="delete the runtime instead",
                )
            report, shas = self._delete_conversation_rows(conn, user_id, [conversation_id])
        return self._finish_delete(report, shas)

    def delete_import(self, user_id: str, import_id: str) -> DeleteReport:
        """Delete what an import brought: the conversations it last wrote (never a
        runtime's home) with their messages and unused blobs, and its record."""
        check_name("user", user_id)
        check_id("import", import_id)
        i, c, r = t.imports, t.conversations, t.runtimes
        with self._write() as conn:
            self._require_user(conn, user_id)
            found = conn.execute(
                select(i.c.runtime_id).where(i.c.id == import_id, i.c.user_id == user_id)
            ).first()
            if found is None:
                raise NotFound(f"no import {import_id}")
            homes = select(r.c.primary_conversation_id).where(
                r.c.user_id == user_id, r.c.primary_conversation_id.is_not(None)
            )
            ids = list(
                conn.scalars(
                    select(c.c.id).where(
                        c.c.user_id == user_id, c.c.import_id == import_id, c.c.id.not_in(homes)
                    )
                )
            )
            total = DeleteReport(conversations=0, messages=0, attachments=0, blobs=0)
            shas: set[str] = set()
            for start in range(0, len(ids), 500):
                report, used = self._delete_conversation_rows(
                    conn, user_id, ids[start : start + 500]
                )
                shas |= used
                total = DeleteReport(
                    conversations=total.conversations + report.conversations,
                    messages=total.messages + report.messages,
                    attachments=total.attachments + report.attachments,
                    blobs=0,
                )
            conn.execute(delete(i).where(i.c.id == import_id, i.c.user_id == user_id))
        return self._finish_delete(total, shas)

    def _delete_conversation_rows(
        self, conn: Connection, user_id: str, conversation_ids: Sequence[str | None]
    ) -> tuple[DeleteReport, set[str]]:
        ids = [cid for cid in conversation_ids if cid]
        a, m, c = t.attachments, t.messages, t.conversations
        shas = set(conn.scalars(select(a.c.sha256).where(a.c.conversation_id.in_(ids))))
        attachments = conn.execute(
            select(func.count()).where(a.c.conversation_id.in_(ids))
        ).scalar_one()
        messages = conn.execute(
            select(func.count()).where(m.c.conversation_id.in_(ids))
        ).scalar_one()
        # Children before parents: messages refer to each other and to the conversation.
        conn.execute(delete(a).where(a.c.conversation_id.in_(ids), a.c.user_id == user_id))
        conn.execute(
            update(c).where(c.c.id.in_(ids), c.c.user_id == user_id).values(active_leaf_id=None)
        )
        conn.execute(delete(m).where(m.c.conversation_id.in_(ids), m.c.user_id == user_id))
        conn.execute(
            delete(t.conversation_tags).where(t.conversation_tags.c.conversation_id.in_(ids))
        )
        conn.execute(delete(t.pins).where(t.pins.c.conversation_id.in_(ids)))
        deleted = conn.execute(delete(c).where(c.c.id.in_(ids), c.c.user_id == user_id)).rowcount
        report = DeleteReport(
            conversations=deleted, messages=messages, attachments=attachments, blobs=0
        )
        return report, shas

    def _finish_delete(self, report: DeleteReport, shas: set[str]) -> DeleteReport:
        """Remove blobs no row refers to any more, under the write lock (see module doc)."""
        if not shas:
            return report
        removed = 0
        try:
            with self._write() as conn:
                still_used = set(
                    conn.scalars(
                        select(t.attachments.c.sha256).where(t.attachments.c.sha256.in_(shas))
                    )
                )
                for sha in sorted(shas - still_used):
                    removed += self._blobs.remove(sha)
        except ChatkeepError:
            # The rows are gone already (committed); what could not be removed now is an
            # unused blob that 'doctor --fix' clears later. Never report the delete failed.
            pass
        return replace(report, blobs=removed)

    def fork_conversation(
        self,
        user_id: str,
        conversation_id: str,
        message_id: str,
        *,
        title: str | None = None,
    ) -> Conversation:
        check_short_text("title", title)
        check_id("message", message_id)
        with self._write() as conn:
            source = self._conversation_row(conn, user_id, conversation_id)
            self._message_in(conn, user_id, conversation_id, message_id)
            path = self._path_rows(conn, user_id, message_id)
            fork_id = self._insert_conversation(
                conn,
                user_id,
                source.runtime_id,
                title=title or f"{source.title[: limits.MAX_TITLE_LENGTH - 7]} (fork)",
                model=source.model,
                forked_from=(conversation_id, message_id),
            )
            self._copy_messages(conn, user_id, fork_id, path)
            tags = conn.scalars(
                select(t.conversation_tags.c.tag).where(
                    t.conversation_tags.c.conversation_id == conversation_id
                )
            ).all()
            self._add_tags(conn, user_id, fork_id, tags)
            return self._conversation(conn, user_id, fork_id)

    def _copy_messages(
        self, conn: Connection, user_id: str, target_id: str, rows: Sequence[Any]
    ) -> None:
        new_ids: dict[str, str] = {}
        attachments = self._attachments_for(conn, [row.id for row in rows])
        tokens, cost, leaf = 0, 0.0, None
        for seq, row in enumerate(rows):
            copy_id = new_id("message")
            new_ids[row.id] = copy_id
            content = row.content
            copies: list[Attachment] = []
            for original in attachments.get(row.id, ()):
                copy_attachment_id = new_id("attachment")
                content = content.replace(original.id, copy_attachment_id)
                copies.append(
                    replace(
                        original,
                        id=copy_attachment_id,
                        message_id=copy_id,
                        conversation_id=target_id,
                    )
                )
            values = dict(row._mapping)
            values.pop("pk")
            values.update(
                id=copy_id,
                conversation_id=target_id,
                parent_id=new_ids.get(row.parent_id) if row.parent_id else None,
                seq=seq,
                content=content,
                content_sha256=hashlib.sha256(content.encode("utf-8")).hexdigest(),
            )
            conn.execute(insert(t.messages).values(**values))
            for copy in copies:
                conn.execute(insert(t.attachments).values(user_id=user_id, **attachment_row(copy)))
            tokens += row.tokens or 0
            cost += row.cost or 0.0
            leaf = copy_id
        conn.execute(
            update(t.conversations)
            .where(t.conversations.c.id == target_id)
            .values(
                message_count=len(rows), total_tokens=tokens, total_cost=cost, active_leaf_id=leaf
            )
        )

    # -- messages ------------------------------------------------------------------
    def append_message(self, user_id: str, conversation_id: str, message: NewMessage) -> Message:
        return self.append_messages(user_id, conversation_id, [message])[0]

    def append_messages(
        self, user_id: str, conversation_id: str, messages: Sequence[NewMessage]
    ) -> list[Message]:
        check_name("user", user_id)
        check_id("conversation", conversation_id)
        if not messages:
            return []
        if len(messages) > limits.MAX_BATCH_MESSAGES:
            raise LimitExceeded(f"at most {limits.MAX_BATCH_MESSAGES} messages per call")
        checked = [check_new_message(m) for m in messages]
        for item in checked:
            if item.new.parent_id is not None:
                check_id("message", item.new.parent_id)
        if not any(item.new.attachments for item in checked):
            return self._appender.append(user_id, conversation_id, checked, [[]] * len(checked))
        # Blobs first, outside the write lock: a large file must not stall other writers.
        # A cheap look first, so an append that must fail stores nothing.
        self.get_conversation(user_id, conversation_id)
        pending = [[self._store_blob(a) for a in item.new.attachments] for item in checked]
        try:
            return self._appender.append(user_id, conversation_id, checked, pending)
        except BaseException:
            # Refused after all (a foreign parent, the trash): its blobs go unless used.
            self._finish_delete(DeleteReport(0, 0, 0, 0), {p.sha256 for ps in pending for p in ps})
            raise

    def _store_blob(self, attachment: NewAttachment) -> PendingAttachment:
        sha, size = self._put_blob(attachment)

        def ensure() -> None:
            # Called under the write lock: a concurrent delete or sweep may have removed
            # a blob that existed when ours was stored (content addressing deduplicated
            # the write), so store it again, and it must still be the same bytes.
            if not self._blobs.exists(sha) and self._put_blob(attachment)[0] != sha:
                raise InvalidInput(
                    f"attachment {attachment.name!r} changed while it was being stored",
                    hint="retry once the file is no longer being written",
                )

        return PendingAttachment(
            sha256=sha,
            size=size,
            name=attachment.name,
            mime_type=attachment.mime_type,
            ensure=ensure,
        )

    def _put_blob(self, attachment: NewAttachment) -> tuple[str, int]:
        if attachment.data is not None:
            return self._blobs.put(attachment.data)
        vault_root = self._blobs.directory.parent.resolve()
        path = Path(str(attachment.path)).resolve()
        if path == vault_root or vault_root in path.parents:
            # The vault's own files hold every user's data: never an attachment source.
            raise InvalidInput(f"cannot attach {attachment.path}: it is inside the vault")
        try:
            with open(str(attachment.path), "rb") as handle:  # noqa: PTH123
                return self._blobs.put(handle)
        except OSError as exc:
            raise InvalidInput(f"cannot read attachment {attachment.path}: {exc.strerror}") from exc

    def get_message(self, user_id: str, message_id: str) -> Message:
        check_name("user", user_id)
        check_id("message", message_id)
        with self._read() as conn:
            row = conn.execute(
                select(t.messages).where(
                    t.messages.c.id == message_id, t.messages.c.user_id == user_id
                )
            ).first()
            if row is None:
                raise NotFound(f"no message {message_id}")
            return self._messages(conn, [row])[0]

    def list_messages(
        self,
        user_id: str,
        conversation_id: str,
        *,
        leaf_id: str | None = None,
        all_branches: bool = False,
    ) -> list[Message]:
        with self._read() as conn:
            conversation = self._conversation_row(conn, user_id, conversation_id)
            if all_branches:
                rows = conn.execute(
                    select(t.messages)
                    .where(t.messages.c.conversation_id == conversation_id)
                    .order_by(t.messages.c.seq)
                ).all()
                return self._messages(conn, rows)
            if leaf_id is not None:
                self._message_in(conn, user_id, conversation_id, check_id("message", leaf_id))
            tip = leaf_id or conversation.active_leaf_id
            if tip is None:
                return []
            return self._messages(conn, self._path_rows(conn, user_id, tip))

    def list_branches(self, user_id: str, conversation_id: str) -> list[Branch]:
        with self._read() as conn:
            conversation = self._conversation_row(conn, user_id, conversation_id)
            m = t.messages
            rows = conn.execute(
                select(m.c.id, m.c.parent_id)
                .where(m.c.conversation_id == conversation_id)
                .order_by(m.c.seq)
            ).all()
        parent_of = {row.id: row.parent_id for row in rows}
        has_children = {row.parent_id for row in rows if row.parent_id}
        branches: list[Branch] = []
        for row in rows:
            if row.id in has_children:
                continue
            path = []
            node: str | None = row.id
            while node is not None:
                path.append(node)
                node = parent_of.get(node)
            path.reverse()
            branches.append(
                Branch(
                    index=len(branches) + 1,
                    leaf_id=row.id,
                    length=len(path),
                    active=row.id == conversation.active_leaf_id,
                    message_ids=tuple(path),
                )
            )
        return branches

    def _path_rows(self, conn: Connection, user_id: str, leaf_id: str) -> list[Any]:
        m = t.messages
        path = (
            select(m.c.id, m.c.parent_id)
            .where(m.c.id == leaf_id, m.c.user_id == user_id)
            .cte("path", recursive=True)
        )
        path = path.union_all(select(m.c.id, m.c.parent_id).join(path, m.c.id == path.c.parent_id))
        return list(conn.execute(select(m).join(path, m.c.id == path.c.id).order_by(m.c.seq)).all())

    def _message_in(
        self,
        conn: Connection,
        user_id: str,
        conversation_id: str,
        message_id: str,
        *,
        role: str = "message",
    ) -> None:
        owner = conn.execute(
            select(t.messages.c.conversation_id).where(
                t.messages.c.id == message_id, t.messages.c.user_id == user_id
            )
        ).scalar()
        if owner is None:
            raise NotFound(f"no {role} {message_id}")
        if owner != conversation_id:
            raise InvalidInput(
                f"{role} {message_id} belongs to another conversation, not {conversation_id}"
            )

    def _attachments_for(
        self, conn: Connection, message_ids: Sequence[str]
    ) -> dict[str, list[Attachment]]:
        found: dict[str, list[Attachment]] = {}
        a = t.attachments
        for start in range(0, len(message_ids), 500):
            chunk = message_ids[start : start + 500]
            for row in conn.execute(select(a).where(a.c.message_id.in_(chunk)).order_by(a.c.id)):
                found.setdefault(row.message_id, []).append(_attachment(row))
        return found

    def _messages(self, conn: Connection, rows: Sequence[Any]) -> list[Message]:
        attachments = self._attachments_for(conn, [row.id for row in rows])
        return [_message(row, attachments.get(row.id, [])) for row in rows]

    def get_attachment(self, user_id: str, attachment_id: str) -> Attachment:
        check_name("user", user_id)
        check_id("attachment", attachment_id)
        with self._read() as conn:
            row = conn.execute(
                select(t.attachments).where(
                    t.attachments.c.id == attachment_id, t.attachments.c.user_id == user_id
                )
            ).first()
        if row is None:
            raise NotFound(f"no attachment {attachment_id}")
        return _attachment(row)

    def read_attachment(self, user_id: str, attachment_id: str) -> bytes:
        attachment = self.get_attachment(user_id, attachment_id)
        try:
            return self._blobs.read(attachment.sha256)
        except OSError as exc:
            raise StorageError(
                f"the bytes of attachment {attachment_id} cannot be read: {exc.strerror}",
                hint="run 'chatkeep doctor' to check the vault",
            ) from exc

    # -- settings ------------------------------------------------------------------
    def get_setting(self, user_id: str, key: str) -> Any:
        check_setting_key(key)
        with self._read() as conn:
            self._require_user(conn, user_id)
            value = conn.execute(
                select(t.settings.c.value).where(
                    t.settings.c.user_id == user_id, t.settings.c.key == key
                )
            ).scalar()
        if value is None:
            raise NotFound(f"no setting {key!r}")
        return decode_json(value)

    def set_setting(self, user_id: str, key: str, value: Any) -> None:
        check_setting_key(key)
        encoded = encode_json(f"setting {key}", value)
        s = t.settings
        with self._write() as conn:
            self._require_user(conn, user_id)
            conn.execute(delete(s).where(s.c.user_id == user_id, s.c.key == key))
            conn.execute(
                insert(s).values(
                    user_id=user_id, key=key, value=encoded, updated_at=to_text(utcnow())
                )
            )

    def delete_setting(self, user_id: str, key: str) -> None:
        check_setting_key(key)
        s = t.settings
        with self._write() as conn:
            self._require_user(conn, user_id)
            if not conn.execute(delete(s).where(s.c.user_id == user_id, s.c.key == key)).rowcount:
                raise NotFound(f"no setting {key!r}")

    def list_settings(self, user_id: str, *, prefix: str | None = None) -> dict[str, Any]:
        s = t.settings
        with self._read() as conn:
            self._require_user(conn, user_id)
            rows = conn.execute(
                select(s.c.key, s.c.value).where(s.c.user_id == user_id).order_by(s.c.key)
            ).all()
        return {
            row.key: decode_json(row.value)
            for row in rows
            if prefix is None or row.key == prefix or row.key.startswith(prefix + ".")
        }

    # -- API tokens ----------------------------------------------------------------
    def add_token(self, user_id: str, *, name: str, token_sha256: str) -> ApiToken:
        check_short_text("token name", name, required=True)
        token = ApiToken(
            id=new_id("token"), user_id=user_id, name=name, created_at=utcnow(), revoked_at=None
        )
        with self._write() as conn:
            self._require_user(conn, user_id)
            conn.execute(
                insert(t.api_tokens).values(
                    id=token.id,
                    user_id=user_id,
                    name=name,
                    token_sha256=token_sha256,
                    created_at=to_text(token.created_at),
                )
            )
        return token

    def list_tokens(self, user_id: str) -> list[ApiToken]:
        k = t.api_tokens
        with self._read() as conn:
            self._require_user(conn, user_id)
            rows = conn.execute(select(k).where(k.c.user_id == user_id).order_by(k.c.id)).all()
        return [_token(row) for row in rows]

    def revoke_token(self, user_id: str, token_id: str) -> ApiToken:
        check_name("user", user_id)
        check_id("token", token_id)
        k = t.api_tokens
        mine = (k.c.id == token_id) & (k.c.user_id == user_id)
        with self._write() as conn:
            conn.execute(
                update(k).where(mine, k.c.revoked_at.is_(None)).values(revoked_at=to_text(utcnow()))
            )
            row = conn.execute(select(k).where(mine)).first()
        if row is None:
            raise NotFound(f"no token {token_id}")
        return _token(row)

    def token_owner(self, token_sha256: str) -> tuple[str, str] | None:
        k = t.api_tokens
        with self._read() as conn:
            row = conn.execute(
                select(k.c.user_id, k.c.id).where(
                    k.c.token_sha256 == token_sha256, k.c.revoked_at.is_(None)
                )
            ).first()
        return None if row is None else (row.user_id, row.id)

    # -- shared row access ---------------------------------------------------------
    def _conversation_row(
        self, conn: Connection, user_id: str, conversation_id: str, *, required: bool = True
    ) -> Any:
        check_name("user", user_id)
        check_id("conversation", conversation_id)
        row = conn.execute(
            select(t.conversations).where(
                t.conversations.c.id == conversation_id, t.conversations.c.user_id == user_id
            )
        ).first()
        if row is None and required:
            self._require_user(conn, user_id)
            raise NotFound(f"no conversation {conversation_id}")
        return row

    def _conversation(self, conn: Connection, user_id: str, conversation_id: str) -> Conversation:
        found = self._conversations(conn, user_id, [conversation_id])
        if not found:
            self._require_user(conn, user_id)
            raise NotFound(f"no conversation {conversation_id}")
        return found[0]

    def _conversations(
        self, conn: Connection, user_id: str, ids: Sequence[str]
    ) -> list[Conversation]:
        """Full :class:`Conversation` objects for ``ids``, in the order given."""
        if not ids:
            return []
        c, r, p, ct = t.conversations, t.runtimes, t.pins, t.conversation_tags
        pinned = exists().where(
            p.c.user_id == c.c.user_id,
            p.c.runtime_id == c.c.runtime_id,
            p.c.conversation_id == c.c.id,
        )
        query = (
            select(c, r.c.primary_conversation_id, pinned.label("pinned"))
            .join(r, and_(r.c.user_id == c.c.user_id, r.c.id == c.c.runtime_id))
            .where(c.c.id.in_(ids))
        )
        # Filter the owner in Python: with user_id in the WHERE clause SQLite may walk the
        # user's whole index instead of the primary key, making the sidebar O(conversations).
        rows = {row.id: row for row in conn.execute(query) if row.user_id == user_id}
        tags: dict[str, list[str]] = {}
        for row in conn.execute(
            select(ct.c.conversation_id, ct.c.tag)
            .where(ct.c.conversation_id.in_(ids))
            .order_by(ct.c.tag)
        ):
            tags.setdefault(row.conversation_id, []).append(row.tag)
        return [_conversation(rows[i], tags.get(i, [])) for i in ids if i in rows]

    # -- imports -------------------------------------------------------------------
    def write_import(
        self,
        user_id: str,
        parsed: ParsedExport,
        source: ExportSource,
        file: ImportFile,
        *,
        dry_run: bool = False,
        progress: Progress | None = None,
    ) -> ImportRecord:
        started = utcnow()
        writer: ImportWriter | None = None
        try:
            with self._write() as conn:
                self._require_user(conn, user_id)
                writer = ImportWriter(
                    conn, self._blobs, user_id, source, dry_run=dry_run, progress=progress
                )
                runtime_id, created = writer.runtime_for(parsed)
                outcome = ImportOutcome(runtime_id=runtime_id, runtime_created=created)
                writer.write(parsed, runtime_id, file.import_id, outcome)
                for warning in parsed.warnings:
                    outcome.warn(warning)
                for what, count in parsed.skipped.items():
                    outcome.add(f"skipped_{what}", count)
                record = ImportRecord(
                    id=file.import_id,
                    platform=parsed.platform,
                    runtime_id=runtime_id,
                    file_name=file.name,
                    file_size=file.size,
                    file_sha256=file.sha256,
                    stored_path=file.stored_path,
                    counts=dict(sorted(outcome.counts.items())),
                    warnings=tuple(outcome.warnings),
                    metadata=parsed.metadata,
                    started_at=from_text(to_text(started)),
                    finished_at=from_text(to_text(utcnow())),
                )
                self._record_import(conn, user_id, record)
                if dry_run:
                    raise _DryRunDone(record)
                # The import's blobs were written without a flush each: one pass now,
                # before the commit makes anything refer to them.
                self._blobs.sync(writer.new_blobs)
        except _DryRunDone as done:
            return done.record
        except BaseException:
            if writer is not None and writer.new_blobs and not dry_run:
                self._finish_delete(DeleteReport(0, 0, 0, 0), writer.new_blobs)
            raise
        return record

    def _record_import(self, conn: Connection, user_id: str, record: ImportRecord) -> None:
        metadata = encode_json_object("import metadata", record.metadata)
        conn.execute(
            insert(t.imports).values(
                id=record.id,
                user_id=user_id,
                platform=record.platform,
                runtime_id=record.runtime_id,
                file_name=record.file_name,
                file_size=record.file_size,
                file_sha256=record.file_sha256,
                stored_path=record.stored_path,
                counts=encode_json("import counts", record.counts),
                warnings=encode_json("import warnings", list(record.warnings)),
                metadata=metadata,
                started_at=to_text(record.started_at),
                finished_at=to_text(record.finished_at),
            )
        )
        # The runtime's home conversation keeps a note of every import into it.
        runtime = self._runtime_row(conn, user_id, record.runtime_id)
        home = self._conversation_row(conn, user_id, runtime.primary_conversation_id)
        counts = ", ".join(f"{key} {value}" for key, value in record.counts.items())
        note = NewMessage(
            role="system",
            parts=(
                Part("text", f"Imported {record.platform} export {record.file_name}: {counts}"),
                Part("import", None, {"import_id": record.id, "counts": record.counts}),
            ),
            author="chatkeep import",
            metadata={"import_id": record.id, "file_sha256": record.file_sha256},
        )
        checked = check_new_message(note)
        message_id = new_id("message")
        conn.execute(
            insert(t.messages).values(
                id=message_id,
                user_id=user_id,
                conversation_id=home.id,
                parent_id=home.active_leaf_id,
                seq=home.message_count,
                role="system",
                author=note.author,
                content=checked.content,
                content_sha256=checked.content_sha256,
                created_at=to_text(record.finished_at),
                model=None,
                tokens=None,
                cost=None,
                metadata=checked.metadata,
                hidden=0,
                source_id=None,
            )
        )
        conn.execute(
            update(t.conversations)
            .where(t.conversations.c.id == home.id)
            .values(
                message_count=home.message_count + 1,
                active_leaf_id=message_id,
                updated_at=to_text(record.finished_at),
            )
        )

    def list_imports(self, user_id: str) -> list[ImportRecord]:
        with self._read() as conn:
            self._require_user(conn, user_id)
            rows = conn.execute(
                select(t.imports).where(t.imports.c.user_id == user_id).order_by(t.imports.c.id)
            ).all()
        return [_import(row) for row in rows]

    def get_import(self, user_id: str, import_id: str) -> ImportRecord:
        check_name("user", user_id)
        check_id("import", import_id)
        with self._read() as conn:
            row = conn.execute(
                select(t.imports).where(t.imports.c.user_id == user_id, t.imports.c.id == import_id)
            ).first()
        if row is None:
            raise NotFound(f"no import {import_id}")
        return _import(row)

    def find_import(self, user_id: str, file_sha256: str) -> ImportRecord | None:
        check_name("user", user_id)
        with self._read() as conn:
            row = conn.execute(
                select(t.imports)
                .where(t.imports.c.user_id == user_id, t.imports.c.file_sha256 == file_sha256)
                .order_by(t.imports.c.id)
            ).first()
        return None if row is None else _import(row)

    # -- search --------------------------------------------------------------------
    def search(
        self,
        user_id: str,
        query: str,
        *,
        filters: SearchFilters | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> SearchPage:
        check_name("user", user_id)
        check_page(limit, offset)
        chosen = filters or SearchFilters()
        chosen.check()
        if chosen.runtime_id is not None:
            check_name("runtime", chosen.runtime_id)
        if chosen.conversation_id is not None:
            check_id("conversation", chosen.conversation_id)
        parsed = parse_query(query)
        with self._read() as conn:
            hits, more = self._search.search(
                conn, user_id, parsed, chosen, limit=limit, offset=offset
            )
            if not hits:  # a hit is the user's own row, so the user exists: no lookup
                self._require_user(conn, user_id)
        return SearchPage(hits=tuple(hits), limit=limit, offset=offset, has_more=more, query=parsed)

    def messages_to_embed(self, embedder: str, *, limit: int) -> list[tuple[int, str, str]]:
        """(message pk, owner, text) of messages with no vector from ``embedder`` yet."""
        m, v = t.messages, t.message_vectors
        with self._read() as conn:
            rows = conn.execute(
                select(m.c.pk, m.c.user_id, m.c.content)
                .outerjoin(
                    v, and_(v.c.message_pk == m.c.pk, v.c.embedder == embedder, v.c.chunk == 0)
                )
                .where(v.c.message_pk.is_(None))
                .order_by(m.c.pk)
                .limit(limit)
            ).all()
        return [(row.pk, row.user_id, searchable_text(row.content)) for row in rows]

    def count_messages_to_embed(self, embedder: str) -> int:
        m, v = t.messages, t.message_vectors
        with self._read() as conn:
            return int(
                conn.execute(
                    select(func.count())
                    .select_from(m)
                    .outerjoin(
                        v,
                        and_(v.c.message_pk == m.c.pk, v.c.embedder == embedder, v.c.chunk == 0),
                    )
                    .where(v.c.message_pk.is_(None))
                ).scalar_one()
            )

    def store_vectors(self, embedder: str, vectors: Sequence[tuple[int, int, str, bytes]]) -> None:
        """Keep (message pk, chunk, owner, float32 bytes) rows; an empty vector marks a
        message with nothing to embed. Rows already there are left as they are."""
        if not vectors:
            return
        check_vectors(embedder, vectors)
        with self._write() as conn:
            conn.execute(
                _insert_or_ignore(conn, t.message_vectors),
                [
                    {
                        "message_pk": pk,
                        "chunk": chunk,
                        "embedder": embedder,
                        "user_id": user,
                        "vector": blob,
                    }
                    for pk, chunk, user, blob in vectors
                ],
            )

    def vector_rows(
        self, user_id: str, embedder: str, filters: SearchFilters | None = None
    ) -> list[Any]:
        check_name("user", user_id)
        chosen = filters or SearchFilters()
        chosen.check()
        with self._read() as conn:
            self._require_user(conn, user_id)
            return self._search.vector_rows(conn, user_id, embedder, chosen)

    def allowed_message_keys(
        self, user_id: str, pks: Sequence[int], filters: SearchFilters | None = None
    ) -> set[int]:
        check_name("user", user_id)
        chosen = filters or SearchFilters()
        chosen.check()
        with self._read() as conn:
            return self._search.allowed_keys(conn, user_id, pks, chosen)

    def vector_snapshot(self, user_id: str, embedder: str, known: tuple[int, int] | None) -> Any:
        """(version, rows) of the user's vectors; rows is None when ``known`` is current."""
        check_name("user", user_id)
        with self._read() as conn:
            version = self._search.vector_version(conn, user_id, embedder)
            if version == known:
                return version, None
            return version, self._search.all_vectors(conn, user_id, embedder)

    def vector_details(self, user_id: str, pks: Sequence[int]) -> list[Any]:
        check_name("user", user_id)
        with self._read() as conn:
            return self._search.vector_details(conn, user_id, pks)

    def rebuild_search_index(self) -> int:
        with self._write() as conn:
            return self._search.rebuild(conn)

    def merge_tables(
        self,
        tables: Iterable[tuple[str, Iterable[dict[str, Any]]]],
        *,
        progress: Callable[[str, int], None] | None = None,
    ) -> dict[str, int]:
        """Insert the rows this store does not hold yet, matched by id (or key), in one
        transaction: a later export of the same vault adds only what is new. Messages
        join a conversation that is already here after its own, with the next sequence
        numbers, and its counters are summed again; ``messages.pk`` is assigned here.
        Vectors are derived and not merged (``chatkeep index`` makes them)."""
        added: dict[str, int] = {}
        with self._write() as conn:
            merge = _Merge(conn)
            for name, rows in tables:
                table = _data_table(name)
                added[name] = 0
                for batch in _batches(rows, _COPY_BATCH):
                    if name == "message_vectors":
                        continue
                    fresh = merge.fresh(table, batch)
                    if fresh:
                        conn.execute(insert(table), fresh)
                        added[name] += len(fresh)
                    if progress is not None:
                        progress(name, len(batch))
            merge.recount()
        return added

    # -- deleting an account ------------------------------------------------------
    def delete_user(self, user_id: str) -> dict[str, int]:
        """Every row of the user in every table, in one transaction, then the blobs no
        one else uses; returns what went, per table (and ``blobs``)."""
        check_name("user", user_id)
        removed: dict[str, int] = {}
        with self._write() as conn:
            self._require_user(conn, user_id)
            shas = set(
                conn.scalars(
                    select(t.attachments.c.sha256).where(t.attachments.c.user_id == user_id)
                )
            )
            for table in _USER_TABLES:
                removed[str(table.name)] = conn.execute(
                    delete(table).where(table.c.user_id == user_id)
                ).rowcount
            removed["users"] = conn.execute(delete(t.users).where(t.users.c.id == user_id)).rowcount
        empty = DeleteReport(conversations=0, messages=0, attachments=0, blobs=0)
        removed["blobs"] = self._finish_delete(empty, shas).blobs
        return removed

    def compact(self) -> None:
        """Rewrite the storage so that deleted rows leave no bytes behind in the vault's
        files: the search index merged, the database rebuilt, the WAL emptied."""
        self._compact()

    # -- whole-vault copies (chatkeep migrate, backup) -----------------------------
    def dump_snapshot(self) -> Iterator[tuple[str, Iterator[dict[str, Any]]]]:
        """Every data table, in reference order, all read in ONE transaction: a
        consistent snapshot while writers go on (WAL on SQLite, REPEATABLE READ on
        PostgreSQL). Consume each table's rows before asking for the next."""
        options = (
            {"isolation_level": "REPEATABLE READ"}
            if self._engine.dialect.name == "postgresql"
            else {}
        )
        try:
            with self._engine.connect().execution_options(**options) as conn, conn.begin():
                for table in t.DATA_TABLES:
                    order = list(table.primary_key.columns)
                    result = conn.execution_options(yield_per=_COPY_BATCH).execute(
                        select(table).order_by(*order)
                    )
                    rows = ({str(k): _plain(v) for k, v in row._mapping.items()} for row in result)
                    yield str(table.name), rows
        except DBAPIError as exc:
            raise self._translate(exc.orig or exc) from exc

    def schema_version(self) -> list[str]:
        """The names of the applied schema migrations, in order."""
        with self._read() as conn:
            return list(conn.scalars(select(text("name")).select_from(text("schema_migrations"))))

    def dump_table(self, name: str) -> Iterator[dict[str, Any]]:
        """Every row of data table ``name``, by primary key, as plain values."""
        table = _data_table(name)
        order = [column for column in table.primary_key.columns]
        with self._read() as conn:
            result = conn.execution_options(yield_per=_COPY_BATCH).execute(
                select(table).order_by(*order)
            )
            for row in result:
                yield {str(key): _plain(value) for key, value in row._mapping.items()}

    def load_tables(
        self,
        tables: Iterable[tuple[str, Iterable[dict[str, Any]]]],
        *,
        progress: Callable[[str, int], None] | None = None,
    ) -> dict[str, int]:
        """Insert rows as they are (ids, keys and timestamps kept) into this store, which
        must hold no users yet, in one transaction: all of it, or nothing."""
        counts: dict[str, int] = {}
        with self._write() as conn:
            if conn.execute(select(func.count()).select_from(t.users)).scalar_one():
                raise Conflict(
                    "the destination already holds data",
                    hint="migrate into a new, empty vault",
                )
            for name, rows in tables:
                table = _data_table(name)
                counts[name] = 0
                for batch in _batches(rows, _COPY_BATCH):
                    conn.execute(insert(table), batch)
                    counts[name] += len(batch)
                    if progress is not None:
                        progress(name, len(batch))
            self._after_load(conn)
        return counts

    # -- integrity -----------------------------------------------------------------
    def sweep_unused_blobs(self) -> int:
        # Under the write lock: an append re-checks its blob under the same lock and
        # stores it again if it was swept meanwhile (see PendingAttachment.ensure).
        removed = 0
        with self._write() as conn:
            used = set(conn.scalars(select(t.attachments.c.sha256).distinct()))
            for sha in set(self._blobs.all_digests()) - used:
                removed += self._blobs.remove(sha)
        return removed

    def check(self) -> list[Problem]:
        # Each check reads on its own: damage that stops one (a malformed page) is
        # reported as a problem, and the other checks still run.
        checks: list[Callable[[Connection], list[Problem]]] = [
            lambda conn: [Problem("database", line) for line in self._dialect_checks(conn)],
            lambda conn: [Problem("search", line) for line in self._search.drift(conn)],
            self._check_tree,
            self._check_counters,
            self._check_runtimes,
            self._check_content,
            self._check_blobs,
        ]
        problems: list[Problem] = []
        for run_check in checks:
            try:
                with self._read() as conn:
                    problems += run_check(conn)
            except ChatkeepError as error:
                problems.append(Problem("database", f"a check could not run: {error.message}"))
        return problems

    def _check_tree(self, conn: Connection) -> list[Problem]:
        m, parent, c = t.messages, t.messages.alias("parent"), t.conversations
        problems = []
        bad_parents = conn.execute(
            select(
                m.c.id,
                m.c.conversation_id,
                parent.c.conversation_id.label("pc"),
                parent.c.seq,
                m.c.seq.label("s"),
            )
            .join(parent, parent.c.id == m.c.parent_id)
            .where((parent.c.conversation_id != m.c.conversation_id) | (parent.c.seq >= m.c.seq))
        )
        for row in bad_parents:
            problems.append(
                Problem(
                    "tree",
                    f"message {row.id} has a parent outside its conversation or after it",
                    subject=row.id,
                )
            )
        dangling = conn.execute(
            select(c.c.id).where(
                c.c.active_leaf_id.is_not(None),
                ~exists().where(m.c.id == c.c.active_leaf_id, m.c.conversation_id == c.c.id),
            )
        )
        for row in dangling:
            problems.append(
                Problem(
                    "tree", f"conversation {row.id} points at a missing active leaf", subject=row.id
                )
            )
        return problems

    def _check_counters(self, conn: Connection) -> list[Problem]:
        m, c = t.messages, t.conversations
        totals = (
            select(
                m.c.conversation_id,
                func.count().label("n"),
                func.max(m.c.seq).label("max_seq"),
                func.coalesce(func.sum(m.c.tokens), 0).label("tokens"),
                func.coalesce(func.sum(m.c.cost), 0.0).label("cost"),
            )
            .group_by(m.c.conversation_id)
            .subquery()
        )
        rows = conn.execute(
            select(c.c.id, c.c.message_count, c.c.total_tokens, c.c.total_cost, totals).outerjoin(
                totals, totals.c.conversation_id == c.c.id
            )
        )
        problems = []
        for row in rows:
            count = row.n or 0
            expected_max = count - 1 if count else None
            if row.message_count != count or row.max_seq != expected_max:
                problems.append(
                    Problem(
                        "counters",
                        f"conversation {row.id} counts {row.message_count} messages "
                        f"but holds {count} (last seq {row.max_seq})",
                        subject=row.id,
                    )
                )
            if row.total_tokens != (row.tokens or 0) or not math.isclose(
                row.total_cost, row.cost or 0.0, abs_tol=_COST_TOLERANCE
            ):
                problems.append(
                    Problem(
                        "counters",
                        f"conversation {row.id} has token or cost totals "
                        "that disagree with its messages",
                        subject=row.id,
                    )
                )
        return problems

    def _check_runtimes(self, conn: Connection) -> list[Problem]:
        r, c, p = t.runtimes, t.conversations, t.pins
        problems = []
        rows = conn.execute(
            select(
                r.c.user_id, r.c.id, r.c.primary_conversation_id, c.c.runtime_id, c.c.state
            ).outerjoin(c, and_(c.c.id == r.c.primary_conversation_id, c.c.user_id == r.c.user_id))
        )
        for row in rows:
            if row.runtime_id != row.id or row.state != "active":
                problems.append(
                    Problem(
                        "runtimes",
                        f"runtime {row.id!r} of user {row.user_id!r} has no live home conversation",
                        subject=row.id,
                    )
                )
        stray_pins = conn.execute(
            select(p.c.conversation_id).where(
                ~exists().where(
                    c.c.id == p.c.conversation_id,
                    c.c.runtime_id == p.c.runtime_id,
                    c.c.user_id == p.c.user_id,
                )
            )
        )
        for row in stray_pins:
            problems.append(
                Problem(
                    "pins",
                    f"pin of {row.conversation_id} is in the wrong runtime",
                    subject=row.conversation_id,
                )
            )
        return problems

    def _still_used(self, sha: str) -> bool:
        """Re-asked in a fresh transaction: a hard delete may have just removed it."""
        with self._read() as conn:
            found = conn.execute(
                select(t.attachments.c.id).where(t.attachments.c.sha256 == sha).limit(1)
            ).first()
        return found is not None

    def _check_content(self, conn: Connection) -> list[Problem]:
        m = t.messages
        problems = []
        for row in conn.execute(select(m.c.id, m.c.content, m.c.content_sha256)).yield_per(1000):
            if hashlib.sha256(row.content.encode("utf-8")).hexdigest() != row.content_sha256:
                problems.append(
                    Problem(
                        "content",
                        f"message {row.id} does not match its content hash",
                        subject=row.id,
                    )
                )
        return problems

    def _check_blobs(self, conn: Connection) -> list[Problem]:
        referenced = set(conn.scalars(select(t.attachments.c.sha256).distinct()))
        problems = []
        for sha in sorted(referenced):
            if not self._blobs.exists(sha) and self._still_used(sha):
                problems.append(Problem("blobs", f"blob {sha} is missing", subject=sha))
            elif self._blobs.hash_of(sha) != sha:
                problems.append(
                    Problem("blobs", f"blob {sha} does not match its hash", subject=sha)
                )
        for sha in sorted(set(self._blobs.all_digests()) - referenced):
            problems.append(
                Problem(
                    "blobs",
                    f"blob {sha} is not used by any attachment",
                    severity="warning",
                    subject=sha,
                )
            )
        return problems


# -- row conversion ---------------------------------------------------------------
_COPY_BATCH = 1_000
#: Tables with a user_id, children before parents: what deleting an account empties.
_USER_TABLES = (
    t.recording_events,
    t.drafts,
    t.snapshots,
    t.usage_events,
    t.message_vectors,
    t.vector_versions,
    t.attachments,
    t.messages,
    t.conversation_tags,
    t.pins,
    t.conversations,
    t.runtimes,
    t.imports,
    t.settings,
    t.api_tokens,
)


class _Merge:
    """Which incoming rows are new, and the sequence numbers of messages joining a
    conversation that was already here."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.arrived: set[str] = set()  # conversations this merge brought
        self.next_seq: dict[str, int] = {}  # conversations here before, gaining messages

    def fresh(self, table: Table, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # A row is known by its primary key; rows keyed by a local serial (messages,
        # recording events) by their id, or else by everything they hold.
        keys = [c for c in table.primary_key.columns if c.name != "pk"]
        if table is t.messages:
            keys = [table.c.id]
        elif not keys:
            keys = [c for c in table.columns if c.name != "pk"]
        present = self._present(table, keys, batch)
        rows = [r for r in batch if tuple(r[k.name] for k in keys) not in present]
        if table is t.conversations:
            self.arrived.update(r["id"] for r in rows)
        if table is t.messages:
            rows = [self._renumbered(r) for r in rows]
        elif "pk" in table.c:
            rows = [{k: v for k, v in r.items() if k != "pk"} for r in rows]
        return rows

    def _present(self, table: Table, keys: list[Any], batch: list[dict[str, Any]]) -> set[Any]:
        if len(keys) == 1:
            values = [r[keys[0].name] for r in batch]
            found = self.conn.execute(select(keys[0]).where(keys[0].in_(values)))
            return {(value,) for (value,) in found}
        wanted = {tuple(r[k.name] for k in keys) for r in batch}
        first = keys[0]
        found = self.conn.execute(select(*keys).where(first.in_({key[0] for key in wanted})))
        return {tuple(row) for row in found} & wanted

    def _renumbered(self, row: dict[str, Any]) -> dict[str, Any]:
        fresh = {k: v for k, v in row.items() if k != "pk"}
        conversation = row["conversation_id"]
        if conversation in self.arrived:
            return fresh  # its own numbering, complete in the export
        if conversation not in self.next_seq:
            m = t.messages
            self.next_seq[conversation] = self.conn.execute(
                select(func.count()).where(m.c.conversation_id == conversation)
            ).scalar_one()
        fresh["seq"] = self.next_seq[conversation]
        self.next_seq[conversation] += 1
        return fresh

    def recount(self) -> None:
        m, c = t.messages, t.conversations
        for conversation in self.next_seq:
            totals = self.conn.execute(
                select(
                    func.count(),
                    func.coalesce(func.sum(m.c.tokens), 0),
                    func.coalesce(func.sum(m.c.cost), 0.0),
                ).where(m.c.conversation_id == conversation)
            ).one()
            self.conn.execute(
                update(c)
                .where(c.c.id == conversation)
                .values(
                    message_count=totals[0],
                    total_tokens=totals[1],
                    total_cost=totals[2],
                    updated_at=to_text(utcnow()),
                )
            )


def _data_table(name: str) -> Table:
    for table in t.DATA_TABLES:
        if table.name == name:
            return table
    raise InvalidInput(f"{name!r} is not a data table of the vault")


def _plain(value: Any) -> Any:
    """A column value as Python's own type (drivers may hand back memoryview)."""
    return bytes(value) if isinstance(value, memoryview) else value


def _batches(rows: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _insert_or_ignore(conn: Connection, table: Table) -> Any:
    """An INSERT that skips rows whose key is already there, in the dialect's words."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return insert(table).prefix_with("OR IGNORE")


def _user_not_found(user_id: str) -> NotFound:
    return NotFound(f"no user {user_id!r}", hint="create it with 'chatkeep user add NAME'")


def _token(row: Any) -> ApiToken:
    return ApiToken(
        id=row.id,
        user_id=row.user_id,
        name=row.name,
        created_at=from_text(row.created_at),
        revoked_at=from_text(row.revoked_at) if row.revoked_at else None,
    )


def _user(row: Row[Any]) -> User:
    return User(id=row.id, display_name=row.display_name, created_at=from_text(row.created_at))


def _runtime(row: Any) -> Runtime:
    return Runtime(
        id=row.id,
        user_id=row.user_id,
        name=row.name,
        origin=row.origin,
        config=decode_json(row.config),
        primary_conversation_id=row.primary_conversation_id,
        created_at=from_text(row.created_at),
        updated_at=from_text(row.updated_at),
        source_platform=row.source_platform,
        account=row.account,
    )


def _conversation(row: Any, tags: Sequence[str]) -> Conversation:
    is_primary = row.primary_conversation_id == row.id
    return Conversation(
        id=row.id,
        user_id=row.user_id,
        runtime_id=row.runtime_id,
        title=row.title,
        origin=row.origin,
        state=row.state,
        model=row.model,
        tags=tuple(tags),
        message_count=row.message_count,
        total_tokens=row.total_tokens,
        total_cost=row.total_cost,
        active_leaf_id=row.active_leaf_id,
        forked_from_conversation_id=row.forked_from_conversation_id,
        forked_from_message_id=row.forked_from_message_id,
        is_primary=is_primary,
        pinned=is_primary or bool(row.pinned),
        created_at=from_text(row.created_at),
        updated_at=from_text(row.updated_at),
        trashed_at=optional_from_text(row.trashed_at),
        source_platform=row.source_platform,
        source_id=row.source_id,
        import_id=row.import_id,
    )


def _import(row: Any) -> ImportRecord:
    return ImportRecord(
        id=row.id,
        platform=row.platform,
        runtime_id=row.runtime_id,
        file_name=row.file_name,
        file_size=row.file_size,
        file_sha256=row.file_sha256,
        stored_path=row.stored_path,
        counts=decode_json(row.counts),
        warnings=tuple(decode_json(row.warnings)),
        metadata=decode_json(row.metadata),
        started_at=from_text(row.started_at),
        finished_at=from_text(row.finished_at),
    )


class _DryRunDone(Exception):
    """Carries a dry run's record out of its transaction, which then rolls back."""

    def __init__(self, record: ImportRecord) -> None:
        super().__init__("dry run")
        self.record = record


def _attachment(row: Any) -> Attachment:
    return Attachment(
        id=row.id,
        message_id=row.message_id,
        conversation_id=row.conversation_id,
        sha256=row.sha256,
        size=row.size,
        mime_type=row.mime_type,
        name=row.name,
        created_at=from_text(row.created_at),
    )


def _message(row: Any, attachments: Sequence[Attachment]) -> Message:
    return Message(
        id=row.id,
        conversation_id=row.conversation_id,
        parent_id=row.parent_id,
        seq=row.seq,
        role=row.role,
        author=row.author,
        parts=tuple(Part.from_dict(p) for p in decode_json(row.content)),
        created_at=optional_from_text(row.created_at),
        model=row.model,
        tokens=row.tokens,
        cost=row.cost,
        metadata=decode_json(row.metadata),
        hidden=bool(row.hidden),
        content_sha256=row.content_sha256,
        attachments=tuple(attachments),
    )


#: A message row (anything with its columns as attributes) as a Message.
message_from_row = _message
