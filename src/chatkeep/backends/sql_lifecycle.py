"""Snapshots, usage events, recordings, drafts and wrapped encryption keys on the SQL
backends, and what retention removes. A mixin of :class:`~chatkeep.backends.sql.SqlStore`:
every method takes the user it acts for, and another user's ids behave as missing ones."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection, and_, delete, func, insert, select, update

from chatkeep import limits
from chatkeep.backends import schema as t
from chatkeep.errors import Conflict, InvalidInput, KeyRequired, NotFound
from chatkeep.ids import check_id, check_name, new_id
from chatkeep.model import (
    Draft,
    RecordedEvent,
    Snapshot,
    UsageTotal,
    UserKey,
    looks_sealed_draft,
    looks_sealed_value,
)
from chatkeep.timeutil import from_text, to_text, utcnow
from chatkeep.validate import check_moment, check_short_text, decode_json, encode_json


class _Host(Protocol):
    def _write(self) -> AbstractContextManager[Connection]: ...

    def _read(self) -> AbstractContextManager[Connection]: ...

    def _require_user(self, conn: Connection, user_id: str) -> None: ...


def _require_conversation(conn: Connection, user_id: str, conversation_id: str) -> None:
    check_id("conversation", conversation_id)
    c = t.conversations
    found = conn.execute(
        select(c.c.id).where(c.c.id == conversation_id, c.c.user_id == user_id)
    ).first()
    if found is None:
        raise NotFound(f"no conversation {conversation_id}")


def _refuse_clear(conn: Connection, user_id: str, what: str, sealed: bool) -> None:
    """A user with a key gets content only ``sealed``. The encryption layer looks for the
    key before it writes, but another process may make one in between: this check runs
    inside the write, as the one for messages does."""
    if sealed:
        return
    k = t.user_keys
    if conn.execute(select(k.c.user_id).where(k.c.user_id == user_id)).first() is not None:
        raise KeyRequired(
            f"the content of user {user_id} is encrypted: this {what} is in clear",
            hint="write through the vault (vault.store), which seals it",
        )


def _count(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 10**15:
        raise InvalidInput(f"{what} must be a whole number from 0")
    return value


class LifecycleTables:
    """Snapshots, usage, recordings, drafts and retention (see the module doc)."""

    # -- snapshots -------------------------------------------------------------------
    def save_snapshot(
        self: _Host,
        user_id: str,
        name: str,
        state: Any,
        *,
        starred: bool = False,
        runtime_id: str | None = None,
        conversation_id: str | None = None,
    ) -> Snapshot:
        """Keep ``state`` (any JSON value) as a named snapshot."""
        check_short_text("snapshot name", name, required=True)
        encoded = encode_json("snapshot state", state)
        if runtime_id is not None:
            check_name("runtime", runtime_id)
        snapshot = Snapshot(
            id=new_id("snapshot"),
            name=name,
            starred=bool(starred),
            state=state,
            runtime_id=runtime_id,
            conversation_id=conversation_id,
            created_at=from_text(to_text(utcnow())),
        )
        with self._write() as conn:
            self._require_user(conn, user_id)
            _refuse_clear(conn, user_id, "snapshot state", looks_sealed_value(state))
            if conversation_id is not None:
                _require_conversation(conn, user_id, conversation_id)
            conn.execute(
                insert(t.snapshots).values(
                    id=snapshot.id,
                    user_id=user_id,
                    name=name,
                    starred=int(snapshot.starred),
                    state=encoded,
                    runtime_id=runtime_id,
                    conversation_id=conversation_id,
                    created_at=to_text(snapshot.created_at),
                )
            )
        return snapshot

    def list_snapshots(self: _Host, user_id: str) -> list[Snapshot]:
        s = t.snapshots
        with self._read() as conn:
            self._require_user(conn, user_id)
            rows = conn.execute(select(s).where(s.c.user_id == user_id).order_by(s.c.id)).all()
        return [_snapshot(row) for row in rows]

    def get_snapshot(self: _Host, user_id: str, snapshot_id: str) -> Snapshot:
        check_name("user", user_id)
        check_id("snapshot", snapshot_id)
        s = t.snapshots
        with self._read() as conn:
            row = conn.execute(
                select(s).where(s.c.id == snapshot_id, s.c.user_id == user_id)
            ).first()
        if row is None:
            raise NotFound(f"no snapshot {snapshot_id}")
        return _snapshot(row)

    def star_snapshot(self: _Host, user_id: str, snapshot_id: str, starred: bool) -> Snapshot:
        check_name("user", user_id)
        check_id("snapshot", snapshot_id)
        s = t.snapshots
        with self._write() as conn:
            done = conn.execute(
                update(s)
                .where(s.c.id == snapshot_id, s.c.user_id == user_id)
                .values(starred=int(bool(starred)))
            )
            if not done.rowcount:
                raise NotFound(f"no snapshot {snapshot_id}")
            row = conn.execute(select(s).where(s.c.id == snapshot_id)).one()
        return _snapshot(row)

    def delete_snapshot(self: _Host, user_id: str, snapshot_id: str) -> None:
        check_name("user", user_id)
        check_id("snapshot", snapshot_id)
        s = t.snapshots
        with self._write() as conn:
            gone = conn.execute(delete(s).where(s.c.id == snapshot_id, s.c.user_id == user_id))
            if not gone.rowcount:
                raise NotFound(f"no snapshot {snapshot_id}")

    # -- usage -----------------------------------------------------------------------
    def record_usage(
        self: _Host,
        user_id: str,
        *,
        model: str,
        runtime_id: str | None = None,
        conversation_id: str | None = None,
        tokens_in: int = 0,
        tokens_out: int = 0,
        cost: float = 0.0,
        duration_ms: int = 0,
        at: datetime | None = None,
    ) -> str:
        """One usage event (tokens, cost, time) of a model call; returns its id."""
        check_short_text("model", model, required=True)
        if runtime_id is not None:
            check_name("runtime", runtime_id)
        if conversation_id is not None:
            check_id("conversation", conversation_id)
        if not isinstance(cost, int | float) or not 0 <= cost <= limits.MAX_COST_PER_MESSAGE:
            raise InvalidInput("cost must be a number from 0")
        moment = check_moment("usage time", at) if at is not None else utcnow()
        event_id = new_id("event")
        with self._write() as conn:
            self._require_user(conn, user_id)
            conn.execute(
                insert(t.usage_events).values(
                    id=event_id,
                    user_id=user_id,
                    model=model,
                    runtime_id=runtime_id,
                    conversation_id=conversation_id,
                    tokens_in=_count(tokens_in, "tokens_in"),
                    tokens_out=_count(tokens_out, "tokens_out"),
                    cost=float(cost),
                    duration_ms=_count(duration_ms, "duration_ms"),
                    created_at=to_text(moment),
                )
            )
        return event_id

    def usage_totals(
        self: _Host,
        user_id: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[UsageTotal]:
        """Usage summed per day, model and runtime, oldest day first."""
        u = t.usage_events
        day = func.substr(u.c.created_at, 1, 10)
        where = [u.c.user_id == user_id]
        if since is not None:
            where.append(u.c.created_at >= to_text(check_moment("since", since)))
        if until is not None:
            where.append(u.c.created_at <= to_text(check_moment("until", until)))
        query = (
            select(
                day.label("day"),
                u.c.model,
                u.c.runtime_id,
                func.count().label("events"),
                func.sum(u.c.tokens_in).label("tokens_in"),
                func.sum(u.c.tokens_out).label("tokens_out"),
                func.sum(u.c.cost).label("cost"),
                func.sum(u.c.duration_ms).label("duration_ms"),
            )
            .where(and_(*where))
            .group_by(day, u.c.model, u.c.runtime_id)
            .order_by(day, u.c.model, u.c.runtime_id)
        )
        with self._read() as conn:
            self._require_user(conn, user_id)
            rows = conn.execute(query).all()
        return [
            UsageTotal(
                day=row.day,
                model=row.model,
                runtime_id=row.runtime_id,
                events=int(row.events),
                tokens_in=int(row.tokens_in),
                tokens_out=int(row.tokens_out),
                cost=float(row.cost),
                duration_ms=int(row.duration_ms),
            )
            for row in rows
        ]

    # -- recordings ------------------------------------------------------------------
    def record_event(
        self: _Host,
        user_id: str,
        conversation_id: str,
        kind: str,
        data: Any = None,
        *,
        at: datetime | None = None,
    ) -> int:
        """Add one event to the conversation's recording; returns its place in order."""
        check_short_text("event kind", kind, required=True)
        encoded = encode_json("event data", data)
        moment = check_moment("event time", at) if at is not None else utcnow()
        with self._write() as conn:
            self._require_user(conn, user_id)
            _refuse_clear(conn, user_id, "event's data", data is None or looks_sealed_value(data))
            _require_conversation(conn, user_id, conversation_id)
            result = conn.execute(
                insert(t.recording_events)
                .values(
                    user_id=user_id,
                    conversation_id=conversation_id,
                    at=to_text(moment),
                    kind=kind,
                    data=encoded,
                )
                .returning(t.recording_events.c.pk)
            )
            return int(result.scalar_one())

    def replay(self: _Host, user_id: str, conversation_id: str) -> list[RecordedEvent]:
        """The conversation's recording, in the order it was recorded."""
        r = t.recording_events
        with self._read() as conn:
            self._require_user(conn, user_id)
            _require_conversation(conn, user_id, conversation_id)
            rows = conn.execute(
                select(r).where(r.c.conversation_id == conversation_id).order_by(r.c.pk)
            ).all()
        return [
            RecordedEvent(
                seq=row.pk, at=from_text(row.at), kind=row.kind, data=decode_json(row.data)
            )
            for row in rows
        ]

    # -- drafts ----------------------------------------------------------------------
    def put_draft(self: _Host, user_id: str, conversation_id: str, text: str) -> Draft:
        """Keep the unsent text of a conversation (an empty text removes the draft)."""
        if not isinstance(text, str) or "\x00" in text:
            raise InvalidInput("a draft is text without NUL characters")
        if len(text.encode("utf-8", "surrogatepass")) > limits.MAX_MESSAGE_BYTES:
            raise InvalidInput("the draft is longer than a message may be")
        d = t.drafts
        now = to_text(utcnow())
        with self._write() as conn:
            self._require_user(conn, user_id)
            _refuse_clear(conn, user_id, "draft", not text or looks_sealed_draft(text))
            _require_conversation(conn, user_id, conversation_id)
            mine = (d.c.user_id == user_id) & (d.c.conversation_id == conversation_id)
            conn.execute(delete(d).where(mine))
            if text:
                conn.execute(
                    insert(d).values(
                        user_id=user_id, conversation_id=conversation_id, text=text, updated_at=now
                    )
                )
        return Draft(conversation_id=conversation_id, text=text, updated_at=from_text(now))

    def get_draft(self: _Host, user_id: str, conversation_id: str) -> Draft | None:
        d = t.drafts
        with self._read() as conn:
            self._require_user(conn, user_id)
            _require_conversation(conn, user_id, conversation_id)
            row = conn.execute(
                select(d).where(d.c.user_id == user_id, d.c.conversation_id == conversation_id)
            ).first()
        if row is None:
            return None
        return Draft(
            conversation_id=conversation_id, text=row.text, updated_at=from_text(row.updated_at)
        )

    # -- encryption keys (only ever wrapped; see chatkeep.crypto) ---------------------
    def get_user_key(self: _Host, user_id: str) -> UserKey | None:
        """The user's key record (a destroyed key's tombstone included), or None."""
        check_name("user", user_id)
        k, u = t.user_keys, t.users
        # One query, user and key together: appends of every user ask this first.
        query = (
            select(u.c.id.label("known"), k)
            .select_from(u.outerjoin(k, k.c.user_id == u.c.id))
            .where(u.c.id == user_id)
        )
        with self._read() as conn:
            row = conn.execute(query).first()
        if row is None:
            raise NotFound(f"no user {user_id!r}", hint="create it with 'chatkeep user add NAME'")
        return None if row.key_id is None else _user_key(row)

    def add_user_key(self: _Host, user_id: str, key: UserKey) -> None:
        """Keep the user's first key, or a new one in place of a destroyed key's
        tombstone; :class:`Conflict` while a live key exists."""
        k = t.user_keys
        with self._write() as conn:
            self._require_user(conn, user_id)
            method = conn.execute(select(k.c.method).where(k.c.user_id == user_id)).scalar()
            if method is not None and method != "destroyed":
                raise Conflict(
                    f"user {user_id} already has an encryption key",
                    hint="change how it is opened with 'chatkeep key change'",
                )
            conn.execute(delete(k).where(k.c.user_id == user_id))
            conn.execute(insert(k).values(user_id=user_id, **_key_values(key)))

    def rewrap_user_key(self: _Host, user_id: str, key: UserKey) -> None:
        """Replace how the user's live key ``key.key_id`` is wrapped (a new passphrase or
        key file); the data key, and so every ciphertext, stays as it is."""
        k = t.user_keys
        with self._write() as conn:
            self._require_user(conn, user_id)
            done = conn.execute(
                update(k)
                .where(k.c.user_id == user_id, k.c.key_id == key.key_id, k.c.method != "destroyed")
                .values(**_key_values(key))
            )
            if not done.rowcount:
                raise NotFound(f"user {user_id} has no live key {key.key_id}")

    def destroy_user_key(self: _Host, user_id: str) -> UserKey:
        """Crypto-shred: drop the wrapped key and salt, keeping a tombstone; returns it.
        Destroying a destroyed key changes nothing."""
        k = t.user_keys
        now = to_text(utcnow())
        with self._write() as conn:
            self._require_user(conn, user_id)
            conn.execute(
                update(k)
                .where(k.c.user_id == user_id, k.c.method != "destroyed")
                .values(
                    method="destroyed",
                    kdf="{}",
                    salt=None,
                    wrapped_key=None,
                    changed_at=now,
                    destroyed_at=now,
                )
            )
            row = conn.execute(select(k).where(k.c.user_id == user_id)).first()
        if row is None:
            raise NotFound(f"user {user_id} has no encryption key")
        return _user_key(row)

    # -- retention -------------------------------------------------------------------
    def expired(
        self: _Host,
        user_id: str,
        *,
        trashed_before: datetime,
        snapshots_before: datetime,
        usage_before: datetime,
    ) -> dict[str, list[str]]:
        """What retention would remove for the user: trashed conversations, snapshots
        that are not starred, and usage events, each older than its cut-off."""
        c, s, u = t.conversations, t.snapshots, t.usage_events
        with self._read() as conn:
            self._require_user(conn, user_id)
            conversations = conn.scalars(
                select(c.c.id).where(
                    c.c.user_id == user_id,
                    c.c.state == "trashed",
                    c.c.trashed_at < to_text(trashed_before),
                )
            ).all()
            snapshots = conn.scalars(
                select(s.c.id).where(
                    s.c.user_id == user_id,
                    s.c.starred == 0,
                    s.c.created_at < to_text(snapshots_before),
                )
            ).all()
            usage = conn.scalars(
                select(u.c.id).where(u.c.user_id == user_id, u.c.created_at < to_text(usage_before))
            ).all()
        return {
            "conversations": list(conversations),
            "snapshots": list(snapshots),
            "usage_events": list(usage),
        }

    def purge(
        self: _Host, user_id: str, *, snapshots: Sequence[str], usage_events: Sequence[str]
    ) -> tuple[int, int]:
        """Remove these snapshots and usage events of the user; (snapshots, events)."""
        s, u = t.snapshots, t.usage_events
        removed_snapshots = removed_events = 0
        with self._write() as conn:
            self._require_user(conn, user_id)
            for start in range(0, len(snapshots), 500):
                chunk = list(snapshots[start : start + 500])
                removed_snapshots += conn.execute(
                    delete(s).where(s.c.user_id == user_id, s.c.id.in_(chunk))
                ).rowcount
            for start in range(0, len(usage_events), 500):
                chunk = list(usage_events[start : start + 500])
                removed_events += conn.execute(
                    delete(u).where(u.c.user_id == user_id, u.c.id.in_(chunk))
                ).rowcount
        return removed_snapshots, removed_events


