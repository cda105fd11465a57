"""Hostile archives: ExportSource.open refuses them with a chatkeep error, quickly,
without writing anything; and the archive shapes real exports use are read as expected.

Every input is generated in ``tmp_path``; no bomb is committed.
"""

from __future__ import annotations

import binascii
import contextlib
import errno
import gc
import io
import itertools
import os
import random
import stat
import struct
import threading
import time
import warnings
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import chatkeep.importers
import chatkeep.importers.source as source_module
from chatkeep import limits
from chatkeep.errors import (
    ArchiveLimitExceeded,
    ChatkeepError,
    ImportFormatError,
    UnsafeArchive,
)
from chatkeep.importers import vvault
from chatkeep.importers.source import ExportSource, check_member_name

REGULAR = 0o100644
SECONDS = 5.0  # every refusal must come this fast


# -- building archives --------------------------------------------------------------
def info(
    name: str, *, mode: int = REGULAR, compress: int = zipfile.ZIP_DEFLATED
) -> zipfile.ZipInfo:
    zinfo = zipfile.ZipInfo(name, date_time=(2025, 3, 14, 0, 0, 0))
    zinfo.external_attr = mode << 16
    zinfo.compress_type = compress
    return zinfo


def zip_bytes(members: list[tuple[str | zipfile.ZipInfo, bytes]]) -> bytes:
    """A zip of regular files (a ``str`` name gets regular-file mode bits)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about duplicate names
        for name, data in members:
            archive.writestr(info(name) if isinstance(name, str) else name, data)
    return buffer.getvalue()


def write_zip(path: Path, members: list[tuple[str | zipfile.ZipInfo, bytes]]) -> Path:
    path.write_bytes(zip_bytes(members))
    return path


def _central_entries(data: bytes) -> Iterator[int]:
    """Offsets of the central directory entries of a zip without an archive comment."""
    end = data.rindex(b"PK\x05\x06")
    count, _size, offset = struct.unpack_from("<HII", data, end + 10)
    for _ in range(count):
        assert data[offset : offset + 4] == b"PK\x01\x02"
        yield offset
        names, extra, comment = struct.unpack_from("<HHH", data, offset + 28)
        offset += 46 + names + extra + comment


def patch_zip(
    data: bytes,
    index: int,
    *,
    raw_name: bytes | None = None,
    utf8_flag: bool | None = None,
    set_flags: int = 0,
    file_size: int | None = None,
    crc: int | None = None,
    local_name: bytes | None = None,
) -> bytes:
    """Edit member ``index`` of a zip in place, in its local header and central entry.

    A new name must be as long in bytes as the old one (so no offset moves).
    """
    out = bytearray(data)
    central = list(_central_entries(data))[index]
    local = struct.unpack_from("<I", out, central + 42)[0]
    assert out[local : local + 4] == b"PK\x03\x04"
    for header, flag_at, crc_at, size_at, name_len_at, name_at in (
        (local, 6, 14, 22, 26, 30),
        (central, 8, 16, 24, 28, 46),
    ):
        flags = struct.unpack_from("<H", out, header + flag_at)[0] | set_flags
        if utf8_flag is not None:
            flags = (flags | 0x800) if utf8_flag else (flags & ~0x800)
        struct.pack_into("<H", out, header + flag_at, flags)
        if crc is not None:
            struct.pack_into("<I", out, header + crc_at, crc)
        if file_size is not None:
            struct.pack_into("<I", out, header + size_at, file_size)
        name = local_name if (header == local and local_name is not None) else raw_name
        if name is not None:
            length = struct.unpack_from("<H", out, header + name_len_at)[0]
            assert len(name) == length, "a patched name must keep its length"
            out[header + name_at : header + name_at + length] = name
    return bytes(out)


def raw_name_zip(path: Path, raw: bytes, *, utf8_flag: bool) -> Path:
    """A zip whose one member is named by the raw bytes ``raw``."""
    placeholder = "N" * len(raw)
    data = zip_bytes([(info(placeholder, compress=zipfile.ZIP_STORED), b"data")])
    path.write_bytes(patch_zip(data, 0, raw_name=raw, utf8_flag=utf8_flag))
    return path


# -- the checks every refusal gets -----------------------------------------------------
def snapshot(root: Path) -> dict[str, tuple[int, int, int]]:
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            status = path.lstat()
            found[str(path.relative_to(root))] = (
                status.st_mode,
                status.st_size,
                status.st_mtime_ns,
            )
    return found


@contextmanager
def nothing_written(tmp_path: Path) -> Iterator[None]:
    """Nothing in ``tmp_path`` or the working directory is created or modified, and
    the block ends within :data:`SECONDS`."""
    before, cwd_before = snapshot(tmp_path), sorted(os.listdir())
    start = time.monotonic()
    yield
    assert time.monotonic() - start < SECONDS
    assert snapshot(tmp_path) == before
    assert sorted(os.listdir()) == cwd_before


def read_everything(path: Path) -> dict[str, bytes]:
    with ExportSource.open(path) as source:
        found = {}
        for name in source.names():
            with source.open_member(name) as handle:
                found[name] = handle.read()
        return found


def assert_refused(
    tmp_path: Path, path: Path, error: type[ChatkeepError], match: str, *, read: bool = False
) -> ChatkeepError:
    """Opening ``path`` (and, with ``read``, reading every member) raises exactly
    ``error`` with a message matching ``match``."""
    with nothing_written(tmp_path), pytest.raises(ChatkeepError, match=match) as caught:
        if read:
            read_everything(path)
        else:
            ExportSource.open(path).close()
    assert type(caught.value) is error, f"{type(caught.value).__name__}: {caught.value}"
    return caught.value


@pytest.fixture(autouse=True)
def _no_extraction(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("an archive was extracted")

    monkeypatch.setattr(zipfile.ZipFile, "extract", refuse)
    monkeypatch.setattr(zipfile.ZipFile, "extractall", refuse)


def set_limit(monkeypatch: pytest.MonkeyPatch, name: str, value: int) -> None:
    """Lower a limit where ExportSource reads it (and where a module imported its name)."""
    monkeypatch.setattr(limits, name, value)
    if hasattr(source_module, name):
        monkeypatch.setattr(source_module, name, value)


# -- member names ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("../x", "climbs out"),
        ("a/../../x", "climbs out"),
        ("a/b/../../../x", "climbs out"),
        ("/etc/x", "absolute path"),
        ("C:/x", "absolute path"),
        ("C:x", "absolute path"),
        ("C:\\x", "backslashes"),
        ("..\\x", "backslashes"),
        ("a\\..\\..\\x", "backslashes"),
        ("a\x1b[31mred.json", "control characters"),
        ("line\nbreak.json", "control characters"),
        ("tab\there.json", "control characters"),
        ("del\x7f.json", "control characters"),
        ("x" * 1025, "empty or too long"),
    ],
)
def test_unsafe_member_names(tmp_path: Path, name: str, problem: str) -> None:
    path = write_zip(tmp_path / "export.zip", [("ok.json", b"{}"), (name, b"x")])
    assert_refused(tmp_path, path, UnsafeArchive, problem)


def test_a_nul_is_refused_not_cut_off(tmp_path: Path) -> None:
    data = zip_bytes([("ok.json", b"{}"), (info("NNNNNNNNNN"), b"x")])
    path = tmp_path / "export.zip"
    path.write_bytes(patch_zip(data, 1, raw_name=b"evil\x00.json"))
    assert_refused(tmp_path, path, UnsafeArchive, "control characters")


def test_c1_control_characters_are_refused(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "export.zip", [("ok.json", b"{}"), ("csi\x9b31m.json", b"x")])
    assert_refused(tmp_path, path, UnsafeArchive, "control characters")


def test_a_name_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    path = raw_name_zip(tmp_path / "export.zip", b"\xff\xfe.json", utf8_flag=False)
    assert_refused(tmp_path, path, UnsafeArchive, "not UTF-8")


def test_a_name_marked_utf8_that_is_not_is_refused(tmp_path: Path) -> None:
    path = raw_name_zip(tmp_path / "export.zip", b"\xff\xfe.json", utf8_flag=True)
    assert_refused(tmp_path, path, UnsafeArchive, "UTF-8")


def test_a_folder_file_name_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "ok.json").write_bytes(b"{}")
    try:
        fd = os.open(os.path.join(os.fsencode(folder), b"bad\xff.json"), os.O_CREAT | os.O_WRONLY)
    except OSError as exc:  # a file system that insists on UTF-8 names
        pytest.skip(f"cannot create a non-UTF-8 file name here: {exc}")
    os.close(fd)
    assert_refused(tmp_path, folder, UnsafeArchive, "not UTF-8")


@pytest.mark.parametrize("raw", [b"", b"\x00evil"], ids=["empty", "nul-first"])
def test_a_member_without_a_name(tmp_path: Path, raw: bytes) -> None:
    data = zip_bytes([("ok.json", b"{}"), (info("N" * len(raw)), b"x")])
    path = tmp_path / "export.zip"
    path.write_bytes(patch_zip(data, 1, raw_name=raw))
    assert_refused(tmp_path, path, UnsafeArchive, "empty or too long|control characters")


@pytest.mark.parametrize(
    ("name", "problem"), [("a/..", "climbs out"), (".", "is empty"), ("./.", "is empty")]
)
def test_names_that_are_no_file(tmp_path: Path, name: str, problem: str) -> None:
    path = write_zip(tmp_path / "export.zip", [("ok.json", b"{}"), (name, b"x")])
    assert_refused(tmp_path, path, UnsafeArchive, problem)


def test_duplicate_names(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "export.zip", [("a/b.json", b"1"), ("a/b.json", b"2")])
    assert_refused(tmp_path, path, UnsafeArchive, "appears twice")


@pytest.mark.parametrize("other", ["a//b.json", "./a/b.json", "a/./b.json"])
def test_names_equal_once_cleaned_are_duplicates(tmp_path: Path, other: str) -> None:
    path = write_zip(tmp_path / "export.zip", [("a/b.json", b"1"), (other, b"2")])
    assert_refused(tmp_path, path, UnsafeArchive, "'a/b.json' appears twice")


# -- member kinds -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "mode",
    [0o120777, 0o010644, 0o020644, 0o060644, 0o140755],
    ids=["symlink", "fifo", "char-device", "block-device", "socket"],
)
def test_links_and_special_files(tmp_path: Path, mode: int) -> None:
    path = write_zip(
        tmp_path / "export.zip",
        [("ok.json", b"{}"), (info("link", mode=mode), b"/etc/passwd")],
    )
    assert_refused(tmp_path, path, UnsafeArchive, "'link' is a link or special file")


def test_a_symlink_in_a_folder(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "ok.json").write_bytes(b"{}")
    (folder / "secret").symlink_to("/etc/passwd")
    assert_refused(tmp_path, folder, UnsafeArchive, "secret is a symbolic link")


def test_encrypted_members(tmp_path: Path) -> None:
    data = zip_bytes([("ok.json", b"{}"), ("secret.json", b"x")])
    path = tmp_path / "export.zip"
    path.write_bytes(patch_zip(data, 1, set_flags=0x1))
    assert_refused(tmp_path, path, ImportFormatError, "'secret.json' is encrypted")


# -- sizes and counts -----------------------------------------------------------------
def test_a_ratio_bomb(tmp_path: Path) -> None:
    """200 MB of zeros, deflated to about 200 KB, written as a stream."""
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(info("ok.json"), b"{}")
        with archive.open(info("zeros.json"), "w", force_zip64=True) as handle:
            chunk = bytes(1024 * 1024)
            for _ in range(200):
                handle.write(chunk)
    assert path.stat().st_size < 1024 * 1024
    assert_refused(tmp_path, path, ArchiveLimitExceeded, r"'zeros\.json' expands \d+x.*zip bomb")


def test_a_ratio_bomb_under_a_lowered_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_limit(monkeypatch, "MAX_COMPRESSION_RATIO", 10)
    path = write_zip(tmp_path / "export.zip", [("zeros.json", bytes(2 * 1024 * 1024))])
    assert_refused(tmp_path, path, ArchiveLimitExceeded, "expands")


def test_a_bomb_inside_an_archive_of_archives(tmp_path: Path) -> None:
    inner = zip_bytes([("zeros.json", bytes(20 * 1024 * 1024))])
    path = write_zip(
        tmp_path / "export.zip",
        [(info("a.zip", compress=zipfile.ZIP_STORED), inner), ("b.zip", zip_bytes([]))],
    )
    assert_refused(tmp_path, path, ArchiveLimitExceeded, "'zeros.json' expands")


def test_declared_sizes_over_the_total_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_limit(monkeypatch, "MAX_ARCHIVE_TOTAL_BYTES", 10_000)
    members: list[tuple[str | zipfile.ZipInfo, bytes]] = [
        (f"{i}.json", random.Random(i).randbytes(3_000)) for i in range(4)
    ]
    path = write_zip(tmp_path / "export.zip", members)
    assert_refused(tmp_path, path, ArchiveLimitExceeded, "unpacks to more than 10000 bytes")


def _lying_zip(tmp_path: Path, compress: int, *, fix_crc: bool) -> Path:
    real = random.Random(7).randbytes(50_000) if compress == zipfile.ZIP_STORED else b"A" * 200_000
    data = zip_bytes([("ok.json", b"{}"), (info("big.json", compress=compress), real)])
    crc = binascii.crc32(real[:1_000]) if fix_crc else None
    path = tmp_path / "export.zip"
    path.write_bytes(patch_zip(data, 1, file_size=1_000, crc=crc))
    with ExportSource.open(path) as source:
        assert source.size("big.json") == 1_000
    return path


@pytest.mark.parametrize("compress", [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED])
@pytest.mark.parametrize("fix_crc", [False, True], ids=["crc-of-all", "crc-of-declared"])
def test_a_member_larger_than_it_declares_is_cut_off(
    tmp_path: Path, compress: int, fix_crc: bool
) -> None:
    path = _lying_zip(tmp_path, compress, fix_crc=fix_crc)
    assert_refused(
        tmp_path,
        path,
        ArchiveLimitExceeded,
        "'big.json' holds more data than it declares",
        read=True,
    )


def test_a_member_larger_than_it_declares_never_yields_more(tmp_path: Path) -> None:
    """What holds today and after the fix: no more than the declared bytes come out."""
    path = _lying_zip(tmp_path, zipfile.ZIP_DEFLATED, fix_crc=True)
    with ExportSource.open(path) as source, source.open_member("big.json") as handle:
        try:
            data = handle.read()
        except ArchiveLimitExceeded:
            return
    assert len(data) <= 1_000


def test_corrupt_member_data(tmp_path: Path) -> None:
    data = bytearray(zip_bytes([("ok.json", b"{}"), ("big.json", b"hello world " * 5_000)]))
    central = list(_central_entries(bytes(data)))[1]
    local = struct.unpack_from("<I", data, central + 42)[0]
    start = local + 30 + struct.unpack_from("<H", data, local + 26)[0]
    data[start + 10 : start + 40] = bytes(30)
    path = tmp_path / "export.zip"
    path.write_bytes(bytes(data))
    assert_refused(tmp_path, path, ImportFormatError, "cannot read 'big.json'", read=True)


def test_a_local_name_that_differs_from_the_central_directory(tmp_path: Path) -> None:
    data = zip_bytes([("ok.json", b"{}"), ("safe.json", b"x")])
    path = tmp_path / "export.zip"
    path.write_bytes(patch_zip(data, 1, local_name=b"../x.json"))
    assert_refused(tmp_path, path, ImportFormatError, "cannot read 'safe.json'", read=True)


def test_more_members_than_the_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    set_limit(monkeypatch, "MAX_ARCHIVE_MEMBERS", 5)
    path = write_zip(tmp_path / "export.zip", [(f"{i}.json", b"{}") for i in range(6)])
    assert_refused(tmp_path, path, ArchiveLimitExceeded, "6 members; the limit is 5")


def test_more_files_than_the_limit_in_a_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_limit(monkeypatch, "MAX_ARCHIVE_MEMBERS", 5)
    folder = tmp_path / "export"
    folder.mkdir()
    for i in range(6):
        (folder / f"{i}.json").write_bytes(b"{}")
    assert_refused(tmp_path, folder, ArchiveLimitExceeded, "more than 5 files")


def test_more_members_than_the_limit_across_nested_archives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_limit(monkeypatch, "MAX_ARCHIVE_MEMBERS", 5)
    inner = zip_bytes([(f"{i}.json", b"{}") for i in range(3)])
    path = write_zip(tmp_path / "export.zip", [("a.zip", inner), ("b.zip", inner)])
    assert_refused(tmp_path, path, ArchiveLimitExceeded, "more than 5 files")


# -- broken and wrong files -----------------------------------------------------------
def test_a_truncated_zip(tmp_path: Path) -> None:
    whole = zip_bytes([(f"{i}.json", random.Random(i).randbytes(5_000)) for i in range(4)])
    path = tmp_path / "export.zip"
    path.write_bytes(whole[: len(whole) // 2])
    assert_refused(tmp_path, path, ImportFormatError, "not a readable zip archive")


def test_garbage_after_the_zip_magic(tmp_path: Path) -> None:
    path = tmp_path / "export.zip"
    path.write_bytes(b"PK\x03\x04" + random.Random(1).randbytes(4_000))
    assert_refused(tmp_path, path, ImportFormatError, "not a readable zip archive")


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("export.zip", random.Random(2).randbytes(4_000)),
        ("export.zip", b"\x89PNG\r\n\x1a\n" + bytes(100)),
        ("photo.png", b"\x89PNG\r\n\x1a\n" + bytes(100)),
        ("empty.zip", b""),
    ],
)
def test_a_file_of_the_wrong_kind(tmp_path: Path, name: str, content: bytes) -> None:
    """Not a zip: opened as a single file, which no importer recognises."""
    path = tmp_path / name
    path.write_bytes(content)
    with nothing_written(tmp_path), ExportSource.open(path) as source:
        assert source.names() == [name]
        with pytest.raises(ImportFormatError, match="not an export chatkeep recognises"):
            chatkeep.importers.choose(source)
        with pytest.raises(ImportFormatError, match="no VVAULT transcripts"):
            vvault.IMPORTER.parse(source)


@pytest.mark.timeout(30)
def test_a_fifo_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "export.zip"
    os.mkfifo(fifo)
    data = b"[]"
    deadline = time.monotonic() + 2

    def writer() -> None:  # feeds a reader if one comes; never blocks
        while time.monotonic() < deadline:
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                if exc.errno != errno.ENXIO:
                    raise
                time.sleep(0.01)
                continue
            try:
                os.write(fd, data)
            except BrokenPipeError:
                pass
            finally:
                os.close(fd)
            return

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        with pytest.raises(ImportFormatError, match="regular file"):
            ExportSource.open(fifo).close()
    finally:
        thread.join()


def test_a_missing_path(tmp_path: Path) -> None:
    assert_refused(tmp_path, tmp_path / "nope.zip", ImportFormatError, "does not exist")


# -- nested archives --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("inner_members", "error", "problem"),
    [
        ([("../x.json", b"x")], UnsafeArchive, "climbs out"),
        ([(info("link", mode=0o120777), b"/etc")], UnsafeArchive, "link or special file"),
        ([("a\x1b.json", b"x")], UnsafeArchive, "control characters"),
        ([("x.json", b"1"), ("./x.json", b"2")], UnsafeArchive, "appears twice"),
    ],
)
def test_hostile_members_of_nested_archives(
    tmp_path: Path,
    inner_members: list[tuple[str | zipfile.ZipInfo, bytes]],
    error: type[ChatkeepError],
    problem: str,
) -> None:
    inner = zip_bytes(inner_members)
    path = write_zip(tmp_path / "export.zip", [("a.zip", inner), ("b.zip", zip_bytes([]))])
    assert_refused(tmp_path, path, error, problem)


@pytest.mark.parametrize("name", ["/etc/x.json", "C:x.json"])
def test_absolute_names_in_nested_archives(tmp_path: Path, name: str) -> None:
    inner = zip_bytes([(name, b"x")])
    path = write_zip(tmp_path / "export.zip", [("a.zip", inner), ("b.zip", zip_bytes([]))])
    assert_refused(tmp_path, path, UnsafeArchive, "absolute path")


def test_a_broken_nested_archive(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "export.zip", [("a.zip", b"PK\x03\x04 not really"), ("b.zip", b"")])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)  # pinned by the next test
        assert_refused(tmp_path, path, ImportFormatError, "nested archive 'a.zip' is not readable")
        gc.collect()


def open_files(path: Path) -> list[str]:
    """This process's file descriptors open on ``path`` (Linux)."""
    fds = Path("/proc/self/fd")
    if not fds.is_dir():
        pytest.skip("needs /proc/self/fd")
    found = []
    for fd in fds.iterdir():
        with contextlib.suppress(OSError):
            if os.readlink(fd) == str(path):
                found.append(fd.name)
    return found


