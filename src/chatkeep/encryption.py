"""Encryption at rest, per user, above the :class:`~chatkeep.store.Store` contract.

A user who has a key (``chatkeep key init``) gets their content sealed before it
reaches any backend, and opened on the way back out, so every backend (present and
future) stores and indexes only ciphertext without knowing it:

* **message content**: all of a message's parts are sealed into one ``encrypted`` part
  (``{"kind": "encrypted", "data": {"envelope": "<base64>"}}``), an ordinary part kind
  the backends keep as-is; it has no ``text``, so the full-text and vector indexes get
  nothing of it (:func:`chatkeep.model.searchable_text`);
* **attachment bytes**, sealed before they are written as a blob;
* **drafts**, **snapshot states** and **recording events' data** (they hold the same
  text as messages).

What stays in clear: users, runtimes and their configuration, conversation titles,
tags, states and timestamps, message roles, authors, models, token and cost counts,
metadata and the tree, attachment names, types and sizes, settings, usage, tokens.

Search for an encrypted user covers only what is in clear (titles, by the ordinary
index); message text is never indexed. The data key lives only in this process's
memory once unlocked (:class:`KeyManager`); destroying the wrapped key leaves every
ciphertext unreadable for good (crypto-shredding).

:mod:`chatkeep.crypto` does the cryptography; this module decides what is sealed where.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

import orjson

from chatkeep import crypto, limits
from chatkeep.crypto import ScryptParams
from chatkeep.errors import (
    Conflict,
    InvalidInput,
    KeyDestroyed,
    KeyRequired,
    LimitExceeded,
    Locked,
    WrongKey,
)
from chatkeep.importers.model import ParsedExport
from chatkeep.importers.source import ExportSource
from chatkeep.model import (
    ENCRYPTED_PART,
    SEALED_DRAFT_PREFIX,
    SEALED_VALUE_KEY,
    ApiToken,
    Attachment,
    Branch,
    Conversation,
    ConversationState,
    Draft,
    ImportRecord,
    KeyMethod,
    Message,
    NewAttachment,
    NewMessage,
    Part,
    Problem,
    RecordedEvent,
    Runtime,
    Snapshot,
    UsageTotal,
    User,
    UserKey,
    canonical_json,
    content_hash,
)
from chatkeep.search import SearchFilters, SearchPage
from chatkeep.store import DeleteReport, ImportFile, Store
from chatkeep.timeutil import utcnow
from chatkeep.validate import check_new_message, encode_json

_T = TypeVar("_T")
_UNLOCK_HINT: Final = (
    "unlock it: CHATKEEP_PASSPHRASE, --passphrase-file or --key-file on the command line, "
    "POST /api/key/unlock on the HTTP API, vault.unlock() in Python"
)


# -- secrets and key state ---------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Passphrase:
    """A passphrase that opens (or will open) a user's key."""

    text: str = dataclasses.field(repr=False)


@dataclass(frozen=True, slots=True)
class KeyFile:
    """The 32 bytes of a key file that open (or will open) a user's key."""

    secret: bytes = dataclasses.field(repr=False)


Secret = Passphrase | KeyFile
#: Asked for the secret of a locked user when their content is needed (the CLI prompts);
#: None means "no secret available".
KeyProvider = Callable[[UserKey], Secret | None]


@dataclass(frozen=True, slots=True)
class KeyStatus:
    """Whether a user's content is encrypted, how the key opens, and whether it is
    unlocked in this process."""

    user_id: str
    encrypted: bool
    method: KeyMethod | None
    key_id: str | None
    unlocked: bool
    created_at: datetime | None
    changed_at: datetime | None
    destroyed_at: datetime | None


def secret_of(
    *, passphrase: str | None = None, key_file: str | Path | None = None, key: bytes | None = None
) -> Secret:
    """Exactly one of a passphrase, a key file's path, or a key file's bytes."""
    given = [value for value in (passphrase, key_file, key) if value is not None]
    if len(given) != 1:
        raise InvalidInput("give exactly one of a passphrase, a key file or its bytes")
    if passphrase is not None:
        return Passphrase(passphrase)
    if key is not None:
        return KeyFile(crypto.check_key_file_secret(key))
    return KeyFile(read_key_file(Path(str(key_file))))


def read_key_file(path: Path) -> bytes:
    """The secret in a key file; a clear error if it is missing or not one."""
    try:
        with path.open("rb") as handle:
            data = handle.read(crypto.KEY_BYTES + 1)
    except OSError as exc:
        raise InvalidInput(f"cannot read the key file {path}: {exc.strerror}") from exc
    return crypto.check_key_file_secret(data)


