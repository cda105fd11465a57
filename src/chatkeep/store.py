"""The ``Store`` contract every backend implements.

Rules that hold for every method (``tests/contract`` checks them on every backend):

* Every method that touches user data takes the id of the user it acts for, first.
  Another user's ids behave exactly like ids that do not exist: :class:`NotFound`.
* A write returns only when it is durable, and either happens whole or not at all.
* Bad input raises an :class:`~chatkeep.errors.InvalidInput` before anything changes.
* Stored messages are never changed: an edit or a regeneration is a new sibling.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from chatkeep.importers.model import ParsedExport
from chatkeep.importers.source import ExportSource
from chatkeep.model import (
    ApiToken,
    Attachment,
    Branch,
    Conversation,
    ConversationState,
    Draft,
    ImportRecord,
    Message,
    NewMessage,
    Problem,
    RecordedEvent,
    Runtime,
    Snapshot,
    UsageTotal,
    User,
    UserKey,
)
from chatkeep.search import SearchFilters, SearchPage


@dataclass(frozen=True, slots=True)
class DeleteReport:
    """What a hard delete removed."""

    conversations: int
    messages: int
    attachments: int
    blobs: int


@dataclass(frozen=True, slots=True)
class ImportFile:
    """The export an import reads: its identity and where the vault keeps the original."""

    import_id: str
    name: str
    size: int
    sha256: str
    stored_path: str | None


@runtime_checkable
class Store(Protocol):
    """Durable, per-user storage of runtimes, conversations, messages and settings."""

    # -- users ---------------------------------------------------------------------
    def add_user(self, user_id: str, *, display_name: str | None = None) -> User:
        """Create a user; :class:`Conflict` if the name is taken."""
        ...

    def get_user(self, user_id: str) -> User: ...

    def list_users(self) -> list[User]: ...

    # -- runtimes ------------------------------------------------------------------
    def create_runtime(
        self,
        user_id: str,
        runtime_id: str,
        *,
        name: str | None = None,
        config: dict[str, Any] | None = None,
    ) -> Runtime:
        """Create a runtime together with its primary conversation ``chat_with_<id>``."""
        ...

    def get_runtime(self, user_id: str, runtime_id: str) -> Runtime: ...

    def list_runtimes(self, user_id: str) -> list[Runtime]: ...

    def update_runtime(
        self,
        user_id: str,
        runtime_id: str,
        *,
        name: str | None = None,
        config: dict[str, Any] | None = None,
    ) -> Runtime: ...

    def delete_runtime(self, user_id: str, runtime_id: str) -> DeleteReport:
        """Delete a runtime and its primary conversation.

        :class:`Conflict` while it has other conversations (trashed ones included).
        """
        ...

    def route(self, user_id: str, runtime_id: str) -> Conversation:
        """The runtime's primary conversation, re-created if it is somehow missing."""
        ...

    # -- conversations -------------------------------------------------------------
    def create_conversation(
        self,
        user_id: str,
        runtime_id: str,
        *,
        title: str | None = None,
        model: str | None = None,
        tags: Sequence[str] = (),
    ) -> Conversation: ...

    def get_conversation(self, user_id: str, conversation_id: str) -> Conversation: ...

    def list_conversations(
        self,
        user_id: str,
        *,
        runtime_id: str | None = None,
        state: ConversationState = "active",
        limit: int = 50,
        offset: int = 0,
    ) -> list[Conversation]:
        """Conversations in sidebar order.

        For the active state: the runtime's primary conversation first, then the pins of
        that runtime (newest pin first), then the rest by last activity. Other states
        list by last activity. Without ``runtime_id``, every runtime's conversations.
        """
        ...

    def rename_conversation(
        self, user_id: str, conversation_id: str, title: str
    ) -> Conversation: ...

    def tag_conversation(
        self,
        user_id: str,
        conversation_id: str,
        *,
        add: Sequence[str] = (),
        remove: Sequence[str] = (),
    ) -> Conversation: ...

    def pin_conversation(self, user_id: str, conversation_id: str) -> Conversation: ...

    def unpin_conversation(self, user_id: str, conversation_id: str) -> Conversation: ...

    def archive_conversation(self, user_id: str, conversation_id: str) -> Conversation: ...

    def unarchive_conversation(self, user_id: str, conversation_id: str) -> Conversation: ...

    def trash_conversation(self, user_id: str, conversation_id: str) -> Conversation: ...

    def restore_conversation(self, user_id: str, conversation_id: str) -> Conversation: ...

    def delete_conversation(self, user_id: str, conversation_id: str) -> DeleteReport:
        """Remove the conversation, its messages and the blobs nothing else refers to."""
        ...

    def fork_conversation(
        self,
        user_id: str,
        conversation_id: str,
        message_id: str,
        *,
        title: str | None = None,
    ) -> Conversation:
        """A new conversation holding copies of the path from the root to ``message_id``."""
        ...

    # -- messages ------------------------------------------------------------------
    def append_message(self, user_id: str, conversation_id: str, message: NewMessage) -> Message:
        """Append one message; it is durable when this returns."""
        ...

    def append_messages(
        self, user_id: str, conversation_id: str, messages: Sequence[NewMessage]
    ) -> list[Message]:
        """Append several messages in one transaction (all or none)."""
        ...

    def get_message(self, user_id: str, message_id: str) -> Message: ...

    def list_messages(
        self,
        user_id: str,
        conversation_id: str,
        *,
        leaf_id: str | None = None,
        all_branches: bool = False,
    ) -> list[Message]:
        """The path from the root to ``leaf_id`` (the active leaf by default), or every
        message in arrival order with ``all_branches``."""
        ...

    def list_branches(self, user_id: str, conversation_id: str) -> list[Branch]:
        """Every root-to-leaf path, numbered from 1 in order of their leaves' arrival."""
        ...

    def get_attachment(self, user_id: str, attachment_id: str) -> Attachment: ...

    def read_attachment(self, user_id: str, attachment_id: str) -> bytes: ...

    # -- settings ------------------------------------------------------------------
    def get_setting(self, user_id: str, key: str) -> Any: ...

    def set_setting(self, user_id: str, key: str, value: Any) -> None: ...

    def delete_setting(self, user_id: str, key: str) -> None: ...

    def list_settings(self, user_id: str, *, prefix: str | None = None) -> dict[str, Any]: ...

    # -- API tokens ----------------------------------------------------------------
    def add_token(self, user_id: str, *, name: str, token_sha256: str) -> ApiToken:
        """Keep a new token by the sha256 of its secret (see :mod:`chatkeep.tokens`)."""
        ...

    def list_tokens(self, user_id: str) -> list[ApiToken]:
        """The user's tokens, revoked ones included, oldest first."""
        ...

    def revoke_token(self, user_id: str, token_id: str) -> ApiToken:
        """Revoke a token at once; revoking it again changes nothing."""
        ...

    def token_owner(self, token_sha256: str) -> tuple[str, str] | None:
        """(user id, token id) of the live token with this hash, or None."""
        ...

    # -- imports -------------------------------------------------------------------
    def write_import(
        self,
        user_id: str,
        parsed: ParsedExport,
        source: ExportSource,
        file: ImportFile,
        *,
        dry_run: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ) -> ImportRecord:
        """Write a parsed export in one transaction, merged with earlier imports by
        source id, into the imported runtime of its platform and account. With
        ``dry_run`` nothing is kept; the record says what would have changed."""
        ...

    def list_imports(self, user_id: str) -> list[ImportRecord]: ...

    def get_import(self, user_id: str, import_id: str) -> ImportRecord: ...

    def delete_import(self, user_id: str, import_id: str) -> DeleteReport:
        """Delete the conversations an import last wrote (never a home) and its record."""
        ...

    def find_import(self, user_id: str, file_sha256: str) -> ImportRecord | None:
        """The first import of the file with this sha256, if any."""
        ...

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
        """Full-text search of the user's messages and titles, best first (see
        :mod:`chatkeep.search` for the query language). Trashed conversations never
        appear; archived ones only with ``filters.include_archived``."""
        ...

    def messages_to_embed(self, embedder: str, *, limit: int) -> list[tuple[int, str, str]]:
        """(message key, owner, searchable text) of messages ``embedder`` has not seen."""
        ...

    def count_messages_to_embed(self, embedder: str) -> int: ...

    def store_vectors(self, embedder: str, vectors: Sequence[tuple[int, int, str, bytes]]) -> None:
        """Keep (message key, chunk, owner, float32 bytes); empty bytes mark "nothing to
        embed". Existing rows are kept as they are (indexing is incremental)."""
        ...

    def vector_rows(
        self, user_id: str, embedder: str, filters: SearchFilters | None = None
    ) -> list[Any]:
        """The user's stored vectors that ``filters`` allow: (vector, chunk, pk)."""
        ...

    def allowed_message_keys(
        self, user_id: str, pks: Sequence[int], filters: SearchFilters | None = None
    ) -> set[int]:
        """Which message keys belong to the user and pass ``filters`` (never trashed)."""
        ...

    def vector_snapshot(self, user_id: str, embedder: str, known: tuple[int, int] | None) -> Any:
        """(version, rows of (pk, chunk, vector)); rows is None while ``known`` is current,
        so a caller can keep the vectors in memory and re-read only after a change."""
        ...

    def vector_details(self, user_id: str, pks: Sequence[int]) -> list[Any]:
        """For vector keys: (pk, message_id, role, created_at, content, conversation_id,
        title, runtime_id) of the user's messages."""
        ...

    def rebuild_search_index(self) -> int:
        """Derive the search index again from the stored rows; return messages indexed."""
        ...

    def merge_tables(
        self,
        tables: Iterable[tuple[str, Iterable[dict[str, Any]]]],
        *,
        progress: Callable[[str, int], None] | None = None,
    ) -> dict[str, int]:
        """Rows not held yet (by id) into this store, in one transaction; new counts."""
        ...

    # -- snapshots, usage, recordings, drafts, retention ------------------------------
    def save_snapshot(
        self,
        user_id: str,
        name: str,
        state: Any,
        *,
        starred: bool = False,
        runtime_id: str | None = None,
        conversation_id: str | None = None,
    ) -> Snapshot: ...

    def list_snapshots(self, user_id: str) -> list[Snapshot]: ...

    def get_snapshot(self, user_id: str, snapshot_id: str) -> Snapshot: ...

    def star_snapshot(self, user_id: str, snapshot_id: str, starred: bool) -> Snapshot: ...

    def delete_snapshot(self, user_id: str, snapshot_id: str) -> None: ...

    def record_usage(
        self,
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
    ) -> str: ...

    def usage_totals(
        self, user_id: str, *, since: datetime | None = None, until: datetime | None = None
    ) -> list[UsageTotal]: ...

    def record_event(
        self,
        user_id: str,
        conversation_id: str,
        kind: str,
        data: Any = None,
        *,
        at: datetime | None = None,
    ) -> int: ...

    def replay(self, user_id: str, conversation_id: str) -> list[RecordedEvent]: ...

    def put_draft(self, user_id: str, conversation_id: str, text: str) -> Draft: ...

    def get_draft(self, user_id: str, conversation_id: str) -> Draft | None: ...

    def expired(
        self,
        user_id: str,
        *,
        trashed_before: datetime,
        snapshots_before: datetime,
        usage_before: datetime,
    ) -> dict[str, list[str]]: ...

    def purge(
        self, user_id: str, *, snapshots: Sequence[str], usage_events: Sequence[str]
    ) -> tuple[int, int]: ...

    # -- encryption keys (wrapped only; chatkeep.encryption uses them) ----------------
    def get_user_key(self, user_id: str) -> UserKey | None:
        """The user's key record, a destroyed key's tombstone included; None if the
        user never had one. :class:`NotFound` for an unknown user."""
        ...

    def add_user_key(self, user_id: str, key: UserKey) -> None:
        """Keep the user's key (in place of a tombstone, if any); :class:`Conflict`
        while the user has a live key."""
        ...

    def rewrap_user_key(self, user_id: str, key: UserKey) -> None:
        """Replace the wrapping of the live key ``key.key_id``; :class:`NotFound` if the
        user's live key is another one, or none."""
        ...

    def destroy_user_key(self, user_id: str) -> UserKey:
        """Remove the wrapped key and salt for good, keeping a tombstone (method
        ``destroyed``); returns it. :class:`NotFound` if the user has no key."""
        ...

    # -- deleting an account --------------------------------------------------------
    def delete_user(self, user_id: str) -> dict[str, int]:
        """Remove every row of the user in every table, and blobs no one else uses."""
        ...

    def compact(self) -> None:
        """Rewrite storage so that deleted data leaves no bytes in the vault's files."""
        ...

    # -- whole-vault copies ---------------------------------------------------------
    def dump_snapshot(self) -> Iterator[tuple[str, Iterator[dict[str, Any]]]]:
        """Every data table's rows from one consistent snapshot (see the backend)."""
        ...

    def schema_version(self) -> list[str]:
        """Names of the applied schema migrations."""
        ...

    def dump_table(self, name: str) -> Iterator[dict[str, Any]]:
        """Every row of a data table (``schema.DATA_TABLES``) by primary key."""
        ...

    def load_tables(
        self,
        tables: Iterable[tuple[str, Iterable[dict[str, Any]]]],
        *,
        progress: Callable[[str, int], None] | None = None,
    ) -> dict[str, int]:
        """Rows as they are into an empty store, in one transaction; counts per table."""
        ...

    # -- integrity -----------------------------------------------------------------
    def sweep_unused_blobs(self) -> int:
        """Remove attachment blobs no attachment refers to (left by a crash); return how many."""
        ...

    def check(self) -> list[Problem]:
        """Every integrity problem found (empty when the store is healthy)."""
        ...

    def close(self) -> None: ...
