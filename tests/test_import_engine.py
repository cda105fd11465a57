"""The import engine, independent of any export format: merging by source id,
separation from native transcripts, all-or-nothing, dry runs, graph repair."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import chatkeep
from chatkeep.errors import ImportFormatError
from chatkeep.ids import new_id
from chatkeep.importers.model import ParsedExport, SourceConversation, SourceFile, SourceMessage
from chatkeep.importers.source import ExportSource
from chatkeep.model import Part
from chatkeep.store import ImportFile

from .test_store_contract import snapshot

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def message(
    source_id: str, parent: str | None, text: str, minute: int, **kw: object
) -> SourceMessage:
    return SourceMessage(
        source_id=source_id,
        parent_source_id=parent,
        role=kw.pop("role", "user"),  # type: ignore[arg-type]
        parts=[Part("text", text)],
        created_at=T0 + timedelta(minutes=minute),
        **kw,  # type: ignore[arg-type]
    )


def conversation(source_id: str, messages: list[SourceMessage], **kw: object) -> SourceConversation:
    return SourceConversation(
        source_id=source_id, title=f"title {source_id}", messages=messages, **kw
    )  # type: ignore[arg-type]


def parsed(conversations: list[SourceConversation], account: str = "acct-1") -> ParsedExport:
    return ParsedExport(
        platform="chatgpt",
        conversations=iter(conversations),
        account=account,
        account_label="alice",
        metadata={"user": "alice"},
    )


@pytest.fixture
def export_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "conversations.json").write_text("[]")
    (folder / "file-abc-photo.png").write_bytes(b"\x89PNG\r\n\x1a\n fake")
    return folder


def run(
    vault: chatkeep.Vault, export: ParsedExport, folder: Path, *, dry_run: bool = False
) -> chatkeep.model.ImportRecord:
    with ExportSource.open(folder) as source:
        file = ImportFile(new_id("import"), "export", 1, "0" * 64, None)
        return vault.store.write_import("alice", export, source, file, dry_run=dry_run)


def first_export() -> list[SourceConversation]:
    return [
        conversation(
            "conv-1",
            [
                message("a", None, "question", 0),
                message("b", "a", "answer one", 1, role="assistant"),
                message("c", "a", "answer two", 2, role="assistant"),
            ],
            active_leaf_source_id="b",
        ),
        conversation(
            "conv-2",
            [
                message(
                    "x",
                    None,
                    "look",
                    0,
                    files=[
                        SourceFile("photo.png", "image/png", member="file-abc-photo.png"),
                        SourceFile("gone.pdf", "application/pdf", member=None),
                    ],
                )
            ],
        ),
    ]


@pytest.fixture
def vault_with_native(vault: chatkeep.Vault) -> chatkeep.Vault:
    vault.store.add_user("alice")
    vault.store.create_runtime("alice", "synth-001")
    home = vault.store.route("alice", "synth-001")
    vault.store.append_message("alice", home.id, chatkeep.user_message("native words"))
    return vault


def test_an_import_creates_its_own_runtime_and_keeps_trees(
    vault_with_native: chatkeep.Vault, export_dir: Path
) -> None:
    store = vault_with_native.store
    native_before = snapshot(store, "alice")["runtimes"]
    record = run(vault_with_native, parsed(first_export()), export_dir)
    assert record.runtime_id == "chatgpt-alice-001"
    assert record.counts["conversations_added"] == 2
    assert record.counts["messages_added"] == 4
    assert (record.counts["files_stored"], record.counts["files_missing"]) == (1, 1)
    runtime = store.get_runtime("alice", record.runtime_id)
    assert runtime.origin == "imported" and runtime.source_platform == "chatgpt"
    listed = store.list_conversations("alice", runtime_id=record.runtime_id)
    home, *rest = listed
    assert home.is_primary and home.title == "chat_with_chatgpt-alice-001"
    assert {c.source_id for c in rest} == {"conv-1", "conv-2"}
    assert all(c.origin == "imported" and c.import_id == record.id for c in rest)
    conv1 = next(c for c in rest if c.source_id == "conv-1")
    active = store.list_messages("alice", conv1.id)
    assert [m.text for m in active] == ["question", "answer one"]
    assert len(store.list_branches("alice", conv1.id)) == 2
    conv2 = next(c for c in rest if c.source_id == "conv-2")
    (look,) = store.list_messages("alice", conv2.id)
    assert store.read_attachment("alice", look.attachments[0].id).startswith(b"\x89PNG")
    assert look.parts[-1].data["missing"] is True
    # The home conversation notes the import; native runtimes are untouched.
    note = store.list_messages("alice", home.id)[-1]
    assert note.role == "system" and note.parts[1].data["import_id"] == record.id
    assert [r for r in store.list_runtimes("alice") if r.origin == "native"] == native_before
    assert vault_with_native.doctor() == []


def test_the_same_export_again_changes_nothing_but_its_record(
    vault_with_native: chatkeep.Vault, export_dir: Path
) -> None:
    run(vault_with_native, parsed(first_export()), export_dir)
    store = vault_with_native.store
    conversations_before = {
        c.id: store.list_messages("alice", c.id, all_branches=True)
        for c in store.list_conversations("alice", runtime_id="chatgpt-alice-001")
        if not c.is_primary
    }
    again = run(vault_with_native, parsed(first_export()), export_dir)
    assert again.runtime_id == "chatgpt-alice-001"
    assert again.counts.get("conversations_added", 0) == 0
    assert again.counts["conversations_unchanged"] == 2
    assert again.counts.get("messages_added", 0) == 0
    after = {
        c.id: store.list_messages("alice", c.id, all_branches=True)
        for c in store.list_conversations("alice", runtime_id="chatgpt-alice-001")
        if not c.is_primary
    }
    assert after == conversations_before


def test_a_newer_export_adds_only_what_is_new(
    vault_with_native: chatkeep.Vault, export_dir: Path
) -> None:
    run(vault_with_native, parsed(first_export()), export_dir)
    newer = first_export()
    newer[0].messages.append(message("d", "b", "follow-up", 3))
    newer[0].active_leaf_source_id = "d"
    newer.append(conversation("conv-3", [message("n", None, "brand new", 5)]))
    record = run(vault_with_native, parsed(newer), export_dir)
    assert record.counts["conversations_added"] == 1
    assert record.counts["conversations_updated"] == 1
    assert record.counts["conversations_unchanged"] == 1
    assert record.counts["messages_added"] == 2
    store = vault_with_native.store
    conv1 = next(
        c
        for c in store.list_conversations("alice", runtime_id=record.runtime_id)
        if c.source_id == "conv-1"
    )
    assert [m.text for m in store.list_messages("alice", conv1.id)] == [
        "question",
        "answer one",
        "follow-up",
    ]
    assert vault_with_native.doctor() == []


def test_another_account_gets_another_runtime(
    vault_with_native: chatkeep.Vault, export_dir: Path
) -> None:
    first = run(vault_with_native, parsed(first_export()), export_dir)
    second = run(vault_with_native, parsed(first_export(), account="acct-2"), export_dir)
    assert (first.runtime_id, second.runtime_id) == ("chatgpt-alice-001", "chatgpt-alice-002")
    assert second.counts["conversations_added"] == 2


def failing_stream() -> Iterator[SourceConversation]:
    yield first_export()[0]
    yield first_export()[1]
    raise ImportFormatError("conversations.json is truncated")


def test_a_failing_import_leaves_the_vault_exactly_as_it_was(
    vault_with_native: chatkeep.Vault, export_dir: Path
) -> None:
    store = vault_with_native.store
    before = snapshot(store, "alice")
    export = parsed([])
    export.conversations = failing_stream()
    with pytest.raises(ImportFormatError):
        run(vault_with_native, export, export_dir)
    assert snapshot(store, "alice") == before
    assert store.list_imports("alice") == []
    assert list(vault_with_native.paths.blobs.glob("??/*")) == []
    assert vault_with_native.doctor() == []


def test_a_dry_run_reports_and_keeps_nothing(
    vault_with_native: chatkeep.Vault, export_dir: Path
) -> None:
    store = vault_with_native.store
    before = snapshot(store, "alice")
    record = run(vault_with_native, parsed(first_export()), export_dir, dry_run=True)
    assert record.counts["conversations_added"] == 2
    assert snapshot(store, "alice") == before
    assert list(vault_with_native.paths.blobs.glob("??/*")) == []


def test_broken_graphs_are_repaired_with_warnings(
    vault_with_native: chatkeep.Vault, export_dir: Path
) -> None:
    broken = conversation(
        "broken",
        [
            message("a", None, "root", 0),
            message("b", "missing-parent", "dangling", 1),
            message("c", "d", "cycle one", 2),
            message("d", "c", "cycle two", 3),
            message("a", None, "duplicate id", 4),
        ],
        active_leaf_source_id="nowhere",
    )
    record = run(vault_with_native, parsed([broken]), export_dir)
    warnings = " | ".join(record.warnings)
    assert "missing parent" in warnings and "cycle" in warnings and "duplicate" in warnings
    assert record.counts["messages_added"] == 4
    store = vault_with_native.store
    conv = next(
        c
        for c in store.list_conversations("alice", runtime_id=record.runtime_id)
        if c.source_id == "broken"
    )
    stored = store.list_messages("alice", conv.id, all_branches=True)
    assert [m.text for m in stored] == ["root", "dangling", "cycle one", "cycle two"]
    assert stored[3].parent_id == stored[2].id and stored[2].parent_id is None
    assert vault_with_native.doctor() == []


def test_imported_conversations_never_enter_native_runtimes(
    vault_with_native: chatkeep.Vault, export_dir: Path
) -> None:
    store = vault_with_native.store
    run(vault_with_native, parsed(first_export()), export_dir)
    native = store.list_conversations("alice", runtime_id="synth-001")
    assert all(c.origin == "native" and c.source_id is None for c in native)
    home = store.route("alice", "synth-001")
    assert [m.text for m in store.list_messages("alice", home.id)] == ["native words"]


def test_a_newer_export_keeps_the_users_rename_and_moves_the_conversation_up(
    vault_with_native: chatkeep.Vault, export_dir: Path
) -> None:
    run(vault_with_native, parsed(first_export()), export_dir)
    store = vault_with_native.store
    conv = next(
        c
        for c in store.list_conversations("alice", runtime_id="chatgpt-alice-001")
        if c.source_id == "conv-1"
    )
    store.rename_conversation("alice", conv.id, "my own name")
    newer = first_export()
    newer[0].messages.append(message("d", "b", "follow-up", 3))
    newer[0].title = "the export's new title"
    newer[0].updated_at = T0 + timedelta(days=1000)
    run(vault_with_native, parsed(newer), export_dir)
    after = store.get_conversation("alice", conv.id)
    assert after.title == "my own name"
    assert after.updated_at == T0 + timedelta(days=1000)
    # Without a rename, the export's title is followed.
    other = next(
        c
        for c in store.list_conversations("alice", runtime_id="chatgpt-alice-001")
        if c.source_id == "conv-2"
    )
    renamed = first_export()
    renamed[1].title = "fresh title"
    run(vault_with_native, parsed(renamed), export_dir)
    assert store.get_conversation("alice", other.id).title == "fresh title"
