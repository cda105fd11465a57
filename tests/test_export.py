"""Exporting (chatkeep JSON, zip, Markdown) and importing chatkeep's own export back.

The JSON round trip is compared as a canonical dump on both backends; the zip's manifest
is checked file by file and a tampered zip changes nothing; Markdown file names survive
hostile titles; each selection keeps exactly its conversations, whole; a second export
merges without duplicates and a conflicting message is refused; malformed exports
(Hypothesis) raise only ImportFormatError/InvalidInput and change nothing; the HTTP
export holds the caller's data and nobody else's.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import time
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import chatkeep
from chatkeep import exporting, transfer
from chatkeep.cli import cli
from chatkeep.errors import Conflict, ImportFormatError, InvalidInput, NotFound, UnsafeLocation
from chatkeep.exporting import (
    _COLUMNS,
    MAX_SLUG_CHARS,
    Selection,
    export_vault,
    import_chatkeep_export,
    is_chatkeep_export,
)
from chatkeep.importing import import_export
from chatkeep.model import NewAttachment
from tests.conftest import FIXTURES, postgres_schema_url
from tests.server_helpers import prepare_vault, start_server
from tests.test_transfer import _fill

CHATGPT_FIXTURE = FIXTURES / "chatgpt" / "librechat" / "chatgpt-tree.json"


# -- helpers -----------------------------------------------------------------------------
@contextlib.contextmanager
def empty_vault(path: Path, *, like: chatkeep.Vault | None = None) -> Iterator[chatkeep.Vault]:
    """A new, empty vault on the backend of ``like`` (PostgreSQL: a schema of its own)."""
    if like is not None and os.environ.get("CHATKEEP_DATABASE_URL"):
        url, drop = postgres_schema_url()
        try:
            with chatkeep.open(home=path, create=True, url=url) as vault:
                yield vault
        finally:
            drop()
        return
    with chatkeep.open(home=path, create=True, url="") as vault:
        yield vault


def blob_files(vault: chatkeep.Vault) -> list[Path]:
    return sorted(vault.paths.blobs.glob("??/*"))


def read_json(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_bytes()))


def conversation_ids(export: dict[str, Any]) -> set[str]:
    return {row["id"] for row in export["tables"]["conversations"]}


def at(day: int) -> datetime:
    return datetime(2025, 3, day, 12, 0, tzinfo=UTC)


def small_vault(vault: chatkeep.Vault) -> dict[str, str]:
    """Two users, two runtimes, dated messages, an attachment: ids by name."""
    store = vault.store
    ids: dict[str, str] = {}
    for user in ("alice", "bob"):
        store.add_user(user)
        store.create_runtime(user, "work")
    store.create_runtime("alice", "home")
    ids["work_home"] = store.route("alice", "work").id
    ids["home_home"] = store.route("alice", "home").id
    early = store.create_conversation("alice", "work", title="early", tags=["t1"])
    store.append_message("alice", early.id, chatkeep.user_message("march 1st", created_at=at(1)))
    store.append_message(
        "alice", early.id, chatkeep.assistant_message("an answer", created_at=at(2))
    )
    late = store.create_conversation("alice", "home", title="late")
    store.append_message(
        "alice",
        late.id,
        chatkeep.NewMessage(
            role="user",
            parts=(chatkeep.Part(kind="text", text="march 20th"),),
            created_at=at(20),
            attachments=(NewAttachment(name="a.png", data=b"\x89PNG fake", mime_type="image/png"),),
        ),
    )
    system = store.create_conversation("alice", "work", title="with a system prompt")
    store.append_message(
        "alice",
        system.id,
        chatkeep.NewMessage(
            role="system", parts=(chatkeep.Part(kind="text", text="be brief"),), created_at=at(10)
        ),
    )
    store.append_message("bob", store.route("bob", "work").id, chatkeep.user_message("bob-secret"))
    ids.update(early=early.id, late=late.id, system=system.id)
    return ids


# -- the JSON round trip -------------------------------------------------------------------
def test_json_export_imports_into_an_empty_vault_exactly(
    vault: chatkeep.Vault, tmp_path: Path
) -> None:
    _fill(vault)
    out = tmp_path / "export.json"
    report = export_vault(vault, out, format="json")
    assert report.rows["messages"] > 10 and report.blobs == 1 and report.bytes == out.stat().st_size
    assert is_chatkeep_export(out)
    document = read_json(out)
    assert list(document)[:2] == ["format", "version"]
    assert document["format"] == "chatkeep-export" and document["version"] == 1
    assert document["counts"] == {name: len(rows) for name, rows in document["tables"].items()}
    with empty_vault(tmp_path / "copy", like=vault) as copy:
        imported = import_chatkeep_export(copy, out)
        assert imported.mode == "load" and imported.blobs == 1
        assert imported.added == document["counts"]
        assert transfer.dump_text(copy.store) == transfer.dump_text(vault.store)
        assert copy.doctor() == []
        (attachment,) = copy.store.dump_table("attachments")
        assert copy.store.read_attachment("alice", attachment["id"]) == b"attached notes\x00\xff"
        assert copy.store.search("alice", "lighthouse").hits
        again = import_chatkeep_export(copy, out)  # nothing new: merges nothing
        assert again.mode == "merge" and sum(again.added.values()) == 0 and again.blobs == 0
        assert transfer.dump_text(copy.store) == transfer.dump_text(vault.store)


def test_an_export_from_before_a_later_table_still_imports(tmp_path: Path) -> None:
    """An export written before ``user_keys`` existed (m0009) has no such table; it
    imports all the same, and a table missing from the middle is still refused."""
    with chatkeep.open(home=tmp_path / "a", create=True, url="") as vault:
        _fill(vault)
        out = tmp_path / "export.json"
        export_vault(vault, out, format="json")
        expected = transfer.dump_text(vault.store)
    document = json.loads(out.read_bytes())
    for name in exporting.LATER_TABLES:
        document["tables"].pop(name)
        document["counts"].pop(name)
    older = tmp_path / "older.json"
    older.write_text(json.dumps(document))
    with chatkeep.open(home=tmp_path / "b", create=True, url="") as copy:
        import_chatkeep_export(copy, older)
        assert transfer.dump_text(copy.store) == expected
    document["tables"].pop("pins")
    document["counts"].pop("pins")
    older.write_text(json.dumps(document))
    with chatkeep.open(home=tmp_path / "c", create=True, url="") as copy:
        with pytest.raises(ImportFormatError, match="pins"):
            import_chatkeep_export(copy, older)
        assert transfer.dump_text(copy.store) == ""


def test_the_cli_exports_and_imports_with_json_reports(tmp_path: Path) -> None:
    with chatkeep.open(home=tmp_path / "a", create=True) as source:
        _fill(source)
        expected = transfer.dump_text(source.store)
    runner = CliRunner()
    out = tmp_path / "export.zip"
    done = runner.invoke(
        cli, ["--home", str(tmp_path / "a"), "export", str(out), "--format", "zip", "--json"]
    )
    assert done.exit_code == 0, done.output
    shape = json.loads(done.stdout)
    assert set(shape) == {
        "path",
        "format",
        "rows",
        "conversations",
        "blobs",
        "markdown_files",
        "bytes",
    }
    assert shape["format"] == "zip" and shape["bytes"] == out.stat().st_size
    assert shape["markdown_files"] == shape["conversations"] == shape["rows"]["conversations"]
    assert runner.invoke(cli, ["--home", str(tmp_path / "b"), "init"]).exit_code == 0
    loaded = runner.invoke(cli, ["--home", str(tmp_path / "b"), "import", str(out), "--json"])
    assert loaded.exit_code == 0, loaded.output
    result = json.loads(loaded.stdout)
    assert result["format"] == "chatkeep-export" and result["mode"] == "load"
    assert result["added"] == result["rows"] and result["blobs"] == 1
    with chatkeep.open(home=tmp_path / "b") as copy:
        assert transfer.dump_text(copy.store) == expected
    human = runner.invoke(cli, ["--home", str(tmp_path / "b"), "import", str(out)])
    assert human.exit_code == 0 and "Merged chatkeep export" in human.output
    refused = runner.invoke(cli, ["--home", str(tmp_path / "a"), "export", str(out)])
    assert refused.exit_code == InvalidInput.exit_code and "already exists" in refused.output


def test_exports_refuse_existing_paths_git_trees_and_unknown_formats(tmp_path: Path) -> None:
    with chatkeep.open(home=tmp_path / "v", create=True) as vault:
        small_vault(vault)
        (tmp_path / "taken").write_text("mine")
        with pytest.raises(InvalidInput, match="already exists"):
            export_vault(vault, tmp_path / "taken")
        (tmp_path / "repo" / ".git").mkdir(parents=True)
        with pytest.raises(UnsafeLocation):
            export_vault(vault, tmp_path / "repo" / "out.json")
        with pytest.raises(InvalidInput, match="unknown export format"):
            export_vault(vault, tmp_path / "x", format="csv")  # type: ignore[arg-type]
        with pytest.raises(NotFound):
            export_vault(vault, tmp_path / "y.json", selection=Selection(users=("carol",)))
        assert sorted(p.name for p in tmp_path.iterdir()) == ["repo", "taken", "v"]


# -- the zip -------------------------------------------------------------------------------
def test_the_zip_manifest_lists_every_file_and_the_zip_imports_exactly(tmp_path: Path) -> None:
    with chatkeep.open(home=tmp_path / "a", create=True) as source:
        _fill(source)
        out = tmp_path / "export.zip"
        report = export_vault(source, out, format="zip")
        with zipfile.ZipFile(out) as archive:
            manifest = json.loads(archive.read("manifest.json"))
            names = set(archive.namelist()) - {"manifest.json"}
            assert set(manifest["files"]) == names
            for name, entry in manifest["files"].items():
                data = archive.read(name)
                assert entry == {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
            document = json.loads(archive.read("export.json"))
        assert "blobs" not in document and document["blobs_stored"] == "files"
        blobs = [n for n in names if n.startswith("blobs/")]
        markdown = [n for n in names if n.startswith("markdown/")]
        assert len(blobs) == report.blobs == 1 and blobs[0].split("/")[2] == blobs[0][-64:]
        assert len(markdown) == report.markdown_files == len(document["tables"]["conversations"])
        with chatkeep.open(home=tmp_path / "b", create=True) as copy:
            import_chatkeep_export(copy, out)
            assert transfer.dump_text(copy.store) == transfer.dump_text(source.store)
            assert copy.doctor() == []


def _rewrite_zip(source: Path, target: Path, change: dict[str, bytes | None]) -> None:
    """A copy of the zip with members replaced (bytes), removed (None) or added."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            if info.filename in change:
                replacement = change[info.filename]
                if replacement is not None:
                    new.writestr(info.filename, replacement)
                continue
            new.writestr(info, old.read(info.filename))
        for name, data in change.items():
            if name not in old.namelist() and data is not None:
                new.writestr(name, data)


