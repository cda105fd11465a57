"""Exporting a vault you own, and importing chatkeep's own export back.

Three formats (``docs/export.md`` describes them field by field):

* ``json`` — one file, ``{"format": "chatkeep-export", "version": 1, …, "tables": {…},
  "counts": {…}, "blobs": {sha256: base64}}``: every data row exactly as the store dumps
  it, from ONE consistent read transaction (:meth:`Store.dump_snapshot`), written as a
  stream (never the whole vault in memory). The attachment bytes follow the rows,
  base64 in the ``blobs`` member: fine for modest vaults; prefer ``zip`` for large ones.
* ``zip`` — ``export.json`` (the same JSON without the ``blobs`` member),
  ``blobs/<aa>/<sha256>`` files, ``markdown/…`` (the Markdown rendering below) and a
  ``manifest.json`` listing every other file with its sha256 and size.
* ``markdown`` — a folder: ``<user>/<runtime>/<title>-<conversation id>.md`` per
  conversation, with YAML front matter, readable in Obsidian; attachments are copied to
  ``attachments/`` and linked relatively. A rendering for people: it does not import.

A :class:`Selection` narrows what is exported. Conversations are always exported whole:
a filter on messages (role, time) keeps every conversation holding at least one
matching message, with all its messages, so trees stay valid. A runtime travels with
its home conversation, so an export always imports into a vault that passes ``doctor``.

:func:`import_chatkeep_export` reads the ``json`` file or the ``zip`` (or the zip's
extracted folder) as a stream (``ijson``), validates ALL of it before anything is
written (schema, types, ids, references, content and blob hashes, the zip's manifest),
then fills an empty vault exactly (:meth:`Store.load_tables`) or adds to a vault with
data only the rows it does not hold yet (:meth:`Store.merge_tables`), in one transaction.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import math
import os
import re
import secrets
import sys
import unicodedata
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import IO, Any, BinaryIO, Final, Literal, Protocol

import ijson  # type: ignore[import-untyped]
import orjson
from sqlalchemy import Float, Integer, LargeBinary

from chatkeep import fsutil, location, render
from chatkeep.backends.schema import DATA_TABLES
from chatkeep.blobs import BlobStore
from chatkeep.errors import (
    ChatkeepError,
    Conflict,
    ImportFormatError,
    InvalidInput,
    LimitExceeded,
    NotFound,
    StorageError,
    UnsafeLocation,
)
from chatkeep.ids import check_id, check_name, check_setting_key
from chatkeep.importers.source import ExportSource
from chatkeep.limits import (
    MAX_ATTACHMENT_BYTES,
    MAX_JSON_BYTES,
    MAX_MESSAGE_BYTES,
    MAX_TITLE_LENGTH,
)
from chatkeep.model import ROLES, STATES, ImportRecord, Message
from chatkeep.store import Store
from chatkeep.timeutil import from_text, to_text, utcnow
from chatkeep.vault import Vault

FORMAT: Final = "chatkeep-export"
VERSION: Final = 1
MANIFEST_FORMAT: Final = "chatkeep-export-manifest"
EXPORT_JSON: Final = "export.json"
MANIFEST: Final = "manifest.json"
FORMATS: Final = ("json", "markdown", "zip")
TABLES: Final = tuple(str(table.name) for table in DATA_TABLES)
#: Tables added after version 1 of the format: an export written before them has none
#: (and holds nothing they would), so it still imports.
LATER_TABLES: Final = frozenset({"user_keys"})
#: Most characters of a conversation title kept in its Markdown file name.
MAX_SLUG_CHARS: Final = 60
#: Most UTF-8 bytes of that part of the name (file systems allow 255 for the whole name).
MAX_SLUG_BYTES: Final = 120
#: Deepest nesting of JSON values an export may hold (rows are flat).
MAX_DEPTH: Final = 64

ExportFormat = Literal["json", "markdown", "zip"]
Progress = Callable[[int], None]

_CHUNK: Final = 1024 * 1024
_B64_CHUNK: Final = 3 * 256 * 1024  # a multiple of 3: chunks encode without padding
_SHA256: Final = re.compile(r"[0-9a-f]{64}")
_ORIGINS: Final = ("native", "imported")
_COST_TOLERANCE: Final = 1e-6  # as doctor compares cost totals
_NARROWING: Final = ("runtimes", "conversations", "since", "until", "role", "platform", "import")


# -- what to export -----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Selection:
    """What to export; every field that is set narrows it, and all of them must hold.

    ``users``, ``runtimes``, ``conversations``: ids (any of each). ``since`` / ``until``
    (inclusive, UTC) and ``role`` select conversations with at least one message that
    matches them all; ``platform`` (``source_platform`` of imported conversations) and
    ``import_id`` select conversations by where they came from. Empty: everything.
    """

    users: tuple[str, ...] = ()
    runtimes: tuple[str, ...] = ()
    conversations: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    role: str | None = None
    platform: str | None = None
    import_id: str | None = None

    def __post_init__(self) -> None:
        for name in ("users", "runtimes", "conversations"):
            object.__setattr__(self, name, tuple(dict.fromkeys(getattr(self, name))))
        for user in self.users:
            check_name("user", user)
        for runtime in self.runtimes:
            check_name("runtime", runtime)
        for conversation in self.conversations:
            check_id("conversation", conversation)
        for name in ("since", "until"):
            moment = getattr(self, name)
            if moment is not None and moment.tzinfo is None:
                object.__setattr__(self, name, moment.replace(tzinfo=UTC))
        if self.since and self.until and self.since > self.until:
            raise InvalidInput("'since' is after 'until': nothing could match")
        if self.role is not None and self.role not in ROLES:
            raise InvalidInput(f"unknown role {self.role!r}", hint=f"roles: {', '.join(ROLES)}")
        if self.platform is not None:
            check_name("platform", self.platform)
        if self.import_id is not None:
            check_id("import", self.import_id)

    @property
    def narrows(self) -> bool:
        """Whether it selects less than whole users (then settings and tokens stay out)."""
        return any(self.to_dict()[name] not in (None, []) for name in _NARROWING)

    @property
    def filters_messages(self) -> bool:
        return self.since is not None or self.until is not None or self.role is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "users": list(self.users),
            "runtimes": list(self.runtimes),
            "conversations": list(self.conversations),
            "since": to_text(self.since) if self.since else None,
            "until": to_text(self.until) if self.until else None,
            "role": self.role,
            "platform": self.platform,
            "import": self.import_id,
        }


@dataclass(frozen=True, slots=True)
class ExportReport:
    """What an export wrote: rows per table, conversations, attachment files, bytes."""

    path: Path
    format: ExportFormat
    rows: dict[str, int]
    conversations: int
    blobs: int
    markdown_files: int
    bytes: int


@dataclass(frozen=True, slots=True)
class ChatkeepImportReport:
    """What importing a chatkeep export did (or, with ``dry_run``, would do).

    ``mode`` is ``load`` (an empty vault filled exactly) or ``merge`` (rows the vault
    did not hold yet added); ``rows`` counts the export's rows, ``added`` what was added.
    """

    path: Path
    mode: Literal["load", "merge"]
    dry_run: bool
    exported_at: str
    rows: dict[str, int]
    added: dict[str, int]
    blobs: int
    file_size: int
    file_sha256: str
    started_at: datetime
    finished_at: datetime

    def as_record(self) -> ImportRecord:
        """The report in the shape of an import record (it is not kept as one: the rows
        it brought carry their own import records)."""
        counts = {f"{name}_added": n for name, n in self.added.items() if n}
        return ImportRecord(
            id="",
            platform="chatkeep",
            runtime_id="",
            file_name=self.path.name,
            file_size=self.file_size,
            file_sha256=self.file_sha256,
            stored_path=None,
            counts=counts,
            warnings=(),
            metadata={"mode": self.mode, "exported_at": self.exported_at},
            started_at=self.started_at,
            finished_at=self.finished_at,
        )


# -- choosing the rows --------------------------------------------------------------------
class _Plan:
    """Which rows of each table an export keeps, for a :class:`Selection`.

    Without narrowing filters every row of the selected users (or of everyone) is kept.
    With them, the conversations are chosen first (a pre-pass over conversations, and
    over messages for role and time filters), then the snapshot keeps those
    conversations whole, their runtimes (and the runtimes' home conversations), users,
    tags, pins, attachments, vectors and the imports they came from.
    """

    def __init__(self, store: Store, selection: Selection) -> None:
        self.selection = selection
        self.users: set[str] | None = set(selection.users) or None
        self.narrow = selection.narrows
        self.conversations: set[str] = set()
        self.runtimes: set[tuple[str, str]] = set()
        self.owners: set[str] = set()
        self.message_pks: set[int] = set()
        self.import_ids: set[str] = set()
        if self.users is not None:
            known = {user.id for user in store.list_users()}
            missing = sorted(self.users - known)
            if missing:
                raise NotFound(f"no user {missing[0]!r}")
        if self.narrow:
            self._choose(store)

    def _choose(self, store: Store) -> None:
        chosen = self.selection
        wanted, runtimes = set(chosen.conversations), set(chosen.runtimes)
        candidates: dict[str, tuple[str, str]] = {}
        existing: set[str] = set()
        existing_runtimes: set[str] = set()
        for row in store.dump_table("conversations"):
            if self.users is not None and row["user_id"] not in self.users:
                continue
            existing.add(row["id"])
            existing_runtimes.add(row["runtime_id"])
            if (
                (not wanted or row["id"] in wanted)
                and (not runtimes or row["runtime_id"] in runtimes)
                and (chosen.platform is None or row["source_platform"] == chosen.platform)
                and (chosen.import_id is None or row["import_id"] == chosen.import_id)
            ):
                candidates[row["id"]] = (row["user_id"], row["runtime_id"])
        for missing in sorted(wanted - existing):  # another user's: just as missing
            raise NotFound(f"no conversation {missing!r}")
        for missing in sorted(runtimes - existing_runtimes):
            raise NotFound(f"no runtime {missing!r}")
        if chosen.filters_messages:
            candidates = self._with_matching_messages(store, candidates)
        self.conversations = set(candidates)
        self.runtimes = set(candidates.values())
        self.owners = {user for user, _runtime in self.runtimes}
        for row in store.dump_table("runtimes"):  # a runtime travels with its home
            home = row["primary_conversation_id"]
            if (row["user_id"], row["id"]) in self.runtimes and home:
                self.conversations.add(home)

    def _with_matching_messages(
        self, store: Store, candidates: dict[str, tuple[str, str]]
    ) -> dict[str, tuple[str, str]]:
        chosen = self.selection
        since = to_text(chosen.since) if chosen.since else None
        until = to_text(chosen.until) if chosen.until else None
        matched: set[str] = set()
        for message in store.dump_table("messages"):
            conversation = message["conversation_id"]
            if conversation not in candidates or conversation in matched:
                continue
            if chosen.role is not None and message["role"] != chosen.role:
                continue
            created = message["created_at"]
            if (since or until) and created is None:
                continue
            if since is not None and created < since:
                continue
            if until is not None and created > until:
                continue
            matched.add(conversation)
        return {k: v for k, v in candidates.items() if k in matched}

    def user_of(self, table: str, row: dict[str, Any]) -> str:
        return str(row["id"] if table == "users" else row["user_id"])

    def keep(self, table: str, row: dict[str, Any]) -> bool:
        if self.users is not None and self.user_of(table, row) not in self.users:
            return False
        if not self.narrow:
            return True
        if table == "users":
            return row["id"] in self.owners
        if table == "user_keys":  # sealed content is readable only with its wrapped key
            return row["user_id"] in self.owners
        if table == "runtimes":
            return (row["user_id"], row["id"]) in self.runtimes
        if table == "conversations":
            if row["id"] not in self.conversations:
                return False
            if row["import_id"]:
                self.import_ids.add(row["import_id"])
            return True
        if table == "messages":
            if row["conversation_id"] not in self.conversations:
                return False
            self.message_pks.add(row["pk"])
            return True
        if table == "imports":  # those its conversations came from (runtime and all)
            wanted = row["id"] in self.import_ids or row["id"] == self.selection.import_id
            return wanted and (row["user_id"], row["runtime_id"]) in self.runtimes
        if table == "message_vectors":
            return row["message_pk"] in self.message_pks
        # Tags, pins, attachments, drafts, recordings…: with their conversation. Rows of
        # no conversation (settings, tokens, snapshots of a whole user) stay out.
        return row.get("conversation_id") in self.conversations


@dataclass(slots=True)
class _Collected:
    """What the row pass noted for the files written after it."""

    rows: dict[str, int] = field(default_factory=dict)
    shas: set[str] = field(default_factory=set)
    conversations: list[dict[str, Any]] = field(default_factory=list)
    tags: dict[str, list[str]] = field(default_factory=dict)


# -- export -------------------------------------------------------------------------------
def export_vault(
    vault: Vault,
    out: str | os.PathLike[str],
    *,
    format: ExportFormat = "json",
    selection: Selection | None = None,
    all_branches: bool = False,
    vectors: bool = True,
    progress: Progress | None = None,
    allow_in_git: bool = False,
) -> ExportReport:
    """Export (a selection of) ``vault`` to the new path ``out`` in ``format``.

    ``all_branches`` renders every branch in Markdown (default: the active branch);
    ``vectors=False`` leaves the derived search vectors out of the JSON. ``out`` must
    not exist, and may not lie inside a git work tree unless ``allow_in_git``.
    """
    if format not in FORMATS:
        raise InvalidInput(f"unknown export format {format!r}", hint=f"use {', '.join(FORMATS)}")
    target = Path(out).absolute()
    if target.exists() or target.is_symlink():
        raise InvalidInput(f"{target} already exists", hint="choose a new path for the export")
    if not allow_in_git and location.enclosing_git_work_tree(target.parent) is not None:
        raise UnsafeLocation(
            f"refusing to write an export inside the git work tree of {target.parent}",
            hint="an export holds your conversations: keep it out of source trees",
        )
    plan = _Plan(vault.store, selection or Selection())
    tick = progress or (lambda _n: None)
    fsutil.ensure_dir(target.parent)
    if format == "markdown":
        collected = _collect_conversations(vault.store, plan)
        return _export_markdown(vault, target, plan, collected, all_branches, tick)
    collected = _Collected()
    header = _header(vault, plan.selection, inline=format == "json", vectors=vectors)
    if format == "json":

        def produce(handle: BinaryIO) -> None:
            _write_json(handle, vault, plan, header, collected, vectors=vectors, tick=tick)

        fsutil.atomic_write_with(target, produce)
        files = 0
    else:
        files = _write_zip(target, vault, plan, header, collected, all_branches, vectors, tick)
    return ExportReport(
        path=target,
        format=format,
        rows=collected.rows,
        conversations=collected.rows.get("conversations", 0),
        blobs=len(collected.shas),
        markdown_files=files,
        bytes=target.stat().st_size,
    )


def _header(vault: Vault, selection: Selection, *, inline: bool, vectors: bool) -> bytes:
    from chatkeep import __version__

    members = {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": to_text(utcnow()),
        "generator": f"chatkeep {__version__}",
        "schema": vault.store.schema_version(),
        "selection": selection.to_dict(),
        "blobs_stored": "inline" if inline else "files",
        "vectors": vectors,
    }
    return orjson.dumps(members)[:-1] + b',\n"tables":{'


def _json_row(table: str, row: dict[str, Any]) -> bytes:
    if table == "message_vectors":
        row = {k: ({"$bytes": v.hex()} if isinstance(v, bytes) else v) for k, v in row.items()}
    return orjson.dumps(row)


class _Sink:
    """Buffers small writes into large ones, hashing and counting what passes."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out, self.parts, self.pending = out, list[bytes](), 0
        self.digest, self.size = hashlib.sha256(), 0

    def write(self, data: bytes) -> None:
        self.parts.append(data)
        self.pending += len(data)
        if self.pending >= _CHUNK:
            self.flush()

    def flush(self) -> None:
        if self.parts:
            data = b"".join(self.parts)
            self.out.write(data)
            self.digest.update(data)
            self.size += len(data)
            self.parts, self.pending = [], 0


def _write_json(
    out: IO[bytes],
    vault: Vault,
    plan: _Plan,
    header: bytes,
    collected: _Collected,
    *,
    vectors: bool,
    tick: Progress,
    inline: bool = True,
) -> _Sink:
    sink = _Sink(out)
    sink.write(header)
    snapshot = vault.store.dump_snapshot()
    try:
        for index, (name, rows) in enumerate(snapshot):
            sink.write(b"," if index else b"")
            sink.write(orjson.dumps(name) + b":[")
            count = 0
            for row in rows:
                if not plan.keep(name, row) or (name == "message_vectors" and not vectors):
                    continue
                sink.write((b",\n" if count else b"\n") + _json_row(name, row))
                count += 1
                _note(collected, name, row)
                if count % 1000 == 0:
                    tick(1000)
            tick(count % 1000)
            sink.write(b"\n]")
            collected.rows[name] = count
    finally:  # on an error midway too: end the read transaction (and its cursor) now
        close = getattr(snapshot, "close", None)
        if close is not None:
            close()
    sink.write(b'},\n"counts":' + orjson.dumps(collected.rows))
    if inline:
        sink.write(b',\n"blobs":{')
        for index, sha in enumerate(sorted(collected.shas)):
            sink.write((b",\n" if index else b"\n") + orjson.dumps(sha) + b':"')
            _copy_blob(vault, sha, lambda data: sink.write(base64.b64encode(data)), _B64_CHUNK)
            sink.write(b'"')
            tick(1)
        sink.write(b"\n}")
    sink.write(b"}\n")
    sink.flush()
    return sink


def _note(collected: _Collected, table: str, row: dict[str, Any]) -> None:
    if table == "attachments":
        collected.shas.add(row["sha256"])
    elif table == "conversations":
        collected.conversations.append(row)
    elif table == "conversation_tags":
        collected.tags.setdefault(row["conversation_id"], []).append(row["tag"])


def _copy_blob(vault: Vault, sha: str, write: Callable[[bytes], None], chunk: int) -> int:
    """Pass a blob's bytes to ``write``, re-hashed on the way: a damaged blob stops the
    export instead of spreading."""
    path = BlobStore(vault.paths.blobs).path_for(sha)
    digest, size = hashlib.sha256(), 0
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise StorageError(
            f"the blob {sha} is missing from the vault",
            hint="run 'chatkeep doctor'; an attachment may have been deleted meanwhile",
        ) from None
    with handle:
        while data := handle.read(chunk):
            digest.update(data)
            size += len(data)
            write(data)
    if digest.hexdigest() != sha:
        raise StorageError(f"the blob {sha} is damaged in the vault (its bytes hash differently)")
    return size


def _collect_conversations(store: Store, plan: _Plan) -> _Collected:
    """The conversations (and their tags) a Markdown export renders."""
    collected = _Collected()
    for name in ("conversations", "conversation_tags"):
        count = 0
        for row in store.dump_table(name):
            if plan.keep(name, row):
                _note(collected, name, row)
                count += 1
        collected.rows[name] = count
    return collected


# -- zip ----------------------------------------------------------------------------------
def _write_zip(
    target: Path,
    vault: Vault,
    plan: _Plan,
    header: bytes,
    collected: _Collected,
    all_branches: bool,
    vectors: bool,
    tick: Progress,
) -> int:
    rendered = 0

    def produce(handle: BinaryIO) -> None:
        nonlocal rendered
        files: dict[str, dict[str, Any]] = {}
        with zipfile.ZipFile(handle, "w", allowZip64=True) as archive:
            with archive.open(_zip_info(EXPORT_JSON, compress=True), "w", force_zip64=True) as m:
                sink = _write_json(
                    m, vault, plan, header, collected, vectors=vectors, tick=tick, inline=False
                )
            files[EXPORT_JSON] = {"sha256": sink.digest.hexdigest(), "size": sink.size}
            for sha in sorted(collected.shas):
                name = f"blobs/{sha[:2]}/{sha}"
                with archive.open(_zip_info(name, compress=False), "w", force_zip64=True) as m:
                    size = _copy_blob(vault, sha, _writer(m), _CHUNK)
                files[name] = {"sha256": sha, "size": size}
                tick(1)
            markdown = _MarkdownWriter(vault, "markdown", all_branches, blob_links=True)
            for relative, data in markdown.documents(collected):
                archive.writestr(_zip_info(relative, compress=True), data)
                files[relative] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
                rendered += 1
                tick(1)
            manifest = {"format": MANIFEST_FORMAT, "version": VERSION, "files": files}
            archive.writestr(
                _zip_info(MANIFEST, compress=True),
                orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS),
            )

    fsutil.atomic_write_with(target, produce)
    return rendered


