"""Full-text search: the query language, the filters and the results, for every backend.

The query language, parsed here into a small backend-neutral structure:

* ``word`` — messages containing the word (case and accents ignored);
* ``"exact phrase"``;
* ``prefix*``;
* ``-word`` or ``-"phrase"`` — excluding messages that contain it;
* ``a OR b`` — either; terms side by side must all match (``a b OR c`` is ``a AND (b OR c)``).

Any input is valid: an unbalanced quote closes at the end, operators in odd places are
words, and characters with no meaning to the search are ignored. A backend compiles a
:class:`SearchQuery` into its own engine's syntax (SQLite FTS5, PostgreSQL tsquery),
quoting every term, so no user text is ever read as engine syntax.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from itertools import accumulate, compress, islice
from typing import Final

from chatkeep.errors import InvalidInput
from chatkeep.model import ROLES

#: Longest query text considered; the rest is ignored (a query is words, not a document).
MAX_QUERY_CHARS: Final = 2_000
#: Most terms one query may hold; further ones are ignored.
MAX_TERMS: Final = 32

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TOKEN = re.compile(r'(-?)"([^"]*)"?|(\S+)')


@dataclass(frozen=True, slots=True)
class Term:
    """One word or phrase. ``prefix`` matches words starting with ``text``."""

    text: str
    phrase: bool = False
    prefix: bool = False


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """``required`` is a list of OR-groups that must all match; ``excluded`` must not."""

    required: tuple[tuple[Term, ...], ...]
    excluded: tuple[Term, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.required


def parse_query(text: str) -> SearchQuery:
    """Parse what a person typed. Never raises: odd input becomes literal words."""
    cleaned = _CONTROL.sub(" ", str(text)[:MAX_QUERY_CHARS])
    groups: list[list[Term]] = []
    excluded: list[Term] = []
    join_next = False
    count = 0
    for match in _TOKEN.finditer(cleaned):
        if count >= MAX_TERMS:
            break
        negated, quoted, bare = match.group(1), match.group(2), match.group(3)
        if bare is not None and bare == "OR":
            join_next = bool(groups)
            continue
        if bare is not None and bare.startswith("-") and len(bare) > 1:
            negated, bare = "-", bare[1:]
        term = _term(quoted, bare)
        if term is None:
            continue
        count += 1
        if negated:
            excluded.append(term)
        elif join_next and groups:
            groups[-1].append(term)
        else:
            groups.append([term])
        join_next = False
    return SearchQuery(required=tuple(tuple(g) for g in groups), excluded=tuple(excluded))


def _term(quoted: str | None, bare: str | None) -> Term | None:
    if quoted is not None:
        words = [w for w in quoted.split() if _searchable(w)]
        return Term(" ".join(words), phrase=len(words) > 1) if words else None
    assert bare is not None
    prefix = bare.endswith("*") and len(bare.rstrip("*")) > 0
    word = bare.rstrip("*").strip('"')
    # Punctuation alone ("&", "-", "…") has no words for the index: ignore it rather
    # than require an empty phrase, which would match nothing.
    return Term(word, prefix=prefix) if _searchable(word) else None


def _searchable(text: str) -> bool:
    return any(ch.isalnum() for ch in text)


@dataclass(frozen=True, slots=True)
class SearchFilters:
    """Restrictions on what a search may return. Trashed conversations never appear."""

    runtime_id: str | None = None
    origin: str | None = None  # native | imported
    platform: str | None = None  # chatgpt, claude, gemini, vvault
    import_id: str | None = None
    role: str | None = None
    model: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    tag: str | None = None
    conversation_id: str | None = None
    include_archived: bool = False

    @property
    def states(self) -> tuple[str, ...]:
        """The conversation states a search may return: never the trash."""
        return ("active", "archived") if self.include_archived else ("active",)

    def check(self) -> None:
        if self.origin not in (None, "native", "imported"):
            raise InvalidInput(f"unknown origin {self.origin!r}", hint="use native or imported")
        if self.role is not None and self.role not in ROLES:
            raise InvalidInput(
                f"unknown role {self.role!r}", hint=f"use one of: {', '.join(ROLES)}"
            )
        if self.since and self.until and _utc(self.since) > _utc(self.until):
            raise InvalidInput("--since is after --until")


def _utc(moment: datetime) -> datetime:
    """Naive means UTC, as everywhere in chatkeep."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One matching message. ``highlights`` are (start, end) offsets into ``snippet``."""

    conversation_id: str
    conversation_title: str
    runtime_id: str
    message_id: str | None  # None for a match on the conversation's title alone
    role: str | None
    created_at: datetime | None
    snippet: str
    highlights: tuple[tuple[int, int], ...]
    score: float


