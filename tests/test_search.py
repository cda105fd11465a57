"""Full-text search: query language, filters, ranking, snippets, paging, isolation,
hostile input, and an index that stays in step with every write."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import chatkeep
from chatkeep.errors import InvalidId, InvalidInput
from chatkeep.importers.model import ParsedExport, SourceConversation, SourceMessage
from chatkeep.importers.source import ExportSource
from chatkeep.model import NewMessage, Part
from chatkeep.search import SearchFilters, parse_query
from chatkeep.store import ImportFile, Store

T0 = datetime(2025, 3, 1, tzinfo=UTC)


def texts(store: Store, query: str, **filters: object) -> list[str]:
    page = store.search("alice", query, filters=SearchFilters(**filters), limit=100)  # type: ignore[arg-type]
    found = []
    for hit in page.hits:
        if hit.message_id is None:
            found.append(f"title:{hit.conversation_title}")
        else:
            found.append(store.get_message("alice", hit.message_id).text)
    return found


@pytest.fixture
def corpus(vault: chatkeep.Vault, tmp_path: Path) -> dict[str, str]:
    store = vault.store
    for user in ("alice", "bob"):
        store.add_user(user)
    store.create_runtime("alice", "work")
    store.create_runtime("alice", "home")
    store.create_runtime("bob", "work")
    ids: dict[str, str] = {}

    def say(
        runtime: str, title: str, *lines: tuple[str, str, int], tags: tuple[str, ...] = ()
    ) -> str:
        conversation = store.create_conversation("alice", runtime, title=title, tags=tags).id
        for role, text, day in lines:
            store.append_message(
                "alice",
                conversation,
                NewMessage(
                    role=role,
                    parts=(Part("text", text),),
                    model="gpt-4o" if role == "assistant" else None,
                    created_at=T0 + timedelta(days=day),
                ),
            )
        return conversation

    ids["schema"] = say(
        "work",
        "Database schema review",
        ("user", "How should the sqlite schema store message trees?", 0),
        ("assistant", "Store a parent pointer per message; branches are siblings.", 0),
        tags=("db",),
    )
    ids["garden"] = say(
        "home",
        "Tomato garden",
        ("user", "My tomatoes have yellow leaves", 5),
        ("assistant", "Yellow leaves often mean overwatering; check drainage.", 5),
    )
    ids["travel"] = say(
        "home",
        "Trip to Kyoto",
        ("user", "Plan three days in Kyoto with temples and a café visit", 10),
        ("assistant", "Day one: Fushimi Inari early, then the café near Gion.", 10),
    )
    ids["archived"] = say("work", "Old sqlite notes", ("user", "sqlite archived wisdom", 2))
    store.archive_conversation("alice", ids["archived"])
    ids["trashed"] = say("work", "Trash", ("user", "sqlite trashed secret", 3))
    store.trash_conversation("alice", ids["trashed"])
    bob = store.create_conversation("bob", "work", title="bob sqlite").id
    store.append_message("bob", bob, chatkeep.user_message("sqlite canary-bob-9f2 schema"))
    # One imported conversation, to filter by origin, platform and import.
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "conversations.json").write_text("[]")
    parsed = ParsedExport(
        platform="chatgpt",
        conversations=iter(
            [
                SourceConversation(
                    "src-1",
                    "Imported recipe chat",
                    [
                        SourceMessage("a", None, "user", [Part("text", "sqlite recipe for bread")]),
                    ],
                )
            ]
        ),
        account="acct",
        account_label="alice",
    )
    with ExportSource.open(folder) as source:
        record = store.write_import(
            "alice",
            parsed,
            source,
            ImportFile("i_01M80CKRT95X9NKDTGK48FJQ3J", "x", 1, "0" * 64, None),
        )
    ids["import"] = record.id
    return ids


def test_words_must_all_match_and_titles_count(
    vault: chatkeep.Vault, corpus: dict[str, str]
) -> None:
    store = vault.store
    assert texts(store, "yellow leaves") == [
        "Yellow leaves often mean overwatering; check drainage.",
        "My tomatoes have yellow leaves",
    ] or sorted(texts(store, "yellow leaves")) == sorted(
        ["My tomatoes have yellow leaves", "Yellow leaves often mean overwatering; check drainage."]
    )
    assert texts(store, "tomato garden") == ["title:Tomato garden"]
    assert texts(store, "YELLOW Leaves") == texts(store, "yellow leaves")


def test_phrases_prefixes_exclusion_and_or(vault: chatkeep.Vault, corpus: dict[str, str]) -> None:
    store = vault.store
    assert texts(store, '"parent pointer"') == [
        "Store a parent pointer per message; branches are siblings."
    ]
    assert texts(store, '"pointer parent"') == []
    assert sorted(texts(store, "overwater*")) == [
        "Yellow leaves often mean overwatering; check drainage."
    ]
    assert texts(store, "yellow -tomatoes") == [
        "Yellow leaves often mean overwatering; check drainage."
    ]
    assert sorted(texts(store, "drainage OR temples")) == [
        "Plan three days in Kyoto with temples and a café visit",
        "Yellow leaves often mean overwatering; check drainage.",
    ]
    # Accents do not matter.
    assert len(texts(store, "cafe")) == 2


def test_the_query_language_is_parsed_as_documented() -> None:
    query = parse_query('a b OR c "x y" pre* -no -"not this" OR')
    assert [[t.text for t in group] for group in query.required] == [
        ["a"],
        ["b", "c"],
        ["x y"],
        ["pre"],
    ]
    assert query.required[3][0].prefix and query.required[2][0].phrase
    assert [t.text for t in query.excluded] == ["no", "not this"]
    assert parse_query("").empty and parse_query("-only").empty and parse_query('"').empty


def test_every_filter(vault: chatkeep.Vault, corpus: dict[str, str]) -> None:
    store = vault.store
    assert texts(store, "sqlite", runtime_id="home") == []
    assert texts(store, "sqlite", runtime_id="work") == [
        "How should the sqlite schema store message trees?"
    ] or "title:Old sqlite notes" not in texts(store, "sqlite", runtime_id="work")
    assert texts(store, "sqlite", origin="imported") == ["sqlite recipe for bread"]
    assert texts(store, "sqlite", platform="chatgpt") == ["sqlite recipe for bread"]
    assert texts(store, "sqlite", import_id=corpus["import"]) == ["sqlite recipe for bread"]
    assert texts(store, "sqlite", origin="native") == [
        "How should the sqlite schema store message trees?"
    ]
    assert texts(store, "leaves", role="assistant") == [
        "Yellow leaves often mean overwatering; check drainage."
    ]
    assert texts(store, "leaves", model="gpt-4o") == [
        "Yellow leaves often mean overwatering; check drainage."
    ]
    assert texts(store, "cafe", since=T0 + timedelta(days=9)) != []
    assert texts(store, "leaves", since=T0 + timedelta(days=6)) == []
    assert texts(store, "leaves", until=T0 + timedelta(days=4)) == []
    assert texts(store, "parent", tag="db") == [
        "Store a parent pointer per message; branches are siblings."
    ]
    assert texts(store, "parent", tag="nope") == []
    assert texts(store, "cafe", conversation_id=corpus["travel"]) != []
    assert texts(store, "cafe", conversation_id=corpus["garden"]) == []


def test_archived_only_on_request_and_trashed_never(
    vault: chatkeep.Vault, corpus: dict[str, str]
) -> None:
    store = vault.store
    assert "sqlite archived wisdom" not in texts(store, "sqlite")
    assert "sqlite archived wisdom" in texts(store, "sqlite", include_archived=True)
    assert all("trashed" not in t for t in texts(store, "sqlite", include_archived=True))
    assert texts(store, "trashed secret", include_archived=True) == []
    store.restore_conversation("alice", corpus["trashed"])
    assert texts(store, "trashed secret") == ["sqlite trashed secret"]


def test_another_users_content_never_appears(vault: chatkeep.Vault, corpus: dict[str, str]) -> None:
    store = vault.store
    assert texts(store, "canary-bob-9f2") == []
    assert texts(store, "bob") == []
    bob = store.search("bob", "sqlite", limit=100)
    assert {h.conversation_title for h in bob.hits} == {"bob sqlite"}


def test_hits_carry_what_a_result_list_needs(vault: chatkeep.Vault, corpus: dict[str, str]) -> None:
    (hit,) = vault.store.search("alice", '"parent pointer"').hits
    assert hit.conversation_id == corpus["schema"]
    assert hit.conversation_title == "Database schema review"
    assert hit.role == "assistant" and hit.created_at == T0
    assert [hit.snippet[a:b].lower() for a, b in hit.highlights] == ["parent pointer"]
    assert hit.runtime_id == "work"


def test_paging_walks_all_results_once(vault: chatkeep.Vault) -> None:
    store = vault.store
    store.add_user("alice")
    store.create_runtime("alice", "r")
    conversation = store.create_conversation("alice", "r").id
    store.append_messages(
        "alice", conversation, [chatkeep.user_message(f"needle number {i}") for i in range(25)]
    )
    seen: list[str] = []
    offset = 0
    while True:
        page = store.search("alice", "needle", limit=10, offset=offset)
        seen += [h.message_id or "" for h in page.hits]
        if not page.has_more:
            break
        offset += 10
    assert len(seen) == 25 == len(set(seen))


def test_the_index_follows_every_write(vault: chatkeep.Vault, corpus: dict[str, str]) -> None:
    store = vault.store
    conversation = store.create_conversation("alice", "work", title="fresh").id
    store.append_message("alice", conversation, chatkeep.user_message("zanzibar appears"))
    assert texts(store, "zanzibar") == ["zanzibar appears"]
    store.rename_conversation("alice", conversation, "quokka title")
    assert texts(store, "quokka") == ["title:quokka title"]
    store.delete_conversation("alice", conversation)
    assert texts(store, "zanzibar") == [] and texts(store, "quokka") == []
    assert vault.doctor() == []


def test_a_title_rename_is_searchable(vault: chatkeep.Vault, corpus: dict[str, str]) -> None:
    store = vault.store
    store.rename_conversation("alice", corpus["garden"], "Balcony vegetables")
    assert texts(store, "balcony") == ["title:Balcony vegetables"]
    assert texts(store, "tomato garden") == []


def test_rebuilding_the_index_gives_the_same_answers(
    vault: chatkeep.Vault, corpus: dict[str, str]
) -> None:
    store = vault.store
    queries = ["sqlite", "yellow leaves", '"parent pointer"', "cafe OR bread", "kyoto -temples"]
    before = {q: store.search("alice", q, limit=100).hits for q in queries}
    with store._engine.begin() as conn:  # type: ignore[attr-defined]
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("INSERT INTO messages_fts (messages_fts) VALUES ('delete-all')")
            conn.exec_driver_sql("DELETE FROM conversations_fts")
        else:  # the tsvectors are generated columns; what can be lost is their index
            conn.exec_driver_sql("DROP INDEX messages_search")
            conn.exec_driver_sql("DROP INDEX conversations_search")
    if store._engine.dialect.name == "sqlite":  # type: ignore[attr-defined]
        assert store.search("alice", "sqlite").hits == ()
    assert any(p.check == "search" for p in vault.doctor())
    assert store.rebuild_search_index() == 11  # every message, trashed and archived too
    assert {q: store.search("alice", q, limit=100).hits for q in queries} == before
    assert vault.doctor() == []


def test_bad_filters_are_clear_errors(vault: chatkeep.Vault, corpus: dict[str, str]) -> None:
    store = vault.store
    with pytest.raises(InvalidInput):
        store.search("alice", "x", filters=SearchFilters(role="robot"))
    with pytest.raises(InvalidInput):
        store.search("alice", "x", filters=SearchFilters(origin="elsewhere"))
    with pytest.raises(InvalidId):
        store.search("alice", "x", filters=SearchFilters(conversation_id="../x"))
    with pytest.raises(InvalidInput):
        store.search("alice", "x", filters=SearchFilters(since=T0, until=T0 - timedelta(days=1)))


HOSTILE = [
    '"',
    "'",
    '""',
    "a-b",
    "multi-agent",
    "col:x",
    "body:secret",
    "NEAR(a b)",
    "NEAR(",
    "AND",
    "OR",
    "NOT",
    "a AND",
    "OR OR OR",
    "*",
    "^",
    "^start",
    "(",
    ")",
    "((a)",
    "",
    "   ",
    "x" * 10_000,
    "') OR 1=1 --",
    "\x00",
    "a\x00b",
    "-",
    "--",
    "-*",
    '"unbalanced',
    "\\",
    "%",
    "_",
    "🙂",
    "\u202e",
    "+",
    "a+b",
    "{a b}",
    "a:b:c",
    '"a" "b" OR -"c"',
]


def test_a_fixed_corpus_of_hostile_queries_never_raises(
    vault: chatkeep.Vault, corpus: dict[str, str]
) -> None:
    store = vault.store
    conversation = store.create_conversation("alice", "work").id
    store.append_message("alice", conversation, chatkeep.user_message("multi-agent col:x a-b"))
    for query in HOSTILE:
        store.search("alice", query)
    # A document holding the literal text is found by that text.
    assert "multi-agent col:x a-b" in texts(store, "multi-agent")
    assert "multi-agent col:x a-b" in texts(store, "col:x")


hostile_pieces = st.sampled_from(
    [*"\"'*^():-+ \\\x00{}", "NEAR", "OR", "AND", "NOT", "col:", "body:", "NEAR("]
)
hostile_text = st.lists(hostile_pieces | st.text(max_size=4), max_size=20).map("".join)


@settings(max_examples=2_000, deadline=None)
@given(query=hostile_text)
def test_two_thousand_generated_queries_never_raise(vault: chatkeep.Vault, query: str) -> None:
    store = vault.store
    if not store.list_users():
        store.add_user("alice")
        store.create_runtime("alice", "r")
        home = store.route("alice", "r")
        store.append_message("alice", home.id, chatkeep.user_message('NEAR "quoted" col:x OR AND'))
    store.search("alice", query)


def test_recall_fills_a_budget_with_the_most_relevant_messages(
    vault: chatkeep.Vault, corpus: dict[str, str]
) -> None:
    from chatkeep.recall import recall

    store = vault.store
    found = recall(store, "alice", "What did we say about yellow leaves on the tomatoes?")
    assert found and "yellow leaves" in found[0].text.lower()
    assert all(item.conversation_id == corpus["garden"] for item in found)
    small = recall(store, "alice", "yellow leaves tomatoes", budget_chars=40)
    assert sum(len(item.text) for item in small) <= 40 and small[-1].truncated
    assert recall(store, "alice", "sqlite schema", runtime_id="home") == []
    assert recall(store, "alice", "the and of") == []
    scoped = recall(store, "alice", "yellow leaves", exclude_conversation_id=corpus["garden"])
    assert scoped == []
    assert all("canary" not in item.text for item in recall(store, "alice", "sqlite canary"))
    with pytest.raises(InvalidInput):
        recall(store, "alice", "x", budget_chars=10, budget_tokens=10)


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet=st.sampled_from(list("abAZ09 _-.,\n\t'\"*")), max_size=80),
    st.integers(0, 40),
    st.integers(0, 40),
)
def test_ascii_words_are_the_words_the_general_tokenizer_finds(text: str, a: int, b: int) -> None:
    """Snippets split ASCII text by a fast path; it must find the same words, at the
    same places, as the regular expression every other text goes through."""
    from chatkeep.search import _ascii_words, _unicode_words

    fast, general = _ascii_words(text), _unicode_words(text)
    assert fast.folded == general.folded
    start, end = sorted((min(a, len(fast.folded)), min(b, len(fast.folded))))
    if start < end:
        assert fast.bounds(start, end) == general.bounds(start, end)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 60), st.integers(1, 4)), max_size=30))
def test_the_snippet_window_holds_the_most_matches(raw: list[tuple[int, int]]) -> None:
    """The window chosen by bisection is the one that a plain count over every span
    picks: the first of those holding the most whole matches."""
    from chatkeep.search import SNIPPET_WORDS, _best_window

    spans = sorted({(first, first + size) for first, size in raw})
    count = max((end for _, end in spans), default=0) + 3

    def by_counting() -> int:
        best_start, best_score = 0, -1
        for first, _ in spans:
            start = max(0, min(first - 2, count - SNIPPET_WORDS))
            score = sum(1 for a, b in spans if a >= start and b <= start + SNIPPET_WORDS)
            if score > best_score:
                best_start, best_score = start, score
        return best_start

    assert _best_window(count, spans) == by_counting()


def test_an_absurd_offset_is_a_clear_error(store: Store) -> None:
    store.add_user("alice")
    for offset in (2**63, 10**9 + 1, -1):
        with pytest.raises(InvalidInput, match="offset"):
            store.search("alice", "anything", offset=offset)
