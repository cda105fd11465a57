"""``chatkeep migrate``: a vault copied between backends comes back byte for byte.

The round trip SQLite -> PostgreSQL -> SQLite is compared as a canonical dump (every
data row of every table, by primary key); search answers the same on each copy; a
copy that fails leaves the destination empty.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import chatkeep
from chatkeep import tokens, transfer
from chatkeep.cli import cli
from chatkeep.errors import Conflict
from chatkeep.importing import import_export
from chatkeep.model import NewAttachment
from chatkeep.search_embed import HashedEmbedder
from chatkeep.semantic import index_pending
from tests.conftest import FIXTURES, postgres_schema_url

QUERIES = ["lighthouse", '"blue whale"', "tea OR coffee", "plan -draft", "attach*"]


def _fill(vault: chatkeep.Vault) -> None:
    """A vault with a bit of everything the copy must keep."""
    store = vault.store
    for user in ("alice", "bob"):
        store.add_user(user, display_name=user.title())
        store.create_runtime(user, "synth-001", config={"model": "m-1", "instructions": "be kind"})
    home = store.route("alice", "synth-001").id
    first = store.append_message("alice", home, chatkeep.user_message("Where is the lighthouse?"))
    store.append_message("alice", home, chatkeep.assistant_message("By the blue whale rock."))
    store.append_message(
        "alice", home, chatkeep.assistant_message("Try tea or coffee first.", parent_id=first.id)
    )
    plans = store.create_conversation("alice", "synth-001", title="plan", tags=["work", "x"])
    store.append_message(
        "alice",
        plans.id,
        chatkeep.NewMessage(
            role="user",
            parts=(chatkeep.Part(kind="text", text="the plan, with an attachment"),),
            attachments=(NewAttachment(name="notes.txt", data=b"attached notes\x00\xff"),),
            tokens=12,
            cost=0.25,
            metadata={"source": "test", "nested": {"a": [1, 2.5, None]}},
        ),
    )
    store.pin_conversation("alice", plans.id)
    draft = store.create_conversation("alice", "synth-001", title="plan draft")
    store.append_message("alice", draft.id, chatkeep.user_message("a draft plan"))
    store.archive_conversation("alice", draft.id)
    gone = store.create_conversation("alice", "synth-001", title="gone")
    store.trash_conversation("alice", gone.id)
    store.fork_conversation("alice", home, first.id, title="forked")
    store.set_setting("alice", "ui.theme", "dark")
    store.save_snapshot("alice", "layout", {"open": [home]}, starred=True, runtime_id="synth-001")
    store.record_usage("alice", model="m-1", runtime_id="synth-001", tokens_in=3, cost=0.01)
    store.record_event("alice", home, "typing", {"chars": 4})
    store.put_draft("alice", plans.id, "an unsent thought")
    tokens.issue_token(store, "alice", name="copy me")
    store.append_message(
        "bob", store.route("bob", "synth-001").id, chatkeep.user_message("bob's lighthouse")
    )
    # Enough native messages that a copy's counts mean something without the shared
    # export samples (a clone with no ../shared beside it).
    log = store.create_conversation("alice", "synth-001", title="log").id
    store.append_messages("alice", log, [chatkeep.user_message(f"log line {n}") for n in range(4)])
    export = FIXTURES / "chatgpt" / "librechat" / "chatgpt-tree.json"
    if export.is_file():
        import_export(vault, "alice", export)
    index_pending(store, HashedEmbedder())


def _answers(store: chatkeep.Store) -> dict[str, set[tuple[str, str | None]]]:
    return {
        q: {(h.conversation_id, h.message_id) for h in store.search("alice", q, limit=100).hits}
        for q in QUERIES
    }


@pytest.fixture
def postgres_url() -> Iterator[str]:
    url, drop = postgres_schema_url()
    try:
        yield url
    finally:
        drop()


def test_round_trip_sqlite_postgres_sqlite_is_byte_identical(
    tmp_path: Path, postgres_url: str
) -> None:
    with chatkeep.open(home=tmp_path / "a", create=True, url="") as original:
        _fill(original)
        with chatkeep.open(home=tmp_path / "b", create=True, url=postgres_url) as middle:
            there = transfer.copy_vault(original, middle)
            with chatkeep.open(home=tmp_path / "c", create=True, url="") as back:
                again = transfer.copy_vault(middle, back)
                dumps = [transfer.dump_text(v.store) for v in (original, middle, back)]
                assert dumps[0] == dumps[1] == dumps[2]
                assert there.digests == again.digests
                assert there.rows["messages"] > 10 and there.blobs >= 1
                answers = [_answers(v.store) for v in (original, middle, back)]
                assert answers[0] == answers[1] == answers[2]
                assert all(answers[0][q] for q in ("lighthouse", '"blue whale"'))
                for vault in (original, middle, back):
                    assert vault.doctor() == []
                attachment = next(iter(back.store.dump_table("attachments")))
                data = back.store.read_attachment("alice", attachment["id"])
                assert data == b"attached notes\x00\xff"
                appended = back.store.append_message(
                    "alice",
                    back.store.route("alice", "synth-001").id,
                    chatkeep.user_message("after the move"),
                )
                assert appended.seq > 0
            middle.store.append_message(  # the identity moved past the copied keys
                "alice",
                middle.store.route("alice", "synth-001").id,
                chatkeep.user_message("after the move"),
            )


def test_round_trip_sqlite_postgres_files_sqlite_is_byte_identical(
    tmp_path: Path, postgres_url: str
) -> None:
    """Through every backend and back: the same canonical dump, the same search answers,
    and the file backend's copy survives losing its index."""
    with chatkeep.open(home=tmp_path / "a", create=True, url="") as original:
        _fill(original)
        with (
            chatkeep.open(home=tmp_path / "b", create=True, url=postgres_url) as middle,
            chatkeep.open(home=tmp_path / "c", create=True, url="", backend="files") as files,
            chatkeep.open(home=tmp_path / "d", create=True, url="") as back,
        ):
            reports = [
                transfer.copy_vault(original, middle),
                transfer.copy_vault(middle, files),
                transfer.copy_vault(files, back),
            ]
            vaults = (original, middle, files, back)
            dumps = [transfer.dump_text(v.store) for v in vaults]
            assert dumps[0] == dumps[1] == dumps[2] == dumps[3]
            assert reports[0].digests == reports[1].digests == reports[2].digests
            answers = [_answers(v.store) for v in vaults]
            assert answers[0] == answers[1] == answers[2] == answers[3]
            assert all(answers[0][q] for q in ("lighthouse", '"blue whale"'))
            for vault in vaults:
                assert vault.doctor() == []
            files_root = files.root
            expected = dumps[0]
    shutil.rmtree(files_root / "index")
    with chatkeep.open(home=tmp_path / "c", url="") as reopened:
        assert transfer.dump_text(reopened.store) == expected
        assert _answers(reopened.store) == answers[0]


