"""The VVAULT importer: Markdown trees in both dialects, packed as folders and zips."""

from __future__ import annotations

import itertools
import time
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatkeep.errors import ImportFormatError
from chatkeep.importers import vvault
from chatkeep.importers.model import ParsedExport, SourceConversation
from chatkeep.importers.source import ExportSource
from chatkeep.importers.vvault import IMPORTER
from chatkeep.model import Conversation, Message, Part, content_hash, text_part
from chatkeep.render import conversation_markdown, part_markdown

USER = "users/shard_0000/alice"
NOVA = f"{USER}/instances/nova"
ECHO = f"{USER}/instances/echo"

Files = dict[str, str | bytes]


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


# -- packing ------------------------------------------------------------------------
def as_folder(root: Path, files: Files) -> Path:
    folder = root / "export"
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_bytes(content.encode("utf-8"))
        else:
            path.write_bytes(content)
    return folder


def as_zip(root: Path, files: Files) -> Path:
    path = root / "export.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            info = zipfile.ZipInfo(name, date_time=(2025, 3, 14, 0, 0, 0))
            info.external_attr = 0o100644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, content)
    return path


PACKINGS: dict[str, Callable[[Path, Files], Path]] = {"folder": as_folder, "zip": as_zip}


@pytest.fixture(params=sorted(PACKINGS))
def pack(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[Files], Path]:
    packer = PACKINGS[request.param]
    return lambda files: packer(tmp_path, files)


def parse(path: Path) -> tuple[ParsedExport, list[SourceConversation]]:
    with ExportSource.open(path) as source:
        assert IMPORTER.detect(source)
        parsed = IMPORTER.parse(source)
        conversations = list(parsed.conversations)
    return parsed, conversations


def by_path(conversations: list[SourceConversation]) -> dict[str, SourceConversation]:
    return {c.metadata["source_path"].split("instances/", 1)[1]: c for c in conversations}


def texts(conversation: SourceConversation) -> list[tuple[str, str]]:
    return [(m.role, "".join(p.text or "" for p in m.parts)) for m in conversation.messages]


# -- fixtures: one tree with both dialects ------------------------------------------
HOME = """\
# Nova's home

**User:** [2025-03-14 10:22] Héllo Nova — ça va? 日本語 ✨
Second line of the question.

**Nova:** _2025-03-14T10:23:05Z_ Here is code:

```markdown
**User:** this is not a message
## Assistant
### user
<!-- msg_fake · 2025-01-01T00:00:00Z -->
```

~~~~
**Assistant:** nor this
~~~
still inside the tilde fence
~~~~

Done.

## User
2025-03-14 10:30

Thanks! 🎉

### Assistant (2025-03-14T10:31:00+02:00)
You're welcome.
"""

TOPIC = """\
## User
What is 2 + 2?

## Assistant
4.

## Summary

A heading that is not a speaker stays in the message.
"""

RENDERED = """\
---
id: conv_01HXYZ
title: "Plans \\"for\\" 2025 · ünïcode"
runtime: rt_01NOVA
state: archived
created: 2025-03-10T08:00:00+00:00
updated: 2025-03-10T09:00:00+00:00
tags: ["work", "é"]
---

# Plans "for" 2025 · ünïcode

### user (alice)
<!-- msg_01A · 2025-03-10T08:00:00+00:00 -->

First question, quoting a header:
### assistant
**User:** still the user's text

### assistant (Nova) · gpt-4o-2024-08-06
<!-- msg_01B · 2025-03-10T08:00:05.250000+00:00 -->

An answer.

### assistant · hidden
<!-- msg_01C · time unknown -->

hidden thoughts
"""

ONLY_FRONT = """\
---
id: conv_empty
title: Nothing yet
created: 2025-03-01T12:00:00Z
---
"""


def tree() -> Files:
    return {
        f"{NOVA}/chatty/chat_with_nova.md": HOME,
        f"{NOVA}/2025-03-14_topic-of_day.md": TOPIC,
        f"{NOVA}/sessions/s1/plans.md": RENDERED,
        f"{NOVA}/runtime.json": "{}",
        f"{ECHO}/empty.md": "",
        f"{ECHO}/blank.md": " \n\n\t\n",
        f"{ECHO}/only_front.md": ONLY_FRONT,
        f"{USER}/profile.json": "{}",
        f"__MACOSX/{NOVA}/chatty/._chat_with_nova.md": b"\x00\x05\x16\x07binary",
    }


