"""ChatGPT data exports ("Settings → Data controls → Export data").

What is read (``research/formats.md`` §1):

* v1: one ``conversations.json`` (a JSON array of conversations; third-party tools write
  ``{"conversations": [...]}``), attachment bytes as ``file-<id>-<name>`` at the root,
  in ``dalle-generations/`` and in ``user-<id>/`` folders;
* v2: ``conversations-NNN.json`` shards, read in the order ``export_manifest.json`` lists
  them (by number when there is no manifest), every asset as ``file-<id>.dat`` /
  ``file_<hex>.dat`` named by ``conversation_asset_file_names.json``;
* a bare JSON file holding such an array, whatever its name.

Conversation files are streamed one conversation at a time (ijson), so memory does not
grow with the export. Every node of a conversation's ``mapping`` that carries a message
becomes a :class:`SourceMessage`; parents are rebuilt from ``parent`` pointers (never
from ``children``) across the structural ``message: null`` nodes. Every content type is
kept: the known ones as ``text``/``code``/``image``/``file``/``tool_result``/``reasoning``
parts, anything else as a ``chatgpt.<content_type>`` part holding the raw object.
What the ChatGPT UI hides is imported with ``hidden=True`` and the reason in
``metadata["hidden_reason"]``.
"""

from __future__ import annotations

import json
import math
import mimetypes
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import PurePosixPath
from typing import Any, BinaryIO, Final

import ijson  # type: ignore[import-untyped]
import orjson

from chatkeep import limits
from chatkeep.errors import ChatkeepError, ImportFormatError
from chatkeep.importers.jsonio import BOM
from chatkeep.importers.model import (
    ParsedExport,
    SourceConversation,
    SourceFile,
    SourceMessage,
    epoch_seconds,
    iso_time,
)
from chatkeep.importers.source import ExportSource
from chatkeep.model import Part

PLATFORM: Final = "chatgpt"

_CONVERSATIONS: Final = "conversations.json"
_SHARD_RE: Final = re.compile(r"^conversations-(\d+)\.json$")
_MANIFEST: Final = "export_manifest.json"
_ASSET_NAMES: Final = "conversation_asset_file_names.json"
_USER: Final = "user.json"
#: JSON side files whose size and item count go into the export's metadata.
_SIDE_FILES: Final = (
    "message_feedback.json",
    "model_comparisons.json",
    "shared_conversations.json",
    "group_chats.json",
    "shopping.json",
    "sora.json",
    "ads.json",
)
#: A redundant rendering of the conversations (53 MB in one export): never read.
_IGNORED: Final = ("chat.html",)
#: Files only a ChatGPT export has; with them, an empty ``conversations.json`` is ChatGPT's.
_CHATGPT_MARKERS: Final = (_MANIFEST, _USER, "chat.html", *_SIDE_FILES[:3])
_NOT_ASSETS: Final = frozenset(
    {_CONVERSATIONS, _MANIFEST, _ASSET_NAMES, _USER, *_SIDE_FILES, *_IGNORED}
)

_WHITESPACE: Final = b" \t\r\n"
#: How much of a file detection may read to find the first conversation's keys.
_SNIFF_BYTES: Final = 1024 * 1024
#: Largest manifest, asset-name map or user.json read whole.
_SMALL_JSON_BYTES: Final = 64 * 1024 * 1024
#: Metadata beyond this is trimmed (largest keys first); the store caps it at
#: MAX_JSON_BYTES and the import engine adds a few keys of its own.
_METADATA_BUDGET: Final = limits.MAX_JSON_BYTES - 16 * 1024
_MAX_DEPTH: Final = 48

#: ``file-<id>`` / ``file_<hex>`` at the start of an asset's file name.
_ASSET_KEY_RE: Final = re.compile(r"^(file[-_][A-Za-z0-9]+)(?=[-.]|$)")
_MIME_RE: Final = re.compile(r"^[A-Za-z0-9][\w.+-]*/[\w.+-]+$")
_KIND_CHARS_RE: Final = re.compile(r"[^a-z0-9_.-]+")
_LABEL_CHARS_RE: Final = re.compile(r"[^a-z0-9_-]+")
_SECRET_KEY_RE: Final = re.compile(r"phone|password|secret|token|session|cookie|auth", re.I)

_ROLES: Final = {
    "user": "user",
    "assistant": "assistant",
    "system": "system",
    "tool": "tool",
    "function": "tool",  # the legacy name of tool messages
    "developer": "system",
}
#: Content the ChatGPT UI never shows (formats.md §1.7 rule 6, plus the context nodes).
_HIDDEN_CONTENT: Final = frozenset(
    {
        "tether_browsing_display",
        "tether_browsing_code",
        "thoughts",
        "reasoning_recap",
        "sonic_webpage",
        "system_error",
        "user_editable_context",
        "model_editable_context",
        "app_pairing_content",
    }
)
_HIDDEN_TOOLS: Final = frozenset({"bio", "web.run", "web.search"})
_IMAGE_TOOLS: Final = frozenset({"dalle.text2im", "t2uay3k.sj1i4kz"})
#: Message keys mapped to SourceMessage fields rather than copied into metadata.
_MESSAGE_FIELDS: Final = frozenset({"id", "author", "create_time", "content", "metadata"})
#: Conversation keys mapped to SourceConversation fields.
_CONVERSATION_FIELDS: Final = frozenset(
    {"id", "mapping", "title", "create_time", "update_time", "default_model_slug", "is_archived"}
)
#: Metadata keys the parser or the engine sets; raw keys of the same name are renamed.
_RESERVED_KEYS: Final = frozenset({"source_id", "hidden_reason", "dropped_metadata"})
_FORMAT_MIME: Final = {
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "m4a": "audio/mp4",
    "ogg": "audio/ogg",
    "opus": "audio/ogg",
    "webm": "video/webm",
    "mp4": "video/mp4",
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "gif": "image/gif",
}
# Built-in table only: the result must not depend on the machine's /etc/mime.types.
_MIME_TYPES: Final = mimetypes.MimeTypes()