def test_a_copy_into_a_vault_with_data_is_refused(tmp_path: Path) -> None:
    with (
        chatkeep.open(home=tmp_path / "a", create=True, url="") as source,
        chatkeep.open(home=tmp_path / "b", create=True, url="") as target,
    ):
        _fill(source)
        target.store.add_user("carol")
        before = transfer.dump_text(target.store)
        with pytest.raises(Conflict):
            transfer.copy_vault(source, target)
        assert transfer.dump_text(target.store) == before
        assert not list(target.paths.blobs.glob("??/*"))


@pytest.mark.parametrize("kind", ["sqlite", "files"])
def test_a_copy_that_fails_midway_leaves_the_destination_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    with (
        chatkeep.open(home=tmp_path / "a", create=True, url="") as source,
        chatkeep.open(home=tmp_path / "b", create=True, url="", backend=kind) as target,
    ):
        _fill(source)
        real = source.store.dump_table

        def failing(name: str) -> Iterator[dict[str, Any]]:
            for number, row in enumerate(real(name)):
                if name == "messages" and number == 5:
                    raise OSError("the source disk went away")
                yield row

        monkeypatch.setattr(source.store, "dump_table", failing)
        with pytest.raises(OSError, match="went away"):
            transfer.copy_vault(source, target)
        assert transfer.dump_text(target.store) == ""
        assert not list(target.paths.blobs.glob("??/*"))
        assert not list((target.root / "imports").glob("*/*"))
        assert not list(target.root.glob("users/*/*"))


def test_the_cli_migrates_and_reports(tmp_path: Path) -> None:
    with chatkeep.open(home=tmp_path / "a", create=True, url="") as source:
        _fill(source)
        expected = transfer.dump_text(source.store)
    runner = CliRunner()
    result = runner.invoke(
        cli, ["migrate", "--from", str(tmp_path / "a"), "--to", str(tmp_path / "c"), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["verified"] is True and report["rows"]["users"] == 2
    with chatkeep.open(home=tmp_path / "c", url="") as copied:
        assert transfer.dump_text(copied.store) == expected
    again = runner.invoke(
        cli, ["migrate", "--from", str(tmp_path / "a"), "--to", str(tmp_path / "c")]
    )
    assert again.exit_code == Conflict.exit_code
    assert "already holds data" in again.output


def test_the_cli_migrates_into_files_and_back(tmp_path: Path) -> None:
    with chatkeep.open(home=tmp_path / "a", create=True, url="") as source:
        _fill(source)
        expected = transfer.dump_text(source.store)
    runner = CliRunner()
    there = runner.invoke(
        cli,
        [
            *("migrate", "--from", str(tmp_path / "a"), "--to", str(tmp_path / "f")),
            *("--to-backend", "files", "--json"),
        ],
    )
    assert there.exit_code == 0, there.output
    assert json.loads((tmp_path / "f" / "default" / "vault.json").read_text())["backend"] == "files"
    back = runner.invoke(
        cli, ["migrate", "--from", str(tmp_path / "f"), "--to", str(tmp_path / "s"), "--json"]
    )
    assert back.exit_code == 0, back.output
    for home in ("f", "s"):
        with chatkeep.open(home=tmp_path / home, url="") as copied:
            assert transfer.dump_text(copied.store) == expected
