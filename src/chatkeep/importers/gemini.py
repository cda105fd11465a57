"""Gemini Apps activity from Google Takeout ("My Activity → Gemini Apps"), JSON or HTML.

Takeout does not export Gemini conversations, only an activity log: one record per
prompt, newest first, each with the prompt in its ``title`` (after a localised verb such
as ``Prompted `` or ``送信したメッセージ: ``) and, often, the answer as HTML in
``safeHtmlItem[].html``. Every Google product writes the same record shape, so files are
recognised by content: a record is Gemini's when its ``header`` or one of its
``products`` names Gemini (or Bard), localised names included (``Gemini アプリ``); with
neither, a ``titleUrl`` on ``gemini.google.com``. Other products' records met while
reading are skipped and counted (``skipped["other_products"]``); so are Gemini records
that are not prompts (``Created …``, ``Used …``, ``Selected …``, feedback:
``skipped["non_chat_activity"]``) and repeated records (``duplicate_records``). A title
with an unknown verb is kept whole as the prompt when the record has an answer, else
skipped as non-chat. When both ``MyActivity.json`` and ``MyActivity.html`` are present
the JSON is read and the HTML ignored (it is lossier: second-precision local times).

**Grouping rule** (Takeout has no conversation ids; this is a heuristic, recorded in each
conversation's ``metadata["grouping"]``):

1. records whose ``titleUrl`` is a Gemini chat link (``gemini.google.com/app/<id>``, query
   and fragment ignored) form one conversation per link (``"title_url"``);
2. every other prompt, in time order, joins the conversation of the previous such prompt
   when it came less than 30 minutes after it, else starts a new one (``"time_gap"``).

Within a conversation records are in time order; each record gives a user message (the
prompt as a ``text`` part; ``attachedFiles``/``imageFile`` as ``SourceFile`` records,
with bytes only when a file of that name sits next to the activity file) and, when there
is an answer, an assistant message whose parent is the prompt; each prompt's parent is
the previous record's last message. The raw title and the record's other keys are kept in
the prompt's metadata; the trailing ``Attached N files.`` is cut from the prompt.
Ids are derived from content, never from positions (Takeout prepends new activity): a
record's key is ``sha256(<time as UTC ISO>|<raw title>)``, its messages are ``<key>``
and ``<key>-answer`` (first 32 hex digits), a ``title_url`` conversation is
``sha256("url|" + link)`` and a ``time_gap`` one ``sha256("gap|" + <first record's
key>)``. Re-importing the same Takeout, or a later one holding the same records, finds the
same ids (new prompts join their conversation); only when the first record of a
``time_gap`` conversation has gone from a later Takeout (deleted, or expired by Google's
auto-delete) do its remaining records form a conversation with a new id.

HTML records are split at the body cell's top-level ``<br>``: the prompt lines, the first
line that reads as a date, then the answer. Dates are localised display strings whose
zone abbreviation is that of the *export* (:data:`ZONES`; a daylight-saving hour can be
off); an unknown zone is read as UTC and flagged ``time_zone_assumed``.

Answers are converted to Markdown (paragraphs, headings, lists, tables, quotes, code
blocks, emphasis, http(s)/mailto links) with entities unescaped; no markup is kept, and
``script``, ``style`` and other active or embedded elements are dropped with their
content. Text that was escaped in the HTML (``&lt;b&gt;``) is text and stays literal.
"""

from __future__ import annotations

import codecs
import hashlib
import mimetypes
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import ijson  # type: ignore[import-untyped]

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
from chatkeep.model import Part

PLATFORM = "gemini"
#: Prompts without a chat link less than this far apart share a conversation.
CONVERSATION_GAP = timedelta(minutes=30)
#: Records read per file when detecting.
_DETECT_RECORDS = 20
_HTML_CHUNK = 256 * 1024

#: Title prefixes of prompt records, longest first within a language.
PROMPT_PREFIXES: tuple[str, ...] = (
    "Prompted with: ",
    "Asked Gemini: ",
    "Asked Bard: ",
    "Submitted query ",
    "Prompted ",
    "Asked ",
    "Said ",
    "Branched ",
    "Answered ",
    "送信したメッセージ: ",
    "送信したメッセージ：",
    "送信したメッセージ:",
    "Υποβλήθηκε το ερώτημα ",
    "Has dicho: ",
    "Hiciste la petición ",
    "Pokyn ",
)
#: First words of Gemini activity that is not a prompt.
NON_CHAT_VERBS: tuple[str, ...] = (
    "Created",
    "Used",
    "Added",
    "Gave",
    "Selected",
    "Shared",
    "Deleted",
    "Viewed",
    "Edited",
    "Pinned",
    "Renamed",
    "Exported",
    "Updated",
)
_ATTACHED_TAIL = re.compile(r"\s*Attached \d+ files?\.?\s*$")
_PRODUCT = re.compile(r"gemini|bard", re.IGNORECASE)
_GEMINI_HOSTS = ("gemini.google.com", "bard.google.com")
_HTML_HEADER = re.compile(
    rb"""class=["'][^"']*mdl-typography--title[^"']*["'][^>]*>(.*?)<""", re.DOTALL
)
_FIELDS = "|"