def _zip_info(name: str, *, compress: bool) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=datetime.now(UTC).timetuple()[:6])
    info.external_attr = 0o600 << 16
    if compress:
        info.compress_type = zipfile.ZIP_DEFLATED
        # Fast: an export is about moving data, not squeezing it (the attribute is
        # compress_level from Python 3.13, _compresslevel before).
        setattr(info, "compress_level" if sys.version_info >= (3, 13) else "_compresslevel", 1)
    return info


def _writer(out: IO[bytes]) -> Callable[[bytes], None]:
    def write(data: bytes) -> None:
        out.write(data)

    return write


# -- Markdown -----------------------------------------------------------------------------
_UNSAFE_NAME = re.compile(r"[^\w.\- ]+")
_DASHES = re.compile(r"[\s\-]+")
_DOTS = re.compile(r"\.{2,}")
_DASH_RUNS = re.compile(r"[-.]*-[-.]*")


def safe_file_stem(title: str) -> str:
    """A file name stem from a title: letters, digits, ``.``, ``-`` and ``_`` only, no
    leading dot, at most :data:`MAX_SLUG_CHARS` characters; ``untitled`` if nothing is left."""
    text = unicodedata.normalize("NFKC", title)
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C")
    text = _DASHES.sub("-", _UNSAFE_NAME.sub(" ", text))
    text = _DOTS.sub(".", _DASH_RUNS.sub("-", text)).strip(".-_ ")
    text = text[:MAX_SLUG_CHARS]
    while len(text.encode()) > MAX_SLUG_BYTES:
        text = text[:-1]
    text = text.strip(".-_ ")
    return text or "untitled"


