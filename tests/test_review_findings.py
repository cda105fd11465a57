"""Regression tests for defects found in a code review of the core store.

Each test failed on the code as reviewed; each fix is named in the commit that made
it pass.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import event

import chatkeep
from chatkeep import fsutil, ids, limits
from chatkeep.cli import cli
from chatkeep.model import NewAttachment, NewMessage, Part
from chatkeep.store import Store


def _home(store: Store) -> str:
    store.add_user("alice")
    store.create_runtime("alice", "r")
    return store.route("alice", "r").id


def _blob_files(vault: chatkeep.Vault) -> list[Path]:
    return [
        p
        for p in vault.paths.blobs.rglob("*")
        if p.is_file() and not p.name.startswith(fsutil.TEMP_PREFIX)
    ]


def _damaged_vault(home: Path) -> None:
    """A vault with data, then garbage written into the second half of its pages."""
    with chatkeep.open(home=home, create=True) as vault:
        conversation = _home(vault.store)
        for i in range(300):
            vault.store.append_message(
                "alice", conversation, chatkeep.user_message(f"message {i} " * 20)
            )
    database = chatkeep.open(home=home).paths.database
    with sqlite3.connect(database) as raw:  # fold the WAL into the main file first
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw.close()
    pages = database.stat().st_size // 4096
    with database.open("r+b") as handle:
        for page in range(pages // 2, pages):
            handle.seek(page * 4096 + 100)
            handle.write(b"\xff" * 200)


# -- 1. doctor crashes on the damage it exists to find ------------------------------
def test_doctor_reports_a_damaged_database_instead_of_crashing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _damaged_vault(home)
    with chatkeep.open(home=home) as vault:
        problems = vault.doctor()
    assert any(p.severity == "error" for p in problems)


def test_cli_doctor_on_a_damaged_database_is_not_an_internal_error(
    tmp_path: Path, isolated_environment: Path
) -> None:
    home = tmp_path / "home"
    _damaged_vault(home)
    result = CliRunner().invoke(cli, ["--home", str(home), "doctor", "--json"])
    assert result.exit_code != 70, result.output
    json.loads(result.stdout)


def test_a_garbage_database_file_is_a_chatkeep_error(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with chatkeep.open(home=home, create=True) as vault:
        vault.store.add_user("alice")
        database = vault.paths.database
    for leftover in (Path(f"{database}-wal"), Path(f"{database}-shm")):
        leftover.unlink(missing_ok=True)
    database.write_bytes(b"garbage" * 1000)
    with pytest.raises(chatkeep.ChatkeepError):
        chatkeep.open(home=home).close()


# -- 2. one leaked SQLite connection per thread --------------------------------------
@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_threads_that_end_leave_no_database_connection_open(vault: chatkeep.Vault) -> None:
    conversation = _home(vault.store)

    def open_fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    vault.store.append_message("alice", conversation, chatkeep.user_message("warm-up"))
    before = open_fds()
    for i in range(30):
        worker = threading.Thread(
            target=vault.store.append_message,
            args=("alice", conversation, chatkeep.user_message(f"from thread {i}")),
        )
        worker.start()
        worker.join()
    assert open_fds() - before < 10


# -- 3. a refused append leaves its attachment blobs behind --------------------------
@pytest.mark.parametrize("case", ["missing conversation", "foreign parent", "unknown user"])
def test_a_refused_append_leaves_no_blob_behind(vault: chatkeep.Vault, case: str) -> None:
    store = vault.store
    home = _home(store)
    other = store.create_conversation("alice", "r").id
    foreign = store.append_message("alice", other, chatkeep.user_message("elsewhere"))
    attachment = (NewAttachment(name="big.bin", data=b"x" * 100_000),)
    user, target, parent = {
        "missing conversation": ("alice", ids.new_id("conversation"), None),
        "foreign parent": ("alice", home, foreign.id),
        "unknown user": ("mallory", home, None),
    }[case]
    with pytest.raises(chatkeep.ChatkeepError):
        store.append_message(
            user, target, chatkeep.user_message("x", parent_id=parent, attachments=attachment)
        )
    assert _blob_files(vault) == []


# -- 4. malformed library input escapes as a raw Python exception -------------------
_BAD_CALLS: dict[str, Callable[[Store, str], Any]] = {
    "attachment data is text": lambda s, c: s.append_message(
        "alice", c, chatkeep.user_message("x", attachments=(NewAttachment("a", data="text"),))
    ),
    "attachment path holds NUL": lambda s, c: s.append_message(
        "alice", c, chatkeep.user_message("x", attachments=(NewAttachment("a", path="/tmp/\0"),))
    ),
    "hidden is a string": lambda s, c: s.append_message(
        "alice",
        c,
        NewMessage(role="user", parts=(Part("text", "x"),), hidden="yes"),  # type: ignore[arg-type]
    ),
    "created_at is a string": lambda s, c: s.append_message(
        "alice",
        c,
        NewMessage(role="user", parts=(Part("text", "x"),), created_at="2024-01-01"),  # type: ignore[arg-type]
    ),
    "created_at out of range": lambda s, c: s.append_message(
        "alice",
        c,
        NewMessage(
            role="user",
            parts=(Part("text", "x"),),
            created_at=dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=5))),
        ),
    ),
    "limit is a string": lambda s, c: s.list_conversations("alice", limit="5"),  # type: ignore[arg-type]
}


@pytest.mark.parametrize("case", sorted(_BAD_CALLS))
def test_malformed_input_is_a_chatkeep_error_not_a_raw_exception(store: Store, case: str) -> None:
    conversation = _home(store)
    with contextlib.suppress(chatkeep.ChatkeepError):
        _BAD_CALLS[case](store, conversation)
    assert store.list_messages("alice", conversation) == []


def test_reading_an_attachment_whose_blob_is_gone_is_a_chatkeep_error(
    vault: chatkeep.Vault,
) -> None:
    conversation = _home(vault.store)
    stored = vault.store.append_message(
        "alice", conversation, chatkeep.user_message("x", attachments=(NewAttachment("a", b"1"),))
    )
    for blob in _blob_files(vault):
        blob.unlink()
    with pytest.raises(chatkeep.ChatkeepError):
        vault.store.read_attachment("alice", stored.attachments[0].id)


# -- 5. doctor checks blobs outside its database snapshot ---------------------------
def test_doctor_during_a_hard_delete_reports_no_missing_blob(
    vault: chatkeep.Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = vault.store
    _home(store)
    doomed = store.create_conversation("alice", "r").id
    store.append_message(
        "alice", doomed, chatkeep.user_message("x", attachments=(NewAttachment("a", b"bye"),))
    )
    original = store._check_content  # type: ignore[attr-defined]

    def check_content_while_another_process_deletes(conn: Any) -> Any:
        found = original(conn)
        store.delete_conversation("alice", doomed)  # commits on another connection
        return found

    monkeypatch.setattr(store, "_check_content", check_content_while_another_process_deletes)
    assert [p for p in vault.doctor() if p.severity == "error"] == []


# -- 6. a hard delete that reports failure after it committed -----------------------
def test_a_failed_hard_delete_leaves_the_conversation_in_place(
    vault: chatkeep.Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = vault.store
    _home(store)
    doomed = store.create_conversation("alice", "r").id
    store.append_message(
        "alice", doomed, chatkeep.user_message("x", attachments=(NewAttachment("a", b"bye"),))
    )

    def failing_remove(path: Path) -> bool:
        raise chatkeep.StorageError(f"could not remove {path.name}")

    monkeypatch.setattr(fsutil, "remove_file", failing_remove)
    try:
        store.delete_conversation("alice", doomed)
    except chatkeep.StorageError:
        # An error promises that nothing was acknowledged: the conversation must remain.
        assert store.get_conversation("alice", doomed).id == doomed


# -- 7. fork safety: pooled connections and the id generator ------------------------
def _in_child(work: Callable[[], bytes]) -> bytes:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            os.close(read)
            os.write(write, work())
        finally:
            os._exit(0)
    os.close(write)
    answer = os.read(read, 256)
    os.close(read)
    os.waitpid(pid, 0)
    return answer


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_never_uses_the_parents_database_connection(
    vault: chatkeep.Vault,
) -> None:
    engine = vault.store._engine  # type: ignore[attr-defined]
    makers: list[int] = []

    def record(_dbapi: Any, connection_record: Any, _proxy: Any) -> None:
        makers.append(connection_record.info.setdefault("opened_by", os.getpid()))

    event.listen(engine, "checkout", record)
    try:
        vault.store.add_user("alice")

        def child() -> bytes:
            makers.clear()
            vault.store.list_users()
            return b"own" if set(makers) == {os.getpid()} else b"inherited"

        assert _in_child(child) == b"own"
    finally:
        event.remove(engine, "checkout", record)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_ids_minted_in_a_forked_child_differ_from_the_parents(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The wall clock stepped back 10 s (NTP): the generator keeps its last time.
    monkeypatch.setattr(ids, "_last_time_ms", time.time_ns() // 1_000_000 + 10_000)
    ids.new_id("message")
    theirs = _in_child(lambda: ids.new_id("message").encode()).decode()
    assert ids.new_id("message") != theirs


# -- 8. the git-work-tree check looks at the spelling of the path, not the place ----
def test_a_home_symlinked_into_a_git_work_tree_is_refused(tmp_path: Path) -> None:
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    (tmp_path / "repo" / "data").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "repo" / "data")
    with pytest.raises(chatkeep.UnsafeLocation):
        chatkeep.open(home=tmp_path / "link", create=True).close()


def test_a_home_spelled_through_a_repository_but_outside_it_is_allowed(tmp_path: Path) -> None:
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    (tmp_path / "repo" / "sub").mkdir()
    (tmp_path / "elsewhere").mkdir()
    chatkeep.open(home=tmp_path / "repo" / "sub" / ".." / ".." / "elsewhere", create=True).close()


# -- 9. limits reported as invalid_input instead of limit_exceeded ------------------
@pytest.mark.parametrize("case", ["create tags", "add tags", "batch", "attachment refs"])
def test_every_limit_is_reported_as_limit_exceeded(store: Store, case: str) -> None:
    conversation = _home(store)
    too_many_tags = [f"t{i}" for i in range(limits.MAX_TAGS_PER_CONVERSATION + 1)]
    calls: dict[str, Callable[[], Any]] = {
        "create tags": lambda: store.create_conversation("alice", "r", tags=too_many_tags),
        "add tags": lambda: store.tag_conversation("alice", conversation, add=too_many_tags),
        "batch": lambda: store.append_messages(
            "alice",
            conversation,
            [chatkeep.user_message("x")] * (limits.MAX_BATCH_MESSAGES + 1),
        ),
        "attachment refs": lambda: store.append_message(
            "alice",
            conversation,
            chatkeep.user_message(
                "a" * (limits.MAX_MESSAGE_BYTES - 100),
                attachments=(NewAttachment("a", b"1"),),
            ),
        ),
    }
    with pytest.raises(chatkeep.LimitExceeded):
        calls[case]()


# -- 10. config set silently rounds big integers ------------------------------------
def test_config_set_never_rounds_what_was_typed(isolated_environment: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["init", "--user", "alice"]).exit_code == 0
    typed = "99999999999999999999"
    stored = runner.invoke(cli, ["config", "set", "acct.id", typed])
    if stored.exit_code == 0:
        shown = runner.invoke(cli, ["config", "get", "acct.id"])
        assert shown.output.strip() == typed


# -- 11. a store call can read any file on the host, the vault itself included ------
def test_an_attachment_path_cannot_copy_another_users_data(vault: chatkeep.Vault) -> None:
    store = vault.store
    _home(store)
    store.append_message("alice", store.route("alice", "r").id, chatkeep.user_message("canary"))
    store.add_user("bob")
    store.create_runtime("bob", "b")
    with sqlite3.connect(vault.paths.database) as raw:
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw.close()
    attach = (NewAttachment(name="db", path=str(vault.paths.database)),)
    try:
        stored = store.append_message(
            "bob", store.route("bob", "b").id, chatkeep.user_message("x", attachments=attach)
        )
    except chatkeep.InvalidInput:
        return
    assert b"canary" not in store.read_attachment("bob", stored.attachments[0].id)


# -- 12. a fork's default title can break the title limit ---------------------------
def test_a_forks_default_title_respects_the_title_limit(store: Store) -> None:
    _home(store)
    source = store.create_conversation("alice", "r", title="t" * limits.MAX_TITLE_LENGTH)
    message = store.append_message("alice", source.id, chatkeep.user_message("x"))
    fork = store.fork_conversation("alice", source.id, message.id)
    assert len(fork.title) <= limits.MAX_TITLE_LENGTH