def _kek(key: UserKey, secret: Secret) -> bytes:
    """The key-encryption key ``secret`` gives for ``key``'s wrapping."""
    if key.method == "passphrase":
        if not isinstance(secret, Passphrase):
            raise WrongKey(f"the key of user {key.user_id} opens with a passphrase, not a key file")
        assert key.salt is not None
        return crypto.derive_from_passphrase(secret.text, key.salt, ScryptParams.from_dict(key.kdf))
    if key.method == "key_file":
        if not isinstance(secret, KeyFile):
            raise WrongKey(f"the key of user {key.user_id} opens with a key file, not a passphrase")
        return crypto.check_key_file_secret(secret.secret)
    raise _destroyed(key.user_id)


def _wrapped(
    user_id: str,
    key_id: str,
    dek: bytes,
    secret: Secret,
    kdf: ScryptParams | None,
    created_at: datetime,
) -> UserKey:
    """A key record holding ``dek`` wrapped under what ``secret`` derives."""
    now = utcnow()
    if isinstance(secret, Passphrase):
        params, salt = kdf or ScryptParams(), crypto.new_salt()
        kek = crypto.derive_from_passphrase(secret.text, salt, params)
        method: KeyMethod = "passphrase"
        shape: dict[str, Any] = params.to_dict()
    else:
        kek, salt, method, shape = crypto.check_key_file_secret(secret.secret), None, "key_file", {}
    return UserKey(
        user_id=user_id,
        key_id=key_id,
        method=method,
        kdf=shape,
        salt=salt,
        wrapped_key=crypto.wrap_key(kek, dek, user_id=user_id, key_id=key_id),
        created_at=created_at,
        changed_at=now,
    )


def _destroyed(user_id: str) -> KeyDestroyed:
    return KeyDestroyed(
        f"the key of user {user_id} was destroyed: what it encrypted can never be read again",
        hint="delete what is left with 'chatkeep user rm', or start over with 'chatkeep key init'",
    )


class KeyManager:
    """Users' keys: created, re-wrapped, destroyed in the store; unlocked data keys held
    in this process's memory only (never written anywhere)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._unlocked: dict[str, tuple[str, bytes]] = {}  # user -> (key id, data key)
        self._lock = threading.Lock()
        # Users last seen without a key: their appends skip the lookup (the store itself
        # refuses a message in clear once they have one; see EncryptedStore).
        self._keyless: set[str] = set()
        #: Called for the secret of a locked user whose content is needed.
        self.provider: KeyProvider | None = None

    # -- managing keys ------------------------------------------------------------
    def init(self, user_id: str, secret: Secret, *, kdf: ScryptParams | None = None) -> KeyStatus:
        """Give the user a new random data key, wrapped by ``secret``, and unlock it.

        Refused (:class:`Conflict`) while the user has a live key, or content stored in
        clear: that content could not be encrypted afterwards (stored messages never
        change), nor shredded with the key.
        """
        existing = self._store.get_user_key(user_id)
        if existing is not None and not existing.destroyed:
            raise Conflict(
                f"user {user_id} already has an encryption key",
                hint="change how it opens with 'chatkeep key change'",
            )
        in_clear = count_clear_content(self._store, user_id)
        if in_clear:
            raise Conflict(
                f"user {user_id} already holds {in_clear} item(s) of content in clear",
                hint="turn encryption on before storing content: for existing history, use a "
                "new user with a key (see the guide, 'Encryption at rest')",
            )
        key_id, dek = crypto.new_key_id(), crypto.new_data_key()
        self.forget_keyless(user_id)
        self._store.add_user_key(user_id, _wrapped(user_id, key_id, dek, secret, kdf, utcnow()))
        self._remember(user_id, key_id, dek)
        return self.status(user_id)

    def change(
        self, user_id: str, old: Secret, new: Secret, *, kdf: ScryptParams | None = None
    ) -> KeyStatus:
        """Wrap the same data key under ``new`` (a passphrase or a key file); content is
        not re-encrypted. The old secret stops working."""
        key = self.live_key(user_id)
        dek = self._open(key, old)
        self._store.rewrap_user_key(
            user_id, _wrapped(user_id, key.key_id, dek, new, kdf, key.created_at)
        )
        self._remember(user_id, key.key_id, dek)
        return self.status(user_id)

    def destroy(self, user_id: str) -> KeyStatus:
        """Crypto-shred: the wrapped key goes, so nothing it sealed can be read again by
        anyone, with any secret. Run :meth:`Store.compact` after it so that no old copy of
        the wrapped key stays in the vault's files."""
        self._store.destroy_user_key(user_id)
        self.lock(user_id)
        return self.status(user_id)

    def unlock(self, user_id: str, secret: Secret) -> KeyStatus:
        """Open the user's key with ``secret`` and keep it in memory."""
        key = self.live_key(user_id)
        self._remember(user_id, key.key_id, self._open(key, secret))
        return self.status(user_id)

    def lock(self, user_id: str) -> None:
        """Forget the user's unlocked key (if any)."""
        with self._lock:
            self._unlocked.pop(user_id, None)

    def status(self, user_id: str) -> KeyStatus:
        key = self._store.get_user_key(user_id)
        if key is None:
            return KeyStatus(user_id, False, None, None, False, None, None, None)
        with self._lock:
            held = self._unlocked.get(user_id)
        return KeyStatus(
            user_id=user_id,
            encrypted=True,
            method=key.method,
            key_id=key.key_id,
            unlocked=held is not None and held[0] == key.key_id and not key.destroyed,
            created_at=key.created_at,
            changed_at=key.changed_at,
            destroyed_at=key.destroyed_at,
        )

    # -- for the store wrapper ------------------------------------------------------
    def sealing_key(self, user_id: str) -> tuple[str, bytes] | None:
        """(key id, data key) to seal new content of the user, or None if the user has no
        key. A locked user is unlocked through :attr:`provider`, else :class:`Locked`."""
        key = self._store.get_user_key(user_id)
        if key is None:
            with self._lock:
                self._keyless.add(user_id)
            return None
        if key.destroyed:
            raise _destroyed(user_id)
        return key.key_id, self._data_key(key)

    def known_keyless(self, user_id: str) -> bool:
        """Whether the user had no key when this process last looked."""
        with self._lock:
            return user_id in self._keyless

    def forget_keyless(self, user_id: str) -> None:
        with self._lock:
            self._keyless.discard(user_id)

    def opening_key(self, user_id: str, key_id: str) -> bytes | None:
        """The data key that sealed content under ``key_id``; None if the user never had
        a key (so what looks sealed is their own plain data)."""
        key = self._store.get_user_key(user_id)
        if key is None:
            return None
        if key.destroyed and key.key_id == key_id:
            raise _destroyed(user_id)
        if key.key_id != key_id:
            raise KeyDestroyed(
                f"this content of user {user_id} was encrypted under key {key_id}, which is "
                "not their key any more (destroyed, or another vault's): it can never be read",
                hint="delete it, or restore a backup taken before the key was destroyed",
            )
        return self._data_key(key)

    def _data_key(self, key: UserKey) -> bytes:
        with self._lock:
            held = self._unlocked.get(key.user_id)
        if held is not None and held[0] == key.key_id:
            return held[1]
        secret = self.provider(key) if self.provider is not None else None
        if secret is None:
            raise Locked(
                f"the content of user {key.user_id} is encrypted and locked", hint=_UNLOCK_HINT
            )
        dek = self._open(key, secret)
        self._remember(key.user_id, key.key_id, dek)
        return dek

    def live_key(self, user_id: str) -> UserKey:
        """The user's key record; a clear error if they have none, or it was destroyed."""
        key = self._store.get_user_key(user_id)
        if key is None:
            raise InvalidInput(
                f"user {user_id} has no encryption key", hint="create one with 'chatkeep key init'"
            )
        if key.destroyed:
            raise _destroyed(user_id)
        return key

    def _open(self, key: UserKey, secret: Secret) -> bytes:
        assert key.wrapped_key is not None
        kek = _kek(key, secret)
        return crypto.unwrap_key(kek, key.wrapped_key, user_id=key.user_id, key_id=key.key_id)

    def _remember(self, user_id: str, key_id: str, dek: bytes) -> None:
        with self._lock:
            self._unlocked[user_id] = (key_id, dek)