# Characters YAML refuses raw, or reads as line breaks, even inside quotes.
_NOT_YAML = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")


def _front_value(value: Any) -> str:
    """A YAML value: JSON (a subset of YAML), so quoting is always right; characters
    YAML would refuse or fold are written as ``\\uXXXX`` escapes, which both read."""
    text = orjson.dumps(value).decode()
    return _NOT_YAML.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


class _MarkdownWriter:
    """Renders the selected conversations, one document each, with their attachments."""

    def __init__(self, vault: Vault, prefix: str, all_branches: bool, *, blob_links: bool) -> None:
        self.vault, self.prefix, self.all_branches = vault, prefix, all_branches
        self.blob_links = blob_links
        self.attachments: dict[str, str] = {}  # file under attachments/ -> sha256

    def path_of(self, row: dict[str, Any]) -> str:
        user = check_name("user", row["user_id"])
        runtime = check_name("runtime", row["runtime_id"])
        conversation = check_id("conversation", row["id"])
        name = f"{safe_file_stem(row['title'])}-{conversation}.md"
        return str(PurePosixPath(self.prefix, user, runtime, name))

    def documents(self, collected: _Collected) -> Iterator[tuple[str, bytes]]:
        for row in collected.conversations:
            try:
                messages = self.vault.store.list_messages(
                    row["user_id"], row["id"], all_branches=self.all_branches
                )
            except NotFound:  # deleted since the rows were read
                continue
            tags = collected.tags.get(row["id"], [])
            yield self.path_of(row), self.render(row, tags, messages).encode()

    def render(self, row: dict[str, Any], tags: Sequence[str], messages: list[Message]) -> str:
        source = None
        if row["source_platform"] or row["import_id"]:
            source = {
                "platform": row["source_platform"],
                "id": row["source_id"],
                "import": row["import_id"],
            }
        front = {
            "id": row["id"],
            "title": row["title"],
            "user": row["user_id"],
            "runtime": row["runtime_id"],
            "state": row["state"],
            "created": row["created_at"],
            "updated": row["updated_at"],
            "model": row["model"],
            "tags": list(tags),
            "source": source,
            "messages": row["message_count"],
            "branches": "all" if self.all_branches else "active",
        }
        lines = ["---", *(f"{k}: {_front_value(v)}" for k, v in front.items()), "---", ""]
        heading = " ".join(row["title"].split()) or "(untitled)"
        lines.append(f"# {heading}")
        depth = len(PurePosixPath(self.path_of(row)).parts) - 1
        up = "../" * depth
        sections = [self._section(message, up) for message in messages]
        return "\n".join(lines) + "\n\n" + "\n\n".join(sections) + "\n"

    def _section(self, message: Message, up: str) -> str:
        text = render.message_markdown(message)
        links = []
        for attachment in message.attachments:
            label = attachment.name.replace("[", "(").replace("]", ")").replace("\n", " ")
            if self.blob_links:
                target = f"{up}blobs/{attachment.sha256[:2]}/{attachment.sha256}"
            else:
                name = f"{attachment.sha256[:16]}-{safe_file_stem(attachment.name)}"
                self.attachments[name] = attachment.sha256
                target = f"{up}attachments/{name}"
            bang = "!" if attachment.mime_type.startswith("image/") else ""
            links.append(f"{bang}[{label}]({target})")
        return text + ("\n\n" + "\n".join(links) if links else "")