# -- HTML: a small tree, built with the standard library's parser ----------------------------
@dataclass(slots=True, eq=False)
class Element:
    tag: str
    attrs: dict[str, str]
    children: list[Element | str] = field(default_factory=list)
    parent: Element | None = None

    def classes(self) -> list[str]:
        return self.attrs.get("class", "").split()


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_VOID = _words("area base br col embed hr img input link meta param source track wbr")
_CLOSES_P = _words(
    "address article aside blockquote details div dl fieldset figcaption figure footer form "
    "h1 h2 h3 h4 h5 h6 header hr main nav ol p pre section table ul"
)
#: Elements dropped with everything inside them.
_DROP = _words(
    "script style template noscript iframe object embed applet frame frameset head title "
    "meta link base svg canvas audio video source track button input select textarea "
    "form dialog"
)


class TreeBuilder(HTMLParser):
    """Builds :class:`Element` trees; ``on_close`` sees each element as it closes and may
    return True to have it removed from its parent (streaming large files)."""

    def __init__(self, on_close: Callable[[Element], bool] | None = None) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#root", {})
        self._stack: list[Element] = [self.root]
        self._on_close = on_close

    def _open_index(self, names: frozenset[str], boundary: frozenset[str]) -> int | None:
        for index in range(len(self._stack) - 1, 0, -1):
            tag = self._stack[index].tag
            if tag in names:
                return index
            if tag in boundary:
                return None
        return None

    def _pop_to(self, index: int) -> None:
        while len(self._stack) > index:
            self._close(self._stack.pop())

    def _close(self, element: Element) -> None:
        if self._on_close is not None and self._on_close(element) and element.parent:
            element.parent.children.remove(element)

    def _implicit_close(self, tag: str) -> None:
        if tag in _CLOSES_P and self._stack[-1].tag == "p":
            self._pop_to(len(self._stack) - 1)
        rules = {
            "li": (frozenset({"li"}), frozenset({"ul", "ol"})),
            "dt": (frozenset({"dt", "dd"}), frozenset({"dl"})),
            "dd": (frozenset({"dt", "dd"}), frozenset({"dl"})),
            "tr": (frozenset({"tr"}), frozenset({"table"})),
            "td": (frozenset({"td", "th"}), frozenset({"tr", "table"})),
            "th": (frozenset({"td", "th"}), frozenset({"tr", "table"})),
        }
        if tag in rules:
            index = self._open_index(*rules[tag])
            if index is not None:
                self._pop_to(index)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._implicit_close(tag)
        parent = self._stack[-1]
        element = Element(tag, {k: v or "" for k, v in attrs}, parent=parent)
        parent.children.append(element)
        if tag in _VOID:
            self._close(element)
        else:
            self._stack.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._implicit_close(tag)
        parent = self._stack[-1]
        element = Element(tag, {k: v or "" for k, v in attrs}, parent=parent)
        parent.children.append(element)
        self._close(element)

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID:
            if tag == "br":  # browsers read </br> as <br>
                self.handle_startendtag("br", [])
            return
        for index in range(len(self._stack) - 1, 0, -1):
            if self._stack[index].tag == tag:
                self._pop_to(index)
                return

    def handle_data(self, data: str) -> None:
        current = self._stack[-1]
        if current.tag in ("script", "style"):
            return
        if current.children and isinstance(current.children[-1], str):
            current.children[-1] += data
        else:
            current.children.append(data)

    def finish(self) -> Element:
        self.close()
        self._pop_to(1)
        return self.root


# -- HTML → Markdown ---------------------------------------------------------------------------
_SPACES = re.compile(r"[ \t\n\r\f]+")
_RUNS = re.compile(r" {2,}")
_BLOCKS = _words(
    "p div section article header footer main aside nav figure figcaption address details "
    "summary center dl dt dd h1 h2 h3 h4 h5 h6 ul ol pre blockquote table hr li html body "
    "tbody thead tfoot tr"
)
_SAFE_SCHEMES = ("http", "https", "mailto")


def _text_content(node: Element | str, *, pre: bool = False) -> str:
    if isinstance(node, str):
        return node if pre else _SPACES.sub(" ", node)
    if node.tag in _DROP:
        return ""
    if node.tag == "br":
        return "\n"
    return "".join(_text_content(child, pre=pre) for child in node.children)


def _safe_url(url: str) -> str | None:
    url = url.strip()
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return None
    return url if scheme in _SAFE_SCHEMES and not any(ch in url for ch in " \n()<>") else None


def _wrap(inner: str, mark: str) -> str:
    core = inner.strip()
    if not core:
        return inner
    lead = inner[: len(inner) - len(inner.lstrip())]
    tail = inner[len(inner.rstrip()) :]
    return f"{lead}{mark}{core}{mark}{tail}"