def test_a_tampered_zip_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    with chatkeep.open(home=tmp_path / "a", create=True) as source:
        small_vault(source)
        out = tmp_path / "export.zip"
        export_vault(source, out, format="zip")
    with zipfile.ZipFile(out) as archive:
        blob = next(n for n in archive.namelist() if n.startswith("blobs/"))
        manifest = json.loads(archive.read("manifest.json"))
        document = archive.read("export.json")
    lying = dict(manifest, files={**manifest["files"]})
    lying["files"][blob] = {
        "sha256": hashlib.sha256(b"other bytes").hexdigest(),
        "size": len(b"other bytes"),
    }
    edited = document.replace(b"march 1st", b"march 2nd")
    cases: dict[str, dict[str, bytes | None]] = {
        "blob bytes": {blob: b"other bytes"},
        "blob and manifest": {blob: b"other bytes", "manifest.json": json.dumps(lying).encode()},
        "export.json": {"export.json": edited},
        "extra file": {"markdown/extra.md": b"# not listed"},
        "missing blob": {blob: None},
        "no manifest": {"manifest.json": None},
    }
    with chatkeep.open(home=tmp_path / "b", create=True) as target:
        target.store.add_user("carol")
        before = transfer.dump_text(target.store)
        for label, change in cases.items():
            tampered = tmp_path / f"{label}.zip"
            _rewrite_zip(out, tampered, change)
            with pytest.raises(ImportFormatError):
                import_chatkeep_export(target, tampered)
            assert transfer.dump_text(target.store) == before, label
            assert blob_files(target) == [], label


