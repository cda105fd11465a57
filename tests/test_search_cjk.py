"""Chinese, Japanese and Korean: a word is found inside a sentence.

These scripts put no spaces between words (or, in Korean, write a word together with
its particles), so a tokenizer that splits at spaces sees a whole sentence as one word
and a search for a word in it finds nothing. Each CJK letter is indexed as a word of its
own and a query's run of them searched as a phrase: any run of letters is found where
it occurs, on every backend, in messages and titles, and in vaults made before.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import chatkeep
import chatkeep.backends
import chatkeep.migrations.postgres
from chatkeep.backends.sqlite import create_sqlite_engine
from chatkeep.migrations.postgres import _CJK_CLASS
from chatkeep.migrations.sqlite import MIGRATIONS
from chatkeep.search import CJK_LETTERS, SNIPPET_CJK_WORDS, make_snippet, parse_query, spaced_cjk
from chatkeep.store import Store
from tests.conftest import postgres_schema_url

SENTENCES = {
    "japanese": "東京で寿司を食べたい",  # I would like to eat sushi in Tokyo
    "chinese": "我们明天去北京看长城",  # tomorrow we go to Beijing to see the Great Wall
    "korean": "이 문장은 한국어입니다",  # this sentence is Korean
    "mixed": "Python入門の本を買った",  # I bought an introductory Python book
}


def _fill(store: Store) -> dict[str, str]:
    """One conversation per sentence; its message id by sentence name."""
    store.add_user("alice")
    store.create_runtime("alice", "r")
    ids = {}
    for name, sentence in SENTENCES.items():
        conversation = store.create_conversation("alice", "r", title=name).id
        ids[name] = store.append_message("alice", conversation, chatkeep.user_message(sentence)).id
    return ids


def _found(store: Store, query: str) -> set[str]:
    return {hit.message_id for hit in store.search("alice", query).hits if hit.message_id}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("寿司", {"japanese"}),
        ("東京", {"japanese"}),
        ("北京", {"chinese"}),
        ("长城", {"chinese"}),
        ("한국어", {"korean"}),
        ("문장", {"korean"}),
        ("入門", {"mixed"}),
        ("python", {"mixed"}),
        ("寿司 東京", {"japanese"}),  # both words, anywhere
        ('"東京で寿司"', {"japanese"}),
        ("寿*", {"japanese"}),
        ("北京 OR 寿司", {"japanese", "chinese"}),
        ("-寿司 北京", {"chinese"}),
        ("司寿", set()),  # the letters, but not in this order
        ("京東", set()),
        ("寿司北京", set()),  # a run that occurs nowhere
    ],
)
def test_a_word_inside_a_sentence_is_found(store: Store, query: str, expected: set[str]) -> None:
    ids = _fill(store)
    assert _found(store, query) == {ids[name] for name in expected}


def test_the_snippet_highlights_the_word(store: Store) -> None:
    _fill(store)
    (hit,) = store.search("alice", "寿司").hits
    assert hit.snippet == SENTENCES["japanese"]
    assert [hit.snippet[start:end] for start, end in hit.highlights] == ["寿司"]


def test_a_title_is_found_by_a_word_inside_it(store: Store) -> None:
    store.add_user("alice")
    store.create_runtime("alice", "r")
    conversation = store.create_conversation("alice", "r", title="京都旅行の計画").id
    (hit,) = store.search("alice", "計画").hits
    assert (hit.conversation_id, hit.message_id) == (conversation, None)
    store.rename_conversation("alice", conversation, "大阪出張")
    assert not store.search("alice", "計画").hits
    assert store.search("alice", "出張").hits


def test_latin_text_is_left_as_it_is() -> None:
    for text in ("plain words", "café crème", "Привет", ""):
        assert spaced_cjk(text) == text
    assert spaced_cjk("Python入門") == "Python 入 門 "
    assert spaced_cjk("東京で、寿司") == " 東 京 で 、 寿 司 "


def test_postgres_spaces_the_same_letters_as_python() -> None:
    """The migration writes the letters as PostgreSQL regular-expression escapes."""
    assert _CJK_CLASS.encode("ascii").decode("unicode_escape") == CJK_LETTERS


# -- vaults made before -------------------------------------------------------------------
def test_a_sqlite_vault_made_before_is_indexed_again_on_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    before = [m for m in MIGRATIONS if m.name != "m0010_cjk_letters_as_words"]
    monkeypatch.setattr(chatkeep.backends, "SQLITE_MIGRATIONS", before)
    with chatkeep.open(home=home, create=True) as vault:
        ids = _fill(vault.store)
        vault.store.create_conversation("alice", "r", title="旅行の計画")
        assert not _found(vault.store, "寿司")  # as it was: the sentence is one word
    monkeypatch.setattr(chatkeep.backends, "SQLITE_MIGRATIONS", MIGRATIONS)
    with chatkeep.open(home=home) as vault:
        store = vault.store
        assert _found(store, "寿司") == {ids["japanese"]}
        assert _found(store, "python") == {ids["mixed"]}
        assert [hit.conversation_title for hit in store.search("alice", "計画").hits] == [
            "旅行の計画"
        ]
        # What the old index held of the sentence is gone: deleting the message (whose
        # trigger deletes the new tokens) leaves an index that passes its own check.
        conversation = store.get_message("alice", ids["japanese"]).conversation_id
        store.delete_conversation("alice", conversation)
        assert not _found(store, "寿司")
        database = vault.paths.database
        assert not store.search("alice", "東京で寿司を食べたい").hits
    engine = create_sqlite_engine(database)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(
                "INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')"
            )
            conn.exec_driver_sql(
                "INSERT INTO conversations_fts (conversations_fts) VALUES ('integrity-check')"
            )
    finally:
        engine.dispose()


def test_a_postgres_vault_made_before_is_indexed_again_on_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, drop = postgres_schema_url()
    everything = chatkeep.migrations.postgres.MIGRATIONS
    before = [m for m in everything if m.name != "m0010_cjk_letters_as_words"]
    try:
        monkeypatch.setattr(chatkeep.migrations.postgres, "MIGRATIONS", before)
        with chatkeep.open(home=tmp_path, create=True, url=url) as vault:
            ids = _fill(vault.store)
            assert not _found(vault.store, "寿司")
        monkeypatch.setattr(chatkeep.migrations.postgres, "MIGRATIONS", everything)
        with chatkeep.open(home=tmp_path, url=url) as vault:
            assert _found(vault.store, "寿司") == {ids["japanese"]}
            assert _found(vault.store, "문장") == {ids["korean"]}
            assert [
                hit.conversation_title for hit in vault.store.search("alice", "python").hits
            ] == ["mixed"]
    finally:
        drop()


def test_a_snippet_of_cjk_text_shows_forty_letters_around_the_word() -> None:
    """A CJK letter counts as a word, and sixteen of them say little: such text gets a
    window of forty, around the match."""
    text = (
        "今日は天気が良いので公園まで散歩に行きました。" * 3
        + "帰りに寿司屋に寄った。"
        + "明日も晴れるといいな。" * 4
    )
    snippet, highlights = make_snippet(text, parse_query("寿司"))
    assert [snippet[start:end] for start, end in highlights] == ["寿司"]
    letters = [ch for ch in snippet if spaced_cjk(ch) != ch]
    assert len(letters) == SNIPPET_CJK_WORDS
    assert snippet.startswith("…") and snippet.endswith("…")
