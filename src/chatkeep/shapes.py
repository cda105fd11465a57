"""The stable JSON shapes of the model, shared by the CLI's ``--json`` and the HTTP API.

Documented in ``docs/json.md``; ``tests/test_cli.py`` checks the keys. Adding a key is a
compatible change; removing or renaming one is not.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chatkeep.encryption import KeyStatus
from chatkeep.model import (
    ApiToken,
    Attachment,
    Branch,
    Conversation,
    Draft,
    ImportRecord,
    Message,
    Problem,
    RecordedEvent,
    Runtime,
    Snapshot,
    UsageTotal,
    User,
)
from chatkeep.recall import Recalled
from chatkeep.search import SearchHit, SearchPage
from chatkeep.store import DeleteReport


def time_text(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def user(value: User) -> dict[str, Any]:
    return {
        "id": value.id,
        "display_name": value.display_name,
        "created_at": time_text(value.created_at),
    }


def token(value: ApiToken) -> dict[str, Any]:
    return {
        "id": value.id,
        "name": value.name,
        "created_at": time_text(value.created_at),
        "revoked_at": time_text(value.revoked_at),
    }


def runtime(value: Runtime) -> dict[str, Any]:
    return {
        "id": value.id,
        "name": value.name,
        "origin": value.origin,
        "config": value.config,
        "primary_conversation_id": value.primary_conversation_id,
        "source_platform": value.source_platform,
        "created_at": time_text(value.created_at),
        "updated_at": time_text(value.updated_at),
    }


def conversation(value: Conversation) -> dict[str, Any]:
    return {
        "id": value.id,
        "runtime_id": value.runtime_id,
        "title": value.title,
        "origin": value.origin,
        "state": value.state,
        "model": value.model,
        "tags": list(value.tags),
        "message_count": value.message_count,
        "total_tokens": value.total_tokens,
        "total_cost": value.total_cost,
        "active_leaf_id": value.active_leaf_id,
        "forked_from": (
            {
                "conversation_id": value.forked_from_conversation_id,
                "message_id": value.forked_from_message_id,
            }
            if value.forked_from_conversation_id
            else None
        ),
        "is_primary": value.is_primary,
        "pinned": value.pinned,
        "created_at": time_text(value.created_at),
        "updated_at": time_text(value.updated_at),
        "trashed_at": time_text(value.trashed_at),
        "source": (
            {
                "platform": value.source_platform,
                "id": value.source_id,
                "import_id": value.import_id,
            }
            if value.source_platform
            else None
        ),
    }


def attachment(value: Attachment) -> dict[str, Any]:
    return {
        "id": value.id,
        "message_id": value.message_id,
        "name": value.name,
        "mime_type": value.mime_type,
        "size": value.size,
        "sha256": value.sha256,
        "created_at": time_text(value.created_at),
    }


def message(value: Message) -> dict[str, Any]:
    return {
        "id": value.id,
        "conversation_id": value.conversation_id,
        "parent_id": value.parent_id,
        "seq": value.seq,
        "role": value.role,
        "author": value.author,
        "parts": [part.to_dict() for part in value.parts],
        "created_at": time_text(value.created_at),
        "model": value.model,
        "tokens": value.tokens,
        "cost": value.cost,
        "metadata": value.metadata,
        "hidden": value.hidden,
        "content_sha256": value.content_sha256,
        "attachments": [attachment(a) for a in value.attachments],
    }


def branch(value: Branch) -> dict[str, Any]:
    return {
        "index": value.index,
        "leaf_id": value.leaf_id,
        "length": value.length,
        "active": value.active,
        "message_ids": list(value.message_ids),
    }


def import_record(value: ImportRecord) -> dict[str, Any]:
    return {
        "id": value.id,
        "platform": value.platform,
        "runtime_id": value.runtime_id,
        "file": {"name": value.file_name, "size": value.file_size, "sha256": value.file_sha256},
        "stored_path": value.stored_path,
        "counts": value.counts,
        "warnings": list(value.warnings),
        "started_at": time_text(value.started_at),
        "finished_at": time_text(value.finished_at),
    }


def search_hit(value: SearchHit) -> dict[str, Any]:
    return {
        "conversation_id": value.conversation_id,
        "conversation_title": value.conversation_title,
        "runtime_id": value.runtime_id,
        "message_id": value.message_id,
        "role": value.role,
        "created_at": time_text(value.created_at),
        "snippet": value.snippet,
        "highlights": [list(span) for span in value.highlights],
        "score": value.score,
    }


def recalled(value: Recalled) -> dict[str, Any]:
    return {
        "conversation_id": value.conversation_id,
        "conversation_title": value.conversation_title,
        "runtime_id": value.runtime_id,
        "message_id": value.message_id,
        "role": value.role,
        "created_at": time_text(value.created_at),
        "text": value.text,
        "truncated": value.truncated,
        "score": value.score,
    }


def search_page(value: SearchPage) -> dict[str, Any]:
    return {
        "hits": [search_hit(h) for h in value.hits],
        "limit": value.limit,
        "offset": value.offset,
        "has_more": value.has_more,
    }


def problem(value: Problem) -> dict[str, Any]:
    return {
        "check": value.check,
        "severity": value.severity,
        "message": value.message,
        "subject": value.subject,
    }


def delete_report(value: DeleteReport) -> dict[str, Any]:
    return {
        "conversations": value.conversations,
        "messages": value.messages,
        "attachments": value.attachments,
        "blobs": value.blobs,
    }


def snapshot(value: Snapshot) -> dict[str, Any]:
    return {
        "id": value.id,
        "name": value.name,
        "starred": value.starred,
        "state": value.state,
        "runtime_id": value.runtime_id,
        "conversation_id": value.conversation_id,
        "created_at": time_text(value.created_at),
    }


def usage_total(value: UsageTotal) -> dict[str, Any]:
    return {
        "day": value.day,
        "model": value.model,
        "runtime_id": value.runtime_id,
        "events": value.events,
        "tokens_in": value.tokens_in,
        "tokens_out": value.tokens_out,
        "cost": value.cost,
        "duration_ms": value.duration_ms,
    }


def recorded_event(value: RecordedEvent) -> dict[str, Any]:
    return {"seq": value.seq, "at": time_text(value.at), "kind": value.kind, "data": value.data}


def draft(value: Draft) -> dict[str, Any]:
    return {
        "conversation_id": value.conversation_id,
        "text": value.text,
        "updated_at": time_text(value.updated_at),
    }


def key_status(value: KeyStatus) -> dict[str, Any]:
    """Whether a user's content is encrypted, and whether this process has it unlocked."""
    return {
        "user": value.user_id,
        "encrypted": value.encrypted,
        "method": value.method,
        "key_id": value.key_id,
        "unlocked": value.unlocked,
        "created_at": time_text(value.created_at),
        "changed_at": time_text(value.changed_at),
        "destroyed_at": time_text(value.destroyed_at),
    }