def test_an_export_changed_after_its_check_is_refused_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with chatkeep.open(home=tmp_path / "a", create=True) as source:
        small_vault(source)
        out = tmp_path / "export.json"
        export_vault(source, out)
    real = exporting._fingerprint

    def swap_then_fingerprint(path: Path) -> tuple[str, int]:  # between check and write
        path.write_bytes(path.read_bytes().replace(b"march 1st", b"march 9th"))
        return real(path)

    monkeypatch.setattr(exporting, "_fingerprint", swap_then_fingerprint)
    with chatkeep.open(home=tmp_path / "b", create=True) as target:
        with pytest.raises(ImportFormatError, match="changed on disk"):
            import_chatkeep_export(target, out)
        assert target.store.list_users() == [] and blob_files(target) == []


# -- Markdown ------------------------------------------------------------------------------
HOSTILE_TITLES = [
    "../../etc/passwd",
    "/absolute/path",
    "a\\b\\..\\c",
    "\x1b[31mred\x1b[0m and \x7f del",
    "..",
    ".hidden",
    "",
    "   ",
    "CON",
    "x" * 900,
    "名前 with  spaces / and: colons?",
    '<script>alert("x")</script>',
    "---\ntitle: injected\n---",
]


def _front_matter(text: str) -> dict[str, Any]:
    assert text.startswith("---\n")
    block = text[4 : text.index("\n---\n", 4)]
    return dict(yaml.safe_load(block))


