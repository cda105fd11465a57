"""The JSON API under ``/api``. Each route: check the caller, call the library, shape.

Every route that touches data depends on :func:`~chatkeep.server.auth.caller` and passes
its user to the store, which answers another user's ids exactly as missing ones (404).
Shapes are those of :mod:`chatkeep.shapes` (``docs/json.md``), shared with the CLI.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask

from chatkeep import fsutil, html, render, shapes, tokens
from chatkeep.errors import InvalidInput, NotFound, Unauthorized, UpstreamError
from chatkeep.ids import check_id
from chatkeep.model import Message, NewAttachment, NewMessage, Part
from chatkeep.search import SearchFilters
from chatkeep.server import auth
from chatkeep.server.auth import Caller, caller, vault_of
from chatkeep.server.jobs import ImportJobs, upload_name
from chatkeep.server.llm import LlmConfig, chat_history, relay_reply, stream_completion
from chatkeep.store import Store

router = APIRouter(prefix="/api")
Who = Annotated[Caller, Depends(caller)]
State = Literal["active", "archived", "trashed"]


def _store(request: Request) -> Store:
    return vault_of(request).store


# -- request bodies ------------------------------------------------------------------
class RuntimeIn(BaseModel):
    id: str = Field(description="Name: lower-case letters, digits, '-' and '_'.")
    name: str | None = None
    config: dict[str, Any] | None = None


class RuntimePatch(BaseModel):
    name: str | None = None
    config: dict[str, Any] | None = None


class ConversationIn(BaseModel):
    runtime_id: str
    title: str | None = None
    model: str | None = None
    tags: list[str] = []


class ConversationPatch(BaseModel):
    title: str


class TagsIn(BaseModel):
    add: list[str] = []
    remove: list[str] = []


class ForkIn(BaseModel):
    message_id: str
    title: str | None = None


class PartIn(BaseModel):
    kind: str
    text: str | None = None
    data: dict[str, Any] = {}


class AttachmentIn(BaseModel):
    name: str
    mime_type: str = "application/octet-stream"
    data_base64: str


class MessageIn(BaseModel):
    """A new message: ``text`` for one text part, or ``parts``. ``parent_id`` continues
    from any message (a sibling branch if it has children); default: the active leaf."""

    role: str = "user"
    text: str | None = None
    parts: list[PartIn] | None = None
    parent_id: str | None = None
    root: bool = False
    author: str | None = None
    model: str | None = None
    tokens: int | None = None
    cost: float | None = None
    metadata: dict[str, Any] = {}
    hidden: bool = False
    created_at: datetime | None = None
    attachments: list[AttachmentIn] = []


class ReplyIn(BaseModel):
    parent_id: str | None = Field(None, description="The message to answer (default: active leaf).")


class SettingIn(BaseModel):
    value: Any


class TokenIn(BaseModel):
    name: str = "api"


class UnlockIn(BaseModel):
    """The caller's passphrase, or the 32 bytes of their key file in base64."""

    passphrase: str | None = None
    key_file_base64: str | None = None


class SessionIn(BaseModel):
    token: str | None = None
    login_code: str | None = None


# -- session and caller --------------------------------------------------------------
@router.post("/session", tags=["session"])
def log_in(body: SessionIn, request: Request, response: Response) -> dict[str, Any]:
    """Log a browser in with an API token or ``serve``'s login code; sets the cookies."""
    store, config = _store(request), request.app.state.config
    if body.login_code is not None:
        code = config.login_code
        if not code or not hmac.compare_digest(code.encode(), body.login_code.encode()):
            raise Unauthorized("the login code is wrong or belongs to an earlier server run")
        user_id = config.login_user
    else:
        user_id, _token = tokens.authenticate(store, body.token)
    created, secret = tokens.issue_token(store, user_id, name=auth.SESSION_TOKEN_NAME)
    csrf = auth.start_session(response, secret, secure=config.secure_cookies)
    return {"user": shapes.user(store.get_user(user_id)), "token_id": created.id, "csrf": csrf}


