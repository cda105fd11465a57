"""Snapshots, usage events, recordings and drafts on the SQL backends, and what
retention removes. A mixin of :class:`~chatkeep.backends.sql.SqlStore`: every method
takes the user it acts for, and another user's ids behave as missing ones."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection, and_, delete, func, insert, select, update

from chatkeep import limits
from chatkeep.backends import schema as t
from chatkeep.errors import InvalidInput, NotFound
from chatkeep.ids import check_id, check_name, new_id
from chatkeep.model import Draft, RecordedEvent, Snapshot, UsageTotal
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
