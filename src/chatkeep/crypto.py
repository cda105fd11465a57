"""The only module that does cryptography: data keys, their wrapping, and sealing.

Everything here comes from the ``cryptography`` library (AES-256-GCM, scrypt); nothing
is home-made. The pieces:

* A user's **data key** (DEK) is 32 random bytes. Content is sealed under it.
* The DEK is kept only **wrapped** (AES-GCM) under a key-encryption key (KEK): either
  scrypt(passphrase, salt) with the parameters stored beside the wrapped key, or the 32
  random bytes of a key file the user keeps. Losing both the passphrase and the key file
  loses the data; that is the point.
* A **sealed envelope** is ``MAGIC | key id (16) | nonce (12) | ciphertext | tag (16)``.
  The key id says which DEK sealed it (so "wrong key" and "destroyed key" are clear
  errors, not a failed tag), and the associated data binds the ciphertext to its place:
  the user, the key, what it is (a message, an attachment, ...) and details of that
  place. Moving a ciphertext elsewhere, or altering a byte of it, fails to open.
"""

from __future__ import annotations

import base64
import os
import secrets
import unicodedata
from dataclasses import dataclass
from typing import Any, Final

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from chatkeep.errors import InvalidInput, StorageError, WrongKey

#: Size of every key here (AES-256): data keys, key-encryption keys, key files.
KEY_BYTES: Final = 32
#: Size of a key id (shown as 32 hex digits).
KEY_ID_BYTES: Final = 16
#: AES-GCM nonce and tag sizes.
NONCE_BYTES: Final = 12
TAG_BYTES: Final = 16
#: Size of a scrypt salt.
SALT_BYTES: Final = 16
#: First bytes of a sealed envelope, and its format version ("1").
MAGIC: Final = b"CKE1"
#: How many bytes sealing adds to what it seals.
OVERHEAD: Final = len(MAGIC) + KEY_ID_BYTES + NONCE_BYTES + TAG_BYTES
#: Version tag in every associated data, so a later format can never open as this one.
_AAD_VERSION: Final = "chatkeep-seal-v1"
_WRAP_VERSION: Final = "chatkeep-wrap-v1"


@dataclass(frozen=True, slots=True)
class ScryptParams:
    """scrypt's cost parameters. The default (n=2**17, r=8, p=1: 128 MiB, about half a
    second) follows current OWASP advice; tests pass cheaper ones explicitly."""

    n: int = 2**17
    r: int = 8
    p: int = 1

    def __post_init__(self) -> None:
        # Bounded both ways: a stored row asking for absurd costs must not hang or
        # exhaust the process, and too little work would make guessing cheap.
        power_of_two = self.n > 1 and self.n & (self.n - 1) == 0
        if not (power_of_two and 2**10 <= self.n <= 2**22):
            raise InvalidInput(f"scrypt n must be a power of two from 2**10 to 2**22, not {self.n}")
        if not (1 <= self.r <= 32 and 1 <= self.p <= 16):
            raise InvalidInput(f"scrypt r and p are out of range (r={self.r}, p={self.p})")

    def to_dict(self) -> dict[str, Any]:
        return {"name": "scrypt", "n": self.n, "r": self.r, "p": self.p}

    @classmethod
    def from_dict(cls, shape: dict[str, Any]) -> ScryptParams:
        if shape.get("name") != "scrypt":
            raise InvalidInput(f"unknown key derivation {shape.get('name')!r}")
        try:
            return cls(n=int(shape["n"]), r=int(shape["r"]), p=int(shape["p"]))
        except (KeyError, TypeError, ValueError):
            raise InvalidInput("the stored scrypt parameters are malformed") from None


# -- keys ------------------------------------------------------------------------------
def new_data_key() -> bytes:
    """A fresh random data key."""
    return secrets.token_bytes(KEY_BYTES)


def new_key_id() -> str:
    """A fresh random key id, as hex."""
    return secrets.token_hex(KEY_ID_BYTES)


def new_salt() -> bytes:
    return secrets.token_bytes(SALT_BYTES)


def new_key_file_secret() -> bytes:
    """The contents of a new key file: 32 random bytes."""
    return secrets.token_bytes(KEY_BYTES)


