"""Bearer tokens of the HTTP API: minted, hashed and checked here, and nowhere else.

A token's secret is ``ck_`` followed by 43 URL-safe characters (256 random bits). Only
its sha256 is stored: a copy of the vault gives no one a way in. A plain hash (not a slow
password hash) is right here because the secret is random, not chosen by a person;
there is nothing to guess.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Final

from chatkeep.errors import Unauthorized
from chatkeep.model import ApiToken
from chatkeep.store import Store

TOKEN_PREFIX: Final = "ck_"  # noqa: S105 (a prefix, not a secret)
_SECRET_BYTES: Final = 32
_MAX_SECRET_LENGTH: Final = 128


def token_sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def issue_token(store: Store, user_id: str, *, name: str) -> tuple[ApiToken, str]:
    """A new token for ``user_id``: its record, and its secret (shown once, never kept)."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(_SECRET_BYTES)
    return store.add_token(user_id, name=name, token_sha256=token_sha256(secret)), secret


def authenticate(store: Store, secret: str | None) -> tuple[str, str]:
    """(user id, token id) for a live token's secret; :class:`Unauthorized` otherwise."""
    if not secret:
        raise Unauthorized(
            "this needs a bearer token",
            hint="create one with 'chatkeep token create' and send 'Authorization: Bearer …'",
        )
    if len(secret) > _MAX_SECRET_LENGTH or not secret.startswith(TOKEN_PREFIX):
        raise Unauthorized("that is not a chatkeep token")
    owner = store.token_owner(token_sha256(secret))
    if owner is None:
        raise Unauthorized("the token is unknown or revoked")
    return owner
