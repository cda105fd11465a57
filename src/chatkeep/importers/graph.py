"""Repairing and ordering an imported conversation's message graph.

Exports contain broken graphs: parents that are not in the export, cycles, duplicate
ids, several roots. Every repair is a per-conversation warning; nothing is dropped
except an exact duplicate id (the first wins).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter

from chatkeep.importers.model import SourceConversation, SourceMessage

_EARLIEST = datetime.min.replace(tzinfo=UTC)


@dataclass(slots=True)
class PreparedConversation:
    """Messages parents-first, every parent present, and the active leaf resolved."""

    conversation: SourceConversation
    messages: list[SourceMessage]
    active_leaf_source_id: str | None
    warnings: list[str]


def prepare(conversation: SourceConversation) -> PreparedConversation:
    warnings = list(conversation.warnings)
    label = f"conversation {conversation.source_id!r}"
    messages: dict[str, SourceMessage] = {}
    position: dict[str, int] = {}
    for message in conversation.messages:
        if message.source_id in messages:
            warnings.append(f"{label}: duplicate message id {message.source_id!r} ignored")
            continue
        position[message.source_id] = len(messages)
        messages[message.source_id] = message
    for message in messages.values():
        parent = message.parent_source_id
        if parent is not None and (parent not in messages or parent == message.source_id):
            warnings.append(
                f"{label}: message {message.source_id!r} refers to a missing parent "
                f"{parent!r}; kept as a root"
            )
            message.parent_source_id = None
    ordered = _order(messages, position, warnings, label)
    return PreparedConversation(
        conversation=conversation,
        messages=ordered,
        active_leaf_source_id=_active_leaf(conversation, messages, ordered, warnings, label),
        warnings=warnings,
    )


def _key(message: SourceMessage, index: int) -> tuple[datetime, int]:
    return (message.created_at or _EARLIEST, index)


def _order(
    messages: dict[str, SourceMessage],
    position: dict[str, int],
    warnings: list[str],
    label: str,
) -> list[SourceMessage]:
    """Parents before children; siblings by time, then by their order in the export."""
    quick = _order_by_keys(messages, position)
    if quick is not None:
        return quick
    children: dict[str | None, list[str]] = {}
    for message in messages.values():
        children.setdefault(message.parent_source_id, []).append(message.source_id)
    ordered: list[SourceMessage] = []
    emitted: set[str] = set()
    heap = [(_key(messages[i], position[i]), i) for i in children.get(None, [])]
    heapq.heapify(heap)
    while True:
        while heap:
            _, source_id = heapq.heappop(heap)
            emitted.add(source_id)
            ordered.append(messages[source_id])
            for child in children.get(source_id, []):
                heapq.heappush(heap, (_key(messages[child], position[child]), child))
        if len(ordered) == len(messages):
            return ordered
        # What was never reached hangs on a cycle: cut it at its earliest message.
        stranded = min(
            (i for i in messages if i not in emitted),
            key=lambda i: _key(messages[i], position[i]),
        )
        warnings.append(
            f"{label}: message {stranded!r} is part of a parent cycle; it was made a root"
        )
        old_parent = messages[stranded].parent_source_id
        children[old_parent].remove(stranded)
        messages[stranded].parent_source_id = None
        heap = [(_key(messages[stranded], position[stranded]), stranded)]


def _order_by_keys(
    messages: dict[str, SourceMessage], position: dict[str, int]
) -> list[SourceMessage] | None:
    """What :func:`_order` gives, when every parent sorts before its children (the usual
    case; never with a cycle): then the heap pops messages in plain key order. ``None``
    otherwise, and where keys do not compare (a naive time beside an aware one: the heap
    may never compare those two)."""
    keys = {i: _key(m, position[i]) for i, m in messages.items()}
    try:
        if not all(
            m.parent_source_id is None or keys[m.parent_source_id] < keys[i]
            for i, m in messages.items()
        ):
            return None
        ordered = sorted(keys.items(), key=itemgetter(1))
    except TypeError:
        return None
    return [messages[i] for i, _ in ordered]


def _active_leaf(
    conversation: SourceConversation,
    messages: dict[str, SourceMessage],
    ordered: list[SourceMessage],
    warnings: list[str],
    label: str,
) -> str | None:
    wanted = conversation.active_leaf_source_id
    if wanted is not None and wanted in messages:
        return wanted
    if wanted is not None:
        warnings.append(f"{label}: its current message {wanted!r} is missing; using the newest")
    parents = {m.parent_source_id for m in ordered}
    leaves = [(i, m) for i, m in enumerate(ordered) if m.source_id not in parents]
    if not leaves:
        return None
    return max(leaves, key=lambda pair: _key(pair[1], pair[0]))[1].source_id
