"""Search by meaning and hybrid search, with the always-available hashed embedder.

Also a tiny labelled set (12 queries, 12 conversations) run on every backend, to show
that semantic and hybrid search work the same on each; the retrieval-quality figures
come from the 200-conversation set of tests/test_retrieval_quality.py.
"""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

import chatkeep
from chatkeep.search import SearchFilters
from chatkeep.search_embed import HashedEmbedder
from chatkeep.semantic import chunks, hybrid_search, index_pending, semantic_search
from chatkeep.store import Store

EMBEDDER = HashedEmbedder()

# (conversation title, message text, query that should find it). The queries use other
# word forms than the messages ("watered" vs "watering"), which full text (exact words)
# misses and n-gram similarity catches.
LABELLED = [
    ("Garden", "I watered the tomato seedlings twice daily", "watering tomatoes"),
    ("Bread", "The sourdough starter doubled overnight in the warm kitchen", "sourdough starters"),
    ("Bikes", "Replaced the derailleur cable and adjusted the brakes", "adjusting brake cables"),
    ("Taxes", "Filed the quarterly estimated payments for freelance income", "quarterly payment"),
    ("Moving", "Packed the bookshelves into forty cardboard boxes", "packing books boxes"),
    ("Python", "Refactored the parser into smaller recursive functions", "recursive parsing"),
    ("Piano", "Practiced the Chopin nocturne slowly with the metronome", "practicing nocturnes"),
    (
        "Running",
        "Ran intervals at the track, six repeats of eight hundred meters",
        "interval running",
    ),
    ("Camera", "The mirrorless camera autofocus struggles in low light", "autofocusing cameras"),
    ("Coffee", "Dialed in the espresso grind finer for a slower shot", "espresso grinding"),
    ("Birds", "Spotted two herons nesting by the reservoir", "heron nests"),
    (
        "Budget",
        "Tracked groceries and utilities in the monthly spreadsheet",
        "tracking utility spending",
    ),
]


@pytest.fixture
def labelled(vault: chatkeep.Vault) -> Store:
    store = vault.store
    store.add_user("alice")
    store.create_runtime("alice", "r")
    for title, text, _ in LABELLED:
        conversation = store.create_conversation("alice", "r", title=title).id
        store.append_message("alice", conversation, chatkeep.user_message(text))
        store.append_message(
            "alice", conversation, chatkeep.assistant_message(f"Noted about {title.lower()}.")
        )
    index_pending(store, EMBEDDER)
    return store


def recall_at_10(store: Store, mode: str) -> float:
    found = 0
    for title, _, query in LABELLED:
        if mode == "fts":
            hits = store.search("alice", query, limit=10).hits
        elif mode == "semantic":
            hits = semantic_search(store, "alice", query, embedder=EMBEDDER, limit=10).hits
        else:
            hits = hybrid_search(store, "alice", query, embedder=EMBEDDER, limit=10).hits
        found += any(hit.conversation_title == title for hit in hits)
    return found / len(LABELLED)


def test_recall_at_10_on_the_labelled_set(labelled: Store) -> None:
    fts, semantic, hybrid = (recall_at_10(labelled, mode) for mode in ("fts", "semantic", "hybrid"))
    print(f"recall@10: full text {fts:.2f}, semantic {semantic:.2f}, hybrid {hybrid:.2f}")
    assert semantic >= 0.9 and hybrid >= 0.9
    assert hybrid >= fts


def test_indexing_is_incremental_and_follows_deletes(vault: chatkeep.Vault) -> None:
    store = vault.store
    store.add_user("alice")
    store.create_runtime("alice", "r")
    conversation = store.create_conversation("alice", "r").id
    store.append_message("alice", conversation, chatkeep.user_message("first words"))
    assert index_pending(store, EMBEDDER) == 2 - 1  # the home conversation is empty
    assert index_pending(store, EMBEDDER) == 0
    store.append_message("alice", conversation, chatkeep.user_message("second words"))
    progress: list[tuple[int, int]] = []
    assert index_pending(store, EMBEDDER, progress=lambda d, t: progress.append((d, t))) == 1
    assert progress == [(1, 1)]
    assert len(semantic_search(store, "alice", "words", embedder=EMBEDDER).hits) == 2
    version, rows = store.vector_snapshot("alice", EMBEDDER.name, None)
    assert len(rows) == 2
    assert store.vector_snapshot("alice", EMBEDDER.name, version)[1] is None  # still current
    store.delete_conversation("alice", conversation)  # its vectors go by cascade
    changed, rows = store.vector_snapshot("alice", EMBEDDER.name, version)
    assert changed != version and rows == []
    assert semantic_search(store, "alice", "words", embedder=EMBEDDER).hits == ()
    assert vault.doctor() == []


def test_semantic_search_respects_users_filters_and_the_trash(vault: chatkeep.Vault) -> None:
    store = vault.store
    for user in ("alice", "bob"):
        store.add_user(user)
        store.create_runtime(user, "r")
    mine = store.create_conversation("alice", "r", title="mine").id
    store.append_message("alice", mine, chatkeep.user_message("tomato seedlings watering"))
    gone = store.create_conversation("alice", "r", title="gone").id
    store.append_message("alice", gone, chatkeep.user_message("tomato seedlings in the trash"))
    store.trash_conversation("alice", gone)
    theirs = store.create_conversation("bob", "r", title="theirs").id
    store.append_message("bob", theirs, chatkeep.user_message("tomato seedlings of bob"))
    index_pending(store, EMBEDDER)
    hits = semantic_search(store, "alice", "tomato seedlings", embedder=EMBEDDER).hits
    assert [h.conversation_title for h in hits] == ["mine"]
    assert (
        semantic_search(
            store, "alice", "tomato", embedder=EMBEDDER, filters=SearchFilters(role="assistant")
        ).hits
        == ()
    )
    fused = hybrid_search(store, "alice", "tomato seedlings", embedder=EMBEDDER).hits
    assert {h.conversation_title for h in fused} == {"mine"}


