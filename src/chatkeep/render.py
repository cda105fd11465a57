"""Text renderings of conversations: Markdown transcripts and terminal-safe text.

Markdown transcripts are always a rendering of the store, never the truth.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import orjson

from chatkeep.model import Conversation, Message, Part

# C0 and C1 control characters other than tab and newline: ANSI/OSC escape sequences in
# chat content must not drive the reader's terminal.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def terminal_safe(text: str) -> str:
    """``text`` with control characters shown as visible escapes (``\\x1b``)."""
    return _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


def _fence(text: str) -> str:
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def part_markdown(part: Part) -> str:
    if part.kind == "text":
        return part.text or ""
    if part.kind == "code":
        fence = _fence(part.text or "")
        language = str(part.data.get("language", ""))
        return f"{fence}{language}\n{part.text or ''}\n{fence}"
    if part.kind in ("image", "file"):
        name = part.data.get("name", "attachment")
        return f"[{part.kind}: {name} ({part.data.get('attachment_id', 'missing')})]"
    if part.kind == "reasoning":
        quoted = "\n".join(f"> {line}" for line in (part.text or "").splitlines())
        return f"> **reasoning**\n{quoted}"
    body = part.text if part.text is not None else ""
    if part.data:
        body = (body + "\n" if body else "") + orjson.dumps(
            part.data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS
        ).decode()
    fence = _fence(body)
    return f"**{part.kind}**\n{fence}\n{body}\n{fence}"


def message_markdown(message: Message) -> str:
    when = message.created_at.isoformat() if message.created_at else "time unknown"
    who = message.role + (f" ({message.author})" if message.author else "")
    model = f" · {message.model}" if message.model else ""
    hidden = " · hidden" if message.hidden else ""
    header = f"### {who}{model}{hidden}\n<!-- {message.id} · {when} -->"
    body = "\n\n".join(part_markdown(p) for p in message.parts)
    return f"{header}\n\n{body}"


def conversation_markdown(conversation: Conversation, messages: Sequence[Message]) -> str:
    """A Markdown document with YAML-style front matter, one section per message."""
    tags = ", ".join(orjson.dumps(tag).decode() for tag in conversation.tags)
    front = [
        "---",
        f"id: {conversation.id}",
        f"title: {orjson.dumps(conversation.title).decode()}",
        f"runtime: {conversation.runtime_id}",
        f"state: {conversation.state}",
        f"created: {conversation.created_at.isoformat()}",
        f"updated: {conversation.updated_at.isoformat()}",
        f"tags: [{tags}]",
        "---",
        "",
        f"# {conversation.title}",
    ]
    sections = [message_markdown(m) for m in messages]
    return "\n".join(front) + "\n\n" + "\n\n".join(sections) + "\n"