def count_clear_content(store: Store, user_id: str) -> int:
    """How many messages, drafts, snapshots and recorded events of the user are not
    sealed (read from ``store`` as it is: pass the backend, not the wrapper)."""
    found = sum(1 for s in store.list_snapshots(user_id) if _sealed_value(s.state) is None)
    states: tuple[ConversationState, ...] = ("active", "archived", "trashed")
    for state in states:
        offset = 0
        while page := store.list_conversations(
            user_id, state=state, limit=limits.MAX_PAGE_SIZE, offset=offset
        ):
            for conversation in page:
                found += _clear_in_conversation(store, user_id, conversation)
            offset += len(page)
    return found


def _clear_in_conversation(store: Store, user_id: str, conversation: Conversation) -> int:
    found = 0
    if conversation.message_count:
        messages = store.list_messages(user_id, conversation.id, all_branches=True)
        found += sum(1 for m in messages if _sealed_parts(m.parts) is None)
    draft = store.get_draft(user_id, conversation.id)
    if draft is not None and not draft.text.startswith(SEALED_DRAFT_PREFIX):
        found += 1
    events = store.replay(user_id, conversation.id)
    return found + sum(1 for e in events if _sealed_value(e.data) is None)


# -- sealed shapes --------------------------------------------------------------------------
def _sealed_parts(parts: Sequence[Part]) -> bytes | None:
    """The envelope of a message's sealed parts (its first part), or None."""
    if not parts or parts[0].kind != ENCRYPTED_PART or parts[0].text is not None:
        return None
    envelope = parts[0].data.get("envelope")
    return crypto.envelope_from_text(envelope) if isinstance(envelope, str) else None


def _sealed_value(value: Any) -> bytes | None:
    if isinstance(value, dict) and len(value) == 1 and isinstance(value.get(SEALED_VALUE_KEY), str):
        return crypto.envelope_from_text(value[SEALED_VALUE_KEY])
    return None


