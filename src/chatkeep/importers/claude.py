"""Claude.ai exports ("Settings → Privacy → Export data"), v1 and 2026 layouts.

What is read (by content; names only narrow the search):

* ``conversations.json`` (also ``conversations-NNN.json``) in any folder, or a bare JSON
  file of any name holding the same array: the conversations, streamed with ``ijson``.
  Batch zips (``…-batch-0000.zip``) arrive as folders named after each batch, so several
  such files may exist; a conversation found in more than one is kept once, by ``uuid``
  (the copy with the newest ``updated_at`` wins, then the one with more messages, then
  the first read), and the others are counted in ``skipped["duplicate_conversations"]``.
* ``design_chats/<uuid>.json`` (Claude Design canvas chats, a second dialect): imported as
  conversations too, with source id ``design:<uuid>``, linear, marked
  ``metadata["claude_kind"] = "design_chat"``.
* ``users.json``: the account (user ``uuid``, else e-mail) and a short label.
* ``projects.json`` (v1 array) and ``projects/<uuid>.json`` (v2, one object each),
  ``memories.json`` (v1 rows or the 2026 per-account object): export metadata only.

Mapping of a message: ``uuid`` → source id; ``parent_message_uuid`` → parent, where the
all-zero sentinel (and ``null``) means a root and a message *without* the key (legacy
exports) hangs under the previous message in array order; ``human`` → ``user``,
``assistant`` → ``assistant``. Content blocks, in order: ``text`` → ``text``,
``thinking`` → ``reasoning`` (summaries, signature, timestamps in ``data``),
``tool_use`` → ``tool_call``, ``tool_result`` → ``tool_result`` (text of its items as
``text``, the raw ``content`` in ``data``), anything else → a part whose kind is the
sanitised block type (``claude.<type>`` if that would collide with a known kind) with the
whole raw block as ``data``. ``null`` fields of known blocks are dropped. When ``content``
is empty, the flat ``text`` is used. Claude exports never include file bytes: every
``attachments[]`` and ``files[]``/``files_v2[]`` entry becomes a ``SourceFile`` with
``member=None`` (the import engine adds its ``file``/``image`` part), and an attachment's
``extracted_content`` is kept as a ``text`` part with ``data["source"] = "attachment"``
(plus the attachment's other fields); the raw entries, without the extracted text, stay
in the message's metadata. The official export has no model and no active leaf;
``current_leaf_message_uuid`` is honoured when present. Design chat messages get the
source id ``design:<chat uuid>:<message uuid>`` (their ids are short and not unique).
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import ijson  # type: ignore[import-untyped]
import orjson

from chatkeep import limits
from chatkeep.errors import ImportFormatError
from chatkeep.importers.jsonio import BOM, json_error, open_json
from chatkeep.importers.model import (
    ParsedExport,
    SourceConversation,
    SourceFile,
    SourceMessage,
    iso_time,
)
from chatkeep.importers.source import ExportSource
from chatkeep.model import KNOWN_PART_KINDS, Part

PLATFORM = "claude"
#: ``parent_message_uuid`` of a root message.
ROOT_SENTINEL = "00000000-0000-4000-8000-000000000000"
#: Largest side file (users, projects, memories, one design chat) read whole.
MAX_SIDE_FILE_BYTES = 256 * 1024 * 1024
#: Export metadata (projects, memories) beyond this is summarised: the import record
#: stores at most ``limits.MAX_JSON_BYTES``.
METADATA_BUDGET = limits.MAX_JSON_BYTES // 2

_CONVERSATIONS_NAME = re.compile(r"conversations(?:[-_]\d+)?\.json", re.IGNORECASE)
_KIND_BAD = re.compile(r"[^a-z0-9_.-]+")
_LABEL_BAD = re.compile(r"[^a-z0-9_-]+")
_ROLES = {"human": "user", "user": "user", "assistant": "assistant", "system": "system"}
_FIELD_SEP = "\x1f"


# -- JSON reading -------------------------------------------------------------------------
def _events(source: ExportSource, name: str) -> Generator[tuple[str, str, Any], None, None]:
    """``ijson`` parse events of a member; malformed JSON raises ImportFormatError."""
    with open_json(source, name) as handle:
        try:
            yield from ijson.parse(handle, use_float=True)
        except (ijson.JSONError, UnicodeDecodeError) as exc:
            raise json_error(name, exc) from None


def _array_items(source: ExportSource, name: str) -> Iterator[Any]:
    """Each element of the JSON array in ``name``, streamed."""
    events = _events(source, name)
    first = next(events, None)
    if first is None or first[1] != "start_array":
        events.close()
        raise ImportFormatError(f"{name} does not hold a JSON array")

    def replay() -> Iterator[tuple[str, str, Any]]:
        yield first
        yield from events

    yield from ijson.items(replay(), "item")


def _load(source: ExportSource, name: str) -> Any:
    data = source.read_bytes(name, limit=MAX_SIDE_FILE_BYTES)
    if data.startswith(BOM):
        data = data[3:]
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise json_error(name, exc) from None


@dataclass(slots=True)
class _Probe:
    """What the start of a member holds: a JSON ``array`` (``empty`` or not, with the
    top-level keys of its first element) or an ``object`` (with its top-level keys)."""

    shape: str  # "array" | "object" | "other"
    keys: set[str]
    empty: bool = False


def _probe(source: ExportSource, name: str, wanted: set[str]) -> _Probe:
    """Top-level keys of the member (object) or of its first element (array), read only
    as far as needed: stops once every key in ``wanted`` was seen. Never raises on bad
    JSON (detection must not)."""
    keys: set[str] = set()
    shape = "other"
    top = ""
    try:
        with open_json(source, name) as handle:
            for prefix, event, value in ijson.parse(handle, use_float=True):
                if shape == "other":
                    if event == "start_array":
                        shape, top = "array", "item"
                    elif event == "start_map":
                        shape = "object"
                    else:
                        return _Probe("other", keys)
                    continue
                if shape == "array" and not keys and prefix == "" and event == "end_array":
                    return _Probe("array", keys, empty=True)
                if (
                    shape == "array"
                    and prefix == "item"
                    and event not in ("start_map", "map_key", "end_map")
                ):
                    return _Probe("other", keys)  # an array of scalars or arrays
                if prefix == top and event == "map_key":
                    keys.add(value)
                    if wanted <= keys:
                        return _Probe(shape, keys)
                elif prefix == top and event == "end_map":
                    return _Probe(shape, keys)
    except (ijson.JSONError, UnicodeDecodeError, ImportFormatError):
        pass
    return _Probe(shape, keys)


# -- which files ---------------------------------------------------------------------------
def _base(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def _parent_dir(name: str) -> str:
    parts = name.split("/")
    return parts[-2] if len(parts) > 1 else ""


def _conversation_candidates(names: list[str]) -> list[str]:
    found = [n for n in names if _CONVERSATIONS_NAME.fullmatch(_base(n))]
    if not found and len(names) == 1:
        return list(names)  # a bare file, whatever its name
    return found


def _design_chat_files(names: list[str]) -> list[str]:
    return [n for n in names if _parent_dir(n) == "design_chats" and n.lower().endswith(".json")]


def _side_files(names: list[str], base: str) -> list[str]:
    return [n for n in names if _base(n) == base]


def _project_files(names: list[str]) -> list[str]:
    return [n for n in names if _parent_dir(n) == "projects" and n.lower().endswith(".json")]


_CONVERSATION_KEYS = {"uuid", "chat_messages"}
_DESIGN_KEYS = {"uuid", "messages"}


def _is_design_chat(source: ExportSource, name: str) -> bool:
    probe = _probe(source, name, _DESIGN_KEYS)
    if probe.shape != "object" or not probe.keys >= _DESIGN_KEYS:
        return False
    if _parent_dir(name) == "design_chats":
        return True
    # A bare file: demand the dialect's own marker as well.
    head = source.head(name, 256 * 1024)
    return b'"contentBlocks"' in head or b'"kind"' in head


# -- small helpers -------------------------------------------------------------------------
def _derived_id(*fields: object) -> str:
    joined = _FIELD_SEP.join("" if f is None else str(f) for f in fields)
    return hashlib.sha256(joined.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def part_kind(value: object, *, namespace: str = PLATFORM) -> str:
    """A block type as a part kind: ``[a-z][a-z0-9_.-]{0,63}``; a type that would collide
    with a kind chatkeep interprets (``image``, ``file``, …) is namespaced."""
    raw = value.strip().lower() if isinstance(value, str) else ""
    kind = _KIND_BAD.sub("_", raw).strip("_.-")
    if not kind:
        return "unknown"
    if not "a" <= kind[0] <= "z":
        kind = "x_" + kind
    kind = kind[:64]
    if kind in KNOWN_PART_KINDS:
        kind = f"{namespace}.{kind}"
    return kind


def account_label(text: str | None) -> str | None:
    """A short lower-case ``[a-z0-9_-]`` label, e.g. from an e-mail's local part."""
    if not text:
        return None
    label = _LABEL_BAD.sub("-", text.strip().lower()).strip("-_")[:32].strip("-_")
    return label or None


