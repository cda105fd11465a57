"""Snapshots, usage, recordings, drafts, and retention with a controllable clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

import chatkeep
from chatkeep.errors import InvalidInput, NotFound
from chatkeep.lifecycle import collect_garbage, policy_for

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def people(vault: chatkeep.Vault) -> chatkeep.Vault:
    for user in ("alice", "bob"):
        vault.store.add_user(user)
        vault.store.create_runtime(user, "r")
    return vault


def test_snapshots_are_kept_starred_listed_and_isolated(people: chatkeep.Vault) -> None:
    store = people.store
    home = store.route("alice", "r").id
    saved = store.save_snapshot("alice", "before refactor", {"tabs": [1, 2]}, conversation_id=home)
    assert store.get_snapshot("alice", saved.id).state == {"tabs": [1, 2]}
    assert store.star_snapshot("alice", saved.id, True).starred
    assert [s.id for s in store.list_snapshots("alice")] == [saved.id]
    with pytest.raises(NotFound):
        store.get_snapshot("bob", saved.id)
    with pytest.raises(NotFound):
        store.delete_snapshot("bob", saved.id)
    with pytest.raises(NotFound):
        store.save_snapshot("bob", "x", {}, conversation_id=home)
    store.delete_snapshot("alice", saved.id)
    assert store.list_snapshots("alice") == []


def test_usage_is_summed_per_day_model_and_runtime(people: chatkeep.Vault) -> None:
    store = people.store
    for hours, model in [(0, "m-1"), (1, "m-1"), (2, "m-2"), (25, "m-1")]:
        store.record_usage(
            "alice",
            model=model,
            runtime_id="r",
            tokens_in=10,
            tokens_out=5,
            cost=0.5,
            duration_ms=100,
            at=T0 + timedelta(hours=hours),
        )
    store.record_usage("bob", model="m-1", tokens_in=999, at=T0)
    totals = store.usage_totals("alice")
    assert [(u.day, u.model, u.events, u.tokens_in, u.cost) for u in totals] == [
        ("2026-01-01", "m-1", 2, 20, 1.0),
        ("2026-01-01", "m-2", 1, 10, 0.5),
        ("2026-01-02", "m-1", 1, 10, 0.5),
    ]
    assert len(store.usage_totals("alice", since=T0 + timedelta(hours=24))) == 1
    with pytest.raises(InvalidInput):
        store.record_usage("alice", model="m", tokens_in=-1)


def test_a_recording_replays_in_order(people: chatkeep.Vault) -> None:
    store = people.store
    home = store.route("alice", "r").id
    kinds = ["typing", "message", "stream_chunk", "stream_chunk", "done"]
    for n, kind in enumerate(kinds):
        store.record_event("alice", home, kind, {"n": n}, at=T0 + timedelta(seconds=n))
    replayed = store.replay("alice", home)
    assert [e.kind for e in replayed] == kinds
    assert [e.data["n"] for e in replayed] == list(range(5))
    assert [e.seq for e in replayed] == sorted(e.seq for e in replayed)
    with pytest.raises(NotFound):
        store.replay("bob", home)


def test_a_draft_survives_and_an_empty_one_goes(people: chatkeep.Vault) -> None:
    store = people.store
    home = store.route("alice", "r").id
    assert store.get_draft("alice", home) is None
    store.put_draft("alice", home, "half a thought")
    assert store.get_draft("alice", home).text == "half a thought"  # type: ignore[union-attr]
    with pytest.raises(NotFound):
        store.get_draft("bob", home)
    store.put_draft("alice", home, "")
    assert store.get_draft("alice", home) is None


def test_gc_follows_each_users_policy_on_a_controlled_clock(people: chatkeep.Vault) -> None:
    store = people.store
    old = store.create_conversation("alice", "r", title="old trash")
    store.append_message(
        "alice",
        old.id,
        chatkeep.NewMessage(
            role="user",
            parts=(chatkeep.Part(kind="text", text="x"),),
            attachments=(chatkeep.NewAttachment(name="a", data=b"only here"),),
        ),
    )
    store.trash_conversation("alice", old.id)
    kept = store.save_snapshot("alice", "starred", {}, starred=True)
    plain = store.save_snapshot("alice", "plain", {})
    store.record_usage("alice", model="m", at=datetime.now(UTC) - timedelta(days=1))
    store.set_setting("bob", "retention.trash_days", 400)
    bobs = store.create_conversation("bob", "r", title="bob's trash")
    store.trash_conversation("bob", bobs.id)

    soon = collect_garbage(people, now=datetime.now(UTC) + timedelta(days=10))
    assert soon.conversations == {} and soon.snapshots == {} and soon.usage_events == {}

    later = datetime.now(UTC) + timedelta(days=31)
    preview = collect_garbage(people, now=later, dry_run=True)
    assert preview.conversations == {"alice": [old.id]}
    assert preview.snapshots == {"alice": [plain.id]}
    store.get_conversation("alice", old.id)  # a dry run changes nothing

    done = collect_garbage(people, now=later)
    assert done.conversations == {"alice": [old.id]} and done.blobs == 0
    with pytest.raises(NotFound):
        store.get_conversation("alice", old.id)
    assert [s.id for s in store.list_snapshots("alice")] == [kept.id]
    assert store.get_conversation("bob", bobs.id).state == "trashed"  # bob keeps 400 days
    assert len(store.usage_totals("alice")) == 1  # 90 days for usage
    done = collect_garbage(people, now=datetime.now(UTC) + timedelta(days=95))
    assert done.usage_events == {"alice": 1}
    assert not list(people.paths.blobs.glob("??/*"))
    assert people.doctor() == []


def test_a_bad_policy_setting_is_a_clear_error(people: chatkeep.Vault) -> None:
    people.store.set_setting("alice", "retention.trash_days", "soon")
    with pytest.raises(InvalidInput, match=r"retention\.trash_days"):
        policy_for(people.store, "alice")


def test_deleting_an_import_removes_what_it_brought(people: chatkeep.Vault) -> None:
    from chatkeep.importing import import_export
    from chatkeep.lifecycle import delete_import
    from tests.conftest import FIXTURES

    export = FIXTURES / "chatgpt" / "librechat" / "chatgpt-tree.json"
    if not export.is_file():
        pytest.skip(f"fixture missing: {export}")
    store = people.store
    native = store.route("alice", "r").id
    store.append_message("alice", native, chatkeep.user_message("mine, not imported"))
    record = import_export(people, "alice", export).record
    imported = store.list_conversations("alice", runtime_id=record.runtime_id, limit=1000)
    assert len(imported) >= 2
    assert (people.root / (record.stored_path or "missing")).is_file()
    report = delete_import(people, "alice", record.id)
    assert report.conversations == len(imported) - 1  # the runtime's home stays
    left = store.list_conversations("alice", runtime_id=record.runtime_id, limit=1000)
    assert [c.is_primary for c in left] == [True]
    assert not (people.root / (record.stored_path or "missing")).exists()
    with pytest.raises(NotFound):
        store.get_import("alice", record.id)
    with pytest.raises(NotFound):
        delete_import(people, "bob", record.id)
    assert [m.text for m in store.list_messages("alice", native)] == ["mine, not imported"]
    assert people.doctor() == []
