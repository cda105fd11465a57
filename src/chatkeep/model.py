"""The data model: plain frozen dataclasses, no I/O.

Everything the store returns is one of these. Timestamps are timezone-aware UTC
``datetime`` objects (``None`` where a source did not say, e.g. some imports).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal

import orjson

Role = Literal["system", "user", "assistant", "tool"]
ROLES: Final[tuple[str, ...]] = ("system", "user", "assistant", "tool")

ConversationState = Literal["active", "archived", "trashed"]
STATES: Final[tuple[str, ...]] = ("active", "archived", "trashed")

Origin = Literal["native", "imported"]

#: Part kinds chatkeep knows about. Any other kind is stored and returned as-is.
KNOWN_PART_KINDS: Final[tuple[str, ...]] = (
    "text",
    "code",
    "image",
    "file",
    "tool_call",
    "tool_result",
    "reasoning",
)


#: The part kind that holds an encrypted user's message, sealed (see chatkeep.encryption):
#: for such a user, the store takes no message in any other shape.
ENCRYPTED_PART = "encrypted"
#: How an encrypted user's draft text starts, and the one key of a sealed JSON value
#: (snapshot state, recorded event data): ``{"encrypted": "<envelope>"}``. For such a
#: user the store takes drafts, states and event data only in these shapes.
SEALED_DRAFT_PREFIX = "chatkeep-encrypted:"
SEALED_VALUE_KEY = "encrypted"


def looks_sealed_draft(text: str) -> bool:
    """Whether a draft's text has the shape of a sealed one."""
    return text.startswith(SEALED_DRAFT_PREFIX)


def looks_sealed_value(value: Any) -> bool:
    """Whether a JSON value (snapshot state, event data) has the shape of a sealed one."""
    return (
        isinstance(value, dict)
        and list(value) == [SEALED_VALUE_KEY]
        and isinstance(value[SEALED_VALUE_KEY], str)
    )


def canonical_json(value: Any) -> bytes:
    """The one JSON encoding used for stored content and content hashes.

    Sorted keys and no whitespace; changing it changes every stored content hash.
    """
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


@dataclass(frozen=True, slots=True)
class Part:
    """One ordered piece of a message's content.

    ``kind`` says what it is (see :data:`KNOWN_PART_KINDS`; others are kept as-is),
    ``text`` holds its text when it has any (the code of a ``code`` part, the thinking
    of a ``reasoning`` part), and ``data`` everything else: a code part's ``language``,
    a file part's ``attachment_id``, a tool call's ``name`` and ``arguments``.
    """

    kind: str
    text: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        shape: dict[str, Any] = {"kind": self.kind}
        if self.text is not None:
            shape["text"] = self.text
        if self.data:
            shape["data"] = self.data
        return shape

    @classmethod
    def from_dict(cls, shape: dict[str, Any]) -> Part:
        return cls(kind=shape["kind"], text=shape.get("text"), data=shape.get("data") or {})


def text_part(text: str) -> Part:
    """A plain text part."""
    return Part(kind="text", text=text)


def searchable_text(content: str) -> str:
    """What search reads of stored content (canonical JSON of parts): the text of
    every part that has text, one part per line."""
    return "\n".join(
        part["text"]
        for part in orjson.loads(content)
        if isinstance(part, dict) and isinstance(part.get("text"), str)
    )


def content_hash(parts: tuple[Part, ...] | list[Part]) -> str:
    """sha256 of a message's content parts in canonical JSON."""
    return hashlib.sha256(canonical_json([p.to_dict() for p in parts])).hexdigest()


@dataclass(frozen=True, slots=True)
class User:
    id: str
    display_name: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ApiToken:
    """A bearer token of the HTTP API, as listed: its secret is never kept."""

    id: str
    user_id: str
    name: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A named saved state of an application; starred ones outlive retention."""

    id: str
    name: str
    starred: bool
    state: Any
    runtime_id: str | None
    conversation_id: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class UsageTotal:
    """Usage summed for one day, model and runtime."""

    day: str
    model: str
    runtime_id: str | None
    events: int
    tokens_in: int
    tokens_out: int
    cost: float
    duration_ms: int


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """One event of a conversation's recording, in the order it was recorded."""

    seq: int
    at: datetime
    kind: str
    data: Any


