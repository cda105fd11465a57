"""The fast ranking path (FTS5's best K, checked, grown when too few pass) returns
exactly what the full ranking query returns: same hits, same order, every page."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

import chatkeep
from chatkeep.backends.sqlite_search import SqliteSearch
from chatkeep.search import SearchFilters

WORDS = ["amber", "basil", "cedar", "dune", "ember", "fjord", "grove", "harbor", "iris", "jade"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[chatkeep.Vault]:
    rng = random.Random(11)
    with chatkeep.open(home=tmp_path_factory.mktemp("fast"), create=True) as vault:
        store = vault.store
        for user in ("alice", "bob"):
            store.add_user(user)
            for runtime in ("one", "two"):
                store.create_runtime(user, runtime)
                for n in range(12):
                    title = " ".join(rng.choices(WORDS, k=2)) if n % 3 == 0 else f"plain {n}"
                    cid = store.create_conversation(user, runtime, title=title).id
                    store.append_messages(
                        user,
                        cid,
                        [
                            chatkeep.NewMessage(
                                role=rng.choice(["user", "assistant"]),
                                parts=(
                                    chatkeep.Part(
                                        kind="text",
                                        text=" ".join(rng.choices(WORDS, k=rng.randint(1, 12))),
                                    ),
                                ),
                            )
                            for _ in range(rng.randint(1, 15))
                        ],
                    )
                    if n == 5:
                        store.trash_conversation(user, cid)
                    if n == 7:
                        store.archive_conversation(user, cid)
        yield vault


QUERIES = ["amber", "basil cedar", '"dune ember"', "fjord OR grove", "harbor -iris", "ja*", "plain"]
FILTERS = [
    SearchFilters(),
    SearchFilters(runtime_id="two"),
    SearchFilters(role="assistant"),
    SearchFilters(include_archived=True),
    SearchFilters(runtime_id="one", role="user", include_archived=True),
]


@pytest.mark.parametrize("query", QUERIES)
def test_fast_path_equals_the_full_query(
    corpus: chatkeep.Vault, query: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = corpus.store
    pages = [(limit, offset) for limit in (1, 3, 20) for offset in (0, 2, 7)]
    real = SqliteSearch._best_candidates
    answered: list[bool] = []

    def counted(*args: object, **kwargs: object) -> object:
        result = real(*args, **kwargs)  # type: ignore[arg-type]
        answered.append(result is not None)
        return result

    monkeypatch.setattr(SqliteSearch, "_best_candidates", counted)
    fast = {
        (i, page): store.search("alice", query, filters=f, limit=page[0], offset=page[1])
        for i, f in enumerate(FILTERS)
        for page in pages
    }
    assert all(answered), "the fast path gave up on a small vault"
    monkeypatch.setattr(SqliteSearch, "_best_candidates", lambda *args, **kwargs: None)
    for (i, page), got in fast.items():
        full = store.search("alice", query, filters=FILTERS[i], limit=page[0], offset=page[1])
        assert [(h.message_id, h.conversation_id) for h in got.hits] == [
            (h.message_id, h.conversation_id) for h in full.hits
        ], (query, FILTERS[i], page)
        assert [h.score for h in got.hits] == pytest.approx([h.score for h in full.hits])
        assert got.has_more == full.has_more