def _export_markdown(
    vault: Vault,
    target: Path,
    plan: _Plan,
    collected: _Collected,
    all_branches: bool,
    tick: Progress,
) -> ExportReport:
    staging = target.with_name(f"{fsutil.TEMP_PREFIX}{secrets.token_hex(6)}-{target.name}")
    fsutil.ensure_dir(staging)
    try:
        writer = _MarkdownWriter(vault, "", all_branches, blob_links=False)
        written = 0
        for relative, data in writer.documents(collected):
            path = staging / relative
            fsutil.ensure_dir(path.parent)
            fsutil.atomic_write(path, data)
            written += 1
            tick(1)
        for name, sha in sorted(writer.attachments.items()):
            fsutil.copy_file(
                BlobStore(vault.paths.blobs).path_for(sha), staging / "attachments" / name
            )
            tick(1)
        # Every file and folder above was made durable as it was written.
        size = sum(p.stat().st_size for p in staging.rglob("*") if p.is_file())
        fsutil.publish_dir(staging, target)
    except BaseException:
        fsutil.remove_tree(staging)
        raise
    return ExportReport(
        path=target,
        format="markdown",
        rows=collected.rows,
        conversations=len(collected.conversations),
        blobs=len(set(writer.attachments.values())),
        markdown_files=written,
        bytes=size,
    )


# -- reading an export ---------------------------------------------------------------------
def _short(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 200 else text[:197] + "..."


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def _events(handle: _Readable, label: str) -> Iterator[tuple[str, Any]]:
    """``ijson`` basic events; malformed or truncated JSON raises ImportFormatError."""
    try:
        yield from ijson.basic_parse(handle, use_float=True)
    except (ijson.JSONError, UnicodeDecodeError, ValueError, OverflowError) as exc:
        raise ImportFormatError(f"{label} is not valid JSON: {_short(exc)}") from None


_SCALARS: Final = frozenset(("string", "number", "boolean", "null"))


def _build(event: str, value: Any, events: Iterator[tuple[str, Any]], where: str) -> Any:
    """The JSON value starting with ``event``, built without recursion."""
    if event in _SCALARS:
        return value
    if event not in ("start_map", "start_array"):
        raise ImportFormatError(f"{where}: unexpected {event}")
    root: Any = {} if event == "start_map" else []
    stack: list[Any] = [root]
    key: str | None = None
    for event, value in events:
        top = stack[-1]
        if event == "map_key":
            key = value
            continue
        if event in ("end_map", "end_array"):
            stack.pop()
            if not stack:
                return root
            continue
        if event in _SCALARS:
            item = value
        else:
            item = {} if event == "start_map" else []
            if len(stack) >= MAX_DEPTH:
                raise ImportFormatError(f"{where}: nested more than {MAX_DEPTH} levels deep")
        if isinstance(top, dict):
            if key in top:
                raise ImportFormatError(f"{where}: the key {key!r} appears twice")
            top[key] = item
        else:
            top.append(item)
        if event not in _SCALARS:
            stack.append(item)
    raise ImportFormatError(f"{where}: the JSON ends early")


def _next(events: Iterator[tuple[str, Any]], where: str) -> tuple[str, Any]:
    try:
        return next(events)
    except StopIteration:
        raise ImportFormatError(f"{where}: the JSON ends early") from None


#: What :func:`_walk` yields: ("member", key, value) for each top-level member (None
#: for "tables" and "blobs", whose contents follow), ("table", name, None), ("row",
#: table, row), ("end", table, count) and ("blob", sha256, base64 text).
Item = tuple[str, str, Any]


def _walk(handle: _Readable, label: str, *, rows: bool = True) -> Iterator[Item]:
    """The members of an export as a flat stream, one table row at a time; with
    ``rows=False`` the tables are skipped unread (for the blob pass)."""
    events = _events(handle, label)
    event, _ = _next(events, label)
    if event != "start_map":
        raise ImportFormatError(f"{label} is not a chatkeep export (not a JSON object)")
    seen: set[str] = set()
    while True:
        event, key = _next(events, label)
        if event == "end_map":
            break
        if key in seen:
            raise ImportFormatError(f"{label}: the member {key!r} appears twice")
        seen.add(key)
        if key == "tables" and not rows:
            _skip(events)
        elif key in ("tables", "blobs"):
            yield "member", key, None
            yield from (_walk_tables if key == "tables" else _walk_blobs)(events)
        else:
            event, value = _next(events, key)
            yield "member", key, _build(event, value, events, key)
    for event, _ in events:  # anything after the object: ijson refuses it
        raise ImportFormatError(f"{label}: unexpected {event} after the export")


def _skip(events: Iterator[tuple[str, Any]]) -> None:
    depth = 0
    for event, _ in events:
        if event in ("start_map", "start_array"):
            depth += 1
        elif event in ("end_map", "end_array"):
            depth -= 1
        if depth == 0:
            return
    raise ImportFormatError("tables: the JSON ends early")


def _walk_tables(events: Iterator[tuple[str, Any]]) -> Iterator[Item]:
    event, _ = _next(events, "tables")
    if event != "start_map":
        raise ImportFormatError("tables: must be an object of table name to rows")
    while True:
        event, name = _next(events, "tables")
        if event == "end_map":
            return
        where = f"tables.{name}"
        event, _ = _next(events, where)
        if event != "start_array":
            raise ImportFormatError(f"{where}: must be a list of rows")
        yield "table", name, None
        count = 0
        while True:
            event, value = _next(events, where)
            if event == "end_array":
                break
            yield "row", name, _build(event, value, events, f"{where}[{count}]")
            count += 1
        yield "end", name, count


def _walk_blobs(events: Iterator[tuple[str, Any]]) -> Iterator[Item]:
    event, _ = _next(events, "blobs")
    if event != "start_map":
        raise ImportFormatError("blobs: must be an object of sha256 to base64")
    while True:
        event, sha = _next(events, "blobs")
        if event == "end_map":
            return
        event, value = _next(events, f"blobs.{sha}")
        yield "blob", sha, _build(event, value, events, f"blobs.{sha}")


class _Export:
    """An export on disk: a JSON file, a zip, or a zip's extracted folder."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.source: ExportSource | None = None
        self.blob_members: dict[str, str] = {}  # sha256 -> its file in the zip
        self.blob_sizes: dict[str, int] = {}  # sha256 -> its size, as the manifest says
        self.manifest: dict[str, Any] | None = None

    @contextlib.contextmanager
    def open_json(self) -> Iterator[BinaryIO]:
        if self.source is None:
            with self.path.open("rb") as handle:
                yield handle
        else:
            with self.source.open_member(EXPORT_JSON) as handle:
                yield handle

    def close(self) -> None:
        if self.source is not None:
            self.source.close()


def _is_zip(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(4) == b"PK\x03\x04"


def _open_export(path: Path) -> _Export:
    if not path.exists():
        raise ImportFormatError(f"{path} does not exist")
    export = _Export(path)
    if path.is_file() and not _is_zip(path):
        return export
    export.source = ExportSource.open(path)
    try:
        if not export.source.exists(EXPORT_JSON) or not export.source.exists(MANIFEST):
            raise ImportFormatError(
                f"{path.name} is not a chatkeep export zip (no {EXPORT_JSON} and {MANIFEST})"
            )
    except BaseException:
        export.close()
        raise
    return export


def _first_member_is_format(handle: _Readable) -> bool:
    try:
        events = ijson.basic_parse(handle, use_float=True)
        first = [next(events), next(events), next(events)]
    except (ijson.JSONError, UnicodeDecodeError, ValueError, OverflowError, StopIteration):
        return False
    return first == [("start_map", None), ("map_key", "format"), ("string", FORMAT)]


def is_chatkeep_export(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a chatkeep export: JSON whose first member is ``"format":
    "chatkeep-export"``, or a zip (or folder) holding such an ``export.json``."""
    target = Path(path)
    try:
        if target.is_file() and not _is_zip(target):
            with target.open("rb") as handle:
                return _first_member_is_format(handle)
        if target.is_dir() or target.is_file():
            with ExportSource.open(target) as source:
                if not (source.exists(EXPORT_JSON) and source.exists(MANIFEST)):
                    return False
                with source.open_member(EXPORT_JSON) as handle:
                    return _first_member_is_format(handle)
    except (ChatkeepError, OSError):
        return False
    return False


def _verify_manifest(export: _Export) -> None:
    """Every file of the zip is listed in its manifest with its size and sha256, and
    no other; blob files are named by their sha256."""
    source = export.source
    assert source is not None
    try:
        manifest = orjson.loads(source.read_bytes(MANIFEST, limit=256 * 1024 * 1024))
    except orjson.JSONDecodeError as exc:
        raise ImportFormatError(f"{MANIFEST} is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise ImportFormatError(f"{MANIFEST}: 'format' must be {MANIFEST_FORMAT!r}")
    _check_version(manifest.get("version"), MANIFEST)
    listed = manifest.get("files")
    if not isinstance(listed, dict):
        raise ImportFormatError(f"{MANIFEST}: 'files' must be an object")
    present = set(source.names()) - {MANIFEST}
    if present != set(listed):
        odd = sorted(present ^ set(listed))[:3]
        raise ImportFormatError(
            f"the export's files differ from its manifest: {', '.join(map(repr, odd))}"
        )
    for name, entry in sorted(listed.items()):
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("sha256"), str)
            or type(entry.get("size")) is not int
        ):
            raise ImportFormatError(f"{MANIFEST}: files.{name} needs 'sha256' and 'size'")
        digest, size = hashlib.sha256(), 0
        with source.open_member(name) as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
        if size != entry["size"] or digest.hexdigest() != entry["sha256"]:
            raise ImportFormatError(f"the export file {name} is damaged (its sha256 differs)")
        parts = name.split("/")
        if parts[0] == "blobs":
            if len(parts) != 3 or not _SHA256.fullmatch(parts[2]) or parts[1] != parts[2][:2]:
                raise ImportFormatError(f"{name}: blob files are named blobs/<aa>/<sha256>")
            if entry["sha256"] != parts[2]:
                raise ImportFormatError(f"the blob file {name} does not hold its sha256's bytes")
            export.blob_members[parts[2]] = name
            export.blob_sizes[parts[2]] = entry["size"]
    export.manifest = manifest


