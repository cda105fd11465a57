"""Ids are minted and validated here, and nowhere else.

Two families:

* **Minted ids** for conversations (``c_``), messages (``m_``), attachments (``a_``),
  imports (``i_``), API tokens (``t_``), server jobs (``j_``), snapshots (``s_``) and
  usage events (``e_``):
  a kind prefix and a ULID (48-bit millisecond time + 80 random bits, Crockford base32).
  They sort by creation time and are strictly increasing within one process, so
  ``ORDER BY id`` is creation order even inside one millisecond.
* **Names** chosen by people for users and runtimes (``alice``, ``synth-001``): lower-case
  letters, digits, ``-`` and ``_``, starting with a letter or digit. They end up in file
  paths (the flat-file backend) and in ``chat_with_<runtime>``, so anything that could
  traverse a path (``/``, ``\\``, ``..``, NUL) or collide on a case-insensitive disk is
  refused.

Every id is checked here before it touches a query or a path.
"""

from __future__ import annotations

import os
import re
import threading
import time
from typing import Final, Literal

from chatkeep.errors import InvalidId
from chatkeep.limits import MAX_ID_LENGTH, MAX_NAME_LENGTH, MAX_SETTING_KEY_LENGTH

IdKind = Literal[
    "conversation", "message", "attachment", "import", "token", "job", "snapshot", "event"
]

_PREFIX: Final[dict[IdKind, str]] = {
    "conversation": "c",
    "message": "m",
    "attachment": "a",
    "import": "i",
    "token": "t",
    "job": "j",
    "snapshot": "s",
    "event": "e",
}
_CROCKFORD: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_ULID_RE: Final = "[0-7][0-9A-HJKMNP-TV-Z]{25}"
_ID_PATTERNS: Final[dict[IdKind, re.Pattern[str]]] = {
    kind: re.compile(rf"{prefix}_{_ULID_RE}") for kind, prefix in _PREFIX.items()
}
_NAME_RE: Final = re.compile(rf"[a-z0-9][a-z0-9_-]{{0,{MAX_NAME_LENGTH - 1}}}")
_SETTING_KEY_RE: Final = re.compile(r"[a-z0-9][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)+")

_lock = threading.Lock()
_last_time_ms = -1
_last_random = 0


# Every 10-bit value as its two Crockford digits: 13 lookups encode a ULID.
_PAIRS: Final = tuple(a + b for a in _CROCKFORD for b in _CROCKFORD)


def _encode_ulid(value: int) -> str:
    """128 bits as 26 Crockford digits (two leading zero bits, as ULID specifies)."""
    return "".join(_PAIRS[(value >> shift) & 1023] for shift in range(120, -10, -10))


def _next_ulid() -> str:
    global _last_time_ms, _last_random
    with _lock:
        now_ms = time.time_ns() // 1_000_000
        if now_ms <= _last_time_ms:
            # Same (or an earlier, if the clock stepped back) millisecond: keep the last
            # time and increment the random part, so ids stay strictly increasing.
            now_ms = _last_time_ms
            random_part = _last_random + 1
        else:
            random_part = int.from_bytes(os.urandom(10), "big") >> 1  # room to increment
        _last_time_ms, _last_random = now_ms, random_part
    return _encode_ulid((now_ms << 80) | random_part)


def _forget_last_id() -> None:
    # A forked child continues from a fresh random point, never the parent's sequence.
    global _last_time_ms, _last_random
    _last_time_ms, _last_random = -1, 0


os.register_at_fork(after_in_child=_forget_last_id)


def new_id(kind: IdKind) -> str:
    """Mint a new id of the given kind, e.g. ``c_01JD3Z...``."""
    return f"{_PREFIX[kind]}_{_next_ulid()}"


def _describe(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_id(kind: IdKind, value: object) -> str:
    """Return ``value`` if it is a well-formed id of ``kind``; raise :class:`InvalidId`."""
    if not isinstance(value, str) or len(value) > MAX_ID_LENGTH:
        raise InvalidId(f"{_describe(value)} is not a valid {kind} id")
    if _ID_PATTERNS[kind].fullmatch(value) is None:
        prefix = _PREFIX[kind]
        raise InvalidId(
            f"{_describe(value)} is not a valid {kind} id",
            hint=f"{kind} ids look like {prefix}_ followed by 26 letters and digits",
        )
    return value


def check_name(what: str, value: object) -> str:
    """Return ``value`` if it is a valid user or runtime name; raise :class:`InvalidId`."""
    if not isinstance(value, str) or _NAME_RE.fullmatch(value) is None:
        raise InvalidId(
            f"{_describe(value)} is not a valid {what} name",
            hint=(
                f"use 1 to {MAX_NAME_LENGTH} lower-case letters, digits, '-' or '_', "
                "starting with a letter or digit"
            ),
        )
    return value


def check_setting_key(value: object) -> str:
    """Return ``value`` if it is a namespaced setting key such as ``ui.theme``."""
    if (
        not isinstance(value, str)
        or len(value) > MAX_SETTING_KEY_LENGTH
        or _SETTING_KEY_RE.fullmatch(value) is None
    ):
        raise InvalidId(
            f"{_describe(value)} is not a valid setting key",
            hint="keys are namespaced with dots, e.g. ui.theme or llm.default_model",
        )
    return value


def primary_conversation_title(runtime: str) -> str:
    """The title of a runtime's home conversation."""
    return f"chat_with_{check_name('runtime', runtime)}"
