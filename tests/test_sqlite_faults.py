"""Faults specific to the embedded SQLite vault: a full disk, a failing fsync, damage.

These reach into the backend on purpose (to fill the database or damage a row); the
behaviour they check is the contract: a failed write changes nothing and says why.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text

import chatkeep
from chatkeep import fsutil
from chatkeep.backends import sqlite as sqlite_backend
from chatkeep.errors import StorageError, StorageFull
from chatkeep.model import NewAttachment

from .test_store_contract import snapshot


@pytest.fixture
def vault(tmp_path: Path) -> Iterator[chatkeep.Vault]:
    """These faults are SQLite's own (PRAGMAs, page damage): the embedded vault only."""
    with chatkeep.open(home=tmp_path / "vault-home", create=True) as opened:
        yield opened


def _engine(vault: chatkeep.Vault) -> Any:
    return vault.store._engine  # type: ignore[attr-defined]


@pytest.fixture
def home(vault: chatkeep.Vault) -> str:
    vault.store.add_user("alice")
    vault.store.create_runtime("alice", "r")
    return vault.store.route("alice", "r").id


def test_a_full_database_refuses_the_write_and_keeps_everything_else(
    vault: chatkeep.Vault, home: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = vault.store
    engine = _engine(vault)

    def cap_pages(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA max_page_count = 60")

    def reconnect() -> None:  # both the pool and the append path's own connections
        engine.dispose()
        store._raw_write.close()  # type: ignore[attr-defined]

    real_on_connect = sqlite_backend._on_connect

    def capped_on_connect(dbapi_connection: Any, record: Any) -> None:
        real_on_connect(dbapi_connection, record)
        cap_pages(dbapi_connection, record)

    monkeypatch.setattr(sqlite_backend, "_on_connect", capped_on_connect)
    event.listen(engine, "connect", cap_pages)
    reconnect()
    acknowledged = []
    with pytest.raises(StorageFull):
        for i in range(10_000):
            acknowledged.append(
                store.append_message("alice", home, chatkeep.user_message(f"{i} " + "x" * 2000))
            )
    before = snapshot(store, "alice")
    with pytest.raises(StorageFull):
        store.append_message("alice", home, chatkeep.user_message("y" * 5000))
    assert snapshot(store, "alice") == before
    assert [m.id for m in store.list_messages("alice", home)] == [m.id for m in acknowledged]
    event.remove(engine, "connect", cap_pages)
    monkeypatch.undo()
    reconnect()
    store.append_message("alice", home, chatkeep.user_message("space again"))
    assert [p for p in vault.doctor() if p.severity == "error"] == []


def test_a_failing_fsync_fails_the_attachment_and_stores_nothing(
    vault: chatkeep.Vault, home: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = vault.store
    before = snapshot(store, "alice")

    def no_space(_fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fsutil.os, "fsync", no_space)
    attachment = NewAttachment(name="big.bin", data=b"x" * 100_000)
    with pytest.raises(StorageFull):
        store.append_message("alice", home, chatkeep.user_message("x", attachments=(attachment,)))
    monkeypatch.undo()
    assert snapshot(store, "alice") == before
    assert list(vault.paths.blobs.rglob("*.*")) == []  # no temp file left behind
    assert vault.doctor() == []


def test_an_io_error_is_a_storage_error_not_a_traceback(
    vault: chatkeep.Vault, home: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(_fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(fsutil.os, "fsync", broken)
    with pytest.raises(StorageError) as raised:
        vault.store.append_message(
            "alice",
            home,
            chatkeep.user_message("x", attachments=(NewAttachment(name="a", data=b"a"),)),
        )
    assert raised.value.code == "storage_error"


def test_route_recreates_a_missing_home_conversation(vault: chatkeep.Vault, home: str) -> None:
    with _engine(vault).begin() as conn:
        conn.execute(text("DELETE FROM conversations WHERE id = :id"), {"id": home})
    assert any(p.check == "runtimes" for p in vault.doctor())
    rebuilt = vault.store.route("alice", "r")
    assert rebuilt.id != home and rebuilt.is_primary and rebuilt.title == "chat_with_r"
    assert vault.store.get_runtime("alice", "r").primary_conversation_id == rebuilt.id
    assert vault.doctor() == []


def test_doctor_finds_damage(vault: chatkeep.Vault, home: str) -> None:
    store = vault.store
    first = store.append_message("alice", home, chatkeep.user_message("one", tokens=5))
    second = store.append_message(
        "alice",
        home,
        chatkeep.user_message("two", attachments=(NewAttachment(name="a", data=b"blob"),)),
    )
    assert vault.doctor() == []
    with _engine(vault).begin() as conn:
        conn.execute(text("UPDATE messages SET content = '[]' WHERE id = :id"), {"id": first.id})
        conn.execute(
            text("UPDATE conversations SET total_tokens = 99 WHERE id = :id"), {"id": home}
        )
    blob = vault.paths.blobs / second.attachments[0].sha256[:2] / second.attachments[0].sha256
    blob.chmod(0o600)
    blob.write_bytes(b"tampered")
    (vault.paths.blobs / "ab").mkdir(exist_ok=True)
    (vault.paths.blobs / "ab" / ("ab" + "0" * 62)).write_bytes(b"orphan")
    found = {(p.check, p.severity) for p in vault.doctor()}
    assert found == {
        ("content", "error"),
        ("counters", "error"),
        ("blobs", "error"),
        ("blobs", "warning"),
    }


def test_the_connection_is_durable_by_configuration(vault: chatkeep.Vault) -> None:
    with _engine(vault).connect() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000


def test_repair_clears_what_a_killed_writer_left_and_keeps_fresh_writes(
    vault: chatkeep.Vault, home: str
) -> None:
    import os
    import time

    store = vault.store
    kept = store.append_message(
        "alice", home, chatkeep.user_message("x", attachments=(NewAttachment(name="a", data=b"a"),))
    )
    orphan_dir = vault.paths.blobs / "cd"
    orphan_dir.mkdir()
    (orphan_dir / ("cd" + "1" * 62)).write_bytes(b"unused")
    stale = vault.paths.blobs / ".tmp-0123-dead-writer"
    stale.write_bytes(b"half")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    fresh = vault.paths.blobs / ".tmp-4567-live-writer"
    fresh.write_bytes(b"in progress")
    assert {p.severity for p in vault.doctor()} == {"warning"}
    report = vault.repair()
    assert (report.temp_files, report.blobs) == (1, 1)
    assert not stale.exists() and fresh.exists()
    assert store.read_attachment("alice", kept.attachments[0].id) == b"a"
    fresh.unlink()
    assert vault.doctor() == []


def test_an_attachment_swept_mid_append_is_stored_again(
    vault: chatkeep.Vault, home: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A blob removed between its write and the row's transaction is written again."""
    store = vault.store
    real_put = store._blobs.put  # type: ignore[attr-defined]

    swept = []

    def put_then_sweep(source: Any) -> Any:
        result = real_put(source)
        if not swept:  # once: what a concurrent repair or delete would do
            swept.append(store.sweep_unused_blobs())
        return result

    monkeypatch.setattr(store._blobs, "put", put_then_sweep)  # type: ignore[attr-defined]
    stored = store.append_message(
        "alice", home, chatkeep.user_message("x", attachments=(NewAttachment(name="a", data=b"z"),))
    )
    monkeypatch.undo()
    assert swept == [1]
    assert store.read_attachment("alice", stored.attachments[0].id) == b"z"
    assert vault.doctor() == []