def test_markdown_one_file_per_conversation_with_parseable_front_matter(tmp_path: Path) -> None:
    with chatkeep.open(home=tmp_path / "v", create=True) as vault:
        ids = small_vault(vault)
        store = vault.store
        hostile = {}
        for title in HOSTILE_TITLES:
            conversation = store.create_conversation("alice", "work", title=title)
            store.append_message("alice", conversation.id, chatkeep.user_message(f"in {title!r}"))
            hostile[conversation.id] = store.get_conversation("alice", conversation.id).title
        out = tmp_path / "notes"
        report = export_vault(vault, out, format="markdown", all_branches=True)
        every = list(store.dump_table("conversations"))
    files = sorted(p for p in out.rglob("*.md"))
    assert len(files) == len(every) == report.markdown_files
    seen: dict[str, dict[str, Any]] = {}
    for path in files:
        resolved = path.resolve()
        assert resolved.is_relative_to(out.resolve())
        relative = path.relative_to(out)
        assert len(relative.parts) == 3  # user/runtime/file
        assert len(path.name.encode()) <= 255 and not path.name.startswith(".")
        stem = path.name.removesuffix(".md").rsplit("-", 1)[0]
        assert len(stem) <= MAX_SLUG_CHARS
        assert all(ch.isalnum() or ch in "._-" for ch in stem), path.name
        front = _front_matter(path.read_text())
        assert set(front) >= {"id", "title", "runtime", "state", "created", "updated", "tags"}
        assert path.name.endswith(f"-{front['id']}.md")
        assert relative.parts[:2] == (front["user"], front["runtime"])
        seen[front["id"]] = front
    assert set(seen) == {row["id"] for row in every}
    for conversation_id, title in hostile.items():
        assert seen[conversation_id]["title"] == title
    assert seen[ids["early"]]["tags"] == ["t1"] and seen[ids["early"]]["source"] is None
    late = next(p for p in files if ids["late"] in p.name).read_text()
    assert "![a.png](../../attachments/" in late
    link = late.split("![a.png](")[1].split(")")[0]
    assert (next(p for p in files if ids["late"] in p.name).parent / link).read_bytes() == (
        b"\x89PNG fake"
    )
    assert "bob-secret" in "".join(p.read_text() for p in out.glob("bob/*/*.md"))


