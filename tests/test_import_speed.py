"""The import's fast paths give exactly what the plain paths give, and its attachment
files are durable before anything refers to them."""

from __future__ import annotations

import copy
import io
import os
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import chatkeep
from chatkeep import fsutil
from chatkeep.backends.sql_import import _TimeText
from chatkeep.errors import StorageError
from chatkeep.ids import new_id
from chatkeep.importers import graph
from chatkeep.importers.model import ParsedExport, SourceConversation, SourceMessage
from chatkeep.importers.source import ExportSource
from chatkeep.model import Part
from chatkeep.store import ImportFile
from chatkeep.timeutil import to_text

_MOMENTS = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
)


@settings(max_examples=500, deadline=None)
@given(st.lists(_MOMENTS, min_size=1, max_size=20))
def test_time_text_is_to_text_for_utc_moments(moments: list[datetime]) -> None:
    time_text = _TimeText()  # one per import: its day cache is shared across moments
    for moment in moments:
        assert time_text(moment) == to_text(moment)


@given(
    st.datetimes(
        min_value=datetime(2, 1, 1),
        max_value=datetime(9998, 1, 1),
        timezones=st.sampled_from([timezone(timedelta(hours=5)), timezone(timedelta(0), "zero")]),
    )
)
def test_time_text_is_to_text_for_other_zones(moment: datetime) -> None:
    assert _TimeText()(moment) == to_text(moment)


def _messages(draw: st.DrawFn) -> list[SourceMessage]:
    count = draw(st.integers(1, 12))
    ids = [f"m{i}" for i in range(count)]
    times = st.none() | st.integers(0, 5).map(lambda m: datetime(2025, 1, 1, 0, m, tzinfo=UTC))
    return [
        SourceMessage(
            source_id=i,
            parent_source_id=draw(st.none() | st.sampled_from(ids)),
            role="user",
            parts=[Part("text", i)],
            created_at=draw(times),
        )
        for i in ids
    ]


@settings(max_examples=400, deadline=None)
@given(st.composite(_messages)())
def test_quick_order_is_the_heap_order(messages: list[SourceMessage]) -> None:
    def prepared(quick: bool) -> tuple[list[str], str | None, list[str]]:
        conversation = SourceConversation("c", "t", copy.deepcopy(messages))
        with pytest.MonkeyPatch.context() as patch:
            if not quick:
                patch.setattr(graph, "_order_by_keys", lambda *_: None)
            done = graph.prepare(conversation)
        order = [f"{m.source_id}<{m.parent_source_id}" for m in done.messages]
        return order, done.active_leaf_source_id, done.warnings

    assert prepared(quick=True) == prepared(quick=False)


def test_quick_order_steps_aside_for_times_that_do_not_compare() -> None:
    naive = SourceMessage("a", None, "user", [Part("text", "a")], datetime(2025, 1, 1))
    child = SourceMessage("b", "a", "user", [Part("text", "b")], datetime(2025, 1, 2, tzinfo=UTC))
    assert graph._order_by_keys({"a": naive, "b": child}, {"a": 0, "b": 1}) is None
    done = graph.prepare(SourceConversation("c", "t", [naive, child]))
    assert [m.source_id for m in done.messages] == ["a", "b"]


