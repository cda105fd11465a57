"""``merge_tables``: an export of a vault merged into another adds only what is new,
keeps sequence numbers gapless when both sides went on, and never duplicates."""

from __future__ import annotations

from pathlib import Path

import chatkeep
from chatkeep import transfer
from chatkeep.blobs import BlobStore
from tests.test_transfer import _fill


def _rows(store: chatkeep.Store) -> list[tuple[str, list[dict[str, object]]]]:
    return [(name, list(store.dump_table(name))) for name in transfer.TABLES]


def _copy_blobs(source: chatkeep.Vault, target: chatkeep.Vault) -> None:
    """What an export carries beside its rows (merge_tables moves rows only)."""
    to = BlobStore(target.paths.blobs)
    for sha in BlobStore(source.paths.blobs).all_digests():
        to.put(BlobStore(source.paths.blobs).read(sha))


def _comparable(store: chatkeep.Store) -> str:
    """The canonical dump without what a merge assigns anew (message keys, vectors)."""
    lines = []
    for line in transfer.dump_text(store).splitlines():
        if line.startswith("message_vectors\t"):
            continue
        lines.append(line.split('"pk":')[0] + line.split(",", 1)[1] if '"pk":' in line else line)
    return "\n".join(lines)


def test_merge_into_empty_reproduces_and_repeats_add_nothing(
    vault: chatkeep.Vault, tmp_path: Path
) -> None:
    with chatkeep.open(home=tmp_path / "source", create=True, url="") as source:
        _fill(source)
        rows = _rows(source.store)
        _copy_blobs(source, vault)
        added = vault.store.merge_tables(rows)
        assert added["messages"] > 10
        assert _comparable(vault.store) == _comparable(source.store)
        again = vault.store.merge_tables(_rows(source.store))
        assert set(again.values()) == {0}
    assert vault.doctor() == []


def test_merge_after_both_sides_went_on(vault: chatkeep.Vault, tmp_path: Path) -> None:
    with chatkeep.open(home=tmp_path / "source", create=True, url="") as source:
        _fill(source)
        _copy_blobs(source, vault)
        vault.store.merge_tables(_rows(source.store))
        home = source.store.route("alice", "synth-001").id
        there = source.store.append_message("alice", home, chatkeep.user_message("later, there"))
        new = source.store.create_conversation("alice", "synth-001", title="new there")
        source.store.append_message("alice", new.id, chatkeep.user_message("brand new"))
        here = vault.store.append_message("alice", home, chatkeep.user_message("later, here"))
        added = vault.store.merge_tables(_rows(source.store))
    assert added["messages"] == 2 and added["conversations"] == 1
    messages = vault.store.list_messages("alice", home, all_branches=True)
    ids = [m.id for m in messages]
    assert there.id in ids and here.id in ids and len(ids) == len(set(ids))
    assert [m.seq for m in messages] == list(range(len(messages)))
    assert vault.store.get_conversation("alice", home).message_count == len(messages)
    assert vault.doctor() == []