@dataclass(frozen=True, slots=True)
class Draft:
    conversation_id: str
    text: str
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Runtime:
    """An assistant identity; its ``config`` holds model, instructions, tools, memories."""

    id: str
    user_id: str
    name: str
    origin: Origin
    config: dict[str, Any]
    primary_conversation_id: str | None
    created_at: datetime
    updated_at: datetime
    source_platform: str | None = None  # for an imported runtime: chatgpt, claude, ...
    account: str | None = None  # the exporting account it was made for


@dataclass(frozen=True, slots=True)
class Conversation:
    id: str
    user_id: str
    runtime_id: str
    title: str
    origin: Origin
    state: ConversationState
    model: str | None
    tags: tuple[str, ...]
    message_count: int
    total_tokens: int
    total_cost: float
    active_leaf_id: str | None
    forked_from_conversation_id: str | None
    forked_from_message_id: str | None
    is_primary: bool
    pinned: bool
    created_at: datetime
    updated_at: datetime
    trashed_at: datetime | None
    source_platform: str | None = None  # imported: the platform it came from
    source_id: str | None = None  # imported: the provider's conversation id
    import_id: str | None = None  # imported: the import that last changed it


@dataclass(frozen=True, slots=True)
class ImportRecord:
    """One export brought in: where from, what it changed, what went wrong."""

    id: str
    platform: str
    runtime_id: str
    file_name: str
    file_size: int
    file_sha256: str
    stored_path: str | None
    counts: dict[str, int]
    warnings: tuple[str, ...]
    metadata: dict[str, Any]
    started_at: datetime
    finished_at: datetime


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file a message refers to; its bytes are stored once per sha256."""

    id: str
    message_id: str
    conversation_id: str
    sha256: str
    size: int
    mime_type: str
    name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Message:
    id: str
    conversation_id: str
    parent_id: str | None
    seq: int
    role: Role
    author: str | None
    parts: tuple[Part, ...]
    created_at: datetime | None
    model: str | None
    tokens: int | None
    cost: float | None
    metadata: dict[str, Any]
    hidden: bool
    content_sha256: str
    attachments: tuple[Attachment, ...] = ()

    @property
    def text(self) -> str:
        """The message's text parts joined by blank lines (for display and search)."""
        return "\n\n".join(p.text for p in self.parts if p.kind == "text" and p.text)


@dataclass(frozen=True, slots=True)
class NewAttachment:
    """An attachment to store with a new message: raw bytes or a path to read."""

    name: str
    data: bytes | None = None
    path: str | None = None
    mime_type: str = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class NewMessage:
    """What a caller supplies to append a message; the store fills in the rest.

    ``parent_id`` of ``None`` means "continue the active branch"; pass ``root=True``
    to start a new root instead.
    """

    role: str
    parts: tuple[Part, ...]
    parent_id: str | None = None
    root: bool = False
    author: str | None = None
    model: str | None = None
    tokens: int | None = None
    cost: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    hidden: bool = False
    created_at: datetime | None = None
    attachments: tuple[NewAttachment, ...] = ()


@dataclass(frozen=True, slots=True)
class Branch:
    """One root-to-leaf path of a conversation tree."""

    index: int
    leaf_id: str
    length: int
    active: bool
    message_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing ``doctor`` found wrong. ``severity`` is ``error`` or ``warning``."""

    check: str
    message: str
    severity: Literal["error", "warning"] = "error"
    subject: str | None = None


KeyMethod = Literal["passphrase", "key_file", "destroyed"]


@dataclass(frozen=True, slots=True)
class UserKey:
    """A user's encryption key as stored: the data key wrapped by a passphrase-derived
    key (``kdf`` holds scrypt's parameters, ``salt`` its salt) or by a key file.

    Once destroyed, only the tombstone remains (``method`` ``destroyed``, no wrapped
    key), so that content sealed under ``key_id`` is reported as destroyed, not as
    plain text or as damage.
    """

    user_id: str
    key_id: str
    method: KeyMethod
    kdf: dict[str, Any]
    salt: bytes | None
    wrapped_key: bytes | None
    created_at: datetime
    changed_at: datetime
    destroyed_at: datetime | None = None

    @property
    def destroyed(self) -> bool:
        return self.method == "destroyed"