def _key_values(key: UserKey) -> dict[str, Any]:
    return {
        "key_id": key.key_id,
        "method": key.method,
        "kdf": encode_json("key derivation", key.kdf),
        "salt": None if key.salt is None else base64.b64encode(key.salt).decode("ascii"),
        "wrapped_key": (
            None if key.wrapped_key is None else base64.b64encode(key.wrapped_key).decode("ascii")
        ),
        "created_at": to_text(key.created_at),
        "changed_at": to_text(key.changed_at),
        "destroyed_at": None if key.destroyed_at is None else to_text(key.destroyed_at),
    }


def _user_key(row: Any) -> UserKey:
    return UserKey(
        user_id=row.user_id,
        key_id=row.key_id,
        method=row.method,
        kdf=decode_json(row.kdf),
        salt=None if row.salt is None else base64.b64decode(row.salt),
        wrapped_key=None if row.wrapped_key is None else base64.b64decode(row.wrapped_key),
        created_at=from_text(row.created_at),
        changed_at=from_text(row.changed_at),
        destroyed_at=None if row.destroyed_at is None else from_text(row.destroyed_at),
    )


def _snapshot(row: Any) -> Snapshot:
    return Snapshot(
        id=row.id,
        name=row.name,
        starred=bool(row.starred),
        state=decode_json(row.state),
        runtime_id=row.runtime_id,
        conversation_id=row.conversation_id,
        created_at=from_text(row.created_at),
    )
