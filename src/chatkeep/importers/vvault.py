"""VVAULT Markdown trees: a platform's existing Markdown transcripts, moved in.

Layout
------
One user's tree (the ``users/`` and shard folders may be missing or wrapped in one
more folder; the first path component named ``instances`` that has a folder before it
anchors the layout)::

    users/<shard>/<user>/instances/<runtime>/chatty/chat_with_<runtime>.md   home transcript
    users/<shard>/<user>/instances/<runtime>/2025-03-14_topic.md             a conversation
    users/<shard>/<user>/instances/<runtime>/sessions/<anything>/<name>.md   a conversation

* **Account**: the ``<user>`` folder name. An export holds exactly one user; a tree with
  several users is refused with :class:`ImportFormatError` (import each user's folder on
  its own), because a parsed export has one account.
* **Runtimes**: one per ``instances/<runtime>`` folder holding any file, listed in
  ``ParsedExport.metadata["runtimes"]``; each conversation names its runtime in
  ``metadata["runtime"]``.
* **Conversations**: one per ``.md`` / ``.markdown`` file under ``instances/<runtime>/``.
  ``chatty/chat_with_<runtime>.md`` is the runtime's home transcript:
  ``metadata["primary"] = True`` (``False`` for every other file); home transcripts are
  read first. Other files are skipped and counted in ``ParsedExport.skipped``:
  ``files_outside_instances``, ``non_markdown_files``, ``hidden_files`` (a path component
  starting with ``.``, or ``__MACOSX``), ``empty_files`` (only whitespace) and
  ``too_large_files`` (over :data:`MAX_TRANSCRIPT_BYTES`), the last two with a warning.
* A bare single Markdown file is accepted too (detected only when it looks like
  chatkeep's own rendering; parsed in either dialect when ``--format vvault`` is given).
  Its runtime is the front matter's ``runtime``, its account ``None``.

Each file is UTF-8 (a BOM is dropped; bad bytes are replaced, with a warning); line ends
may be ``\\n``, ``\\r\\n`` or ``\\r``.

Dialect
-------
**Front matter** (optional): the first line is ``---``; ``key: value`` lines follow until
a line ``---`` or ``...``. A value starting with ``"``, ``[`` or ``{`` is read as JSON
(chatkeep writes ``title`` and ``tags`` so); ``[a, b]`` that is not JSON is a list of
plain words; ``'x'`` loses its quotes; an empty value followed by indented ``- item``
lines is a list; anything else is the plain string. Every key is kept in
``metadata["front_matter"]``. Meaningful keys: ``id`` (the conversation's source id),
``title``, ``created`` / ``updated`` (ISO times), ``tags`` (also in
``metadata["tags"]``), ``state`` (``archived`` marks it archived), ``model``,
``runtime`` (only used for a single file).

**Speaker lines** start a message; anything else belongs to the current message:

* a heading of level 2 to 6: ``## User``, ``### assistant (Nova) · gpt-4o · hidden``;
* a bold label ending in a colon at the start of a line: ``**User:** text`` or
  ``**User**: text`` (text after it is the message's first line).

The label is ``<speaker>[ (<author>)][ · <model>][ · hidden]`` plus (except in
chatkeep's separators, below) at most one timestamp anywhere in it:
``[2025-03-14 10:22]``, ``(2025-03-14T10:22:00Z)``, ``_2025-03-14T10:22:00Z_``,
``2025-03-14 10:22 +01:00``; a date alone means midnight, no zone means UTC; a date inside
a word (``gpt-4o-2024-08-06``) or an impossible one (``2025-13-40``) is not a timestamp.
A bold label's timestamp may also open the text after it. Speakers (case-insensitive):
``user``, ``human``, ``you`` → user; ``assistant``, ``ai`` → assistant; ``system``;
``tool``; the runtime's folder name, ``chatgpt``, ``claude`` and ``gemini`` → assistant
written by that name; the user's folder name → user. Any other label is ordinary text, so
``## Summary`` inside a reply does not split it.

After a heading, the next line may be chatkeep's ``<!-- <message id> · <ISO time or
"time unknown"> -->`` comment, or else a line holding only a timestamp.

**chatkeep's rendering** (:func:`chatkeep.render.conversation_markdown`) is this dialect
with a record separator: a speaker heading directly followed by its id comment. When a
file has one outside a code fence, only such separators start messages, so a reply
quoting ``### user`` or ``**User:**`` stays whole; and because chatkeep writes message
text unescaped (a truncated reply may leave a fence open), a separator starts a message
even inside a fence.

**Code fences** (three or more backticks or tildes, closed by a run of the same character
at least as long): in the plain dialect nothing inside one is a speaker line, and nothing
inside one is ever the title. A fence that is never closed is not a fence (a truncated
reply must not swallow the rest of the file).

Before the first message, a level-1 heading is the title (unless front matter has one);
other text is kept in ``metadata["preamble"]``.

Recovered values
----------------
* Message body: the Markdown between its speaker line (and comment) and the next speaker
  line, without leading and trailing blank lines, as one text part (an empty body is an
  empty text part).
* Messages are linear: each one's parent is the message before it.
* Message times: from its label, comment or timestamp line, else ``None``.
* Conversation ``created_at``: front matter ``created``, else the first message time,
  else a ``YYYY-MM-DD`` date in the file name (or a folder below the runtime's), else
  ``None``; ``updated_at``: front matter ``updated``, else the latest message time, else
  ``created_at``.
* Title: front matter, else the level-1 heading, else "Chat with <runtime>" for the home
  transcript, else the file name without date and extension.
* Source ids: the front matter ``id`` when present (and not already used by another file
  of the export), else the path from the user's folder (``instances/<runtime>/…``) so that
  re-exports match however the tree was packed; a single file uses its name. Message ids:
  the comment's id when present (and unique in the file), else
  ``<conversation source id>#<index>`` (0-based).
* ``metadata``: ``runtime``, ``primary``, ``source_path`` (the file as named in the
  export), ``dialect`` (``chatkeep``, ``plain`` or ``none``), ``front_matter``, ``tags``,
  ``preamble`` (each when present).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import PurePosixPath
from typing import Any, Final

import orjson

from chatkeep import limits
from chatkeep.errors import ImportFormatError
from chatkeep.importers.model import ParsedExport, SourceConversation, SourceMessage, iso_time
from chatkeep.importers.source import ExportSource
from chatkeep.model import text_part

#: Largest transcript file read; larger ones are skipped with a warning.
MAX_TRANSCRIPT_BYTES: Final = 64 * 1024 * 1024
#: Longest front-matter or comment id kept as a source id.
_MAX_SOURCE_ID_LENGTH: Final = 200
#: How much of a bare file detection reads.
_DETECT_BYTES: Final = 16 * 1024
#: Longest line that can be a speaker line, comment or timestamp line.
_MAX_LABEL_LINE: Final = 1_000

_MARKDOWN_SUFFIXES: Final = (".md", ".markdown")
_ROLE_WORDS: Final[dict[str, str]] = {
    "user": "user",
    "human": "user",
    "you": "user",
    "assistant": "assistant",
    "ai": "assistant",
    "system": "system",
    "tool": "tool",
}
_ASSISTANT_NAMES: Final = ("chatgpt", "claude", "gemini")
_CHATKEEP_KEYS: Final = frozenset({"id", "title", "runtime", "created"})

_TS = (
    r"\d{4}-\d{2}-\d{2}"
    r"(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?"
    r"(?:\s?(?:Z|UTC|[+-]\d{2}:?\d{2}))?"
)
# Every pattern here runs in time linear in its input (bounded repeats, no nested or
# adjacent unbounded ones that could backtrack): transcripts are untrusted input.
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# A timestamp with its wrappers, matched where a date starts (see _stamp).
_STAMP = re.compile(
    r"[\[(_*`]{0,3}[ \t]{0,3}(?P<ts>" + _TS + r")[ \t]{0,3}[\])_*`]{0,3}(?![A-Za-z0-9])"
)
_TS_PARTS = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})"
    r"(?:[T ](?P<hour>\d{1,2}):(?P<rest>\d{2}(?::\d{2}(?:\.\d+)?)?))?"
    r"\s?(?P<zone>Z|UTC|[+-]\d{2}:?\d{2})?"
)
_FILE_DATE = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)")
_HEADING = re.compile(r" {0,3}(?P<hashes>#{1,6})[ \t]+(?P<label>.*)")
_BOLD = re.compile(r"\*\*(?P<label>[^*\n]{1,200}?)\*\*")
_FENCE = re.compile(r" {0,3}(?P<run>`{3,}|~{3,})(?P<info>.*)")
_FENCE_CLOSE = re.compile(r" {0,3}(?P<run>`{3,}|~{3,})[ \t]*")
_KEY = re.compile(r"(?P<key>[A-Za-z_][\w.-]*)[ \t]*:(?:[ \t]+(?P<value>.*)|[ \t]*)")
_LIST_ITEM = re.compile(r"[ \t]+-[ \t]+(?P<item>.*)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


# -- layout -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Place:
    """Where a file sits in a VVAULT tree."""

    member: str
    user: str
    runtime: str
    relative: str  # from the user's folder: instances/<runtime>/...
    inner: tuple[str, ...]  # the components below instances/<runtime>/

    @property
    def primary(self) -> bool:
        return (
            len(self.inner) == 2
            and self.inner[0] == "chatty"
            and self.inner[1].lower() == f"chat_with_{self.runtime}.md".lower()
        )


def _is_markdown(name: str) -> bool:
    return name.lower().endswith(_MARKDOWN_SUFFIXES)


def _is_hidden(name: str) -> bool:
    return any(part.startswith(".") or part == "__MACOSX" for part in name.split("/"))


def _place(name: str) -> _Place | None:
    parts = name.split("/")
    for index in range(1, len(parts) - 2):
        if parts[index] == "instances":
            return _Place(
                member=name,
                user=parts[index - 1],
                runtime=parts[index + 1],
                relative="/".join(parts[index:]),
                inner=tuple(parts[index + 2 :]),
            )
    return None


# -- front matter -------------------------------------------------------------------
def _scalar(value: str) -> Any:
    if value[:1] in ('"', "[", "{"):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            pass
    if len(value) >= 2 and value[0] == "[" and value[-1] == "]":
        items = [item.strip().strip("'\"") for item in value[1:-1].split(",")]
        return [item for item in items if item]
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1]
    return value


def _front_matter(lines: list[str]) -> tuple[dict[str, Any], int, list[str]]:
    """The front matter's fields, the index of the first body line, and warnings."""
    if not lines or lines[0].strip() != "---":
        return {}, 0, []
    end = next(
        (i for i in range(1, len(lines)) if lines[i].strip() in ("---", "...")),
        None,
    )
    if end is None:
        return {}, 0, ["front matter is not closed; read as text"]
    fields: dict[str, Any] = {}
    warnings: list[str] = []
    index = 1
    while index < end:
        line = lines[index]
        index += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _KEY.fullmatch(line)
        if match is None:
            warnings.append(f"front matter line {index} is not 'key: value'; ignored")
            continue
        value = (match["value"] or "").strip()
        if value:
            fields[match["key"]] = _scalar(value)
            continue
        items: list[Any] = []
        while index < end and (item := _LIST_ITEM.fullmatch(lines[index])) is not None:
            items.append(_scalar(item["item"].strip()))
            index += 1
        fields[match["key"]] = items if items else ""
    return fields, end + 1, warnings