def test_detects_a_tree(pack: Callable[[Files], Path]) -> None:
    with ExportSource.open(pack(tree())) as source:
        assert IMPORTER.detect(source)


@pytest.mark.parametrize(
    "files",
    [
        {"conversations.json": "[]"},
        {"notes/a.md": "# A", "notes/b.md": "# B"},
        {"users/shard_0000/alice/instances/nova/runtime.json": "{}"},
        {"instances/nova/x.md": "## User\nhi"},  # no user folder before instances/
        {"plain.md": "## User\nhello\n\n## Assistant\nhi"},  # a bare file, not chatkeep's
    ],
)
def test_does_not_detect_other_things(pack: Callable[[Files], Path], files: Files) -> None:
    with ExportSource.open(pack(files)) as source:
        assert not IMPORTER.detect(source)


def test_parses_a_tree(pack: Callable[[Files], Path]) -> None:
    parsed, conversations = parse(pack(tree()))
    assert parsed.platform == "vvault"
    assert parsed.account == parsed.account_label == "alice"
    assert parsed.metadata["runtimes"] == ["echo", "nova"]
    assert parsed.skipped == {
        "empty_files": 2,
        "non_markdown_files": 1,
        "files_outside_instances": 1,
        "hidden_files": 1,
    }
    assert sorted(w.split(":")[0].rsplit("/", 1)[-1] for w in parsed.warnings) == [
        "blank.md",
        "empty.md",
    ]
    assert len(conversations) == 4
    # The home transcript comes first.
    assert conversations[0].metadata["primary"] is True
    found = by_path(conversations)
    assert sorted(found) == [
        "echo/only_front.md",
        "nova/2025-03-14_topic-of_day.md",
        "nova/chatty/chat_with_nova.md",
        "nova/sessions/s1/plans.md",
    ]
    assert [c.metadata["primary"] for c in conversations].count(True) == 1


def test_plain_dialect_with_fences_and_unicode(pack: Callable[[Files], Path]) -> None:
    _, conversations = parse(pack(tree()))
    home = by_path(conversations)["nova/chatty/chat_with_nova.md"]
    cid = "instances/nova/chatty/chat_with_nova.md"
    assert home.source_id == cid
    assert home.title == "Nova's home"
    assert home.metadata["runtime"] == "nova"
    assert home.metadata["primary"] is True
    assert home.metadata["dialect"] == "plain"
    assert [m.source_id for m in home.messages] == [f"{cid}#{i}" for i in range(4)]
    assert [m.parent_source_id for m in home.messages] == [None, f"{cid}#0", f"{cid}#1", f"{cid}#2"]
    assert [m.author for m in home.messages] == [None, "Nova", None, None]
    assert [m.created_at for m in home.messages] == [
        t("2025-03-14T10:22:00+00:00"),
        t("2025-03-14T10:23:05+00:00"),
        t("2025-03-14T10:30:00+00:00"),
        t("2025-03-14T08:31:00+00:00"),
    ]
    answer = (
        "Here is code:\n\n"
        "```markdown\n**User:** this is not a message\n## Assistant\n### user\n"
        "<!-- msg_fake · 2025-01-01T00:00:00Z -->\n```\n\n"
        "~~~~\n**Assistant:** nor this\n~~~\nstill inside the tilde fence\n~~~~\n\n"
        "Done."
    )
    assert texts(home) == [
        ("user", "Héllo Nova — ça va? 日本語 ✨\nSecond line of the question."),
        ("assistant", answer),
        ("user", "Thanks! 🎉"),
        ("assistant", "You're welcome."),
    ]
    assert all(len(m.parts) == 1 and m.parts[0].kind == "text" for m in home.messages)
    assert home.created_at == t("2025-03-14T10:22:00+00:00")
    assert home.updated_at == t("2025-03-14T10:30:00+00:00")
    assert home.warnings == []


