"""The file backend: its layout, its journal, and the index it rebuilds from the files.

The contract suite, the crash test and the concurrency tests already run over ``files``
(``BACKENDS`` in conftest). These tests cover what only this backend has: files a person
can read, a torn last line set aside, a write that fails or is killed between the files
and the index leaving both as they were, and an index rebuilt when missing or stale.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import chatkeep
from chatkeep import fsutil, transfer
from chatkeep.backends import files_layout as fl
from chatkeep.errors import StorageFull
from chatkeep.importing import import_export
from tests.conftest import FIXTURES

CHATGPT_TREE = FIXTURES / "chatgpt" / "librechat" / "chatgpt-tree.json"


def _open(home: Path) -> chatkeep.Vault:
    return chatkeep.open(home=home, create=True, backend="files")


def _fill(vault: chatkeep.Vault) -> str:
    store = vault.store
    store.add_user("alice", display_name="Alice")
    store.create_runtime("alice", "synth-001")
    home = store.route("alice", "synth-001").id
    first = store.append_message("alice", home, chatkeep.user_message("where is the lighthouse"))
    store.append_message("alice", home, chatkeep.assistant_message("by the blue whale rock"))
    store.append_message("alice", home, chatkeep.assistant_message("or not", parent_id=first.id))
    other = store.create_conversation("alice", "synth-001", title="plans", tags=["work"])
    store.append_message(
        "alice",
        other.id,
        chatkeep.NewMessage(
            role="user",
            parts=(chatkeep.Part(kind="text", text="notes \x00 \u2028 😀"),),
            attachments=(chatkeep.NewAttachment(name="n.txt", data=b"\x00\xffdata"),),
            cost=0.1 + 0.2,
            metadata={"f": 1e-300, "nested": [None, True, "x"]},
        ),
    )
    store.pin_conversation("alice", other.id)
    store.set_setting("alice", "ui.theme", "dark")
    store.put_draft("alice", other.id, "unsent")
    return home


def _tree(root: Path) -> dict[str, bytes]:
    """Every file of the record (not the derived index, the journal or temp files)."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted((root / "users").rglob("*"))
        if p.is_file() and not p.name.startswith(fsutil.TEMP_PREFIX)
    }


def test_the_files_follow_the_documented_layout(tmp_path: Path) -> None:
    with _open(tmp_path / "h") as vault:
        home = _fill(vault)
        if CHATGPT_TREE.is_file():
            import_export(vault, "alice", CHATGPT_TREE)
        root = vault.root
        user = root / "users" / fl.shard("alice") / "alice"
        profile = orjson.loads((user / "profile.json").read_bytes())
        assert profile["row"]["display_name"] == "Alice"
        runtime = user / "instances" / "synth-001"
        assert orjson.loads((runtime / "runtime.json").read_bytes())["row"]["id"] == "synth-001"
        session = runtime / "sessions" / home
        meta = orjson.loads((session / "session_meta.json").read_bytes())
        assert meta["row"]["id"] == home
        lines = (session / "messages.jsonl").read_bytes().splitlines(keepends=True)
        records = [fl.parse_line(line) for line in lines]
        assert all(records)
        assert [r["row"]["content"][0]["text"] for r in records if r and "table" not in r] == [
            "where is the lighthouse",
            "by the blue whale rock",
            "or not",
        ]
        # Appends change only the counters: the newer row is a tagged line in the log.
        counters = [r for r in records if r and r.get("table") == "conversations"]
        assert counters[-1]["txn"] > meta["txn"]
        assert counters[-1]["row"]["message_count"] == 3
        chatty = (runtime / "chatty" / "chat_with_synth-001.md").read_text()
        assert "where is the lighthouse" in chatty and "or not" in chatty
        assert "blue whale" not in chatty  # the active branch only
        listed = orjson.loads((user / "session_index.json").read_bytes())["conversations"]
        assert {c["title"] for c in listed} >= {"plans", "chat_with_synth-001"}
        assert (user / "tables" / "settings.jsonl").is_file()
        if CHATGPT_TREE.is_file():
            imported = [c for c in listed if c["origin"] == "imported"]
            assert imported and all(c["path"].startswith("imports/") for c in imported)
            # Imported data never goes under instances/.
            for path in (user / "instances").rglob("session_meta.json"):
                assert orjson.loads(path.read_bytes())["row"]["origin"] == "native"


