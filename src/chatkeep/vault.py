"""A vault: one root directory holding a store, opened and closed as a unit."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from chatkeep import fsutil, location
from chatkeep.backends import BACKENDS, open_files_store, open_postgres_store, open_sqlite_store
from chatkeep.crypto import ScryptParams
from chatkeep.encryption import EncryptedStore, KeyManager, KeyStatus, Secret, secret_of
from chatkeep.errors import InvalidInput, VaultError
from chatkeep.limits import STALE_TEMP_SECONDS
from chatkeep.model import Problem
from chatkeep.store import Store


@dataclass(frozen=True, slots=True)
class RepairReport:
    """What :meth:`Vault.repair` removed."""

    temp_files: int
    blobs: int


class Vault:
    """An open vault. Use it as a context manager, or call :meth:`close`.

    ``vault.store`` is the :class:`~chatkeep.store.Store` holding every user's data;
    each of its methods takes the user it acts for.

    >>> import chatkeep
    >>> with chatkeep.open(home="/path/to/home", create=True) as vault:  # doctest: +SKIP
    ...     vault.store.add_user("alice")
    """

    def __init__(self, root: Path, store: Store) -> None:
        self.root = root
        self.paths = location.VaultPaths(root)
        #: Users' keys; unlocked data keys live here, in this process's memory only.
        self.keys = KeyManager(store)
        # Every caller goes through the encryption layer: an encrypted user's content is
        # sealed before the backend sees it, whichever backend it is.
        self.store: Store = EncryptedStore(store, self.keys, vault_root=root)

    # -- encryption at rest (see chatkeep.encryption and docs/guide.md) ---------------
    def init_key(
        self,
        user_id: str,
        *,
        passphrase: str | None = None,
        key_file: str | os.PathLike[str] | None = None,
        key: bytes | None = None,
        kdf: ScryptParams | None = None,
    ) -> KeyStatus:
        """Turn encryption on for ``user_id``: a new data key, wrapped by a passphrase
        (scrypt, ``kdf`` or the default cost) or a key file's 32 bytes (``key_file`` to
        read, or ``key``). Refused while the user holds content in clear."""
        secret = _secret(passphrase, key_file, key)
        return self.keys.init(user_id, secret, kdf=kdf)

    def unlock(
        self,
        user_id: str,
        *,
        passphrase: str | None = None,
        key_file: str | os.PathLike[str] | None = None,
        key: bytes | None = None,
    ) -> KeyStatus:
        """Open the user's key and keep it in this process's memory (never on disk)."""
        return self.keys.unlock(user_id, _secret(passphrase, key_file, key))

    def lock(self, user_id: str) -> None:
        """Forget the user's unlocked key in this process."""
        self.keys.lock(user_id)

    def change_key(
        self, user_id: str, old: Secret, new: Secret, *, kdf: ScryptParams | None = None
    ) -> KeyStatus:
        """Wrap the user's key under a new secret (see :func:`chatkeep.encryption.secret_of`)."""
        return self.keys.change(user_id, old, new, kdf=kdf)

    def destroy_key(self, user_id: str, *, compact: bool = True) -> KeyStatus:
        """Crypto-shred the user's content: their key is destroyed, then (by default)
        the store compacted so no old copy of the wrapped key stays in its files."""
        status = self.keys.destroy(user_id)
        if compact:
            self.store.compact()
        return status

    def key_status(self, user_id: str) -> KeyStatus:
        return self.keys.status(user_id)

    def repair(self) -> RepairReport:
        """Clear what a killed writer can leave behind: unfinished temp files (older
        than :data:`~chatkeep.limits.STALE_TEMP_SECONDS`) and blobs nothing uses."""
        temp_files = fsutil.remove_stale_temp(self.root, older_than=STALE_TEMP_SECONDS)
        return RepairReport(temp_files=temp_files, blobs=self.store.sweep_unused_blobs())

    def doctor(self) -> list[Problem]:
        """Everything wrong with the vault: the store's checks plus leftover temp files."""
        problems = self.store.check()
        for stale in fsutil.stale_temp_files(self.root):
            problems.append(
                Problem(
                    "files",
                    f"unfinished write left behind: {stale.relative_to(self.root)}",
                    severity="warning",
                )
            )
        return problems

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Vault:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<chatkeep.Vault {str(self.root)!r}>"


def _secret(
    passphrase: str | None, key_file: str | os.PathLike[str] | None, key: bytes | None
) -> Secret:
    path = None if key_file is None else os.fspath(key_file)
    return secret_of(passphrase=passphrase, key_file=path, key=key)


def open_vault(
    home: str | os.PathLike[str] | None = None,
    *,
    env: str | None = None,
    create: bool = False,
    allow_in_git: bool = False,
    url: str | None = None,
    backend: str | None = None,
) -> Vault:
    """Open the vault for ``home``/``env`` (see :mod:`chatkeep.location`).

    The data is in SQLite inside the vault (``sqlite``, the default), in plain files
    with a derived SQLite index (``files``), or in the PostgreSQL database at ``url``
    (default: ``CHATKEEP_DATABASE_URL``). ``backend`` (default: ``CHATKEEP_BACKEND``)
    chooses for a new vault; a vault remembers its backend and refuses another.
    With ``create=True`` a missing vault is initialised first (refused inside a git work
    tree unless ``allow_in_git``). A vault written by a newer chatkeep is refused.
    """
    root = location.resolve_root(home, env)
    database_url = (url if url is not None else os.environ.get("CHATKEEP_DATABASE_URL")) or None
    chosen = backend or os.environ.get("CHATKEEP_BACKEND") or None
    if chosen is not None and chosen not in BACKENDS:
        raise InvalidInput(f"unknown backend {chosen!r}", hint=f"use one of: {', '.join(BACKENDS)}")
    wanted = "postgresql" if database_url else chosen
    if create:
        location.initialise(root, allow_in_git=allow_in_git, backend=wanted or "sqlite")
    kept = location.read_vault_file(root).get("backend", "sqlite")
    paths = location.VaultPaths(root)
    # The environment's CHATKEEP_BACKEND only chooses for new vaults; an explicit
    # backend or a database URL must match the vault.
    if (database_url is not None) != (kept == "postgresql") or (
        backend is not None and not database_url and backend != kept
    ):
        raise VaultError(
            f"the vault at {root} keeps its data in {kept}, not {wanted or 'sqlite'}",
            hint=(
                "set CHATKEEP_DATABASE_URL to its PostgreSQL database"
                if kept == "postgresql"
                else "unset CHATKEEP_DATABASE_URL (copy between backends with chatkeep migrate)"
            ),
        )
    if kept == "postgresql":
        assert database_url is not None
        return Vault(root, open_postgres_store(paths, database_url))
    if kept == "files":
        return Vault(root, open_files_store(paths))
    return Vault(root, open_sqlite_store(paths))