def _fence(text: str) -> str:
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


class _Markdown:
    def inline(self, node: Element | str) -> str:
        if isinstance(node, str):
            return _SPACES.sub(" ", node)
        tag = node.tag
        if tag in _DROP:
            return ""
        if tag == "br":
            return "\n"
        if tag in _BLOCKS:
            return "\n" + self.block(node) + "\n"
        inner = "".join(self.inline(child) for child in node.children)
        if tag in ("b", "strong"):
            return _wrap(inner, "**")
        if tag in ("i", "em", "cite", "var"):
            return _wrap(inner, "*")
        if tag in ("s", "del", "strike"):
            return _wrap(inner, "~~")
        if tag in ("code", "kbd", "samp", "tt"):
            code = _text_content(node)
            if not code.strip():
                return code
            fence = "``" if "`" in code else "`"
            return f"{fence}{code}{fence}"
        if tag == "a":
            url = _safe_url(node.attrs.get("href", ""))
            text = inner.strip()
            if url is None:
                return inner
            if not text or text == url:
                return url
            return f"[{text}]({url})"
        if tag == "img":
            alt = node.attrs.get("alt", "").strip()
            src = _safe_url(node.attrs.get("src", ""))
            if src and src.lower().startswith("http"):
                return f"![{alt}]({src})"
            return alt
        return inner

    def blocks(self, nodes: list[Element | str], *, tight: bool = False) -> str:
        """Block-level Markdown of ``nodes``, blank lines between blocks (in a ``tight``
        list item, a nested list follows its text directly)."""
        out: list[tuple[str, bool]] = []
        buffer: list[str] = []

        def flush() -> None:
            text = "".join(buffer)
            buffer.clear()
            lines = [_RUNS.sub(" ", line).strip(" ") for line in text.split("\n")]
            while lines and not lines[0]:
                lines.pop(0)
            while lines and not lines[-1]:
                lines.pop()
            paragraph = "\n".join(lines)
            if paragraph.strip():
                out.append((re.sub(r"\n{3,}", "\n\n", paragraph), False))

        for node in nodes:
            if isinstance(node, Element) and node.tag in _BLOCKS:
                flush()
                block = self.block(node)
                if block.strip():
                    out.append((block, node.tag in ("ul", "ol")))
            else:
                buffer.append(self.inline(node))
        flush()
        joined = ""
        for index, (text, is_list) in enumerate(out):
            if index:
                joined += "\n" if tight and is_list else "\n\n"
            joined += text
        return joined

    def block(self, node: Element) -> str:
        tag = node.tag
        if tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            text = " ".join("".join(self.inline(c) for c in node.children).split())
            return f"{'#' * int(tag[1])} {text}" if text else ""
        if tag in ("ul", "ol"):
            return self.list_block(node)
        if tag == "pre":
            code = _text_content(node, pre=True).strip("\n")
            language = ""
            for element in (node, *[c for c in node.children if isinstance(c, Element)]):
                for cls in element.classes():
                    if cls.startswith(("language-", "lang-")):
                        language = cls.split("-", 1)[1]
            language = re.sub(r"[^A-Za-z0-9_+#.-]", "", language)[:32]
            fence = _fence(code)
            return f"{fence}{language}\n{code}\n{fence}"
        if tag == "blockquote":
            inner = self.blocks(node.children)
            return "\n".join(f"> {line}".rstrip() for line in inner.split("\n"))
        if tag == "hr":
            return "---"
        if tag == "table":
            return self.table(node)
        if tag == "li":
            return self.list_block(Element("ul", {}, [node]))
        return self.blocks(node.children)

    def list_block(self, node: Element) -> str:
        ordered = node.tag == "ol"
        try:
            number = int(node.attrs.get("start", "1"))
        except ValueError:
            number = 1
        items: list[str] = []
        for child in node.children:
            if isinstance(child, str):
                if child.strip():
                    items.append("- " + " ".join(child.split()))
                continue
            if child.tag in _DROP:
                continue
            body = self.blocks(child.children if child.tag == "li" else [child], tight=True)
            marker = f"{number}. " if ordered else "- "
            number += 1
            lines = body.split("\n") if body else [""]
            indent = " " * len(marker)
            rest = [f"{indent}{line}" if line else "" for line in lines[1:]]
            items.append("\n".join([marker + lines[0], *rest]).rstrip())
        return "\n".join(items)

    def table(self, node: Element) -> str:
        rows: list[list[str]] = []

        def collect(element: Element) -> None:
            for child in element.children:
                if not isinstance(child, Element) or child.tag in _DROP:
                    continue
                if child.tag == "tr":
                    cells = [
                        " ".join("".join(self.inline(c) for c in cell.children).split()).replace(
                            "|", "\\|"
                        )
                        for cell in child.children
                        if isinstance(cell, Element) and cell.tag in ("td", "th")
                    ]
                    rows.append(cells)
                elif child.tag in ("thead", "tbody", "tfoot"):
                    collect(child)

        collect(node)
        rows = [row for row in rows if row]
        if not rows:
            return ""
        width = max(len(row) for row in rows)
        lines = []
        for index, row in enumerate(rows):
            padded = row + [""] * (width - len(row))
            lines.append("| " + " | ".join(padded) + " |")
            if index == 0:
                lines.append("|" + " --- |" * width)
        return "\n".join(lines)


