"""Every shared fixture through the whole import: detect, parse, store, re-import.

The per-format files check what the parsers produce; this one checks what a person
finds in the vault afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import chatkeep
from chatkeep.cli import cli
from chatkeep.errors import ImportFormatError
from chatkeep.importing import import_export

from .test_store_contract import snapshot

FIXTURES = Path(
    os.environ.get(
        "CHATKEEP_FIXTURES", Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"
    )
)
CONVERSATION_FIXTURES = [
    "chatgpt/librechat/chatgpt-export.json",
    "chatgpt/librechat/chatgpt-tree.json",
    "chatgpt/librechat/chatgpt-citations.json",
    "chatgpt/librechat/chatgpt-modern-export.json",
    "chatgpt/420ai/sample-chatgpt-export.json",
    "chatgpt/panchat/chatgpt_branched.json",
    "chatgpt/panchat/chatgpt_sharded_000.json",
    "chatgpt/panchat/chatgpt_sharded_001.json",
    "claude/420ai/sample-claude-export.json",
    "claude/panchat/claude_conversations.json",
    "claude/panchat/claude_design_chat.json",
    "gemini/420ai/sample-gemini-export.json",
    "gemini/panchat/gemini_myactivity.json",
]
CHATGPT_FIXTURES = [name for name in CONVERSATION_FIXTURES if name.startswith("chatgpt/")]

pytestmark = pytest.mark.skipif(
    not FIXTURES.is_dir(), reason=f"shared fixtures not found at {FIXTURES} (set CHATKEEP_FIXTURES)"
)


@pytest.fixture
def home(vault: chatkeep.Vault) -> chatkeep.Vault:
    vault.store.add_user("alice")
    vault.store.create_runtime("alice", "synth-001")
    native_home = vault.store.route("alice", "synth-001")
    vault.store.append_message("alice", native_home.id, chatkeep.user_message("native"))
    return vault


def stored_conversations(vault: chatkeep.Vault, runtime_id: str) -> list[chatkeep.Conversation]:
    found = []
    for state in ("active", "archived"):
        found += [
            c
            for c in vault.store.list_conversations(
                "alice", runtime_id=runtime_id, state=state, limit=1000
            )
            if not c.is_primary
        ]
    return found


def test_every_fixture_with_conversations_imports_and_keeps_the_vault_healthy(
    home: chatkeep.Vault,
) -> None:
    native_before = snapshot(home.store, "alice")["runtimes"]
    total = 0
    for name in CONVERSATION_FIXTURES:
        result = import_export(home, "alice", FIXTURES / name)
        counts = result.record.counts
        # chatgpt-citations.json is a trimmed copy of a conversation in chatgpt-export.json:
        # it merges into that one (updated) instead of adding another.
        changed = counts.get("conversations_added", 0) + counts.get("conversations_updated", 0)
        assert changed >= 1, name
        total += result.record.counts.get("messages_added", 0)
    assert total > 0
    assert [r for r in home.store.list_runtimes("alice") if r.origin == "native"] == native_before
    assert [p for p in home.doctor() if p.severity == "error"] == []


def current_node_path(conversation: dict[str, Any]) -> list[str]:
    """The source's active path, computed independently of the importer."""
    mapping = conversation.get("mapping") or {}
    node_id = conversation.get("current_node")
    path: list[str] = []
    seen: set[str] = set()
    while node_id in mapping and node_id not in seen:
        seen.add(node_id)
        node = mapping[node_id]
        if node.get("message") is not None:
            path.append(node_id)
        node_id = node.get("parent")
    return list(reversed(path))


@pytest.mark.parametrize("name", CHATGPT_FIXTURES)
def test_the_stored_active_path_is_the_sources_current_node_path(
    home: chatkeep.Vault, name: str
) -> None:
    result = import_export(home, "alice", FIXTURES / name)
    raw = json.loads((FIXTURES / name).read_text(encoding="utf-8-sig"))
    by_source = {c.source_id: c for c in stored_conversations(home, result.record.runtime_id)}
    checked = 0
    for conversation in raw:
        expected = current_node_path(conversation)
        source_id = conversation.get("id") or conversation.get("conversation_id")
        if not expected or source_id not in by_source:
            continue
        stored = home.store.list_messages("alice", by_source[source_id].id)
        assert [m.metadata["source_id"] for m in stored] == expected, source_id
        checked += 1
    assert checked == sum(1 for c in raw if current_node_path(c))


@pytest.mark.parametrize("name", CONVERSATION_FIXTURES)
def test_reimporting_the_same_content_changes_nothing(
    home: chatkeep.Vault, name: str, tmp_path: Path
) -> None:
    first = import_export(home, "alice", FIXTURES / name)
    before = snapshot(home.store, "alice")
    again = import_export(home, "alice", FIXTURES / name)
    assert again.already_imported and again.record.id == first.record.id
    assert snapshot(home.store, "alice") == before
    # The same content in a different file (another sha256) merges to nothing new.
    copy = tmp_path / ("copy-" + Path(name).name)
    copy.write_bytes((FIXTURES / name).read_bytes() + b"\n")
    merged = import_export(home, "alice", copy)
    assert not merged.already_imported
    assert merged.record.counts.get("conversations_added", 0) == 0
    assert merged.record.counts.get("messages_added", 0) == 0
    conversations = [c for c in stored_conversations(home, merged.record.runtime_id)]
    assert {c.id for c in conversations} == {
        c.id
        for c in before["active"] + before["archived"]
        if not c.is_primary and c.origin == "imported"
    }


