"""Recall: the past messages most relevant to what an assistant is about to answer.

An assistant building its context from earlier sessions asks in natural language
("what did we decide about the schema?"), so recall matches *any* of the question's
significant words (ranked by relevance), not all of them, and fills a budget of
characters or estimated tokens with the best messages, each cut to fit if needed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from chatkeep.errors import InvalidInput
from chatkeep.search import SearchFilters
from chatkeep.store import Store

#: Rough characters per token for budgets given in tokens (English prose averages ~4).
CHARS_PER_TOKEN: Final = 4
#: Words too common to say anything about relevance.
STOPWORDS: Final = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "for",
        "from",
        "had",
        "has",
        "have",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "me",
        "my",
        "no",
        "not",
        "of",
        "on",
        "or",
        "our",
        "so",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
    ]
)
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True, slots=True)
class Recalled:
    """One remembered message, its text cut to the budget if it had to be."""

    conversation_id: str
    conversation_title: str
    runtime_id: str
    message_id: str
    role: str
    created_at: datetime | None
    text: str
    truncated: bool
    score: float


def recall(
    store: Store,
    user_id: str,
    question: str,
    *,
    runtime_id: str | None = None,
    budget_chars: int | None = None,
    budget_tokens: int | None = None,
    exclude_conversation_id: str | None = None,
) -> list[Recalled]:
    """The most relevant earlier messages that fit the budget (default 4,000 characters).

    ``exclude_conversation_id`` leaves out the conversation being answered, whose
    messages the assistant has already.
    """
    budget = _budget(budget_chars, budget_tokens)
    words = [w for w in _WORD.findall(question.lower()) if w not in STOPWORDS and len(w) > 1]
    if not words:
        return []
    query = " OR ".join(dict.fromkeys(words))
    filters = SearchFilters(runtime_id=runtime_id, include_archived=True)
    found: list[Recalled] = []
    seen: set[str] = set()
    used = 0
    offset = 0
    while used < budget:
        page = store.search(user_id, query, filters=filters, limit=50, offset=offset)
        for hit in page.hits:
            if (
                hit.message_id is None
                or hit.message_id in seen
                or hit.conversation_id == exclude_conversation_id
            ):
                continue
            seen.add(hit.message_id)
            message = store.get_message(user_id, hit.message_id)
            text = message.text
            if not text or message.hidden:
                continue
            room = budget - used
            cut = len(text) > room
            kept = text[:room]
            found.append(
                Recalled(
                    conversation_id=hit.conversation_id,
                    conversation_title=hit.conversation_title,
                    runtime_id=hit.runtime_id,
                    message_id=hit.message_id,
                    role=message.role,
                    created_at=message.created_at,
                    text=kept,
                    truncated=cut,
                    score=hit.score,
                )
            )
            used += len(kept)
            if used >= budget:
                break
        if not page.has_more:
            break
        offset += page.limit
    return found


def _budget(chars: int | None, tokens: int | None) -> int:
    if chars is not None and tokens is not None:
        raise InvalidInput("give a budget in characters or in tokens, not both")
    if tokens is not None:
        chars = tokens * CHARS_PER_TOKEN
    chosen = 4_000 if chars is None else chars
    if not isinstance(chosen, int) or isinstance(chosen, bool) or chosen <= 0:
        raise InvalidInput(f"the budget must be a positive number, not {chosen!r}")
    return chosen