@router.delete("/session", tags=["session"])
def log_out(who: Who, request: Request, response: Response) -> dict[str, Any]:
    """Log out: the session's token is revoked and the cookies cleared."""
    if who.by_cookie:
        _store(request).revoke_token(who.user_id, who.token_id)
    auth.end_session(response)
    return {"logged_out": True}


@router.get("/me", tags=["session"])
def me(who: Who, request: Request) -> dict[str, Any]:
    """The caller, and what this server offers (an assistant to reply, or not)."""
    config = request.app.state.config
    return {
        "user": shapes.user(_store(request).get_user(who.user_id)),
        "token_id": who.token_id,
        "assistant": config.llm is not None,
    }


@router.get("/tokens", tags=["tokens"])
def list_tokens(who: Who, request: Request) -> list[dict[str, Any]]:
    return [shapes.token(t) for t in _store(request).list_tokens(who.user_id)]


@router.post("/tokens", tags=["tokens"], status_code=201)
def create_token(body: TokenIn, who: Who, request: Request) -> dict[str, Any]:
    """A new token; its ``secret`` is in this answer only."""
    created, secret = tokens.issue_token(_store(request), who.user_id, name=body.name)
    return {**shapes.token(created), "secret": secret}


@router.delete("/tokens/{token_id}", tags=["tokens"])
def revoke_token(token_id: str, who: Who, request: Request) -> dict[str, Any]:
    return shapes.token(_store(request).revoke_token(who.user_id, token_id))


# -- encryption at rest ----------------------------------------------------------------
@router.get("/key", tags=["encryption"])
def key_status(who: Who, request: Request) -> dict[str, Any]:
    """Whether the caller's content is encrypted, and unlocked in this server process."""
    return shapes.key_status(vault_of(request).key_status(who.user_id))