def test_a_broken_nested_archive_leaves_no_file_open(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "export.zip", [("a.zip", b"PK\x03\x04 not really"), ("b.zip", b"")])
    with pytest.raises(ImportFormatError) as caught:
        ExportSource.open(path)
    # While the error (and its traceback) lives, the archive must already be closed.
    leaked = open_files(path)
    del caught
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
    assert leaked == []


# -- what real exports look like --------------------------------------------------------
def test_a_folder(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    (folder / "files").mkdir(parents=True)
    (folder / "conversations.json").write_bytes(b"[]")
    (folder / "files" / "é 1.png").write_bytes(b"png")
    os.mkfifo(folder / "a-fifo")  # special files in a folder are not files of the export
    with nothing_written(tmp_path):
        assert read_everything(folder) == {"conversations.json": b"[]", "files/é 1.png": b"png"}


def test_a_single_wrapper_folder_is_stripped(tmp_path: Path) -> None:
    path = write_zip(
        tmp_path / "export.zip",
        [
            (info("export-2025/"), b""),
            (info("export-2025/files/"), b""),
            ("export-2025/conversations.json", b"[]"),
            ("export-2025/files/a.png", b"png"),
        ],
    )
    with nothing_written(tmp_path):
        assert read_everything(path) == {"conversations.json": b"[]", "files/a.png": b"png"}


def test_an_archive_of_archives(tmp_path: Path) -> None:
    first = zip_bytes([("conversations.json", b"[1]"), ("files/x.txt", b"x")])
    second = zip_bytes([("conversations.json", b"[2]")])
    path = write_zip(tmp_path / "export.zip", [("batch-1.zip", first), ("Batch-2.ZIP", second)])
    with nothing_written(tmp_path):
        assert read_everything(path) == {
            "Batch-2/conversations.json": b"[2]",
            "batch-1/conversations.json": b"[1]",
            "batch-1/files/x.txt": b"x",
        }


def test_an_archive_of_one_archive_is_unwrapped(tmp_path: Path) -> None:
    inner = zip_bytes([("conversations.json", b"[]"), ("projects.json", b"{}")])
    path = write_zip(tmp_path / "export.zip", [("only.zip", inner)])
    assert read_everything(path) == {"conversations.json": b"[]", "projects.json": b"{}"}


def test_utf8_names_without_the_utf8_flag(tmp_path: Path) -> None:
    names = ["café.json", "日本/ノート.md"]
    data = zip_bytes(
        [(info("N" * len(n.encode()), compress=zipfile.ZIP_STORED), b"x") for n in names]
    )
    for index, name in enumerate(names):
        data = patch_zip(data, index, raw_name=name.encode(), utf8_flag=False)
    path = tmp_path / "export.zip"
    path.write_bytes(data)
    with zipfile.ZipFile(path) as archive:
        assert all(not i.flag_bits & 0x800 for i in archive.infolist())
    assert read_everything(path) == {"café.json": b"x", "日本/ノート.md": b"x"}


def test_nested_zips_below_the_top_are_files(tmp_path: Path) -> None:
    upload = zip_bytes([("../../evil.json", b"never opened")])
    path = write_zip(
        tmp_path / "export.zip",
        [("conversations.json", b"[]"), ("files/upload.zip", upload), ("top.zip", upload)],
    )
    with nothing_written(tmp_path):
        assert read_everything(path) == {
            "conversations.json": b"[]",
            "files/upload.zip": upload,
            "top.zip": upload,
        }


def test_nested_zips_inside_an_archive_of_archives_are_files(tmp_path: Path) -> None:
    upload = zip_bytes([("x.json", b"x")])
    inner = zip_bytes([("conversations.json", b"[]"), ("files/upload.zip", upload)])
    path = write_zip(tmp_path / "export.zip", [("a.zip", inner), ("b.zip", inner)])
    found = read_everything(path)
    assert sorted(found) == [
        "a/conversations.json",
        "a/files/upload.zip",
        "b/conversations.json",
        "b/files/upload.zip",
    ]
    assert found["a/files/upload.zip"] == upload


def test_a_zip_written_by_python_writestr(tmp_path: Path) -> None:
    """Permission bits without a file type (0o600) are a regular file."""
    path = tmp_path / "export.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("conversations.json", b"[]")
        archive.writestr("files/a.png", b"png")
    with zipfile.ZipFile(path) as archive:
        assert stat.S_IFMT(archive.getinfo("files/a.png").external_attr >> 16) == 0
    assert read_everything(path) == {"conversations.json": b"[]", "files/a.png": b"png"}


def test_a_single_file(tmp_path: Path) -> None:
    path = tmp_path / "conversations.json"
    path.write_bytes(b"[]")
    assert read_everything(path) == {"conversations.json": b"[]"}


# -- any member name ----------------------------------------------------------------------
def is_clean(name: str) -> bool:
    parts = name.split("/")
    return (
        bool(name)
        and all(part not in ("", ".", "..") for part in parts)
        and "\\" not in name
        and not name.startswith("/")
        and not (len(name) > 1 and name[1] == ":")
        and not any(ord(ch) < 32 or ord(ch) == 127 for ch in name)
    )


_name_alphabet = st.one_of(
    st.sampled_from([*list("./\\:"), "..", "../", "C:", "\x00", "\x1b", "é", "日"]),
    st.characters(),
)
_names = st.lists(_name_alphabet, max_size=12).map("".join)


@given(name=st.one_of(_names, st.text()))
def test_any_name_is_refused_or_clean(name: str) -> None:
    try:
        clean = check_member_name(name)
    except UnsafeArchive:
        return
    assert is_clean(clean), (name, clean)
    assert check_member_name(clean) == clean


_zip_counter = itertools.count()


def _encodable(name: str) -> bool:
    """Names zipfile can write, less those pinned by test_a_member_without_a_name (names
    zipfile cuts to nothing at a NUL)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return name.split("\x00", 1)[0] != ""


@given(name=st.one_of(_names, st.text()).filter(_encodable))
def test_any_name_in_a_zip_is_refused_or_clean(tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{next(_zip_counter)}.zip"
    try:
        write_zip(path, [("ok.json", b"{}"), (name, b"x")])
    except (ValueError, struct.error):  # zipfile cannot write it (too long a name)
        return
    try:
        with ExportSource.open(path) as source:
            names = source.names()
    except UnsafeArchive:
        return
    finally:
        path.unlink()
    assert all(is_clean(n) for n in names), (name, names)