# -- timestamps ---------------------------------------------------------------------
def _timestamp(text: str) -> datetime | None:
    match = _TS_PARTS.fullmatch(text.strip())
    if match is None:
        return None
    value = match["date"]
    if match["hour"] is not None:
        value += f"T{int(match['hour']):02d}:{match['rest']}"
    zone = match["zone"]
    if zone in ("Z", "UTC"):
        value += "+00:00"
    elif zone:
        value += zone if ":" in zone else f"{zone[:3]}:{zone[3:]}"
    return iso_time(value)


def _file_date(place_parts: tuple[str, ...]) -> datetime | None:
    """A YYYY-MM-DD date in the file name, else in a folder name (innermost first)."""
    for part in reversed(place_parts):
        for match in _FILE_DATE.finditer(part):
            try:
                day = date(int(match[1]), int(match[2]), int(match[3]))
            except ValueError:
                continue
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
    return None


# -- code fences --------------------------------------------------------------------
def _code_lines(lines: list[str]) -> tuple[list[bool], int]:
    """For each line, whether it belongs to a closed code fence (the fence lines too),
    and how many fences were never closed (read as text)."""
    closers: dict[str, list[tuple[int, int]]] = {"`": [], "~": []}
    for index, line in enumerate(lines):
        match = _FENCE_CLOSE.fullmatch(line)
        if match is not None:
            run = match["run"]
            closers[run[0]].append((index, len(run)))
    positions = {char: [i for i, _ in found] for char, found in closers.items()}
    longest_after: dict[str, list[int]] = {}
    for char, found in closers.items():
        suffix = [0] * (len(found) + 1)
        for k in range(len(found) - 1, -1, -1):
            suffix[k] = max(found[k][1], suffix[k + 1])
        longest_after[char] = suffix
    code = [False] * len(lines)
    unclosed = 0
    index = 0
    while index < len(lines):
        match = _FENCE.fullmatch(lines[index])
        if match is None or (match["run"][0] == "`" and "`" in match["info"]):
            index += 1
            continue
        char, length = match["run"][0], len(match["run"])
        k = bisect.bisect_right(positions[char], index)
        if longest_after[char][k] < length:  # never closed: not a fence
            unclosed += 1
            index += 1
            continue
        while closers[char][k][1] < length:
            k += 1
        close = closers[char][k][0]
        for inside in range(index, close + 1):
            code[inside] = True
        index = close + 1
    return code, unclosed


