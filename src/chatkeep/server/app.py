"""The ASGI app: middleware, error mapping, and the routers of the API and the UI."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Final

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chatkeep import __version__, limits
from chatkeep.errors import ChatkeepError, LimitExceeded
from chatkeep.server.jobs import ImportJobs
from chatkeep.server.llm import LlmConfig
from chatkeep.vault import Vault

log = logging.getLogger("chatkeep.server")

#: No inline script or style anywhere; everything the page runs comes from /static.
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
_SECURITY_HEADERS: Final = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
#: Routes that take a streamed upload instead of a JSON body.
UPLOAD_PATHS: Final = frozenset({"/api/imports"})


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """How ``chatkeep serve`` runs the app.

    ``login_code`` (printed by ``serve``) lets a browser log in as ``login_user`` without
    pasting a token; it lives only as long as the process. ``secure_cookies`` is for a
    server behind HTTPS.
    """

    login_code: str | None = None
    login_user: str | None = None
    llm: LlmConfig | None = None
    secure_cookies: bool = False


def create_app(vault: Vault, config: ServerConfig | None = None) -> FastAPI:
    """The API and the UI for ``vault``. The caller keeps ownership of the vault."""
    from chatkeep.server import api, ui

    app = FastAPI(
        title="chatkeep",
        version=__version__,
        description="A local-first store for AI conversations. Every route acts for the "
        "user of the bearer token, and only for that user.",
        docs_url=None,  # the bundled Swagger page loads from a CDN: not here
        redoc_url=None,
    )
    app.state.vault = vault
    app.state.config = config or ServerConfig()
    app.state.jobs = ImportJobs(vault)
    app.state.replies = set()  # reply tasks still storing (kept from the GC)
    _add_error_handlers(app)
    app.include_router(api.router)
    app.include_router(ui.router)
    app.add_middleware(BodyLimit)
    app.add_middleware(SecurityHeaders)
    app.router.on_shutdown.append(app.state.jobs.shutdown)
    return app


def error_response(error: ChatkeepError) -> JSONResponse:
    """The JSON body of every error: ``{"error": {"code", "message", "hint"?}}``."""
    return JSONResponse({"error": error.to_dict()}, status_code=error.http_status)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ChatkeepError)
    async def chatkeep_error(_request: Request, error: ChatkeepError) -> JSONResponse:
        return error_response(error)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, error: RequestValidationError) -> JSONResponse:
        details = [
            {"where": ".".join(str(p) for p in item.get("loc", ())), "problem": item.get("msg")}
            for item in error.errors()
        ]
        body = {
            "error": {"code": "invalid_input", "message": "invalid request", "details": details}
        }
        return JSONResponse(orjson.loads(orjson.dumps(body, default=str)), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        return JSONResponse(
            {"error": {"code": code, "message": str(error.detail)}}, status_code=error.status_code
        )

    @app.exception_handler(Exception)
    async def internal_error(_request: Request, error: Exception) -> JSONResponse:
        log.exception("internal error", exc_info=error)
        return JSONResponse(
            {"error": {"code": "internal", "message": "internal error; see the server log"}},
            status_code=500,
        )


class BodyLimit:
    """413 for a request body over its limit: at once by Content-Length, or as soon as
    the streamed bytes pass it (a chunked upload declares no length)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = (
            limits.MAX_UPLOAD_BYTES if scope["path"] in UPLOAD_PATHS else limits.MAX_REQUEST_BYTES
        )
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await error_response(_too_large(limit))(scope, receive, send)
            return
        seen = 0
        exceeded = False
        responded = False

        async def counted() -> Message:
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    exceeded = True
                    raise _too_large(limit)
            return message

        async def unless_exceeded(message: Message) -> None:
            # FastAPI turns any error while it parses a JSON body into a 400: once the
            # limit is passed, whatever the app answers is replaced by the 413.
            nonlocal responded
            if not exceeded:
                responded = True
                await send(message)

        try:
            await self.app(scope, counted, unless_exceeded)
        except LimitExceeded:
            if not exceeded:
                raise
        if exceeded and not responded:
            await error_response(_too_large(limit))(scope, receive, send)


def _too_large(limit: int) -> LimitExceeded:
    return LimitExceeded(f"the request body is larger than the limit of {limit:,} bytes")


class SecurityHeaders:
    """CSP, nosniff and friends on every response; API responses are never cached."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_api = scope["path"].startswith("/api/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[Any] = list(message.get("headers", []))
                headers.extend(_SECURITY_HEADERS)
                if is_api:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)