def html_to_markdown(html: str) -> str:
    """Safe Markdown for an HTML fragment: no markup survives, entities are unescaped,
    scripts and other active content are dropped with their content."""
    builder = TreeBuilder()
    builder.feed(html)
    return nodes_to_markdown(builder.finish().children)


def nodes_to_markdown(nodes: list[Element | str]) -> str:
    return _Markdown().blocks(nodes).strip("\n")


# -- records ---------------------------------------------------------------------------------
@dataclass(slots=True)
class _Record:
    key: str
    time: datetime | None
    title: str
    prompt: str
    answer: str | None
    thread: str | None
    parts: list[Part]
    files: list[SourceFile]
    metadata: dict[str, Any]
    answer_metadata: dict[str, Any]
    order: int


@dataclass(slots=True)
class _Reading:
    """What a parse has seen so far."""

    source: ExportSource
    records: list[_Record] = field(default_factory=list)
    keys: set[str] = field(default_factory=set)
    skipped: Counter[str] = field(default_factory=Counter)
    other_products: Counter[str] = field(default_factory=Counter)
    non_chat: Counter[str] = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)
    unknown_verbs: int = 0


def names_gemini(value: object) -> bool:
    return isinstance(value, str) and _PRODUCT.search(value) is not None


def is_gemini_record(header: object, products: object, title_url: object) -> bool:
    """Gemini's by its header or products; by a gemini.google.com link only without both."""
    has_header = isinstance(header, str) and bool(header.strip())
    product_list = [p for p in products if isinstance(p, str)] if isinstance(products, list) else []
    if has_header or product_list:
        return names_gemini(header) or any(names_gemini(p) for p in product_list)
    return _chat_host(title_url)


def _chat_host(url: object) -> bool:
    if not isinstance(url, str):
        return False
    try:
        host = (urlsplit(url.strip()).hostname or "").lower()
    except ValueError:
        return False
    return host in _GEMINI_HOSTS


def chat_link(url: object) -> str | None:
    """A Gemini chat link without query or fragment, or None if ``url`` is not one."""
    if not _chat_host(url):
        return None
    assert isinstance(url, str)
    parts = urlsplit(url.strip())
    path = re.sub(r"/+", "/", parts.path).rstrip("/")
    if path in ("", "/app", "/chat") or not path.startswith(("/app/", "/chat/", "/u/")):
        return None
    return f"https://{(parts.hostname or '').lower()}{path}"


def split_title(title: str) -> tuple[str, str | None, str | None]:
    """``(kind, verb, prompt)``: kind is ``prompt`` (with the verb prefix and the prompt),
    ``activity`` (with the verb) or ``unknown``."""
    probe = title[:64].replace("\xa0", " ").replace("\u2003", " ")
    for prefix in PROMPT_PREFIXES:
        if probe.startswith(prefix):
            return "prompt", prefix.strip(" :："), title[len(prefix) :]
    first = probe.split(" ", 1)[0]
    if first in NON_CHAT_VERBS:
        return "activity", first, None
    return "unknown", None, None


def _key(time: datetime | None, raw_time: str, title: str) -> str:
    moment = time.isoformat() if time else raw_time
    return hashlib.sha256(f"{moment}{_FIELDS}{title}".encode("utf-8", "surrogatepass")).hexdigest()


def _mime(name: str) -> str:
    guessed, _ = mimetypes.guess_type(name, strict=False)
    return guessed or "application/octet-stream"


def _file(reading: _Reading, folder: str, name: str) -> SourceFile:
    member = f"{folder}/{name}" if folder else name
    present = "/" not in name and reading.source.exists(member)
    size = reading.source.size(member) if present else None
    return SourceFile(
        name=name, mime_type=_mime(name), member=member if present else None, size=size
    )


def _add(
    reading: _Reading,
    *,
    where: str,
    header: object,
    products: object,
    title: object,
    title_url: object,
    time: datetime | None,
    raw_time: str,
    answer: str | None,
    file_names: list[str],
    metadata: dict[str, Any],
    answer_metadata: dict[str, Any],
) -> None:
    if not is_gemini_record(header, products, title_url):
        shown = header if isinstance(header, str) and header.strip() else "unknown"
        reading.other_products[shown.strip()] += 1
        return
    if not isinstance(title, str):
        reading.skipped["invalid_records"] += 1
        return
    kind, verb, prompt = split_title(title)
    if kind == "activity" or (kind == "unknown" and answer is None):
        reading.non_chat[verb or "unrecognised"] += 1
        return
    if prompt is None:
        reading.unknown_verbs += 1
        prompt = title
    prompt = _ATTACHED_TAIL.sub("", prompt)
    key = _key(time, raw_time, title)
    if key in reading.keys:
        reading.skipped["duplicate_records"] += 1
        return
    reading.keys.add(key)
    folder = where.rsplit("/", 1)[0] if "/" in where else ""
    files = [_file(reading, folder, name) for name in file_names]
    reading.records.append(
        _Record(
            key=key[:32],
            time=time,
            title=title,
            prompt=prompt,
            answer=answer,
            thread=chat_link(title_url),
            parts=[Part("text", prompt)],
            files=files,
            metadata={"title": title, "verb": verb, **metadata},
            answer_metadata=answer_metadata,
            order=len(reading.records),
        )
    )