# -- line forms -------------------------------------------------------------------
def _heading(line: str) -> tuple[int, str] | None:
    """A Markdown ATX heading's level and text (without a closing ``#`` sequence)."""
    match = _HEADING.fullmatch(line)
    if match is None:
        return None
    text = match["label"].rstrip(" \t")
    bare = text.rstrip("#")
    if bare != text and (not bare or bare[-1] in " \t"):
        text = bare.rstrip(" \t")
    return len(match["hashes"]), text


def _comment(line: str) -> tuple[str, str] | None:
    """chatkeep's ``<!-- <id> · <when> -->`` comment: its id and its time text."""
    line = line.strip()
    if len(line) > _MAX_LABEL_LINE or not (line.startswith("<!--") and line.endswith("-->")):
        return None
    message_id, dot, when = line[4:-3].partition("·")
    message_id = message_id.strip()
    if not dot or not message_id or any(ch.isspace() for ch in message_id):
        return None
    return message_id, when.strip()


def _stamp(text: str, *, at_start: bool = False) -> tuple[int, int, datetime] | None:
    """The first timestamp in ``text`` with its wrappers: start, end and moment. Not one
    inside a word (``gpt-4o-2024-08-06``) nor an impossible one (``2025-13-40``)."""
    for found in _DATE.finditer(text[:40] if at_start else text):
        first = 0 if at_start else max(0, found.start() - 6)
        for start in range(first, found.start() + 1):
            if start and (text[start - 1].isalnum() or text[start - 1] in "_-"):
                continue
            match = _STAMP.match(text, start)
            if match is not None and match.start("ts") == found.start():
                moment = _timestamp(match["ts"])
                if moment is not None:
                    return start, match.end(), moment
            if at_start:
                return None
    return None


