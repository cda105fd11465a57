"""``chatkeep backup`` and ``restore``: exact, verified, and consistent while a writer
keeps appending in another process."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

import chatkeep
from chatkeep import transfer
from chatkeep.backup import backup_vault, restore_vault, verify_backup
from chatkeep.cli import cli
from chatkeep.errors import InvalidInput
from tests.conftest import postgres_schema_url
from tests.test_crash import USER, Child, _new_conversation, _parse_acks
from tests.test_transfer import _fill


@pytest.fixture
def postgres_url() -> Iterator[str]:
    url, drop = postgres_schema_url()
    try:
        yield url
    finally:
        drop()


@pytest.mark.parametrize(
    ("source", "target"), [("sqlite", "sqlite"), ("files", "files"), ("sqlite", "files")]
)
def test_backup_and_restore_reproduce_the_vault_exactly(
    tmp_path: Path, source: str, target: str
) -> None:
    with chatkeep.open(home=tmp_path / "a", create=True, url="", backend=source) as original:
        _fill(original)
        report = backup_vault(original, tmp_path / "backup")
        expected = transfer.dump_text(original.store)
    assert report.rows["messages"] > 10 and report.blobs >= 1
    manifest = verify_backup(tmp_path / "backup")
    assert manifest["rows"] == report.rows
    restored = restore_vault(tmp_path / "backup", tmp_path / "b", url="", backend=target)
    assert restored.problems == []
    with chatkeep.open(home=tmp_path / "b", url="") as copy:
        assert transfer.dump_text(copy.store) == expected
        attachment = next(iter(copy.store.dump_table("attachments")))
        assert copy.store.read_attachment("alice", attachment["id"]) == b"attached notes\x00\xff"
        assert copy.doctor() == []


def test_a_backup_crosses_backends(tmp_path: Path, postgres_url: str) -> None:
    with chatkeep.open(home=tmp_path / "pg", create=True, url=postgres_url) as original:
        _fill(original)
        backup_vault(original, tmp_path / "backup")
        expected = transfer.dump_text(original.store)
    restore_vault(tmp_path / "backup", tmp_path / "sqlite", url="")
    with chatkeep.open(home=tmp_path / "sqlite", url="") as copy:
        assert transfer.dump_text(copy.store) == expected


@pytest.mark.parametrize("kind", ["sqlite", "files"])
def test_a_backup_while_another_process_appends(
    tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every message acknowledged before the backup began is in the restored vault,
    which passes doctor; the writer goes on appending throughout."""
    monkeypatch.setenv("CHATKEEP_BACKEND", kind)  # the live vault, and the restored one
    home = tmp_path / "live"
    conversation = _new_conversation(home, create=True)
    child = Child(home, conversation, seed=4242, stderr_path=tmp_path / "writer.stderr")
    try:
        assert child.ready.wait(60), child.stderr()
        deadline = time.monotonic() + 60
        while len(child.lines) < 40 and time.monotonic() < deadline:
            time.sleep(0.05)
        acknowledged = _parse_acks(list(child.lines), 4242)
        assert len(acknowledged) >= 40, child.stderr()
        with chatkeep.open(home=home) as vault:
            backup_vault(vault, tmp_path / "backup")
        time.sleep(0.2)
        assert child.process.poll() is None, "the writer stopped during the backup"
    finally:
        child.kill()
    report = restore_vault(tmp_path / "backup", tmp_path / "restored", url="")
    assert report.problems == []
    with chatkeep.open(home=tmp_path / "restored", url="") as restored:
        stored = {m.id: m for m in restored.store.list_messages(USER, conversation)}
    for ack in acknowledged:
        message = stored[ack.message_id]
        assert hashlib.sha256(message.text.encode()).hexdigest() == ack.text_sha256
    assert len(stored) >= len(acknowledged)


def test_a_damaged_backup_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    with chatkeep.open(home=tmp_path / "a", create=True, url="") as original:
        _fill(original)
        backup_vault(original, tmp_path / "backup")
    table = tmp_path / "backup" / "tables" / "messages.jsonl"
    table.write_bytes(table.read_bytes().replace(b"lighthouse", b"lightHOUSE", 1))
    with pytest.raises(InvalidInput, match="damaged"):
        restore_vault(tmp_path / "backup", tmp_path / "b", url="")
    assert not (tmp_path / "b").exists()
    (tmp_path / "backup" / "extra.txt").write_text("not from the backup")
    with pytest.raises(InvalidInput):
        verify_backup(tmp_path / "backup")


def test_restore_refuses_a_vault_with_data_and_backup_a_taken_folder(tmp_path: Path) -> None:
    with chatkeep.open(home=tmp_path / "a", create=True, url="") as original:
        _fill(original)
        backup_vault(original, tmp_path / "backup")
        with pytest.raises(InvalidInput, match="already exists"):
            backup_vault(original, tmp_path / "backup")
    with pytest.raises(InvalidInput, match="already holds data"):
        restore_vault(tmp_path / "backup", tmp_path / "a", url="")
    assert not list(tmp_path.glob(".tmp-*")), "a staging folder was left behind"


def test_the_cli_backs_up_and_restores(tmp_path: Path) -> None:
    with chatkeep.open(home=tmp_path / "a", create=True, url="") as original:
        _fill(original)
        expected = transfer.dump_text(original.store)
    runner = CliRunner()
    done = runner.invoke(
        cli, ["--home", str(tmp_path / "a"), "backup", str(tmp_path / "bk"), "--json"]
    )
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["rows"]["users"] == 2
    back = runner.invoke(
        cli, ["--home", str(tmp_path / "b"), "restore", str(tmp_path / "bk"), "--json"]
    )
    assert back.exit_code == 0, back.output
    assert json.loads(back.stdout)["problems"] == []
    with chatkeep.open(home=tmp_path / "b", url="") as copy:
        assert transfer.dump_text(copy.store) == expected
