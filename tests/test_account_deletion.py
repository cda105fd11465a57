"""Deleting an account leaves nothing of it: not in any table, not in the search index,
not in a blob or an import original, and not in the bytes of any file of the vault."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import chatkeep
from chatkeep import tokens, transfer
from chatkeep.cli import cli
from chatkeep.errors import NotFound
from chatkeep.importing import import_export
from chatkeep.lifecycle import delete_account
from chatkeep.model import NewAttachment
from chatkeep.search_embed import HashedEmbedder
from chatkeep.semantic import index_pending

MARKERS = [b"quixoticzebra", b"Marmaladeprotocol", b"tangerinecipher", b"SECRETBYTES-7f3a"]


def _alice_and_bob(vault: chatkeep.Vault, export: Path) -> None:
    store = vault.store
    for user in ("alice", "bob"):
        store.add_user(user)
        store.create_runtime(user, "synth-001")
    home = store.route("alice", "synth-001").id
    store.append_message("alice", home, chatkeep.user_message("the quixoticzebra plan"))
    titled = store.create_conversation("alice", "synth-001", title="Marmaladeprotocol notes")
    store.append_message(
        "alice",
        titled.id,
        chatkeep.NewMessage(
            role="user",
            parts=(chatkeep.Part(kind="text", text="see the tangerinecipher file"),),
            attachments=(NewAttachment(name="s.bin", data=b"SECRETBYTES-7f3a" * 64),),
        ),
    )
    store.set_setting("alice", "ui.motto", "tangerinecipher")
    tokens.issue_token(store, "alice", name="quixoticzebra client")
    export.write_text(
        json.dumps(
            [
                {
                    "title": "Marmaladeprotocol import",
                    "create_time": 1700000000,
                    "update_time": 1700000100,
                    "mapping": {
                        "n1": {
                            "id": "n1",
                            "parent": None,
                            "children": [],
                            "message": {
                                "id": "n1",
                                "author": {"role": "user"},
                                "create_time": 1700000000,
                                "content": {
                                    "content_type": "text",
                                    "parts": ["quixoticzebra imported"],
                                },
                            },
                        }
                    },
                    "current_node": "n1",
                    "id": "conv-1",
                }
            ]
        )
    )
    import_export(vault, "alice", export)
    export.unlink()
    store.append_message("bob", store.route("bob", "synth-001").id, chatkeep.user_message("bob's"))
    index_pending(store, HashedEmbedder())


def _files_containing(root: Path, needle: bytes) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and needle in path.read_bytes():
            found.append(str(path.relative_to(root)))
    return found


@pytest.mark.parametrize("kind", ["sqlite", "files"])
def test_deleting_an_account_leaves_no_byte_of_it(tmp_path: Path, kind: str) -> None:
    with chatkeep.open(home=tmp_path / "home", create=True, url="", backend=kind) as vault:
        _alice_and_bob(vault, tmp_path / "conversations.json")
        for marker in MARKERS:
            assert _files_containing(vault.root, marker), f"{marker!r} was never stored"
        bob_before = [
            line for line in transfer.dump_text(vault.store).splitlines() if "bob" in line
        ]
        report = delete_account(vault, "alice")
        assert report.rows["messages"] >= 3 and report.rows["users"] == 1
        assert report.blobs == 1 and report.originals == 1
        with pytest.raises(NotFound):
            vault.store.get_user("alice")
        assert vault.store.search("bob", "quixoticzebra").hits == ()
        dump = transfer.dump_text(vault.store)
        assert "alice" not in dump
        assert [line for line in dump.splitlines() if "bob" in line] == bob_before
        assert vault.doctor() == []
        root = vault.root
    for marker in [*MARKERS, b"alice"]:
        assert _files_containing(root, marker) == [], f"{marker!r} is still on disk"


def test_the_cli_deletes_an_account(tmp_path: Path) -> None:
    with chatkeep.open(home=tmp_path / "home", create=True, url="") as vault:
        _alice_and_bob(vault, tmp_path / "conversations.json")
    runner = CliRunner()
    refused = runner.invoke(
        cli, ["--home", str(tmp_path / "home"), "user", "rm", "alice"], input="n\n"
    )
    assert refused.exit_code != 0
    done = runner.invoke(
        cli, ["--home", str(tmp_path / "home"), "user", "rm", "alice", "--yes", "--json"]
    )
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["rows"]["users"] == 1
    missing = runner.invoke(cli, ["--home", str(tmp_path / "home"), "user", "rm", "alice", "--yes"])
    assert missing.exit_code == NotFound.exit_code


def test_every_backend_deletes_every_row_of_the_account(
    vault: chatkeep.Vault, tmp_path: Path
) -> None:
    _alice_and_bob(vault, tmp_path / "conversations.json")
    bob_before = [line for line in transfer.dump_text(vault.store).splitlines() if "bob" in line]
    delete_account(vault, "alice")
    dump = transfer.dump_text(vault.store)
    assert "alice" not in dump and "quixoticzebra" not in dump
    assert [line for line in dump.splitlines() if "bob" in line] == bob_before
    assert not list(vault.paths.blobs.glob("??/*"))  # alice's was the only blob
    assert vault.doctor() == []