@dataclass(frozen=True, slots=True)
class SearchPage:
    hits: tuple[SearchHit, ...]
    limit: int
    offset: int
    has_more: bool
    query: SearchQuery = field(default_factory=lambda: SearchQuery(required=()))


#: Marks a backend puts around matched words in a snippet; turned into offsets here.
HIGHLIGHT_OPEN: Final = "\ue000"
HIGHLIGHT_CLOSE: Final = "\ue001"


def split_highlights(marked: str) -> tuple[str, tuple[tuple[int, int], ...]]:
    """A snippet with marks as plain text plus the (start, end) spans they enclosed."""
    text: list[str] = []
    spans: list[tuple[int, int]] = []
    position = 0
    start: int | None = None
    for char in marked:
        if char == HIGHLIGHT_OPEN:
            start = position
        elif char == HIGHLIGHT_CLOSE:
            if start is not None and position > start:
                spans.append((start, position))
            start = None
        else:
            text.append(char)
            position += 1
    return "".join(text), tuple(spans)


# -- snippets ------------------------------------------------------------------------
#: Words of context a snippet shows around the matches.
SNIPPET_WORDS: Final = 16
#: The same for text with CJK letters, each of which counts as a word (see below).
SNIPPET_CJK_WORDS: Final = 40
#: How much of a long message is read for its snippet (the first match is usually early).
SNIPPET_SCAN_CHARS: Final = 200_000
#: Scripts written without spaces between words (Chinese, Japanese) or whose words carry
#: their particles (Korean): Han, kana and Hangul. Each of their letters is indexed and
#: searched as a word of its own, and a query's run of them as a phrase, so that a word
#: is found inside a sentence ("寿司" in "東京で寿司を食べたい"), as a substring.
CJK_LETTERS: Final = (
    "\u1100-\u11ff\u3040-\u309f\u30a0-\u30fa\u30fc-\u30ff\u3130-\u318f\u31f0-\u31ff"
    "\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f"
    "\U00020000-\U0003134f"
)
_CJK_RUN_RE: Final = re.compile(f"[{CJK_LETTERS}]+")
#: A word: one CJK letter, or a run of other letters and digits.
_WORD_RE: Final = re.compile(f"[{CJK_LETTERS}]|[^\\W_{CJK_LETTERS}]+")


def spaced_cjk(text: str) -> str:
    """``text`` with a space on each side of every CJK letter: what the full-text index
    reads (its tokenizer splits words at spaces), and what a query term is searched as."""
    if text.isascii():
        return text
    # One call per run of letters, not a template expanded per letter (which costs
    # microseconds each: a page of Japanese would cost milliseconds to index).
    return _CJK_RUN_RE.sub(_spaced_run, text)


def _spaced_run(run: re.Match[str]) -> str:
    return " " + " ".join(run.group()) + " "


def fold(text: str) -> str:
    """Lower case without diacritics, as the full-text index sees words ("Café" -> "cafe")."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()


def _folded(text: str) -> list[str]:
    """Every word of ``text``, folded. ASCII text folds by lower() alone, so the common
    case is one regex pass in C."""
    if text.isascii():
        return _WORD_RE.findall(text.lower())
    return [fold(word) for word in _WORD_RE.findall(text)]


def make_snippet(text: str, query: SearchQuery) -> tuple[str, tuple[tuple[int, int], ...]]:
    """The part of ``text`` around its best run of matches, with the matched words or
    phrases as (start, end) spans: the same for every backend, made in Python so that no
    engine runs the query a second time just to cut text."""
    scanned = text[:SNIPPET_SCAN_CHARS]
    plain = scanned.isascii()
    words = _ascii_words(scanned) if plain else _unicode_words(scanned)
    folded = words.folded
    if not folded:
        return scanned[: SNIPPET_WORDS * 8], ()
    spans = _matcher(query).spans(folded)
    size = SNIPPET_WORDS if plain or not _CJK_RUN_RE.search(scanned) else SNIPPET_CJK_WORDS
    start = _best_window(len(folded), spans[:200], size)
    end = min(len(folded), start + size)
    bounds = words.bounds(start, end)
    first, last = bounds[0][0], bounds[-1][1]
    lead = "…" if start > 0 else ""
    tail = "…" if end < len(folded) or len(scanned) < len(text) else ""
    shift = len(lead) - first
    highlights = tuple(
        (bounds[a - start][0] + shift, bounds[b - 1 - start][1] + shift)
        for a, b in spans
        if a >= start and b <= end
    )
    return lead + scanned[first:last] + tail, highlights


@dataclass(frozen=True, slots=True)
class _Words:
    """A text's folded words, and where words ``[a, b)`` sit in it as (start, end)."""

    folded: list[str]
    bounds: Callable[[int, int], list[tuple[int, int]]]