def test_headings_without_times_take_the_file_date(pack: Callable[[Files], Path]) -> None:
    _, conversations = parse(pack(tree()))
    topic = by_path(conversations)["nova/2025-03-14_topic-of_day.md"]
    assert topic.source_id == "instances/nova/2025-03-14_topic-of_day.md"
    assert topic.title == "topic-of day"
    assert topic.metadata["primary"] is False
    assert texts(topic) == [
        ("user", "What is 2 + 2?"),
        ("assistant", "4.\n\n## Summary\n\nA heading that is not a speaker stays in the message."),
    ]
    assert [m.created_at for m in topic.messages] == [None, None]
    assert topic.created_at == topic.updated_at == datetime(2025, 3, 14, tzinfo=UTC)


def test_chatkeep_dialect_in_a_tree(pack: Callable[[Files], Path]) -> None:
    _, conversations = parse(pack(tree()))
    plans = by_path(conversations)["nova/sessions/s1/plans.md"]
    assert plans.source_id == "conv_01HXYZ"
    assert plans.title == 'Plans "for" 2025 · ünïcode'
    assert plans.archived is True
    assert plans.created_at == t("2025-03-10T08:00:00+00:00")
    assert plans.updated_at == t("2025-03-10T09:00:00+00:00")
    assert plans.metadata["dialect"] == "chatkeep"
    assert plans.metadata["runtime"] == "nova"
    assert plans.metadata["tags"] == ["work", "é"]
    assert plans.metadata["front_matter"] == {
        "id": "conv_01HXYZ",
        "title": 'Plans "for" 2025 · ünïcode',
        "runtime": "rt_01NOVA",
        "state": "archived",
        "created": "2025-03-10T08:00:00+00:00",
        "updated": "2025-03-10T09:00:00+00:00",
        "tags": ["work", "é"],
    }
    assert [m.source_id for m in plans.messages] == ["msg_01A", "msg_01B", "msg_01C"]
    assert [m.parent_source_id for m in plans.messages] == [None, "msg_01A", "msg_01B"]
    assert texts(plans) == [
        (
            "user",
            "First question, quoting a header:\n### assistant\n**User:** still the user's text",
        ),
        ("assistant", "An answer."),
        ("assistant", "hidden thoughts"),
    ]
    assert [m.author for m in plans.messages] == ["alice", "Nova", None]
    assert [m.model for m in plans.messages] == [None, "gpt-4o-2024-08-06", None]
    assert [m.hidden for m in plans.messages] == [False, False, True]
    assert [m.created_at for m in plans.messages] == [
        t("2025-03-10T08:00:00+00:00"),
        t("2025-03-10T08:00:05.250000+00:00"),
        None,
    ]


def test_a_file_with_only_front_matter(pack: Callable[[Files], Path]) -> None:
    _, conversations = parse(pack(tree()))
    empty = by_path(conversations)["echo/only_front.md"]
    assert empty.source_id == "conv_empty"
    assert empty.title == "Nothing yet"
    assert empty.messages == []
    assert empty.created_at == empty.updated_at == t("2025-03-01T12:00:00+00:00")
    assert empty.metadata["runtime"] == "echo"
    assert empty.metadata["dialect"] == "none"
    assert len(empty.warnings) == 1 and "no speaker lines" in empty.warnings[0]


def test_only_empty_files(pack: Callable[[Files], Path]) -> None:
    parsed, conversations = parse(pack({f"{NOVA}/a.md": "", f"{NOVA}/b.md": "\n"}))
    assert conversations == []
    assert parsed.skipped == {"empty_files": 2}
    assert parsed.metadata["runtimes"] == ["nova"]