def _check_version(version: Any, where: str) -> None:
    if type(version) is not int or version < 1:
        raise ImportFormatError(f"{where}: 'version' must be a positive whole number")
    if version > VERSION:
        raise ImportFormatError(
            f"{where}: format version {version} is newer than this chatkeep reads ({VERSION})",
            hint="import it with a newer chatkeep",
        )


# -- validation ---------------------------------------------------------------------------
def _column_kinds() -> dict[str, dict[str, tuple[str, bool]]]:
    kinds: dict[str, dict[str, tuple[str, bool]]] = {}
    for table in DATA_TABLES:
        columns = {}
        for column in table.columns:
            if isinstance(column.type, LargeBinary):
                kind = "bytes"
            elif isinstance(column.type, Integer):
                kind = "int"
            elif isinstance(column.type, Float):
                kind = "float"
            else:
                kind = "str"
            columns[str(column.name)] = (kind, bool(column.nullable))
        kinds[str(table.name)] = columns
    return kinds


_COLUMNS: Final = _column_kinds()
#: Columns holding ids, and which kind ("name" for user and runtime names).
_ID_COLUMNS: Final[dict[str, str]] = {
    "user_id": "name",
    "runtime_id": "name",
    "conversation_id": "conversation",
    "message_id": "message",
    "parent_id": "message",
    "import_id": "import",
    "primary_conversation_id": "conversation",
    "active_leaf_id": "message",
    "forked_from_conversation_id": "conversation",
    "forked_from_message_id": "message",
}
_OWN_ID: Final[dict[str, str]] = {
    "users": "name",
    "runtimes": "name",
    "conversations": "conversation",
    "messages": "message",
    "attachments": "attachment",
    "imports": "import",
    "api_tokens": "token",
    "snapshots": "snapshot",
    "usage_events": "event",
}
_SHA_COLUMNS: Final = frozenset(("content_sha256", "sha256", "file_sha256", "token_sha256"))
_JSON_COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    "runtimes": ("config",),
    "conversations": ("metadata",),
    "messages": ("content", "metadata"),
    "imports": ("counts", "warnings", "metadata"),
    "settings": ("value",),
}
#: Columns that must agree when a row with the same id is already in the vault (every
#: other table with an id: its owner).
_IDENTITY: Final[dict[str, tuple[str, ...]]] = {
    "conversations": ("user_id", "runtime_id"),
    "messages": ("user_id", "conversation_id", "content_sha256"),
    "attachments": ("user_id", "message_id", "sha256"),
    "api_tokens": ("user_id", "token_sha256"),
    **{
        str(table.name): ("user_id",)
        for table in DATA_TABLES
        if [c.name for c in table.primary_key.columns] == ["id"]
        and "user_id" in table.c
        and str(table.name) not in ("conversations", "messages", "attachments", "api_tokens")
    },
}
_MEMBERS: Final = (
    "format",
    "version",
    "exported_at",
    "generator",
    "schema",
    "selection",
    "blobs_stored",
    "vectors",
    "tables",
    "counts",
    "blobs",
)
_WANTED: Final = {
    "str": "a string",
    "int": "a whole number",
    "float": "a number",
    "bytes": 'an object {"$bytes": "<hex>"}',
}
_REQUIRED: Final = ("format", "version", "exported_at", "blobs_stored", "tables", "counts")
_TYPE_OK: Final[dict[str, Callable[[Any], bool]]] = {
    "str": lambda v: type(v) is str,
    "int": lambda v: type(v) is int,
    "float": lambda v: type(v) in (int, float),
    "bytes": lambda v: (
        type(v) is dict
        and v.keys() == {"$bytes"}
        and type(v["$bytes"]) is str
        and _is_hex(v["$bytes"])
    ),
}


def _column_checks(table: str) -> list[tuple[str, str, bool, str | None]]:
    """(column, kind, nullable, extra check) for each column of ``table``: the extra
    check is an id kind, "sha", "time", "json" or None."""
    checks = []
    for name, (kind, nullable) in _COLUMNS[table].items():
        check: str | None = None
        if name == "id" and table in _OWN_ID:
            check = _OWN_ID[table]
        elif name in _ID_COLUMNS:
            check = _ID_COLUMNS[name]
        elif name in _SHA_COLUMNS:
            check = "sha"
        elif name.endswith("_at"):
            check = "time"
        elif name in _JSON_COLUMNS.get(table, ()):
            check = "json"
        checks.append((name, kind, nullable, check))
    return checks