def _mime(file_type: object, name: str) -> str:
    if isinstance(file_type, str) and "/" in file_type:
        return file_type.strip().lower()
    if isinstance(file_type, str) and file_type.strip():
        guessed, _ = mimetypes.guess_type("file." + file_type.strip().lower(), strict=False)
        if guessed:
            return guessed
    guessed, _ = mimetypes.guess_type(name, strict=False)
    return guessed or "application/octet-stream"


def _without_nulls(raw: dict[str, Any], *drop: str) -> dict[str, Any]:
    return {k: v for k, v in raw.items() if v is not None and k not in drop}


def _title(value: object, fallback: str = "Untitled") -> str:
    if not isinstance(value, str) or not value.strip():
        return fallback
    return value[: limits.MAX_TITLE_LENGTH]


def _size(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


# -- content --------------------------------------------------------------------------------
def _result_text(content: object) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [
            item["text"]
            for item in content
            if isinstance(item, dict) and isinstance(item.get("text"), str)
        ]
        if texts:
            return "\n\n".join(texts)
    return None


def block_parts(block: object) -> list[Part]:
    """The parts of one ``content[]`` block of a conversation message."""
    if not isinstance(block, dict):
        return [Part("unknown", block if isinstance(block, str) else None, {"value": block})]
    kind = block.get("type")
    if kind == "text":
        text = block.get("text")
        return [
            Part(
                "text", text if isinstance(text, str) else "", _without_nulls(block, "type", "text")
            )
        ]
    if kind == "thinking":
        text = block.get("thinking")
        return [
            Part(
                "reasoning",
                text if isinstance(text, str) else "",
                _without_nulls(block, "type", "thinking"),
            )
        ]
    if kind == "tool_use":
        data = {"name": block.get("name"), "input": block.get("input"), "id": block.get("id")}
        data.update(_without_nulls(block, "type", "name", "input", "id"))
        return [Part("tool_call", None, data)]
    if kind == "tool_result":
        content = block.get("content")
        data = {
            "tool_use_id": block.get("tool_use_id"),
            "content": content,
            "is_error": block.get("is_error"),
        }
        data.update(_without_nulls(block, "type", "tool_use_id", "content", "is_error"))
        return [Part("tool_result", _result_text(content), data)]
    text = block.get("text")
    return [Part(part_kind(kind), text if isinstance(text, str) else None, dict(block))]


def _attachment(raw: dict[str, Any]) -> tuple[Part | None, SourceFile]:
    """An uploaded file: its extracted text (if any) as a ``text`` part marked
    ``source: attachment``, and the file itself (never in the export)."""
    name = raw.get("file_name") or raw.get("name")
    name = name if isinstance(name, str) and name else "attachment"
    extracted = raw.get("extracted_content")
    pointer = raw.get("id") if isinstance(raw.get("id"), str) else None
    part = None
    if isinstance(extracted, str):
        part = Part(
            "text", extracted, {"source": "attachment", **_without_nulls(raw, "extracted_content")}
        )
    file = SourceFile(
        name=name,
        mime_type=_mime(raw.get("file_type"), name),
        member=None,
        size=_size(raw.get("file_size")),
        pointer=pointer,
    )
    return part, file


def _file_refs(message: dict[str, Any]) -> Iterator[SourceFile]:
    """``files[]`` / ``files_v2[]`` (images and binaries): names and uuids only."""
    seen: set[str] = set()
    for key in ("files", "files_v2"):
        entries = message.get(key)
        if not isinstance(entries, list):
            continue
        for entry in entries:
            raw = entry if isinstance(entry, dict) else {"file_name": entry}
            name = raw.get("file_name") or raw.get("name")
            name = name if isinstance(name, str) and name else "file"
            uuid = raw.get("file_uuid") or raw.get("uuid")
            uuid = uuid if isinstance(uuid, str) and uuid else None
            key_seen = uuid or name
            if key_seen in seen:
                continue
            seen.add(key_seen)
            mime = _mime(None, name)
            if mime == "application/octet-stream" and raw.get("file_kind") == "image":
                mime = "image/*"
            yield SourceFile(name=name, mime_type=mime, member=None, pointer=uuid)


# -- conversations -------------------------------------------------------------------------
_MESSAGE_KEYS = {
    "uuid",
    "text",
    "content",
    "sender",
    "created_at",
    "parent_message_uuid",
    "attachments",
    "files",
    "files_v2",
}
_CONVERSATION_CONSUMED = {
    "uuid",
    "name",
    "created_at",
    "updated_at",
    "chat_messages",
    "model",
    "current_leaf_message_uuid",
}


class _Counter:
    """Skipped records and warnings of one parse, shared with the ParsedExport."""

    def __init__(self, export: ParsedExport) -> None:
        self.export = export

    def skip(self, key: str, warning: str | None = None) -> None:
        self.export.skipped[key] = self.export.skipped.get(key, 0) + 1
        if warning:
            self.export.warnings.append(warning)


def _message(
    raw: dict[str, Any],
    conversation: str,
    index: int,
    previous: str | None,
    warnings: list[str],
) -> SourceMessage:
    uuid = raw.get("uuid")
    if isinstance(uuid, str) and uuid:
        source_id = uuid
    else:
        source_id = _derived_id(conversation, index, raw.get("created_at"), raw.get("sender"))
        warnings.append(f"message {index} has no uuid; using a derived id {source_id}")
    if "parent_message_uuid" in raw:
        link = raw["parent_message_uuid"]
        parent = link if isinstance(link, str) and link and link != ROOT_SENTINEL else None
    else:
        parent = previous  # legacy exports: a plain list
    sender = raw.get("sender")
    role = _ROLES.get(sender) if isinstance(sender, str) else None
    author = None
    if role is None:
        role = "assistant"
        author = str(sender)[:200] if sender is not None else None
        warnings.append(f"message {source_id} has an unknown sender {sender!r}; kept as assistant")
    parts: list[Part] = []
    content = raw.get("content")
    text = raw.get("text")
    if isinstance(content, list) and content:
        for block in content:
            parts.extend(block_parts(block))
    elif isinstance(content, str) and content:
        parts.append(Part("text", content))
    elif isinstance(text, str):
        parts.append(Part("text", text))
    files: list[SourceFile] = []
    attachments = raw.get("attachments")
    for attachment in attachments if isinstance(attachments, list) else []:
        if isinstance(attachment, dict):
            part, file = _attachment(attachment)
            if part is not None:
                parts.append(part)
            files.append(file)
    files.extend(_file_refs(raw))
    metadata = {k: v for k, v in raw.items() if k not in _MESSAGE_KEYS and v is not None}
    # what the file records do not carry (ids, kinds, previews), without extracted text
    if isinstance(attachments, list) and attachments:
        metadata["attachments"] = [
            _without_nulls(a, "extracted_content") if isinstance(a, dict) else a
            for a in attachments
        ]
    for key in ("files", "files_v2"):
        if isinstance(raw.get(key), list) and raw[key]:
            metadata[key] = raw[key]
    return SourceMessage(
        source_id=source_id,
        parent_source_id=parent,
        role=role,
        parts=parts,
        created_at=iso_time(raw.get("created_at")),
        author=author,
        metadata=metadata,
        files=files,
    )


def conversation(raw: dict[str, Any], counter: _Counter | None = None) -> SourceConversation:
    """One element of ``conversations.json`` (with a ``uuid``) as a SourceConversation."""
    uuid = str(raw["uuid"])
    warnings: list[str] = []
    messages: list[SourceMessage] = []
    seen: set[str] = set()
    chat = raw.get("chat_messages")
    if chat is not None and not isinstance(chat, list):
        warnings.append("chat_messages is not a list; the conversation is kept empty")
        chat = []
    previous: str | None = None
    for index, item in enumerate(chat or []):
        if not isinstance(item, dict):
            warnings.append(f"message {index} is not an object; skipped")
            if counter:
                counter.skip("invalid_messages")
            continue
        message = _message(item, uuid, index, previous, warnings)
        if message.source_id in seen:
            warnings.append(f"message {message.source_id} appears twice; the first is kept")
            if counter:
                counter.skip("duplicate_messages")
            continue
        seen.add(message.source_id)
        messages.append(message)
        previous = message.source_id
    leaf = raw.get("current_leaf_message_uuid")
    model = raw.get("model")
    metadata = {k: v for k, v in raw.items() if k not in _CONVERSATION_CONSUMED and v is not None}
    return SourceConversation(
        source_id=uuid,
        title=_title(raw.get("name")),
        messages=messages,
        created_at=iso_time(raw.get("created_at")),
        updated_at=iso_time(raw.get("updated_at")),
        active_leaf_source_id=leaf if isinstance(leaf, str) and leaf in seen else None,
        model=model if isinstance(model, str) and model else None,
        metadata=metadata,
        warnings=warnings,
    )


# -- design chats ---------------------------------------------------------------------------
def _design_blocks(blocks: list[Any]) -> list[Part]:
    parts: list[Part] = []
    for block in blocks:
        if not isinstance(block, dict):
            parts.extend(block_parts(block))
            continue
        kind = block.get("type")
        text = block.get("text")
        if kind == "text":
            parts.append(
                Part(
                    "text",
                    text if isinstance(text, str) else "",
                    _without_nulls(block, "type", "text"),
                )
            )
        elif kind == "thinking":
            thought = text if isinstance(text, str) else block.get("thinking")
            parts.append(
                Part(
                    "reasoning",
                    thought if isinstance(thought, str) else "",
                    _without_nulls(block, "type", "text", "thinking"),
                )
            )
        elif kind == "tool_call" and isinstance(block.get("toolCall"), dict):
            call: dict[str, Any] = block["toolCall"]
            data = {"name": call.get("name"), "input": call.get("input"), "id": call.get("id")}
            data.update(_without_nulls(call, "name", "input", "id", "output"))
            data.update(_without_nulls(block, "type", "toolCall"))
            parts.append(Part("tool_call", None, data))
            if "output" in call:
                output = call["output"]
                parts.append(
                    Part(
                        "tool_result",
                        _result_text(output),
                        {
                            "tool_use_id": call.get("id"),
                            "name": call.get("name"),
                            "content": output,
                        },
                    )
                )
        else:
            shown = text if isinstance(text, str) else block.get("message")
            parts.append(
                Part(part_kind(kind), shown if isinstance(shown, str) else None, dict(block))
            )
    return parts


_DESIGN_INNER_CONSUMED = {"id", "role", "content", "timestamp", "attachments", "contentBlocks"}
_DESIGN_OUTER_CONSUMED = {"uuid", "role", "created_at", "content"}


def design_chat(raw: dict[str, Any]) -> SourceConversation:
    """One ``design_chats/<uuid>.json`` object as a (linear) SourceConversation."""
    uuid = str(raw["uuid"])
    warnings: list[str] = []
    messages: list[SourceMessage] = []
    seen: set[str] = set()
    previous: str | None = None
    entries = raw.get("messages")
    for index, entry in enumerate(entries if isinstance(entries, list) else []):
        if not isinstance(entry, dict):
            warnings.append(f"design message {index} is not an object; skipped")
            continue
        inner_raw = entry.get("content")
        inner: dict[str, Any] = inner_raw if isinstance(inner_raw, dict) else {}
        ident = entry.get("uuid") or inner.get("id")
        source_id = (
            f"design:{uuid}:{ident}"
            if isinstance(ident, str) and ident
            else f"design:{uuid}:" + _derived_id(index, entry.get("created_at"))
        )
        if source_id in seen:
            warnings.append(f"design message {ident} appears twice; the first is kept")
            continue
        role_raw = entry.get("role") or inner.get("role")
        role = _ROLES.get(role_raw) if isinstance(role_raw, str) else None
        author = None
        if role is None:
            role = "assistant"
            author = str(role_raw)[:200] if role_raw is not None else None
        flat = inner_raw if isinstance(inner_raw, str) else inner.get("content")
        blocks = inner.get("contentBlocks")
        parts = _design_blocks(blocks) if isinstance(blocks, list) else []
        metadata: dict[str, Any] = {}
        if isinstance(flat, str) and flat:
            if not any(p.kind == "text" for p in parts):
                parts.insert(0, Part("text", flat))
            elif flat != "\n\n".join(p.text or "" for p in parts if p.kind == "text"):
                metadata["content_text"] = flat
        elif not parts and isinstance(flat, str):
            parts.append(Part("text", flat))
        files: list[SourceFile] = []
        attachments = inner.get("attachments")
        for attachment in attachments if isinstance(attachments, list) else []:
            if not isinstance(attachment, dict):
                continue
            name = attachment.get("name")
            name = name if isinstance(name, str) and name else "attachment"
            body = attachment.get("content")
            if isinstance(body, str):
                data = {"source": "attachment", **_without_nulls(attachment, "content")}
                parts.append(Part("text", body, data))
            metadata.setdefault("attachments", []).append(_without_nulls(attachment, "content"))
            ident_file = attachment.get("id")
            files.append(
                SourceFile(
                    name=name,
                    mime_type=_mime(None, name),
                    member=None,
                    pointer=ident_file if isinstance(ident_file, str) else None,
                )
            )
        metadata.update(_without_nulls(inner, *_DESIGN_INNER_CONSUMED))
        metadata.update(_without_nulls(entry, *_DESIGN_OUTER_CONSUMED))
        seen.add(source_id)
        messages.append(
            SourceMessage(
                source_id=source_id,
                parent_source_id=previous,
                role=role,
                parts=parts,
                created_at=iso_time(entry.get("created_at")) or iso_time(inner.get("timestamp")),
                author=author,
                metadata=metadata,
                files=files,
            )
        )
        previous = source_id
    metadata = {"claude_kind": "design_chat"}
    metadata.update(_without_nulls(raw, "uuid", "title", "messages", "created_at", "updated_at"))
    return SourceConversation(
        source_id=f"design:{uuid}",
        title=_title(raw.get("title"), "Untitled design chat"),
        messages=messages,
        created_at=iso_time(raw.get("created_at")),
        updated_at=iso_time(raw.get("updated_at")),
        metadata=metadata,
        warnings=warnings,
    )


# -- side files -----------------------------------------------------------------------------
def _projects(source: ExportSource, names: list[str], warnings: list[str]) -> list[Any]:
    found: dict[str, dict[str, Any]] = {}
    loose: list[dict[str, Any]] = []
    for name in _side_files(names, "projects.json") + _project_files(names):
        value = _load(source, name)
        rows = value if isinstance(value, list) else [value]
        for row in rows:
            if not isinstance(row, dict):
                warnings.append(f"{name}: a project entry is not an object; skipped")
                continue
            entry = _without_nulls(row, "docs")
            docs = row.get("docs")
            if isinstance(docs, list):
                entry["docs_count"] = len(docs)
                entry["docs"] = [
                    {
                        **_without_nulls(doc, "content"),
                        "chars": len(doc["content"])
                        if isinstance(doc.get("content"), str)
                        else None,
                    }
                    for doc in docs
                    if isinstance(doc, dict)
                ]
            uuid = row.get("uuid")
            if isinstance(uuid, str) and uuid:
                found.setdefault(uuid, {}).update(entry)
            else:
                loose.append(entry)
    return [*found.values(), *loose]


def _memories(source: ExportSource, names: list[str], warnings: list[str]) -> list[Any]:
    entries: list[Any] = []
    for name in _side_files(names, "memories.json"):
        value = _load(source, name)
        rows = value if isinstance(value, list) else [value]
        for row in rows:
            if isinstance(row, dict) and (
                {"conversations_memory", "memory_files", "project_memories"} & row.keys()
            ):
                entries.append({"shape": "account", "value": row})
            elif isinstance(row, dict) and ({"content", "title", "uuid"} & row.keys()):
                entries.append({"shape": "row", "value": row})
            else:
                warnings.append(f"{name}: a memory entry has an unknown shape; kept as-is")
                entries.append({"shape": "unknown", "value": row})
    return entries


def _users(source: ExportSource, names: list[str]) -> list[dict[str, Any]]:
    users: list[dict[str, Any]] = []
    seen: set[str] = set()
    for name in _side_files(names, "users.json"):
        value = _load(source, name)
        for row in value if isinstance(value, list) else [value]:
            if not isinstance(row, dict):
                continue
            key = str(row.get("uuid") or row.get("email_address") or len(users))
            if key not in seen:
                seen.add(key)
                users.append(row)
    return users


def _conversation_account(source: ExportSource, names: list[str]) -> str | None:
    """``account.uuid`` of the first conversation (when there is no ``users.json``)."""
    for name in names:
        try:
            for prefix, event, value in _events(source, name):
                if prefix == "item.account.uuid" and event == "string":
                    return value if value and value != ROOT_SENTINEL else None
                if prefix == "item" and event == "end_map":
                    break
        except ImportFormatError:
            return None
    return None


# -- duplicates across batch files -----------------------------------------------------------
def _choose_copies(source: ExportSource, names: list[str]) -> dict[str, tuple[int, int]]:
    """For every conversation uuid, the (file, position) of the copy to keep."""
    best: dict[str, tuple[tuple[datetime, int], tuple[int, int]]] = {}
    floor = datetime.min.replace(tzinfo=UTC)
    for file_index, name in enumerate(names):
        position = -1
        uuid: str | None = None
        updated: datetime | None = None
        count = 0
        for prefix, event, value in _events(source, name):
            if prefix == "item" and event == "start_map":
                position += 1
                uuid, updated, count = None, None, 0
            elif prefix == "item.uuid" and event == "string":
                uuid = value
            elif prefix == "item.updated_at" and event == "string":
                updated = iso_time(value)
            elif prefix == "item.chat_messages.item" and event == "start_map":
                count += 1
            elif prefix == "item" and event == "end_map" and uuid:
                rank = (updated or floor, count)
                if uuid not in best or rank > best[uuid][0]:
                    best[uuid] = (rank, (file_index, position))
    return {uuid: where for uuid, (_rank, where) in best.items()}


# -- the importer ---------------------------------------------------------------------------
class ClaudeImporter:
    platform = PLATFORM
    description = "Claude.ai data export (conversations.json, projects, memories, design chats)"

    def detect(self, source: ExportSource) -> bool:
        names = source.names()
        for name in _conversation_candidates(names):
            probe = _probe(source, name, _CONVERSATION_KEYS)
            if probe.shape == "array" and probe.keys >= _CONVERSATION_KEYS:
                return True
            if probe.shape == "array" and probe.empty and _has_claude_side_files(names):
                return True
            if probe.shape == "object" and len(names) == 1 and _is_design_chat(source, name):
                return True
        return any(_is_design_chat(source, name) for name in _design_chat_files(names)[:1])

    def parse(self, source: ExportSource) -> ParsedExport:
        names = source.names()
        conversation_files: list[str] = []
        design_files = _design_chat_files(names)
        for name in _conversation_candidates(names):
            if len(names) == 1 and _probe(source, name, set()).shape == "object":
                design_files = [name]
            else:
                conversation_files.append(name)
        warnings: list[str] = []
        users = _users(source, names)
        projects = _projects(source, names, warnings)
        memories = _memories(source, names, warnings)
        account: str | None = None
        label: str | None = None
        if users:
            user = users[0]
            uuid, email = user.get("uuid"), user.get("email_address")
            account = str(uuid or email) if (uuid or email) else None
            name_source = email.split("@", 1)[0] if isinstance(email, str) and email else None
            label = account_label(name_source) or account_label(
                user.get("full_name") if isinstance(user.get("full_name"), str) else None
            )
            if len(users) > 1:
                warnings.append(f"users.json lists {len(users)} users; the first is the account")
        else:
            account = _conversation_account(source, conversation_files)
        metadata: dict[str, Any] = {"conversation_files": conversation_files}
        if users:
            metadata["user"] = {
                k: users[0][k] for k in ("uuid", "full_name") if users[0].get(k) is not None
            }
        if projects:
            metadata["projects"] = projects
        if memories:
            metadata["memories"] = memories
        if design_files:
            metadata["design_chat_files"] = len(design_files)
        ignored = [n for n in names if _base(n) == "login_history.json"]
        if ignored:
            metadata["not_imported"] = ignored
        export = ParsedExport(
            platform=PLATFORM,
            conversations=iter(()),
            metadata=_fit(metadata, warnings),
            account=account,
            account_label=label,
            warnings=warnings,
        )
        export.conversations = self._stream(source, conversation_files, design_files, export)
        return export

    def _stream(
        self,
        source: ExportSource,
        conversation_files: list[str],
        design_files: list[str],
        export: ParsedExport,
    ) -> Iterator[SourceConversation]:
        counter = _Counter(export)
        chosen = _choose_copies(source, conversation_files) if len(conversation_files) > 1 else None
        seen: set[str] = set()
        for file_index, name in enumerate(conversation_files):
            for position, raw in enumerate(_array_items(source, name)):
                if not isinstance(raw, dict):
                    counter.skip(
                        "invalid_conversations", f"{name}: entry {position} is not an object"
                    )
                    continue
                uuid = raw.get("uuid")
                if not isinstance(uuid, str) or not uuid:
                    counter.skip(
                        "conversations_without_uuid", f"{name}: entry {position} has no uuid"
                    )
                    continue
                if chosen is not None and chosen.get(uuid) != (file_index, position):
                    counter.skip(
                        "duplicate_conversations",
                        f"{name}: conversation {uuid} appears again; the newest copy is kept",
                    )
                    continue
                if uuid in seen:
                    counter.skip(
                        "duplicate_conversations",
                        f"{name}: conversation {uuid} appears twice; the first is kept",
                    )
                    continue
                seen.add(uuid)
                yield conversation(raw, counter)
        for name in design_files:
            raw = _load(source, name)
            if not isinstance(raw, dict) or not isinstance(raw.get("uuid"), str):
                counter.skip("invalid_design_chats", f"{name} is not a design chat; skipped")
                continue
            key = f"design:{raw['uuid']}"
            if key in seen:
                counter.skip("duplicate_conversations", f"{name}: design chat {key} appears twice")
                continue
            seen.add(key)
            yield design_chat(raw)


def _fit(metadata: dict[str, Any], warnings: list[str]) -> dict[str, Any]:
    """``metadata`` within :data:`METADATA_BUDGET`: the largest lists summarised."""
    sizes = {k: len(orjson.dumps(v)) for k, v in metadata.items()}
    total = sum(sizes.values())
    for key in sorted(("memories", "projects"), key=lambda k: -sizes.get(k, 0)):
        if total <= METADATA_BUDGET or key not in metadata:
            break
        entries = metadata[key]
        metadata[key] = {"not_kept": True, "entries": len(entries), "bytes": sizes[key]}
        total -= sizes[key]
        warnings.append(f"{key} ({sizes[key]} bytes of JSON) too large to keep; only counted")
    return metadata


def _has_claude_side_files(names: Iterable[str]) -> bool:
    listed = list(names)
    return any(
        _base(n) in ("users.json", "projects.json", "memories.json") for n in listed
    ) or bool(_project_files(listed) or _design_chat_files(listed))


IMPORTER = ClaudeImporter()
