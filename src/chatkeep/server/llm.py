"""Replies from an OpenAI-compatible endpoint, streamed into the view and stored.

Configured by the environment: ``CHATKEEP_LLM_BASE_URL`` (e.g. ``http://127.0.0.1:8080/v1``),
``CHATKEEP_LLM_MODEL`` and ``CHATKEEP_LLM_API_KEY``. Without a base URL there is no
assistant: the composer still stores the user's messages.

The reply is read by a task of its own, so it is stored even if the browser goes away
mid-stream; a reply cut short by the endpoint is stored with what arrived, marked
``interrupted`` in its metadata.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import httpx
import orjson

from chatkeep.errors import UpstreamError
from chatkeep.limits import LLM_TIMEOUT_SECONDS
from chatkeep.model import Message

_ROLES_SENT: Final = frozenset({"system", "user", "assistant"})


@dataclass(frozen=True, slots=True)
class LlmConfig:
    base_url: str
    model: str
    api_key: str | None = None

    @classmethod
    def from_env(cls) -> LlmConfig | None:
        base = os.environ.get("CHATKEEP_LLM_BASE_URL", "").strip()
        if not base:
            return None
        return cls(
            base_url=base.rstrip("/"),
            model=os.environ.get("CHATKEEP_LLM_MODEL", "").strip() or "default",
            api_key=os.environ.get("CHATKEEP_LLM_API_KEY") or None,
        )


def chat_history(messages: Sequence[Message], instructions: str | None) -> list[dict[str, str]]:
    """The path so far as OpenAI chat messages (hidden and tool turns left out)."""
    history = [{"role": "system", "content": instructions}] if instructions else []
    for message in messages:
        if message.role in _ROLES_SENT and not message.hidden and message.text:
            history.append({"role": message.role, "content": message.text})
    return history


async def stream_completion(
    config: LlmConfig, model: str, history: list[dict[str, str]]
) -> AsyncIterator[str]:
    """The reply's text, piece by piece, as the endpoint sends it (SSE)."""
    headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
    body = {"model": model, "messages": history, "stream": True}
    try:
        async with (
            httpx.AsyncClient(timeout=LLM_TIMEOUT_SECONDS) as client,
            client.stream(
                "POST", f"{config.base_url}/chat/completions", json=body, headers=headers
            ) as response,
        ):
            if response.status_code != 200:
                await response.aread()
                raise UpstreamError(
                    f"the model endpoint answered {response.status_code}: {response.text[:200]}"
                )
            finished = False
            async for line in response.aiter_lines():
                piece, finished = _delta(line, finished)
                if piece is None:
                    break
                if piece:
                    yield piece
            if not finished:
                raise UpstreamError("the model endpoint stopped before the reply was complete")
    except httpx.HTTPError as exc:
        raise UpstreamError(f"the model endpoint failed: {exc}") from exc


def _delta(line: str, finished: bool) -> tuple[str | None, bool]:
    """The text a server-sent event line adds ("" for none, None at ``[DONE]``), and
    whether the reply is known to be complete (``[DONE]`` or a ``finish_reason``)."""
    if not line.startswith("data:"):
        return "", finished
    data = line[5:].strip()
    if data == "[DONE]":
        return None, True
    try:
        choice = orjson.loads(data)["choices"][0]
        content = choice.get("delta", {}).get("content")
        finished = finished or bool(choice.get("finish_reason"))
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError):
        return "", finished
    return (content if isinstance(content, str) else ""), finished


def sse(event: str, data: Any) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


async def relay_reply(
    pieces: AsyncIterator[str],
    store_reply: Callable[[str, str | None], Awaitable[dict[str, Any]]],
    keep: set[asyncio.Task[None]],
) -> AsyncIterator[bytes]:
    """Server-sent events for the browser, while a task of its own reads ``pieces`` to
    the end and stores the reply (``store_reply(text, error)``) whatever the browser does."""
    queue: asyncio.Queue[bytes | None] = asyncio.Queue()

    async def consume() -> None:
        text: list[str] = []
        error: str | None = None
        try:
            async for piece in pieces:
                text.append(piece)
                queue.put_nowait(sse("delta", {"text": piece}))
        except UpstreamError as exc:
            error = exc.message
        try:
            if text or error is None:
                stored = await store_reply("".join(text), error)
                queue.put_nowait(sse("done", stored))
            if error is not None:
                queue.put_nowait(sse("error", {"code": UpstreamError.code, "message": error}))
        except Exception as exc:  # the store refused: tell the browser
            code = getattr(exc, "code", "internal")
            queue.put_nowait(sse("error", {"code": code, "message": str(exc)}))
        finally:
            queue.put_nowait(None)

    task = asyncio.create_task(consume())
    keep.add(task)
    task.add_done_callback(keep.discard)
    while (item := await queue.get()) is not None:
        yield item