#: ASCII letters and digits lower-cased, every other ASCII character a space: the words
#: of ASCII text (as :data:`_WORD_RE` finds them) are then what ``split`` finds.
_ASCII_FOLD: Final = str.maketrans(
    {code: chr(code).lower() if chr(code).isalnum() else " " for code in range(128)}
)


def _ascii_words(text: str) -> _Words:
    """The words of ASCII ``text`` by translate and split, with no regular expression or
    Python loop per word (a page of hits cuts twenty snippets): splitting on single
    spaces keeps one piece per gap, so a piece's offset is the sum of the lengths (and
    spaces) before it."""
    pieces = text.translate(_ASCII_FOLD).split(" ")
    where = list(compress(range(len(pieces)), pieces))  # the pieces that are words
    folded = list(compress(pieces, pieces))

    def bounds(a: int, b: int) -> list[tuple[int, int]]:
        offsets = [0, *accumulate(map((1).__add__, map(len, pieces[: where[b - 1]])))]
        return [(offsets[i], offsets[i] + len(pieces[i])) for i in where[a:b]]

    return _Words(folded, bounds)


def _unicode_words(text: str) -> _Words:
    """The words of any text, folded (accents off, which may change their length)."""

    def bounds(a: int, b: int) -> list[tuple[int, int]]:
        return [m.span() for m in islice(_WORD_RE.finditer(text), a, b)]

    return _Words([fold(word) for word in _WORD_RE.findall(text)], bounds)


@dataclass(frozen=True, slots=True)
class _Matcher:
    """A query's required terms, folded once: whole words (a set), prefixes (a tuple,
    as ``str.startswith`` takes) and phrases (word lists, the last word maybe a prefix).
    A page of hits cuts twenty snippets for the same query."""

    words: frozenset[str]
    prefixes: tuple[str, ...]
    phrases: tuple[tuple[tuple[str, ...], bool], ...]

    def spans(self, folded: list[str]) -> list[tuple[int, int]]:
        """(first word, past last word) of every occurrence of a term, in order."""
        found: set[tuple[int, int]] = set()
        # One comparison per word, in C-speed list comprehensions.
        if self.words:
            words = self.words
            found.update((i, i + 1) for i, w in enumerate(folded) if w in words)
        if self.prefixes:
            prefixes = self.prefixes
            found.update((i, i + 1) for i, w in enumerate(folded) if w.startswith(prefixes))
        for wanted, prefix in self.phrases:
            found.update(_phrase_spans(folded, wanted, prefix))
        return sorted(found)


def _phrase_spans(
    folded: list[str], wanted: tuple[str, ...], prefix: bool
) -> list[tuple[int, int]]:
    """Where the phrase ``wanted`` starts: candidates by its first word, then the rest
    checked there."""
    size, first, last = len(wanted), wanted[0], wanted[-1]
    head = list(wanted[:-1])
    ends = len(folded) - size + 1
    return [
        (i, i + size)
        for i, w in enumerate(folded[:ends])
        if w == first
        and folded[i : i + size - 1] == head
        and (folded[i + size - 1].startswith(last) if prefix else folded[i + size - 1] == last)
    ]


@lru_cache(maxsize=64)
def _matcher(query: SearchQuery) -> _Matcher:
    words: set[str] = set()
    prefixes: list[str] = []
    phrases: list[tuple[tuple[str, ...], bool]] = []
    for group in query.required:
        for term in group:
            wanted = tuple(_folded(term.text))
            if len(wanted) > 1:
                phrases.append((wanted, term.prefix))
            elif wanted and term.prefix:
                prefixes.append(wanted[0])
            elif wanted:
                words.add(wanted[0])
    return _Matcher(frozenset(words), tuple(prefixes), tuple(phrases))


def _best_window(count: int, spans: list[tuple[int, int]], size: int = SNIPPET_WORDS) -> int:
    """The first word of the window of ``size`` words holding the most matches: for the
    window opening just before each match, the matches that start in it (by bisection
    of the sorted starts) less any phrase that runs past its end."""
    if not spans:
        return 0
    firsts = [first for first, _ in spans]
    phrases = any(end - first > 1 for first, end in spans)
    best_start, best_score = 0, -1
    for first in firsts:
        start = max(0, min(first - 2, count - size))
        limit = start + size
        low, high = bisect_left(firsts, start), bisect_left(firsts, limit)
        score = high - low
        if phrases:
            score -= sum(1 for _, end in spans[low:high] if end > limit)
        if score > best_score:
            best_start, best_score = start, score
    return best_start