def _sealed_draft(text: str) -> bytes | None:
    if not text.startswith(SEALED_DRAFT_PREFIX):
        return None
    return crypto.envelope_from_text(text[len(SEALED_DRAFT_PREFIX) :])


class _Sealer:
    """Seals one call's worth of a user's content under their current key."""

    def __init__(self, user_id: str, key_id: str, dek: bytes) -> None:
        self.user_id, self.key_id, self.dek = user_id, key_id, dek

    def seal(self, purpose: str, plaintext: bytes, *details: str) -> bytes:
        aad = crypto.place(purpose, self.user_id, self.key_id, *details)
        return crypto.seal(self.dek, self.key_id, plaintext, aad)

    def seal_value(self, purpose: str, what: str, value: Any, *details: str) -> dict[str, str]:
        plaintext = encode_json(what, value).encode("utf-8")  # checked as the backend would
        return {SEALED_VALUE_KEY: crypto.envelope_to_text(self.seal(purpose, plaintext, *details))}


class _Opener:
    """Opens one call's worth of a user's sealed content; looks the key up only when
    something sealed turns up, so plain users pay nothing on reads."""

    def __init__(self, keys: KeyManager, user_id: str) -> None:
        self._keys, self.user_id = keys, user_id
        self._dek: dict[str, bytes | None] = {}

    def open(self, purpose: str, envelope: bytes, what: str, *details: str) -> bytes | None:
        """The plaintext, or None when the user has no key (the value is theirs as is)."""
        key_id = crypto.envelope_key_id(envelope)
        if key_id not in self._dek:
            self._dek[key_id] = self._keys.opening_key(self.user_id, key_id)
        dek = self._dek[key_id]
        if dek is None:
            return None
        aad = crypto.place(purpose, self.user_id, key_id, *details)
        return crypto.open_envelope(dek, envelope, aad, what=what)

    def message(self, message: Message) -> Message:
        envelope = _sealed_parts(message.parts)
        if envelope is None:
            return message
        plaintext = self.open("message", envelope, f"message {message.id}", message.role)
        if plaintext is None:
            return message
        parts = tuple(Part.from_dict(p) for p in orjson.loads(plaintext)) + message.parts[1:]
        return dataclasses.replace(message, parts=parts, content_sha256=content_hash(parts))

    def value(self, purpose: str, value: Any, what: str, *details: str) -> Any:
        envelope = _sealed_value(value)
        if envelope is None:
            return value
        plaintext = self.open(purpose, envelope, what, *details)
        return value if plaintext is None else orjson.loads(plaintext)

    def snapshot(self, snapshot: Snapshot) -> Snapshot:
        state = self.value("snapshot", snapshot.state, f"snapshot {snapshot.id}")
        return dataclasses.replace(snapshot, state=state)