class ChatGPTImporter:
    """The ChatGPT export importer (see the module docstring)."""

    platform = PLATFORM
    description = "ChatGPT data export (conversations.json or conversations-NNN.json shards)"

    def detect(self, source: ExportSource) -> bool:
        """Whether ``source`` is a ChatGPT export, judged by content; reads file heads only."""
        try:
            layout = _locate(source)
            if layout is None:
                return False
            if not layout.files:
                # A manifest that names conversation shards, none of them downloaded.
                return layout.kind == "manifest"
            verdict = _sniff(source, layout.files[0])
        except (ChatkeepError, OSError, ValueError):
            return False
        if verdict == "chatgpt":
            return True
        if verdict == "empty":
            return layout.kind in ("manifest", "shards") or any(
                source.exists(layout.base + marker) for marker in _CHATGPT_MARKERS
            )
        return False

    def parse(self, source: ExportSource) -> ParsedExport:
        layout = _locate(source)
        if layout is None:
            raise ImportFormatError(
                f"{source.label} has no ChatGPT conversations file",
                hint="expected conversations.json, or conversations-NNN.json shards with "
                "export_manifest.json",
            )
        warnings = list(layout.warnings)
        warnings += [
            f"{_MANIFEST} lists {name} but the export does not contain it; "
            "its conversations are not imported"
            for name in layout.missing
        ]
        names = _asset_names(source, layout.base, warnings)
        assets = _Assets(source, names)
        account, label, user_meta = _account(source, layout.base, warnings)
        metadata: dict[str, Any] = {
            "layout": layout.kind,
            "conversation_files": list(layout.files),
            "asset_files": assets.count,
        }
        if layout.missing:
            metadata["missing_conversation_files"] = list(layout.missing)
        if user_meta:
            metadata["user"] = user_meta
        side = _side_files(source, layout.base, warnings)
        if side:
            metadata["side_files"] = side
        ignored = [name for name in _IGNORED if source.exists(layout.base + name)]
        if ignored:
            metadata["ignored_files"] = ignored
        parsed = ParsedExport(
            platform=PLATFORM,
            conversations=iter(()),
            account=account,
            account_label=label,
            metadata=_json_safe(metadata),
            warnings=warnings,
        )
        parsed.conversations = _Reader(source, layout, assets, parsed).conversations()
        return parsed


IMPORTER: Final = ChatGPTImporter()


# -- locating the conversation files ------------------------------------------------------


@dataclass(slots=True)
class _Layout:
    kind: str  # manifest | single | shards | file
    files: list[str]
    base: str = ""  # the folder holding the export's files: "" or "<folder>/"
    missing: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _shard_number(name: str) -> int | None:
    match = _SHARD_RE.match(PurePosixPath(name).name)
    return int(match.group(1)) if match else None


def _locate(source: ExportSource) -> _Layout | None:
    """Where the conversations are. Reads nothing but a manifest."""
    names = source.names()
    layout = _locate_in(source, names, "")
    if layout is not None:
        return layout
    # One level down: an archive of archives opens as one folder per inner zip.
    folders = sorted({name.split("/", 1)[0] + "/" for name in names if "/" in name})
    for folder in folders:
        if source.exists(folder + _MANIFEST):
            found = _from_manifest(source, names, folder)
            if found is not None:
                return found
    singles = [f + _CONVERSATIONS for f in folders if source.exists(f + _CONVERSATIONS)]
    if singles:
        return _Layout("single", singles, base=singles[0].rsplit("/", 1)[0] + "/")
    shards = [n for n in names if n.count("/") == 1 and _SHARD_RE.match(PurePosixPath(n).name)]
    if shards:
        shards.sort(key=lambda n: (_shard_number(n), n))
        return _Layout("shards", shards, base=shards[0].rsplit("/", 1)[0] + "/")
    if len(names) == 1:
        return _Layout("file", [names[0]])
    return None


def _locate_in(source: ExportSource, names: list[str], base: str) -> _Layout | None:
    if source.exists(base + _MANIFEST):
        found = _from_manifest(source, names, base)
        if found is not None:
            return found
    shards = sorted(
        (n for n in names if "/" not in n and _SHARD_RE.match(n)),
        key=lambda n: (_shard_number(n), n),
    )
    if source.exists(base + _CONVERSATIONS):
        layout = _Layout("single", [base + _CONVERSATIONS], base=base)
        if shards:
            layout.warnings.append(
                f"the export has both {_CONVERSATIONS} and {len(shards)} "
                f"conversations-NNN.json shards but no {_MANIFEST}; only {_CONVERSATIONS} "
                "was read"
            )
        return layout
    if shards:
        return _Layout("shards", shards, base=base)
    return None


def _from_manifest(source: ExportSource, names: list[str], base: str) -> _Layout | None:
    """The shards ``export_manifest.json`` lists, in its order; ``None`` if it lists none."""
    manifest = base + _MANIFEST
    try:
        data = _small_json(source, manifest)
    except ImportFormatError as error:
        layout = _locate_in_without_manifest(source, names, base)
        if layout is not None:
            layout.warnings.append(f"{error.message}; the conversation files were found by name")
        return layout
    listed = _manifest_files(data)
    if listed is None:
        return None
    by_base: dict[str, str] = {}
    for name in names:
        if name.count("/") <= 1:
            by_base.setdefault(PurePosixPath(name).name, name)
    files: list[str] = []
    missing: list[str] = []
    for entry in listed:
        if source.exists(base + entry):
            found: str | None = base + entry
        elif source.exists(entry):
            found = entry
        else:
            found = by_base.get(PurePosixPath(entry).name) if "/" not in entry else None
        if found is None:
            missing.append(entry)
        elif found not in files:
            files.append(found)
    layout = _Layout("manifest", files, base=base, missing=missing)
    unlisted = sorted(
        (
            n
            for n in names
            if n.startswith(base)
            and "/" not in n[len(base) :]
            and _SHARD_RE.match(n[len(base) :])
            and n not in files
        ),
        key=lambda n: (_shard_number(n), n),
    )
    for name in unlisted:
        files.append(name)
        layout.warnings.append(f"{name} is not listed in {manifest}; it was read as well")
    return layout


