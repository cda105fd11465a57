"""The ``chatkeep`` command line: every command, its JSON shapes, its errors and exit codes.

Most tests drive ``chatkeep.cli.cli`` through click's ``CliRunner`` (in-process, fast);
a few run ``python -m chatkeep`` for real to check exit codes and that no traceback
ever reaches the user.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

import chatkeep
from chatkeep import errors
from chatkeep.cli import DOCTOR_PROBLEMS_EXIT, cli

CONVERSATION_ID = re.compile(r"c_[0-9A-Z]{26}")
MESSAGE_ID = re.compile(r"m_[0-9A-Z]{26}")

# The documented JSON shapes (chatkeep.shapes). Exact sets: a removed or renamed key
# must fail here; an added key must be added here on purpose.
USER_KEYS = {"id", "display_name", "created_at"}
RUNTIME_KEYS = {
    "id",
    "name",
    "origin",
    "config",
    "primary_conversation_id",
    "source_platform",
    "created_at",
    "updated_at",
}
CONVERSATION_KEYS = {
    "id",
    "runtime_id",
    "title",
    "origin",
    "state",
    "model",
    "tags",
    "message_count",
    "total_tokens",
    "total_cost",
    "active_leaf_id",
    "forked_from",
    "is_primary",
    "pinned",
    "source",
    "created_at",
    "updated_at",
    "trashed_at",
}
FORKED_FROM_KEYS = {"conversation_id", "message_id"}
MESSAGE_KEYS = {
    "id",
    "conversation_id",
    "parent_id",
    "seq",
    "role",
    "author",
    "parts",
    "created_at",
    "model",
    "tokens",
    "cost",
    "metadata",
    "hidden",
    "content_sha256",
    "attachments",
}
ATTACHMENT_KEYS = {"id", "message_id", "name", "mime_type", "size", "sha256", "created_at"}
BRANCH_KEYS = {"index", "leaf_id", "length", "active", "message_ids"}
PROBLEM_KEYS = {"check", "severity", "message", "subject"}
DELETE_KEYS = {"id", "conversations", "messages", "attachments", "blobs"}
INIT_KEYS = {"root", "created", "user_created"}
DOCTOR_KEYS = {"ok", "problems"}
SHOW_KEYS = {"conversation", "messages"}
SETTING_KEYS = {"key", "value"}


# -- helpers -----------------------------------------------------------------------
def invoke(*args: str, input: str | bytes | None = None, tty: bool = False) -> Result:
    """Run the CLI in-process. ``tty`` makes click write as to a terminal: it then keeps
    escape sequences, which it strips when writing to a pipe."""
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False, color=tty)


def ok(*args: str, input: str | bytes | None = None, tty: bool = False) -> str:
    """Run a command that must succeed; return its stdout."""
    result = invoke(*args, input=input, tty=tty)
    assert result.exit_code == 0, (args, result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.output
    return result.stdout


def data(*args: str, input: str | bytes | None = None) -> Any:
    """Run a command with ``--json``; return the parsed output."""
    return json.loads(ok(*args, "--json", input=input))


def fails(code: int, *args: str, input: str | bytes | None = None) -> Result:
    """Run a command that must fail with exit ``code`` and an ``error:`` message."""
    result = invoke(*args, input=input)
    assert result.exit_code == code, (args, result.exit_code, result.stdout, result.stderr)
    assert result.stderr.startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return result


def fails_json(code: int, error_code: str, *args: str) -> dict[str, Any]:
    """Run a command with ``--json`` that must fail; return the error object."""
    result = invoke(*args, "--json")
    assert result.exit_code == code, (args, result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.output
    body = json.loads(result.stdout)
    assert set(body) == {"error"}
    assert {"code", "message"} <= set(body["error"]) <= {"code", "message", "hint"}
    assert body["error"]["code"] == error_code
    assert body["error"]["message"]
    return body["error"]


def home_dir() -> Path:
    return Path(os.environ["CHATKEEP_HOME"])


def vault_root() -> Path:
    return home_dir() / "default"


def conversation(cid: str) -> dict[str, Any]:
    shown = data("show", cid)
    return shown["conversation"]


def sidebar(*args: str, user: str | None = None) -> list[str]:
    prefix = ("--user", user) if user else ()
    return [c["id"] for c in data(*prefix, "ls", *args)]


@dataclass
class Setup:
    user: str
    runtime: str
    home: str


@pytest.fixture
def setup() -> Setup:
    """An initialised vault with user alice and runtime synth."""
    ok("init", "--user", "alice")
    created = data("runtime", "add", "synth", "--model", "m-1")
    return Setup("alice", "synth", created["primary_conversation_id"])


@pytest.fixture
def conv(setup: Setup) -> str:
    cid = ok("new", "--title", "Plans").strip()
    assert CONVERSATION_ID.fullmatch(cid)
    return cid


# -- the walk-through --------------------------------------------------------------
def test_walk_through(tmp_path: Path) -> None:
    out = ok("init", "--user", "alice")
    assert f"Created vault at {vault_root()}" in out
    assert "Created user alice" in out
    assert (vault_root() / "vault.json").is_file()

    ok("user", "add", "bob", "--display-name", "Bob B.")
    assert ok("--user", "alice", "user", "ls").splitlines() == ["alice", "bob  Bob B."]

    out = ok("--user", "alice", "runtime", "add", "synth", "--model", "m-1")
    runtime_id, home = out.split()[0], out.split()[-1]
    assert runtime_id == "synth"
    assert CONVERSATION_ID.fullmatch(home)
    assert ok("--user", "alice", "runtime", "ls").split() == ["synth", "synth", "home:", home]
    shown = ok("--user", "alice", "runtime", "show", "synth")
    assert home in shown
    assert '"model": "m-1"' in shown
    assert ok("--user", "alice", "route", "synth").strip() == home

    cid = ok("--user", "alice", "new", "--title", "Plans", "--tag", "work").strip()
    assert CONVERSATION_ID.fullmatch(cid)
    first = ok("--user", "alice", "append", cid, "hello there").strip()
    assert MESSAGE_ID.fullmatch(first)
    second = ok(
        "--user", "alice", "append", cid, "--role", "assistant", input="piped reply"
    ).strip()
    assert MESSAGE_ID.fullmatch(second)
    third = ok("--user", "alice", "append", cid, "another take", "--parent", first).strip()

    out = ok("--user", "alice", "ls")
    lines = out.splitlines()
    assert lines[0].startswith("⌂ " + home)
    assert cid in lines[1]
    assert "Plans" in lines[1]

    transcript = ok("--user", "alice", "show", cid)
    assert "hello there" in transcript
    assert "another take" in transcript
    assert "piped reply" not in transcript  # on the other branch now
    branches = ok("--user", "alice", "branches", cid).splitlines()
    assert len(branches) == 2
    assert branches[1].startswith(">")
    assert third in branches[1]

    fork = ok("--user", "alice", "fork", cid, second, "--title", "Forked").strip()
    assert "piped reply" in ok("--user", "alice", "show", fork)
    ok("--user", "alice", "rename", fork, "Renamed fork")
    ok("--user", "alice", "tag", fork, "--add", "later")
    ok("--user", "alice", "pin", fork)
    assert sidebar(user="alice")[:2] == [home, fork]
    ok("--user", "alice", "archive", cid)
    assert sidebar("--archived", user="alice") == [cid]
    ok("--user", "alice", "unarchive", cid)
    ok("--user", "alice", "rm", cid)
    assert sidebar("--trashed", user="alice") == [cid]
    ok("--user", "alice", "restore", cid)
    out = ok("--user", "alice", "rm", "--hard", cid)
    assert "deleted: 3 messages" in out
    fails(4, "--user", "alice", "show", cid)

    ok("--user", "alice", "config", "set", "ui.theme", "dark")
    assert ok("--user", "alice", "config", "get", "ui.theme") == "dark\n"
    assert ok("--user", "alice", "doctor").strip() == "vault is healthy"


def test_every_json_command_has_the_documented_shape(tmp_path: Path) -> None:
    """One pass over every command that takes --json, checking exact key sets."""
    assert set(data("init", "--user", "alice")) == INIT_KEYS
    assert set(data("user", "add", "bob")) == USER_KEYS
    assert all(set(u) == USER_KEYS for u in data("user", "ls"))
    assert set(data("--user", "alice", "runtime", "add", "synth")) == RUNTIME_KEYS
    assert all(set(r) == RUNTIME_KEYS for r in data("--user", "alice", "runtime", "ls"))
    assert set(data("--user", "alice", "runtime", "show", "synth")) == RUNTIME_KEYS
    assert set(data("--user", "alice", "route", "synth")) == CONVERSATION_KEYS
    cid = data("--user", "alice", "new")["id"]
    attachment = tmp_path / "a.txt"
    attachment.write_bytes(b"a")
    message = data("--user", "alice", "append", cid, "hi", "--attach", str(attachment))
    assert set(message) == MESSAGE_KEYS
    assert [set(a) for a in message["attachments"]] == [ATTACHMENT_KEYS]
    assert [set(p) for p in message["parts"]] == [{"kind", "text"}, {"kind", "data"}]
    assert all(set(c) == CONVERSATION_KEYS for c in data("--user", "alice", "ls"))
    shown = data("--user", "alice", "show", cid, "--all-branches")
    assert set(shown) == SHOW_KEYS
    assert set(shown["conversation"]) == CONVERSATION_KEYS
    assert [set(m) for m in shown["messages"]] == [MESSAGE_KEYS]
    assert [set(b) for b in data("--user", "alice", "branches", cid)] == [BRANCH_KEYS]
    fork = data("--user", "alice", "fork", cid, message["id"])
    assert set(fork) == CONVERSATION_KEYS
    assert set(fork["forked_from"]) == FORKED_FROM_KEYS
    assert set(data("--user", "alice", "rename", cid, "t")) == CONVERSATION_KEYS
    assert set(data("--user", "alice", "tag", cid, "--add", "x")) == CONVERSATION_KEYS
    for command in ("pin", "unpin", "archive", "unarchive", "trash", "restore", "rm"):
        changed = data("--user", "alice", command, cid)
        assert [set(c) for c in changed] == [CONVERSATION_KEYS], command
    assert [set(r) for r in data("--user", "alice", "rm", "--hard", fork["id"])] == [DELETE_KEYS]
    assert set(data("--user", "alice", "config", "set", "ui.a", "1")) == SETTING_KEYS
    assert set(data("--user", "alice", "config", "get", "ui.a")) == SETTING_KEYS
    assert data("--user", "alice", "config", "ls") == {"ui.a": 1}
    assert set(data("doctor")) == DOCTOR_KEYS
    for timestamp in (message["created_at"], fork["created_at"], fork["updated_at"]):
        assert timestamp.endswith("Z")


# -- vault and users ---------------------------------------------------------------
def test_init_json_reports_what_it_created() -> None:
    first = data("init", "--user", "alice")
    assert set(first) == INIT_KEYS
    assert first == {"root": str(vault_root()), "created": True, "user_created": True}
    again = data("init", "--user", "alice")
    assert again == {"root": str(vault_root()), "created": False, "user_created": False}
    assert [u["id"] for u in data("user", "ls")] == ["alice"]


def test_init_without_user_creates_the_database() -> None:
    assert data("init") == {"root": str(vault_root()), "created": True, "user_created": False}
    assert (vault_root() / "chatkeep.db").is_file()
    assert data("user", "ls") == []


def test_global_user_option_is_used_by_init() -> None:
    ok("--user", "carol", "init")
    assert [u["id"] for u in data("user", "ls")] == ["carol"]


def test_user_add_and_ls_json() -> None:
    ok("init")
    added = data("user", "add", "bob", "--display-name", "Bob")
    assert set(added) == USER_KEYS
    assert added["id"] == "bob"
    assert added["display_name"] == "Bob"
    assert added["created_at"].endswith("Z")
    ok("user", "add", "alice")
    listed = data("user", "ls")
    assert [set(u) for u in listed] == [USER_KEYS, USER_KEYS]
    assert [u["id"] for u in listed] == ["alice", "bob"]


def test_duplicate_user_is_a_conflict() -> None:
    ok("init", "--user", "alice")
    result = fails(5, "user", "add", "alice")
    assert "alice" in result.stderr
    fails_json(5, "conflict", "user", "add", "alice")


# -- runtimes ----------------------------------------------------------------------
def test_runtime_add_ls_show(setup: Setup) -> None:
    added = data(
        "runtime",
        "add",
        "helper",
        "--display-name",
        "Helper",
        "--config",
        '{"tools": ["search"], "model": "old"}',
        "--model",
        "m-2",
        "--instructions",
        "be brief",
    )
    assert set(added) == RUNTIME_KEYS
    assert added["id"] == "helper"
    assert added["name"] == "Helper"
    assert added["origin"] == "native"
    assert added["config"] == {"tools": ["search"], "model": "m-2", "instructions": "be brief"}
    assert CONVERSATION_ID.fullmatch(added["primary_conversation_id"])
    listed = data("runtime", "ls")
    assert [r["id"] for r in listed] == ["helper", "synth"]
    assert all(set(r) == RUNTIME_KEYS for r in listed)
    shown = data("runtime", "show", "helper")
    assert shown == added
    human = ok("runtime", "show", "helper")
    assert "runtime: helper (Helper), origin native" in human
    assert added["primary_conversation_id"] in human


@pytest.mark.parametrize("config", ["[1, 2]", "{not json", '"text"'])
def test_runtime_config_must_be_a_json_object(setup: Setup, config: str) -> None:
    result = fails(3, "runtime", "add", "other", "--config", config)
    assert "--config" in result.stderr
    fails(4, "runtime", "show", "other")


def test_duplicate_runtime_is_a_conflict(setup: Setup) -> None:
    fails(5, "runtime", "add", "synth")


def test_route_prints_the_home_conversation(setup: Setup) -> None:
    assert ok("route", "synth").strip() == setup.home
    routed = data("route", "synth")
    assert set(routed) == CONVERSATION_KEYS
    assert routed["id"] == setup.home
    assert routed["title"] == "chat_with_synth"
    assert routed["is_primary"] is True
    assert routed["pinned"] is True


# -- conversations and messages ----------------------------------------------------
def test_new_prints_the_id_and_stores_options(setup: Setup) -> None:
    cid = ok("new", "--title", "Plans", "--model", "m-9", "--tag", "a", "--tag", "b").strip()
    assert CONVERSATION_ID.fullmatch(cid)
    found = conversation(cid)
    assert found["title"] == "Plans"
    assert found["model"] == "m-9"
    assert found["tags"] == ["a", "b"]
    assert found["runtime_id"] == "synth"
    assert found["state"] == "active"
    assert found["is_primary"] is False
    created = data("new", "--runtime", "synth")
    assert set(created) == CONVERSATION_KEYS
    assert created["title"] == "New conversation"


def test_new_needs_a_runtime_choice_when_there_are_several(setup: Setup) -> None:
    ok("runtime", "add", "other")
    result = fails(3, "new")
    assert "--runtime" in result.stderr
    assert conversation(ok("new", "--runtime", "other").strip())["runtime_id"] == "other"


def test_new_without_runtimes_is_not_found() -> None:
    ok("init", "--user", "alice")
    result = fails(4, "new")
    assert "runtime add" in result.stderr


def test_append_from_argument_and_from_stdin(conv: str) -> None:
    from_arg = data("append", conv, "from the argument")
    assert set(from_arg) == MESSAGE_KEYS
    assert from_arg["parts"] == [{"kind": "text", "text": "from the argument"}]
    assert from_arg["role"] == "user"
    assert from_arg["seq"] == 0
    assert from_arg["parent_id"] is None
    piped = data("append", conv, input="line one\nline two\n")
    assert piped["parts"] == [{"kind": "text", "text": "line one\nline two\n"}]
    assert piped["parent_id"] == from_arg["id"]
    assert piped["seq"] == 1
    messages = data("show", conv)["messages"]
    assert [m["id"] for m in messages] == [from_arg["id"], piped["id"]]


def test_append_with_empty_input_is_refused(conv: str) -> None:
    fails(3, "append", conv, input="")
    fails(3, "append", conv, "")
    assert conversation(conv)["message_count"] == 0


def test_append_options(conv: str) -> None:
    root = data("append", conv, "question", "--author", "Al", "--tokens", "3", "--cost", "0.5")
    answer = data("append", conv, "answer", "--role", "assistant", "--model", "m-7", "--hidden")
    assert answer["role"] == "assistant"
    assert answer["model"] == "m-7"
    assert answer["hidden"] is True
    assert root["author"] == "Al"
    assert root["tokens"] == 3
    assert root["cost"] == 0.5
    other = data("append", conv, "other answer", "--role", "assistant", "--parent", root["id"])
    assert other["parent_id"] == root["id"]
    second_root = data("append", conv, "fresh start", "--role", "system", "--root")
    assert second_root["parent_id"] is None
    totals = conversation(conv)
    assert totals["message_count"] == 4
    assert totals["total_tokens"] == 3
    assert totals["total_cost"] == 0.5
    assert totals["active_leaf_id"] == second_root["id"]


def test_append_attachment_is_stored_byte_for_byte(conv: str, tmp_path: Path) -> None:
    payload = bytes(range(256)) * 50 + b"\x00end"
    source = tmp_path / "diagram.png"
    source.write_bytes(payload)
    other = tmp_path / "notes.bin"
    other.write_bytes(b"second file")
    message = data("append", conv, "see attached", "--attach", str(source), "--attach", str(other))
    assert [a["name"] for a in message["attachments"]] == ["diagram.png", "notes.bin"]
    attachment = message["attachments"][0]
    assert set(attachment) == ATTACHMENT_KEYS
    assert attachment["mime_type"] == "image/png"
    assert attachment["size"] == len(payload)
    assert message["attachments"][1]["mime_type"] == "application/octet-stream"
    kinds = [p["kind"] for p in message["parts"]]
    assert kinds == ["text", "image", "file"]
    with chatkeep.open() as vault:
        assert vault.store.read_attachment("alice", attachment["id"]) == payload
    blob = vault_root() / "blobs" / attachment["sha256"][:2] / attachment["sha256"]
    assert blob.read_bytes() == payload
    shown = data("show", conv)["messages"][0]
    assert shown["attachments"] == message["attachments"]


def test_append_attachment_without_text(conv: str, tmp_path: Path) -> None:
    source = tmp_path / "only.txt"
    source.write_bytes(b"just a file")
    message = data("append", conv, "--attach", str(source), input="")
    assert [p["kind"] for p in message["parts"]] == ["file"]
    assert message["attachments"][0]["size"] == len(b"just a file")


def test_append_to_a_trashed_conversation_is_a_conflict(conv: str) -> None:
    ok("trash", conv)
    fails(5, "append", conv, "too late")


# -- listing -----------------------------------------------------------------------
def test_ls_sidebar_order(setup: Setup) -> None:
    older = ok("new", "--title", "older").strip()
    middle = ok("new", "--title", "middle").strip()
    newer = ok("new", "--title", "newer").strip()
    pinned_first = ok("new", "--title", "pinned first").strip()
    pinned_last = ok("new", "--title", "pinned last").strip()
    ok("append", older, "activity moves it up")
    ok("pin", pinned_first)
    ok("pin", pinned_last)
    expected = [setup.home, pinned_last, pinned_first, older, newer, middle]
    assert sidebar() == expected
    assert sidebar("--runtime", "synth") == expected
    lines = ok("ls").splitlines()
    assert [CONVERSATION_ID.search(line).group() for line in lines] == expected
    assert [line[0] for line in lines] == ["⌂", "*", "*", " ", " ", " "]
    assert "older" in lines[3]
    assert sidebar("--limit", "2") == expected[:2]
    assert sidebar("--limit", "2", "--offset", "2") == expected[2:4]
    assert sidebar("--offset", "4") == expected[4:]


def test_ls_runtime_filter(setup: Setup) -> None:
    mine = ok("new").strip()
    other = data("runtime", "add", "other")
    theirs = ok("new", "--runtime", "other").strip()
    assert sidebar("--runtime", "synth") == [setup.home, mine]
    assert sidebar("--runtime", "other") == [other["primary_conversation_id"], theirs]
    assert sidebar() == [other["primary_conversation_id"], theirs, setup.home, mine]
    fails(4, "ls", "--runtime", "missing")


def test_ls_archived_and_trashed(setup: Setup) -> None:
    kept = ok("new", "--title", "kept").strip()
    archived = ok("new", "--title", "archived").strip()
    trashed = ok("new", "--title", "trashed").strip()
    ok("archive", archived)
    ok("trash", trashed)
    assert sidebar() == [setup.home, kept]
    assert sidebar("--archived") == [archived]
    assert sidebar("--trashed") == [trashed]
    assert sidebar("--trashed", "--runtime", "synth") == [trashed]
    assert data("ls", "--trashed")[0]["trashed_at"].endswith("Z")
    fails(3, "ls", "--archived", "--trashed")
    fails(3, "ls", "--limit", "0")
    fails(3, "ls", "--offset", "-1")


# -- show, branches, fork ----------------------------------------------------------
@pytest.fixture
def tree(conv: str) -> dict[str, str]:
    """conv: q -> a1, and q -> a2 (active); ids by name."""
    q = ok("append", conv, "question").strip()
    a1 = ok("append", conv, "first answer", "--role", "assistant").strip()
    a2 = ok("append", conv, "second answer", "--role", "assistant", "--parent", q).strip()
    return {"conv": conv, "q": q, "a1": a1, "a2": a2}


def test_show_default_markdown_and_json(tree: dict[str, str]) -> None:
    conv = tree["conv"]
    text = ok("show", conv)
    assert text.startswith("---\nid: " + conv)
    assert "# Plans" in text
    assert "### user" in text
    assert "### assistant" in text
    assert "question" in text
    assert "second answer" in text
    assert "first answer" not in text
    assert ok("show", conv, "--markdown") == text
    shown = data("show", conv)
    assert set(shown) == SHOW_KEYS
    assert set(shown["conversation"]) == CONVERSATION_KEYS
    assert all(set(m) == MESSAGE_KEYS for m in shown["messages"])
    assert [m["id"] for m in shown["messages"]] == [tree["q"], tree["a2"]]


def test_show_branch_and_all_branches(tree: dict[str, str]) -> None:
    conv = tree["conv"]
    first = data("show", conv, "--branch", "1")["messages"]
    assert [m["id"] for m in first] == [tree["q"], tree["a1"]]
    assert "first answer" in ok("show", conv, "--branch", "1")
    second = data("show", conv, "--branch", "2")["messages"]
    assert [m["id"] for m in second] == [tree["q"], tree["a2"]]
    every = data("show", conv, "--all-branches")["messages"]
    assert [m["id"] for m in every] == [tree["q"], tree["a1"], tree["a2"]]
    fails(4, "show", conv, "--branch", "3")
    fails(4, "show", conv, "--branch", "0")
    fails(3, "show", conv, "--branch", "1", "--all-branches")


def test_show_an_empty_conversation(conv: str) -> None:
    assert data("show", conv)["messages"] == []
    assert "# Plans" in ok("show", conv)


def test_branches(tree: dict[str, str]) -> None:
    found = data("branches", tree["conv"])
    assert [set(b) for b in found] == [BRANCH_KEYS, BRANCH_KEYS]
    assert found == [
        {
            "index": 1,
            "leaf_id": tree["a1"],
            "length": 2,
            "active": False,
            "message_ids": [tree["q"], tree["a1"]],
        },
        {
            "index": 2,
            "leaf_id": tree["a2"],
            "length": 2,
            "active": True,
            "message_ids": [tree["q"], tree["a2"]],
        },
    ]
    lines = ok("branches", tree["conv"]).splitlines()
    assert lines[0].startswith("  1")
    assert lines[1].startswith("> 2")


def test_fork(tree: dict[str, str]) -> None:
    fork_id = ok("fork", tree["conv"], tree["a1"]).strip()
    assert CONVERSATION_ID.fullmatch(fork_id)
    forked = data("show", fork_id)
    assert forked["conversation"]["title"] == "Plans (fork)"
    assert forked["conversation"]["forked_from"] == {
        "conversation_id": tree["conv"],
        "message_id": tree["a1"],
    }
    assert set(forked["conversation"]["forked_from"]) == FORKED_FROM_KEYS
    texts = [m["parts"][0]["text"] for m in forked["messages"]]
    assert texts == ["question", "first answer"]
    assert {m["id"] for m in forked["messages"]}.isdisjoint({tree["q"], tree["a1"]})
    titled = data("fork", tree["conv"], tree["q"], "--title", "Just the question")
    assert set(titled) == CONVERSATION_KEYS
    assert titled["title"] == "Just the question"
    assert titled["message_count"] == 1
    assert conversation(tree["conv"])["forked_from"] is None


def test_fork_from_a_message_of_another_conversation_is_refused(
    tree: dict[str, str],
) -> None:
    other = ok("new").strip()
    fails(3, "fork", other, tree["q"])


# -- rename, tag, pin, archive, trash, rm --------------------------------------------
def test_rename(conv: str) -> None:
    out = ok("rename", conv, "New title")
    assert out.strip() == f"{conv}  active  New title"
    renamed = data("rename", conv, "Newer title")
    assert set(renamed) == CONVERSATION_KEYS
    assert conversation(conv)["title"] == "Newer title"
    fails(3, "rename", conv, "")
    fails(6, "rename", conv, "x" * 1001)
    assert conversation(conv)["title"] == "Newer title"


def test_tag(conv: str) -> None:
    tagged = data("tag", conv, "--add", "b", "--add", "a", "--add", "c")
    assert set(tagged) == CONVERSATION_KEYS
    assert tagged["tags"] == ["a", "b", "c"]
    assert data("tag", conv, "--remove", "b", "--add", "d")["tags"] == ["a", "c", "d"]
    assert conversation(conv)["tags"] == ["a", "c", "d"]
    fails(3, "tag", conv, "--add", " ")


def test_pin_and_unpin(setup: Setup) -> None:
    first = ok("new").strip()
    second = ok("new").strip()
    assert sidebar() == [setup.home, second, first]
    pinned = data("pin", first)
    assert [set(c) for c in pinned] == [CONVERSATION_KEYS]
    assert pinned[0]["pinned"] is True
    assert sidebar() == [setup.home, first, second]
    ok("pin", first)  # pinning twice is harmless
    unpinned = data("unpin", first)
    assert unpinned[0]["pinned"] is False
    assert sidebar() == [setup.home, second, first]


def test_lifecycle_commands_take_several_conversations(setup: Setup) -> None:
    first = ok("new").strip()
    second = ok("new").strip()
    archived = data("archive", first, second)
    assert [c["state"] for c in archived] == ["archived", "archived"]
    assert set(sidebar("--archived")) == {first, second}
    ok("unarchive", first, second)
    ok("pin", first, second)
    assert set(sidebar()[1:]) == {first, second}
    assert all(c["pinned"] for c in data("ls")[1:])
    ok("unpin", first, second)
    trashed = data("trash", first, second)
    assert [c["state"] for c in trashed] == ["trashed", "trashed"]
    assert set(sidebar("--trashed")) == {first, second}
    ok("restore", first, second)
    assert sidebar() == [setup.home, second, first]


def test_archive_and_unarchive(conv: str) -> None:
    archived = data("archive", conv)
    assert archived[0]["state"] == "archived"
    assert conversation(conv)["state"] == "archived"
    assert data("archive", conv)[0]["state"] == "archived"  # again: no change, no error
    fails(5, "restore", conv)  # archived is not trashed
    assert data("unarchive", conv)[0]["state"] == "active"
    assert data("unarchive", conv)[0]["state"] == "active"
    ok("trash", conv)
    fails(5, "unarchive", conv)  # trashed is not archived
    fails(5, "archive", conv)
    assert conversation(conv)["state"] == "trashed"


def test_trash_and_restore(conv: str) -> None:
    trashed = data("trash", conv)
    assert trashed[0]["state"] == "trashed"
    assert trashed[0]["trashed_at"] is not None
    restored = data("restore", conv)
    assert restored[0]["state"] == "active"
    assert restored[0]["trashed_at"] is None
    ok("archive", conv)
    assert data("trash", conv)[0]["state"] == "trashed"  # archived ones can be trashed
    assert data("restore", conv)[0]["state"] == "active"


def test_rm_moves_to_the_trash(conv: str) -> None:
    out = ok("rm", conv)
    assert out.strip() == f"{conv}  moved to the trash (use --hard to delete for good)"
    assert conversation(conv)["state"] == "trashed"
    ok("restore", conv)
    assert [c["state"] for c in data("rm", conv)] == ["trashed"]


def test_rm_hard_deletes_messages_attachments_and_blobs(conv: str, tmp_path: Path) -> None:
    source = tmp_path / "a.txt"
    source.write_bytes(b"attached bytes")
    ok("append", conv, "one")
    message = data("append", conv, "two", "--attach", str(source))
    sha = message["attachments"][0]["sha256"]
    blob = vault_root() / "blobs" / sha[:2] / sha
    assert blob.is_file()
    reports = data("rm", "--hard", conv)
    assert [set(r) for r in reports] == [DELETE_KEYS]
    assert reports == [
        {"id": conv, "conversations": 1, "messages": 2, "attachments": 1, "blobs": 1}
    ]
    assert not blob.exists()
    fails(4, "show", conv)
    fails(4, "rm", "--hard", conv)
    assert ok("doctor").strip() == "vault is healthy"


def test_rm_hard_keeps_a_blob_another_conversation_uses(setup: Setup, tmp_path: Path) -> None:
    source = tmp_path / "shared.txt"
    source.write_bytes(b"shared bytes")
    first = ok("new").strip()
    second = ok("new").strip()
    ok("append", first, "x", "--attach", str(source))
    kept = data("append", second, "y", "--attach", str(source))["attachments"][0]
    reports = data("rm", "--hard", first)
    assert reports[0]["attachments"] == 1
    assert reports[0]["blobs"] == 0
    with chatkeep.open() as vault:
        assert vault.store.read_attachment("alice", kept["id"]) == b"shared bytes"


def test_several_ids_one_failing_the_others_still_done_and_reported(setup: Setup) -> None:
    first = ok("new").strip()
    last = ok("new").strip()
    result = fails(5, "rm", first, setup.home, last)
    assert result.stdout.splitlines() == [
        f"{first}  moved to the trash (use --hard to delete for good)",
        f"{last}  moved to the trash (use --hard to delete for good)",
    ]
    assert result.stderr.startswith(f"error: {setup.home}: ")
    assert conversation(first)["state"] == "trashed"
    assert conversation(last)["state"] == "trashed"
    assert conversation(setup.home)["state"] == "active"

    ok("restore", first, last)
    missing = "c_" + "0" * 26
    result = invoke("archive", first, missing, setup.home, "--json")
    assert result.exit_code == errors.NotFound.exit_code  # the first failure's code
    items = json.loads(result.stdout)
    assert set(items[0]) == CONVERSATION_KEYS
    assert items[0]["state"] == "archived"
    assert [set(item) for item in items[1:]] == [{"id", "error"}, {"id", "error"}]
    assert [(i["id"], i["error"]["code"]) for i in items[1:]] == [
        (missing, "not_found"),
        (setup.home, "conflict"),
    ]


def test_several_ids_error_lines_are_terminal_safe(setup: Setup) -> None:
    first = ok("new").strip()
    result = invoke("trash", first, "\x1b[2Jc_evil", tty=True)
    assert result.exit_code == errors.InvalidId.exit_code
    assert "\x1b" not in result.stderr
    assert conversation(first)["state"] == "trashed"
    single = invoke("show", "\x1b[2Jc_evil", tty=True)
    assert single.exit_code == errors.InvalidId.exit_code
    assert "\x1b" not in single.stderr


# -- the home conversation is protected --------------------------------------------
@pytest.mark.parametrize(
    "command",
    [("trash",), ("archive",), ("rm",), ("rm", "--hard")],
    ids=["trash", "archive", "rm", "rm-hard"],
)
def test_home_conversation_cannot_be_removed(setup: Setup, command: tuple[str, ...]) -> None:
    ok("append", setup.home, "keep me")
    result = fails(5, *command, setup.home)
    assert "home conversation" in result.stderr
    error = fails_json(5, "conflict", *command, setup.home)
    assert setup.home in error["message"]
    home = data("show", setup.home)
    assert home["conversation"]["state"] == "active"
    assert [m["parts"][0]["text"] for m in home["messages"]] == ["keep me"]
    assert sidebar()[0] == setup.home
    assert ok("route", "synth").strip() == setup.home


# -- doctor ------------------------------------------------------------------------
def test_doctor_on_a_healthy_vault(conv: str) -> None:
    ok("append", conv, "hello")
    assert ok("doctor").strip() == "vault is healthy"
    report = data("doctor")
    assert report == {"ok": True, "problems": []}
    assert set(report) == DOCTOR_KEYS


def test_doctor_reports_warnings_but_exits_zero(setup: Setup) -> None:
    (vault_root() / ".tmp-0123-leftover").write_bytes(b"half written")
    report = data("doctor")
    assert report["ok"] is True
    assert [set(p) for p in report["problems"]] == [PROBLEM_KEYS]
    assert report["problems"][0]["severity"] == "warning"
    assert report["problems"][0]["check"] == "files"
    assert "warning: [files]" in ok("doctor")


def test_doctor_reports_a_missing_blob_and_exits_9(conv: str, tmp_path: Path) -> None:
    source = tmp_path / "f.txt"
    source.write_bytes(b"precious")
    sha = data("append", conv, "--attach", str(source), input="")["attachments"][0]["sha256"]
    (vault_root() / "blobs" / sha[:2] / sha).unlink()
    result = invoke("doctor", "--json")
    assert result.exit_code == DOCTOR_PROBLEMS_EXIT
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert [(p["check"], p["severity"], p["subject"]) for p in report["problems"]] == [
        ("blobs", "error", sha)
    ]
    human = invoke("doctor")
    assert human.exit_code == DOCTOR_PROBLEMS_EXIT
    assert "1 problem(s) found" in human.stdout


# -- settings ----------------------------------------------------------------------
def test_config_set_get_ls_unset(setup: Setup) -> None:
    assert ok("config", "set", "ui.theme", "dark") == ""
    ok("config", "set", "ui.font_size", "14")
    ok("config", "set", "llm.options", '{"temperature": 0.5, "stop": ["\\n"]}')
    ok("config", "set", "ui.quoted", '"007"')
    ok("config", "set", "ui.leading_zero", "007")
    assert ok("config", "get", "ui.theme") == "dark\n"
    assert ok("config", "get", "ui.font_size") == "14\n"
    got = data("config", "get", "llm.options")
    assert set(got) == SETTING_KEYS
    assert got == {"key": "llm.options", "value": {"temperature": 0.5, "stop": ["\n"]}}
    assert data("config", "get", "ui.font_size")["value"] == 14
    assert data("config", "get", "ui.quoted")["value"] == "007"
    assert data("config", "get", "ui.leading_zero")["value"] == "007"
    assert data("config", "set", "ui.flag", "true") == {"key": "ui.flag", "value": True}
    everything = data("config", "ls")
    assert everything == {
        "llm.options": {"temperature": 0.5, "stop": ["\n"]},
        "ui.flag": True,
        "ui.font_size": 14,
        "ui.leading_zero": "007",
        "ui.quoted": "007",
        "ui.theme": "dark",
    }
    assert list(data("config", "ls", "--prefix", "llm")) == ["llm.options"]
    assert 'ui.theme = "dark"' in ok("config", "ls").splitlines()
    ok("config", "set", "ui.theme", "light")
    assert ok("config", "get", "ui.theme") == "light\n"
    assert ok("config", "unset", "ui.theme") == ""
    fails(4, "config", "get", "ui.theme")
    fails(4, "config", "unset", "ui.theme")
    assert "ui.theme" not in data("config", "ls")


def test_config_keys_must_be_namespaced(setup: Setup) -> None:
    fails(3, "config", "set", "theme", "dark")
    fails_json(3, "invalid_id", "config", "get", "theme")


def test_settings_are_per_user(setup: Setup) -> None:
    ok("user", "add", "bob")
    ok("--user", "alice", "config", "set", "ui.theme", "dark")
    fails(4, "--user", "bob", "config", "get", "ui.theme")
    assert data("--user", "bob", "config", "ls") == {}


# -- errors ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "code", "error_code"),
    [
        (("show", "../x"), errors.InvalidId.exit_code, "invalid_id"),
        (("show", "c_bad"), errors.InvalidId.exit_code, "invalid_id"),
        (("branches", "../x"), errors.InvalidId.exit_code, "invalid_id"),
        (("rename", "c_bad", "t"), errors.InvalidId.exit_code, "invalid_id"),
        (("append", "../../etc/passwd", "hi"), errors.InvalidId.exit_code, "invalid_id"),
        (("show", "c_" + "0" * 26), errors.NotFound.exit_code, "not_found"),
        (("append", "c_" + "0" * 26, "hi"), errors.NotFound.exit_code, "not_found"),
        (("runtime", "show", "Bad/Name"), errors.InvalidId.exit_code, "invalid_id"),
        (("runtime", "show", "missing"), errors.NotFound.exit_code, "not_found"),
        (("route", "missing"), errors.NotFound.exit_code, "not_found"),
        (("user", "add", "../x"), errors.InvalidId.exit_code, "invalid_id"),
        (("new", "--title", "x" * 1001), errors.LimitExceeded.exit_code, "limit_exceeded"),
        (("--user", "nobody", "ls"), errors.NotFound.exit_code, "not_found"),
    ],
    ids=lambda value: " ".join(value)[:40] if isinstance(value, tuple) else str(value),
)
def test_errors_give_their_exit_code_and_message(
    setup: Setup, args: tuple[str, ...], code: int, error_code: str
) -> None:
    result = fails(code, *args)
    assert result.stdout == ""
    error = fails_json(code, error_code, *args)
    assert result.stderr.splitlines()[0] == "error: " + error["message"]


def test_exit_codes_are_the_documented_ones() -> None:
    assert errors.InvalidInput.exit_code == 3
    assert errors.InvalidId.exit_code == 3
    assert errors.NotFound.exit_code == 4
    assert errors.Conflict.exit_code == 5
    assert errors.LimitExceeded.exit_code == 6
    assert errors.VaultError.exit_code == 8


def test_unknown_role(conv: str) -> None:
    result = fails(3, "append", conv, "hi", "--role", "wizard")
    assert "wizard" in result.stderr
    assert "hint: use one of: system, user, assistant, tool" in result.stderr
    fails_json(3, "invalid_input", "append", conv, "hi", "--role", "wizard")
    assert conversation(conv)["message_count"] == 0


def test_negative_tokens_and_cost_are_refused(conv: str) -> None:
    fails(3, "append", conv, "x", "--tokens", "-1")
    fails(3, "append", conv, "x", "--cost", "-0.5")
    fails(3, "append", conv, "x", "--cost", "nan")
    assert conversation(conv)["message_count"] == 0


def test_tokens_beyond_64_bits_are_refused_cleanly(conv: str) -> None:
    result = invoke("append", conv, "x", "--tokens", str(2**64))
    assert result.exit_code in (errors.InvalidInput.exit_code, errors.LimitExceeded.exit_code)
    assert result.stderr.startswith("error: ")


def test_token_totals_cannot_overflow(conv: str) -> None:
    first = invoke("append", conv, "x", "--tokens", str(2**63 - 1))
    second = invoke("append", conv, "y", "--tokens", "1")
    assert {first.exit_code, second.exit_code} <= {
        0,
        errors.InvalidInput.exit_code,
        errors.LimitExceeded.exit_code,
    }


def test_cost_totals_stay_finite_numbers(conv: str) -> None:
    invoke("append", conv, "x", "--cost", "1e308")
    invoke("append", conv, "y", "--cost", "1e308")
    assert isinstance(conversation(conv)["total_cost"], float)


def test_bad_parent(tree: dict[str, str]) -> None:
    fails(3, "append", tree["conv"], "x", "--parent", "m_bad")
    fails(4, "append", tree["conv"], "x", "--parent", "m_" + "0" * 26)
    other = ok("new").strip()
    fails(3, "append", other, "x", "--parent", tree["q"])
    assert conversation(other)["message_count"] == 0


def test_missing_vault(tmp_path: Path) -> None:
    result = fails(8, "ls")
    assert "no chatkeep vault" in result.stderr
    assert "hint: run 'chatkeep init'" in result.stderr
    fails_json(8, "vault_missing", "user", "ls")
    fails(8, "--home", str(tmp_path / "elsewhere"), "show", "c_" + "0" * 26)
    assert not home_dir().exists()
    assert not (tmp_path / "elsewhere").exists()


def test_several_users_need_user(setup: Setup) -> None:
    ok("user", "add", "bob")
    for args in (("ls",), ("new",), ("runtime", "ls"), ("config", "ls")):
        result = fails(3, *args)
        assert "several users" in result.stderr
        assert "--user" in result.stderr
    fails_json(3, "invalid_input", "ls")
    assert sidebar(user="alice") == [setup.home]


def test_users_do_not_see_each_other(conv: str) -> None:
    ok("user", "add", "bob")
    ok("--user", "alice", "append", conv, "private")
    fails(4, "--user", "bob", "show", conv)
    fails(4, "--user", "bob", "append", conv, "intrusion")
    fails(4, "--user", "bob", "rm", "--hard", conv)
    assert data("--user", "bob", "ls") == []
    assert conversation_of("alice", conv)["message_count"] == 1


def conversation_of(user: str, cid: str) -> dict[str, Any]:
    return data("--user", user, "show", cid)["conversation"]


def test_no_users_yet() -> None:
    ok("init")
    result = fails(4, "ls")
    assert "user add" in result.stderr


# -- terminal safety ---------------------------------------------------------------
ANSI_TEXT = "\x1b[31mred alert\x1b[0m and a bell\x07"


def test_escape_sequences_are_shown_escaped(conv: str) -> None:
    ok("append", conv, ANSI_TEXT)
    shown = ok("show", conv, tty=True)
    assert "\x1b" not in shown
    assert "\x07" not in shown
    assert "\\x1b[31mred alert\\x1b[0m and a bell\\x07" in shown
    assert "\x1b" not in ok("show", conv, "--markdown", tty=True)
    parsed = data("show", conv)
    assert parsed["messages"][0]["parts"][0]["text"] == ANSI_TEXT


def test_show_raw_prints_escape_sequences_unchanged(conv: str) -> None:
    ok("append", conv, ANSI_TEXT)
    assert ANSI_TEXT in ok("show", conv, "--raw")


def test_escape_sequences_in_titles_and_settings_are_escaped(conv: str) -> None:
    ok("rename", conv, "\x1b]0;owned\x07title")
    listing = ok("ls", tty=True)
    assert "\x1b" not in listing
    assert "\\x1b]0;owned\\x07title" in listing
    ok("config", "set", "ui.motd", "\x1b[2J")
    assert ok("config", "get", "ui.motd", tty=True) == "\\x1b[2J\n"
    assert "\x1b" not in ok("rename", conv, "\x1b[1mbold", tty=True)


# -- help --------------------------------------------------------------------------
def _command_tree(
    command: click.Command, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from _command_tree(sub, (*path, name))


COMMANDS = list(_command_tree(cli))


def test_the_command_tree_is_what_is_documented() -> None:
    names = {" ".join(path) for path, _ in COMMANDS}
    assert names >= {
        "",
        "init",
        "doctor",
        "user",
        "user add",
        "user ls",
        "runtime",
        "runtime add",
        "runtime ls",
        "runtime show",
        "route",
        "new",
        "append",
        "ls",
        "show",
        "branches",
        "fork",
        "rename",
        "tag",
        "pin",
        "unpin",
        "archive",
        "unarchive",
        "trash",
        "restore",
        "rm",
        "config",
        "config get",
        "config set",
        "config unset",
        "config ls",
    }


@pytest.mark.parametrize(
    ("path", "command"), COMMANDS, ids=[" ".join(p) or "chatkeep" for p, _ in COMMANDS]
)
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_for_every_command(path: tuple[str, ...], command: click.Command, flag: str) -> None:
    assert (command.help or "").strip(), f"{' '.join(path)} has no help text"
    out = ok(*path, flag)
    assert out.startswith("Usage: ")
    first_paragraph = (command.help or "").split("\n\n")[0]
    assert " ".join(first_paragraph.split()) in " ".join(out.split())
    assert not home_dir().exists()  # asking for help touches nothing


def test_version() -> None:
    assert chatkeep.__version__ in ok("--version")


# -- real processes ----------------------------------------------------------------
def run_chatkeep(
    *args: str, input: bytes | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "chatkeep", *args],
        input=input if input is not None else b"",
        capture_output=True,
        env={**os.environ, **(env or {})},
        timeout=60,
        check=False,
    )


def test_real_process_success_and_errors() -> None:
    done = run_chatkeep("init", "--user", "alice")
    assert (done.returncode, done.stderr) == (0, b"")
    done = run_chatkeep("runtime", "add", "synth", "--json")
    assert done.returncode == 0
    home = json.loads(done.stdout)["primary_conversation_id"]
    done = run_chatkeep("append", home, input=b"piped through a real pipe")
    assert done.returncode == 0
    assert MESSAGE_ID.fullmatch(done.stdout.decode().strip())

    cases = [
        (("append", "../x", "hi"), 3),
        (("fork", "c_bad", "m_bad"), 3),
        (("append", home, "x", "--role", "wizard"), 3),
        (("show", "c_" + "0" * 26), 4),
        (("trash", home), 5),
        (("new", "--title", "x" * 1001), 6),
        (("--env", "empty", "ls"), 8),
    ]
    for args, code in cases:
        done = run_chatkeep(*args)
        assert done.returncode == code, (args, done.stdout, done.stderr)
        assert done.stderr.startswith(b"error: "), (args, done.stderr)
        assert b"Traceback" not in done.stdout + done.stderr
        done = run_chatkeep(*args, "--json")
        assert done.returncode == code, args
        assert json.loads(done.stdout)["error"]["code"]
        assert b"Traceback" not in done.stdout + done.stderr


def test_real_process_usage_error_is_exit_2_without_traceback() -> None:
    done = run_chatkeep("no-such-command")
    assert done.returncode == 2
    assert b"Traceback" not in done.stderr
    assert b"No such command" in done.stderr


def test_real_process_invalid_utf8_on_stdin_is_invalid_input() -> None:
    ok("init", "--user", "alice")
    home = data("runtime", "add", "synth")["primary_conversation_id"]
    done = run_chatkeep(
        "append", home, input=b"\xff\xfe not utf-8", env={"PYTHONIOENCODING": "utf-8:strict"}
    )
    assert b"Traceback" not in done.stderr
    assert done.returncode == errors.InvalidInput.exit_code, done.stderr
