"""The ChatGPT export parser, against every ChatGPT fixture and hand-built exports.

Fixtures live in ``shared/fixtures`` beside the repository (``CHATKEEP_FIXTURES``
overrides it); exports in the v2 layout are assembled in ``tmp_path`` from them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tracemalloc
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from chatkeep.errors import ImportFormatError
from chatkeep.importers.chatgpt import IMPORTER
from chatkeep.importers.model import ParsedExport, SourceConversation, SourceFile, SourceMessage
from chatkeep.importers.source import ExportSource
from chatkeep.model import Part
from chatkeep.validate import check_json_value

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("CHATKEEP_FIXTURES", REPO / ".." / "shared" / "fixtures"))
CHATGPT = FIXTURES / "chatgpt"
PANCHAT = CHATGPT / "panchat"

pytestmark = pytest.mark.skipif(not CHATGPT.is_dir(), reason=f"no fixtures at {FIXTURES}")

KIND_RE = re.compile(r"[a-z][a-z0-9_.-]{0,63}")
PNG = b"\x89PNG\r\n\x1a\n" + bytes(24)
JPEG = b"\xff\xd8\xff\xe0" + bytes(28)
WEBP = b"RIFF\x10\x00\x00\x00WEBPVP8 " + bytes(16)

# Conversation ids of the fixtures.
EXPORT_1 = "d6523d1e-7ec3-474f-a363-0e9dffdb3d93"
EXPORT_2 = "7c5ab593-dbab-43bd-862d-2c3c1eeebf6a"
TREE = "d5dc5307-6807-41a0-8b04-4acee626eeb7"
MODERN_1 = "6b0f0d9c-0000-4000-8000-000000000001"
MODERN_CORRUPT = "6b0f0d9c-0000-4000-8000-000000000002"
MODERN_3 = "6b0f0d9c-0000-4000-8000-000000000003"
SAMPLE_0 = "6919eca9-1470-8332-a4c6-264eb782adeb"
SAMPLE_1 = "6919abcd-2233-4455-6677-8899aabbccdd"
SAMPLE_2 = "6919ef01-3344-5566-7788-99aabbccddee"
SAMPLE_EMPTY = "6919dead-beef-0000-1111-222233334444"


# -- helpers -----------------------------------------------------------------------------


def load(path: Path) -> tuple[ParsedExport, dict[str, SourceConversation]]:
    """Detect, parse and consume an export; check what must hold for any of them."""
    with ExportSource.open(path) as source:
        assert IMPORTER.detect(source)
        parsed = IMPORTER.parse(source)
        conversations = list(parsed.conversations)
    for conversation in conversations:
        check_conversation(conversation)
    check_json_value("export metadata", parsed.metadata)
    by_id = {c.source_id: c for c in conversations}
    assert list(by_id) == [c.source_id for c in conversations]
    return parsed, by_id


def detected(path: Path) -> bool:
    with ExportSource.open(path) as source:
        return IMPORTER.detect(source)


def check_conversation(conversation: SourceConversation) -> None:
    check_json_value("conversation metadata", conversation.metadata)
    assert conversation.title
    ids = [m.source_id for m in conversation.messages]
    assert len(ids) == len(set(ids))
    for message in conversation.messages:
        assert message.role in ("system", "user", "assistant", "tool")
        assert message.hidden == ("hidden_reason" in message.metadata)
        check_json_value("message metadata", message.metadata)
        for part in message.parts:
            assert KIND_RE.fullmatch(part.kind), part.kind
            check_json_value("part data", part.data)
        for file in message.files:
            assert file.name and "/" not in file.name
            assert file.mime_type


def shape(conversation: SourceConversation) -> dict[str, int]:
    ids = {m.source_id for m in conversation.messages}
    parents = {m.parent_source_id for m in conversation.messages}
    files = [f for m in conversation.messages for f in m.files]
    return {
        "messages": len(conversation.messages),
        "roots": sum(m.parent_source_id not in ids for m in conversation.messages),
        "leaves": sum(m.source_id not in parents for m in conversation.messages),
        "hidden": sum(m.hidden for m in conversation.messages),
        "files_present": sum(f.member is not None for f in files),
        "files_missing": sum(f.member is None for f in files),
    }


def active_path(conversation: SourceConversation) -> list[str]:
    """The parsed active branch: from the active leaf up the parent ids, root first."""
    by_id = {m.source_id: m for m in conversation.messages}
    path: list[str] = []
    current = conversation.active_leaf_source_id
    while current in by_id and current not in path:
        path.append(current)
        current = by_id[current].parent_source_id
    return path[::-1]


def source_path(raw: dict[str, Any]) -> list[str]:
    """The export's own active branch: ``current_node`` up its ``parent`` pointers,
    nodes without a message left out."""
    mapping = raw.get("mapping") or {}
    path: list[str] = []
    seen: set[str] = set()
    node = raw.get("current_node")
    while node in mapping and node not in seen:
        seen.add(node)
        if mapping[node].get("message") is not None:
            path.append(node)
        node = mapping[node].get("parent")
    return path[::-1]


def raw_conversations(path: Path) -> dict[str, dict[str, Any]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return {c.get("id") or c["conversation_id"]: c for c in data}


def messages(conversation: SourceConversation) -> dict[str, SourceMessage]:
    return {m.source_id: m for m in conversation.messages}


def raw_content(path: Path, conversation: str, node: str) -> Any:
    return raw_conversations(path)[conversation]["mapping"][node]["message"]["content"]


def epoch(value: float) -> datetime:
    return datetime.fromtimestamp(value, tz=UTC)


def zip_folder(folder: Path, target: Path, wrapper: str = "") -> Path:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, wrapper + path.relative_to(folder).as_posix())
    return target


def write_json(path: Path, value: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value), encoding="utf-8")
    return path


def node(
    node_id: str, parent: str | None, role: str | None, content: Any = None, **extra: Any
) -> dict[str, Any]:
    """A mapping node; ``role=None`` makes a structural node without a message."""
    if role is None:
        return {"id": node_id, "parent": parent, "children": [], "message": None}
    author = {"role": role, "name": extra.pop("name", None)}
    if content is None:
        content = {"content_type": "text", "parts": [f"text of {node_id}"]}
    message = {"id": node_id, "author": author, "content": content, **extra}
    message.setdefault("create_time", 1_750_000_000.0)
    return {"id": node_id, "parent": parent, "children": [], "message": message}


def conversation(conv_id: str, nodes: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "id": conv_id,
        "title": extra.pop("title", f"title {conv_id}"),
        "create_time": 1_750_000_000.0,
        "update_time": 1_750_000_100.0,
        "mapping": {n["id"]: n for n in nodes},
        "current_node": extra.pop("current_node", nodes[-1]["id"] if nodes else None),
        **extra,
    }


# -- every fixture: exact counts and the active branch ----------------------------------------

EXPECTED: dict[str, dict[str, dict[str, int]]] = {
    "librechat/chatgpt-export.json": {
        EXPORT_1: dict(messages=16, roots=1, leaves=1, hidden=10, files_present=0, files_missing=0),
        EXPORT_2: dict(messages=5, roots=1, leaves=1, hidden=1, files_present=0, files_missing=0),
    },
    "librechat/chatgpt-tree.json": {
        TREE: dict(messages=12, roots=1, leaves=3, hidden=1, files_present=0, files_missing=0),
    },
    "librechat/chatgpt-citations.json": {
        EXPORT_1: dict(messages=2, roots=1, leaves=1, hidden=1, files_present=0, files_missing=0),
    },
    "librechat/chatgpt-modern-export.json": {
        MODERN_1: dict(messages=5, roots=1, leaves=1, hidden=1, files_present=0, files_missing=0),
        MODERN_CORRUPT: dict(
            messages=0, roots=0, leaves=0, hidden=0, files_present=0, files_missing=0
        ),
        MODERN_3: dict(messages=2, roots=1, leaves=1, hidden=0, files_present=0, files_missing=0),
    },
    "420ai/sample-chatgpt-export.json": {
        SAMPLE_0: dict(messages=2, roots=1, leaves=1, hidden=0, files_present=0, files_missing=0),
        SAMPLE_1: dict(messages=4, roots=1, leaves=1, hidden=2, files_present=0, files_missing=0),
        SAMPLE_2: dict(messages=2, roots=1, leaves=1, hidden=0, files_present=0, files_missing=1),
        SAMPLE_EMPTY: dict(
            messages=0, roots=0, leaves=0, hidden=0, files_present=0, files_missing=0
        ),
    },
    "panchat/chatgpt_branched.json": {
        "conv-1": dict(messages=5, roots=1, leaves=2, hidden=1, files_present=0, files_missing=1),
    },
    "panchat/chatgpt_sharded_000.json": {
        "sh-1": dict(messages=3, roots=1, leaves=1, hidden=0, files_present=0, files_missing=3),
    },
    "panchat/chatgpt_sharded_001.json": {
        "sh-2": dict(messages=2, roots=1, leaves=1, hidden=1, files_present=0, files_missing=0),
    },
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_counts_and_active_branch(name: str) -> None:
    path = CHATGPT / name
    parsed, conversations = load(path)
    assert parsed.platform == "chatgpt"
    assert parsed.skipped == {}
    assert parsed.warnings == []
    assert parsed.account is None and parsed.account_label is None
    assert {k: shape(c) for k, c in conversations.items()} == EXPECTED[name]
    raw = raw_conversations(path)
    assert list(conversations) == list(raw)
    for conv_id, conv in conversations.items():
        expected = source_path(raw[conv_id])
        if conv.active_leaf_source_id is None:
            assert any("current_node" in w or "no m" in w for w in conv.warnings)
        else:
            assert expected, conv_id
        assert active_path(conv) == expected
        # Every node with a message is a message, under its node id.
        assert [m.source_id for m in conv.messages] == [
            k for k, n in (raw[conv_id].get("mapping") or {}).items() if n["message"] is not None
        ]


def test_export_fixture_browsing_chain() -> None:
    path = CHATGPT / "librechat/chatgpt-export.json"
    _, conversations = load(path)
    conv = conversations[EXPORT_1]
    assert conv.title == "Conversation 1. Web Search"
    assert conv.created_at == epoch(1704629915.775304)
    assert conv.model is None
    assert conv.archived is False
    assert conv.metadata["gizmo_id"] is None
    assert conv.metadata["current_node"] == "88a0cf9f-e860-4b34-8e7e-65f8346f4862"
    by_id = {m.source_id: m for m in conv.messages}
    path_roles = [by_id[i].role for i in active_path(conv)]
    assert path_roles == [
        "system", "user", "assistant", "tool", "assistant", "tool", "tool", "assistant",
        "user", "assistant", "tool", "assistant", "tool", "assistant", "user", "assistant",
    ]  # fmt: skip
    system = by_id["6d251922-28a1-48a5-af9f-687fab4184a8"]
    assert system.hidden and system.metadata["hidden_reason"] == "visually_hidden"
    assert system.created_at is None and system.parent_source_id is None
    assert system.parts == [Part("text", "")]
    search = by_id["412dd50f-40c9-4f21-9102-fe148eb41a0b"]
    assert search.hidden and search.metadata["hidden_reason"] == "tool_call"
    assert search.parts[0].kind == "code" and search.parts[0].text.startswith("search(")
    assert search.parts[0].data == {"language": "unknown"}
    assert search.metadata["recipient"] == "browser" and search.model == "gpt-4"
    display = by_id["374bbcc8-2013-4387-8cd8-3e64abbd60ca"]
    assert display.role == "tool" and display.author == "browser"
    assert display.metadata["hidden_reason"] == "content_type:tether_browsing_display"
    raw_display = raw_content(path, EXPORT_1, "374bbcc8-2013-4387-8cd8-3e64abbd60ca")
    assert display.parts == [
        Part("chatgpt.tether_browsing_display", raw_display["result"], raw_display)
    ]
    assert display.metadata["_cite_metadata"]["citation_format"]["name"] == "tether_og"
    quote = by_id["b87c7f57-a6f4-4f4f-999f-38bd70981ae0"]
    raw_quote = raw_content(path, EXPORT_1, quote.source_id)
    assert quote.parts == [Part("chatgpt.tether_quote", raw_quote["text"], raw_quote)]
    assert quote.metadata["hidden_reason"] == "weight_zero"
    answer = by_id["88a0cf9f-e860-4b34-8e7e-65f8346f4862"]
    assert not answer.hidden and answer.role == "assistant" and answer.model == "gpt-4"
    assert answer.created_at == epoch(1704630034.629284)
    assert answer.metadata["end_turn"] is True and answer.metadata["weight"] == 1.0
    assert answer.metadata["status"] == "finished_successfully"
    assert "citations" in answer.metadata and "finish_details" in answer.metadata
    visible = [m for m in conv.messages if not m.hidden]
    assert [m.role for m in visible] == ["user", "assistant"] * 3
    assert "【" in visible[1].parts[0].text  # citation markers kept verbatim
    second = conversations[EXPORT_2]
    assert [m.model for m in second.messages if m.role == "assistant"] == [
        "text-davinci-002-render-sha"
    ] * 2


def test_tree_fixture_keeps_edit_and_regeneration_branches() -> None:
    _, conversations = load(CHATGPT / "librechat/chatgpt-tree.json")
    conv = conversations[TREE]
    by_id = messages(conv)
    children: dict[str | None, list[str]] = {}
    for message in conv.messages:
        children.setdefault(message.parent_source_id, []).append(message.source_id)
    forks = {p: c for p, c in children.items() if len(c) > 1}
    assert forks == {
        # An edited prompt: two user siblings.
        "bda8a275-886d-4f59-b38c-d7037144f0d5": [
            "aaa24023-b02f-4d49-b568-5856b41750c0",
            "aaa236a3-cdfc-4eb1-b5c5-790c6641f880",
        ],
        # A regenerated answer: two assistant siblings.
        "aaa20127-b9e3-44f6-afbe-a2475838625a": [
            "d0d2a7df-d2fc-4df9-bf0a-1c5121e227ae",
            "f63b8e17-aa5c-4ca6-a1bf-d4d285e269b8",
        ],
    }
    assert {by_id[i].role for i in forks["bda8a275-886d-4f59-b38c-d7037144f0d5"]} == {"user"}
    assert conv.active_leaf_source_id == "f63b8e17-aa5c-4ca6-a1bf-d4d285e269b8"
    assert len(active_path(conv)) == 7
    assert conv.model == "text-davinci-002-render-sha"


def test_citations_fixture_keeps_dangling_references_for_the_engine() -> None:
    _, conversations = load(CHATGPT / "librechat/chatgpt-citations.json")
    conv = conversations[EXPORT_1]
    first, second = conv.messages
    # The parent is not in the mapping: passed on as is; the engine makes it a root.
    assert first.parent_source_id == "5cc5e87b-2b74-485a-b3a7-23cb25f202db"
    assert second.parent_source_id == first.source_id
    assert conv.active_leaf_source_id is None
    assert conv.warnings == [
        f"conversation '{EXPORT_1}': its current_node "
        "'88a0cf9f-e860-4b34-8e7e-65f8346f4862' is not in the mapping; "
        "the newest leaf is used as the active branch"
    ]
    citation = second.metadata["citations"][0]
    assert {"start_ix", "end_ix", "metadata"} <= set(citation)


def test_modern_fixture_custom_instructions_and_missing_mapping() -> None:
    path = CHATGPT / "librechat/chatgpt-modern-export.json"
    _, conversations = load(path)
    conv = conversations[MODERN_1]
    assert conv.model == "gpt-5-thinking"
    assert conv.created_at == epoch(1756000000.123456)
    assert conv.updated_at == epoch(1756000400.654321)
    assert conv.metadata["custom_instructions"] == {
        "user_profile": "The user is an SRE.",
        "user_instructions": "Answer concisely.",
        "source_message_id": "ctx-node",
    }
    assert conv.metadata["memory_scope"] == "global_enabled"
    assert conv.metadata["is_do_not_remember"] is False
    assert "mapping" not in conv.metadata and "title" not in conv.metadata
    by_id = messages(conv)
    context = by_id["ctx-node"]
    assert context.hidden and context.metadata["hidden_reason"] == "visually_hidden"
    assert context.role == "user" and context.created_at is None
    assert context.metadata["weight"] == 0 and context.metadata["is_user_system_message"]
    raw_context = raw_content(path, MODERN_1, "ctx-node")
    assert context.parts == [
        Part(
            "chatgpt.user_editable_context",
            "The user is an SRE.\n\nAnswer concisely.",
            raw_context,
        )
    ]
    assert by_id["user-1"].parent_source_id == "ctx-node"
    assert by_id["user-1"].metadata["request_id"] == "abc123"
    assert by_id["assistant-1"].metadata["channel"] == "final"
    assert by_id["assistant-1"].model is None
    assert by_id["assistant-2"].model == "o4-mini"
    assert "weight" not in conversations[MODERN_3].messages[0].metadata
    corrupt = conversations[MODERN_CORRUPT]
    assert corrupt.title == "Corrupted entry" and corrupt.messages == []
    assert corrupt.model == "gpt-5" and corrupt.active_leaf_source_id is None
    assert corrupt.warnings == [
        f"conversation '{MODERN_CORRUPT}': has no mapping; imported with no messages"
    ]


def test_420ai_fixture_reasoning_image_and_empty_conversation() -> None:
    path = CHATGPT / "420ai/sample-chatgpt-export.json"
    _, conversations = load(path)
    reasoning = conversations[SAMPLE_1]
    by_id = messages(reasoning)
    # Nodes have no ``children``: the tree comes from ``parent`` alone.
    assert [m.parent_source_id for m in reasoning.messages] == [
        None,
        "node-1-user",
        "node-1-thoughts",
        "node-1-asst",
    ]
    thoughts = by_id["node-1-thoughts"]
    raw_thoughts = raw_content(path, SAMPLE_1, "node-1-thoughts")
    assert thoughts.parts == [Part("reasoning", "redacted\nredacted", raw_thoughts)]
    assert thoughts.parts[0].data["thoughts"] == [{"summary": "redacted", "content": "redacted"}]
    assert thoughts.metadata["hidden_reason"] == "content_type:thoughts"
    assert thoughts.metadata["message_id"] == "msg-1-thoughts"
    recap = by_id["node-1-recap"]
    assert recap.parts == [Part("reasoning", "redacted recap", {"content_type": "reasoning_recap"})]
    assert recap.metadata["hidden_reason"] == "content_type:reasoning_recap"
    assert not by_id["node-1-asst"].hidden
    assert reasoning.active_leaf_source_id == "node-1-recap"  # what the export says
    assert all(m.model == "gpt-5-1" for m in reasoning.messages if m.role == "assistant")
    image_message = conversations[SAMPLE_2].messages[0]
    pointer = raw_content(path, SAMPLE_2, "node-2-user")["parts"][0]
    assert image_message.parts == [
        Part("image", None, pointer),
        Part("text", "redacted multimodal prompt"),
    ]
    assert image_message.files == [
        SourceFile(
            name="file-REDACTED",
            mime_type="application/octet-stream",
            member=None,
            size=12345,
            pointer="file-service://file-REDACTED",
        )
    ]
    empty = conversations[SAMPLE_EMPTY]
    assert empty.messages == [] and empty.active_leaf_source_id is None
    assert empty.title == "redacted empty conversation"
    assert empty.warnings == [f"conversation '{SAMPLE_EMPTY}': has no messages"]


def test_panchat_branched_fixture() -> None:
    _, conversations = load(PANCHAT / "chatgpt_branched.json")
    conv = conversations["conv-1"]
    assert conv.title == "Auth refactor"
    assert conv.created_at == epoch(1750000000.5)
    by_id = messages(conv)
    assert [by_id[i].role for i in ("n0", "n1", "n2", "n3", "n4")] == [
        "system",
        "user",
        "assistant",
        "assistant",
        "user",
    ]
    assert by_id["n2"].parent_source_id == by_id["n3"].parent_source_id == "n1"
    assert (by_id["n2"].model, by_id["n3"].model) == ("gpt-4o", "gpt-5.2")
    assert by_id["n0"].metadata["hidden_reason"] == "visually_hidden"
    assert by_id["n1"].created_at == epoch(1750000100.0)
    assert by_id["n1"].metadata == {"content_type": "text"}  # no id, no metadata
    image = by_id["n4"]
    assert image.parts == [
        Part("text", "See this diagram:"),
        Part(
            "image",
            None,
            {
                "asset_pointer": "file-service://abc",
                "content_type": "image_asset_pointer",
                "size_bytes": 4096,
            },
        ),
    ]
    assert image.files == [
        SourceFile(name="abc", member=None, size=4096, pointer="file-service://abc")
    ]
    assert active_path(conv) == ["n0", "n1", "n3", "n4"]


# -- the v2 layout: shards, manifest, asset map -------------------------------------------------


def build_v2(folder: Path) -> Path:
    folder.mkdir(parents=True)
    shutil.copyfile(PANCHAT / "chatgpt_sharded_000.json", folder / "conversations-000.json")
    shutil.copyfile(PANCHAT / "chatgpt_sharded_001.json", folder / "conversations-001.json")
    shutil.copyfile(PANCHAT / "chatgpt_export_manifest.json", folder / "export_manifest.json")
    shutil.copyfile(
        PANCHAT / "chatgpt_asset_names.json", folder / "conversation_asset_file_names.json"
    )
    (folder / "file-abc123.dat").write_bytes(PNG)
    write_json(
        folder / "user.json",
        {
            "id": "user-Abc123",
            "email": "Devon.Example@example.com",
            "chatgpt_plus_user": True,
            "phone_number": "+15550100",
        },
    )
    (folder / "chat.html").write_text("<html>the same conversations again</html>")
    write_json(folder / "message_feedback.json", [{"rating": "thumbsUp"}, {"rating": "x"}])
    write_json(folder / "shared_conversations.json", [])
    return folder


@pytest.fixture(params=["folder", "zip"])
def v2_export(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    folder = build_v2(tmp_path / "export")
    if request.param == "folder":
        return folder
    return zip_folder(folder, tmp_path / "export.zip", wrapper="chatgpt-2026-08-20/")


def test_v2_export_reads_shards_in_manifest_order(v2_export: Path) -> None:
    parsed, conversations = load(v2_export)
    assert list(conversations) == ["sh-1", "sh-2"]
    assert parsed.warnings == [
        "export_manifest.json lists conversations-404.json but the export does not contain "
        "it; its conversations are not imported"
    ]
    assert {k: shape(c) for k, c in conversations.items()} == {
        "sh-1": dict(messages=3, roots=1, leaves=1, hidden=0, files_present=1, files_missing=2),
        "sh-2": dict(messages=2, roots=1, leaves=1, hidden=1, files_present=0, files_missing=0),
    }
    for conv_id, raw in raw_conversations(PANCHAT / "chatgpt_sharded_000.json").items():
        assert active_path(conversations[conv_id]) == source_path(raw) == ["n0", "n1", "n2"]
    assert active_path(conversations["sh-2"]) == ["m0", "m1"]
    assert conversations["sh-1"].metadata["source_file"] == "conversations-000.json"
    assert conversations["sh-2"].metadata["source_file"] == "conversations-001.json"


def test_v2_export_files_voice_and_attachments(v2_export: Path) -> None:
    _, conversations = load(v2_export)
    by_id = messages(conversations["sh-1"])
    upload = by_id["n0"]
    # The image pointer and the attachment listing name the same file: one record.
    assert upload.files == [
        SourceFile(
            name="diagram.png",
            mime_type="image/png",
            member="file-abc123.dat",
            size=len(PNG),
            pointer="file-service://file-abc123",
        ),
        SourceFile(
            name="products.csv",
            mime_type="text/csv",
            member=None,
            size=6272133,
            pointer="file-doc999",
        ),
    ]
    assert [p.kind for p in upload.parts] == ["image", "text"]
    assert upload.metadata["attachments"][1]["name"] == "products.csv"
    spoken = by_id["n1"]
    assert spoken.parts == [
        Part(
            "text",
            "The diagram shows the token rotation flow.",
            {"source": "audio_transcription", "decoding_id": None, "direction": "out"},
        )
    ]
    assert spoken.model == "gpt-5.2" and not spoken.hidden
    voice = by_id["n2"]
    raw_voice = raw_content(PANCHAT / "chatgpt_sharded_000.json", "sh-1", "n2")["parts"][0]
    assert voice.parts == [Part("file", None, raw_voice)]
    assert voice.files == [
        SourceFile(
            name="file_00000000deadbeef.wav",
            mime_type="audio/wav",
            member=None,
            size=641358,
            pointer="sediment://file_00000000deadbeef",
        )
    ]
    thoughts = conversations["sh-2"].messages[1]
    assert thoughts.parts[0].kind == "reasoning"
    assert thoughts.parts[0].text == "Weighing the options\nThe user wants the short answer."
    assert thoughts.parts[0].data["source_analysis_msg_id"] == "m0"
    assert conversations["sh-2"].active_leaf_source_id == "m1"


def test_v2_export_account_and_side_files(v2_export: Path) -> None:
    parsed, _ = load(v2_export)
    assert parsed.account == "user-Abc123"
    assert parsed.account_label == "devon-example"
    metadata = parsed.metadata
    assert metadata["user"] == {
        "id": "user-Abc123",
        "email": "Devon.Example@example.com",
        "chatgpt_plus_user": True,
    }
    assert "+15550100" not in json.dumps(metadata)
    assert metadata["side_files"]["message_feedback.json"]["items"] == 2
    assert metadata["side_files"]["shared_conversations.json"]["items"] == 0
    assert metadata["ignored_files"] == ["chat.html"]
    assert metadata["layout"] == "manifest"
    assert metadata["conversation_files"] == ["conversations-000.json", "conversations-001.json"]
    assert metadata["missing_conversation_files"] == ["conversations-404.json"]
    assert metadata["asset_files"] == 1


def test_shards_without_manifest_are_read_by_number(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    write_json(folder / "conversations-10.json", [conversation("ten", [node("a", None, "user")])])
    write_json(folder / "conversations-2.json", [conversation("two", [node("b", None, "user")])])
    # Neither may be taken for conversations: a loose conversation* glob would.
    write_json(folder / "conversation_asset_file_names.json", {"file-x.dat": "x.png"})
    write_json(folder / "conversations_backup.json", [conversation("decoy", [])])
    parsed, conversations = load(folder)
    assert list(conversations) == ["two", "ten"]
    assert parsed.metadata["layout"] == "shards"


def test_archive_of_archives_with_shards(tmp_path: Path) -> None:
    parts = []
    for number, conv_id in ((0, "first"), (1, "second")):
        folder = tmp_path / f"part{number}"
        write_json(
            folder / f"conversations-00{number}.json",
            [conversation(conv_id, [node("m", None, "user")])],
        )
        parts.append(zip_folder(folder, tmp_path / f"part{number}.zip"))
    outer = tmp_path / "outer.zip"
    with zipfile.ZipFile(outer, "w") as archive:
        for part in parts:
            archive.write(part, part.name)
    _, conversations = load(outer)
    assert list(conversations) == ["first", "second"]


def test_manifest_naming_a_missing_shard_warns(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    write_json(folder / "conversations-000.json", [conversation("one", [node("a", None, "user")])])
    write_json(
        folder / "export_manifest.json",
        {
            "logical_files": {
                "conversations.json": {
                    "files": ["conversations-000.json", "conversations-001.json"],
                    "sharded": True,
                }
            }
        },
    )
    parsed, conversations = load(folder)
    assert list(conversations) == ["one"]
    assert len(parsed.warnings) == 1
    assert "conversations-001.json" in parsed.warnings[0]
    assert parsed.metadata["missing_conversation_files"] == ["conversations-001.json"]


# -- attachments in the v1 layout --------------------------------------------------------------


def test_v1_attachments_are_found_where_chatgpt_puts_them(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "file-AAA111-holiday photo.jpg").write_bytes(JPEG)
    (folder / "user-u1").mkdir()
    (folder / "user-u1" / "file_00aa-6f1c.png").write_bytes(PNG)
    (folder / "dalle-generations").mkdir()
    (folder / "dalle-generations" / "file-CCC333-0b5e.webp").write_bytes(WEBP)
    write_json(folder / "user.json", {"id": "user-1"})

    def image(pointer: str) -> dict[str, Any]:
        return {"content_type": "image_asset_pointer", "asset_pointer": pointer, "size_bytes": 9}

    content = {
        "content_type": "multimodal_text",
        "parts": [
            image("file-service://file-AAA111"),
            image("sediment://file_00aa"),
            image("file-service://file-CCC333"),
            image("file-service://file-AAA111"),  # the same file again: one record
            image("file-service://../user.json"),
            image("sediment://file_x/../../user.json"),
            "look",
        ],
    }
    attachments = [
        {"id": "file-AAA111", "name": "holiday photo.jpg", "mime_type": "image/jpeg"},
        {"id": "file-DDD444", "name": "report.pdf", "mime_type": "application/pdf", "size": 7},
        {"name": "no id.txt"},
    ]
    nodes = [node("u", None, "user", content, metadata={"attachments": attachments})]
    write_json(folder / "conversations.json", [conversation("c", nodes)])
    _, conversations = load(folder)
    conv = conversations["c"]
    files = conv.messages[0].files
    assert [(f.name, f.mime_type, f.member, f.size) for f in files] == [
        ("holiday photo.jpg", "image/jpeg", "file-AAA111-holiday photo.jpg", len(JPEG)),
        ("6f1c.png", "image/png", "user-u1/file_00aa-6f1c.png", len(PNG)),
        ("0b5e.webp", "image/webp", "dalle-generations/file-CCC333-0b5e.webp", len(WEBP)),
        ("attachment", "application/octet-stream", None, 9),
        ("attachment", "application/octet-stream", None, 9),
        ("report.pdf", "application/pdf", None, 7),
        ("no id.txt", "text/plain", None, None),
    ]
    assert shape(conv)["files_present"] == 3 and shape(conv)["files_missing"] == 4
    unsafe = [w for w in conv.warnings if "unsafe" in w]
    assert len(unsafe) == 2
    assert [p.kind for p in conv.messages[0].parts] == ["image"] * 6 + ["text"]


def test_v2_dat_assets_are_named_by_the_map_and_typed_by_their_bytes(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "file_0abc.dat").write_bytes(PNG)
    (folder / "file-Q9.dat").write_bytes(b"%PDF-1.7 rest")
    (folder / "file-R2.dat").write_bytes(b"plain bytes")
    write_json(
        folder / "conversation_asset_file_names.json",
        {
            "file_0abc.dat": "dalle-generations/9f1e.webp",
            "file-Q9.dat": "5b0e6c1e-8f3a-4d7e-9c51-0d6f3b1e2a77",
            "file-R2.dat": "notes.txt",
        },
    )
    content = {
        "content_type": "multimodal_text",
        "parts": [
            {"content_type": "image_asset_pointer", "asset_pointer": "sediment://file_0abc"},
            "and two files",
        ],
    }
    uploads = [{"id": "file-Q9"}, {"id": "file-R2", "name": "notes.txt"}]
    nodes = [node("u", None, "user", content, metadata={"attachments": uploads})]
    write_json(folder / "conversations-000.json", [conversation("d", nodes)])
    _, conversations = load(folder)
    files = conversations["d"].messages[0].files
    assert [(f.name, f.mime_type, f.member, f.pointer) for f in files] == [
        ("9f1e.webp", "image/png", "file_0abc.dat", "sediment://file_0abc"),
        ("5b0e6c1e-8f3a-4d7e-9c51-0d6f3b1e2a77", "application/pdf", "file-Q9.dat", "file-Q9"),
        ("notes.txt", "text/plain", "file-R2.dat", "file-R2"),
    ]


# -- content types, hidden rules, roles -------------------------------------------------------


def catalogue() -> dict[str, Any]:
    def c(content_type: str, **fields: Any) -> dict[str, Any]:
        return {"content_type": content_type, **fields}

    nodes = [
        node("root", None, None),
        node("sys", "root", "system", c("text", parts=[""]), weight=0.0),
        node(
            "ctx",
            "sys",
            "user",
            c("text", parts=[""]),
            metadata={
                "is_user_system_message": True,
                "user_context_message_data": {
                    "about_user_message": "I am a teacher.",
                    "about_model_message": "Be brief.",
                },
            },
        ),
        node("u1", "ctx", "user", c("text", parts=["Plot it", None, "please"])),
        node(
            "code",
            "u1",
            "assistant",
            c("code", language="python", text="print(1)", response_format_name=None),
            recipient="python",
        ),
        node("out", "code", "tool", c("execution_output", text="1\n"), name="python"),
        node(
            "old-fn",
            "out",
            "function",
            c("text", parts=["plugin result"]),
            name="weather",
        ),
        node("mem", "old-fn", "tool", c("text", parts=["Model set context updated."]), name="bio"),
        node("mid", "mem", None),  # structural node inside the tree
        node(
            "web",
            "mid",
            "tool",
            c("sonic_webpage", url="https://example.org", title="Example", text="page text"),
            name="web.run",
        ),
        node(
            "memory",
            "web",
            "user",
            c("model_editable_context", model_set_context="likes tea"),
        ),
        node("err", "memory", "tool", c("system_error", name="RateLimit", text="slow down")),
        node(
            "status",
            "err",
            "tool",
            c("text", parts=["DALL·E displayed 1 images."]),
            name="dalle.text2im",
        ),
        node(
            "drawn",
            "status",
            "tool",
            c(
                "multimodal_text",
                parts=[
                    {
                        "content_type": "image_asset_pointer",
                        "asset_pointer": "sediment://file_77",
                        "metadata": {"dalle": {"prompt": "a cat", "seed": 3}},
                    }
                ],
            ),
            name="t2uay3k.sj1i4kz",
        ),
        node(
            "future",
            "drawn",
            "assistant",
            c("Hologram Output!", payload={"deep": [1, 2, {"x": None}]}),
            create_time=0,
        ),
        node(
            "future-part",
            "future",
            "assistant",
            c(
                "multimodal_text",
                parts=[
                    {"content_type": "sticker_v9", "text": "a sticker", "id": 5},
                    {
                        "content_type": "video_container_asset_pointer",
                        "asset_pointer": "sediment://file_99",
                        "format": "mp4",
                    },
                    12,
                ],
            ),
            weight=1,
        ),
        node("odd-role", "future-part", "critic", c("text", parts=["looks fine"])),
        node("final", "odd-role", "assistant", c("text", parts=["Done."]), recipient="all"),
    ]
    return conversation(
        "cat",
        nodes,
        title=None,
        is_archived=True,
        default_model_slug="gpt-4o",
        gizmo_id="g-123",
        conversation_template_id="g-p-456",
        current_node="mid",
    )


def test_every_content_type_is_kept_and_hidden_per_the_ui_rules(tmp_path: Path) -> None:
    raw = catalogue()
    path = write_json(tmp_path / "conversations.json", [raw])
    _, conversations = load(path)
    conv = conversations["cat"]
    assert conv.title == "Untitled"
    assert conv.archived is True and conv.model == "gpt-4o"
    assert conv.metadata["gizmo_id"] == "g-123"
    assert conv.metadata["conversation_template_id"] == "g-p-456"
    assert conv.metadata["custom_instructions"] == {
        "about_user_message": "I am a teacher.",
        "about_model_message": "Be brief.",
        "source_message_id": "ctx",
    }
    by_id = messages(conv)
    assert "root" not in by_id and "mid" not in by_id
    assert by_id["sys"].parent_source_id is None
    assert by_id["web"].parent_source_id == "mem"  # across the structural node
    # current_node is the structural node: its nearest ancestor with a message.
    assert conv.active_leaf_source_id == "mem"
    assert active_path(conv) == source_path(raw)

    def part(source_id: str) -> Part:
        assert len(by_id[source_id].parts) == 1
        return by_id[source_id].parts[0]

    mapping = raw["mapping"]
    assert by_id["u1"].parts == [Part("text", "Plot it"), Part("text", "please")]
    assert part("code") == Part(
        "code", "print(1)", {"language": "python", "response_format_name": None}
    )
    assert part("out") == Part("tool_result", "1\n", {"content_type": "execution_output"})
    assert part("web") == Part(
        "chatgpt.sonic_webpage", "page text", mapping["web"]["message"]["content"]
    )
    assert part("memory") == Part(
        "chatgpt.model_editable_context", "likes tea", mapping["memory"]["message"]["content"]
    )
    assert part("err") == Part(
        "chatgpt.system_error", "slow down", mapping["err"]["message"]["content"]
    )
    assert part("future") == Part(
        "chatgpt.hologram_output", None, mapping["future"]["message"]["content"]
    )
    assert by_id["future"].created_at is None  # create_time 0
    assert by_id["future-part"].parts == [
        Part(
            "chatgpt.sticker_v9",
            "a sticker",
            {"content_type": "sticker_v9", "text": "a sticker", "id": 5},
        ),
        Part("file", None, mapping["future-part"]["message"]["content"]["parts"][1]),
        Part("chatgpt.part", None, {"value": 12}),
    ]
    assert [(f.name, f.mime_type, f.member) for f in by_id["future-part"].files] == [
        ("file_99.mp4", "video/mp4", None)
    ]
    drawn = by_id["drawn"]
    assert drawn.parts[0].kind == "image"
    assert drawn.parts[0].data["metadata"]["dalle"]["prompt"] == "a cat"
    assert drawn.files[0].pointer == "sediment://file_77"

    assert by_id["old-fn"].role == "tool"
    assert by_id["old-fn"].metadata["author_role"] == "function"
    assert by_id["old-fn"].author == "weather"
    assert by_id["odd-role"].role == "tool"
    assert by_id["odd-role"].metadata["author_role"] == "critic"
    assert any("unknown role 'critic'" in w for w in conv.warnings)

    reasons = {m.source_id: m.metadata.get("hidden_reason") for m in conv.messages}
    assert reasons == {
        "sys": "system_message",
        "ctx": "custom_instructions",
        "u1": None,
        "code": "tool_call",
        "out": None,
        "old-fn": None,
        "mem": "tool:bio",
        "web": "content_type:sonic_webpage",
        "memory": "content_type:model_editable_context",
        "err": "content_type:system_error",
        "status": "tool_status",
        "drawn": None,
        "future": None,
        "future-part": None,
        "odd-role": None,
        "final": None,
    }
    assert by_id["code"].metadata["recipient"] == "python"


def test_graph_repairs_left_to_the_parser(tmp_path: Path) -> None:
    nodes = [
        node("r1", "r2", None),  # two structural nodes in a parent cycle
        node("r2", "r1", None),
        node("a", "r1", "user"),
        node("b", "a", "assistant"),
        node("orphan", "gone", "user"),  # parent not in the mapping
        node("c", "b", "user"),
    ]
    nodes[3]["children"] = ["orphan", "nowhere"]  # children lie; never trusted
    raw = conversation("g", nodes, current_node="nowhere")
    no_current = conversation("h", [node("x", None, "user")], current_node=None)
    _, conversations = load(write_json(tmp_path / "c.json", [raw, no_current]))
    by_id = messages(conversations["g"])
    assert by_id["a"].parent_source_id is None
    assert by_id["orphan"].parent_source_id == "gone"
    assert by_id["c"].parent_source_id == "b"
    assert conversations["g"].active_leaf_source_id is None
    warnings = " ".join(conversations["g"].warnings)
    assert "parent cycle" in warnings and "'nowhere' is not in the mapping" in warnings
    assert conversations["h"].active_leaf_source_id is None
    assert conversations["h"].warnings == [
        "conversation 'h': has no current_node; the newest leaf is used as the active branch"
    ]


def test_items_without_an_id_or_not_objects_are_skipped(tmp_path: Path) -> None:
    items = [
        {"title": "no id", "mapping": {}},
        "not a conversation",
        conversation("ok", [node("a", None, "user")], conversation_id="ok"),
        {"conversation_id": "alias-only", "title": "x", "mapping": {}, "current_node": None},
        conversation("ok", [node("a", None, "user")]),
    ]
    with ExportSource.open(write_json(tmp_path / "conversations.json", items)) as source:
        parsed = IMPORTER.parse(source)
        conversations = list(parsed.conversations)
    assert [c.source_id for c in conversations] == ["ok", "alias-only", "ok"]
    assert parsed.skipped == {"conversation_without_id": 1, "not_a_conversation": 1}
    assert len(parsed.warnings) == 2
    assert conversations[0].metadata.get("conversation_id") is None
    assert any("more than once" in w for w in conversations[2].warnings)


def test_object_wrapper_and_bom_are_accepted(tmp_path: Path) -> None:
    body = json.dumps({"conversations": [conversation("w", [node("a", None, "user")])]})
    path = tmp_path / "bookmarklet.json"
    path.write_bytes(b"\xef\xbb\xbf\n  " + body.encode())
    _, conversations = load(path)
    assert list(conversations) == ["w"]


def test_metadata_is_made_storable(tmp_path: Path) -> None:
    huge = "x" * (1024 * 1024)
    nodes = [
        node(
            "a",
            None,
            "user",
            metadata={"big": huge, "small": 1, "source_id": "spoof", "n": 2**70},
            weight=1e308,
        )
    ]
    path = write_json(tmp_path / "c.json", [conversation("m", nodes)])
    # Numbers beyond 64 bits: the C parser refuses them, the Python one reads them.
    path.write_text(path.read_text().replace("1e+308", "1e400"))
    _, conversations = load(path)
    message = conversations["m"].messages[0]
    assert message.metadata["weight"] is None  # not finite: not storable
    assert "big" not in message.metadata
    assert message.metadata["dropped_metadata"] == {"big": len(huge) + 2}
    assert message.metadata["small"] == 1
    assert message.metadata["metadata.source_id"] == "spoof"
    assert message.metadata["n"] == str(2**70)
    assert any("metadata too large" in w for w in conversations["m"].warnings)


# -- detection -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_chatgpt_fixture_is_detected_under_any_name(name: str, tmp_path: Path) -> None:
    assert detected(CHATGPT / name)
    renamed = tmp_path / "my chats (1).json"
    shutil.copyfile(CHATGPT / name, renamed)
    assert detected(renamed)
    folder = tmp_path / "folder"
    folder.mkdir()
    shutil.copyfile(CHATGPT / name, folder / "conversations.json")
    assert detected(folder)


@pytest.mark.parametrize(
    "path",
    sorted(p for d in ("claude", "gemini") for p in (FIXTURES / d).rglob("*.json")),
    ids=lambda p: p.name,
)
def test_other_platforms_are_not_chatgpt(path: Path, tmp_path: Path) -> None:
    assert not detected(path)
    folder = tmp_path / "export"
    folder.mkdir()
    shutil.copyfile(path, folder / "conversations.json")
    (folder / "users.json").write_text("[]")
    assert not detected(folder)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"[]", False),
        (b"", False),
        (b"hello, not json", False),
        (b'{"conversations": [{"conversation": {}, "responses": []}]}', False),  # Grok
        (b'[{"id": "1", "inserted_at": "2025", "mapping": {}}]', False),  # DeepSeek
        (b'[{"title": "t", "mapping": {}, "create_time": 1}]', True),
        (b'[{"title": "corrupt"}, {"id": "x", "mapping": {}}]', True),
        (b'{"conversations": [{"mapping": {}, "current_node": null}]}', True),
        (b'[{"mapping": {}, "create_time": 1', True),  # truncated: judged by the head
    ],
)
def test_detection_by_content(content: bytes, expected: bool, tmp_path: Path) -> None:
    path = tmp_path / "data.json"
    path.write_bytes(content)
    assert detected(path) is expected


def test_detection_reads_past_long_fields_before_mapping(tmp_path: Path) -> None:
    raw = conversation("late", [node("a", None, "user")])
    late = {"blocked_urls": [f"https://example.org/{i}" for i in range(5000)], **raw}
    path = write_json(tmp_path / "x.json", [late])
    assert path.stat().st_size > 64 * 1024
    assert detected(path)


def test_empty_conversations_file_is_chatgpt_only_with_chatgpt_side_files(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "export"
    write_json(folder / "conversations.json", [])
    assert not detected(folder)
    (folder / "chat.html").write_text("<html></html>")
    assert detected(folder)
    parsed, conversations = load(folder)
    assert conversations == {} and parsed.warnings == []


# -- malformed input and streaming -------------------------------------------------------------


def test_truncated_file_raises_import_format_error_naming_it(tmp_path: Path) -> None:
    data = (CHATGPT / "librechat/chatgpt-export.json").read_bytes()
    path = tmp_path / "conversations.json"
    second = data.index(b'"title": "Conversation 2"')
    path.write_bytes(data[: second + 2000])  # cut inside the second conversation
    with ExportSource.open(path) as source:
        assert IMPORTER.detect(source)
        parsed = IMPORTER.parse(source)
        first = next(parsed.conversations)  # streamed: the first one arrives before the error
        assert first.source_id == EXPORT_1
        with pytest.raises(ImportFormatError, match=r"conversations\.json .*truncated"):
            next(parsed.conversations)


def test_malformed_shard_in_a_zip_names_the_shard(tmp_path: Path) -> None:
    folder = build_v2(tmp_path / "export")
    (folder / "conversations-001.json").write_text('[{"id": "broken", "mapping": {,}}]')
    archive = zip_folder(folder, tmp_path / "export.zip")
    with ExportSource.open(archive) as source:
        parsed = IMPORTER.parse(source)
        with pytest.raises(ImportFormatError, match=r"conversations-001\.json"):
            list(parsed.conversations)


@pytest.mark.parametrize("content", [b"{}", b'"a string"', b"   "])
def test_not_an_array_of_conversations(content: bytes, tmp_path: Path) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "conversations.json").write_bytes(content)
    with ExportSource.open(folder) as source:
        parsed = IMPORTER.parse(source)
        if content == b"{}":
            assert list(parsed.conversations) == []
            assert parsed.warnings == ["conversations.json holds no 'conversations' array"]
        else:
            with pytest.raises(ImportFormatError, match=r"conversations\.json"):
                list(parsed.conversations)


def test_parse_of_something_else_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    write_json(folder / "a.json", [])
    write_json(folder / "b.json", [])
    with ExportSource.open(folder) as source:
        assert not IMPORTER.detect(source)
        with pytest.raises(ImportFormatError, match="no ChatGPT conversations file"):
            IMPORTER.parse(source)


def test_memory_does_not_grow_with_the_export(tmp_path: Path) -> None:
    def write(path: Path, count: int) -> None:
        with path.open("w", encoding="utf-8") as out:
            out.write("[")
            for index in range(count):
                nodes = [node("root", None, None)] + [
                    node(f"n{i}", "root" if i == 0 else f"n{i - 1}", "user", weight=1.0)
                    for i in range(8)
                ]
                for item in nodes[1:]:
                    item["message"]["content"]["parts"] = ["words " * 60]
                out.write(("," if index else "") + json.dumps(conversation(f"c{index}", nodes)))
            out.write("]")

    def peak(path: Path) -> int:
        with ExportSource.open(path) as source:
            parsed = IMPORTER.parse(source)
            tracemalloc.start()
            try:
                count = sum(1 for _ in parsed.conversations)
                return tracemalloc.get_traced_memory()[1] if count else 0
            finally:
                tracemalloc.stop()

    small, large = tmp_path / "small.json", tmp_path / "large.json"
    write(small, 50)
    write(large, 800)
    assert large.stat().st_size > 3 * 1024 * 1024
    small_peak, large_peak = peak(small), peak(large)
    assert small_peak > 0
    # A whole-file load would hold tens of MB; streaming holds one conversation.
    assert large_peak < small_peak + 1024 * 1024, (small_peak, large_peak)


def test_importer_identity() -> None:
    assert IMPORTER.platform == "chatgpt"
    assert "ChatGPT" in IMPORTER.description