def test_a_file_over_the_size_limit_is_skipped(
    pack: Callable[[Files], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vvault, "MAX_TRANSCRIPT_BYTES", 100)
    parsed, conversations = parse(
        pack({f"{NOVA}/a.md": "## User\n" + "x" * 200, f"{NOVA}/b.md": "## User\nhi"})
    )
    assert [c.source_id for c in conversations] == ["instances/nova/b.md"]
    assert parsed.skipped == {"too_large_files": 1}
    # (the lone top folder "users/" is stripped as a wrapper by ExportSource)
    assert parsed.warnings == [
        "shard_0000/alice/instances/nova/a.md: larger than 100 bytes; skipped"
    ]


def test_source_ids_do_not_depend_on_packing(tmp_path: Path) -> None:
    files = tree()
    stripped = {
        name.replace("users/", "", 1): c for name, c in files.items() if "MACOSX" not in name
    }
    wrapped = {f"vault-export/{name}": content for name, content in files.items()}

    def ids(path: Path) -> list[tuple[str, list[str]]]:
        _, conversations = parse(path)
        return sorted((c.source_id, [m.source_id for m in c.messages]) for c in conversations)

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "c").mkdir()
    first = ids(as_folder(tmp_path / "a", files))
    assert ids(as_zip(tmp_path / "b", stripped)) == first
    assert ids(as_zip(tmp_path / "c", wrapped)) == first
    assert "instances/nova/chatty/chat_with_nova.md" in dict(first)


def test_several_users_are_refused(pack: Callable[[Files], Path]) -> None:
    files: Files = {
        f"{NOVA}/a.md": "## User\nhi",
        "users/shard_0001/bob/instances/nova/b.md": "## User\nhi",
    }
    with ExportSource.open(pack(files)) as source:
        assert IMPORTER.detect(source)
        with pytest.raises(ImportFormatError, match=r"2 users \(alice, bob\)") as caught:
            IMPORTER.parse(source)
    assert caught.value.hint is not None and "one user" in caught.value.hint


def test_no_transcripts_is_a_format_error(pack: Callable[[Files], Path]) -> None:
    with (
        ExportSource.open(pack({"a.md": "x", "b/c.md": "y"})) as source,
        pytest.raises(ImportFormatError, match="no VVAULT transcripts"),
    ):
        IMPORTER.parse(source)


def test_the_first_writer_of_a_front_matter_id_keeps_it(pack: Callable[[Files], Path]) -> None:
    copy = "---\nid: conv_same\n---\n\n## User\nhi\n"
    files: Files = {f"{NOVA}/chatty/chat_with_nova.md": copy, f"{NOVA}/a/copy.md": copy}
    _, conversations = parse(pack(files))
    assert [c.source_id for c in conversations] == ["conv_same", "instances/nova/a/copy.md"]
    assert conversations[0].warnings == []
    assert "conv_same" in conversations[1].warnings[0]


# -- the parser in detail (one file each) -------------------------------------------
_counter = itertools.count()
OneFile = Callable[..., SourceConversation]


@pytest.fixture
def one(tmp_path: Path) -> OneFile:
    """Parse a text as the only transcript of a tree (a real folder), by default
    ``instances/nova/2025-01-02_chat.md``."""

    def parse_one(text: str | bytes, name: str = "2025-01-02_chat.md") -> SourceConversation:
        root = tmp_path / f"t{next(_counter)}"
        root.mkdir()
        _, conversations = parse(as_folder(root, {f"{NOVA}/{name}": text}))
        assert len(conversations) == 1
        return conversations[0]

    return parse_one