def _file_names(raw: dict[str, Any]) -> list[str]:
    names: list[str] = []
    attached = raw.get("attachedFiles")
    for item in attached if isinstance(attached, list) else []:
        name = item.get("name") if isinstance(item, dict) else item
        if isinstance(name, str) and name.strip() and name not in names:
            names.append(name)
    image = raw.get("imageFile")
    if isinstance(image, str) and image.strip() and image not in names:
        names.append(image)
    return names


_JSON_CONSUMED = {"title", "time", "safeHtmlItem", "attachedFiles", "imageFile"}


def _json_record(reading: _Reading, where: str, raw: object) -> None:
    if not isinstance(raw, dict):
        reading.skipped["invalid_records"] += 1
        return
    items = raw.get("safeHtmlItem")
    htmls = [
        item["html"]
        for item in (items if isinstance(items, list) else [])
        if isinstance(item, dict) and isinstance(item.get("html"), str)
    ]
    answer = "\n\n".join(filter(None, (html_to_markdown(h) for h in htmls))) if htmls else None
    raw_time = raw.get("time") if isinstance(raw.get("time"), str) else ""
    assert isinstance(raw_time, str)
    metadata = {k: v for k, v in raw.items() if k not in _JSON_CONSUMED and v is not None}
    time = iso_time(raw_time)
    if time is None and raw_time:
        metadata["time_text"] = raw_time
    _add(
        reading,
        where=where,
        header=raw.get("header"),
        products=raw.get("products"),
        title=raw.get("title"),
        title_url=raw.get("titleUrl"),
        time=time,
        raw_time=raw_time,
        answer=answer,
        file_names=_file_names(raw),
        metadata=metadata,
        answer_metadata={"html_items": len(htmls), "converted_from": "html"},
    )


# -- JSON files ------------------------------------------------------------------------------
def _records(source: ExportSource, name: str, *, limit: int | None = None) -> Iterator[Any]:
    """The elements of the JSON array in ``name``, streamed (at most ``limit``)."""
    with open_json(source, name) as handle:
        try:
            events = ijson.parse(handle, use_float=True)
            first = next(events)
            if first[1] != "start_array":
                raise ImportFormatError(f"{name} does not hold a JSON array of activity")

            def replay() -> Iterator[tuple[str, str, Any]]:
                yield first
                yield from events

            for count, item in enumerate(ijson.items(replay(), "item")):
                if limit is not None and count >= limit:
                    return
                yield item
        except (ijson.JSONError, UnicodeDecodeError, StopIteration) as exc:
            raise json_error(name, exc, again="the Takeout") from None


def _starts_array(source: ExportSource, name: str) -> bool:
    head = source.head(name, 64).removeprefix(BOM).lstrip()
    return head.startswith(b"[")


def _json_kind(source: ExportSource, name: str) -> str | None:
    """``gemini``, ``activity`` (another product's My Activity), ``empty`` or None."""
    if not name.lower().endswith(".json") or not _starts_array(source, name):
        return None
    seen = False
    try:
        for raw in _records(source, name, limit=_DETECT_RECORDS):
            if not isinstance(raw, dict) or "time" not in raw:
                return None
            if not ({"header", "products", "titleUrl"} & raw.keys()):
                return None
            seen = True
            if is_gemini_record(raw.get("header"), raw.get("products"), raw.get("titleUrl")):
                return "gemini"
    except ImportFormatError:
        return None
    return "activity" if seen else "empty"