def _locate_in_without_manifest(
    source: ExportSource, names: list[str], base: str
) -> _Layout | None:
    if source.exists(base + _CONVERSATIONS):
        return _Layout("single", [base + _CONVERSATIONS], base=base)
    shards = sorted(
        (n for n in names if n.startswith(base) and _SHARD_RE.match(n[len(base) :])),
        key=lambda n: (_shard_number(n), n),
    )
    return _Layout("shards", shards, base=base) if shards else None


def _manifest_files(data: Any) -> list[str] | None:
    if not isinstance(data, dict):
        return None
    logical = data.get("logical_files")
    entry = logical.get(_CONVERSATIONS) if isinstance(logical, dict) else None
    files = entry.get("files") if isinstance(entry, dict) else None
    if not isinstance(files, list):
        return None
    return [f for f in files if isinstance(f, str) and f]


def _small_json(source: ExportSource, name: str) -> Any:
    try:
        return orjson.loads(source.read_bytes(name, limit=_SMALL_JSON_BYTES).removeprefix(BOM))
    except orjson.JSONDecodeError as exc:
        raise ImportFormatError(f"{name} is not valid JSON: {exc}") from None


# -- reading JSON as a stream -------------------------------------------------------------


class _Stream:
    """A member's bytes without a UTF-8 BOM and leading whitespace, at most ``limit`` of
    them. ``first`` is the first significant byte (``b""`` for an empty file)."""

    def __init__(self, raw: BinaryIO, limit: int | None = None) -> None:
        self._raw = raw
        self._left = limit
        head = self._read_raw(64 * 1024)
        head = head.removeprefix(BOM)
        pending = head.lstrip(_WHITESPACE)
        while not pending and head:
            head = self._read_raw(64 * 1024)
            pending = head.lstrip(_WHITESPACE)
        self._pending = pending
        self.first = pending[:1]

    def _read_raw(self, size: int) -> bytes:
        if self._left is not None:
            if self._left <= 0:
                return b""
            size = self._left if size < 0 else min(size, self._left)
        data = self._raw.read(size)
        if self._left is not None:
            self._left -= len(data)
        return data

    def read(self, size: int = -1) -> bytes:
        if size == 0:
            return b""
        if self._pending:
            if size < 0:
                data, self._pending = self._pending + self._read_raw(-1), b""
            else:
                data, self._pending = self._pending[:size], self._pending[size:]
            return data
        return self._read_raw(size)


def _items_prefix(first: bytes) -> str | None:
    if first == b"[":
        return "item"
    if first == b"{":
        return "conversations.item"
    return None


def _sniff(source: ExportSource, name: str) -> str:
    """``chatgpt``, ``empty`` (an empty array) or ``other``, from the head of ``name``."""
    with source.open_member(name) as raw:
        stream = _Stream(raw, limit=_SNIFF_BYTES)
        prefix = _items_prefix(stream.first)
        if prefix is None:
            return "other"
        return _sniff_events(ijson.parse(stream), prefix)


def _sniff_events(events: Iterable[tuple[str, str, Any]], prefix: str) -> str:
    container = prefix.rsplit(".", 1)[0] if "." in prefix else ""
    opened = False
    items = 0
    keys: set[str] = set()
    try:
        for path, event, value in events:
            if path == container and event == "start_array":
                opened = True
            elif path == container and event == "end_array":
                return "empty" if items == 0 else "other"
            elif path != prefix:
                continue
            elif event == "start_map":
                items += 1
                keys = set()
            elif event == "map_key":
                keys.add(value)
                if "mapping" in keys and keys & {"create_time", "current_node", "conversation_id"}:
                    return "chatgpt"
            elif event == "end_map":
                if _looks_like_conversation(keys):
                    return "chatgpt"
                if items >= 3 or keys & {"chat_messages", "header", "titleUrl"}:
                    return "other"
            else:
                return "other"  # an item that is not an object
    except ijson.JSONError:
        # The head ends mid-file (or the file is broken): judge by what was seen.
        return "chatgpt" if _looks_like_conversation(keys) else "other"
    return "empty" if opened and items == 0 else "other"


def _looks_like_conversation(keys: set[str]) -> bool:
    # DeepSeek's export also has ``mapping``, with ``inserted_at`` instead of create_time.
    return "mapping" in keys and not ("inserted_at" in keys and "create_time" not in keys)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# -- JSON hygiene -----------------------------------------------------------------------------


def _text(value: str) -> str:
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        # Unpaired surrogates (legal in JSON, not in UTF-8): pairs rejoined, the rest U+FFFD.
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return value


def _json_safe(value: Any, depth: int = 0) -> Any:
    """``value`` as JSON the store accepts: no NaN, no huge ints, no odd types or depth."""
    if depth == 0 and _encodes_as_is(value):
        return value  # the common case, checked by the C encoder instead of a Python walk
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**63 else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return _json_safe(float(value), depth)
    if depth >= _MAX_DEPTH and isinstance(value, dict | list):
        try:
            return _text(json.dumps(value, ensure_ascii=False, default=str))
        except (RecursionError, ValueError):
            return "<nested too deeply to keep>"
    if isinstance(value, dict):
        return {_text(str(k)): _json_safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v, depth + 1) for v in value]
    return _text(str(value))


def _encodes_as_is(value: Any) -> bool:
    """Whether the encoder takes ``value`` unchanged: no huge ints, surrogates or odd
    types. NaN and infinities, the one thing it would pass silently, cannot come from
    yajl (it refuses out-of-range numbers; that file is then re-read as Decimals, which
    the encoder refuses and the slow path converts)."""
    try:
        orjson.dumps(value)
    except (orjson.JSONEncodeError, RecursionError):
        return False
    return True