def test_speaker_forms(one: OneFile) -> None:
    conversation = one(
        "**User**: a\n"
        "**Human:** b\n"
        "**You:** c\n"
        "**ChatGPT:** d\n"
        "**Alice:** e\n"
        "#### AI\nf\n"
        "## **System**\ng\n"
        "###### tool\nh\n"
        "## Nova ##\ni\n"
        "**Note:** not a speaker\n"
        "**User** without a colon is text\n"
        "# User is a level-1 heading, not a speaker\n"
    )
    assert [(m.role, m.author) for m in conversation.messages] == [
        ("user", None),
        ("user", None),
        ("user", None),
        ("assistant", "ChatGPT"),
        ("user", "Alice"),
        ("assistant", None),
        ("system", None),
        ("tool", None),
        ("assistant", "Nova"),
    ]
    assert texts(conversation)[-1] == (
        "assistant",
        "i\n**Note:** not a speaker\n**User** without a colon is text\n"
        "# User is a level-1 heading, not a speaker",
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("**User:** [2025-03-14 10:22] hi", "2025-03-14T10:22:00+00:00"),
        ("**User [2025-03-14 10:22]:** hi", "2025-03-14T10:22:00+00:00"),
        ("**User:** _2025-03-14T10:22:00Z_ hi", "2025-03-14T10:22:00+00:00"),
        ("**User:** (2025-03-14 9:05 +0100) hi", "2025-03-14T08:05:00+00:00"),
        ("**User:** `2025-03-14 10:22:30.5 UTC` hi", "2025-03-14T10:22:30.500000+00:00"),
        ("**User (2025-03-14):** hi", "2025-03-14T00:00:00+00:00"),
        ("**User:** 2025-03-14 10:22 hi", "2025-03-14T10:22:00+00:00"),
        ("**User:** hi", None),
        ("**User:** 2025-13-40 hi", None),
    ],
)
def test_bold_timestamps(one: OneFile, line: str, expected: str | None) -> None:
    message = one(line + "\n").messages[0]
    assert message.created_at == (t(expected) if expected else None)
    assert message.parts[0].text == ("2025-13-40 hi" if "13-40" in line else "hi")


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ("## User — 2025-03-14 10:22\nhi", "2025-03-14T10:22:00+00:00"),
        ("## User [2025-03-14T10:22:00-05:00]\nhi", "2025-03-14T15:22:00+00:00"),
        ("### User\n_2025-03-14T10:22:00Z_\nhi", "2025-03-14T10:22:00+00:00"),
        ("### User\n[2025-03-14 10:22]\n\nhi", "2025-03-14T10:22:00+00:00"),
        ("### User\nhi", None),
    ],
)
def test_heading_timestamps(one: OneFile, lines: str, expected: str | None) -> None:
    message = one(lines).messages[0]
    assert message.created_at == (t(expected) if expected else None)
    assert message.parts[0].text == "hi"


def test_a_date_inside_a_model_name_is_not_a_time(one: OneFile) -> None:
    message = one("### Assistant · claude-3-5-sonnet-2024-10-22\nhi").messages[0]
    assert (message.role, message.model, message.created_at) == (
        "assistant",
        "claude-3-5-sonnet-2024-10-22",
        None,
    )


def test_fence_edge_cases(one: OneFile) -> None:
    conversation = one(
        "## User\n"
        "````\n"
        "```\n"
        "## Assistant\n"
        "```\n"
        "````\n"
        "## Assistant\n"
        "``` not a fence: backticks in the info string ` \n"
        "## User\n"
        "last\n"
    )
    assert texts(conversation) == [
        ("user", "````\n```\n## Assistant\n```\n````"),
        ("assistant", "``` not a fence: backticks in the info string ` "),
        ("user", "last"),
    ]


def test_an_unclosed_fence_does_not_swallow_the_rest(one: OneFile) -> None:
    conversation = one("## User\n```python\nprint(1)\n\n## Assistant\nok\n")
    assert texts(conversation) == [("user", "```python\nprint(1)"), ("assistant", "ok")]
    assert conversation.warnings == ["1 code fence(s) never closed; read as text"]


def test_chatkeep_separators_split_even_inside_an_unbalanced_fence(one: OneFile) -> None:
    conversation = one(
        "---\nid: c1\n---\n\n"
        "### assistant\n<!-- m1 · time unknown -->\n\ntruncated:\n```python\nx = 1\n\n"
        "### user\n<!-- m2 · time unknown -->\n\nnext, with a fence:\n```\ny\n```\n"
    )
    assert texts(conversation) == [
        ("assistant", "truncated:\n```python\nx = 1"),
        ("user", "next, with a fence:\n```\ny\n```"),
    ]
    assert conversation.warnings == []


def test_preamble_crlf_bom_and_bad_bytes(one: OneFile) -> None:
    raw = "\ufeff# Title\r\nSome intro.\r\n\r\n## User\r\nhi \xff there\r\n".encode()
    raw = raw.replace("\xff".encode(), b"\xff")
    conversation = one(raw)
    assert conversation.title == "Title"
    assert conversation.metadata["preamble"] == "Some intro."
    assert texts(conversation) == [("user", "hi \ufffd there")]