def test_background_files_are_fsynced_before_they_get_their_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: dict[int, str] = {}
    synced: set[str] = set()
    renamed_unsynced: list[str] = []
    lock = threading.Lock()
    real_open, real_fsync, real_replace = os.open, os.fsync, os.replace

    def spy_open(path: str | os.PathLike[str], flags: int, mode: int = 0o777) -> int:
        fd = real_open(path, flags, mode)
        with lock:
            opened[fd] = os.fspath(path)
        return fd

    def spy_fsync(fd: int) -> None:
        real_fsync(fd)
        with lock:
            synced.add(opened.get(fd, ""))

    def spy_replace(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
        with lock:
            if os.fspath(source) not in synced:
                renamed_unsynced.append(os.fspath(target))
        real_replace(source, target)

    monkeypatch.setattr(os, "open", spy_open)
    monkeypatch.setattr(os, "fsync", spy_fsync)
    monkeypatch.setattr(os, "replace", spy_replace)
    writer = fsutil.BackgroundContentWriter(tmp_path / "blobs", max_bytes=1024, max_pending=4096)
    stored = [writer.put(f"file {n}".encode()) for n in range(100)]
    writer.put(b"file 7")  # the same bytes again: stored once
    writer.close()
    assert renamed_unsynced == []
    for sha, _, path in stored:
        assert path.read_bytes() == f"file {stored.index((sha, _, path))}".encode()
    fsutil.sync_files(path for _, _, path in stored)
    assert {os.fspath(path) for _, _, path in stored} <= synced
    assert {os.fspath(path.parent) for _, _, path in stored} <= synced


def test_sync_files_raises_the_error_of_a_failed_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = []
    for n in range(40):
        path = tmp_path / f"f{n}"
        path.write_bytes(b"x")
        paths.append(path)
    real_fsync = os.fsync
    bad = os.stat(paths[13]).st_ino

    def failing_fsync(fd: int) -> None:
        if os.fstat(fd).st_ino == bad:
            raise OSError(5, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(StorageError, match="could not write attachments"):
        fsutil.sync_files(paths)


def test_a_sniffed_member_is_read_once_and_the_same(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "small.bin").write_bytes(b"0123456789" * 10)
    with ExportSource.open(folder) as source:
        assert source.head("small.bin", 4, keep=True) == b"0123"
        (folder / "small.bin").unlink()  # served from what head() kept
        with source.open_member("small.bin") as handle:
            assert handle.read() == b"0123456789" * 10
        with pytest.raises(FileNotFoundError):  # kept once, for the one open
            source.open_member("small.bin")


def test_one_export_naming_a_conversation_twice_merges_it_in_a_new_runtime(
    vault: chatkeep.Vault, tmp_path: Path
) -> None:
    vault.store.add_user("alice")
    moment = datetime(2025, 1, 1, tzinfo=UTC)

    def conversation(*ids: str) -> SourceConversation:
        messages = [
            SourceMessage(i, None if n == 0 else ids[n - 1], "user", [Part("text", i)], moment)
            for n, i in enumerate(ids)
        ]
        return SourceConversation("conv-1", "title", messages)

    export = ParsedExport(
        platform="chatgpt",
        conversations=iter([conversation("a", "b"), conversation("a", "b", "c")]),
        account="acct",
    )
    folder = tmp_path / "export"
    folder.mkdir()
    with ExportSource.open(folder) as source:
        file = ImportFile(new_id("import"), "export", 1, "0" * 64, None)
        record = vault.store.write_import("alice", export, source, file)
    assert record.counts["conversations_added"] == 1
    assert record.counts["conversations_updated"] == 1
    assert record.counts["messages_added"] == 3


def test_a_streamed_attachment_is_fsynced_before_its_name_even_when_not_durable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``durable=False`` only defers the directory's fsync: a final name that exists is
    taken as stored, so it must never point at bytes a power loss could cut."""
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc to name an fsynced descriptor's file")
    synced: set[str] = set()
    renamed: list[tuple[str, bool]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def spy_fsync(fd: int) -> None:
        synced.add(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    def spy_replace(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
        renamed.append((os.fspath(target), os.fspath(source) in synced))
        real_replace(source, target)

    monkeypatch.setattr(os, "fsync", spy_fsync)
    monkeypatch.setattr(os, "replace", spy_replace)
    big = io.BytesIO(b"x" * (5 * 1024 * 1024))
    fsutil.write_content_addressed(tmp_path / "blobs", big, max_bytes=1 << 30, durable=False)
    assert len(renamed) == 1 and renamed[0][1], renamed
