"""Checks on what callers hand to the store, run before anything is written.

Every failure is an :class:`~chatkeep.errors.InvalidInput` (or one of its subclasses)
that names the problem, raised before the store changes.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson

from chatkeep import limits
from chatkeep.errors import InvalidInput, LimitExceeded
from chatkeep.model import KNOWN_PART_KINDS, ROLES, NewMessage, Part, canonical_json

_PART_KIND_RE = re.compile(r"[a-z][a-z0-9_.-]{0,63}")
#: Kinds that match _PART_KIND_RE: checked by a set lookup instead of the pattern.
_VALID_KINDS = frozenset(KNOWN_PART_KINDS)
_MAX_JSON_DEPTH = 64


@dataclass(frozen=True, slots=True)
class CheckedMessage:
    """A :class:`NewMessage` that passed every check, with its content encoded."""

    new: NewMessage
    content: str
    content_sha256: str
    metadata: str


def _check_text(what: str, value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(
            f"{what} is not valid Unicode (it holds an unpaired surrogate)",
            hint="send text as UTF-8",
        ) from None


def check_json_value(what: str, value: Any, depth: int = 0) -> None:
    """Refuse what JSON cannot carry back unchanged: NaN, huge ints, odd types."""
    if depth > _MAX_JSON_DEPTH:
        raise InvalidInput(f"{what} is nested deeper than {_MAX_JSON_DEPTH} levels")
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, str):
        _check_text(what, value)
    elif isinstance(value, int):
        if not -(2**63) <= value < 2**63:
            raise InvalidInput(f"{what} holds an integer outside the 64-bit range")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInput(f"{what} holds a number that is not finite ({value})")
    elif isinstance(value, list):
        for item in value:
            check_json_value(what, item, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidInput(f"{what} has a key that is not a string: {key!r}")
            _check_text(what, key)
            check_json_value(what, item, depth + 1)
    else:
        raise InvalidInput(f"{what} holds a {type(value).__name__}, which JSON cannot store")


def encode_json_object(what: str, value: Any, max_bytes: int = limits.MAX_JSON_BYTES) -> str:
    if not isinstance(value, dict):
        raise InvalidInput(f"{what} must be a JSON object")
    return encode_json(what, value, max_bytes)


def encode_json(what: str, value: Any, max_bytes: int = limits.MAX_JSON_BYTES) -> str:
    check_json_value(what, value)
    encoded = canonical_json(value)
    if len(encoded) > max_bytes:
        raise LimitExceeded(f"{what} is {len(encoded)} bytes; the limit is {max_bytes}")
    return encoded.decode("utf-8")


def check_short_text(what: str, value: str | None, *, required: bool = False) -> str | None:
    if value is None:
        if required:
            raise InvalidInput(f"{what} is required")
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be text")
    _check_text(what, value)
    if "\x00" in value:
        raise InvalidInput(f"{what} must not contain NUL characters")
    if len(value) > limits.MAX_TITLE_LENGTH:
        raise LimitExceeded(f"{what} is longer than {limits.MAX_TITLE_LENGTH} characters")
    if required and not value.strip():
        raise InvalidInput(f"{what} must not be empty")
    return value


def check_tags(tags: Iterable[str]) -> list[str]:
    if isinstance(tags, str):
        raise InvalidInput("tags must be a list of strings, not one string")
    checked: list[str] = []
    for tag in tags:
        if not isinstance(tag, str) or not tag.strip():
            raise InvalidInput(f"tag {tag!r} is empty or not text")
        if len(tag) > limits.MAX_TAG_LENGTH or any(ch in tag for ch in "\x00\n\r\t"):
            raise InvalidInput(
                f"tag {tag[:40]!r} is invalid",
                hint=f"tags are one line of at most {limits.MAX_TAG_LENGTH} characters",
            )
        _check_text("tag", tag)
        if tag not in checked:
            checked.append(tag)
    return checked


def _check_part(index: int, part: Part, *, json_checked: bool) -> None:
    if not isinstance(part, Part):
        raise InvalidInput(f"content part {index} is not a Part")
    kind = part.kind
    if not isinstance(kind, str) or (
        kind not in _VALID_KINDS and _PART_KIND_RE.fullmatch(kind) is None
    ):
        raise InvalidInput(
            f"content part {index} has an invalid kind {part.kind!r}",
            hint="kinds are short lower-case words such as text, code, tool_call",
        )
    if part.text is not None and not isinstance(part.text, str):
        raise InvalidInput(f"content part {index}: text must be a string")
    # Unpaired surrogates in the text are caught when the content is encoded, saving a
    # second pass over up to MAX_MESSAGE_BYTES of text.
    if not isinstance(part.data, dict):
        raise InvalidInput(f"content part {index}: data must be a JSON object")
    if not json_checked:
        check_json_value(f"content part {index} data", part.data)


def check_moment(what: str, value: object) -> datetime:
    """A datetime that can be stored as UTC (naive means UTC)."""
    if not isinstance(value, datetime):
        raise InvalidInput(f"{what} must be a datetime, not {type(value).__name__}")
    try:
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC)
    except (OverflowError, ValueError) as exc:
        raise InvalidInput(f"{what} {value!r} cannot be stored as UTC: {exc}") from None


def check_page(limit: object, offset: object) -> None:
    if (
        not isinstance(limit, int)
        or isinstance(limit, bool)
        or not 0 < limit <= limits.MAX_PAGE_SIZE
    ):
        raise InvalidInput(f"limit must be an integer from 1 to {limits.MAX_PAGE_SIZE}")
    if (
        not isinstance(offset, int)
        or isinstance(offset, bool)
        or not 0 <= offset <= limits.MAX_PAGE_OFFSET
    ):
        raise InvalidInput(f"offset must be an integer from 0 to {limits.MAX_PAGE_OFFSET}")


def check_vectors(embedder: str, vectors: Sequence[tuple[int, int, str, bytes]]) -> None:
    """Rows for ``store_vectors``: a named embedder, and each vector little-endian
    float32 bytes (empty: nothing to embed) of finite numbers. A NaN or an infinity
    would rank nowhere and everywhere; say so at the door instead."""
    check_short_text("embedder name", embedder, required=True)
    blobs = []
    for pk, chunk, _user, blob in vectors:
        if not isinstance(blob, bytes) or len(blob) % 4:
            raise InvalidInput(f"the vector of message {pk} chunk {chunk} is not float32 bytes")
        blobs.append(blob)
    finite = all(
        np.isfinite(np.frombuffer(b"".join(blobs[start : start + 1024]), dtype="<f4")).all()
        for start in range(0, len(blobs), 1024)  # a thousand at once: no second copy of all
    )
    if not finite:
        raise InvalidInput(
            f"the embedder {embedder!r} gave a vector that is not all finite numbers",
            hint="a NaN or an infinity in an embedding is the model's error: nothing was stored",
        )


def check_new_message(new: NewMessage, *, json_checked: bool = False) -> CheckedMessage:
    """Check everything about a new message that does not need the store.

    ``json_checked`` skips walking part data and metadata value by value, for callers
    whose values come straight from a JSON parser (an importer): they cannot hold NaN or
    odd types, and the encoder still refuses huge integers and non-string keys.
    """
    if new.role not in ROLES:
        raise InvalidInput(f"unknown role {new.role!r}", hint=f"use one of: {', '.join(ROLES)}")
    if new.root and new.parent_id is not None:
        raise InvalidInput("a message cannot both start a new root and have a parent")
    if not new.parts and not new.attachments:
        raise InvalidInput("a message needs at least one content part or attachment")
    _check_part_count(new.parts)
    if len(new.attachments) > limits.MAX_ATTACHMENTS_PER_MESSAGE:
        raise LimitExceeded(
            f"a message has {len(new.attachments)} attachments; "
            f"the limit is {limits.MAX_ATTACHMENTS_PER_MESSAGE}"
        )
    _check_parts(new.parts, json_checked=json_checked)
    check_short_text("author", new.author)
    check_short_text("model", new.model)
    if new.tokens is not None and (
        not isinstance(new.tokens, int)
        or isinstance(new.tokens, bool)
        or not 0 <= new.tokens <= limits.MAX_TOKENS_PER_MESSAGE
    ):
        raise InvalidInput(
            f"tokens must be an integer from 0 to {limits.MAX_TOKENS_PER_MESSAGE}, "
            f"not {new.tokens!r}"
        )
    if new.cost is not None and (
        not isinstance(new.cost, int | float)
        or isinstance(new.cost, bool)
        or not math.isfinite(new.cost)
        or not 0 <= new.cost <= limits.MAX_COST_PER_MESSAGE
    ):
        raise InvalidInput(
            f"cost must be a number from 0 to {limits.MAX_COST_PER_MESSAGE:g}, not {new.cost!r}"
        )
    if not isinstance(new.hidden, bool):
        raise InvalidInput(f"hidden must be true or false, not {new.hidden!r}")
    if new.created_at is not None:
        check_moment("created_at", new.created_at)
    for attachment in new.attachments:
        check_short_text("attachment name", attachment.name, required=True)
        check_short_text("attachment mime type", attachment.mime_type, required=True)
        if (attachment.data is None) == (attachment.path is None):
            raise InvalidInput(f"attachment {attachment.name!r} needs either data or a path")
        if attachment.data is not None and not isinstance(attachment.data, bytes):
            raise InvalidInput(f"attachment {attachment.name!r}: data must be bytes")
        if attachment.path is not None and (
            not isinstance(attachment.path, str) or "\x00" in attachment.path
        ):
            raise InvalidInput(f"attachment {attachment.name!r}: the path is not a valid path")
    content, content_sha256, metadata = _encode_message(
        new.parts, new.metadata, json_checked=json_checked
    )
    return CheckedMessage(
        new=new, content=content, content_sha256=content_sha256, metadata=metadata
    )


def check_imported_message(
    role: str,
    parts: Sequence[Part],
    author: str | None,
    model: str | None,
    metadata: dict[str, Any],
) -> tuple[str, str, str]:
    """:func:`check_new_message` for a message an importer built from parsed JSON.

    The same checks and limits, in the same order, for the fields an import sets (no
    tokens, cost, times or attachments to upload), without building a
    :class:`NewMessage` first. Returns the encoded content, its sha256 and the encoded
    metadata. (It runs once per imported message: hence one function, few calls.)
    """
    if role not in ROLES:
        raise InvalidInput(f"unknown role {role!r}", hint=f"use one of: {', '.join(ROLES)}")
    if not parts:
        raise InvalidInput("a message needs at least one content part or attachment")
    _check_part_count(parts)
    shapes = []
    for index, part in enumerate(parts):
        _check_part(index, part, json_checked=True)
        shapes.append(part.to_dict())
    if author is not None:
        check_short_text("author", author)
    if model is not None:
        check_short_text("model", model)
    try:
        content = canonical_json(shapes)
        encoded_metadata = _encode_checked_object("metadata", metadata)
    except orjson.JSONEncodeError as exc:
        raise InvalidInput(
            f"the message content cannot be stored: {exc}",
            hint="text must be valid Unicode (no unpaired surrogates)",
        ) from None
    _check_content_size(content)
    return content.decode("utf-8"), hashlib.sha256(content).hexdigest(), encoded_metadata


def _check_part_count(parts: Sequence[Part]) -> None:
    if len(parts) > limits.MAX_PARTS_PER_MESSAGE:
        raise LimitExceeded(
            f"a message has {len(parts)} parts; the limit is {limits.MAX_PARTS_PER_MESSAGE}"
        )


def _check_parts(parts: Sequence[Part], *, json_checked: bool) -> None:
    for index, part in enumerate(parts):
        _check_part(index, part, json_checked=json_checked)


def _encode_message(
    parts: Sequence[Part], metadata: Any, *, json_checked: bool
) -> tuple[str, str, str]:
    """(content, its sha256, metadata) encoded, within the size limits."""
    try:
        content = canonical_json([p.to_dict() for p in parts])
        encoded_metadata = (
            _encode_checked_object("metadata", metadata)
            if json_checked
            else encode_json_object("metadata", metadata)
        )
    except orjson.JSONEncodeError as exc:
        raise InvalidInput(
            f"the message content cannot be stored: {exc}",
            hint="text must be valid Unicode (no unpaired surrogates)",
        ) from None
    _check_content_size(content)
    return content.decode("utf-8"), hashlib.sha256(content).hexdigest(), encoded_metadata


def _check_content_size(content: bytes) -> None:
    if len(content) > limits.MAX_MESSAGE_BYTES:
        raise LimitExceeded(
            f"the message is {len(content)} bytes; the limit is {limits.MAX_MESSAGE_BYTES}",
            hint="split it into several messages or store large content as an attachment",
        )


def _encode_checked_object(what: str, value: Any) -> str:
    if not isinstance(value, dict):
        raise InvalidInput(f"{what} must be a JSON object")
    encoded = canonical_json(value)
    if len(encoded) > limits.MAX_JSON_BYTES:
        raise LimitExceeded(f"{what} is {len(encoded)} bytes; the limit is {limits.MAX_JSON_BYTES}")
    return encoded.decode("utf-8")


def decode_json(value: str) -> Any:
    return orjson.loads(value)