# -- HTML files ------------------------------------------------------------------------------
_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ),
        start=1,
    )
    for name in names
}
#: Zone abbreviations Takeout writes, as minutes east of UTC. Takeout uses the zone of
#: the *export*, not of the event, so times can be off by a daylight-saving hour.
ZONES = {
    "UTC": 0, "GMT": 0, "Z": 0, "WET": 0, "BST": 60, "WEST": 60, "CET": 60, "MEZ": 60,
    "SEČ": 60, "CEST": 120, "MESZ": 120, "SELČ": 120, "EET": 120, "EEST": 180, "MSK": 180,
    "IST": 330, "SGT": 480, "HKT": 480, "AWST": 480, "JST": 540, "KST": 540, "ACST": 570,
    "AEST": 600, "ACDT": 630, "AEDT": 660, "NZST": 720, "NZDT": 780, "HST": -600,
    "AKST": -540, "AKDT": -480, "PST": -480, "PDT": -420, "MST": -420, "MDT": -360,
    "CST": -360, "CDT": -300, "EST": -300, "EDT": -240, "AST": -240, "ADT": -180,
}  # fmt: skip
_CLOCK = r"(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2}))?(?:\s*(?P<ampm>[AaPp]\.?\s?[Mm]\.?))?"
_ZONE = r"(?:\s+(?P<tz>(?:GMT|UTC)[+-]\d{1,2}(?::?\d{2})?|[^\s\d]{1,6}))?"
_DATE_PATTERNS = tuple(
    re.compile(pattern + r",?\s+" + _CLOCK + _ZONE, re.IGNORECASE)
    for pattern in (
        r"(?P<mon>[^\W\d_]{3,9})\.?\s+(?P<d>\d{1,2}),?\s+(?P<y>\d{4})",
        r"(?P<d>\d{1,2})\.?\s+(?P<mon>[^\W\d_]{3,9})\.?,?\s+(?P<y>\d{4})",
        r"(?P<y>\d{4})\s*[/.-]\s*(?P<m>\d{1,2})\s*[/.-]\s*(?P<d>\d{1,2})\.?",
        r"(?P<d>\d{1,2})\s*[./]\s*(?P<m>\d{1,2})\s*[./]\s*(?P<y>\d{4})",
    )
)


def parse_html_time(text: str) -> tuple[datetime | None, bool]:
    """A My Activity HTML date (``Mar 8, 2018, 5:14:40 PM GMT``, ``12. 1. 2026 19:01:56
    SEČ``, ``2026/01/12 19:01:56 JST``…) as UTC, and whether its zone was understood (no
    zone: UTC, as Takeout wrote before 2018)."""
    text = " ".join(text.replace("\u202f", " ").replace("\xa0", " ").split())
    for pattern in _DATE_PATTERNS:
        match = pattern.fullmatch(text)
        if match is None:
            continue
        fields = match.groupdict()
        month = int(fields["m"]) if fields.get("m") else _MONTHS.get((fields["mon"] or "").lower())
        if month is None:
            continue
        hour = int(fields["H"])
        ampm = (fields.get("ampm") or "").lower().replace(".", "").replace(" ", "")
        if ampm == "pm" and hour < 12:
            hour += 12
        elif ampm == "am" and hour == 12:
            hour = 0
        zone, known = _zone(fields.get("tz"))
        try:
            moment = datetime(
                int(fields["y"]),
                month,
                int(fields["d"]),
                hour,
                int(fields["M"]),
                int(fields["S"] or 0),
                tzinfo=zone,
            )
        except ValueError:
            continue
        return moment.astimezone(UTC), known
    return None, False


def _zone(name: str | None) -> tuple[timezone, bool]:
    if not name:
        return UTC, True
    upper = name.upper()
    match = re.fullmatch(r"(?:GMT|UTC)([+-])(\d{1,2})(?::?(\d{2}))?", upper)
    if match:
        minutes = int(match.group(2)) * 60 + int(match.group(3) or 0)
        sign = -1 if match.group(1) == "-" else 1
        return timezone(timedelta(minutes=sign * minutes)), True
    if upper in ZONES:
        return timezone(timedelta(minutes=ZONES[upper])), True
    return UTC, False


def _find(element: Element, predicate: Callable[[Element], bool]) -> Iterator[Element]:
    for child in element.children:
        if isinstance(child, Element):
            if predicate(child):
                yield child
            yield from _find(child, predicate)


def _segments(nodes: list[Element | str]) -> list[list[Element | str]]:
    """Top-level nodes split at ``<br>``."""
    groups: list[list[Element | str]] = [[]]
    for node in nodes:
        if isinstance(node, Element) and node.tag == "br":
            groups.append([])
        else:
            groups[-1].append(node)
    return groups


def _plain(nodes: list[Element | str]) -> str:
    """Text of ``nodes`` on one line (``&emsp;`` as a space; ``&nbsp;`` kept)."""
    text = "".join(_text_content(node) for node in nodes).replace("\u2003", " ")
    return _SPACES.sub(" ", text).strip(" ")


def _first_link(nodes: list[Element | str]) -> str | None:
    for node in nodes:
        if isinstance(node, Element):
            for element in (node, *_find(node, lambda e: e.tag == "a")):
                if element.tag == "a" and element.attrs.get("href"):
                    return element.attrs["href"]
    return None


_LOOKS_LIKE_DATE = re.compile(r"(?=.*\d{4})(?=.*\d{1,2}:\d{2}).{0,60}")