def test_a_sharded_chatgpt_export_with_its_manifest_and_assets(
    home: chatkeep.Vault, tmp_path: Path
) -> None:
    export = tmp_path / "chatgpt-export"
    export.mkdir()
    panchat = FIXTURES / "chatgpt" / "panchat"
    shutil.copy(panchat / "chatgpt_sharded_000.json", export / "conversations-000.json")
    shutil.copy(panchat / "chatgpt_sharded_001.json", export / "conversations-001.json")
    shutil.copy(panchat / "chatgpt_export_manifest.json", export / "export_manifest.json")
    shutil.copy(panchat / "chatgpt_asset_names.json", export / "conversation_asset_file_names.json")
    archive = shutil.make_archive(str(tmp_path / "download"), "zip", export)
    result = import_export(home, "alice", archive)
    record = result.record
    assert record.counts["conversations_added"] == 2
    assert any("conversations-404.json" in w for w in record.warnings)
    assert (home.root / record.stored_path).read_bytes() == Path(archive).read_bytes()
    assert home.doctor() == []


def test_the_cli_imports_reports_and_refuses_unknown_files(
    home: chatkeep.Vault, tmp_path: Path
) -> None:
    runner = CliRunner()
    base = ["--home", str(home.root.parent), "--user", "alice"]
    done = runner.invoke(
        cli, [*base, "import", str(FIXTURES / "chatgpt/librechat/chatgpt-tree.json"), "--json"]
    )
    assert done.exit_code == 0, done.output
    shape = json.loads(done.output)
    assert shape["platform"] == "chatgpt" and shape["counts"]["conversations_added"] == 1
    assert shape["dry_run"] is False and shape["already_imported"] is False
    listed = json.loads(runner.invoke(cli, [*base, "imports", "--json"]).output)
    assert [r["id"] for r in listed] == [shape["id"]]
    stray = tmp_path / "notes.txt"
    stray.write_text("just some notes")
    refused = runner.invoke(cli, [*base, "import", str(stray)])
    assert refused.exit_code == ImportFormatError.exit_code
    assert "chatgpt" in refused.output and "claude" in refused.output and "gemini" in refused.output


def test_a_dry_run_through_the_cli_changes_nothing(home: chatkeep.Vault) -> None:
    before = snapshot(home.store, "alice")
    runner = CliRunner()
    base = ["--home", str(home.root.parent), "--user", "alice"]
    done = runner.invoke(
        cli,
        [*base, "import", str(FIXTURES / "claude/420ai/sample-claude-export.json"), "--dry-run"],
    )
    assert done.exit_code == 0, done.output
    assert "Would import" in done.output
    assert snapshot(home.store, "alice") == before
    assert home.store.list_imports("alice") == []
    assert not (home.root / "imports").exists() or not any((home.root / "imports").iterdir())


def test_a_truncated_export_changes_nothing_and_keeps_no_copy(
    home: chatkeep.Vault, tmp_path: Path
) -> None:
    whole = (FIXTURES / "chatgpt/librechat/chatgpt-export.json").read_bytes()
    broken = tmp_path / "conversations.json"
    broken.write_bytes(whole[: int(len(whole) * 0.8)])  # the second conversation is cut
    before = snapshot(home.store, "alice")
    with pytest.raises(ImportFormatError):
        import_export(home, "alice", broken)
    assert snapshot(home.store, "alice") == before
    assert home.store.list_imports("alice") == []
    kept = home.root / "imports"
    assert not kept.exists() or list(kept.iterdir()) == []
    assert home.doctor() == []


def test_a_vvault_tree_becomes_one_imported_runtime_per_runtime(
    home: chatkeep.Vault, tmp_path: Path
) -> None:
    root = tmp_path / "vvault" / "users" / "shard_0000" / "devon"
    for runtime in ("synth-001", "nova"):
        folder = root / "instances" / runtime
        (folder / "chatty").mkdir(parents=True)
        (folder / "chatty" / f"chat_with_{runtime}.md").write_text(
            f"**User:** hello {runtime}\n\n**Assistant:** hi, I am {runtime}\n"
        )
        (folder / "2025-03-14_plans.md").write_text(
            "## User [2025-03-14 10:22]\nwhat are the plans?\n\n## Assistant\nsleep first\n"
        )
    first = import_export(home, "alice", tmp_path / "vvault")
    store = home.store
    imported = {r.id: r for r in store.list_runtimes("alice") if r.origin == "imported"}
    assert {"vvault-synth-001-001", "vvault-nova-001"} <= set(imported)
    for runtime_id, name in (("vvault-synth-001-001", "synth-001"), ("vvault-nova-001", "nova")):
        routed = store.route("alice", runtime_id)
        assert routed.source_platform == "vvault"
        assert [m.text for m in store.list_messages("alice", routed.id)] == [
            f"hello {name}",
            f"hi, I am {name}",
        ]
        listed = store.list_conversations("alice", runtime_id=runtime_id)
        assert listed[0].id == routed.id and len(listed) == 2
    assert first.record.counts["conversations_added"] == 4
    (tmp_path / "vvault" / "users" / "shard_0000" / "devon" / "note.txt").write_text("new file")
    again = import_export(home, "alice", tmp_path / "vvault")
    assert again.record.counts.get("conversations_added", 0) == 0
    assert again.record.counts.get("messages_added", 0) == 0
    assert home.doctor() == []


def test_again_brings_back_what_was_deleted_since(home: chatkeep.Vault) -> None:
    sample = FIXTURES / "chatgpt/librechat/chatgpt-tree.json"
    first = import_export(home, "alice", sample)
    (conversation,) = stored_conversations(home, first.record.runtime_id)
    home.store.delete_conversation("alice", conversation.id)
    assert import_export(home, "alice", sample).already_imported
    assert stored_conversations(home, first.record.runtime_id) == []
    again = import_export(home, "alice", sample, again=True)
    assert again.record.counts["conversations_added"] == 1
    assert len(stored_conversations(home, first.record.runtime_id)) == 1