_CHECKS: Final = {name: _column_checks(name) for name in TABLES}
_FIELDS: Final = {name: frozenset(columns) for name, columns in _COLUMNS.items()}
_KEYS: Final = {
    str(table.name): tuple(
        c.name for c in table.primary_key.columns if c.name != "pk" or len(table.primary_key) == 1
    )
    for table in DATA_TABLES
}


def _check_id_value(kind: str, value: Any, where: str) -> None:
    try:
        if kind == "name":
            check_name("user or runtime", value)
        else:
            check_id(kind, value)  # type: ignore[arg-type]
    except InvalidInput as error:
        raise ImportFormatError(f"{where}: {error.message}") from None


class _Validator:
    """Checks a whole export in one streamed pass, keeping only what later checks need:
    ids and keys, never contents. Raises ImportFormatError naming the first problem."""

    def __init__(self, *, only_user: str | None, inline: bool, files: dict[str, int]) -> None:
        self.only_user, self.inline, self.files = only_user, inline, files
        self.members: dict[str, Any] = {}
        self.digest = ""  # sha256 of the JSON the checks read
        self.rows: dict[str, int] = {}
        self.table_index = 0
        self.users: set[str] = set()
        self.runtimes: set[tuple[str, str]] = set()
        self.conversations: dict[str, tuple[str, str]] = {}
        self.messages: dict[str, tuple[str, str, int, str]] = {}
        self.pks: dict[int, str] = {}
        self.keys: set[tuple[Any, ...]] = set()
        self.identity: dict[str, dict[str, tuple[Any, ...]]] = {name: {} for name in _IDENTITY}
        self.tokens: dict[str, str] = {}
        self.leaves: list[tuple[str, str, str]] = []  # (where, conversation, leaf)
        self.homes: list[tuple[str, str, str, str]] = []  # (where, user, runtime, conversation)
        self.pins: list[tuple[str, str, str, str]] = []
        self.blob_sizes: dict[str, int] = {}  # sha256 -> size the attachments say
        self.blobs: dict[str, int] = {}  # sha256 -> size of the bytes the export holds
        self.counters: dict[str, tuple[int, int, float]] = {}  # what conversations say
        self.totals: dict[str, list[Any]] = {}  # what their messages add up to
        self.per_table: dict[str, Callable[[dict[str, Any], str], None]] = {
            "users": self._users,
            "runtimes": self._runtimes,
            "conversations": self._conversations,
            "conversation_tags": self._in_conversation,
            "pins": self._pins,
            "messages": self._messages,
            "attachments": self._attachments,
            "imports": self._imports,
            "message_vectors": self._message_vectors,
            "api_tokens": self._api_tokens,
        }

    # -- the stream ------------------------------------------------------------------
    def run(self, items: Iterable[Item], tick: Progress) -> None:
        for kind, name, value in items:
            if kind == "member":
                self._member(name, value)
            elif kind == "table":
                self._start_table(name)
            elif kind == "row":
                self._row(name, value)
                if self.rows[name] % 1000 == 0:
                    tick(1000)
            elif kind == "end":
                tick(self.rows[name] % 1000)
            else:
                self._blob(name, value)
        self._finish()

    def _member(self, key: str, value: Any) -> None:
        position = len(self.members)
        if key not in _MEMBERS:
            raise ImportFormatError(f"unknown member {key!r} in the export")
        if position == 0 and key != "format":
            raise ImportFormatError("'format' must be the export's first member")
        if position == 1 and key != "version":
            raise ImportFormatError("'version' must follow 'format'")
        self.members[key] = value
        if key == "format":
            if value != FORMAT:
                raise ImportFormatError(f"'format' is {value!r}, not {FORMAT!r}")
        elif key == "version":
            _check_version(value, "the export")
        elif key == "exported_at":
            self._timestamp(value, "exported_at")
        elif key == "generator" and not isinstance(value, str):
            raise ImportFormatError("'generator' must be a string")
        elif key == "schema" and (
            not isinstance(value, list) or not all(isinstance(v, str) for v in value)
        ):
            raise ImportFormatError("'schema' must be a list of strings")
        elif key == "selection":
            if not isinstance(value, dict) or not set(value) <= set(Selection().to_dict()):
                raise ImportFormatError("'selection' must be an object of the known filters")
        elif key == "blobs_stored":
            wanted = "inline" if self.inline else "files"
            if value != wanted:
                raise ImportFormatError(f"'blobs_stored' must be {wanted!r} in this file")
        elif key == "vectors" and not isinstance(value, bool):
            raise ImportFormatError("'vectors' must be true or false")
        elif key == "counts":
            self._counts(value)
        elif key == "blobs" and not self.inline:
            raise ImportFormatError("a zip export keeps its blobs as files, not in 'blobs'")

    def _skip_later_tables(self, until: str | None) -> None:
        while (
            self.table_index < len(TABLES)
            and TABLES[self.table_index] != until
            and TABLES[self.table_index] in LATER_TABLES
        ):
            self.table_index += 1

    def _start_table(self, name: str) -> None:
        self._skip_later_tables(name)
        if self.table_index >= len(TABLES) or name != TABLES[self.table_index]:
            expected = TABLES[self.table_index] if self.table_index < len(TABLES) else "no more"
            raise ImportFormatError(f"tables: found {name!r} where {expected!r} belongs")
        self.table_index += 1
        self.rows[name] = 0

    def _counts(self, value: Any) -> None:
        self._skip_later_tables(None)
        if self.table_index < len(TABLES):
            raise ImportFormatError(
                f"tables: {TABLES[self.table_index]!r} is missing (or 'counts' is early)"
            )
        if not isinstance(value, dict) or value != self.rows:
            raise ImportFormatError(f"'counts' does not match the rows: {self.rows}")

    def _finish(self) -> None:
        for name in _REQUIRED:
            if name not in self.members:
                raise ImportFormatError(f"the export has no {name!r} member")
        if self.inline and "blobs" not in self.members:
            raise ImportFormatError("the export has no 'blobs' member")
        for where, conversation, leaf in self.leaves:
            if self.messages.get(leaf, ("", "", 0, ""))[1] != conversation:
                raise ImportFormatError(f"{where}.active_leaf_id: not a message of it")
        for where, user, runtime, conversation in self.homes + self.pins:
            if self.conversations.get(conversation) != (user, runtime):
                raise ImportFormatError(
                    f"{where}: conversation {conversation} is not in the export under "
                    f"runtime {runtime!r}"
                )
        for conversation, (count, tokens, cost) in self.counters.items():
            got = self.totals.get(conversation, [0, 0, 0.0, -1])
            if (count, tokens) != (got[0], got[1]) or got[3] != count - 1:
                raise ImportFormatError(
                    f"conversation {conversation} counts {count} messages and {tokens} tokens "
                    f"but the export holds {got[0]} and {got[1]} (last seq {got[3]})"
                )
            if not math.isclose(cost, got[2], abs_tol=_COST_TOLERANCE):
                raise ImportFormatError(f"conversation {conversation}: its cost total differs")
        available = self.blobs if self.inline else self.files
        for sha in sorted(self.blob_sizes):
            if sha not in available:
                raise ImportFormatError(f"the attachment bytes {sha} are not in the export")
            if available[sha] != self.blob_sizes[sha]:
                raise ImportFormatError(f"blob {sha}: its size differs from its attachment's")
        if set(available) - set(self.blob_sizes):
            extra = sorted(set(available) - set(self.blob_sizes))[0]
            raise ImportFormatError(f"blob {extra}: no attachment uses it")

    # -- one row ---------------------------------------------------------------------
    def _row(self, table: str, row: Any) -> None:
        index = self.rows[table]
        self.rows[table] = index + 1
        where = f"tables.{table}[{index}]"
        if not isinstance(row, dict):
            raise ImportFormatError(f"{where}: must be an object")
        if row.keys() != _FIELDS[table]:
            missing = sorted(_FIELDS[table] - row.keys())
            if missing:
                raise ImportFormatError(f"{where}: the field {missing[0]!r} is missing")
            unknown = sorted(row.keys() - _FIELDS[table])[0]
            raise ImportFormatError(f"{where}: unknown field {unknown!r}")
        for name, kind, nullable, check in _CHECKS[table]:
            value = row[name]
            if value is None:
                if nullable:
                    continue
                raise ImportFormatError(f"{where}.{name}: must not be null")
            if not _TYPE_OK[kind](value):
                raise ImportFormatError(f"{where}.{name}: must be {_WANTED[kind]}")
            if kind == "str" and "\x00" in value:
                raise ImportFormatError(f"{where}.{name}: holds a NUL character")
            if kind == "int" and not 0 <= value < 2**63:
                raise ImportFormatError(f"{where}.{name}: must be a whole number from 0 to 2^63")
            if check is None:
                continue
            if check == "sha":
                if not _SHA256.fullmatch(value):
                    raise ImportFormatError(f"{where}.{name}: not a sha256 in lower-case hex")
            elif check == "time":
                self._timestamp(value, f"{where}.{name}")
            elif check == "json":
                try:
                    orjson.loads(value)
                except orjson.JSONDecodeError:
                    raise ImportFormatError(f"{where}.{name}: does not hold JSON") from None
            else:
                _check_id_value(check, value, f"{where}.{name}")
        if table == "settings":
            try:
                check_setting_key(row["key"])
            except InvalidInput as error:
                raise ImportFormatError(f"{where}.key: {error.message}") from None
        if "origin" in row and row["origin"] not in _ORIGINS:
            raise ImportFormatError(f"{where}.origin: must be one of {', '.join(_ORIGINS)}")
        user = row["id"] if table == "users" else row["user_id"]
        if self.only_user is not None and user != self.only_user:
            raise ImportFormatError(
                f"{where}: belongs to user {user!r}; only your own data can be imported here",
                hint=f"export only the data of {self.only_user!r}",
            )
        if table != "users" and user not in self.users:
            raise ImportFormatError(f"{where}.user_id: user {user!r} is not in the export")
        if table != "messages":  # message keys live in self.messages
            key = (table, *(row[name] for name in _KEYS[table]))
            if key in self.keys:
                raise ImportFormatError(f"{where}: appears twice in the export")
            self.keys.add(key)
        if table in self.per_table:
            self.per_table[table](row, where)
        if table in _IDENTITY:
            self.identity[table][row["id"]] = tuple(row[c] for c in _IDENTITY[table])

    def _timestamp(self, value: Any, where: str) -> None:
        try:
            if not isinstance(value, str):
                raise ValueError(value)
            from_text(value)
        except ValueError:
            raise ImportFormatError(f"{where}: not an ISO 8601 time") from None

    # -- per table -------------------------------------------------------------------
    def _users(self, row: dict[str, Any], where: str) -> None:
        self.users.add(row["id"])

    def _runtimes(self, row: dict[str, Any], where: str) -> None:
        self.runtimes.add((row["user_id"], row["id"]))
        if row["primary_conversation_id"]:
            home = row["primary_conversation_id"]
            self.homes.append((f"{where}.primary_conversation_id", row["user_id"], row["id"], home))

    def _conversations(self, row: dict[str, Any], where: str) -> None:
        user, runtime = row["user_id"], row["runtime_id"]
        if (user, runtime) not in self.runtimes:
            raise ImportFormatError(f"{where}.runtime_id: runtime {runtime!r} is not in the export")
        if row["state"] not in STATES:
            raise ImportFormatError(f"{where}.state: must be one of {', '.join(STATES)}")
        if len(row["title"]) > MAX_TITLE_LENGTH:
            raise LimitExceeded(f"{where}.title: longer than {MAX_TITLE_LENGTH} characters")
        self.conversations[row["id"]] = (sys.intern(user), sys.intern(runtime))
        self.counters[row["id"]] = (row["message_count"], row["total_tokens"], row["total_cost"])
        if row["active_leaf_id"]:
            self.leaves.append((where, row["id"], row["active_leaf_id"]))

    def _in_conversation(self, row: dict[str, Any], where: str) -> None:
        owner = self.conversations.get(row["conversation_id"])
        if owner is None or owner[0] != row["user_id"]:
            raise ImportFormatError(
                f"{where}.conversation_id: conversation {row['conversation_id']} is not in the "
                "export"
            )

    def _pins(self, row: dict[str, Any], where: str) -> None:
        item = (where, row["user_id"], row["runtime_id"], row["conversation_id"])
        self.pins.append(item)

    def _messages(self, row: dict[str, Any], where: str) -> None:
        self._in_conversation(row, where)
        if row["id"] in self.messages:
            raise ImportFormatError(f"{where}: message {row['id']} appears twice in the export")
        if row["pk"] in self.pks:
            raise ImportFormatError(f"{where}.pk: {row['pk']} appears twice in the export")
        if row["role"] not in ROLES:
            raise ImportFormatError(f"{where}.role: must be one of {', '.join(ROLES)}")
        if row["hidden"] not in (0, 1):
            raise ImportFormatError(f"{where}.hidden: must be 0 or 1")
        parts = orjson.loads(row["content"])
        if not isinstance(parts, list) or not all(
            isinstance(p, dict) and isinstance(p.get("kind"), str) for p in parts
        ):
            raise ImportFormatError(f"{where}.content: must be a JSON list of parts with a kind")
        content = row["content"].encode()
        if len(content) > MAX_MESSAGE_BYTES:  # as every write path keeps it
            raise LimitExceeded(f"{where}.content: larger than {MAX_MESSAGE_BYTES} bytes")
        if len(row["metadata"].encode()) > MAX_JSON_BYTES:
            raise LimitExceeded(f"{where}.metadata: larger than {MAX_JSON_BYTES} bytes")
        if hashlib.sha256(content).hexdigest() != row["content_sha256"]:
            raise ImportFormatError(f"{where}.content_sha256: does not match its content")
        conversation = self.conversations[row["conversation_id"]]
        parent = row["parent_id"]
        if parent is not None:
            known = self.messages.get(parent)
            if known is None or known[1] != row["conversation_id"] or known[2] >= row["seq"]:
                raise ImportFormatError(
                    f"{where}.parent_id: {parent} is not an earlier message of its conversation"
                )
        self.messages[row["id"]] = (
            conversation[0],
            sys.intern(row["conversation_id"]),
            row["seq"],
            row["content_sha256"],
        )
        self.pks[row["pk"]] = conversation[0]
        totals = self.totals.setdefault(row["conversation_id"], [0, 0, 0.0, -1])
        totals[0] += 1
        totals[1] += row["tokens"] or 0
        totals[2] += row["cost"] or 0.0
        totals[3] = max(totals[3], row["seq"])

    def _attachments(self, row: dict[str, Any], where: str) -> None:
        self._in_conversation(row, where)
        message = self.messages.get(row["message_id"])
        if message is None or message[1] != row["conversation_id"]:
            raise ImportFormatError(f"{where}.message_id: not a message of its conversation")
        if row["size"] > MAX_ATTACHMENT_BYTES:
            raise LimitExceeded(f"{where}.size: larger than the attachment limit")
        known = self.blob_sizes.setdefault(row["sha256"], row["size"])
        if known != row["size"]:
            raise ImportFormatError(f"{where}.size: differs for the same sha256")

    def _imports(self, row: dict[str, Any], where: str) -> None:
        if (row["user_id"], row["runtime_id"]) not in self.runtimes:
            raise ImportFormatError(f"{where}.runtime_id: runtime is not in the export")
        stored = row["stored_path"]
        if stored is not None:
            parts = stored.split("/")
            if (
                len(parts) != 3
                or parts[:2] != ["imports", row["id"]]
                or parts[2] in ("", ".", "..")
                or "\\" in parts[2]
                or any(ord(ch) < 32 for ch in parts[2])
            ):
                raise ImportFormatError(f"{where}.stored_path: must be imports/<its id>/<file>")

    def _message_vectors(self, row: dict[str, Any], where: str) -> None:
        if self.pks.get(row["message_pk"]) != row["user_id"]:
            raise ImportFormatError(f"{where}.message_pk: not a message of the export")

    def _api_tokens(self, row: dict[str, Any], where: str) -> None:
        if row["token_sha256"] in self.tokens:
            raise ImportFormatError(f"{where}.token_sha256: appears twice in the export")
        self.tokens[row["token_sha256"]] = row["id"]

    # -- blobs -----------------------------------------------------------------------
    def _blob(self, sha: str, value: Any) -> None:
        where = f"blobs.{sha}"
        if not _SHA256.fullmatch(sha):
            raise ImportFormatError(f"{where}: the key is not a sha256 in lower-case hex")
        if sha in self.blobs:
            raise ImportFormatError(f"{where}: appears twice")
        if not isinstance(value, str):
            raise ImportFormatError(f"{where}: must be a base64 string")
        data = _decode_blob(value, where)
        if hashlib.sha256(data).hexdigest() != sha:
            raise ImportFormatError(f"{where}: its bytes do not hash to its sha256")
        self.blobs[sha] = len(data)

    # -- against the vault -----------------------------------------------------------
    def check_against(self, store: Store) -> None:
        """Rows with ids the vault holds already must be the same rows: a message id
        with other content, or an id of another user, is a conflict."""
        for table, columns in _IDENTITY.items():
            mine = self.identity[table]
            if not mine:
                continue
            for row in store.dump_table(table):
                if table == "api_tokens":
                    owner = self.tokens.get(row["token_sha256"])
                    if owner is not None and owner != row["id"]:
                        raise Conflict(f"the export's token {owner} is already in the vault")
                theirs = mine.get(row["id"])
                if theirs is not None and theirs != tuple(row[c] for c in columns):
                    what = table[:-1].replace("_", " ")
                    differs = "content" if table == "messages" else "owner or contents"
                    raise Conflict(
                        f"{what} {row['id']} is in the vault already with different {differs}",
                        hint="nothing was imported; a stored message is never changed",
                    )