def _fit(
    metadata: dict[str, Any], what: str, warnings: list[str], *, message: str | None = None
) -> dict[str, Any]:
    """``metadata`` (of ``what``, or of its ``message``) within the store's size limit:
    the largest keys dropped, and said so."""
    try:
        size = len(orjson.dumps(metadata))
    except (TypeError, orjson.JSONEncodeError):
        metadata = _json_safe(metadata)
        size = len(orjson.dumps(metadata))
    if size <= _METADATA_BUDGET:
        return metadata
    sizes = sorted(((len(orjson.dumps(v)), k) for k, v in metadata.items()), reverse=True)
    dropped: dict[str, int] = {}
    for key_size, key in sizes:
        if size <= _METADATA_BUDGET:
            break
        if key in _RESERVED_KEYS:
            continue
        del metadata[key]
        dropped[key] = key_size
        size -= key_size
    metadata["dropped_metadata"] = dropped
    if message is not None:
        what = f"{what} message {message!r}"
    warnings.append(f"{what}: metadata too large to store; dropped {', '.join(sorted(dropped))}")
    return metadata


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _time(value: Any) -> Any:
    return epoch_seconds(value) or iso_time(value)


# -- attachments ----------------------------------------------------------------------------


def _asset_names(source: ExportSource, base: str, warnings: list[str]) -> dict[str, str]:
    """``conversation_asset_file_names.json``: asset file name → original name."""
    name = base + _ASSET_NAMES
    if not source.exists(name):
        return {}
    try:
        data = _small_json(source, name)
    except ImportFormatError as error:
        warnings.append(f"{error.message}; assets keep their stored names")
        return {}
    if not isinstance(data, dict):
        warnings.append(f"{name} is not a JSON object; assets keep their stored names")
        return {}
    return {_text(k): _text(v) for k, v in data.items() if isinstance(v, str) and v}


def _asset_rank(name: str) -> int:
    """Where an asset lives, in the order they are searched (formats.md §1.9)."""
    if "/" not in name:
        return 0
    top = name.split("/", 1)[0]
    if top == "dalle-generations":
        return 1
    if top.startswith("user-"):
        return 2
    return 3


def _is_asset(name: str) -> bool:
    path = PurePosixPath(name)
    if name.count("/") <= 1 and (path.name in _NOT_ASSETS or _SHARD_RE.match(path.name)):
        return False
    return not (name.startswith("textdocs/") or "/textdocs/" in name)


def _safe_asset_id(asset_id: str) -> bool:
    return (
        0 < len(asset_id) <= 255
        and "/" not in asset_id
        and "\\" not in asset_id
        and ".." not in asset_id
        and asset_id.isprintable()
    )


def _asset_id(pointer: str) -> str:
    """``file-service://file-abc`` → ``file-abc``; ``sediment://file_0a1`` → ``file_0a1``."""
    return pointer.split("://", 1)[1] if "://" in pointer else pointer


_MAGIC: Final = (
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (0, b"%PDF-", "application/pdf"),
    (0, b"ID3", "audio/mpeg"),
    (0, b"OggS", "audio/ogg"),
    (0, b"fLaC", "audio/flac"),
    (0, b"\x1a\x45\xdf\xa3", "video/webm"),
)


def _sniff_mime(head: bytes) -> str | None:
    """The type the first bytes of a file reveal (PNG, JPEG, GIF, WebP, PDF, WAV, MP3…)."""
    for offset, magic, mime in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return mime
    if head[:4] == b"RIFF" and head[8:12] in (b"WEBP", b"WAVE"):
        return "image/webp" if head[8:12] == b"WEBP" else "audio/wav"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return "audio/mpeg"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand.startswith(b"M4A"):
            return "audio/mp4"
        return "video/quicktime" if brand == b"qt  " else "video/mp4"
    return None


def _guess_mime(name: str) -> str | None:
    guessed, _ = _MIME_TYPES.guess_type(name, strict=False)
    return guessed


def _declared_mime(value: Any) -> str | None:
    if isinstance(value, str) and len(value) <= 200 and _MIME_RE.match(value.strip()):
        return value.strip().lower()
    return None


def _file_name(value: str | None) -> str | None:
    """A display name for a file: no folders, no control characters, not too long."""
    if not value:
        return None
    name = value.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return name[:255] or None


class _Assets:
    """The export's attachment files, found by the provider's asset id."""

    def __init__(self, source: ExportSource, original_names: dict[str, str]) -> None:
        self._source = source
        self._original = original_names
        self._by_key: dict[str, str] = {}
        self._by_name: dict[str, str] = {}
        self._mime: dict[str, str | None] = {}
        members = sorted(
            (n for n in source.names() if _is_asset(n)), key=lambda n: (_asset_rank(n), n)
        )
        for member in members:
            base = PurePosixPath(member).name
            self._by_name.setdefault(base, member)
            match = _ASSET_KEY_RE.match(base)
            if match:
                self._by_key.setdefault(match.group(1), member)
        self.count = len(self._by_key)

    def find(self, asset_id: str) -> str | None:
        """The member holding ``asset_id`` (a safe id), or ``None``."""
        return (
            self._by_key.get(asset_id)
            or self._by_name.get(asset_id)
            or self._by_name.get(asset_id + ".dat")
        )

    def mapped_name(self, asset_id: str) -> str | None:
        """The original name the asset-name map gives ``asset_id``, present or not."""
        for key in (asset_id + ".dat", asset_id):
            if key in self._original:
                return _file_name(self._original[key])
        return None

    def original_name(self, member: str) -> str:
        base = PurePosixPath(member).name
        mapped = self._original.get(member) or self._original.get(base)
        if mapped:
            return _file_name(mapped) or base
        match = _ASSET_KEY_RE.match(base)
        if match and base[len(match.group(1)) : len(match.group(1)) + 1] == "-":
            return base[len(match.group(1)) + 1 :] or base
        return base

    def size(self, member: str) -> int:
        return self._source.size(member)

    def sniffed_mime(self, member: str) -> str | None:
        if member not in self._mime:
            try:
                head = self._source.head(member, 32, keep=True)
            except (ChatkeepError, OSError):
                head = b""
            self._mime[member] = _sniff_mime(head)
        return self._mime[member]


