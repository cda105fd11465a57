"""Every error chatkeep raises on purpose, under one root.

The tree::

    ChatkeepError                      code             exit  http
    ├── InvalidInput                   invalid_input       3   400
    │   ├── InvalidId                  invalid_id          3   400
    │   ├── ImportFormatError          import_format       3   400
    │   ├── UnsafeArchive              unsafe_archive      3   400
    │   └── LimitExceeded              limit_exceeded      6   413
    │       └── ArchiveLimitExceeded   archive_limit       6   413
    ├── NotFound                       not_found           4   404
    ├── Conflict                       conflict            5   409
    │   └── KeyRequired                key_required        5   409
    ├── Unauthorized                   unauthorized       10   401
    ├── UpstreamError                  upstream_failed    11   502
    ├── Locked                         locked             12   423
    │   ├── WrongKey                   wrong_key          12   403
    │   └── KeyDestroyed               key_destroyed      12   410
    ├── VaultError                     vault_error         8   500
    │   ├── VaultNotInitialised        vault_missing       8   500
    │   ├── VaultTooNew                vault_too_new       8   500
    │   └── UnsafeLocation             unsafe_location     8   400
    ├── StorageError                   storage_error       7   503
    │   ├── StoreBusy                  store_busy          7   503
    │   └── StorageFull                storage_full        7   507
    └── MigrationError                 migration_failed    8   500

Each class carries a stable ``code`` (part of the public contract: scripts and the
HTTP API match on it), the CLI exit status and the HTTP status. The CLI and the API
read these attributes; there is no second mapping table anywhere.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "ArchiveLimitExceeded",
    "ChatkeepError",
    "Conflict",
    "ImportFormatError",
    "InvalidId",
    "InvalidInput",
    "KeyDestroyed",
    "LimitExceeded",
    "Locked",
    "MigrationError",
    "NotFound",
    "StorageError",
    "StorageFull",
    "StoreBusy",
    "Unauthorized",
    "UnsafeArchive",
    "UnsafeLocation",
    "UpstreamError",
    "VaultError",
    "VaultNotInitialised",
    "VaultTooNew",
    "WrongKey",
]


class ChatkeepError(Exception):
    """Root of every error chatkeep raises on purpose.

    ``message`` says what was wrong, ``hint`` what to do about it.
    """

    code: ClassVar[str] = "error"
    exit_code: ClassVar[int] = 1
    http_status: ClassVar[int] = 500

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def to_dict(self) -> dict[str, str]:
        """The JSON shape of an error, shared by ``--json`` and the HTTP API."""
        shape = {"code": self.code, "message": self.message}
        if self.hint:
            shape["hint"] = self.hint
        return shape


class InvalidInput(ChatkeepError):
    """The caller passed something that cannot be stored as given."""

    code = "invalid_input"
    exit_code = 3
    http_status = 400


class InvalidId(InvalidInput):
    """An id or name is malformed (bad characters, path separators, too long)."""

    code = "invalid_id"


class LimitExceeded(InvalidInput):
    """Something is larger than a limit declared in :mod:`chatkeep.limits`."""

    code = "limit_exceeded"
    exit_code = 6
    http_status = 413


class ImportFormatError(InvalidInput):
    """An export is not of a known format, or is malformed (truncated JSON, wrong types)."""

    code = "import_format"


class UnsafeArchive(InvalidInput):
    """An archive member could escape or mislead (``..``, absolute path, symlink, bad name)."""

    code = "unsafe_archive"


class ArchiveLimitExceeded(LimitExceeded):
    """An archive is too large, too compressed (a zip bomb) or has too many members."""

    code = "archive_limit"


class NotFound(ChatkeepError):
    """No such object for this user (another user's objects are reported the same way)."""

    code = "not_found"
    exit_code = 4
    http_status = 404


class Conflict(ChatkeepError):
    """The operation contradicts the current state (a duplicate, a protected object)."""

    code = "conflict"
    exit_code = 5
    http_status = 409


class Unauthorized(ChatkeepError):
    """No credentials, or a token that is unknown or revoked."""

    code = "unauthorized"
    exit_code = 10
    http_status = 401


class UpstreamError(ChatkeepError):
    """A service chatkeep calls (an OpenAI-compatible endpoint) failed or is not set up."""

    code = "upstream_failed"
    exit_code = 11
    http_status = 502


class KeyRequired(Conflict):
    """A message, draft, snapshot state or event data in clear for a user whose content
    is encrypted (their key was made after this process last looked): the encryption
    layer seals it and tries again."""

    code = "key_required"


class Locked(ChatkeepError):
    """The user's content is encrypted and no key of theirs is unlocked in this process."""

    code = "locked"
    exit_code = 12
    http_status = 423


class WrongKey(Locked):
    """The passphrase or key file does not open the user's key, or content was sealed
    under a key that is not the user's current one."""

    code = "wrong_key"
    http_status = 403


class KeyDestroyed(Locked):
    """The user's key was destroyed (crypto-shredded): what it sealed is gone for good."""

    code = "key_destroyed"
    http_status = 410


class VaultError(ChatkeepError):
    """The vault itself cannot be used."""

    code = "vault_error"
    exit_code = 8


class VaultNotInitialised(VaultError):
    """There is no vault at the resolved location."""

    code = "vault_missing"


class VaultTooNew(VaultError):
    """The vault was written by a newer chatkeep than this one."""

    code = "vault_too_new"


class UnsafeLocation(VaultError):
    """The vault location is unsafe (inside a git work tree, not a directory, ...)."""

    code = "unsafe_location"
    http_status = 400


class StorageError(ChatkeepError):
    """The storage underneath failed; nothing was acknowledged."""

    code = "storage_error"
    exit_code = 7
    http_status = 503


class StoreBusy(StorageError):
    """Another writer held the store for longer than the busy timeout."""

    code = "store_busy"


class StorageFull(StorageError):
    """The disk or the database is full; the write was rolled back."""

    code = "storage_full"
    http_status = 507


class MigrationError(ChatkeepError):
    """A schema migration failed and was rolled back."""

    code = "migration_failed"
    exit_code = 8