def _who(who: str) -> tuple[str, str | None] | None:
    """``name`` or ``name (author)``; the author may hold parentheses."""
    author = None
    if who.endswith(")") and "(" in who:
        opening = who.index("(")
        who, author = who[:opening], who[opening + 1 : -1].strip()
    name = who.strip()
    if not name or "(" in name or ")" in name:
        return None
    return name, author or None


# -- speaker lines ------------------------------------------------------------------
@dataclass(slots=True)
class _Speaker:
    role: str
    author: str | None = None
    model: str | None = None
    hidden: bool = False
    created_at: datetime | None = None
    rest: str = ""  # text after a bold label
    heading: bool = False


def _label(label: str, names: dict[str, str], *, stamps: bool) -> _Speaker | None:
    """A speaker label; ``stamps``: look for a timestamp in it (not in chatkeep's)."""
    label = label.strip().strip("*").strip().rstrip(":").strip()
    created_at = None
    stamp = _stamp(label) if stamps else None
    if stamp is not None:
        start, end, created_at = stamp
        label = (label[:start] + label[end:]).strip()
    segments = [segment.strip() for segment in label.split("·")]
    hidden = len(segments) > 1 and segments[-1].lower() == "hidden"
    model = " · ".join(segments[1 : len(segments) - hidden]) or None
    found = _who(segments[0].strip(" \t-–—,|@:"))
    if found is None:
        return None
    name, author = found
    role = _ROLE_WORDS.get(name.lower())
    if role is None:
        role = names.get(name.lower())
        if role is None:
            return None
        author = author or name
    return _Speaker(
        role=role, author=author or None, model=model, hidden=hidden, created_at=created_at
    )


