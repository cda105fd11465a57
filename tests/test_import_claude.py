"""The Claude.ai export parser: every fixture, batch zips, detection, malformed input."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import stat
import zipfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from chatkeep import importers
from chatkeep.errors import ImportFormatError
from chatkeep.importers import claude
from chatkeep.importers.model import ParsedExport, SourceConversation, SourceFile
from chatkeep.importers.source import ExportSource
from chatkeep.model import Part
from chatkeep.validate import check_json_value

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("CHATKEEP_FIXTURES", REPO / ".." / "shared" / "fixtures"))
pytestmark = pytest.mark.skipif(
    not FIXTURES.is_dir(), reason=f"no fixtures at {FIXTURES} (set CHATKEEP_FIXTURES)"
)
CLAUDE = FIXTURES / "claude"
SAMPLE = CLAUDE / "420ai" / "sample-claude-export.json"
PANCHAT = CLAUDE / "panchat"
KIND = re.compile(r"[a-z][a-z0-9_.-]{0,63}")


# -- helpers -------------------------------------------------------------------------------
def parse(path: Path) -> tuple[ParsedExport, list[SourceConversation]]:
    with ExportSource.open(path) as source:
        assert claude.IMPORTER.detect(source)
        export = claude.IMPORTER.parse(source)
        conversations = list(export.conversations)
    for conversation in conversations:
        for message in conversation.messages:
            for part in message.parts:
                assert KIND.fullmatch(part.kind), part.kind
                check_json_value("part data", part.data)
            check_json_value("metadata", message.metadata)
        check_json_value("metadata", conversation.metadata)
    check_json_value("export metadata", export.metadata)
    return export, conversations


def detect(path: Path) -> bool:
    with ExportSource.open(path) as source:
        return claude.IMPORTER.detect(source)


def leaves(conversation: SourceConversation) -> list[str]:
    parents = {m.parent_source_id for m in conversation.messages}
    return [m.source_id for m in conversation.messages if m.source_id not in parents]


def files(conversations: list[SourceConversation]) -> list[SourceFile]:
    return [f for c in conversations for m in c.messages for f in m.files]


def write(path: Path, value: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value), encoding="utf-8")
    return path


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=(2026, 8, 22, 0, 0, 0))
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return buffer.getvalue()


def utc(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=UTC)  # type: ignore[arg-type, misc]


# -- 420ai: a redacted real export, given as a bare file -----------------------------------------
def test_420ai_sample_counts_tree_and_blocks() -> None:
    export, conversations = parse(SAMPLE)
    assert export.platform == "claude"
    assert [c.source_id for c in conversations] == [
        "52caf7a2-3a14-4a2d-8883-a8741b3c92d0",
        "4cad368d-c568-453b-ac52-cf93d389b5b2",
        "95033e57-28b0-4720-b0a3-e370428f956e",
        "39c9595a-dd74-4f61-a703-fb0d18a2d0f0",
    ]
    assert [len(c.messages) for c in conversations] == [2, 2, 0, 2]
    assert [len(leaves(c)) for c in conversations] == [1, 1, 0, 1]
    assert [c.title for c in conversations] == ["redacted", "redacted", "Untitled", "Untitled"]
    assert files(conversations) == []
    assert export.skipped == {}
    assert export.warnings == []
    # the account uuid in the redacted export is the all-zero placeholder: no account
    assert (export.account, export.account_label) == (None, None)
    assert export.metadata["conversation_files"] == ["sample-claude-export.json"]

    first = conversations[0]
    assert first.created_at == utc(2025, 8, 7, 15, 32, 40, 100663)
    assert first.updated_at == utc(2025, 8, 7, 15, 32, 47, 274858)
    assert first.metadata["summary"] == "redacted"
    assert first.active_leaf_source_id is None and first.model is None
    user, answer = first.messages
    assert (user.role, user.parent_source_id) == ("user", None)  # the sentinel root
    assert (answer.role, answer.parent_source_id) == ("assistant", user.source_id)
    assert user.created_at == utc(2025, 8, 7, 15, 32, 41, 623137)
    assert user.parts == [
        Part(
            "text",
            "redacted",
            {
                "start_timestamp": "2025-08-07T15:32:41.606724Z",
                "stop_timestamp": "2025-08-07T15:32:41.606724Z",
                "citations": [],
            },
        )
    ]
    assert user.metadata == {"updated_at": "2025-08-07T15:32:41.623137Z"}

    # 94 interleaved blocks in one assistant turn, in order, nothing dropped
    turn = conversations[1].messages[1]
    assert turn.parent_source_id == conversations[1].messages[0].source_id
    assert len(turn.parts) == 94
    assert Counter(p.kind for p in turn.parts) == {
        "reasoning": 30,
        "tool_call": 30,
        "tool_result": 30,
        "text": 4,
    }
    assert [p.kind for p in turn.parts[:4]] == ["reasoning", "text", "tool_call", "tool_result"]
    thinking, text, call, result = turn.parts[:4]
    assert thinking.text == "redacted"
    assert thinking.data["start_timestamp"] == "2025-10-22T09:41:35.992014Z"
    assert thinking.data["stop_timestamp"] == "2025-10-22T09:41:40.022937Z"
    assert thinking.data["summaries"] == [{"summary": "redacted"}] * 3
    assert thinking.data["cut_off"] is False and "signature" not in thinking.data  # null dropped
    assert text.data == {
        "start_timestamp": "2025-10-22T09:41:40.186959Z",
        "stop_timestamp": "2025-10-22T09:41:40.512114Z",
        "citations": [],
    }
    assert call.text is None
    assert call.data["name"] == "redacted" and call.data["id"] is None
    assert call.data["input"] == {"path": "redacted", "description": "redacted"}
    assert call.data["display_content"] == {"type": "text", "text": "redacted"}
    assert call.data["start_timestamp"] == "2025-10-22T09:41:40.917139Z"
    assert result.text == "redacted"
    assert result.data["tool_use_id"] is None and result.data["is_error"] is False
    assert result.data["content"][0]["uuid"] == "91a9722c-1a9d-4437-a962-e79f9e899cc5"
    assert "start_timestamp" not in result.data  # null on tool results

    empty = conversations[2]
    assert empty.messages == [] and empty.metadata["summary"] == ""
    assert empty.created_at == utc(2025, 9, 30, 0, 19, 14, 260137)

    # 2026: UUIDv7 ids, `text: ""` and `content: []` → one empty text part
    late = conversations[3]
    assert [m.source_id for m in late.messages] == [
        "019d2703-3c40-7de0-9875-c558052f7e3f",
        "019d2703-3c40-7302-b8db-b80c7eab1c08",
    ]
    assert [m.parts for m in late.messages] == [[Part("text", "")], [Part("text", "")]]
    assert late.messages[1].parent_source_id == late.messages[0].source_id
    assert late.messages[1].created_at == utc(2026, 3, 25, 22, 0, 44, 257771)


def test_a_renamed_bare_file_and_a_bom_are_read(tmp_path: Path) -> None:
    renamed = tmp_path / "my-claude-backup.json"
    renamed.write_bytes(b"\xef\xbb\xbf" + SAMPLE.read_bytes())
    export, conversations = parse(renamed)
    assert len(conversations) == 4
    assert export.metadata["conversation_files"] == ["my-claude-backup.json"]


# -- panchat: a full v1/v2 folder ------------------------------------------------------------
def build_folder(root: Path) -> Path:
    shutil.copy(PANCHAT / "claude_conversations.json", root / "conversations.json")
    write(
        root / "users.json",
        [
            {
                "uuid": "acct-1",
                "full_name": "George P.",
                "email_address": "George.P+claude@example.org",
                "verified_phone_number": "+300000000",
            }
        ],
    )
    shutil.copy(PANCHAT / "claude_projects.json", root / "projects.json")
    (root / "projects").mkdir()
    shutil.copy(PANCHAT / "claude_project_dir.json", root / "projects" / "proj-9.json")
    shutil.copy(PANCHAT / "claude_memories.json", root / "memories.json")
    (root / "design_chats").mkdir()
    shutil.copy(PANCHAT / "claude_design_chat.json", root / "design_chats" / "design-1.json")
    write(root / "login_history.json", [{"ip": "192.0.2.1"}])
    return root


def test_panchat_folder_conversations_design_chat_and_side_files(tmp_path: Path) -> None:
    export, conversations = parse(build_folder(tmp_path))
    assert [c.source_id for c in conversations] == ["c-1", "design:design-1"]
    assert [len(c.messages) for c in conversations] == [2, 2]
    assert [len(leaves(c)) for c in conversations] == [1, 1]
    assert len(files(conversations)) == 3
    assert export.skipped == {} and export.warnings == []
    assert (export.account, export.account_label) == ("acct-1", "george-p-claude")
    assert export.metadata["user"] == {"uuid": "acct-1", "full_name": "George P."}
    assert export.metadata["not_imported"] == ["login_history.json"]
    assert export.metadata["design_chat_files"] == 1

    chat = conversations[0]
    assert chat.title == "Vault design"
    assert chat.metadata == {"project": {"uuid": "p-1", "name": "ModelCaddy"}}
    assert (chat.created_at, chat.updated_at) == (utc(2026, 8, 1, 10), utc(2026, 8, 1, 11))
    human, assistant = chat.messages
    assert (human.source_id, human.role, human.parent_source_id) == ("m-1", "user", None)
    # legacy messages without parent_message_uuid hang under the previous one
    assert (assistant.source_id, assistant.role, assistant.parent_source_id) == (
        "m-2",
        "assistant",
        "m-1",
    )
    # no extracted_content here: the attachment is a file record only (bytes never shipped)
    assert human.parts == [Part("text", "Should files be the source of truth?")]
    assert human.files == [SourceFile("spec.md", "text/markdown", None, 2048, "a-1")]
    assert human.metadata == {
        "attachments": [
            {"id": "a-1", "file_name": "spec.md", "file_type": "text/markdown", "file_size": 2048}
        ]
    }
    assert [p.kind for p in assistant.parts] == ["text", "tool_call", "citation_block"]
    assert assistant.parts[1].data == {"name": "search", "input": {"q": "vault"}, "id": None}
    # the unknown block is kept whole
    assert assistant.parts[2] == Part(
        "citation_block",
        None,
        {"type": "citation_block", "citation": "something new we do not model"},
    )

    design = conversations[1]
    assert design.title == "Chat"
    assert design.metadata == {
        "claude_kind": "design_chat",
        "project": {"uuid": "proj-9", "name": "Politis Hub"},
    }
    assert design.created_at == utc(2026, 8, 14, 6, 36, 35, 268000)
    d0, d1 = design.messages
    assert (d0.source_id, d0.parent_source_id, d0.role) == ("design:design-1:d0", None, "user")
    assert (d1.parent_source_id, d1.role) == (d0.source_id, "assistant")
    assert d1.created_at == utc(2026, 8, 14, 6, 37, 10)  # from the inner timestamp
    assert d0.metadata == {
        "kind": "chat",
        "attachments": [
            {"id": "att-1", "name": "Design System", "type": "design-system"},
            {"id": "att-2", "name": "screenshot.png", "type": "image"},
        ],
    }
    assert d0.parts == [
        Part("text", "Redo the landing page."),
        Part(
            "text",
            "Use the brand palette.",
            {
                "source": "attachment",
                "id": "att-1",
                "name": "Design System",
                "type": "design-system",
            },
        ),
    ]
    assert [(f.name, f.mime_type, f.member, f.pointer) for f in d0.files] == [
        ("Design System", "application/octet-stream", None, "att-1"),
        ("screenshot.png", "image/png", None, "att-2"),
    ]
    assert [p.kind for p in d1.parts] == ["reasoning", "text", "tool_call", "tool_result", "error"]
    assert d1.parts[2].data == {
        "name": "list_files",
        "input": {"path": ""},
        "id": "toolu_1",
        "type": "edit",
    }
    assert d1.parts[3] == Part(
        "tool_result",
        "Canvas.dc.html",
        {"tool_use_id": "toolu_1", "name": "list_files", "content": "Canvas.dc.html"},
    )
    assert d1.parts[4].text == "chat upstream error: Overloaded"
    assert d1.parts[4].data["debugInfo"] == {"errorType": "overloaded_error"}

    projects = {p["uuid"]: p for p in export.metadata["projects"]}
    assert projects["p-1"] == {
        "uuid": "p-1",
        "name": "ModelCaddy",
        "description": "Cross-model memory layer.",
        "created_at": "2026-07-01T09:00:00Z",
    }
    v2 = projects["proj-9"]
    assert (v2["name"], v2["prompt_template"], v2["docs_count"]) == ("Politis Hub", "", 1)
    assert v2["docs"] == [
        {
            "uuid": "doc-1",
            "filename": "brief.md",
            "created_at": "2026-03-27T07:24:00.000000+00:00",
            "chars": len("# Brief\n\nThe thing we are building."),
        }
    ]
    assert v2["creator"] == {"uuid": "acct-1", "full_name": "George"}
    assert export.metadata["memories"] == [
        {"shape": "row", "value": load(PANCHAT / "claude_memories.json")[0]}
    ]


@pytest.mark.parametrize("wrap", [False, True])
def test_memories_2026_shape(tmp_path: Path, wrap: bool) -> None:
    shutil.copy(PANCHAT / "claude_conversations.json", tmp_path / "conversations.json")
    value = load(PANCHAT / "claude_memories_v2.json")
    write(tmp_path / "memories.json", value if wrap else value[0])
    export, _ = parse(tmp_path)
    (entry,) = export.metadata["memories"]
    assert entry["shape"] == "account"
    assert entry["value"]["conversations_memory"].startswith("**Work context**")
    assert [f["path"] for f in entry["value"]["memory_files"]] == [
        "/areas/podium.md",
        "/profile.md",
    ]


def test_a_design_chat_alone_is_detected_and_parsed(tmp_path: Path) -> None:
    bare = tmp_path / "bare" / "chat.json"
    bare.parent.mkdir()
    shutil.copy(PANCHAT / "claude_design_chat.json", bare)
    _, conversations = parse(bare)
    assert [c.source_id for c in conversations] == ["design:design-1"]
    folder = tmp_path / "export" / "design_chats" / "design-1.json"
    folder.parent.mkdir(parents=True)
    shutil.copy(PANCHAT / "claude_design_chat.json", folder)
    _, conversations = parse(tmp_path / "export")
    assert [len(c.messages) for c in conversations] == [2]


# -- batch zips ------------------------------------------------------------------------------------
def test_batch_zips_are_all_read_and_duplicates_kept_once(tmp_path: Path) -> None:
    sample = load(SAMPLE)
    newer = json.loads(json.dumps(sample[0]))
    newer["updated_at"] = "2025-08-08T00:00:00Z"
    newer["chat_messages"].append(
        {
            "uuid": "later-reply",
            "sender": "human",
            "text": "and later",
            "content": [],
            "created_at": "2025-08-08T00:00:00Z",
            "parent_message_uuid": newer["chat_messages"][1]["uuid"],
        }
    )
    older_copy_of_panchat = load(PANCHAT / "claude_conversations.json")[0]
    older_copy_of_panchat = {**older_copy_of_panchat, "updated_at": "2026-08-01T10:30:00Z"}
    batch0 = zip_bytes(
        {
            "conversations.json": json.dumps(sample).encode(),
            "users.json": json.dumps([{"uuid": "acct-9", "email_address": "x@y.z"}]).encode(),
            "design_chats/design-1.json": (PANCHAT / "claude_design_chat.json").read_bytes(),
        }
    )
    batch1 = zip_bytes(
        {
            "conversations.json": json.dumps(
                [*load(PANCHAT / "claude_conversations.json"), newer]
            ).encode(),
            "memories.json": (PANCHAT / "claude_memories_v2.json").read_bytes(),
        }
    )
    batch2 = zip_bytes(
        {
            "conversations.json": json.dumps([older_copy_of_panchat]).encode(),
            "design_chats/design-1.json": (PANCHAT / "claude_design_chat.json").read_bytes(),
        }
    )
    outer = tmp_path / "claude-export.zip"
    outer.write_bytes(
        zip_bytes(
            {
                "data-abc-1700000000-ff-batch-0000.zip": batch0,
                "data-abc-1700000000-ff-batch-0001.zip": batch1,
                "data-abc-1700000000-ff-batch-0002.zip": batch2,
            }
        )
    )
    export, conversations = parse(outer)
    ids = [c.source_id for c in conversations]
    assert ids == [
        "4cad368d-c568-453b-ac52-cf93d389b5b2",
        "95033e57-28b0-4720-b0a3-e370428f956e",
        "39c9595a-dd74-4f61-a703-fb0d18a2d0f0",
        "c-1",
        "52caf7a2-3a14-4a2d-8883-a8741b3c92d0",
        "design:design-1",
    ]
    assert export.skipped == {"duplicate_conversations": 3}
    kept = conversations[4]
    assert len(kept.messages) == 3 and kept.updated_at == utc(2025, 8, 8)
    assert kept.messages[2].parent_source_id == kept.messages[1].source_id
    assert conversations[3].updated_at == utc(2026, 8, 1, 11)  # newer than the batch-2 copy
    assert export.metadata["conversation_files"] == [
        "data-abc-1700000000-ff-batch-0000/conversations.json",
        "data-abc-1700000000-ff-batch-0001/conversations.json",
        "data-abc-1700000000-ff-batch-0002/conversations.json",
    ]
    assert export.account == "acct-9" and export.account_label == "x"
    assert export.metadata["memories"][0]["shape"] == "account"


# -- trees, legacy lists and odd blocks --------------------------------------------------------
def message(uuid: str | None, sender: str, text: str, **extra: Any) -> dict[str, Any]:
    shape: dict[str, Any] = {"sender": sender, "text": text, "content": [], **extra}
    if uuid is not None:
        shape["uuid"] = uuid
    return shape


def test_branches_unknown_blocks_and_attachments(tmp_path: Path) -> None:
    root = claude.ROOT_SENTINEL
    chat = [
        message("u1", "human", "q", parent_message_uuid=root, created_at="2026-01-01T10:00:00Z"),
        message("a1", "assistant", "a", parent_message_uuid="u1"),
        message("u2", "human", "q2", parent_message_uuid="a1"),
        message("a2", "assistant", "first answer", parent_message_uuid="u2"),
        message("a2b", "assistant", "regenerated", parent_message_uuid="u2"),
        message("u2e", "human", "edited q2", parent_message_uuid="a1"),
        message("a2e", "assistant", "answer to the edit", parent_message_uuid="u2e"),
        message("r2", "human", "a second root", parent_message_uuid=None),
        "not a message",
        message(None, "robot", "no uuid, odd sender", parent_message_uuid="r2"),
        {
            "uuid": "blocks",
            "sender": "assistant",
            "parent_message_uuid": "a2e",
            "text": "flat text is ignored when there are blocks",
            "content": [
                {"type": "Weird Type!", "text": "kept", "x": 1},
                {"type": "image", "source": {"type": "base64"}},
                {"type": "9lives"},
                {"no": "type"},
                "a bare string block",
                {"type": "tool_result", "content": "plain string result", "is_error": True},
                {"type": "token_budget"},
            ],
            "attachments": [
                {
                    "file_name": "notes.txt",
                    "file_type": "txt",
                    "file_size": 12,
                    "extracted_content": "hello notes",
                }
            ],
            "files": [{"file_name": "photo.png", "file_uuid": "f-1"}],
            "files_v2": [{"file_name": "photo.png", "file_uuid": "f-1", "file_kind": "image"}],
        },
    ]
    write(
        tmp_path / "conversations.json",
        [
            {
                "uuid": "tree",
                "name": None,
                "chat_messages": chat,
                "current_leaf_message_uuid": "a2b",
                "settings": {"paprika_mode": "extended"},
                "is_starred": True,
                "model": "claude-sonnet-4",
            },
            {"name": "no uuid", "chat_messages": []},
            ["not a conversation"],
        ],
    )
    export, (conversation,) = parse(tmp_path)
    assert export.skipped == {
        "invalid_messages": 1,
        "conversations_without_uuid": 1,
        "invalid_conversations": 1,
    }
    assert conversation.title == "Untitled"
    assert conversation.active_leaf_source_id == "a2b"
    assert conversation.model == "claude-sonnet-4"
    assert conversation.metadata == {"settings": {"paprika_mode": "extended"}, "is_starred": True}
    by_id = {m.source_id: m for m in conversation.messages}
    assert len(by_id) == 10
    parents = {m.source_id: m.parent_source_id for m in conversation.messages}
    derived = next(
        i for i in parents if i not in {"u1", "a1", "u2", "a2", "a2b", "u2e", "a2e", "r2", "blocks"}
    )
    assert parents == {
        "u1": None,
        "a1": "u1",
        "u2": "a1",
        "a2": "u2",
        "a2b": "u2",
        "u2e": "a1",
        "a2e": "u2e",
        "r2": None,
        derived: "r2",
        "blocks": "a2e",
    }
    assert sorted(leaves(conversation)) == sorted(["a2", "a2b", derived, "blocks"])
    assert by_id["u1"].created_at == utc(2026, 1, 1, 10)
    assert by_id["a2b"].parts == [Part("text", "regenerated")]  # content [] → flat text
    odd = by_id[derived]
    assert (odd.role, odd.author) == ("assistant", "robot")
    assert len(derived) == 32 and any("no uuid" in w for w in conversation.warnings)

    parts = by_id["blocks"].parts
    assert [p.kind for p in parts] == [
        "weird_type",
        "claude.image",
        "x_9lives",
        "unknown",
        "unknown",
        "tool_result",
        "token_budget",
        "text",
    ]
    assert parts[0] == Part("weird_type", "kept", {"type": "Weird Type!", "text": "kept", "x": 1})
    assert parts[1].data == {"type": "image", "source": {"type": "base64"}}
    assert parts[4] == Part("unknown", "a bare string block", {"value": "a bare string block"})
    assert parts[5] == Part(
        "tool_result",
        "plain string result",
        {"tool_use_id": None, "content": "plain string result", "is_error": True},
    )
    # the attachment's extracted text is kept as a text part marked as such
    assert parts[7] == Part(
        "text",
        "hello notes",
        {"source": "attachment", "file_name": "notes.txt", "file_type": "txt", "file_size": 12},
    )
    assert by_id["blocks"].metadata["files_v2"] == [
        {"file_name": "photo.png", "file_uuid": "f-1", "file_kind": "image"}
    ]
    assert "extracted_content" not in by_id["blocks"].metadata["attachments"][0]
    assert by_id["blocks"].files == [
        SourceFile("notes.txt", "text/plain", None, 12, None),
        SourceFile("photo.png", "image/png", None, None, "f-1"),
    ]


def test_part_kinds_are_sanitised() -> None:
    assert claude.part_kind("citation_block") == "citation_block"
    assert claude.part_kind("Server Tool-Use") == "server_tool-use"
    assert claude.part_kind("file") == "claude.file"
    assert claude.part_kind("éé") == "unknown"
    assert claude.part_kind(None) == "unknown"
    assert claude.part_kind("x" * 100) == "x" * 64
    assert claude.account_label("Émile.Zola") == "mile-zola"


# -- detection ------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", sorted((FIXTURES / "chatgpt").rglob("*.json")), ids=str)
def test_chatgpt_fixtures_are_not_claude(path: Path) -> None:
    assert not detect(path)


@pytest.mark.parametrize("path", sorted((FIXTURES / "gemini").rglob("*.json")), ids=str)
def test_gemini_fixtures_are_not_claude(path: Path) -> None:
    assert not detect(path)


@pytest.mark.parametrize(
    "name",
    [
        "claude_projects.json",
        "claude_project_dir.json",
        "claude_memories.json",
        "claude_memories_v2.json",
    ],
)
def test_side_files_alone_are_not_an_export(name: str) -> None:
    assert not detect(PANCHAT / name)


def test_detection_by_content(tmp_path: Path) -> None:
    assert detect(SAMPLE)
    assert detect(PANCHAT / "claude_conversations.json")
    assert detect(PANCHAT / "claude_design_chat.json")

    empty = tmp_path / "empty"
    write(empty / "conversations.json", [])
    assert not detect(empty)  # an empty array says nothing by itself
    write(empty / "users.json", [{"uuid": "u", "email_address": "a@b.c"}])
    assert detect(empty)
    export, conversations = parse(empty)
    assert conversations == [] and export.account == "u"

    other = tmp_path / "other"
    write(other / "conversations.json", [{"id": "x", "mapping": {}}])
    write(other / "users.json", [])
    assert not detect(other)
    garbage = tmp_path / "garbage.json"
    garbage.write_bytes(b'[{"uuid": ')
    assert not detect(garbage)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    assert not detect(text)
    scalars = tmp_path / "scalars.json"
    write(scalars, [1, 2, 3])
    assert not detect(scalars)


# -- malformed input ------------------------------------------------------------------------------
def test_truncated_conversations_raise_naming_the_file(tmp_path: Path) -> None:
    write(tmp_path / "users.json", [{"uuid": "u"}])
    (tmp_path / "conversations.json").write_bytes(SAMPLE.read_bytes()[:20_000])
    with ExportSource.open(tmp_path) as source:
        assert claude.IMPORTER.detect(source)
        export = claude.IMPORTER.parse(source)
        with pytest.raises(ImportFormatError, match=r"conversations\.json is not valid JSON"):
            list(export.conversations)


def test_truncated_batch_file_raises_before_anything_is_yielded(tmp_path: Path) -> None:
    shutil.copy(SAMPLE, write(tmp_path / "b0" / "conversations.json", []))
    (tmp_path / "b1").mkdir()
    (tmp_path / "b1" / "conversations.json").write_bytes(SAMPLE.read_bytes()[:-10])
    with ExportSource.open(tmp_path) as source:
        export = claude.IMPORTER.parse(source)
        with pytest.raises(ImportFormatError, match=r"b1/conversations\.json"):
            next(export.conversations)


def test_a_conversations_object_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "conversations.json", {"uuid": "x", "chat_messages": []})
    write(tmp_path / "users.json", [{"uuid": "u"}])
    with ExportSource.open(tmp_path) as source:
        export = claude.IMPORTER.parse(source)
        with pytest.raises(ImportFormatError, match="does not hold a JSON array"):
            list(export.conversations)


def test_truncated_side_file_raises_naming_it(tmp_path: Path) -> None:
    shutil.copy(SAMPLE, tmp_path / "conversations.json")
    (tmp_path / "users.json").write_text('[{"uuid": "u"')
    with (
        ExportSource.open(tmp_path) as source,
        pytest.raises(ImportFormatError, match=r"users\.json"),
    ):
        claude.IMPORTER.parse(source)


def test_the_registry_picks_claude(tmp_path: Path) -> None:
    folder = build_folder(tmp_path)
    for path in (
        SAMPLE,
        PANCHAT / "claude_conversations.json",
        PANCHAT / "claude_design_chat.json",
        folder,
    ):
        with ExportSource.open(path) as source:
            assert importers.choose(source).platform == "claude"


def test_huge_memories_are_summarised_not_fatal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(claude, "METADATA_BUDGET", 2_000)
    shutil.copy(PANCHAT / "claude_conversations.json", tmp_path / "conversations.json")
    rows = [{"uuid": f"m{i}", "content": "x" * 100} for i in range(50)]
    write(tmp_path / "memories.json", rows)
    shutil.copy(PANCHAT / "claude_projects.json", tmp_path / "projects.json")
    export, _ = parse(tmp_path)
    assert export.metadata["memories"] == {"not_kept": True, "entries": 50, "bytes": 7591}
    assert export.metadata["projects"][0]["name"] == "ModelCaddy"
    assert any(w.startswith("memories (7591 bytes") for w in export.warnings)