class _MessageFiles:
    """The files one message refers to, each asset once."""

    __slots__ = ("_assets", "_attachments", "files", "seen", "unsafe")

    def __init__(self, assets: _Assets, attachments: dict[str, dict[str, Any]]) -> None:
        self._assets = assets
        self._attachments = attachments
        self.files: list[SourceFile] = []
        self.seen: set[str] = set()
        self.unsafe: list[str] = []

    def pointer(self, part: dict[str, Any]) -> None:
        pointer = _str(part.get("asset_pointer"))
        if not pointer:
            return
        asset_id = _asset_id(pointer)
        if asset_id in self.seen:
            return
        self.seen.add(asset_id)
        described = self._attachments.get(asset_id, {})
        size = part.get("size_bytes")
        self.files.append(
            self._file(
                asset_id,
                pointer=pointer,
                name=_str(described.get("name")),
                mime=described.get("mime_type"),
                size=size if _is_size(size) else described.get("size"),
                extension=_str(part.get("format")),
            )
        )

    def attachment(self, described: dict[str, Any]) -> None:
        raw_id = _str(described.get("id"))
        asset_id = _asset_id(raw_id) if raw_id else None
        if asset_id is not None:
            if asset_id in self.seen:
                return
            self.seen.add(asset_id)
        self.files.append(
            self._file(
                asset_id,
                pointer=raw_id,
                name=_str(described.get("name")),
                mime=described.get("mime_type"),
                size=described.get("size"),
                extension=None,
            )
        )

    def _file(
        self,
        asset_id: str | None,
        *,
        pointer: str | None,
        name: str | None,
        mime: Any,
        size: Any,
        extension: str | None,
    ) -> SourceFile:
        member = None
        if asset_id is not None:
            if _safe_asset_id(asset_id):
                member = self._assets.find(asset_id)
            else:
                self.unsafe.append(asset_id)
        if member is not None:
            shown = _file_name(name) or self._assets.original_name(member)
            mime_type = (
                self._assets.sniffed_mime(member) or _declared_mime(mime) or _guess_mime(shown)
            )
            return SourceFile(
                name=shown,
                mime_type=mime_type or "application/octet-stream",
                member=member,
                size=self._assets.size(member),
                pointer=pointer,
            )
        absent = _file_name(name)
        if absent is None and asset_id is not None and _safe_asset_id(asset_id):
            absent = self._assets.mapped_name(asset_id)
            if absent is None:
                suffix = f".{extension}" if extension and extension.isalnum() else ""
                absent = asset_id + suffix
        absent = absent or "attachment"
        mime_type = (
            _declared_mime(mime)
            or _FORMAT_MIME.get((extension or "").lower())
            or _guess_mime(absent)
            or "application/octet-stream"
        )
        return SourceFile(
            name=absent,
            mime_type=mime_type,
            member=None,
            size=size if _is_size(size) else None,
            pointer=pointer,
        )


