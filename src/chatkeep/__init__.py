"""chatkeep: a local-first, persistent store for AI conversations.

>>> import chatkeep
>>> with chatkeep.open(create=True) as vault:  # doctest: +SKIP
...     vault.store.add_user("alice")
...     runtime = vault.store.create_runtime("alice", "synth-001")
...     home = vault.store.route("alice", "synth-001")
...     vault.store.append_message("alice", home.id, chatkeep.user_message("hello"))

Only the names in ``__all__`` are promised; everything else may change.
"""

from __future__ import annotations

from chatkeep.errors import (
    ChatkeepError,
    Conflict,
    InvalidId,
    InvalidInput,
    KeyDestroyed,
    LimitExceeded,
    Locked,
    MigrationError,
    NotFound,
    StorageError,
    StorageFull,
    StoreBusy,
    UnsafeLocation,
    VaultError,
    VaultNotInitialised,
    VaultTooNew,
    WrongKey,
)
from chatkeep.model import (
    Attachment,
    Branch,
    Conversation,
    Message,
    NewAttachment,
    NewMessage,
    Part,
    Problem,
    Runtime,
    User,
)
from chatkeep.store import DeleteReport, Store
from chatkeep.vault import Vault
from chatkeep.vault import open_vault as open

__version__ = "0.1.0"


def user_message(text: str, **options: object) -> NewMessage:
    """A new ``user`` message with one text part (``options`` as for :class:`NewMessage`)."""
    return NewMessage(role="user", parts=(Part(kind="text", text=text),), **options)  # type: ignore[arg-type]


def assistant_message(text: str, **options: object) -> NewMessage:
    """A new ``assistant`` message with one text part."""
    return NewMessage(role="assistant", parts=(Part(kind="text", text=text),), **options)  # type: ignore[arg-type]


__all__ = [
    "Attachment",
    "Branch",
    "ChatkeepError",
    "Conflict",
    "Conversation",
    "DeleteReport",
    "InvalidId",
    "InvalidInput",
    "KeyDestroyed",
    "LimitExceeded",
    "Locked",
    "Message",
    "MigrationError",
    "NewAttachment",
    "NewMessage",
    "NotFound",
    "Part",
    "Problem",
    "Runtime",
    "StorageError",
    "StorageFull",
    "Store",
    "StoreBusy",
    "UnsafeLocation",
    "User",
    "Vault",
    "VaultError",
    "VaultNotInitialised",
    "VaultTooNew",
    "WrongKey",
    "__version__",
    "assistant_message",
    "open",
    "user_message",
]
