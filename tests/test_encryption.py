"""Encryption at rest: an encrypted user's content is only ciphertext in the vault's
files, round-trips exactly while unlocked, and is gone for good once the key is
destroyed (crypto-shredding). Every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import chatkeep
from chatkeep import transfer
from chatkeep.cli import cli
from chatkeep.crypto import ScryptParams
from chatkeep.encryption import EncryptedStore, KeyFile, Passphrase
from chatkeep.errors import (
    ChatkeepError,
    Conflict,
    InvalidInput,
    KeyDestroyed,
    KeyRequired,
    Locked,
    StorageError,
    WrongKey,
)
from chatkeep.importing import import_export
from chatkeep.lifecycle import delete_account
from chatkeep.model import NewAttachment, NewMessage, Part
from chatkeep.store import Store

#: Cheap scrypt for tests only, passed explicitly; the default stays at full cost.
FAST = ScryptParams(n=2**10, r=8, p=1)
PASSPHRASE = "correct horse battery staple"
MARKERS = {
    "text": "zanzibarquokka",
    "code": "mandolinfjord",
    "tool": "obsidianwalrus",
    "reasoning": "periwinklesextant",
    "attachment": "SECRETBLOB-quasar-91",
    "draft": "draftyhedgehog",
    "snapshot": "snapshotpelican",
    "event": "eventnarwhal",
}


@pytest.fixture
def vault(backend: str, tmp_path: Path) -> Iterator[chatkeep.Vault]:
    """A vault on the parametrised backend (the ``backend`` fixture points
    CHATKEEP_DATABASE_URL at a fresh PostgreSQL schema)."""
    with chatkeep.open(home=tmp_path / "home", create=True) as opened:
        yield opened


def _reopen(vault: chatkeep.Vault) -> chatkeep.Vault:
    """The same vault in a fresh "process": nothing unlocked."""
    return chatkeep.open(home=vault.root.parent)


def _encrypted_alice(vault: chatkeep.Vault) -> str:
    vault.store.add_user("alice")
    vault.store.create_runtime("alice", "synth")
    vault.init_key("alice", passphrase=PASSPHRASE, kdf=FAST)
    return vault.store.route("alice", "synth").id


def _secret_message() -> NewMessage:
    return NewMessage(
        role="assistant",
        parts=(
            Part(kind="text", text=f"the {MARKERS['text']} plan"),
            Part(kind="code", text=f"print('{MARKERS['code']}')", data={"language": "python"}),
            Part(kind="tool_call", data={"name": "lookup", "arguments": {"q": MARKERS["tool"]}}),
            Part(kind="reasoning", text=f"thinking of {MARKERS['reasoning']}"),
        ),
        attachments=(NewAttachment(name="notes.bin", data=MARKERS["attachment"].encode() * 50),),
    )


def _store_secrets(vault: chatkeep.Vault, conversation: str) -> tuple[str, str]:
    store = vault.store
    message = store.append_message("alice", conversation, _secret_message())
    store.put_draft("alice", conversation, f"unsent {MARKERS['draft']}")
    store.save_snapshot("alice", "ui", {"scroll": MARKERS["snapshot"]})
    store.record_event("alice", conversation, "stream_chunk", {"text": MARKERS["event"]})
    return message.id, message.attachments[0].id


def _content(message: chatkeep.Message) -> tuple[Part, ...]:
    """A message's parts without the references the store adds for its attachments."""
    return tuple(p for p in message.parts if "attachment_id" not in p.data)


def _files_containing(root: Path, needle: bytes) -> list[str]:
    return [
        str(path.relative_to(root))
        for path in sorted(root.rglob("*"))
        if path.is_file() and needle in path.read_bytes()
    ]


def _database_text(store: Store) -> str:
    """Every row of every table, as text: on PostgreSQL the database is not under the
    vault root, so its rows are scanned this way (SQLite's are scanned both ways)."""
    return transfer.dump_text(store)


def _scanned_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