def _is_hex(text: str) -> bool:
    try:
        bytes.fromhex(text)
    except ValueError:
        return False
    return True


def _decode_blob(value: str, where: str) -> bytes:
    if len(value) > (MAX_ATTACHMENT_BYTES // 3 + 1) * 4:
        raise LimitExceeded(f"{where}: larger than the attachment limit")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ImportFormatError(f"{where}: not valid base64") from None


# -- import -------------------------------------------------------------------------------
def _from_json_row(table: str, row: dict[str, Any]) -> dict[str, Any]:
    if table == "message_vectors":
        return {
            k: (bytes.fromhex(v["$bytes"]) if isinstance(v, dict) else v) for k, v in row.items()
        }
    return row


class _Hashing:
    """A reader that hashes what passes: the write pass proves it read the very bytes
    the validation pass checked."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw, self.digest = raw, hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.digest.update(data)
        return data

    def rest(self) -> str:
        """The digest once the rest of the stream is read."""
        while self.read(_CHUNK):
            pass
        return self.digest.hexdigest()


def _table_feed(
    items: Iterator[Item], finish: Callable[[], None]
) -> Iterator[tuple[str, Iterator[dict[str, Any]]]]:
    """The rows of a validated export, table by table, for load_tables / merge_tables;
    ``finish`` runs after the last table, inside their transaction (it may refuse)."""

    def rows(name: str) -> Iterator[dict[str, Any]]:
        for kind, _name, value in items:
            if kind == "end":
                return
            yield _from_json_row(name, value)

    for kind, name, _value in items:
        if kind != "table":
            continue
        table_rows = rows(name)
        yield name, table_rows
        for _ in table_rows:  # whatever the consumer left
            pass
        if name == TABLES[-1]:
            break
    finish()  # also when the export ends before LATER_TABLES


def _fingerprint(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    if path.is_dir():
        for item in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(item.relative_to(path).as_posix().encode() + b"\0")
            with item.open("rb") as handle:
                while chunk := handle.read(_CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
        return digest.hexdigest(), size
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def import_chatkeep_export(
    vault: Vault,
    path: str | os.PathLike[str],
    *,
    user_id: str | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> ChatkeepImportReport:
    """Import a chatkeep export (the ``json`` file, the ``zip``, or its folder).

    The whole export is checked first (nothing is written if anything is wrong); then
    an empty vault is filled with its rows exactly, or a vault with data gets the rows
    it does not hold yet (duplicates found by id; a message id present with other
    content is a :class:`Conflict`), in one transaction, blobs first. With ``user_id``
    every row must belong to that user (an HTTP caller imports only its own data).
    """
    started = utcnow()
    source = Path(path).absolute()
    tick = progress or (lambda _n: None)
    store = vault.store
    export = _open_export(source)
    try:
        inline = export.source is None
        if not inline:
            _verify_manifest(export)
        check = _Validator(only_user=user_id, inline=inline, files=export.blob_sizes)
        with export.open_json() as handle:
            reader = _Hashing(handle)
            check.run(_walk(reader, EXPORT_JSON if not inline else source.name), tick)
            check.digest = reader.rest()
        merge = bool(store.list_users())
        if merge:
            check.check_against(store)
        sha, size = _fingerprint(source)
        added: dict[str, int] = {}
        stored_blobs = 0
        if not dry_run:
            added, stored_blobs = _write(vault, export, check, merge=merge, tick=tick)
        return ChatkeepImportReport(
            path=source,
            mode="merge" if merge else "load",
            dry_run=dry_run,
            exported_at=str(check.members["exported_at"]),
            rows=dict(check.rows),
            added=added,
            blobs=stored_blobs,
            file_size=size,
            file_sha256=sha,
            started_at=started,
            finished_at=utcnow(),
        )
    finally:
        export.close()


def _write(
    vault: Vault, export: _Export, check: _Validator, *, merge: bool, tick: Progress
) -> tuple[dict[str, int], int]:
    blobs = BlobStore(vault.paths.blobs)
    added_paths: list[Path] = []
    try:
        stored = _store_blobs(export, check, blobs, added_paths, tick)
        with export.open_json() as handle:
            reader = _Hashing(handle)

            def same_bytes() -> None:
                if reader.rest() != check.digest:
                    raise ImportFormatError("the export changed on disk while it was imported")

            tables = _table_feed(_walk(reader, EXPORT_JSON), same_bytes)

            def advance(_table: str, n: int) -> None:
                tick(n)

            if merge:
                added = vault.store.merge_tables(tables, progress=advance)
            else:
                added = vault.store.load_tables(tables, progress=advance)
    except BaseException:
        for added_path in added_paths:
            fsutil.remove_file(added_path)
        raise
    return added, stored


def _store_blobs(
    export: _Export, check: _Validator, blobs: BlobStore, added: list[Path], tick: Progress
) -> int:
    """Every blob the export's attachments use, written (durably) before any row;
    returns how many the vault did not hold yet."""
    wanted = set(check.blob_sizes)
    if not wanted:
        return 0

    def put(sha: str, data: bytes | BinaryIO) -> None:
        target = blobs.path_for(sha)
        existed = target.exists()
        got, _size = blobs.put(data)
        if got != sha:  # changed on disk since it was checked
            raise ImportFormatError(f"the attachment bytes {sha} changed while importing")
        if not existed:
            added.append(target)
        tick(1)

    if export.source is not None:
        for sha in sorted(wanted):
            with export.source.open_member(export.blob_members[sha]) as handle:
                put(sha, handle)
    else:
        with export.open_json() as handle:
            for kind, sha, value in _walk(handle, EXPORT_JSON, rows=False):
                if kind == "blob" and sha in wanted:
                    put(sha, _decode_blob(value, f"blobs.{sha}"))
    return len(added)


# -- HTTP helper --------------------------------------------------------------------------
def zip_folder(folder: Path, target: Path) -> None:
    """Write the files under ``folder`` into the new zip ``target`` (a Markdown export
    as one download)."""

    def produce(handle: BinaryIO) -> None:
        with zipfile.ZipFile(handle, "w", allowZip64=True) as archive:
            for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                info = _zip_info(path.relative_to(folder).as_posix(), compress=True)
                fsutil.copy_into_zip(archive, path, info)

    fsutil.atomic_write_with(target, produce)


__all__ = [
    "FORMAT",
    "FORMATS",
    "VERSION",
    "ChatkeepImportReport",
    "ExportReport",
    "Selection",
    "export_vault",
    "import_chatkeep_export",
    "is_chatkeep_export",
    "safe_file_stem",
    "zip_folder",
]