def test_front_matter_forms(one: OneFile) -> None:
    conversation = one(
        "---\n"
        "id: 123\n"
        "title: 'Quoted'\n"
        "tags:\n  - one\n  - two\n"
        "aliases: [x, 'y']\n"
        "model: gpt-4o\n"
        "not a key value line\n"
        "---\n"
        "## User\nhi\n"
    )
    assert conversation.source_id == "123"
    assert conversation.title == "Quoted"
    assert conversation.model == "gpt-4o"
    assert conversation.metadata["tags"] == ["one", "two"]
    assert conversation.metadata["front_matter"]["aliases"] == ["x", "y"]
    assert conversation.warnings == ["front matter line 9 is not 'key: value'; ignored"]


def test_unclosed_front_matter_is_text(one: OneFile) -> None:
    conversation = one("---\nid: x\n## User\nhi\n")
    assert conversation.source_id == "instances/nova/2025-01-02_chat.md"
    assert conversation.metadata["preamble"] == "---\nid: x"
    assert "front matter is not closed" in conversation.warnings[0]


def test_duplicate_message_ids_are_renumbered(one: OneFile) -> None:
    conversation = one(
        "### user\n<!-- m1 · time unknown -->\n\na\n\n"
        "### assistant\n<!-- m1 · time unknown -->\n\nb"
    )
    assert [m.source_id for m in conversation.messages] == [
        "m1",
        "instances/nova/2025-01-02_chat.md#1",
    ]
    assert conversation.warnings == ["message id 'm1' appears twice; renumbered"]


@pytest.mark.parametrize(
    ("name", "title", "created"),
    [
        ("2025-03-14_my_topic.md", "my topic", datetime(2025, 3, 14, tzinfo=UTC)),
        ("2025-03-14T1022-Topic.md", "Topic", datetime(2025, 3, 14, tzinfo=UTC)),
        ("sessions/2024-02-29/notes.md", "notes", datetime(2024, 2, 29, tzinfo=UTC)),
        ("sessions/2023-02-29/notes.md", "notes", None),
        ("undated.md", "undated", None),
        ("chatty/chat_with_nova.md", "Chat with nova", None),
    ],
)
def test_titles_and_dates_from_names(
    one: OneFile, name: str, title: str, created: datetime | None
) -> None:
    conversation = one("## User\nhi", name)
    assert (conversation.title, conversation.created_at) == (title, created)


def test_a_single_rendered_file(tmp_path: Path) -> None:
    path = tmp_path / "plans.md"
    path.write_text(RENDERED, encoding="utf-8")
    with ExportSource.open(path) as source:
        assert IMPORTER.detect(source)
        parsed = IMPORTER.parse(source)
        conversations = list(parsed.conversations)
    assert parsed.account is None
    assert parsed.metadata["runtimes"] == ["rt_01NOVA"]
    assert [c.source_id for c in conversations] == ["conv_01HXYZ"]
    assert conversations[0].metadata["runtime"] == "rt_01NOVA"
    assert conversations[0].metadata["primary"] is False
    assert len(conversations[0].messages) == 3


def test_a_single_plain_file_parses_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "2025-01-05 chat.md"
    path.write_text("## User\nhi\n\n## Assistant\nhello", encoding="utf-8")
    with ExportSource.open(path) as source:
        assert not IMPORTER.detect(source)
        parsed = IMPORTER.parse(source)
        (conversation,) = list(parsed.conversations)
    assert parsed.metadata["runtimes"] == []
    assert conversation.source_id == "2025-01-05 chat.md"
    assert conversation.title == "chat"
    assert conversation.created_at == datetime(2025, 1, 5, tzinfo=UTC)
    assert texts(conversation) == [("user", "hi"), ("assistant", "hello")]


def test_a_single_file_of_another_kind_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "picture.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    with ExportSource.open(path) as source:
        assert not IMPORTER.detect(source)
        with pytest.raises(ImportFormatError, match=r"picture\.png holds no VVAULT transcripts"):
            IMPORTER.parse(source)


PATHOLOGICAL = [
    "##" + " " * 990 + "x",
    "## a" + " " * 990 + "b",  # was quadratic in a regex: 27 s per MB
    "## a (" + "(" * 990,
    "## " + "*" * 980 + "x2025-01-01",
    "## " + "2025-01-01x" * 90,
    "## user" + " ·" * 495,
    "### user\n<!-- a · " + " " * 990,
    "**User:**" + "[" * 5000 + "x",
    "**" + "a" * 199 + ":**" + " " * 5000,
    "# " + " " * 5000 + "x",
    "`" * 990,
]