@router.post("/key/unlock", tags=["encryption"])
def unlock_key(body: UnlockIn, who: Who, request: Request) -> dict[str, Any]:
    """Open the caller's key and hold it in this server process's memory (never on
    disk) until ``/key/lock`` or a restart; every server process needs its own unlock."""
    key = None
    if body.key_file_base64 is not None:
        try:
            key = base64.b64decode(body.key_file_base64, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInput("key_file_base64 is not valid base64") from None
    status = vault_of(request).unlock(who.user_id, passphrase=body.passphrase, key=key)
    return shapes.key_status(status)


@router.post("/key/lock", tags=["encryption"])
def lock_key(who: Who, request: Request) -> dict[str, Any]:
    """Forget the caller's unlocked key in this server process."""
    vault = vault_of(request)
    vault.lock(who.user_id)
    return shapes.key_status(vault.key_status(who.user_id))


# -- runtimes ------------------------------------------------------------------------
@router.get("/runtimes", tags=["runtimes"])
def list_runtimes(who: Who, request: Request) -> list[dict[str, Any]]:
    return [shapes.runtime(r) for r in _store(request).list_runtimes(who.user_id)]


@router.post("/runtimes", tags=["runtimes"], status_code=201)
def create_runtime(body: RuntimeIn, who: Who, request: Request) -> dict[str, Any]:
    """A runtime, created with its pinned home conversation."""
    created = _store(request).create_runtime(
        who.user_id, body.id, name=body.name, config=body.config
    )
    return shapes.runtime(created)


@router.get("/runtimes/{runtime_id}", tags=["runtimes"])
def get_runtime(runtime_id: str, who: Who, request: Request) -> dict[str, Any]:
    return shapes.runtime(_store(request).get_runtime(who.user_id, runtime_id))


@router.patch("/runtimes/{runtime_id}", tags=["runtimes"])
def update_runtime(
    runtime_id: str, body: RuntimePatch, who: Who, request: Request
) -> dict[str, Any]:
    updated = _store(request).update_runtime(
        who.user_id, runtime_id, name=body.name, config=body.config
    )
    return shapes.runtime(updated)


@router.delete("/runtimes/{runtime_id}", tags=["runtimes"])
def delete_runtime(runtime_id: str, who: Who, request: Request) -> dict[str, Any]:
    """Delete a runtime and its home; refused (409) while it has other conversations."""
    return shapes.delete_report(_store(request).delete_runtime(who.user_id, runtime_id))


@router.get("/runtimes/{runtime_id}/route", tags=["runtimes"])
def route(runtime_id: str, who: Who, request: Request) -> dict[str, Any]:
    """The runtime's primary (home) conversation: where opening the runtime goes."""
    return shapes.conversation(_store(request).route(who.user_id, runtime_id))


@router.get("/runtimes/{runtime_id}/conversations", tags=["conversations"])
def runtime_conversations(
    runtime_id: str,
    who: Who,
    request: Request,
    state: State = "active",
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[dict[str, Any]]:
    """The sidebar: the home conversation, then this runtime's pins, then the rest."""
    store = _store(request)
    store.get_runtime(who.user_id, runtime_id)
    listed = store.list_conversations(
        who.user_id, runtime_id=runtime_id, state=state, limit=limit, offset=offset
    )
    return [shapes.conversation(c) for c in listed]


# -- conversations -------------------------------------------------------------------
@router.get("/conversations", tags=["conversations"])
def list_conversations(
    who: Who,
    request: Request,
    runtime: str | None = None,
    state: State = "active",
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[dict[str, Any]]:
    listed = _store(request).list_conversations(
        who.user_id, runtime_id=runtime, state=state, limit=limit, offset=offset
    )
    return [shapes.conversation(c) for c in listed]


@router.post("/conversations", tags=["conversations"], status_code=201)
def create_conversation(body: ConversationIn, who: Who, request: Request) -> dict[str, Any]:
    created = _store(request).create_conversation(
        who.user_id, body.runtime_id, title=body.title, model=body.model, tags=body.tags
    )
    return shapes.conversation(created)


@router.get("/conversations/{conversation_id}", tags=["conversations"])
def read_conversation(
    conversation_id: str,
    who: Who,
    request: Request,
    leaf: str | None = None,
    all_branches: bool = False,
    render_html: Annotated[bool, Query(alias="html")] = False,
) -> dict[str, Any]:
    """The conversation, its branches, and the messages of one path (the active branch
    by default, or the one ending at ``leaf``; every message with ``all_branches``).
    Each message lists ``sibling_ids`` (its parent's children, itself included), and
    with ``html=true`` its content as safe HTML."""
    store = _store(request)
    conversation = store.get_conversation(who.user_id, conversation_id)
    every = store.list_messages(who.user_id, conversation_id, all_branches=True)
    children: dict[str | None, list[str]] = {}
    for message in every:
        children.setdefault(message.parent_id, []).append(message.id)
    shown = every if all_branches else _path(every, leaf or conversation.active_leaf_id)
    return {
        "conversation": shapes.conversation(conversation),
        "branches": [shapes.branch(b) for b in store.list_branches(who.user_id, conversation_id)],
        "messages": [_message(m, children[m.parent_id], render_html) for m in shown],
    }


def _path(messages: list[Message], leaf: str | None) -> list[Message]:
    """The root-to-``leaf`` path through ``messages`` (one read serves both views)."""
    if leaf is None:
        return []
    by_id = {m.id: m for m in messages}
    if leaf not in by_id:
        check_id("message", leaf)
        raise NotFound(f"no message {leaf} in this conversation")
    path: list[Message] = []
    at: str | None = leaf
    while at is not None:
        path.append(by_id[at])
        at = by_id[at].parent_id
    return path[::-1]


def _message(message: Message, siblings: list[str], render_html: bool) -> dict[str, Any]:
    shape = {**shapes.message(message), "sibling_ids": siblings}
    if render_html:
        shape["html"] = html.message_html(message)
    return shape


@router.patch("/conversations/{conversation_id}", tags=["conversations"])
def rename_conversation(
    conversation_id: str, body: ConversationPatch, who: Who, request: Request
) -> dict[str, Any]:
    renamed = _store(request).rename_conversation(who.user_id, conversation_id, body.title)
    return shapes.conversation(renamed)


@router.post("/conversations/{conversation_id}/tags", tags=["conversations"])
def tag_conversation(
    conversation_id: str, body: TagsIn, who: Who, request: Request
) -> dict[str, Any]:
    tagged = _store(request).tag_conversation(
        who.user_id, conversation_id, add=body.add, remove=body.remove
    )
    return shapes.conversation(tagged)


_LIFECYCLE = {
    "pin": "pin_conversation",
    "unpin": "unpin_conversation",
    "archive": "archive_conversation",
    "unarchive": "unarchive_conversation",
    "trash": "trash_conversation",
    "restore": "restore_conversation",
}


def _lifecycle_route(action: str, method: str) -> None:
    def change(conversation_id: str, who: Who, request: Request) -> dict[str, Any]:
        changed = getattr(_store(request), method)(who.user_id, conversation_id)
        return shapes.conversation(changed)

    change.__name__ = f"{action}_conversation"
    router.add_api_route(
        f"/conversations/{{conversation_id}}/{action}",
        change,
        methods=["POST"],
        tags=["conversations"],
        summary=f"{action.capitalize()} a conversation",
    )


for _action, _method in _LIFECYCLE.items():
    _lifecycle_route(_action, _method)


@router.delete("/conversations/{conversation_id}", tags=["conversations"])
def delete_conversation(conversation_id: str, who: Who, request: Request) -> dict[str, Any]:
    """Delete for good: messages, attachments, index entries and unused blobs."""
    report = _store(request).delete_conversation(who.user_id, conversation_id)
    return shapes.delete_report(report)


@router.post("/conversations/{conversation_id}/fork", tags=["conversations"], status_code=201)
def fork_conversation(
    conversation_id: str, body: ForkIn, who: Who, request: Request
) -> dict[str, Any]:
    forked = _store(request).fork_conversation(
        who.user_id, conversation_id, body.message_id, title=body.title
    )
    return shapes.conversation(forked)


@router.get("/conversations/{conversation_id}/export", tags=["conversations"])
def export_conversation(
    conversation_id: str,
    who: Who,
    request: Request,
    export_format: Annotated[Literal["markdown", "json"], Query(alias="format")] = "markdown",
    all_branches: bool = False,
) -> Response:
    """The conversation as a Markdown transcript or as JSON, as a download."""
    store = _store(request)
    conversation = store.get_conversation(who.user_id, conversation_id)
    messages = store.list_messages(who.user_id, conversation_id, all_branches=all_branches)
    if export_format == "markdown":
        body = render.conversation_markdown(conversation, messages).encode()
        media, suffix = "text/markdown; charset=utf-8", "md"
    else:
        import orjson

        shape = {
            "conversation": shapes.conversation(conversation),
            "messages": [shapes.message(m) for m in messages],
        }
        body = orjson.dumps(shape, option=orjson.OPT_INDENT_2)
        media, suffix = "application/json", "json"
    return Response(body, media_type=media, headers=_download(f"{conversation.id}.{suffix}"))


def _download(name: str) -> dict[str, str]:
    return {"content-disposition": f"attachment; filename*=UTF-8''{quote(name)}"}


# -- messages ------------------------------------------------------------------------
@router.post("/conversations/{conversation_id}/messages", tags=["messages"], status_code=201)
def append_message(
    conversation_id: str, body: MessageIn, who: Who, request: Request
) -> dict[str, Any]:
    """Append a message; it is durable when this answers."""
    stored = _store(request).append_message(who.user_id, conversation_id, _new_message(body))
    return shapes.message(stored)


def _new_message(body: MessageIn) -> NewMessage:
    if (body.text is None) == (body.parts is None):
        raise InvalidInput("give either text or parts")
    parts = (
        (Part(kind="text", text=body.text),)
        if body.text is not None
        else tuple(Part(kind=p.kind, text=p.text, data=p.data) for p in body.parts or ())
    )
    return NewMessage(
        role=body.role,
        parts=parts,
        parent_id=body.parent_id,
        root=body.root,
        author=body.author,
        model=body.model,
        tokens=body.tokens,
        cost=body.cost,
        metadata=body.metadata,
        hidden=body.hidden,
        created_at=body.created_at,
        attachments=tuple(_attachment(a) for a in body.attachments),
    )


def _attachment(given: AttachmentIn) -> NewAttachment:
    try:
        data = base64.b64decode(given.data_base64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput(f"attachment {given.name!r} is not valid base64") from exc
    return NewAttachment(name=given.name, data=data, mime_type=given.mime_type)


@router.get("/messages/{message_id}", tags=["messages"])
def get_message(message_id: str, who: Who, request: Request) -> dict[str, Any]:
    return shapes.message(_store(request).get_message(who.user_id, message_id))


@router.get("/attachments/{attachment_id}", tags=["messages"])
def download_attachment(attachment_id: str, who: Who, request: Request) -> Response:
    """The attachment's bytes, always as a download (never rendered by the browser)."""
    store = _store(request)
    found = store.get_attachment(who.user_id, attachment_id)
    data = store.read_attachment(who.user_id, attachment_id)
    return Response(data, media_type="application/octet-stream", headers=_download(found.name))


@router.post("/conversations/{conversation_id}/reply", tags=["messages"])
async def reply(
    conversation_id: str, body: ReplyIn, who: Who, request: Request
) -> StreamingResponse:
    """Ask the configured OpenAI-compatible endpoint to answer ``parent_id`` (default:
    the active leaf). Streams server-sent events ``delta`` ({text}), then ``done`` (the
    stored message) or ``error``. The reply is stored even if the client goes away."""
    store = _store(request)
    conversation = await run_in_threadpool(store.get_conversation, who.user_id, conversation_id)
    config: LlmConfig | None = request.app.state.config.llm
    if config is None:
        raise UpstreamError(
            "no assistant is configured on this server",
            hint="set CHATKEEP_LLM_BASE_URL (and CHATKEEP_LLM_MODEL, CHATKEEP_LLM_API_KEY)",
        )
    leaf = body.parent_id or conversation.active_leaf_id
    if leaf is None:
        raise InvalidInput("there is nothing to reply to yet")
    path = await run_in_threadpool(store.list_messages, who.user_id, conversation_id, leaf_id=leaf)
    runtime = await run_in_threadpool(store.get_runtime, who.user_id, conversation.runtime_id)
    instructions = runtime.config.get("instructions")
    model = str(runtime.config.get("model") or config.model)
    history = chat_history(path, instructions if isinstance(instructions, str) else None)

    async def store_reply(text: str, error: str | None) -> dict[str, Any]:
        message = NewMessage(
            role="assistant",
            parts=(Part(kind="text", text=text),),
            parent_id=leaf,
            model=model,
            metadata={"interrupted": True, "error": error} if error else {},
        )
        stored = await run_in_threadpool(
            store.append_message, who.user_id, conversation_id, message
        )
        return shapes.message(stored)

    events = relay_reply(
        stream_completion(config, model, history), store_reply, request.app.state.replies
    )
    return StreamingResponse(events, media_type="text/event-stream")


# -- search --------------------------------------------------------------------------
@router.get("/search", tags=["search"])
def search(
    who: Who,
    request: Request,
    q: str,
    runtime: str | None = None,
    origin: Literal["native", "imported"] | None = None,
    platform: str | None = None,
    import_id: Annotated[str | None, Query(alias="import")] = None,
    role: Literal["system", "user", "assistant", "tool"] | None = None,
    model: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    tag: str | None = None,
    conversation: str | None = None,
    archived: bool = False,
    mode: Literal["text", "semantic", "hybrid"] = "text",
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """The CLI's search: the same query syntax, filters and ranking."""
    filters = SearchFilters(
        runtime_id=runtime,
        origin=origin,
        platform=platform,
        import_id=import_id,
        role=role,
        model=model,
        since=_utc(since),
        until=_utc(until),
        tag=tag,
        conversation_id=conversation,
        include_archived=archived,
    )
    store = _store(request)
    if mode == "text":
        page = store.search(who.user_id, q, filters=filters, limit=limit, offset=offset)
    else:
        from chatkeep.semantic import hybrid_search, semantic_search

        run = semantic_search if mode == "semantic" else hybrid_search
        page = run(store, who.user_id, q, filters=filters, limit=limit, offset=offset)
    return shapes.search_page(page)


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


@router.get("/recall", tags=["search"])
def recall(
    who: Who,
    request: Request,
    q: str,
    runtime: str | None = None,
    chars: Annotated[int | None, Query(ge=1)] = None,
    tokens_budget: Annotated[int | None, Query(alias="tokens", ge=1)] = None,
    exclude: str | None = None,
) -> list[dict[str, Any]]:
    """The most relevant earlier messages within a budget: context for an assistant."""
    from chatkeep.recall import recall as recall_messages

    found = recall_messages(
        _store(request),
        who.user_id,
        q,
        runtime_id=runtime,
        budget_chars=chars,
        budget_tokens=tokens_budget,
        exclude_conversation_id=exclude,
    )
    return [shapes.recalled(r) for r in found]


# -- export --------------------------------------------------------------------------
@router.get("/export", tags=["export"])
def export_own_data(
    who: Who,
    request: Request,
    export_format: Annotated[Literal["json", "markdown", "zip"], Query(alias="format")] = "json",
    runtime: Annotated[list[str] | None, Query()] = None,
    conversation: Annotated[list[str] | None, Query()] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    all_branches: bool = False,
) -> FileResponse:
    """The caller's own data (never anyone else's) as a download: chatkeep JSON, a zip
    (JSON, attachments, Markdown, manifest) or the Markdown folder zipped; see
    docs/export.md. Written to a private temp file in the vault, removed once sent."""
    from chatkeep.exporting import Selection, export_vault, zip_folder

    vault = vault_of(request)
    jobs: ImportJobs = request.app.state.jobs
    selection = Selection(
        users=(who.user_id,),  # forced: the caller's own rows only
        runtimes=tuple(runtime or ()),
        conversations=tuple(conversation or ()),
        since=since,
        until=until,
    )
    handle, spooled = fsutil.new_spool(jobs.spool_dir, "export")
    handle.close()
    folder = spooled.parent
    try:
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        suffix = "json" if export_format == "json" else "zip"
        name = f"chatkeep-{who.user_id}-{stamp}.{suffix}"
        out = folder / ("markdown" if export_format == "markdown" else name)
        export_vault(
            vault,
            out,
            format=export_format,
            selection=selection,
            all_branches=all_branches,
            allow_in_git=True,  # a private temp file of the vault, wherever it lives
        )
        if export_format == "markdown":
            zip_folder(out, folder / name)
    except BaseException:
        fsutil.remove_tree(folder)
        raise
    media = "application/json" if suffix == "json" else "application/zip"
    return FileResponse(
        folder / name,
        media_type=media,
        headers=_download(name),
        background=BackgroundTask(fsutil.remove_tree, folder),
    )


# -- imports -------------------------------------------------------------------------
@router.post("/imports", tags=["imports"], status_code=202)
async def upload_import(
    who: Who,
    request: Request,
    filename: str | None = None,
    platform: Annotated[str | None, Query(alias="format")] = None,
    again: bool = False,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Upload an export as the raw request body (a zip, JSON or HTML file); it is
    streamed to disk and imported by a job whose progress and report
    ``GET /api/imports/jobs/{id}`` gives."""
    jobs: ImportJobs = request.app.state.jobs
    handle, spooled = await run_in_threadpool(
        fsutil.new_spool, jobs.spool_dir, upload_name(filename)
    )
    size = 0
    try:
        with handle:
            async for chunk in request.stream():
                size += len(chunk)
                await run_in_threadpool(handle.write, chunk)
        if size == 0:
            raise InvalidInput("the upload is empty", hint="send the export as the request body")
    except BaseException:
        await run_in_threadpool(fsutil.remove_tree, spooled.parent)
        raise
    job = jobs.submit(who.user_id, spooled, platform=platform, again=again, dry_run=dry_run)
    return job.shape()


@router.get("/imports/jobs", tags=["imports"])
def list_import_jobs(who: Who, request: Request) -> list[dict[str, Any]]:
    """This server process's import jobs, newest first."""
    jobs: ImportJobs = request.app.state.jobs
    return [job.shape() for job in jobs.list(who.user_id)]


@router.get("/imports/jobs/{job_id}", tags=["imports"])
def get_import_job(job_id: str, who: Who, request: Request) -> dict[str, Any]:
    jobs: ImportJobs = request.app.state.jobs
    return jobs.get(who.user_id, job_id).shape()


@router.get("/imports", tags=["imports"])
def list_imports(who: Who, request: Request) -> list[dict[str, Any]]:
    return [shapes.import_record(r) for r in _store(request).list_imports(who.user_id)]


@router.delete("/imports/{import_id}", tags=["imports"])
def delete_import(import_id: str, who: Who, request: Request) -> dict[str, Any]:
    """Delete what the import brought (the conversations it last wrote) and its original."""
    from chatkeep.lifecycle import delete_import as remove

    return shapes.delete_report(remove(vault_of(request), who.user_id, import_id))


@router.get("/imports/{import_id}", tags=["imports"])
def get_import(import_id: str, who: Who, request: Request) -> dict[str, Any]:
    return shapes.import_record(_store(request).get_import(who.user_id, import_id))


# -- settings ------------------------------------------------------------------------
@router.get("/settings", tags=["settings"])
def list_settings(who: Who, request: Request, prefix: str | None = None) -> dict[str, Any]:
    """Namespaced preferences (``ui.theme``…): the browser's state, kept in the vault."""
    return _store(request).list_settings(who.user_id, prefix=prefix)


@router.get("/settings/{key}", tags=["settings"])
def get_setting(key: str, who: Who, request: Request) -> dict[str, Any]:
    return {"key": key, "value": _store(request).get_setting(who.user_id, key)}


@router.put("/settings/{key}", tags=["settings"])
def put_setting(key: str, body: SettingIn, who: Who, request: Request) -> dict[str, Any]:
    _store(request).set_setting(who.user_id, key, body.value)
    return {"key": key, "value": body.value}


@router.delete("/settings/{key}", tags=["settings"])
def delete_setting(key: str, who: Who, request: Request) -> dict[str, Any]:
    _store(request).delete_setting(who.user_id, key)
    return {"key": key, "deleted": True}


# -- drafts, snapshots, usage, recordings ------------------------------------------
class DraftIn(BaseModel):
    text: str


class SnapshotIn(BaseModel):
    name: str
    state: Any = None
    starred: bool = False
    runtime_id: str | None = None
    conversation_id: str | None = None


class StarIn(BaseModel):
    starred: bool = True


class UsageIn(BaseModel):
    model: str
    runtime_id: str | None = None
    conversation_id: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    duration_ms: int = 0
    at: datetime | None = None


class EventIn(BaseModel):
    kind: str
    data: Any = None
    at: datetime | None = None


@router.get("/conversations/{conversation_id}/draft", tags=["drafts"])
def get_draft(conversation_id: str, who: Who, request: Request) -> dict[str, Any]:
    """The unsent text kept for this conversation ("" when there is none)."""
    found = _store(request).get_draft(who.user_id, conversation_id)
    if found is None:
        return {"conversation_id": conversation_id, "text": "", "updated_at": None}
    return shapes.draft(found)


@router.put("/conversations/{conversation_id}/draft", tags=["drafts"])
def put_draft(conversation_id: str, body: DraftIn, who: Who, request: Request) -> dict[str, Any]:
    """Keep the unsent text server-side, so a crash or a closed browser loses nothing."""
    return shapes.draft(_store(request).put_draft(who.user_id, conversation_id, body.text))


@router.get("/snapshots", tags=["snapshots"])
def list_snapshots(who: Who, request: Request) -> list[dict[str, Any]]:
    return [shapes.snapshot(s) for s in _store(request).list_snapshots(who.user_id)]


@router.post("/snapshots", tags=["snapshots"], status_code=201)
def save_snapshot(body: SnapshotIn, who: Who, request: Request) -> dict[str, Any]:
    saved = _store(request).save_snapshot(
        who.user_id,
        body.name,
        body.state,
        starred=body.starred,
        runtime_id=body.runtime_id,
        conversation_id=body.conversation_id,
    )
    return shapes.snapshot(saved)


@router.get("/snapshots/{snapshot_id}", tags=["snapshots"])
def get_snapshot(snapshot_id: str, who: Who, request: Request) -> dict[str, Any]:
    return shapes.snapshot(_store(request).get_snapshot(who.user_id, snapshot_id))


@router.post("/snapshots/{snapshot_id}/star", tags=["snapshots"])
def star_snapshot(snapshot_id: str, body: StarIn, who: Who, request: Request) -> dict[str, Any]:
    return shapes.snapshot(_store(request).star_snapshot(who.user_id, snapshot_id, body.starred))


@router.delete("/snapshots/{snapshot_id}", tags=["snapshots"])
def delete_snapshot(snapshot_id: str, who: Who, request: Request) -> dict[str, Any]:
    _store(request).delete_snapshot(who.user_id, snapshot_id)
    return {"id": snapshot_id, "deleted": True}


@router.get("/usage", tags=["usage"])
def usage(
    who: Who, request: Request, since: datetime | None = None, until: datetime | None = None
) -> list[dict[str, Any]]:
    """Usage per day, model and runtime (for the usage chart)."""
    totals = _store(request).usage_totals(who.user_id, since=_utc(since), until=_utc(until))
    return [shapes.usage_total(u) for u in totals]


@router.post("/usage", tags=["usage"], status_code=201)
def record_usage(body: UsageIn, who: Who, request: Request) -> dict[str, Any]:
    event_id = _store(request).record_usage(
        who.user_id,
        model=body.model,
        runtime_id=body.runtime_id,
        conversation_id=body.conversation_id,
        tokens_in=body.tokens_in,
        tokens_out=body.tokens_out,
        cost=body.cost,
        duration_ms=body.duration_ms,
        at=_utc(body.at),
    )
    return {"id": event_id}


@router.post("/conversations/{conversation_id}/events", tags=["recordings"], status_code=201)
def record_event(conversation_id: str, body: EventIn, who: Who, request: Request) -> dict[str, Any]:
    """Add an event to the conversation's recording."""
    seq = _store(request).record_event(
        who.user_id, conversation_id, body.kind, body.data, at=_utc(body.at)
    )
    return {"seq": seq}


@router.get("/conversations/{conversation_id}/events", tags=["recordings"])
def replay(conversation_id: str, who: Who, request: Request) -> list[dict[str, Any]]:
    """The conversation's recording, in order, for replay."""
    events = _store(request).replay(who.user_id, conversation_id)
    return [shapes.recorded_event(e) for e in events]
