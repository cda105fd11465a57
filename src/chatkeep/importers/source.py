"""Reading an export safely, whether it is a zip, an extracted folder or a single file.

Nothing is ever extracted to disk: members are streamed. Before anything is read, an
archive is checked whole: member count, names (no ``..``, absolute paths, drive letters,
backslashes, NUL, control characters, names that are not UTF-8, duplicates), no
symlinks or special files, declared sizes within the total budget and the compression
ratio. While reading, a member yielding more bytes than it declared is cut off
(CPython's zipfile trusts the declared size only partly: python/cpython#83522).

One level of nested zips (an "archive of archives", Claude's batch zips) is opened as
if its members were in a folder named after it. A single wrapper folder is stripped.
"""

from __future__ import annotations

import contextlib
import copy
import io
import stat
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, BinaryIO

from chatkeep import limits
from chatkeep.errors import ArchiveLimitExceeded, ChatkeepError, ImportFormatError, UnsafeArchive

_ZIP_MAGIC = b"PK\x03\x04"
_UTF8_FLAG = 0x800
_UNCAPPED = 2**63 - 1
#: :meth:`ExportSource.head` with ``keep`` reads a member up to this size whole and keeps
#: it, at most ``_KEEP_TOTAL_BYTES`` of them, for the :meth:`~ExportSource.open_member`
#: that usually follows (an attachment sniffed, then stored): one read from the archive
#: instead of two.
_KEEP_MEMBER_BYTES = 64 * 1024
_KEEP_TOTAL_BYTES = 8 * 1024 * 1024
# What zipfile and zlib raise on a corrupt archive while listing it, opening a member or
# decompressing one (UnicodeDecodeError, a ValueError: a name marked UTF-8 is not).
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    OSError,
    NotImplementedError,
    RuntimeError,
    ValueError,
)


@dataclass(frozen=True, slots=True)
class _Member:
    size: int
    zip_info: zipfile.ZipInfo | None = None
    inner: str | None = None  # member of a nested zip: the nested zip's name
    path: Path | None = None  # file in a folder