def _is_size(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63


def _nested_pointers(value: Any, depth: int = 0) -> Iterator[dict[str, Any]]:
    """Every asset pointer object inside ``value`` (e.g. a voice part's audio and frames)."""
    if depth > 8:
        return
    if isinstance(value, dict):
        if isinstance(value.get("asset_pointer"), str):
            yield value
        for item in value.values():
            if isinstance(item, dict | list):
                yield from _nested_pointers(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            yield from _nested_pointers(item, depth + 1)


# -- account and side files ------------------------------------------------------------------


def _account(
    source: ExportSource, base: str, warnings: list[str]
) -> tuple[str | None, str | None, dict[str, Any]]:
    name = base + _USER
    if not source.exists(name):
        return None, None, {}
    try:
        data = _small_json(source, name)
    except ImportFormatError as error:
        warnings.append(f"{error.message}; the account is unknown")
        return None, None, {}
    if not isinstance(data, dict):
        warnings.append(f"{name} is not a JSON object; the account is unknown")
        return None, None, {}
    user = {k: v for k, v in data.items() if not _SECRET_KEY_RE.search(k)}
    user_id = _str(data.get("id"))
    email = _str(data.get("email"))
    account = (user_id or "").strip() or (email or "").strip().lower() or None
    label = None
    if email and "@" in email:
        local = _LABEL_CHARS_RE.sub("-", email.split("@", 1)[0].lower())
        label = local.strip("-_")[:32].strip("-_") or None
    return account, label, _json_safe(user)


def _side_files(source: ExportSource, base: str, warnings: list[str]) -> dict[str, Any]:
    """Size and top-level item count of each JSON side file (streamed, never kept)."""
    found: dict[str, Any] = {}
    for side in _SIDE_FILES:
        name = base + side
        if not source.exists(name):
            continue
        entry: dict[str, Any] = {"bytes": source.size(name)}
        try:
            entry["items"] = _count_items(source, name)
        except ijson.JSONError as exc:
            warnings.append(f"{name} is not valid JSON ({_first_line(exc)}); not counted")
        found[side] = entry
    return found


def _count_items(source: ExportSource, name: str) -> int:
    """Items of a top-level array, or keys of a top-level object."""
    with source.open_member(name) as raw:
        stream = _Stream(raw)
        if stream.first not in (b"[", b"{"):
            return 0
        count = 0
        for path, event, _ in ijson.parse(stream):
            if stream.first == b"[":
                if path == "item" and event not in ("end_map", "end_array", "map_key"):
                    count += 1
            elif path == "" and event == "map_key":
                count += 1
        return count


# -- conversations ------------------------------------------------------------------------------


class _Reader:
    """Turns the conversation files into SourceConversations, one at a time."""

    def __init__(
        self, source: ExportSource, layout: _Layout, assets: _Assets, parsed: ParsedExport
    ) -> None:
        self._source = source
        self._layout = layout
        self._assets = assets
        self._parsed = parsed
        self._seen: set[str] = set()

    def conversations(self) -> Iterator[SourceConversation]:
        for name in self._layout.files:
            yield from self._file(name)

    def _file(self, name: str) -> Iterator[SourceConversation]:
        for index, item in enumerate(self._items(name), start=1):
            conversation = self._conversation(item, name, index)
            if conversation is not None:
                yield conversation

    def _items(self, name: str) -> Iterator[Any]:
        """The items of one conversations file, streamed. The C parser refuses numbers
        beyond 64 bits; a file holding one is read again with ijson's Python parser
        (slower, exact), skipping the items already given."""
        given = 0
        backend: Any = ijson
        options: dict[str, bool] = {"use_float": True}
        while True:
            prefix: str | None = None
            try:
                with self._source.open_member(name) as raw:
                    stream = _Stream(raw)
                    prefix = _items_prefix(stream.first)
                    if prefix is None:
                        what = "empty" if not stream.first else "not a JSON array"
                        raise ImportFormatError(f"{name} is {what}, not a list of conversations")
                    for index, item in enumerate(backend.items(stream, prefix, **options)):
                        if index >= given:
                            given += 1
                            yield item
            except ijson.JSONError as exc:
                if backend is ijson and "overflow" in str(exc):
                    backend, options = ijson.get_backend("python"), {}
                    continue
                raise ImportFormatError(
                    f"{name} is not valid JSON (truncated or malformed) after {given} "
                    f"conversations: {_first_line(exc)}",
                    hint="download the export again; nothing was imported",
                ) from None
            if prefix != "item" and given == 0:
                self._parsed.warnings.append(f"{name} holds no 'conversations' array")
            return

    def _skip(self, reason: str, warning: str) -> None:
        self._parsed.skipped[reason] = self._parsed.skipped.get(reason, 0) + 1
        self._parsed.warnings.append(warning)

    def _conversation(self, item: Any, name: str, index: int) -> SourceConversation | None:
        if not isinstance(item, dict):
            self._skip("not_a_conversation", f"{name}: item {index} is not a conversation object")
            return None
        try:
            size: int | None = len(orjson.dumps(item))
            raw: dict[str, Any] = item  # what _json_safe gives for JSON the encoder takes
        except (orjson.JSONEncodeError, RecursionError):
            size, raw = None, _json_safe(item)
        source_id = _conversation_id(raw)
        if source_id is None:
            self._skip(
                "conversation_without_id",
                f"{name}: conversation {index} ({raw.get('title')!r}) has no id; skipped",
            )
            return None
        label = f"conversation {source_id!r}"
        warnings: list[str] = []
        if source_id in self._seen:
            warnings.append(f"{label}: appears more than once in the export")
        self._seen.add(source_id)
        # A message's metadata holds parts of its raw message, each at most twice, under
        # keys at most 9 characters longer: under 5x the message's size, plus a few
        # short keys. In a conversation that small no message needs _fit.
        fits = size is not None and 5 * size + 4096 <= _METADATA_BUDGET
        tree = _Tree(self._assets, label, warnings, metadata_fits=fits)
        mapping = raw.get("mapping")
        if mapping is None:
            warnings.append(f"{label}: has no mapping; imported with no messages")
        elif not isinstance(mapping, dict):
            warnings.append(f"{label}: its mapping is not an object; imported with no messages")
        else:
            tree.build(mapping)
            if not tree.messages:
                warnings.append(f"{label}: has no messages")
        current = raw.get("current_node")
        active = tree.active_leaf(current) if tree.messages else None
        metadata = {k: v for k, v in raw.items() if k not in _CONVERSATION_FIELDS}
        if metadata.get("conversation_id") == source_id:
            del metadata["conversation_id"]
        if raw.get("id") not in (None, source_id):
            metadata["id"] = raw.get("id")
        metadata["source_file"] = name
        if tree.custom_instructions is not None:
            metadata["custom_instructions"] = tree.custom_instructions
        title = raw.get("title")
        return SourceConversation(
            source_id=source_id,
            title=title if isinstance(title, str) and title.strip() else "Untitled",
            messages=tree.messages,
            created_at=_time(raw.get("create_time")),
            updated_at=_time(raw.get("update_time")),
            active_leaf_source_id=active,
            model=_str(raw.get("default_model_slug")) or None,
            metadata=_fit(metadata, label, warnings),
            archived=raw.get("is_archived") is True,
            warnings=warnings,
        )


def _conversation_id(raw: dict[str, Any]) -> str | None:
    for key in ("id", "conversation_id"):
        value = raw.get(key)
        if isinstance(value, int | str) and not isinstance(value, bool) and str(value).strip():
            return str(value)
    return None


class _Tree:
    """One conversation's ``mapping`` as SourceMessages with rebuilt parents."""

    def __init__(
        self, assets: _Assets, label: str, warnings: list[str], *, metadata_fits: bool = False
    ) -> None:
        self._assets = assets
        self._label = label
        self._warnings = warnings
        self._metadata_fits = metadata_fits
        self._nodes: dict[str, dict[str, Any]] = {}
        self._anchors: dict[str, str | None] = {}
        self.messages: list[SourceMessage] = []
        self.custom_instructions: dict[str, Any] | None = None

    def build(self, mapping: dict[str, Any]) -> None:
        for key, node in mapping.items():
            if isinstance(node, dict):
                self._nodes[key] = node
            else:
                self._warnings.append(f"{self._label}: node {key!r} is not an object; skipped")
        for key, node in self._nodes.items():
            message = node.get("message")
            if isinstance(message, dict):
                source_id = key or _str(node.get("id")) or _str(message.get("id")) or key
                parent = node.get("parent")
                above = self._nodes.get(parent) if isinstance(parent, str) else None
                if above is None or not isinstance(above.get("message"), dict):
                    # Not simply a node with a message: walk up (what _anchor says of a
                    # node with a message is that node).
                    parent = self._anchor(parent)
                self.messages.append(self._message(source_id, parent, message))
            elif message is not None:
                self._warnings.append(
                    f"{self._label}: node {key!r} has a message that is not an object; skipped"
                )

    def _has_message(self, key: str) -> bool:
        return isinstance(self._nodes[key].get("message"), dict)

    def _anchor(self, start: Any) -> str | None:
        """The nearest node at or above ``start`` with a message, a parent id that is not
        in the mapping (left for the engine to report), or ``None`` (a root)."""
        path: list[str] = []
        current = start
        result: str | None
        while True:
            if isinstance(current, int) and not isinstance(current, bool):
                current = str(current)
            if not isinstance(current, str):
                result = None
                break
            if current in self._anchors:
                result = self._anchors[current]
                break
            if current not in self._nodes or self._has_message(current):
                result = current
                break
            if current in path:
                self._warnings.append(
                    f"{self._label}: empty nodes form a parent cycle at {current!r}; "
                    "the messages below it start a new root"
                )
                result = None
                break
            path.append(current)
            current = self._nodes[current].get("parent")
        for key in path:
            self._anchors[key] = result
        return result

    def active_leaf(self, current: Any) -> str | None:
        newest = "the newest leaf is used as the active branch"
        if not isinstance(current, str) or not current:
            self._warnings.append(f"{self._label}: has no current_node; {newest}")
            return None
        if current not in self._nodes:
            self._warnings.append(
                f"{self._label}: its current_node {current!r} is not in the mapping; {newest}"
            )
            return None
        leaf = self._anchor(current)
        if leaf is None or leaf not in self._nodes:
            self._warnings.append(
                f"{self._label}: its current_node {current!r} has no message above it; {newest}"
            )
            return None
        return leaf

    # -- one message -------------------------------------------------------------------------
    def _message(self, source_id: str, parent: str | None, raw: dict[str, Any]) -> SourceMessage:
        author_raw = raw.get("author")
        author: dict[str, Any] = author_raw if isinstance(author_raw, dict) else {}
        raw_role = author.get("role")
        role = _ROLES.get(raw_role) if isinstance(raw_role, str) else None
        if role is None:
            self._warnings.append(
                f"{self._label}: message {source_id!r} has an unknown role {raw_role!r}; "
                "stored as tool"
            )
            role = "tool"
        name = author.get("name")
        if not isinstance(name, str):
            name = None
        meta_value = raw.get("metadata")
        meta_raw: dict[str, Any] = meta_value if isinstance(meta_value, dict) else {}
        content = raw.get("content")
        content_type = content.get("content_type") if isinstance(content, dict) else None
        described: dict[str, dict[str, Any]] = {}
        listed = meta_raw.get("attachments")
        uploads = [a for a in listed if isinstance(a, dict)] if isinstance(listed, list) else ()
        for upload in uploads:
            upload_id = _str(upload.get("id"))
            if upload_id:
                described.setdefault(_asset_id(upload_id), upload)
        files = _MessageFiles(self._assets, described)
        parts = _parts(content, files)
        for upload in uploads:
            files.attachment(upload)
        for unsafe in files.unsafe:
            self._warnings.append(
                f"{self._label}: message {source_id!r} refers to an asset with an unsafe "
                f"id {unsafe!r}; recorded as missing"
            )
        if self.custom_instructions is None and (
            content_type == "user_editable_context" or "user_context_message_data" in meta_raw
        ):
            self._note_custom_instructions(source_id, content_type, content, meta_raw)
        reason = _hidden_reason(role, name, content_type, raw, meta_raw, parts, files.files)

        metadata: dict[str, Any] = {}
        if reason is not None:
            metadata["hidden_reason"] = reason
        if content_type is not None:
            metadata["content_type"] = content_type
        if (
            isinstance(content, dict)
            and content_type in ("text", "multimodal_text")
            and not (len(content) == 2 and "parts" in content)
        ):
            # Parts are the content; keep whatever else the content object carries.
            extra = _without(content, "content_type", "parts")
            if extra:
                metadata["content_extra"] = extra
        message_id = raw.get("id")
        if message_id is not None and message_id != source_id:
            metadata["message_id"] = message_id
        if raw_role != role:
            metadata["author_role"] = raw_role
        if isinstance(author.get("metadata"), dict) and author["metadata"]:
            metadata["author_metadata"] = author["metadata"]
        # Every other key is kept: under its own name unless that is taken (or reserved),
        # then under ``message.<key>`` / ``metadata.<key>``.
        # (Without a clash, as almost always, in one step.)
        if metadata.keys().isdisjoint(raw) and _RESERVED_KEYS.isdisjoint(raw):
            metadata.update({k: v for k, v in raw.items() if k not in _MESSAGE_FIELDS})
        else:
            for key, value in raw.items():
                if key not in _MESSAGE_FIELDS:
                    if key in metadata or key in _RESERVED_KEYS:
                        key = "message." + key
                    metadata.setdefault(key, value)
        if metadata.keys().isdisjoint(meta_raw) and _RESERVED_KEYS.isdisjoint(meta_raw):
            metadata.update(meta_raw)
        else:
            for key, value in meta_raw.items():
                if key in metadata or key in _RESERVED_KEYS:
                    key = "metadata." + key
                metadata.setdefault(key, value)
        model = meta_raw.get("model_slug")
        created = raw.get("create_time")
        return SourceMessage(
            source_id=source_id,
            parent_source_id=parent,
            role=role,
            parts=parts,
            created_at=epoch_seconds(created) or iso_time(created),
            author=name,
            model=model if isinstance(model, str) and model else None,
            metadata=metadata
            if self._metadata_fits
            else _fit(metadata, self._label, self._warnings, message=source_id),
            hidden=reason is not None,
            files=files.files,
        )

    def _note_custom_instructions(
        self, source_id: str, content_type: Any, content: Any, meta: dict[str, Any]
    ) -> None:
        if self.custom_instructions is not None:
            return
        if content_type == "user_editable_context" and isinstance(content, dict):
            found = {k: v for k, v in content.items() if k != "content_type"}
        elif isinstance(meta.get("user_context_message_data"), dict):
            found = dict(meta["user_context_message_data"])
        else:
            return
        found["source_message_id"] = source_id
        self.custom_instructions = found


# -- content ---------------------------------------------------------------------------------


def _kind(content_type: Any) -> str:
    """The part kind for a ChatGPT-specific content type: ``chatgpt.<type>``."""
    cleaned = ""
    if isinstance(content_type, str):
        cleaned = _KIND_CHARS_RE.sub("_", content_type.lower()).strip("_.-")
    return f"chatgpt.{cleaned or 'unknown'}"[:64]


def _generic_text(obj: dict[str, Any]) -> str | None:
    for key in ("text", "result", "content", "model_set_context"):
        value = obj.get(key)
        if isinstance(value, str):
            return value
    parts = obj.get("parts")
    if isinstance(parts, list):
        strings = [p for p in parts if isinstance(p, str)]
        if strings:
            return "\n\n".join(strings)
    context = [obj[k] for k in ("user_profile", "user_instructions") if _str(obj.get(k))]
    return "\n\n".join(context) if context else None


def _without(obj: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in keys}


def _thoughts_text(thoughts: Any) -> str:
    pieces: list[str] = []
    for thought in thoughts if isinstance(thoughts, list) else []:
        if isinstance(thought, str):
            piece = thought
        elif isinstance(thought, dict):
            piece = "\n".join(
                t for t in (_str(thought.get("summary")), _str(thought.get("content"))) if t
            )
        else:
            continue
        if piece:
            pieces.append(piece)
    return "\n\n".join(pieces)


def _parts(content: Any, files: _MessageFiles) -> list[Part]:
    if content is None:
        return []
    if not isinstance(content, dict):
        return [Part("chatgpt.unknown", None, {"content": content})]
    content_type = content.get("content_type")
    if content_type in ("text", "multimodal_text") and isinstance(content.get("parts"), list):
        parts: list[Part] = []
        for item in content["parts"]:
            if isinstance(item, str):  # the common case, without a call
                parts.append(Part("text", item))
                continue
            part = _item_part(item, files)
            if part is not None:
                parts.append(part)
        return parts
    if content_type == "code":
        data = _without(content, "content_type", "text")
        return [Part("code", _str(content.get("text")) or "", data)]
    if content_type == "execution_output":
        return [Part("tool_result", _str(content.get("text")), _without(content, "text"))]
    if content_type == "thoughts":
        return [Part("reasoning", _thoughts_text(content.get("thoughts")), dict(content))]
    if content_type == "reasoning_recap":
        return [Part("reasoning", _str(content.get("content")), _without(content, "content"))]
    for pointer in _nested_pointers(content):
        files.pointer(pointer)
    return [Part(_kind(content_type), _generic_text(content), dict(content))]


def _item_part(item: Any, files: _MessageFiles) -> Part | None:
    """One entry of ``content.parts``: a string or a typed object."""
    if item is None:
        return None
    if isinstance(item, str):
        return Part("text", item)
    if not isinstance(item, dict):
        return Part("chatgpt.part", None, {"value": item})
    part_type = item.get("content_type")
    if part_type == "audio_transcription":
        data = {"source": "audio_transcription", **_without(item, "content_type", "text")}
        return Part("text", _str(item.get("text")) or "", data)
    pointers = list(_nested_pointers(item))
    for pointer in pointers:
        files.pointer(pointer)
    if part_type == "image_asset_pointer":
        return Part("image", None, dict(item))
    if pointers:  # audio, video, real-time voice/video containers, future pointer types
        return Part("file", None, dict(item))
    return Part(_kind(part_type), _generic_text(item), dict(item))


def _is_empty(parts: list[Part], files: list[SourceFile]) -> bool:
    if files:
        return False
    if len(parts) == 1:  # most messages: without a generator
        return parts[0].kind == "text" and not (parts[0].text or "").strip()
    return all(p.kind == "text" and not (p.text or "").strip() for p in parts)


def _hidden_reason(
    role: str,
    name: str | None,
    content_type: Any,
    raw: dict[str, Any],
    meta: dict[str, Any],
    parts: list[Part],
    files: list[SourceFile],
) -> str | None:
    """Why the ChatGPT UI would not show this message (formats.md §1.7), or ``None``."""
    if meta.get("is_visually_hidden_from_conversation") is True:
        return "visually_hidden"
    if isinstance(meta.get("user_context_message_data"), dict):
        return "custom_instructions"  # kept in the conversation's metadata as well
    if role == "system" and meta.get("is_user_system_message") is not True:
        return "system_message"
    if isinstance(content_type, str) and content_type in _HIDDEN_CONTENT:
        return f"content_type:{content_type}"
    recipient = raw.get("recipient")
    if role == "assistant" and isinstance(recipient, str) and recipient != "all":
        return "tool_call"
    if content_type == "code":
        return "code"
    if role == "tool":
        if name in _HIDDEN_TOOLS:
            return f"tool:{name}"
        if name is not None and name.startswith("browser") and content_type != "tether_quote":
            return "tool:browser"
        if name in _IMAGE_TOOLS and content_type == "text":
            return "tool_status"
    weight = raw.get("weight")
    if isinstance(weight, (int, float)) and not isinstance(weight, bool) and weight == 0:
        return "weight_zero"
    if _is_empty(parts, files):
        return "empty"
    return None
