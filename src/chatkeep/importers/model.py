"""What a parser turns an export into: platform-neutral conversations with source ids.

A parser only reads; the import engine (:mod:`chatkeep.importing`) repairs graphs
(dangling parents, cycles), orders messages parents-first, merges with earlier imports
by source id and writes everything in one transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from chatkeep.model import Part


@dataclass(slots=True)
class SourceFile:
    """A file a message refers to. ``member`` names the archive member holding its
    bytes, or is ``None`` when the export does not include them (recorded as missing)."""

    name: str
    mime_type: str = "application/octet-stream"
    member: str | None = None
    size: int | None = None
    pointer: str | None = None  # the provider's reference, e.g. sediment://file_abc


@dataclass(slots=True)
class SourceMessage:
    """One message as the export has it. ``parent_source_id`` of ``None`` is a root."""

    source_id: str
    parent_source_id: str | None
    role: str  # system | user | assistant | tool
    parts: list[Part]
    created_at: datetime | None = None
    author: str | None = None
    model: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    hidden: bool = False
    files: list[SourceFile] = field(default_factory=list)


@dataclass(slots=True)
class SourceConversation:
    """One conversation. ``active_leaf_source_id`` of ``None`` means the newest leaf."""

    source_id: str
    title: str
    messages: list[SourceMessage]
    created_at: datetime | None = None
    updated_at: datetime | None = None
    active_leaf_source_id: str | None = None
    model: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    archived: bool = False
    warnings: list[str] = field(default_factory=list)
    #: For exports of a platform with runtimes of its own (VVAULT): the runtime it
    #: belongs to, and whether it is that runtime's home transcript.
    source_runtime: str | None = None
    primary: bool = False


@dataclass(slots=True)
class ParsedExport:
    """A parsed export. ``conversations`` is consumed once, as a stream.

    ``account`` is a stable key of the exporting account (a user id, an email) used to
    find the imported runtime again on a later export; ``account_label`` is a short
    human name for the runtime's id. ``warnings`` and ``skipped`` may grow while the
    conversations are consumed.
    """

    platform: str
    conversations: Iterator[SourceConversation]
    account: str | None = None
    account_label: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)


def epoch_seconds(value: Any) -> datetime | None:
    """A provider's epoch-seconds timestamp (float, int or numeric string) as UTC.

    ``None``, ``0`` and anything unparseable or out of range give ``None``.
    """
    if value.__class__ is float:  # what a JSON parser gives: no conversion to try
        seconds = value
    elif isinstance(value, bool) or value is None:
        return None
    else:
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            return None
    if not seconds or seconds != seconds or abs(seconds) > 253_402_300_799:
        return None
    return datetime.fromtimestamp(seconds, UTC)


def iso_time(value: Any) -> datetime | None:
    """An ISO-8601 timestamp (``Z`` or an offset; naive means UTC) as UTC, else ``None``."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