def test_long_messages_are_chunked_with_overlap() -> None:
    text = "x" * 2_500
    pieces = chunks(text)
    assert [len(p) for p in pieces] == [1_000, 1_000, 700]
    assert chunks("   ") == [] and chunks("short") == ["short"]


def test_the_vectors_kept_in_memory_stay_within_their_budget(
    vault: chatkeep.Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chatkeep import limits, semantic

    store = vault.store
    for user in ("alice", "bob", "carol"):
        store.add_user(user)
        store.create_runtime(user, "r")
        conversation = store.create_conversation(user, "r", title=f"{user}'s").id
        store.append_messages(
            user,
            conversation,
            [chatkeep.user_message(f"{user} note {n} about sourdough") for n in range(20)],
        )
    index_pending(store, EMBEDDER)
    semantic._MATRICES.clear()
    one = semantic_search(store, "alice", "sourdough", embedder=EMBEDDER, limit=5)
    size = next(iter(semantic._MATRICES.values())).nbytes
    assert size >= 20 * EMBEDDER.dimension * 4
    monkeypatch.setattr(limits, "MAX_VECTOR_CACHE_BYTES", 2 * size + size // 2)
    for user in ("bob", "carol", "alice"):
        page = semantic_search(store, user, "sourdough", embedder=EMBEDDER, limit=5)
        assert {hit.conversation_title for hit in page.hits} == {f"{user}'s"}
    kept = [key[1] for key in semantic._MATRICES if key[0] == id(store)]
    assert kept == ["carol", "alice"]  # bob, the least recently searched, went first
    again = semantic_search(store, "alice", "sourdough", embedder=EMBEDDER, limit=5)
    assert [hit.message_id for hit in again.hits] == [hit.message_id for hit in one.hits]
    semantic._MATRICES.clear()


def test_a_vector_that_is_not_finite_is_refused_and_nothing_is_stored(
    vault: chatkeep.Vault,
) -> None:
    import numpy as np

    from chatkeep.errors import InvalidInput

    store = vault.store
    store.add_user("alice")
    store.create_runtime("alice", "r")
    conversation = store.create_conversation("alice", "r").id
    store.append_messages(
        "alice", conversation, [chatkeep.user_message(f"note {n}") for n in range(3)]
    )
    todo = store.messages_to_embed("broken", limit=10)
    good = np.ones(4, dtype="<f4")
    for bad, problem in (
        (np.array([1, np.nan, 0, 0], "<f4").tobytes(), "finite"),
        (np.array([np.inf, 0, 0, 0], "<f4").tobytes(), "finite"),
        (b"\x00\x00\x00", "float32"),
    ):
        rows = [(pk, 0, user, good.tobytes()) for pk, user, _ in todo]
        rows[1] = (rows[1][0], 0, rows[1][2], bad)
        with pytest.raises(InvalidInput, match=problem):
            store.store_vectors("broken", rows)
        assert store.count_messages_to_embed("broken") == 3  # nothing went in


def _fruit_vault(home: Path, texts: list[str]) -> chatkeep.Vault:
    opened = chatkeep.open(home=home, create=True, backend="sqlite", url="")
    opened.store.add_user("alice")
    opened.store.create_runtime("alice", "r")
    conversation = opened.store.create_conversation("alice", "r", title="fruit").id
    opened.store.append_messages(
        "alice", conversation, [chatkeep.user_message(text) for text in texts]
    )
    index_pending(opened.store, EMBEDDER)
    return opened


def test_vectors_in_memory_never_pass_to_a_store_at_a_collected_ones_address(
    tmp_path: Path,
) -> None:
    """The vectors a search keeps in memory are keyed by the store's id, which Python
    reuses once the store is collected. A second vault with the same user, embedder and
    vector version but other messages at the same keys must still get its own answers,
    and a collected store's vectors are dropped."""
    from chatkeep import semantic

    first = _fruit_vault(tmp_path / "a", ["apples and pears", "zebra stripes"])
    top = semantic_search(first.store, "alice", "apples", embedder=EMBEDDER, limit=1)
    assert top.hits[0].snippet == "apples and pears"
    old_id = id(first.store)
    (old_key,) = [key for key in semantic._MATRICES if key[0] == old_id]
    stale = semantic._MATRICES[old_key]
    first.close()
    del first, top
    gc.collect()
    assert stale.owner() is None  # the store is gone; its id may now be reused

    second = _fruit_vault(tmp_path / "b", ["zebra crossing", "apples in a pie"])
    # As if the second store had been given the first one's address: its key now
    # holds the first store's vectors, at the same version.
    semantic._MATRICES[(id(second.store), "alice", EMBEDDER.name)] = stale
    page = semantic_search(second.store, "alice", "apples", embedder=EMBEDDER, limit=1)
    assert page.hits[0].snippet == "apples in a pie"
    assert all(kept.owner() is not None for kept in semantic._MATRICES.values())  # dropped
    second.close()