# -- while the key exists ---------------------------------------------------------------
def test_the_files_hold_only_ciphertext_of_encrypted_content(vault: chatkeep.Vault) -> None:
    home = _encrypted_alice(vault)
    message_id, attachment_id = _store_secrets(vault, home)
    vault.store.compact()
    files = _scanned_files(vault.root)
    assert any(name.startswith("blobs/") for name in files)
    if "CHATKEEP_DATABASE_URL" not in os.environ:
        assert any(name.endswith(".db") or ".db-" in name or "sqlite" in name for name in files)
    dump = _database_text(vault.store)
    for what, marker in MARKERS.items():
        assert _files_containing(vault.root, marker.encode()) == [], what
        assert marker not in dump, what
    # What is stored is ciphertext, in the shapes the guide describes.
    (row,) = vault.store.dump_table("messages")
    assert json.loads(row["content"])[0]["kind"] == "encrypted"
    blob = vault.store.read_attachment("alice", attachment_id)
    assert blob == MARKERS["attachment"].encode() * 50
    raw = vault.store.inner.read_attachment("alice", attachment_id)  # type: ignore[attr-defined]
    assert raw.startswith(b"CKE1") and MARKERS["attachment"].encode() not in raw
    # ... and it reads back whole while unlocked.
    assert _content(vault.store.get_message("alice", message_id)) == _secret_message().parts


def test_encrypted_text_is_not_searchable_but_titles_are(vault: chatkeep.Vault) -> None:
    home = _encrypted_alice(vault)
    _store_secrets(vault, home)
    titled = vault.store.create_conversation("alice", "synth", title="Lighthouse budget")
    vault.store.append_message("alice", titled.id, chatkeep.user_message("zanzibarquokka again"))
    assert vault.store.search("alice", MARKERS["text"]).hits == ()
    assert vault.store.search("alice", "lighthouse").hits != ()
    assert vault.store.rebuild_search_index() >= 2
    assert vault.store.search("alice", MARKERS["text"]).hits == ()


parts_strategy = st.lists(
    st.builds(
        Part,
        kind=st.sampled_from(["text", "code", "reasoning", "tool_call", "custom.kind"]),
        text=st.none() | st.text(st.characters(exclude_categories=("Cs",)), max_size=200),
        data=st.dictionaries(
            st.text(st.characters(exclude_categories=("Cs",)), max_size=10),
            st.none()
            | st.booleans()
            | st.integers(-(2**63), 2**63 - 1)
            | st.text(st.characters(exclude_categories=("Cs",)), max_size=30),
            max_size=3,
        ),
    ),
    min_size=0,
    max_size=4,
)


def test_encrypted_content_round_trips_exactly(vault: chatkeep.Vault) -> None:
    home = _encrypted_alice(vault)

    @settings(max_examples=40)
    @given(
        parts=parts_strategy,
        blobs=st.lists(st.binary(max_size=2048), min_size=0, max_size=2),
        draft=st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00")),
        role=st.sampled_from(["user", "assistant", "system", "tool"]),
    )
    def round_trip(parts: list[Part], blobs: list[bytes], draft: str, role: str) -> None:
        new = NewMessage(
            role=role,
            parts=tuple(parts) or (Part(kind="text", text=""),),
            attachments=tuple(NewAttachment(name=f"f{i}", data=b) for i, b in enumerate(blobs)),
        )
        stored = vault.store.append_message("alice", home, new)
        fresh = vault.store.get_message("alice", stored.id)
        given_parts = new.parts
        assert fresh.parts[: len(given_parts)] == given_parts == stored.parts[: len(given_parts)]
        assert fresh.content_sha256 == stored.content_sha256
        assert [p.kind for p in fresh.parts[len(given_parts) :]] == ["file"] * len(blobs)
        listed = vault.store.list_messages("alice", home)[-1]
        assert listed.parts == fresh.parts
        for attachment, data in zip(fresh.attachments, blobs, strict=True):
            assert vault.store.read_attachment("alice", attachment.id) == data
        assert vault.store.put_draft("alice", home, draft).text == draft
        got = vault.store.get_draft("alice", home)
        assert (got.text if got else "") == draft

    round_trip()