def _html_record(reading: _Reading, where: str, cell: Element) -> None:
    header_el = next(_find(cell, lambda e: "mdl-typography--title" in e.classes()), None)
    header = _plain(header_el.children).replace("\xa0", " ").strip() if header_el else ""
    body: Element | None = None
    caption: Element | None = None
    side: Element | None = None
    for element in _find(cell, lambda e: "content-cell" in e.classes()):
        classes = element.classes()
        if "mdl-typography--text-right" in classes:
            side = side or element
        elif "mdl-typography--body-1" in classes:
            body = body or element
        elif "mdl-typography--caption" in classes:
            caption = caption or element
    if body is None:
        reading.skipped["invalid_records"] += 1
        return
    # The prompt (possibly several lines), the date, then the answer, split at <br>s.
    segments = _segments(body.children)
    texts = [_plain(segment) for segment in segments]
    moment: datetime | None = None
    known = False
    date_index = next(
        (i for i in range(1, len(texts)) if parse_html_time(texts[i])[0] is not None), None
    )
    if date_index is None:
        date_index = next(
            (i for i in range(1, len(texts)) if _LOOKS_LIKE_DATE.fullmatch(texts[i])),
            min(1, len(texts)),
        )
    else:
        moment, known = parse_html_time(texts[date_index])
    title = "\n".join(texts[:date_index]).strip()
    title_url = _first_link([n for segment in segments[:date_index] for n in segment])
    raw_time = texts[date_index] if date_index < len(texts) else ""
    answer_nodes = [n for segment in segments[date_index + 1 :] for n in [*segment, _BR]]
    answer = nodes_to_markdown(answer_nodes[:-1]) if answer_nodes else ""
    metadata: dict[str, Any] = {"header": header, "time_text": raw_time, "format": "html"}
    if not known:
        metadata["time_zone_assumed"] = "UTC"
    if title_url:
        metadata["titleUrl"] = title_url
    products: list[str] = []
    if caption is not None:
        details = _caption(caption)
        if details:
            metadata["caption"] = details
            products = details.get("Products") or next(iter(details.values()))
    file_names: list[str] = []
    if side is not None:
        for element in _find(side, lambda e: e.tag in ("img", "a")):
            ref = element.attrs.get("src") or element.attrs.get("href") or ""
            if ref and "://" not in ref and not ref.startswith(("data:", "#", "/")):
                file_names.append(ref.rsplit("/", 1)[-1])
        if _plain(side.children):
            metadata["side_text"] = _plain(side.children)
    _add(
        reading,
        where=where,
        header=header,
        products=products,
        title=title,
        title_url=title_url,
        time=moment,
        raw_time=raw_time,
        answer=answer or None,
        file_names=file_names,
        metadata=metadata,
        answer_metadata={"converted_from": "html"},
    )


_BR = Element("br", {})


def _caption(cell: Element) -> dict[str, list[str]]:
    """``<b>Products:</b><br>&emsp;Gemini Apps<br>…`` as ``{"Products": ["Gemini Apps"]}``."""
    result: dict[str, list[str]] = {}
    current: list[str] | None = None
    for segment in _segments(cell.children):
        first = next((n for n in segment if not (isinstance(n, str) and not n.strip())), None)
        if isinstance(first, Element) and first.tag == "b":
            label = _plain(first.children).rstrip(":").strip()
            current = result.setdefault(label, [])
            rest = _plain([n for n in segment if n is not first]).replace("\xa0", " ").strip()
            if rest:
                current.append(rest)
            continue
        text = _plain(segment).replace("\xa0", " ").strip()
        if text and current is not None:
            current.append(text)
    return result


def _html_header(source: ExportSource, name: str) -> str | None:
    """The product header of the first activity in an HTML file, or None."""
    if not name.lower().endswith((".html", ".htm")):
        return None
    match = _HTML_HEADER.search(source.head(name, 64 * 1024))
    if match is None:
        return None
    builder = TreeBuilder()
    builder.feed(match.group(1).decode("utf-8", "replace"))
    return _plain(builder.finish().children).replace("\xa0", " ").strip()


def _read_html(reading: _Reading, name: str) -> None:
    def on_close(element: Element) -> bool:
        if "outer-cell" in element.classes():
            _html_record(reading, name, element)
            return True
        return False

    builder = TreeBuilder(on_close)
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    with open_json(reading.source, name) as handle:
        while chunk := handle.read(_HTML_CHUNK):
            builder.feed(decoder.decode(chunk))
    builder.feed(decoder.decode(b"", final=True))
    builder.finish()


# -- grouping --------------------------------------------------------------------------------
def _title(prompt: str) -> str:
    line = " ".join(prompt.split())
    if not line:
        return "Untitled"
    return line if len(line) <= 80 else line[:79].rstrip() + "…"