# -- selections ----------------------------------------------------------------------------
def _select(vault: chatkeep.Vault, tmp_path: Path, name: str, **options: Any) -> dict[str, Any]:
    out = tmp_path / f"{name}.json"
    export_vault(vault, out, selection=Selection(**options))
    document = read_json(out)
    with chatkeep.open(home=tmp_path / f"check-{name}", create=True) as check:
        import_chatkeep_export(check, out)  # every selection imports into a valid vault
        assert check.doctor() == [], name
    return document


def test_selections_keep_whole_matching_conversations(tmp_path: Path) -> None:
    with chatkeep.open(home=tmp_path / "v", create=True) as vault:
        ids = small_vault(vault)
        bob = {
            row["id"] for row in vault.store.dump_table("conversations") if row["user_id"] == "bob"
        }
        alice = {
            row["id"]
            for row in vault.store.dump_table("conversations")
            if row["user_id"] == "alice"
        }
        imported: set[str] = set()
        if CHATGPT_FIXTURE.is_file():
            import_export(vault, "alice", CHATGPT_FIXTURE)
            rows = list(vault.store.dump_table("conversations"))
            imported = {row["id"] for row in rows if row["source_platform"] == "chatgpt"}
            alice = {row["id"] for row in rows if row["user_id"] == "alice"}
        vault.store.set_setting("alice", "ui.theme", "dark")

        by_user = _select(vault, tmp_path, "user", users=("bob",))
        assert conversation_ids(by_user) == bob
        assert {r["id"] for r in by_user["tables"]["users"]} == {"bob"}
        assert "bob-secret" in json.dumps(by_user)

        whole_alice = _select(vault, tmp_path, "alice", users=("alice",))
        assert conversation_ids(whole_alice) == alice
        assert whole_alice["tables"]["settings"] and "bob-secret" not in json.dumps(whole_alice)

        by_runtime = _select(vault, tmp_path, "runtime", users=("alice",), runtimes=("home",))
        assert conversation_ids(by_runtime) == {ids["home_home"], ids["late"]}
        assert by_runtime["tables"]["settings"] == []  # narrowed: no whole-user rows
        assert len(by_runtime["tables"]["attachments"]) == 1 and "blobs" in by_runtime

        by_conversation = _select(vault, tmp_path, "conversation", conversations=(ids["early"],))
        assert conversation_ids(by_conversation) == {ids["early"], ids["work_home"]}  # + home
        early = [
            m for m in by_conversation["tables"]["messages"] if m["conversation_id"] == ids["early"]
        ]
        assert len(early) == 2  # whole, though one message would match
        assert by_conversation["tables"]["conversation_tags"] == [
            {"conversation_id": ids["early"], "user_id": "alice", "tag": "t1"}
        ]

        by_dates = _select(vault, tmp_path, "dates", since=at(1), until=at(2))
        assert conversation_ids(by_dates) == {ids["early"], ids["work_home"]}
        later = _select(vault, tmp_path, "later", since=at(15), users=("alice",))
        assert ids["late"] in conversation_ids(later)
        assert ids["early"] not in conversation_ids(later)

        by_role = _select(vault, tmp_path, "role", role="system", runtimes=("work",))
        assert conversation_ids(by_role) == {ids["system"], ids["work_home"]}
        system = [m for m in by_role["tables"]["messages"] if m["conversation_id"] == ids["system"]]
        assert [m["role"] for m in system] == ["system"]

        if imported:
            by_platform = _select(vault, tmp_path, "platform", platform="chatgpt")
            chosen = conversation_ids(by_platform)
            assert imported <= chosen
            assert all(
                row["source_platform"] == "chatgpt" or row["title"].startswith("chat_with_")
                for row in by_platform["tables"]["conversations"]
            )
            assert len(by_platform["tables"]["imports"]) == 1

        with pytest.raises(NotFound):  # another user's conversation is just missing
            export_vault(
                vault,
                tmp_path / "nope.json",
                selection=Selection(users=("alice",), conversations=(next(iter(bob)),)),
            )
        assert not (tmp_path / "nope.json").exists()