def test_other_sealed_values_round_trip(vault: chatkeep.Vault) -> None:
    home = _encrypted_alice(vault)
    state = {"nested": [1, 2.5, None, "ü"], "flag": True}
    saved = vault.store.save_snapshot("alice", "s", state, starred=True)
    assert saved.state == state
    assert vault.store.get_snapshot("alice", saved.id).state == state
    assert [s.state for s in vault.store.list_snapshots("alice")] == [state]
    assert vault.store.star_snapshot("alice", saved.id, False).state == state
    vault.store.record_event("alice", home, "typing", None)
    vault.store.record_event("alice", home, "chunk", {"t": "x"})
    assert [(e.kind, e.data) for e in vault.store.replay("alice", home)] == [
        ("typing", None),
        ("chunk", {"t": "x"}),
    ]


def test_a_fork_of_an_encrypted_conversation_reads_back(vault: chatkeep.Vault) -> None:
    home = _encrypted_alice(vault)
    first = vault.store.append_message("alice", home, chatkeep.user_message("one"))
    vault.store.append_message("alice", home, chatkeep.assistant_message("two"))
    fork = vault.store.fork_conversation("alice", home, first.id)
    assert [m.text for m in vault.store.list_messages("alice", fork.id)] == ["one"]


# -- locked ------------------------------------------------------------------------------
def test_a_locked_user_gets_a_clear_error_and_unlocks(vault: chatkeep.Vault) -> None:
    home = _encrypted_alice(vault)
    message_id, attachment_id = _store_secrets(vault, home)
    vault.store.add_user("bob")
    vault.store.create_runtime("bob", "synth")
    with _reopen(vault) as other:
        assert other.key_status("alice").unlocked is False
        # What is in clear needs no key.
        assert other.store.get_conversation("alice", home).message_count == 1
        for read in (
            lambda: other.store.list_messages("alice", home),
            lambda: other.store.get_message("alice", message_id),
            lambda: other.store.read_attachment("alice", attachment_id),
            lambda: other.store.get_draft("alice", home),
            lambda: other.store.append_message("alice", home, chatkeep.user_message("x")),
        ):
            with pytest.raises(Locked) as refused:
                read()
            assert refused.value.code == "locked" and refused.value.exit_code == 12
            assert "alice" in refused.value.message and refused.value.hint
        # A user without a key is not affected.
        bob_home = other.store.route("bob", "synth").id
        other.store.append_message("bob", bob_home, chatkeep.user_message("plain"))
        assert other.store.list_messages("bob", bob_home)[0].text == "plain"
        with pytest.raises(WrongKey):
            other.unlock("alice", passphrase="not it")
        with pytest.raises(WrongKey):
            other.unlock("alice", key=b"k" * 32)
        assert other.unlock("alice", passphrase=PASSPHRASE).unlocked
        assert _content(other.store.get_message("alice", message_id)) == _secret_message().parts
        other.lock("alice")
        with pytest.raises(Locked):
            other.store.get_message("alice", message_id)


def test_a_provider_unlocks_on_demand(vault: chatkeep.Vault) -> None:
    home = _encrypted_alice(vault)
    message_id, _ = _store_secrets(vault, home)
    asked: list[str] = []
    with _reopen(vault) as other:

        def provide(key: Any) -> Passphrase:
            asked.append(key.user_id)
            return Passphrase(PASSPHRASE)

        other.keys.provider = provide
        assert other.store.get_message("alice", message_id).text.startswith("the ")
        other.store.get_message("alice", message_id)
        assert asked == ["alice"]