def _speaker(line: str, names: dict[str, str], *, stamps: bool = True) -> _Speaker | None:
    if line.startswith(("#", " ")):
        if len(line) > _MAX_LABEL_LINE:
            return None
        heading = _heading(line)
        if heading is None or heading[0] < 2:
            return None
        speaker = _label(heading[1], names, stamps=stamps)
        if speaker is not None:
            speaker.heading = True
        return speaker
    if not line.startswith("**"):
        return None
    bold = _BOLD.match(line)
    if bold is None:
        return None
    label, rest = bold["label"], line[bold.end() :]
    if label.rstrip().endswith(":"):
        rest = rest.strip()
    elif rest.lstrip().startswith(":"):
        rest = rest.lstrip()[1:].strip()
    else:
        return None
    speaker = _label(label, names, stamps=stamps)
    if speaker is None:
        return None
    stamp = _stamp(rest, at_start=True)
    if stamp is not None:
        speaker.created_at = speaker.created_at or stamp[2]
        rest = rest[stamp[1] :].strip()
    speaker.rest = rest
    return speaker


# -- one transcript -----------------------------------------------------------------
@dataclass(slots=True)
class _Message:
    speaker: _Speaker
    body: str
    message_id: str | None = None


@dataclass(slots=True)
class _Transcript:
    front: dict[str, Any]
    title: str | None
    preamble: str
    messages: list[_Message]
    dialect: str
    warnings: list[str] = field(default_factory=list)


def _trimmed(lines: list[str]) -> str:
    start, end = 0, len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return "\n".join(lines[start:end])