# -- incremental imports ---------------------------------------------------------------------
def test_a_later_export_merges_without_duplicates(tmp_path: Path) -> None:
    with (
        chatkeep.open(home=tmp_path / "a", create=True) as source,
        chatkeep.open(home=tmp_path / "b", create=True) as target,
    ):
        ids = small_vault(source)
        first = tmp_path / "first.json"
        export_vault(source, first)
        store = source.store
        store.append_message("alice", ids["early"], chatkeep.user_message("a follow-up"))
        store.append_message(
            "alice",
            ids["late"],
            chatkeep.user_message(
                "with a file", attachments=(NewAttachment(name="b.txt", data=b"second file"),)
            ),
        )
        newer = store.create_conversation("alice", "work", title="newer")
        store.append_message("alice", newer.id, chatkeep.user_message("brand new"))
        second = tmp_path / "second.zip"
        export_vault(source, second, format="zip")

        assert import_chatkeep_export(target, first).mode == "load"
        merged = import_chatkeep_export(target, second)
        assert merged.mode == "merge"
        assert merged.added["messages"] == 3 and merged.added["conversations"] == 1
        assert merged.blobs == 1
        assert sum(import_chatkeep_export(target, second).added.values()) == 0
        for table in ("users", "runtimes", "conversations", "messages", "attachments"):
            mine = sorted(r.get("id", "") for r in target.store.dump_table(table))
            theirs = sorted(r.get("id", "") for r in store.dump_table(table))
            assert mine == theirs, table
        counts = {r["id"]: r["message_count"] for r in target.store.dump_table("conversations")}
        assert counts == {r["id"]: r["message_count"] for r in store.dump_table("conversations")}
        assert [
            m.text for m in target.store.list_messages("alice", ids["early"], all_branches=True)
        ] == [
            "march 1st",
            "an answer",
            "a follow-up",
        ]
        assert target.doctor() == []

        # The same message id with other content: a conflict, and nothing changes.
        document = read_json(first)
        message = next(
            m for m in document["tables"]["messages"] if m["conversation_id"] == ids["early"]
        )
        content = json.dumps([{"kind": "text", "text": "rewritten history"}])
        message["content"] = content
        message["content_sha256"] = hashlib.sha256(content.encode()).hexdigest()
        forged = tmp_path / "forged.json"
        forged.write_text(json.dumps(document))
        before = transfer.dump_text(target.store)
        with pytest.raises(Conflict, match=message["id"]):
            import_chatkeep_export(target, forged)
        assert transfer.dump_text(target.store) == before


def test_the_library_import_path_takes_only_the_users_own_export(tmp_path: Path) -> None:
    with chatkeep.open(home=tmp_path / "v", create=True) as vault:
        small_vault(vault)
        mine, everyone = tmp_path / "alice.json", tmp_path / "all.json"
        export_vault(vault, mine, selection=Selection(users=("alice",)))
        export_vault(vault, everyone)
        with chatkeep.open(home=tmp_path / "w", create=True) as other:
            other.store.add_user("alice")
            result = import_export(other, "alice", mine)
            assert result.record.platform == "chatkeep"
            assert result.record.counts["messages_added"] == 4
            before = transfer.dump_text(other.store)
            with pytest.raises(ImportFormatError, match="only your own data"):
                import_export(other, "alice", everyone)
            assert transfer.dump_text(other.store) == before