@pytest.mark.parametrize("line", PATHOLOGICAL, ids=range(len(PATHOLOGICAL)))
def test_pathological_lines_stay_fast(one: OneFile, line: str) -> None:
    text = "\n".join([line] * (1_000_000 // len(line)))
    start = time.monotonic()
    one(text)
    assert time.monotonic() - start < 3


def test_huge_lines_are_text(one: OneFile) -> None:
    spaces = " " * 200_000
    text = (
        f"## User\n##{spaces}x\n<!-- a · {spaces}\n**{'*' * 100_000}\n"
        f"**User:**{spaces}\n{'`' * 50_000}\n" + "```\n" * 2_000
    )
    conversation = one(text)
    assert len(conversation.messages) == 2


# -- round trip through chatkeep's own rendering ------------------------------------
CREATED = datetime(2025, 3, 14, 10, 22, 0, 123456, tzinfo=UTC)


def conversation_object(
    title: str = "Round trip · ✓", tags: tuple[str, ...] = ("a", "b c")
) -> Conversation:
    return Conversation(
        id="conv_01ROUNDTRIP",
        user_id="alice",
        runtime_id="rt_nova",
        title=title,
        origin="native",
        state="active",
        model=None,
        tags=tags,
        message_count=0,
        total_tokens=0,
        total_cost=0.0,
        active_leaf_id=None,
        forked_from_conversation_id=None,
        forked_from_message_id=None,
        is_primary=True,
        pinned=False,
        created_at=CREATED,
        updated_at=datetime(2025, 3, 15, tzinfo=UTC),
        trashed_at=None,
    )


def message_object(
    index: int,
    role: str,
    parts: tuple[Part, ...],
    *,
    created_at: datetime | None = CREATED,
    author: str | None = None,
    model: str | None = None,
    hidden: bool = False,
) -> Message:
    return Message(
        id=f"msg_{index:04d}",
        conversation_id="conv_01ROUNDTRIP",
        parent_id=f"msg_{index - 1:04d}" if index else None,
        seq=index,
        role=role,  # type: ignore[arg-type]
        author=author,
        parts=parts,
        created_at=created_at,
        model=model,
        tokens=None,
        cost=None,
        metadata={},
        hidden=hidden,
        content_sha256=content_hash(parts),
    )


def round_trip(
    tmp_path: Path, conversation: Conversation, messages: list[Message]
) -> SourceConversation:
    folder = tmp_path / f"rt{next(_counter)}"
    path = folder / NOVA / "chatty" / "chat_with_nova.md"
    path.parent.mkdir(parents=True)
    path.write_text(conversation_markdown(conversation, messages), encoding="utf-8")
    parsed, conversations = parse(folder)
    assert parsed.metadata["runtimes"] == ["nova"]
    (parsed_conversation,) = conversations
    return parsed_conversation


def test_round_trip(tmp_path: Path) -> None:
    code = Part(kind="code", text="print('```')\n### user", data={"language": "python"})
    messages = [
        message_object(0, "system", (text_part("Be brief."),)),
        message_object(
            1,
            "user",
            (text_part("Héllo — 日本語 ✨\n### assistant\n**User:** not a header"),),
            author="alice",
        ),
        message_object(
            2,
            "assistant",
            (text_part("Here:"), code, text_part("Done.")),
            author="Nova (beta)",
            model="gpt-4o-2024-08-06",
            created_at=datetime(2025, 3, 14, 10, 23, tzinfo=UTC),
        ),
        message_object(3, "tool", (text_part('{"ok": true}'),), created_at=None),
        message_object(4, "assistant", (text_part("secret"),), hidden=True),
        message_object(5, "user", (text_part("unclosed fence:\n```"),)),
        message_object(6, "assistant", (text_part("```\nstill separate"),)),
    ]
    conversation = conversation_object()
    parsed = round_trip(tmp_path, conversation, messages)
    assert parsed.source_id == conversation.id
    assert parsed.title == conversation.title
    assert parsed.created_at == conversation.created_at
    assert parsed.updated_at == conversation.updated_at
    assert parsed.metadata["tags"] == list(conversation.tags)
    assert parsed.metadata["primary"] is True
    assert parsed.metadata["dialect"] == "chatkeep"
    assert parsed.archived is False
    assert [m.source_id for m in parsed.messages] == [m.id for m in messages]
    assert [m.parent_source_id for m in parsed.messages] == [m.parent_id for m in messages]
    assert [m.role for m in parsed.messages] == [m.role for m in messages]
    assert [m.parts[0].text for m in parsed.messages] == [
        "\n\n".join(part_markdown(p) for p in m.parts) for m in messages
    ]
    assert [m.created_at for m in parsed.messages] == [m.created_at for m in messages]
    assert [m.author for m in parsed.messages] == [m.author for m in messages]
    assert [m.model for m in parsed.messages] == [m.model for m in messages]
    assert [m.hidden for m in parsed.messages] == [m.hidden for m in messages]


def test_round_trip_of_an_empty_conversation(tmp_path: Path) -> None:
    parsed = round_trip(tmp_path, conversation_object(tags=()), [])
    assert (parsed.source_id, parsed.title, parsed.messages) == (
        "conv_01ROUNDTRIP",
        "Round trip · ✓",
        [],
    )
    assert parsed.metadata["tags"] == []
    assert parsed.created_at == CREATED


_FRAGMENTS = [
    "",
    "```",
    "```python",
    "~~~",
    "### user",
    "## User",
    "### assistant (Nova) · gpt-4o",
    "**User:** hi",
    "**Assistant:** [2025-03-14 10:22] hi",
    "<!-- msg_x · 2025-01-01T00:00:00+00:00 -->",
    "---",
    "# Title",
    "2025-03-14 10:22",
    "  ",
]
_any_line = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"),
    max_size=40,
)


def _has_separator(text: str) -> bool:
    """Whether ``text`` holds chatkeep's own record separator (a speaker heading and an
    id comment), which no transcript can carry inside a message."""
    lines = text.split("\n")
    return any(
        line.lstrip(" ").startswith("##") and following.startswith("<!--")
        for line, following in itertools.pairwise(lines)
    )


_line_text = (
    st.lists(st.one_of(st.sampled_from(_FRAGMENTS), _any_line), max_size=8)
    .map("\n".join)
    .filter(lambda text: not _has_separator(text))
)
_name = (
    st.text(
        alphabet=st.characters(
            whitelist_categories=("L", "N", "Zs"), blacklist_characters="\u00a0\u1680"
        ),
        min_size=1,
        max_size=20,
    )
    .map(str.strip)
    .filter(bool)
)
_moment = st.one_of(
    st.none(),
    st.datetimes(
        min_value=datetime(1970, 1, 2), max_value=datetime(9999, 1, 1), timezones=st.just(UTC)
    ),
)


def _trim(text: str) -> str:
    lines = text.split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(lines)


@given(
    items=st.lists(
        st.tuples(
            st.sampled_from(["system", "user", "assistant", "tool"]),
            _line_text,
            _moment,
            st.one_of(st.none(), _name),
            st.one_of(st.none(), _name),
            st.booleans(),
        ),
        max_size=8,
    ),
    title=_name,
)
def test_round_trip_property(
    tmp_path: Path,
    items: list[tuple[str, str, datetime | None, str | None, str | None, bool]],
    title: str,
) -> None:
    messages = [
        message_object(
            i, role, (text_part(text),), created_at=when, author=author, model=model, hidden=hidden
        )
        for i, (role, text, when, author, model, hidden) in enumerate(items)
    ]
    parsed = round_trip(tmp_path, conversation_object(title=title), messages)
    assert parsed.title == title
    assert [(m.role, m.parts[0].text) for m in parsed.messages] == [
        (role, _trim(text)) for role, text, *_ in items
    ]
    assert [m.created_at for m in parsed.messages] == [item[2] for item in items]
    assert [(m.author, m.model, m.hidden) for m in parsed.messages] == [
        (author, model, hidden) for _, _, _, author, model, hidden in items
    ]