def check_member_name(name: str) -> str:
    """The member name as a clean relative POSIX path, or :class:`UnsafeArchive`."""
    shown = repr(name[:200])
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: a folder's file name that is not UTF-8
        raise UnsafeArchive(f"archive member {shown} has a name that is not UTF-8") from None
    if not name or len(encoded) > limits.MAX_MEMBER_NAME_BYTES:
        raise UnsafeArchive(f"archive member name {shown} is empty or too long")
    if any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in name):
        raise UnsafeArchive(f"archive member {shown} has control characters in its name")
    if "\\" in name:
        raise UnsafeArchive(f"archive member {shown} uses backslashes (a Windows path)")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchive(f"archive member {shown} has an absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise UnsafeArchive(f"archive member {shown} climbs out of the archive with '..'")
    clean = "/".join(parts)
    if not clean or (len(clean) > 1 and clean[1] == ":"):
        raise UnsafeArchive(f"archive member {shown} looks like a Windows drive path or is empty")
    return clean


def _decoded_name(info: zipfile.ZipInfo) -> str:
    # orig_filename: zipfile cuts ``filename`` at the first NUL, hiding it from the checks.
    if info.flag_bits & _UTF8_FLAG:
        return info.orig_filename
    # Without the UTF-8 flag, zipfile decoded the name as cp437. Many tools write UTF-8
    # without setting the flag; accept that, refuse anything else.
    raw = info.orig_filename.encode("cp437")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UnsafeArchive(
            f"archive member {info.filename!r} has a name that is not UTF-8",
            hint="re-create the archive with UTF-8 file names",
        ) from None


class _LimitedReader(io.RawIOBase):
    """Passes at most ``limit`` bytes through, then refuses: a member lying about its size."""

    def __init__(self, raw: BinaryIO, limit: int, name: str) -> None:
        self._raw, self._left, self._name = raw, limit, name

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        try:
            data = self._raw.read(min(len(buffer), self._left + 1))
        except _ZIP_ERRORS as exc:
            raise ImportFormatError(f"cannot read {self._name!r} from the archive: {exc}") from exc
        if len(data) > self._left:
            raise ArchiveLimitExceeded(
                f"archive member {self._name!r} holds more data than it declares (a zip bomb?)"
            )
        self._left -= len(data)
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._raw.close()
        super().close()


class ExportSource:
    """The files of an export, by relative POSIX name."""

    def __init__(self, label: str) -> None:
        self.label = label
        self._members: dict[str, _Member] = {}
        self._zip: zipfile.ZipFile | None = None
        self._nested: dict[str, zipfile.ZipFile] = {}
        self._handles: list[IO[bytes]] = []  # outer members nested zips read from
        self._total = 0
        self._kept: dict[str, bytes] = {}  # see _KEEP_MEMBER_BYTES; oldest first
        self._kept_bytes = 0

    # -- opening -------------------------------------------------------------------
    @classmethod
    def open(cls, path: Path) -> ExportSource:
        """Open a zip, a folder or a single file; check it before anything is read."""
        if not path.exists():
            raise ImportFormatError(f"{path} does not exist")
        source = cls(path.name)
        try:
            if path.is_dir():
                source._add_folder(path)
            elif not path.is_file():
                raise ImportFormatError(f"{path} is neither a regular file nor a folder")
            elif _is_zip(path):
                source._add_zip(path)
            else:
                size = path.stat().st_size
                source._add(path.name, _Member(size=size, path=path))
            source._strip_wrapper_folder()
        except BaseException:
            source.close()
            raise
        return source

    def _add(self, name: str, member: _Member) -> None:
        clean = check_member_name(name)
        if clean in self._members:
            raise UnsafeArchive(f"archive member {clean!r} appears twice")
        if len(self._members) >= limits.MAX_ARCHIVE_MEMBERS:
            raise ArchiveLimitExceeded(
                f"the export has more than {limits.MAX_ARCHIVE_MEMBERS} files"
            )
        self._total += member.size
        if self._total > limits.MAX_ARCHIVE_TOTAL_BYTES:
            raise ArchiveLimitExceeded(
                f"the export unpacks to more than {limits.MAX_ARCHIVE_TOTAL_BYTES} bytes"
            )
        self._members[clean] = member

    def _add_folder(self, folder: Path) -> None:
        for path in sorted(folder.rglob("*")):
            if path.is_symlink():
                raise UnsafeArchive(f"{path.relative_to(folder)} is a symbolic link")
            if path.is_file():
                self._add(
                    path.relative_to(folder).as_posix(), _Member(path.stat().st_size, path=path)
                )

    def _add_zip(self, path: Path) -> None:
        try:
            archive = zipfile.ZipFile(path)
        except UnicodeDecodeError:
            raise UnsafeArchive(
                f"{path.name} has a member name that is marked UTF-8 but is not",
                hint="re-create the archive with UTF-8 file names",
            ) from None
        except _ZIP_ERRORS as exc:
            raise ImportFormatError(f"{path.name} is not a readable zip archive: {exc}") from exc
        self._zip = archive
        # Not ZipInfo.is_dir(): it fails on an empty name (filename[-1]).
        infos = [
            info
            for info in _checked_infos(archive, path.name)
            if not info.orig_filename.endswith("/")
        ]
        names = [_decoded_name(info) for info in infos]
        # An archive of archives holds nothing but zips at its top. Zips anywhere else
        # are files a user uploaded to a chat: kept as attachments, never opened.
        nested = bool(names) and all(
            name.lower().endswith(".zip") and "/" not in check_member_name(name) for name in names
        )
        for info, name in zip(infos, names, strict=True):
            if nested:
                self._add_nested(name, info)
            else:
                self._add(name, _Member(info.file_size, zip_info=info))

    def _add_nested(self, name: str, info: zipfile.ZipInfo) -> None:
        assert self._zip is not None
        handle = self._zip.open(info)
        self._handles.append(handle)
        try:
            inner = zipfile.ZipFile(handle)
        except UnicodeDecodeError:
            raise UnsafeArchive(
                f"nested archive {name!r} has a member name that is marked UTF-8 but is not"
            ) from None
        except _ZIP_ERRORS as exc:
            raise ImportFormatError(f"nested archive {name!r} is not readable: {exc}") from exc
        self._nested[name] = inner
        prefix = PurePosixPath(name).stem
        for inner_info in _checked_infos(inner, name):
            if inner_info.orig_filename.endswith("/"):
                continue
            # Checked on its own: "/etc/x" must not become "<prefix>/etc/x" silently.
            inner_name = check_member_name(_decoded_name(inner_info))
            self._add(
                f"{prefix}/{inner_name}",
                _Member(inner_info.file_size, zip_info=inner_info, inner=name),
            )

    def _strip_wrapper_folder(self) -> None:
        tops = {name.split("/", 1)[0] for name in self._members}
        if len(tops) == 1 and all("/" in name for name in self._members):
            top = tops.pop() + "/"
            self._members = {name[len(top) :]: m for name, m in self._members.items()}

    # -- reading -------------------------------------------------------------------
    def names(self) -> list[str]:
        return sorted(self._members)

    def exists(self, name: str) -> bool:
        return name in self._members

    def size(self, name: str) -> int:
        return self._members[name].size

    def open_member(self, name: str) -> BinaryIO:
        """A stream of the member's bytes, cut off past its declared size."""
        member = self._members.get(name)
        if member is None:
            raise ImportFormatError(f"the export has no file {name!r}")
        kept = self._kept.pop(name, None)
        if kept is not None:  # read whole by head(), within its declared size
            self._kept_bytes -= len(kept)
            return io.BytesIO(kept)
        if member.path is not None:
            raw: BinaryIO = member.path.open("rb")
        else:
            archive = self._nested[member.inner] if member.inner else self._zip
            assert archive is not None and member.zip_info is not None
            # zipfile itself stops at the declared size and then fails the CRC check, a
            # BadZipFile that hides the lie. Lift its cap: _LimitedReader enforces the size.
            probe = copy.copy(member.zip_info)
            probe.file_size = _UNCAPPED
            try:
                raw = archive.open(probe)  # type: ignore[assignment]
            except UnicodeDecodeError:
                raise UnsafeArchive(
                    f"archive member {name!r} has a local name that is marked UTF-8 but is not"
                ) from None
            except _ZIP_ERRORS as exc:
                raise ImportFormatError(f"cannot read {name!r} from the archive: {exc}") from exc
        return io.BufferedReader(_LimitedReader(raw, member.size, name))

    def read_bytes(self, name: str, *, limit: int) -> bytes:
        if self.size(name) > limit:
            raise ArchiveLimitExceeded(f"{name!r} is larger than {limit} bytes")
        with self.open_member(name) as handle:
            return handle.read()

    def head(self, name: str, count: int = 4096, *, keep: bool = False) -> bytes:
        """The first bytes of a member (for detection). With ``keep``, a small member is
        read whole and kept for the next :meth:`open_member` of it."""
        member = self._members.get(name)
        if keep and member is not None and member.size <= _KEEP_MEMBER_BYTES:
            try:
                with self.open_member(name) as handle:
                    data = handle.read()
            except (ChatkeepError, OSError):
                pass  # as without keep: the head alone, and the error for the full read
            else:
                self._keep(name, data)
                return data[:count]
        with self.open_member(name) as handle:
            return handle.read(count)

    def _keep(self, name: str, data: bytes) -> None:
        self._kept_bytes -= len(self._kept.pop(name, b""))
        while self._kept and self._kept_bytes + len(data) > _KEEP_TOTAL_BYTES:
            oldest = next(iter(self._kept))
            self._kept_bytes -= len(self._kept.pop(oldest))
        self._kept[name] = data
        self._kept_bytes += len(data)

    def close(self) -> None:
        for inner in self._nested.values():
            with contextlib.suppress(Exception):
                inner.close()
        for handle in self._handles:
            with contextlib.suppress(Exception):
                handle.close()
        if self._zip is not None:
            self._zip.close()

    def __enter__(self) -> ExportSource:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def _is_zip(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(4) == _ZIP_MAGIC


def _checked_infos(archive: zipfile.ZipFile, label: str) -> list[zipfile.ZipInfo]:
    infos = archive.infolist()
    if len(infos) > limits.MAX_ARCHIVE_MEMBERS:
        raise ArchiveLimitExceeded(
            f"{label} has {len(infos)} members; the limit is {limits.MAX_ARCHIVE_MEMBERS}"
        )
    for info in infos:
        # Many writers (Python's zipfile among them) store permission bits only; a
        # file type, when present, must be a plain file or a directory.
        kind = stat.S_IFMT(info.external_attr >> 16)
        if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
            raise UnsafeArchive(f"archive member {info.filename!r} is a link or special file")
        if info.flag_bits & 0x1:
            raise ImportFormatError(f"archive member {info.filename!r} is encrypted")
        ratio_base = max(info.compress_size, 1)
        if (
            info.file_size > 1024 * 1024
            and info.file_size / ratio_base > limits.MAX_COMPRESSION_RATIO
        ):
            raise ArchiveLimitExceeded(
                f"archive member {info.filename!r} expands {info.file_size // ratio_base}x "
                "(a zip bomb?)"
            )
    return infos