# -- malformed exports (Hypothesis) --------------------------------------------------------------
@pytest.fixture(scope="module")
def valid_export(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("valid-export")
    with chatkeep.open(home=home / "v", create=True, url="") as vault:
        small_vault(vault)
        export_vault(vault, home / "export.json")
    return read_json(home / "export.json")


WRONG_VALUES = st.one_of(
    st.just([]), st.just({}), st.just({"$bytes": "zz"}), st.booleans(), st.just([1, "x"])
)
VALUES_NOT_A = {
    "str": st.one_of(st.integers(), st.floats(allow_nan=False), WRONG_VALUES),
    "int": st.one_of(st.text(max_size=5), st.floats(allow_nan=False), WRONG_VALUES),
    "float": st.one_of(st.text(max_size=5), WRONG_VALUES),
}


@st.composite
def broken_exports(draw: st.DrawFn, base: dict[str, Any]) -> bytes:
    document = json.loads(json.dumps(base))
    tables = [name for name, rows in document["tables"].items() if rows]
    how = draw(
        st.sampled_from(
            ["drop member", "drop field", "wrong type", "version", "truncate", "unknown", "format"]
        )
    )
    if how == "drop member":
        del document[
            draw(st.sampled_from(["format", "version", "tables", "counts", "exported_at", "blobs"]))
        ]
    elif how in ("drop field", "wrong type", "unknown"):
        table = draw(st.sampled_from(tables))
        row = draw(st.sampled_from(document["tables"][table]))
        field = draw(st.sampled_from(sorted(row)))
        if how == "drop field":
            del row[field]
        elif how == "unknown":
            row[field + "_extra"] = draw(st.text(max_size=3))
        else:
            kind = _COLUMNS[table][field][0]
            if kind == "bytes":
                row[field] = draw(st.one_of(st.text(max_size=4), WRONG_VALUES))
            else:
                row[field] = draw(VALUES_NOT_A[kind])
    elif how == "version":
        document["version"] = draw(
            st.one_of(
                st.integers(max_value=0),
                st.integers(min_value=2),
                st.text(),
                st.floats(),
                st.none(),
            )
        )
    elif how == "format":
        document["format"] = draw(st.text(max_size=20).filter(lambda t: t != "chatkeep-export"))
    data = json.dumps(document).encode()
    if how == "truncate":
        data = data[: draw(st.integers(min_value=0, max_value=len(data) - 2))]
    return data


@settings(max_examples=120)
@given(data=st.data())
def test_malformed_exports_raise_only_format_errors_and_change_nothing(
    valid_export: dict[str, Any], tmp_path: Path, data: st.DataObject
) -> None:
    broken = data.draw(broken_exports(valid_export))
    path = tmp_path / "broken.json"
    path.write_bytes(broken)
    target_home = tmp_path / "target"
    with chatkeep.open(home=target_home, create=True, url="") as target:
        with pytest.raises(InvalidInput) as raised:  # ImportFormatError is one
            import_chatkeep_export(target, path)
        assert isinstance(raised.value, (ImportFormatError, InvalidInput))
        assert target.store.list_users() == []
        assert blob_files(target) == []


def test_versions_and_garbage_get_clear_errors(
    valid_export: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / "e.json"
    with chatkeep.open(home=tmp_path / "t", create=True, url="") as target:
        newer = dict(valid_export, version=2)
        path.write_text(json.dumps(newer))
        with pytest.raises(ImportFormatError, match="newer") as raised:
            import_chatkeep_export(target, path)
        assert raised.value.hint and "newer chatkeep" in raised.value.hint
        missing = json.loads(json.dumps(valid_export))
        del missing["tables"]["messages"][0]["content_sha256"]
        path.write_text(json.dumps(missing))
        with pytest.raises(ImportFormatError, match=r"tables\.messages\[0\].*content_sha256"):
            import_chatkeep_export(target, path)
        path.write_bytes(b"\x00\xff not json")
        with pytest.raises(ImportFormatError):
            import_chatkeep_export(target, path)
        assert not is_chatkeep_export(path)
        assert target.store.list_users() == []


# -- HTTP ------------------------------------------------------------------------------------
def _import_job(client: Any, filename: str, body: bytes) -> dict[str, Any]:
    started = client.post("/api/imports", params={"filename": filename}, content=body)
    assert started.status_code == 202, started.text
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = client.get(f"/api/imports/jobs/{started.json()['id']}").json()
        if job["state"] in ("done", "failed"):
            return dict(job)
        time.sleep(0.1)
    raise AssertionError("the import job did not finish")


def test_the_api_export_holds_only_the_callers_data(tmp_path: Path, servers: list[object]) -> None:
    home = tmp_path / "served"
    secrets = prepare_vault(home, "alice", "bob")
    with chatkeep.open(home=home) as vault:
        store = vault.store
        mine = store.create_conversation("alice", "synth-001", title="mine")
        store.append_message(
            "alice",
            mine.id,
            chatkeep.user_message(
                "alice-note", attachments=(NewAttachment(name="n.txt", data=b"A"),)
            ),
        )
        theirs = store.create_conversation("bob", "synth-001", title="bob-secret-title")
        store.append_message(
            "bob",
            theirs.id,
            chatkeep.user_message(
                "bob-secret", attachments=(NewAttachment(name="s.txt", data=b"B"),)
            ),
        )
        store.set_setting("bob", "ui.theme", "bob-secret-setting")
        export_vault(vault, tmp_path / "everyone.json")
        bob_before = transfer.dump_text(store)
    served = start_server(home)
    servers.append(served)
    with served.client(secrets["alice"]) as alice:
        response = alice.get("/api/export", params={"format": "json"})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/json")
        assert "attachment" in response.headers["content-disposition"]
        assert b"bob" not in response.content  # not a row, not a byte of bob's
        document = json.loads(response.content)
        for name, rows in document["tables"].items():
            for row in rows:
                owner = row["id"] if name == "users" else row["user_id"]
                assert owner == "alice", (name, row)
        assert document["selection"]["users"] == ["alice"]
        assert list(document["blobs"].values()) == ["QQ=="]  # b"A", not bob's b"B"

        archive = alice.get("/api/export", params={"format": "zip"})
        assert archive.status_code == 200 and archive.headers["content-type"] == "application/zip"
        with zipfile.ZipFile(io.BytesIO(archive.content)) as opened:
            text = b"".join(opened.read(n) for n in opened.namelist())
            assert b"bob-secret" not in text and b"alice-note" in text
            assert not any("/bob/" in n for n in opened.namelist())

        notes = alice.get("/api/export", params={"format": "markdown", "runtime": "synth-001"})
        assert notes.status_code == 200
        with zipfile.ZipFile(io.BytesIO(notes.content)) as opened:
            names = opened.namelist()
            assert names and all(n.startswith("alice/") for n in names if n.endswith(".md"))
            assert b"bob-secret" not in b"".join(opened.read(n) for n in names)

        other = alice.get("/api/export", params={"conversation": theirs.id})
        assert other.status_code == 404 and other.json()["error"]["code"] == "not_found"
        assert alice.get("/api/export", params={"format": "csv"}).status_code in (400, 422)

        # Uploaded back for import: her own export merges (nothing new); one holding
        # another user's rows is refused whole.
        own = _import_job(alice, "mine.json", response.content)
        assert own["state"] == "done", own
        assert own["result"]["platform"] == "chatkeep" and own["result"]["counts"] == {}
        everyone = _import_job(alice, "all.json", (tmp_path / "everyone.json").read_bytes())
        assert everyone["state"] == "failed"
        assert everyone["error"]["code"] == "import_format"
        assert "only your own data" in everyone["error"]["message"]
    deadline = time.monotonic() + 10  # the temp file goes once the response is sent
    while list((home / "default" / "uploads").glob("*/*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not list((home / "default" / "uploads").glob("*/*")), "export spool left behind"
    with chatkeep.open(home=home) as vault:
        assert transfer.dump_text(vault.store) == bob_before
    exported = tmp_path / "alice.json"
    exported.write_bytes(response.content)
    with chatkeep.open(home=tmp_path / "elsewhere", create=True) as elsewhere:
        import_chatkeep_export(elsewhere, exported)
        assert [u.id for u in elsewhere.store.list_users()] == ["alice"]
        assert elsewhere.doctor() == []
