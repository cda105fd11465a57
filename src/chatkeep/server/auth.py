"""Who is calling: a bearer token, or a browser session cookie guarded against CSRF.

* API clients send ``Authorization: Bearer ck_…``.
* The web UI logs in once (``POST /api/session`` with a token, or with the login code
  ``chatkeep serve`` prints) and receives a **session token of its own**, stored hashed
  like any other, in an ``HttpOnly; SameSite=Strict`` cookie. So a session survives a
  server restart, shows in ``chatkeep token ls`` and can be revoked.
* A request authenticated by cookie that changes anything must also carry the
  ``X-CSRF-Token`` header equal to the ``chatkeep_csrf`` cookie (double submit): another
  site can make the browser send the cookie, but can neither read it nor set the header.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Final

from fastapi import Request, Response

from chatkeep import tokens
from chatkeep.errors import Unauthorized
from chatkeep.vault import Vault

SESSION_COOKIE: Final = "chatkeep_session"
CSRF_COOKIE: Final = "chatkeep_csrf"
CSRF_HEADER: Final = "x-csrf-token"
SESSION_TOKEN_NAME: Final = "browser session"  # noqa: S105 (a label, not a secret)
_SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
#: A browser session lasts this long without a new login (seconds); revocable any time.
SESSION_MAX_AGE: Final = 90 * 24 * 3600


@dataclass(frozen=True, slots=True)
class Caller:
    """The user a request acts for, and the token that proved it."""

    user_id: str
    token_id: str
    by_cookie: bool


def vault_of(request: Request) -> Vault:
    vault: Vault = request.app.state.vault
    return vault


def caller(request: Request) -> Caller:
    """FastAPI dependency: the authenticated caller, or :class:`Unauthorized`."""
    header = request.headers.get("authorization", "")
    store = vault_of(request).store
    if header:
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer":
            raise Unauthorized("use 'Authorization: Bearer <token>'")
        user_id, token_id = tokens.authenticate(store, secret.strip())
        return Caller(user_id, token_id, by_cookie=False)
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        raise Unauthorized(
            "not logged in",
            hint="send 'Authorization: Bearer <token>' (see 'chatkeep token create')",
        )
    if request.method not in _SAFE_METHODS:
        _check_csrf(request)
    user_id, token_id = tokens.authenticate(store, cookie)
    return Caller(user_id, token_id, by_cookie=True)


def _check_csrf(request: Request) -> None:
    expected = request.cookies.get(CSRF_COOKIE, "")
    given = request.headers.get(CSRF_HEADER, "")
    if not expected or not hmac.compare_digest(expected.encode(), given.encode()):
        raise Unauthorized(
            "missing or wrong CSRF token",
            hint="send the chatkeep_csrf cookie's value in the X-CSRF-Token header",
        )


def start_session(response: Response, secret: str, *, secure: bool) -> str:
    """Set the session and CSRF cookies on ``response``; return the CSRF value."""
    csrf = secrets.token_urlsafe(24)
    common = {"max_age": SESSION_MAX_AGE, "samesite": "strict", "secure": secure, "path": "/"}
    response.set_cookie(SESSION_COOKIE, secret, httponly=True, **common)  # type: ignore[arg-type]
    response.set_cookie(CSRF_COOKIE, csrf, httponly=False, **common)  # type: ignore[arg-type]
    return csrf


def end_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