def test_the_index_is_rebuilt_when_missing_with_the_same_answers(tmp_path: Path) -> None:
    with _open(tmp_path / "h") as vault:
        _fill(vault)
        before = transfer.dump_text(vault.store)
        hits = vault.store.search("alice", "lighthouse").hits
        root = vault.root
    shutil.rmtree(root / fl.INDEX_DIR)
    with _open(tmp_path / "h") as vault:
        assert transfer.dump_text(vault.store) == before
        assert vault.store.search("alice", "lighthouse").hits == hits
        assert vault.doctor() == []


def test_a_stale_index_is_rebuilt(tmp_path: Path) -> None:
    with _open(tmp_path / "h") as vault:
        home = _fill(vault)
        index = vault.root / fl.INDEX_DIR / fl.INDEX_FILE
        vault.store.compact()  # everything in the database file, nothing in its WAL
        old_index = index.read_bytes()
        vault.store.append_message("alice", home, chatkeep.user_message("written later"))
        vault.store.append_message("alice", home, chatkeep.user_message("and later still"))
        after = transfer.dump_text(vault.store)
    for leftover in index.parent.glob(index.name + "-*"):
        leftover.unlink()
    index.write_bytes(old_index)  # an index older than the files, e.g. from a sync
    with _open(tmp_path / "h") as vault:
        assert transfer.dump_text(vault.store) == after


def test_a_torn_last_line_is_set_aside_and_reported(tmp_path: Path) -> None:
    with _open(tmp_path / "h") as vault:
        home = _fill(vault)
        before = transfer.dump_text(vault.store)
        log = next(vault.root.rglob(f"{home}/messages.jsonl"))
    whole = log.read_bytes()
    torn = b'{"rec":{"op":"put","txn":99,"row":{"pk":99,"id":"m_half'
    log.write_bytes(whole + torn)
    with _open(tmp_path / "h") as vault:
        problems = vault.doctor()
        assert any("unfinished" in p.message for p in problems), problems
        vault.store.rebuild_search_index()  # doctor --rebuild: the index from the files
        assert log.read_bytes() == whole
        assert log.with_name("messages.jsonl.torn").read_bytes() == torn + b"\n"
        assert transfer.dump_text(vault.store) == before
        problems = vault.doctor()
        assert [p.severity for p in problems] == ["warning"]
        assert ".torn holds an unfinished line" in problems[0].message
        log.with_name("messages.jsonl.torn").unlink()
        assert vault.doctor() == []


def test_a_new_line_is_never_glued_to_a_torn_one(tmp_path: Path) -> None:
    with _open(tmp_path / "h") as vault:
        home = _fill(vault)
        log = next(vault.root.rglob(f"{home}/messages.jsonl"))
        log.write_bytes(log.read_bytes() + b'{"rec":{"op":"pu')
        vault.store.append_message("alice", home, chatkeep.user_message("after the tear"))
        assert log.with_name("messages.jsonl.torn").read_bytes() == b'{"rec":{"op":"pu\n'
        assert all(fl.parse_line(line) for line in log.read_bytes().splitlines(keepends=True))
        before = transfer.dump_text(vault.store)
        root = vault.root
    shutil.rmtree(root / fl.INDEX_DIR)
    with _open(tmp_path / "h") as vault:
        assert transfer.dump_text(vault.store) == before


def test_a_damaged_line_is_reported_by_doctor(tmp_path: Path) -> None:
    with _open(tmp_path / "h") as vault:
        home = _fill(vault)
        log = next(vault.root.rglob(f"{home}/messages.jsonl"))
        lines = log.read_bytes().splitlines(keepends=True)
        (first,) = [n for n, line in enumerate(lines) if b"lighthouse" in line]
        lines[first] = lines[first].replace(b"lighthouse", b"lighthousE")
        log.write_bytes(b"".join(lines))
        problems = vault.doctor()
        assert any("checksum" in p.message and p.severity == "error" for p in problems)


def test_a_write_that_fails_midway_changes_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _open(tmp_path / "h") as vault:
        home = _fill(vault)
        files_before = _tree(vault.root)
        dump_before = transfer.dump_text(vault.store)
        real_move = fsutil.move

        failed: list[Path] = []

        def disk_full_on_rename(source: Path, target: Path, *, sync: bool = True) -> bool:
            if target.name == "session_index.json" and not failed:
                failed.append(target)
                raise StorageFull("disk full while writing session_index.json")
            return real_move(source, target, sync=sync)

        monkeypatch.setattr(fsutil, "move", disk_full_on_rename)
        first = vault.store.list_messages("alice", home)[0]
        with pytest.raises(StorageFull):  # a new log, a new session_meta.json, then this
            vault.store.fork_conversation("alice", home, first.id, title="never stored")
        monkeypatch.undo()
        assert failed
        assert _tree(vault.root) == files_before  # the new log and meta undone
        assert transfer.dump_text(vault.store) == dump_before
        vault.store.append_message("alice", home, chatkeep.user_message("stored after"))
        assert vault.doctor() == []