# -- the store wrapper ---------------------------------------------------------------------
class EncryptedStore:
    """A :class:`~chatkeep.store.Store` that seals encrypted users' content on the way in
    and opens it on the way out; everything else passes through unchanged.

    Every method of the Store protocol is written out here (a test checks it), so that a
    new method must decide on purpose whether it carries content.
    """

    inner: Store
    keys: KeyManager
    _vault_root: Path | None

    def __init__(self, inner: Store, keys: KeyManager, *, vault_root: Path | None = None) -> None:
        object.__setattr__(self, "inner", inner)
        object.__setattr__(self, "keys", keys)
        object.__setattr__(self, "_vault_root", vault_root)

    if not TYPE_CHECKING:
        # Tools and tests reach into the backend's private attributes (its engine, its
        # blob store, a check to wrap): those pass through, reads and writes alike.
        # Hidden from the type checker so that a Store method missing here is an
        # error, not a silent pass-through.
        def __getattr__(self, name: str) -> Any:
            if name.startswith("_"):
                return getattr(self.inner, name)
            raise AttributeError(name)

        def __setattr__(self, name: str, value: Any) -> None:
            if name.startswith("_"):
                setattr(self.inner, name, value)
            else:  # e.g. a test replacing a method of vault.store: this object's own
                object.__setattr__(self, name, value)

        def __delattr__(self, name: str) -> None:
            if name.startswith("_"):
                delattr(self.inner, name)
            else:
                object.__delattr__(self, name)

    def _sealer(self, user_id: str) -> _Sealer | None:
        found = self.keys.sealing_key(user_id)
        return None if found is None else _Sealer(user_id, *found)

    def _sealed_write(self, user_id: str, write: Callable[[_Sealer | None], _T]) -> _T:
        """``write`` with the user's sealer (None: no key). If another process made a key
        after the lookup, the store refuses the value in clear (``KeyRequired``): look
        again and seal it."""
        sealer = self._sealer(user_id)
        try:
            return write(sealer)
        except KeyRequired:
            if sealer is not None:
                raise
            self.keys.forget_keyless(user_id)
            sealer = self._sealer(user_id)
            if sealer is None:
                raise
            return write(sealer)

    # -- users ------------------------------------------------------------------------
    def add_user(self, user_id: str, *, display_name: str | None = None) -> User:
        return self.inner.add_user(user_id, display_name=display_name)

    def get_user(self, user_id: str) -> User:
        return self.inner.get_user(user_id)

    def list_users(self) -> list[User]:
        return self.inner.list_users()

    # -- runtimes -----------------------------------------------------------------------
    def create_runtime(
        self,
        user_id: str,
        runtime_id: str,
        *,
        name: str | None = None,
        config: dict[str, Any] | None = None,
    ) -> Runtime:
        return self.inner.create_runtime(user_id, runtime_id, name=name, config=config)

    def get_runtime(self, user_id: str, runtime_id: str) -> Runtime:
        return self.inner.get_runtime(user_id, runtime_id)

    def list_runtimes(self, user_id: str) -> list[Runtime]:
        return self.inner.list_runtimes(user_id)

    def update_runtime(
        self,
        user_id: str,
        runtime_id: str,
        *,
        name: str | None = None,
        config: dict[str, Any] | None = None,
    ) -> Runtime:
        return self.inner.update_runtime(user_id, runtime_id, name=name, config=config)

    def delete_runtime(self, user_id: str, runtime_id: str) -> DeleteReport:
        return self.inner.delete_runtime(user_id, runtime_id)

    def route(self, user_id: str, runtime_id: str) -> Conversation:
        return self.inner.route(user_id, runtime_id)

    # -- conversations (titles, tags and states stay in clear) -------------------------
    def create_conversation(
        self,
        user_id: str,
        runtime_id: str,
        *,
        title: str | None = None,
        model: str | None = None,
        tags: Sequence[str] = (),
    ) -> Conversation:
        return self.inner.create_conversation(
            user_id, runtime_id, title=title, model=model, tags=tags
        )

    def get_conversation(self, user_id: str, conversation_id: str) -> Conversation:
        return self.inner.get_conversation(user_id, conversation_id)

    def list_conversations(
        self,
        user_id: str,
        *,
        runtime_id: str | None = None,
        state: ConversationState = "active",
        limit: int = 50,
        offset: int = 0,
    ) -> list[Conversation]:
        return self.inner.list_conversations(
            user_id, runtime_id=runtime_id, state=state, limit=limit, offset=offset
        )

    def rename_conversation(self, user_id: str, conversation_id: str, title: str) -> Conversation:
        return self.inner.rename_conversation(user_id, conversation_id, title)

    def tag_conversation(
        self,
        user_id: str,
        conversation_id: str,
        *,
        add: Sequence[str] = (),
        remove: Sequence[str] = (),
    ) -> Conversation:
        return self.inner.tag_conversation(user_id, conversation_id, add=add, remove=remove)

    def pin_conversation(self, user_id: str, conversation_id: str) -> Conversation:
        return self.inner.pin_conversation(user_id, conversation_id)

    def unpin_conversation(self, user_id: str, conversation_id: str) -> Conversation:
        return self.inner.unpin_conversation(user_id, conversation_id)

    def archive_conversation(self, user_id: str, conversation_id: str) -> Conversation:
        return self.inner.archive_conversation(user_id, conversation_id)

    def unarchive_conversation(self, user_id: str, conversation_id: str) -> Conversation:
        return self.inner.unarchive_conversation(user_id, conversation_id)

    def trash_conversation(self, user_id: str, conversation_id: str) -> Conversation:
        return self.inner.trash_conversation(user_id, conversation_id)

    def restore_conversation(self, user_id: str, conversation_id: str) -> Conversation:
        return self.inner.restore_conversation(user_id, conversation_id)

    def delete_conversation(self, user_id: str, conversation_id: str) -> DeleteReport:
        return self.inner.delete_conversation(user_id, conversation_id)

    def fork_conversation(
        self,
        user_id: str,
        conversation_id: str,
        message_id: str,
        *,
        title: str | None = None,
    ) -> Conversation:
        # The copies keep their ciphertext: its associated data names the user, the key
        # and the role, never a message id, so a copy opens like its original.
        return self.inner.fork_conversation(user_id, conversation_id, message_id, title=title)

    # -- messages -------------------------------------------------------------------------
    def append_message(self, user_id: str, conversation_id: str, message: NewMessage) -> Message:
        return self.append_messages(user_id, conversation_id, [message])[0]

    def append_messages(
        self, user_id: str, conversation_id: str, messages: Sequence[NewMessage]
    ) -> list[Message]:
        if not messages:
            return self.inner.append_messages(user_id, conversation_id, messages)
        if self.keys.known_keyless(user_id):
            # The hot path: no key lookup of its own. The append's transaction checks
            # for a key and refuses a message in clear if another process made one.
            try:
                return self.inner.append_messages(user_id, conversation_id, messages)
            except KeyRequired:
                self.keys.forget_keyless(user_id)
        sealer = self._sealer(user_id)
        if sealer is None:
            return self.inner.append_messages(user_id, conversation_id, messages)
        if len(messages) > limits.MAX_BATCH_MESSAGES:
            raise LimitExceeded(f"at most {limits.MAX_BATCH_MESSAGES} messages per call")
        sealed = [self._seal_message(sealer, message) for message in messages]
        stored = self.inner.append_messages(user_id, conversation_id, sealed)
        return [
            _with_parts(kept, tuple(given.parts) + kept.parts[1:])
            for kept, given in zip(stored, messages, strict=True)
        ]

    def _seal_message(self, sealer: _Sealer, message: NewMessage) -> NewMessage:
        checked = check_new_message(message)  # the plaintext: errors name real problems
        envelope = sealer.seal("message", checked.content.encode("utf-8"), message.role)
        part = Part(kind=ENCRYPTED_PART, data={"envelope": crypto.envelope_to_text(envelope)})
        size = len(canonical_json([part.to_dict()]))
        if size > limits.MAX_MESSAGE_BYTES:
            raise LimitExceeded(
                f"encrypted, the message is {size} bytes; the limit is {limits.MAX_MESSAGE_BYTES}",
                hint="encryption and base64 add about a third: split the message, "
                "or store large content as an attachment",
            )
        attachments = tuple(
            NewAttachment(
                name=a.name,
                data=sealer.seal("attachment", self._attachment_bytes(a)),
                mime_type=a.mime_type,
            )
            for a in message.attachments
        )
        return dataclasses.replace(message, parts=(part,), attachments=attachments)

    def _attachment_bytes(self, attachment: NewAttachment) -> bytes:
        """The plaintext of an attachment (read here: it is sealed before it is stored)."""
        room = limits.MAX_ATTACHMENT_BYTES - crypto.OVERHEAD
        if attachment.data is not None:
            data = attachment.data
        else:
            path = Path(str(attachment.path)).resolve()
            root = self._vault_root.resolve() if self._vault_root is not None else None
            if root is not None and (path == root or root in path.parents):
                # The vault's own files hold every user's data: never an attachment source.
                raise InvalidInput(f"cannot attach {attachment.path}: it is inside the vault")
            try:
                with path.open("rb") as handle:
                    data = handle.read(room + 1)
            except OSError as exc:
                raise InvalidInput(
                    f"cannot read attachment {attachment.path}: {exc.strerror}"
                ) from exc
        if len(data) > room:
            raise LimitExceeded(f"attachment {attachment.name!r} is larger than {room} bytes")
        return data

    def get_message(self, user_id: str, message_id: str) -> Message:
        return _Opener(self.keys, user_id).message(self.inner.get_message(user_id, message_id))

    def list_messages(
        self,
        user_id: str,
        conversation_id: str,
        *,
        leaf_id: str | None = None,
        all_branches: bool = False,
    ) -> list[Message]:
        found = self.inner.list_messages(
            user_id, conversation_id, leaf_id=leaf_id, all_branches=all_branches
        )
        opener = _Opener(self.keys, user_id)
        return [opener.message(message) for message in found]

    def list_branches(self, user_id: str, conversation_id: str) -> list[Branch]:
        return self.inner.list_branches(user_id, conversation_id)

    def get_attachment(self, user_id: str, attachment_id: str) -> Attachment:
        # Its sha256 and size stay those of the stored (sealed) blob: a hash of the
        # plaintext would let anyone confirm a guessed file.
        return self.inner.get_attachment(user_id, attachment_id)

    def read_attachment(self, user_id: str, attachment_id: str) -> bytes:
        data = self.inner.read_attachment(user_id, attachment_id)
        if not crypto.is_envelope(data):
            return data
        plaintext = _Opener(self.keys, user_id).open(
            "attachment", data, f"attachment {attachment_id}"
        )
        return data if plaintext is None else plaintext

    # -- settings (in clear) -------------------------------------------------------------
    def get_setting(self, user_id: str, key: str) -> Any:
        return self.inner.get_setting(user_id, key)

    def set_setting(self, user_id: str, key: str, value: Any) -> None:
        self.inner.set_setting(user_id, key, value)

    def delete_setting(self, user_id: str, key: str) -> None:
        self.inner.delete_setting(user_id, key)

    def list_settings(self, user_id: str, *, prefix: str | None = None) -> dict[str, Any]:
        return self.inner.list_settings(user_id, prefix=prefix)

    # -- API tokens ------------------------------------------------------------------------
    def add_token(self, user_id: str, *, name: str, token_sha256: str) -> ApiToken:
        return self.inner.add_token(user_id, name=name, token_sha256=token_sha256)

    def list_tokens(self, user_id: str) -> list[ApiToken]:
        return self.inner.list_tokens(user_id)

    def revoke_token(self, user_id: str, token_id: str) -> ApiToken:
        return self.inner.revoke_token(user_id, token_id)

    def token_owner(self, token_sha256: str) -> tuple[str, str] | None:
        return self.inner.token_owner(token_sha256)

    # -- imports ---------------------------------------------------------------------------
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
        refuse_import_if_encrypted(self.inner, user_id)
        return self.inner.write_import(
            user_id, parsed, source, file, dry_run=dry_run, progress=progress
        )

    def list_imports(self, user_id: str) -> list[ImportRecord]:
        return self.inner.list_imports(user_id)

    def get_import(self, user_id: str, import_id: str) -> ImportRecord:
        return self.inner.get_import(user_id, import_id)

    def delete_import(self, user_id: str, import_id: str) -> DeleteReport:
        return self.inner.delete_import(user_id, import_id)

    def find_import(self, user_id: str, file_sha256: str) -> ImportRecord | None:
        return self.inner.find_import(user_id, file_sha256)

    # -- search: only what is in clear is indexed, so these pass through --------------------
    def search(
        self,
        user_id: str,
        query: str,
        *,
        filters: SearchFilters | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> SearchPage:
        return self.inner.search(user_id, query, filters=filters, limit=limit, offset=offset)

    def messages_to_embed(self, embedder: str, *, limit: int) -> list[tuple[int, str, str]]:
        return self.inner.messages_to_embed(embedder, limit=limit)

    def count_messages_to_embed(self, embedder: str) -> int:
        return self.inner.count_messages_to_embed(embedder)

    def store_vectors(self, embedder: str, vectors: Sequence[tuple[int, int, str, bytes]]) -> None:
        self.inner.store_vectors(embedder, vectors)

    def vector_rows(
        self, user_id: str, embedder: str, filters: SearchFilters | None = None
    ) -> list[Any]:
        return self.inner.vector_rows(user_id, embedder, filters)

    def allowed_message_keys(
        self, user_id: str, pks: Sequence[int], filters: SearchFilters | None = None
    ) -> set[int]:
        return self.inner.allowed_message_keys(user_id, pks, filters)

    def vector_snapshot(self, user_id: str, embedder: str, known: tuple[int, int] | None) -> Any:
        return self.inner.vector_snapshot(user_id, embedder, known)

    def vector_details(self, user_id: str, pks: Sequence[int]) -> list[Any]:
        return self.inner.vector_details(user_id, pks)

    def rebuild_search_index(self) -> int:
        return self.inner.rebuild_search_index()

    def merge_tables(
        self,
        tables: Iterable[tuple[str, Iterable[dict[str, Any]]]],
        *,
        progress: Callable[[str, int], None] | None = None,
    ) -> dict[str, int]:
        # Rows travel as stored: sealed content stays sealed, with its wrapped key.
        return self.inner.merge_tables(tables, progress=progress)

    # -- snapshots, usage, recordings, drafts, retention ---------------------------------------
    def save_snapshot(
        self,
        user_id: str,
        name: str,
        state: Any,
        *,
        starred: bool = False,
        runtime_id: str | None = None,
        conversation_id: str | None = None,
    ) -> Snapshot:
        def save(sealer: _Sealer | None) -> Snapshot:
            stored = (
                state if sealer is None else sealer.seal_value("snapshot", "snapshot state", state)
            )
            return self.inner.save_snapshot(
                user_id,
                name,
                stored,
                starred=starred,
                runtime_id=runtime_id,
                conversation_id=conversation_id,
            )

        return dataclasses.replace(self._sealed_write(user_id, save), state=state)

    def list_snapshots(self, user_id: str) -> list[Snapshot]:
        opener = _Opener(self.keys, user_id)
        return [opener.snapshot(s) for s in self.inner.list_snapshots(user_id)]

    def get_snapshot(self, user_id: str, snapshot_id: str) -> Snapshot:
        return _Opener(self.keys, user_id).snapshot(self.inner.get_snapshot(user_id, snapshot_id))

    def star_snapshot(self, user_id: str, snapshot_id: str, starred: bool) -> Snapshot:
        starred_one = self.inner.star_snapshot(user_id, snapshot_id, starred)
        return _Opener(self.keys, user_id).snapshot(starred_one)

    def delete_snapshot(self, user_id: str, snapshot_id: str) -> None:
        self.inner.delete_snapshot(user_id, snapshot_id)

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
    ) -> str:
        return self.inner.record_usage(
            user_id,
            model=model,
            runtime_id=runtime_id,
            conversation_id=conversation_id,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            cost=cost,
            duration_ms=duration_ms,
            at=at,
        )

    def usage_totals(
        self, user_id: str, *, since: datetime | None = None, until: datetime | None = None
    ) -> list[UsageTotal]:
        return self.inner.usage_totals(user_id, since=since, until=until)

    def record_event(
        self,
        user_id: str,
        conversation_id: str,
        kind: str,
        data: Any = None,
        *,
        at: datetime | None = None,
    ) -> int:
        def record(sealer: _Sealer | None) -> int:
            stored = (
                data
                if sealer is None
                else sealer.seal_value("event", "event data", data, conversation_id, kind)
            )
            return self.inner.record_event(user_id, conversation_id, kind, stored, at=at)

        return self._sealed_write(user_id, record)

    def replay(self, user_id: str, conversation_id: str) -> list[RecordedEvent]:
        opener = _Opener(self.keys, user_id)
        return [
            dataclasses.replace(
                event,
                data=opener.value(
                    "event", event.data, f"event {event.seq}", conversation_id, event.kind
                ),
            )
            for event in self.inner.replay(user_id, conversation_id)
        ]

    def put_draft(self, user_id: str, conversation_id: str, text: str) -> Draft:
        if not isinstance(text, str) or not text:  # a removal, or the store's own error
            return self.inner.put_draft(user_id, conversation_id, text)

        def put(sealer: _Sealer | None) -> Draft:
            if sealer is None:
                return self.inner.put_draft(user_id, conversation_id, text)
            if "\x00" in text:
                raise InvalidInput("a draft is text without NUL characters")
            try:
                plaintext = text.encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidInput("the draft is not valid Unicode") from None
            envelope = sealer.seal("draft", plaintext, conversation_id)
            sealed = SEALED_DRAFT_PREFIX + crypto.envelope_to_text(envelope)
            return self.inner.put_draft(user_id, conversation_id, sealed)

        return dataclasses.replace(self._sealed_write(user_id, put), text=text)

    def get_draft(self, user_id: str, conversation_id: str) -> Draft | None:
        draft = self.inner.get_draft(user_id, conversation_id)
        envelope = None if draft is None else _sealed_draft(draft.text)
        if draft is None or envelope is None:
            return draft
        what = f"the draft of conversation {conversation_id}"
        plaintext = _Opener(self.keys, user_id).open("draft", envelope, what, conversation_id)
        return draft if plaintext is None else dataclasses.replace(draft, text=plaintext.decode())

    def expired(
        self,
        user_id: str,
        *,
        trashed_before: datetime,
        snapshots_before: datetime,
        usage_before: datetime,
    ) -> dict[str, list[str]]:
        return self.inner.expired(
            user_id,
            trashed_before=trashed_before,
            snapshots_before=snapshots_before,
            usage_before=usage_before,
        )

    def purge(
        self, user_id: str, *, snapshots: Sequence[str], usage_events: Sequence[str]
    ) -> tuple[int, int]:
        return self.inner.purge(user_id, snapshots=snapshots, usage_events=usage_events)

    # -- encryption keys -------------------------------------------------------------------
    def get_user_key(self, user_id: str) -> UserKey | None:
        return self.inner.get_user_key(user_id)

    def add_user_key(self, user_id: str, key: UserKey) -> None:
        self.inner.add_user_key(user_id, key)

    def rewrap_user_key(self, user_id: str, key: UserKey) -> None:
        self.inner.rewrap_user_key(user_id, key)

    def destroy_user_key(self, user_id: str) -> UserKey:
        destroyed = self.inner.destroy_user_key(user_id)
        self.keys.lock(user_id)
        return destroyed

    # -- deleting an account ----------------------------------------------------------------
    def delete_user(self, user_id: str) -> dict[str, int]:
        removed = self.inner.delete_user(user_id)
        self.keys.lock(user_id)
        return removed

    def compact(self) -> None:
        self.inner.compact()

    # -- whole-vault copies (rows as stored: sealed content and wrapped keys travel) --------
    def dump_snapshot(self) -> Iterator[tuple[str, Iterator[dict[str, Any]]]]:
        return self.inner.dump_snapshot()

    def schema_version(self) -> list[str]:
        return self.inner.schema_version()

    def dump_table(self, name: str) -> Iterator[dict[str, Any]]:
        return self.inner.dump_table(name)

    def load_tables(
        self,
        tables: Iterable[tuple[str, Iterable[dict[str, Any]]]],
        *,
        progress: Callable[[str, int], None] | None = None,
    ) -> dict[str, int]:
        return self.inner.load_tables(tables, progress=progress)

    # -- integrity ----------------------------------------------------------------------------
    def sweep_unused_blobs(self) -> int:
        return self.inner.sweep_unused_blobs()

    def check(self) -> list[Problem]:
        return self.inner.check()

    def close(self) -> None:
        self.inner.close()


def _with_parts(message: Message, parts: tuple[Part, ...]) -> Message:
    return dataclasses.replace(message, parts=parts, content_sha256=content_hash(parts))


def refuse_import_if_encrypted(store: Store, user_id: str) -> None:
    """Platform imports into an encrypted user are refused: an import keeps the original
    export in the vault and its text in the search index, both in clear."""
    if store.get_user_key(user_id) is not None:
        raise Conflict(
            f"user {user_id} is encrypted: exports of ChatGPT, Claude, Gemini or VVAULT "
            "cannot be imported into an encrypted user",
            hint="an import keeps the original export and indexes its text, in clear; "
            "import into a user without a key (see the guide, 'Encryption at rest')",
        )