def _conversation(
    records: list[_Record], source_id: str, grouping: dict[str, Any]
) -> SourceConversation:
    messages: list[SourceMessage] = []
    previous: str | None = None
    for record in records:
        prompt_id = record.key
        messages.append(
            SourceMessage(
                source_id=prompt_id,
                parent_source_id=previous,
                role="user",
                parts=record.parts,
                created_at=record.time,
                metadata=record.metadata,
                files=record.files,
            )
        )
        previous = prompt_id
        if record.answer is not None:
            answer_id = f"{record.key}-answer"
            messages.append(
                SourceMessage(
                    source_id=answer_id,
                    parent_source_id=prompt_id,
                    role="assistant",
                    parts=[Part("text", record.answer, {"format": "markdown"})],
                    created_at=record.time,
                    metadata=dict(record.answer_metadata),
                )
            )
            previous = answer_id
    times = [r.time for r in records if r.time is not None]
    return SourceConversation(
        source_id=source_id,
        title=_title(records[0].prompt)[: limits.MAX_TITLE_LENGTH],
        messages=messages,
        created_at=min(times) if times else None,
        updated_at=max(times) if times else None,
        metadata={"grouping": grouping, "records": len(records)},
    )


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def group(records: list[_Record]) -> list[SourceConversation]:
    """Conversations from prompt records, by the rule in the module docstring."""
    floor = datetime.min.replace(tzinfo=UTC)
    ordered = sorted(records, key=lambda r: (r.time or floor, -r.order))
    threads: dict[str, list[_Record]] = {}
    runs: list[list[_Record]] = []
    last: datetime | None = None
    for record in ordered:
        if record.thread is not None:
            threads.setdefault(record.thread, []).append(record)
            continue
        if runs and record.time and last and record.time - last < CONVERSATION_GAP:
            runs[-1].append(record)
        else:
            runs.append([record])
        last = record.time
    conversations = [
        _conversation(members, _digest(f"url|{link}"), {"rule": "title_url", "link": link})
        for link, members in threads.items()
    ]
    gap_minutes = int(CONVERSATION_GAP.total_seconds() // 60)
    conversations += [
        _conversation(
            members,
            _digest(f"gap|{members[0].key}"),
            {"rule": "time_gap", "gap_minutes": gap_minutes, "heuristic": True},
        )
        for members in runs
    ]
    conversations.sort(key=lambda c: (c.created_at or floor, c.source_id))
    return conversations


# -- the importer ----------------------------------------------------------------------------
class GeminiImporter:
    platform = PLATFORM
    description = "Google Takeout My Activity for Gemini Apps (MyActivity.json or .html)"

    def detect(self, source: ExportSource) -> bool:
        for name in source.names():
            lowered = name.lower()
            if lowered.endswith(".json"):
                kind = _json_kind(source, name)
                if kind == "gemini" or (kind == "empty" and _PRODUCT.search(name)):
                    return True
            elif lowered.endswith((".html", ".htm")) and names_gemini(_html_header(source, name)):
                return True
        return False

    def parse(self, source: ExportSource) -> ParsedExport:
        reading = _Reading(source)
        json_files: list[str] = []
        html_files: list[str] = []
        gemini_json = False
        for name in source.names():
            lowered = name.lower()
            if lowered.endswith(".json"):
                kind = _json_kind(source, name)
                if kind is not None:
                    json_files.append(name)
                    gemini_json = gemini_json or kind == "gemini"
            elif lowered.endswith((".html", ".htm")) and _html_header(source, name) is not None:
                html_files.append(name)
        if not json_files and not html_files:
            raise ImportFormatError(
                f"{source.label} holds no Google Takeout activity records",
                hint="export 'My Activity' → 'Gemini Apps' from Google Takeout (JSON or HTML)",
            )
        if gemini_json and html_files:
            reading.warnings.append(
                f"read the JSON activity; ignored {len(html_files)} HTML activity file(s): "
                + ", ".join(html_files[:5])
            )
            html_files = []
        for name in json_files:
            for raw in _records(source, name):
                _json_record(reading, name, raw)
        for name in html_files:
            _read_html(reading, name)
        skipped: dict[str, int] = dict(reading.skipped)
        if reading.other_products:
            skipped["other_products"] = sum(reading.other_products.values())
            reading.warnings.append(
                "skipped activity of other products: "
                + ", ".join(f"{k} ({v})" for k, v in reading.other_products.most_common(10))
            )
        if reading.non_chat:
            skipped["non_chat_activity"] = sum(reading.non_chat.values())
            reading.warnings.append(
                "skipped Gemini activity that is not a prompt: "
                + ", ".join(f"{k} ({v})" for k, v in reading.non_chat.most_common(10))
            )
        if reading.unknown_verbs:
            reading.warnings.append(
                f"kept {reading.unknown_verbs} record(s) with an unknown verb whole as prompts"
            )
        conversations = group(reading.records)
        gap_minutes = int(CONVERSATION_GAP.total_seconds() // 60)
        metadata: dict[str, Any] = {
            "activity_files": json_files + html_files,
            "prompts": len(reading.records),
            "grouping": {"rules": ["title_url", "time_gap"], "gap_minutes": gap_minutes},
        }
        return ParsedExport(
            platform=PLATFORM,
            conversations=iter(conversations),
            account=None,
            metadata=metadata,
            warnings=reading.warnings,
            skipped={k: v for k, v in skipped.items() if v},
        )


IMPORTER = GeminiImporter()