def _transcript(text: str, names: dict[str, str] | None = None) -> _Transcript:
    """Parse one Markdown transcript (see the module docstring for the dialect).

    ``names`` maps extra lower-case speaker names (a runtime, a user) to their role.
    """
    speakers = {name: "assistant" for name in _ASSISTANT_NAMES}
    speakers.update(names or {})
    lines = text.split("\n")
    front, start, warnings = _front_matter(lines)
    body = lines[start:]
    code, unclosed = _code_lines(body)

    def comment_after(index: int) -> tuple[str, str] | None:
        return _comment(body[index + 1]) if index + 1 < len(body) else None

    # chatkeep's record separator: a speaker heading and its id comment. chatkeep never
    # escapes message text, so a reply that leaves a fence open must not hide the
    # messages after it: in that dialect separators split even inside fences.
    separators: list[tuple[int, _Speaker]] = []
    for index in range(len(body) - 1):
        if body[index + 1].lstrip().startswith("<!--") and comment_after(index) is not None:
            speaker = _speaker(body[index], speakers, stamps=False)
            if speaker is not None and speaker.heading:
                separators.append((index, speaker))
    chatkeep = any(not code[index] for index, _ in separators)
    found: list[tuple[int, _Speaker]] = []
    if chatkeep:
        found = separators
    else:
        for index, line in enumerate(body):
            if not code[index]:
                speaker = _speaker(line, speakers)
                if speaker is not None:
                    found.append((index, speaker))
    dialect = "chatkeep" if chatkeep else ("plain" if found else "none")
    if unclosed and not chatkeep:
        warnings.append(f"{unclosed} code fence(s) never closed; read as text")

    first = found[0][0] if found else len(body)
    title: str | None = None
    lead = body[:first]
    for offset, line in enumerate(lead):
        if not line.strip():
            continue
        heading = None if code[offset] else _heading(line)
        if heading is not None and heading[0] == 1 and heading[1]:
            title = heading[1]
            lead = lead[:offset] + lead[offset + 1 :]
        break
    messages: list[_Message] = []
    for position, (index, speaker) in enumerate(found):
        end = found[position + 1][0] if position + 1 < len(found) else len(body)
        cursor = index + 1
        message_id = None
        comment = comment_after(index) if speaker.heading else None
        if comment is not None:
            message_id, when = comment
            speaker.created_at = None if when == "time unknown" else iso_time(when)
            cursor += 1
        elif speaker.heading and cursor < end and len(body[cursor]) <= _MAX_LABEL_LINE:
            line = body[cursor].strip()
            stamp = _stamp(line, at_start=True)
            if stamp is not None and stamp[1] == len(line):
                speaker.created_at = speaker.created_at or stamp[2]
                cursor += 1
        content = ([speaker.rest] if speaker.rest else []) + body[cursor:end]
        messages.append(_Message(speaker=speaker, body=_trimmed(content), message_id=message_id))
    return _Transcript(
        front=front,
        title=title,
        preamble=_trimmed(lead),
        messages=messages,
        dialect=dialect,
        warnings=warnings,
    )


# -- building conversations ---------------------------------------------------------
def _clean_id(value: Any) -> str | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or len(text) > _MAX_SOURCE_ID_LENGTH or _CONTROL.search(text):
        return None
    return text