def test_a_key_file_and_changing_the_secret(vault: chatkeep.Vault, tmp_path: Path) -> None:
    home = _encrypted_alice(vault)
    message = vault.store.append_message("alice", home, chatkeep.user_message("kept"))
    secret = b"\x01" * 32
    vault.change_key("alice", Passphrase(PASSPHRASE), KeyFile(secret))
    key_path = tmp_path / "alice.key"
    key_path.write_bytes(secret)
    with _reopen(vault) as other:
        with pytest.raises(WrongKey, match="key file, not a passphrase"):
            other.unlock("alice", passphrase=PASSPHRASE)
        assert other.unlock("alice", key_file=key_path).method == "key_file"
        assert other.store.get_message("alice", message.id).text == "kept"
        other.change_key("alice", KeyFile(secret), Passphrase("second words"), kdf=FAST)
    with _reopen(vault) as other:
        with pytest.raises(WrongKey):
            other.unlock("alice", key=secret)
        other.unlock("alice", passphrase="second words")
        assert other.store.get_message("alice", message.id).text == "kept"


def test_associated_data_binds_ciphertext_to_its_place(vault: chatkeep.Vault) -> None:
    home = _encrypted_alice(vault)
    stored = vault.store.append_message("alice", home, chatkeep.user_message("as the user"))
    raw = vault.store.inner.get_message("alice", stored.id)  # type: ignore[attr-defined]
    envelope = raw.parts[0]
    assert envelope.kind == "encrypted"
    # The same ciphertext under another role (written past the encryption layer).
    moved = vault.store.inner.append_message(  # type: ignore[attr-defined]
        "alice", home, NewMessage(role="assistant", parts=(envelope,))
    )
    with pytest.raises(StorageError, match="integrity"):
        vault.store.get_message("alice", moved.id)
    # One flipped bit.
    sealed = bytearray(base64.b64decode(envelope.data["envelope"]))
    sealed[-1] ^= 1
    flipped = Part(kind="encrypted", data={"envelope": base64.b64encode(sealed).decode()})
    tampered = vault.store.inner.append_message(  # type: ignore[attr-defined]
        "alice", home, NewMessage(role="user", parts=(flipped,))
    )
    with pytest.raises(StorageError, match="integrity"):
        vault.store.get_message("alice", tampered.id)


# -- turning it on, and what is refused -----------------------------------------------------
def test_turning_encryption_on_is_refused_over_content_in_clear(vault: chatkeep.Vault) -> None:
    vault.store.add_user("carol")
    vault.store.create_runtime("carol", "synth")
    home = vault.store.route("carol", "synth").id
    vault.store.append_message("carol", home, chatkeep.user_message("already here"))
    with pytest.raises(Conflict, match="in clear"):
        vault.init_key("carol", passphrase=PASSPHRASE, kdf=FAST)
    assert vault.key_status("carol").encrypted is False
    _encrypted_alice(vault)
    with pytest.raises(Conflict, match="already has"):
        vault.init_key("alice", passphrase="again", kdf=FAST)
    with pytest.raises(InvalidInput):
        vault.init_key("alice", passphrase=PASSPHRASE, key=b"x" * 32)


def test_importing_a_platform_export_into_an_encrypted_user_is_refused(
    vault: chatkeep.Vault, tmp_path: Path
) -> None:
    _encrypted_alice(vault)
    export = tmp_path / "conversations.json"
    export.write_text(
        json.dumps(
            [
                {
                    "title": "t",
                    "mapping": {
                        "n1": {
                            "id": "n1",
                            "parent": None,
                            "children": [],
                            "message": {
                                "id": "n1",
                                "author": {"role": "user"},
                                "content": {"content_type": "text", "parts": ["imported"]},
                            },
                        }
                    },
                    "current_node": "n1",
                    "id": "conv-1",
                }
            ]
        )
    )
    with pytest.raises(Conflict, match="encrypted") as refused:
        import_export(vault, "alice", export)
    assert refused.value.hint
    assert vault.store.list_imports("alice") == []
    assert not (vault.root / "imports").exists() or not any((vault.root / "imports").iterdir())


def test_every_store_method_is_decided_by_the_encryption_layer() -> None:
    """A new Store method must be written out in EncryptedStore, not passed through by
    accident: it may carry content that must be sealed."""
    wanted = {
        name for name in dir(Store) if not name.startswith("_") and callable(getattr(Store, name))
    }
    missing = sorted(name for name in wanted if name not in EncryptedStore.__dict__)
    assert missing == []


