"""Regression tests for defects found in a review of imports, search, semantic search
and recall; each failed on the code as reviewed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

import chatkeep
from chatkeep.errors import ChatkeepError, ImportFormatError
from chatkeep.ids import new_id
from chatkeep.importers.model import ParsedExport, SourceConversation, SourceMessage
from chatkeep.importers.source import ExportSource
from chatkeep.importing import import_export
from chatkeep.model import Part
from chatkeep.recall import recall
from chatkeep.search import SearchFilters
from chatkeep.store import ImportFile, Store

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"


def _oversized_conversation(source_id: str = "c1") -> SourceConversation:
    # More parts than a message may hold: the importer moves the content into a blob.
    big = SourceMessage(
        source_id="big",
        parent_source_id=None,
        role="user",
        parts=[Part("text", f"word{i}") for i in range(1001)],
    )
    return SourceConversation(source_id=source_id, title="big one", messages=[big])


def _write(
    vault: chatkeep.Vault, user: str, conversations: Iterator[SourceConversation], folder: Path
) -> None:
    export = ParsedExport(
        platform="chatgpt", conversations=conversations, account=user, account_label=user
    )
    with ExportSource.open(folder) as source:
        file = ImportFile(new_id("import"), "export", 1, "0" * 64, None)
        vault.store.write_import(user, export, source, file)


@pytest.fixture
def export_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "conversations.json").write_text("[]")
    return folder


def _blobs(vault: chatkeep.Vault) -> list[Path]:
    return sorted(vault.paths.blobs.glob("??/*"))


def test_oversized_imported_content_survives_repair(
    vault: chatkeep.Vault, export_folder: Path
) -> None:
    vault.store.add_user("alice")
    _write(vault, "alice", iter([_oversized_conversation()]), export_folder)
    kept = _blobs(vault)
    assert len(kept) == 1
    assert vault.doctor() == []
    vault.repair()
    assert _blobs(vault) == kept


def test_a_failed_import_keeps_another_users_oversized_content(
    vault: chatkeep.Vault, export_folder: Path
) -> None:
    store = vault.store
    store.add_user("alice")
    store.add_user("bob")
    _write(vault, "alice", iter([_oversized_conversation()]), export_folder)
    kept = _blobs(vault)
    assert len(kept) == 1

    def failing() -> Iterator[SourceConversation]:
        yield _oversized_conversation()
        raise ImportFormatError("conversations.json is truncated")

    with pytest.raises(ImportFormatError):
        _write(vault, "bob", failing(), export_folder)
    assert _blobs(vault) == kept


def _walk(store: Store, query: str, size: int = 10) -> list[str]:
    seen: list[str] = []
    offset = 0
    while True:
        page = store.search("alice", query, limit=size, offset=offset)
        seen += [h.message_id or f"title:{h.conversation_id}" for h in page.hits]
        if not page.has_more:
            return seen
        offset += size


@pytest.fixture
def many_needles(store: Store) -> str:
    """More matching messages than the first FTS fetch (200), and a title match."""
    store.add_user("alice")
    store.create_runtime("alice", "r")
    plain = store.create_conversation("alice", "r", title="plain").id
    store.append_messages(
        "alice", plain, [chatkeep.user_message(f"needle number {i}") for i in range(250)]
    )
    return store.create_conversation("alice", "r", title="needle needle").id


def test_paging_shows_a_title_only_match_and_no_duplicates(store: Store, many_needles: str) -> None:
    store.append_message("alice", many_needles, chatkeep.user_message("nothing here"))
    everything = [
        h.message_id or f"title:{h.conversation_id}"
        for h in store.search("alice", "needle", limit=1000).hits
    ]
    walked = _walk(store, "needle")
    assert len(walked) == len(set(walked))
    assert sorted(walked) == sorted(everything)


def test_paging_keeps_a_title_boosted_message(store: Store, many_needles: str) -> None:
    boosted = store.append_message(
        "alice", many_needles, chatkeep.user_message("needle " + "padding " * 300)
    ).id
    walked = _walk(store, "needle")
    assert boosted in walked
    assert len(walked) == len(set(walked))


def test_recall_never_returns_a_message_twice(store: Store, many_needles: str) -> None:
    store.append_message("alice", many_needles, chatkeep.user_message("nothing here"))
    found = [item.message_id for item in recall(store, "alice", "needle", budget_chars=100_000)]
    assert len(found) == len(set(found)) == 250


@pytest.mark.parametrize("query", ["salt & pepper", "meeting - notes", "salt + pepper", "pepper …"])
def test_punctuation_between_words_is_ignored(store: Store, query: str) -> None:
    store.add_user("alice")
    store.create_runtime("alice", "r")
    conversation = store.create_conversation("alice", "r").id
    store.append_messages(
        "alice",
        conversation,
        [chatkeep.user_message("salt and pepper"), chatkeep.user_message("meeting notes")],
    )
    assert len(store.search("alice", query).hits) == 1


def test_mixed_naive_and_aware_dates_are_compared_as_utc(store: Store) -> None:
    store.add_user("alice")
    fine = SearchFilters(since=datetime(2020, 1, 1), until=datetime(2030, 1, 1, tzinfo=UTC))
    assert store.search("alice", "anything", filters=fine).hits == ()
    backwards = SearchFilters(since=datetime(2031, 1, 1), until=datetime(2030, 1, 1, tzinfo=UTC))
    with pytest.raises(ChatkeepError):
        store.search("alice", "anything", filters=backwards)


def test_importing_the_current_folder_keeps_a_named_original(
    vault: chatkeep.Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sample = FIXTURES / "chatgpt" / "librechat" / "chatgpt-export.json"
    if not sample.is_file():
        pytest.skip("shared fixtures not available")
    folder = tmp_path / "my-export"
    folder.mkdir()
    (folder / "conversations.json").write_bytes(sample.read_bytes())
    vault.store.add_user("alice")
    monkeypatch.chdir(folder)
    record = import_export(vault, "alice", ".").record
    assert record.file_name == "my-export"
    assert record.stored_path is not None
    assert Path(record.stored_path).name == "my-export.zip"