def _short_text(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    text = _CONTROL.sub(" ", value).strip()
    return text[: limits.MAX_TITLE_LENGTH] or None


def _tags(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value] if isinstance(value, str) else []
    tags: list[str] = []
    for item in items:
        if (
            isinstance(item, str)
            and item.strip()
            and len(item) <= limits.MAX_TAG_LENGTH
            and not _CONTROL.search(item)
            and item not in tags
        ):
            tags.append(item)
    return tags[: limits.MAX_TAGS_PER_CONVERSATION]


def _title_from_name(name: str) -> str:
    stem = PurePosixPath(name).stem
    words = _FILE_DATE.sub(" ", stem)
    words = re.sub(r"^[\s_\-.]*(?:T?\d{2}[-:.]?\d{2}(?:[-:.]?\d{2})?(?!\d))?[\s_\-.]*", "", words)
    words = re.sub(r"[_\s]+", " ", words).strip(" -._")
    return words or stem


@dataclass(slots=True)
class _Context:
    """What one conversation file needs beyond its text."""

    member: str
    base_id: str
    runtime: str | None
    primary: bool
    date_parts: tuple[str, ...]


def _conversation(
    transcript: _Transcript, context: _Context, used_ids: set[str]
) -> SourceConversation:
    front = transcript.front
    warnings = list(transcript.warnings)
    source_id = context.base_id
    front_id = _clean_id(front.get("id"))
    if "id" in front and front_id is None:
        warnings.append("front matter id is empty, too long or not text; the path is used")
    elif front_id is not None and front_id in used_ids:
        warnings.append(f"front matter id {front_id!r} is used by another file; the path is used")
    elif front_id is not None:
        source_id = front_id
    used_ids.add(source_id)

    messages: list[SourceMessage] = []
    seen: set[str] = set()
    parent: str | None = None
    for index, message in enumerate(transcript.messages):
        message_id = _clean_id(message.message_id)
        if message_id is not None and message_id in seen:
            warnings.append(f"message id {message_id!r} appears twice; renumbered")
            message_id = None
        if message_id is None:
            message_id = f"{source_id}#{index}"
            while message_id in seen:
                message_id += "~"
        seen.add(message_id)
        speaker = message.speaker
        messages.append(
            SourceMessage(
                source_id=message_id,
                parent_source_id=parent,
                role=speaker.role,
                parts=[text_part(message.body)],
                created_at=speaker.created_at,
                author=_short_text(speaker.author),
                model=_short_text(speaker.model),
                hidden=speaker.hidden,
            )
        )
        parent = message_id

    times = [m.created_at for m in messages if m.created_at is not None]
    created_at = iso_time(front.get("created"))
    if created_at is None:
        created_at = times[0] if times else _file_date(context.date_parts)
    updated_at = iso_time(front.get("updated")) or (max(times) if times else created_at)
    title = (
        _short_text(front.get("title"))
        or _short_text(transcript.title)
        or (f"Chat with {context.runtime}" if context.primary else None)
        or _short_text(_title_from_name(context.member))
        or "Untitled"
    )
    metadata: dict[str, Any] = {
        "runtime": context.runtime,
        "primary": context.primary,
        "source_path": context.member,
        "dialect": transcript.dialect,
    }
    if front:
        metadata["front_matter"] = front
    if "tags" in front:
        metadata["tags"] = _tags(front["tags"])
    if transcript.preamble:
        metadata["preamble"] = transcript.preamble
    if not messages:
        warnings.append("no speaker lines found; the conversation has no messages")
    return SourceConversation(
        source_id=source_id,
        title=title,
        messages=messages,
        created_at=created_at,
        updated_at=updated_at,
        model=_short_text(front.get("model")),
        metadata=metadata,
        archived=front.get("state") == "archived",
        warnings=warnings,
        source_runtime=context.runtime,
        primary=context.primary,
    )


def _read_text(
    source: ExportSource, name: str, warnings: list[str], skipped: dict[str, int]
) -> str | None:
    def skip(reason: str, why: str) -> None:
        _count(skipped, reason)
        warnings.append(f"{name}: {why}; skipped")

    if source.size(name) > MAX_TRANSCRIPT_BYTES:
        skip("too_large_files", f"larger than {MAX_TRANSCRIPT_BYTES} bytes")
        return None
    data = source.read_bytes(name, limit=MAX_TRANSCRIPT_BYTES)
    data = data.removeprefix(b"\xef\xbb\xbf")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("utf-8", "replace")
        warnings.append(f"{name}: not valid UTF-8; bad bytes were replaced")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        skip("empty_files", "empty file")
        return None
    return text


def _count(skipped: dict[str, int], reason: str) -> None:
    skipped[reason] = skipped.get(reason, 0) + 1


# -- the importer -------------------------------------------------------------------
class VvaultImporter:
    platform = "vvault"
    description = "a VVAULT tree of Markdown transcripts (users/<shard>/<user>/instances/…)"

    def detect(self, source: ExportSource) -> bool:
        names = source.names()
        if any(
            _is_markdown(name) and not _is_hidden(name) and _place(name) is not None
            for name in names
        ):
            return True
        if len(names) == 1 and _is_markdown(names[0]):
            head = source.head(names[0], _DETECT_BYTES)
            text = head.removeprefix(b"\xef\xbb\xbf").decode("utf-8", "replace")
            front, start, _ = _front_matter(text.replace("\r\n", "\n").split("\n"))
            return start > 0 and front.keys() >= _CHATKEEP_KEYS
        return False

    def parse(self, source: ExportSource) -> ParsedExport:
        names = source.names()
        warnings: list[str] = []
        skipped: dict[str, int] = {}
        places: list[_Place] = []
        runtimes: set[str] = set()
        users: set[str] = set()
        for name in names:
            place = _place(name)
            if _is_hidden(name):
                _count(skipped, "hidden_files")
            elif place is None:
                _count(skipped, "files_outside_instances")
            else:
                users.add(place.user)
                runtimes.add(place.runtime)
                if _is_markdown(name):
                    places.append(place)
                else:
                    _count(skipped, "non_markdown_files")
        if places:
            if len(users) > 1:
                shown = ", ".join(sorted(users)[:10])
                raise ImportFormatError(
                    f"{source.label} holds the transcripts of {len(users)} users ({shown})",
                    hint="import one user's folder (users/<shard>/<user>) at a time",
                )
            (user,) = users
            return ParsedExport(
                platform=self.platform,
                conversations=self._tree(source, places, user, warnings, skipped),
                account=user,
                account_label=user,
                metadata={"runtimes": sorted(runtimes), "user": user, "layout": "tree"},
                warnings=warnings,
                skipped=skipped,
            )
        if len(names) == 1 and _is_markdown(names[0]):
            return self._single(source, names[0])
        raise ImportFormatError(
            f"{source.label} holds no VVAULT transcripts",
            hint="expected users/<shard>/<user>/instances/<runtime>/…/*.md or one .md file",
        )

    def _tree(
        self,
        source: ExportSource,
        places: list[_Place],
        user: str,
        warnings: list[str],
        skipped: dict[str, int],
    ) -> Iterator[SourceConversation]:
        used: set[str] = set()
        # The home transcripts first: their front-matter ids win over copies elsewhere.
        for place in sorted(places, key=lambda p: (not p.primary, p.member)):
            text = _read_text(source, place.member, warnings, skipped)
            if text is None:
                continue
            names = {place.runtime.lower(): "assistant", user.lower(): "user"}
            context = _Context(
                member=place.member,
                base_id=place.relative,
                runtime=place.runtime,
                primary=place.primary,
                date_parts=place.inner,
            )
            yield _conversation(_transcript(text, names), context, used)

    def _single(self, source: ExportSource, name: str) -> ParsedExport:
        warnings: list[str] = []
        skipped: dict[str, int] = {}
        text = _read_text(source, name, warnings, skipped)
        conversations: list[SourceConversation] = []
        runtime: str | None = None
        if text is not None:
            transcript = _transcript(text)
            runtime = _clean_id(transcript.front.get("runtime"))
            context = _Context(
                member=name,
                base_id=name,
                runtime=runtime,
                primary=False,
                date_parts=(name,),
            )
            conversations.append(_conversation(transcript, context, set()))
        return ParsedExport(
            platform=self.platform,
            conversations=iter(conversations),
            metadata={"runtimes": [runtime] if runtime else [], "layout": "file"},
            warnings=warnings,
            skipped=skipped,
        )


IMPORTER: Final = VvaultImporter()