def check_key_file_secret(secret: bytes) -> bytes:
    if not isinstance(secret, bytes) or len(secret) != KEY_BYTES:
        raise WrongKey(
            f"a key file holds exactly {KEY_BYTES} bytes",
            hint="use the file 'chatkeep key init --key-file' created, unchanged",
        )
    return secret


def derive_from_passphrase(passphrase: str, salt: bytes, params: ScryptParams) -> bytes:
    """The key-encryption key scrypt derives from a passphrase.

    The passphrase is NFC-normalised first, so the same words typed on another system
    (composed or decomposed accents) open the same key.
    """
    if not isinstance(passphrase, str) or not passphrase:
        raise InvalidInput("the passphrase must not be empty")
    normalised = unicodedata.normalize("NFC", passphrase).encode("utf-8")
    kdf = Scrypt(salt=salt, length=KEY_BYTES, n=params.n, r=params.r, p=params.p)
    return kdf.derive(normalised)


def _wrap_aad(user_id: str, key_id: str) -> bytes:
    return orjson.dumps([_WRAP_VERSION, user_id, key_id])


def wrap_key(kek: bytes, dek: bytes, *, user_id: str, key_id: str) -> bytes:
    """The data key sealed under a key-encryption key: nonce | ciphertext | tag."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(kek).encrypt(nonce, dek, _wrap_aad(user_id, key_id))


def unwrap_key(kek: bytes, wrapped: bytes, *, user_id: str, key_id: str) -> bytes:
    """The data key, or :class:`WrongKey` when ``kek`` is not the one that wrapped it."""
    nonce, sealed = wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:]
    try:
        dek = AESGCM(kek).decrypt(nonce, sealed, _wrap_aad(user_id, key_id))
    except (InvalidTag, ValueError):
        raise WrongKey(
            f"the passphrase or key file does not open the key of user {user_id}"
        ) from None
    if len(dek) != KEY_BYTES:
        raise WrongKey(f"the stored key of user {user_id} is malformed")
    return dek


# -- sealing -----------------------------------------------------------------------------
def place(purpose: str, user_id: str, key_id: str, *details: str) -> bytes:
    """Associated data naming where a ciphertext belongs (JSON: no ambiguity between
    fields, whatever characters they hold)."""
    return orjson.dumps([_AAD_VERSION, purpose, user_id, key_id, *details])


def seal(dek: bytes, key_id: str, plaintext: bytes, aad: bytes) -> bytes:
    """An envelope holding ``plaintext`` sealed under ``dek``, bound to ``aad``."""
    nonce = os.urandom(NONCE_BYTES)
    return MAGIC + bytes.fromhex(key_id) + nonce + AESGCM(dek).encrypt(nonce, plaintext, aad)


def is_envelope(data: bytes) -> bool:
    return len(data) >= OVERHEAD and data.startswith(MAGIC)


def envelope_key_id(envelope: bytes) -> str:
    """The id of the key that sealed ``envelope``."""
    return envelope[len(MAGIC) : len(MAGIC) + KEY_ID_BYTES].hex()


def open_envelope(dek: bytes, envelope: bytes, aad: bytes, *, what: str) -> bytes:
    """The plaintext of an envelope; :class:`StorageError` if it does not authenticate
    (a byte changed, or it was moved from another place)."""
    if not is_envelope(envelope):
        raise StorageError(f"{what} is not a chatkeep envelope")
    start = len(MAGIC) + KEY_ID_BYTES
    nonce, sealed = envelope[start : start + NONCE_BYTES], envelope[start + NONCE_BYTES :]
    try:
        return AESGCM(dek).decrypt(nonce, sealed, aad)
    except InvalidTag:
        raise StorageError(
            f"{what} failed its integrity check: it was altered, or moved from another place",
            hint="restore it from a backup; run 'chatkeep doctor'",
        ) from None


def envelope_to_text(envelope: bytes) -> str:
    """An envelope as text for JSON columns (standard base64)."""
    return base64.b64encode(envelope).decode("ascii")


def envelope_from_text(text: str) -> bytes | None:
    """The envelope held in ``text``, or None when it is not one."""
    try:
        data = base64.b64decode(text, validate=True)
    except (ValueError, TypeError):
        return None
    return data if is_envelope(data) else None