# -- copies, deletion ------------------------------------------------------------------------
def test_a_migrated_copy_stays_encrypted_and_opens_with_the_passphrase(
    vault: chatkeep.Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = _encrypted_alice(vault)
    message_id, attachment_id = _store_secrets(vault, home)
    monkeypatch.delenv("CHATKEEP_DATABASE_URL", raising=False)
    with chatkeep.open(home=tmp_path / "copy", create=True, url="") as copy:
        transfer.copy_vault(vault, copy)
        assert MARKERS["text"] not in transfer.dump_text(copy.store)
        with pytest.raises(Locked):
            copy.store.get_message("alice", message_id)
        copy.unlock("alice", passphrase=PASSPHRASE)
        assert _content(copy.store.get_message("alice", message_id)) == _secret_message().parts
        assert copy.store.read_attachment("alice", attachment_id).startswith(b"SECRETBLOB")


def test_deleting_the_account_removes_the_key(vault: chatkeep.Vault) -> None:
    home = _encrypted_alice(vault)
    _store_secrets(vault, home)
    delete_account(vault, "alice")
    assert list(vault.store.dump_table("user_keys")) == []
    assert "alice" not in transfer.dump_text(vault.store)


# -- crypto-shredding ----------------------------------------------------------------------
def test_crypto_shredding_leaves_nothing_readable(vault: chatkeep.Vault) -> None:
    home = _encrypted_alice(vault)
    message_id, attachment_id = _store_secrets(vault, home)
    (key_row,) = list(vault.store.dump_table("user_keys"))
    wrapped, salt = key_row["wrapped_key"], key_row["salt"]
    assert wrapped and salt
    vault.store.compact()
    sqlite = "CHATKEEP_DATABASE_URL" not in os.environ
    if sqlite:  # the scan does see the database: the wrapped key is in it, for now
        assert _files_containing(vault.root, wrapped.encode())

    status = vault.destroy_key("alice")  # compacts the store too
    assert status.encrypted and status.method == "destroyed" and status.destroyed_at

    # Nothing of the content, and no copy of the wrapped key, in any file of the vault
    # (database, WAL, blobs, everything under the root) or in any row of the database.
    files = _scanned_files(vault.root)
    assert any(name.startswith("blobs/") for name in files)
    dump = _database_text(vault.store)
    for needle in [*MARKERS.values(), wrapped]:
        assert _files_containing(vault.root, needle.encode()) == [], needle
        assert needle not in dump, needle
    assert _files_containing(vault.root, base64.b64decode(wrapped)) == []
    (tombstone,) = list(vault.store.dump_table("user_keys"))
    assert tombstone["wrapped_key"] is None and tombstone["salt"] is None

    # Reading fails with a clear error, here and in any other process.
    for opened in (vault, _reopen(vault)):
        with pytest.raises(KeyDestroyed) as refused:
            opened.store.list_messages("alice", home)
        assert refused.value.code == "key_destroyed"
        assert "destroyed" in refused.value.message and "never" in refused.value.message
        with pytest.raises(KeyDestroyed):
            opened.store.read_attachment("alice", attachment_id)
        with pytest.raises(KeyDestroyed):
            opened.store.get_message("alice", message_id)
        # The old passphrase recovers nothing.
        with pytest.raises(KeyDestroyed):
            opened.unlock("alice", passphrase=PASSPHRASE)
        with pytest.raises(KeyDestroyed):
            opened.store.append_message("alice", home, chatkeep.user_message("more"))
        if opened is not vault:
            opened.close()
    # Titles and counts were in clear, and still are.
    assert vault.store.get_conversation("alice", home).message_count == 1
    # A new key starts over; what the old one sealed stays unreadable.
    vault.init_key("alice", passphrase="fresh start", kdf=FAST)
    fresh = vault.store.append_message("alice", home, chatkeep.user_message("new era"))
    assert vault.store.get_message("alice", fresh.id).text == "new era"
    with pytest.raises(KeyDestroyed):
        vault.store.get_message("alice", message_id)
    assert vault.doctor() == []


# -- the command line ----------------------------------------------------------------------
def _run(home: Path, *args: str, env: dict[str, str] | None = None, input: str | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, ["--home", str(home), *args], env=env, input=input)


def test_the_cli_encrypts_unlocks_and_destroys(vault: chatkeep.Vault, tmp_path: Path) -> None:
    """Through the command line, at scrypt's full default cost."""
    home = vault.root.parent
    vault.store.add_user("alice")
    vault.store.create_runtime("alice", "synth")
    conversation = vault.store.route("alice", "synth").id
    env = {"CHATKEEP_USER": "alice"}
    status = _run(home, "key", "status", "--json", env=env)
    assert status.exit_code == 0, status.output
    assert json.loads(status.stdout)["encrypted"] is False

    done = _run(home, "key", "init", "--json", env={**env, "CHATKEEP_PASSPHRASE": PASSPHRASE})
    assert done.exit_code == 0, done.output
    shape = json.loads(done.stdout)
    assert set(shape) == {
        "user",
        "encrypted",
        "method",
        "key_id",
        "unlocked",
        "created_at",
        "changed_at",
        "destroyed_at",
    }
    assert shape["method"] == "passphrase" and shape["encrypted"] is True

    said = _run(
        home,
        "append",
        conversation,
        "a zanzibarquokka",
        env={**env, "CHATKEEP_PASSPHRASE": PASSPHRASE},
    )
    assert said.exit_code == 0, said.output
    locked = _run(home, "show", conversation, "--json", env=env)
    assert locked.exit_code == 12
    assert json.loads(locked.stdout)["error"]["code"] == "locked"
    passfile = tmp_path / "pass.txt"
    passfile.write_text(PASSPHRASE + "\n")
    shown = _run(home, "--passphrase-file", str(passfile), "show", conversation, env=env)
    assert shown.exit_code == 0, shown.output
    assert "zanzibarquokka" in shown.output
    wrong = _run(home, "show", conversation, env={**env, "CHATKEEP_PASSPHRASE": "nope"})
    assert wrong.exit_code == 12 and "does not open" in wrong.stderr

    refused = _run(home, "key", "destroy", env=env, input="n\n")
    assert refused.exit_code != 0
    assert _run(home, "key", "status", "--json", env=env).stdout.count('"passphrase"') == 1
    gone = _run(home, "key", "destroy", "--yes", "--json", env=env)
    assert gone.exit_code == 0, gone.output
    assert json.loads(gone.stdout)["method"] == "destroyed"
    after = _run(home, "show", conversation, env={**env, "CHATKEEP_PASSPHRASE": PASSPHRASE})
    assert after.exit_code == 12 and "destroyed" in after.stderr


def test_the_cli_key_file(vault: chatkeep.Vault, tmp_path: Path) -> None:
    home = vault.root.parent
    vault.store.add_user("alice")
    vault.store.create_runtime("alice", "synth")
    conversation = vault.store.route("alice", "synth").id
    env = {"CHATKEEP_USER": "alice"}
    inside = _run(home, "key", "init", "--key-file", str(vault.root / "k.key"), env=env)
    assert inside.exit_code == 3 and "inside the vault" in inside.stderr
    key_path = tmp_path / "alice.key"
    made = _run(home, "key", "init", "--key-file", str(key_path), "--json", env=env)
    assert made.exit_code == 0, made.output
    assert len(key_path.read_bytes()) == 32 and key_path.stat().st_mode & 0o077 == 0
    again = _run(home, "key", "init", "--key-file", str(key_path), env=env)
    assert again.exit_code == 3 and "exists" in again.stderr
    said = _run(home, "--key-file", str(key_path), "append", conversation, "hello", env=env)
    assert said.exit_code == 0, said.output
    shown = _run(home, "show", conversation, env={**env, "CHATKEEP_KEY_FILE": str(key_path)})
    assert shown.exit_code == 0 and "hello" in shown.output
    assert _run(home, "show", conversation, env=env).exit_code == 12


def test_the_key_help_explains(tmp_path: Path) -> None:
    shown = _run(tmp_path, "key", "--help")
    assert shown.exit_code == 0
    for needle in ("CHATKEEP_PASSPHRASE", "--passphrase-file", "key file", "search", "lost"):
        assert needle in shown.output


def test_errors_are_one_tree() -> None:
    for error in (Locked, WrongKey, KeyDestroyed):
        assert issubclass(error, ChatkeepError)
    assert (Locked.http_status, WrongKey.http_status, KeyDestroyed.http_status) == (423, 403, 410)


# -- the HTTP API --------------------------------------------------------------------------
def test_the_api_unlocks_per_user_in_server_memory(
    backend: str, tmp_path: Path, servers: list[object]
) -> None:
    from tests.server_helpers import prepare_vault, start_server

    home = tmp_path / "api-home"
    secrets = prepare_vault(home, "alice", "bob")
    with chatkeep.open(home=home) as vault:
        vault.init_key("alice", passphrase=PASSPHRASE, kdf=FAST)
        conversation = vault.store.route("alice", "synth-001").id
        vault.store.append_message("alice", conversation, chatkeep.user_message("sealed words"))
    served = start_server(home, env={"CHATKEEP_PASSPHRASE": PASSPHRASE})
    servers.append(served)
    with served.client(secrets["alice"]) as alice, served.client(secrets["bob"]) as bob:
        path = f"/api/conversations/{conversation}/messages"
        assert alice.get("/api/key").json()["unlocked"] is False
        locked = alice.post(path, json={"text": "more"})
        assert locked.status_code == 423 and locked.json()["error"]["code"] == "locked"
        wrong = alice.post("/api/key/unlock", json={"passphrase": "nope"})
        assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "wrong_key"
        opened = alice.post("/api/key/unlock", json={"passphrase": PASSPHRASE})
        assert opened.status_code == 200 and opened.json()["unlocked"] is True
        assert alice.post(path, json={"text": "more"}).status_code == 201
        shown = alice.get(f"/api/conversations/{conversation}")
        assert shown.status_code == 200 and "sealed words" in shown.text
        # Per user: bob has no key, and alice's unlock opens nothing of his.
        assert bob.get("/api/key").json() == {**bob.get("/api/key").json(), "encrypted": False}
        assert bob.post("/api/key/unlock", json={"passphrase": PASSPHRASE}).status_code == 400
        assert alice.post("/api/key/lock").json()["unlocked"] is False
        assert alice.post(path, json={"text": "again"}).status_code == 423


def test_an_export_of_some_conversations_carries_the_key(
    vault: chatkeep.Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chatkeep.exporting import Selection, export_vault, import_chatkeep_export

    home = _encrypted_alice(vault)
    message_id, attachment_id = _store_secrets(vault, home)
    out = tmp_path / "alice.zip"
    export_vault(vault, out, format="zip", selection=Selection(conversations=(home,)))
    monkeypatch.delenv("CHATKEEP_DATABASE_URL", raising=False)
    with chatkeep.open(home=tmp_path / "other", create=True, url="") as other:
        import_chatkeep_export(other, out)  # alice comes with it, and her wrapped key
        with pytest.raises(Locked):
            other.store.get_message("alice", message_id)
        other.unlock("alice", passphrase=PASSPHRASE)
        assert _content(other.store.get_message("alice", message_id)) == _secret_message().parts
        assert other.store.read_attachment("alice", attachment_id).startswith(b"SECRETBLOB")


def test_a_key_made_by_another_process_stops_a_stale_keyless_append(
    vault: chatkeep.Vault,
) -> None:
    """Appends of a user last seen without a key skip the key lookup; the append's own
    transaction then refuses a message in clear once another process has made a key,
    and the encryption layer seals it and tries again: nothing lands in clear."""
    store = vault.store
    store.add_user("alice")
    store.create_runtime("alice", "synth")
    first = store.create_conversation("alice", "synth", title="before")
    store.append_message("alice", first.id, chatkeep.user_message("said in clear"))
    assert vault.keys.known_keyless("alice")
    store.trash_conversation("alice", first.id)
    store.delete_conversation("alice", first.id)  # no content left: a key may be made
    with _reopen(vault) as other:
        other.init_key("alice", passphrase=PASSPHRASE, kdf=FAST)
    vault.unlock("alice", passphrase=PASSPHRASE)
    assert vault.keys.known_keyless("alice")  # this process has not looked again yet
    home = store.route("alice", "synth").id
    sent = store.append_message("alice", home, chatkeep.user_message(MARKERS["text"]))
    assert sent.text == MARKERS["text"]
    assert not vault.keys.known_keyless("alice")
    raw = store.inner.get_message("alice", sent.id)  # type: ignore[attr-defined]
    assert [p.kind for p in raw.parts] == ["encrypted"]
    assert store.get_message("alice", sent.id).text == MARKERS["text"]


def test_the_store_refuses_a_message_in_clear_for_a_user_with_a_key(
    vault: chatkeep.Vault,
) -> None:
    home = _encrypted_alice(vault)
    inner = vault.store.inner  # type: ignore[attr-defined]
    with pytest.raises(KeyRequired):
        inner.append_message("alice", home, chatkeep.user_message("bypassing the layer"))
    assert inner.list_messages("alice", home) == []


def test_the_store_refuses_drafts_snapshots_and_events_in_clear_for_a_user_with_a_key(
    vault: chatkeep.Vault,
) -> None:
    home = _encrypted_alice(vault)
    inner = vault.store.inner  # type: ignore[attr-defined]
    with pytest.raises(KeyRequired):
        inner.put_draft("alice", home, MARKERS["draft"])
    with pytest.raises(KeyRequired):
        inner.save_snapshot("alice", "s", {"note": MARKERS["snapshot"]})
    with pytest.raises(KeyRequired):
        inner.record_event("alice", home, "typed", {"text": MARKERS["event"]})
    with pytest.raises(KeyRequired):  # a draft's sealed shape is not a sealed value
        inner.save_snapshot("alice", "s", "chatkeep-encrypted:" + MARKERS["snapshot"])
    assert inner.get_draft("alice", home) is None
    assert inner.list_snapshots("alice") == []
    assert inner.replay("alice", home) == []
    inner.put_draft("alice", home, "")  # removing a draft holds no content


def test_a_key_made_between_the_lookup_and_the_write_still_seals(
    vault: chatkeep.Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Drafts, snapshots and events look for the key before each write; when another
    process makes one just after that look, the write's own transaction refuses the
    value in clear and the encryption layer looks again and seals it."""
    home = _encrypted_alice(vault)
    looked = vault.keys.sealing_key
    lookups: list[str] = []

    def as_if_before_the_key(user_id: str) -> object:
        lookups.append(user_id)
        return None if len(lookups) % 2 else looked(user_id)  # each write's first look

    monkeypatch.setattr(vault.keys, "sealing_key", as_if_before_the_key)
    store = vault.store
    assert store.put_draft("alice", home, MARKERS["draft"]).text == MARKERS["draft"]
    snapshot = store.save_snapshot("alice", "s", {"note": MARKERS["snapshot"]})
    store.record_event("alice", home, "typed", {"text": MARKERS["event"]})
    assert len(lookups) == 6  # each write looked twice
    monkeypatch.undo()
    assert store.get_draft("alice", home).text == MARKERS["draft"]  # type: ignore[union-attr]
    assert store.get_snapshot("alice", snapshot.id).state == {"note": MARKERS["snapshot"]}
    assert store.replay("alice", home)[0].data == {"text": MARKERS["event"]}
    text = _database_text(store)
    assert not [marker for marker in ("draft", "snapshot", "event") if MARKERS[marker] in text]