def test_a_disk_full_append_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _open(tmp_path / "h") as vault:
        home = _fill(vault)
        files_before = _tree(vault.root)
        real_append = fsutil.append_durable

        def half_then_full(path: Path, data: bytes) -> None:
            real_append(path, data[: len(data) // 2])
            raise StorageFull(f"disk full while writing {path.name}") from OSError(
                errno.ENOSPC, "No space left on device"
            )

        monkeypatch.setattr(fsutil, "append_durable", half_then_full)
        with pytest.raises(StorageFull):
            vault.store.append_message("alice", home, chatkeep.user_message("half written"))
        monkeypatch.undo()
        assert _tree(vault.root) == files_before


_KILLER = textwrap.dedent(
    """
    import os, sys
    import chatkeep
    from chatkeep import fsutil
    home, conversation, step = sys.argv[1], sys.argv[2], sys.argv[3]
    real = {"append": fsutil.append_durable, "move": fsutil.move}
    def die_after(name):
        def wrapped(*args, **kwargs):
            result = real[name](*args, **kwargs)
            os._exit(9)
        return wrapped
    vault = chatkeep.open(home=home)
    if step == "commit":
        from chatkeep.backends import files
        original = files.FileWriter.before_commit
        def before_commit(self, conn):
            original(self, conn)
            os._exit(9)
        files.FileWriter.before_commit = before_commit
    else:
        setattr(fsutil, {"append": "append_durable", "move": "move"}[step], die_after(step))
    # A fork appends to a new log, then renames in session_meta.json and the index.
    first = vault.store.list_messages("alice", conversation)[0]
    vault.store.fork_conversation("alice", conversation, first.id, title="killed")
    """
)


@pytest.mark.parametrize("step", ["append", "move", "commit"])
def test_a_process_killed_between_files_and_index_leaves_neither(tmp_path: Path, step: str) -> None:
    """Killed after a log line is appended, after a rename, or with every file written
    but the index not committed: the next open undoes the files."""
    with _open(tmp_path / "h") as vault:
        home = _fill(vault)
        files_before = _tree(vault.root)
        dump_before = transfer.dump_text(vault.store)
    done = subprocess.run(
        [sys.executable, "-c", _KILLER, str(tmp_path / "h"), home, step],
        capture_output=True,
        timeout=120,
        env={**os.environ, "CHATKEEP_HOME": str(tmp_path / "h")},
    )
    assert done.returncode == 9, done.stderr.decode()
    with _open(tmp_path / "h") as vault:
        assert _tree(vault.root) == files_before
        assert transfer.dump_text(vault.store) == dump_before
        assert vault.doctor() == []
        vault.store.append_message("alice", home, chatkeep.user_message("after the crash"))
        assert vault.doctor() == []


def test_deleting_a_conversation_rewrites_the_logs_without_it(tmp_path: Path) -> None:
    with _open(tmp_path / "h") as vault:
        _fill(vault)
        store = vault.store
        doomed = store.create_conversation("alice", "synth-001", title="doomed")
        store.append_message("alice", doomed.id, chatkeep.user_message("zanzibarquokka"))
        store.put_draft("alice", doomed.id, "zanzibarquokka draft")
        store.trash_conversation("alice", doomed.id)
        store.delete_conversation("alice", doomed.id)
        store.compact()
        found = [
            p for p in vault.root.rglob("*") if p.is_file() and b"zanzibarquokka" in p.read_bytes()
        ]
        assert found == []
        assert vault.doctor() == []


_text = st.text(st.characters(codec="utf-8"), max_size=200)


@settings(max_examples=30)  # each example makes a vault and rebuilds its index
@given(
    texts=st.lists(_text, min_size=1, max_size=5),
    cost=st.floats(min_value=-1e9, max_value=1e9, allow_nan=False),
    data=st.binary(max_size=64),
)
def test_what_goes_into_the_files_comes_back_exactly(
    tmp_path_factory: pytest.TempPathFactory, texts: list[str], cost: float, data: bytes
) -> None:
    home = tmp_path_factory.mktemp("files")
    with _open(home) as vault:
        store = vault.store
        store.add_user("alice")
        store.create_runtime("alice", "synth-001")
        conversation = store.route("alice", "synth-001").id
        for text in texts:
            store.append_message(
                "alice",
                conversation,
                chatkeep.NewMessage(
                    role="user",
                    parts=(chatkeep.Part(kind="text", text=text),),
                    attachments=(chatkeep.NewAttachment(name="d.bin", data=data),) if data else (),
                    cost=abs(cost),
                    metadata={"text": text, "cost": cost},
                ),
            )
        before = transfer.dump_text(vault.store)
        root = vault.root
    shutil.rmtree(root / fl.INDEX_DIR)
    with _open(home) as vault:
        assert transfer.dump_text(vault.store) == before


def test_log_lines_detect_any_changed_byte() -> None:
    line = fl.put_line("settings", 1, {"user_id": "a", "key": "k", "value": "1", "updated_at": "t"})
    assert fl.parse_line(line) is not None
    for index in range(len(line) - 1):
        damaged = line[:index] + bytes([line[index] ^ 0x01]) + line[index + 1 :]
        assert fl.parse_line(damaged) is None or damaged == line, index
    assert fl.parse_line(line[:-1]) is None  # no newline: torn


def test_shards_are_stable_and_spread() -> None:
    assert fl.shard("alice") == fl.shard("alice")
    shards = {fl.shard(f"user-{n}") for n in range(2000)}
    assert len(shards) > 200
    digest = hashlib.sha256(b"alice").digest()
    assert fl.shard("alice") == f"shard_{int.from_bytes(digest[:2], 'big') % fl.SHARDS:04d}"


def test_threads_of_one_process_share_a_files_vault(tmp_path: Path) -> None:
    """A server's threads write through one store: every append kept, in each thread's
    order, and no journal leftovers once they are done."""
    import threading

    with _open(tmp_path / "h") as vault:
        store = vault.store
        store.add_user("alice")
        store.create_runtime("alice", "synth-001")
        home = store.route("alice", "synth-001").id

        def write(name: str) -> None:
            for number in range(15):
                store.append_message("alice", home, chatkeep.user_message(f"{name} {number}"))

        threads = [threading.Thread(target=write, args=(f"t{n}",)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        texts = [m.text for m in store.list_messages("alice", home, all_branches=True)]
        for n in range(4):
            assert [t for t in texts if t.startswith(f"t{n} ")] == [f"t{n} {i}" for i in range(15)]
        assert vault.doctor() == []
        assert fsutil.stale_temp_files(vault.root) == []
        before = transfer.dump_text(store)
        root = vault.root
    shutil.rmtree(root / fl.INDEX_DIR)
    with _open(tmp_path / "h") as vault:
        assert transfer.dump_text(vault.store) == before


def test_a_torn_journal_line_was_never_acted_on(tmp_path: Path) -> None:
    """A crash while the journal's line is written: the files were not touched yet, so
    the last complete line rules, and the next write starts the journal afresh."""
    with _open(tmp_path / "h") as vault:
        home = _fill(vault)
        before = transfer.dump_text(vault.store)
        journal = vault.root / "files" / "journal.jsonl"
    journal.write_bytes(journal.read_bytes() + b'{"rec":{"txn":12345,"appe')
    with _open(tmp_path / "h") as vault:
        assert transfer.dump_text(vault.store) == before
        vault.store.append_message("alice", home, chatkeep.user_message("next"))
        assert all(fl.parse_line(line) for line in journal.read_bytes().splitlines(True))
        assert vault.doctor() == []


def test_doctor_finds_an_index_that_differs_from_the_files(tmp_path: Path) -> None:
    import sqlite3

    with _open(tmp_path / "h") as vault:
        _fill(vault)
        assert vault.doctor() == []
        index = sqlite3.connect(vault.root / fl.INDEX_DIR / fl.INDEX_FILE)
        with index:
            index.execute("UPDATE settings SET value = '\"light\"'")  # behind the files' back
        index.close()
        problems = vault.doctor()
        assert any(p.subject == "settings" for p in problems), problems
        vault.store.rebuild_search_index()  # doctor --rebuild: the index from the files
        assert vault.doctor() == []
        assert vault.store.get_setting("alice", "ui.theme") == "dark"
