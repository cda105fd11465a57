"""Isolation: knowing another user's ids grants nothing.

For every store operation that takes an id, Bob acting on Alice's objects gets exactly
what he would get for an id that does not exist (NotFound), and neither user's data
changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

import chatkeep
from chatkeep.errors import NotFound
from chatkeep.model import NewAttachment
from chatkeep.store import Store

from .test_store_contract import snapshot


@dataclass
class AliceWorld:
    runtime: str
    conversation: str
    message: str
    attachment: str
    bob_conversation: str


@pytest.fixture
def world(store: Store, alice: str, bob: str) -> AliceWorld:
    store.create_runtime(alice, "alice-only", config={"secret": "alice"})
    conversation = store.create_conversation(alice, "alice-only", title="secret plans").id
    message = store.append_message(
        alice,
        conversation,
        chatkeep.user_message(
            "canary-7d1f", attachments=(NewAttachment(name="s.txt", data=b"alice's bytes"),)
        ),
    )
    store.pin_conversation(alice, conversation)
    store.set_setting(alice, "ui.theme", "alice-dark")
    store.create_runtime(bob, "bobs")
    bob_conversation = store.create_conversation(bob, "bobs").id
    store.append_message(bob, bob_conversation, chatkeep.user_message("bob's own"))
    return AliceWorld(
        runtime="alice-only",
        conversation=conversation,
        message=message.id,
        attachment=message.attachments[0].id,
        bob_conversation=bob_conversation,
    )


Operation = Callable[[Store, AliceWorld], Any]

OPERATIONS: dict[str, Operation] = {
    "get_runtime": lambda s, w: s.get_runtime("bob", w.runtime),
    "update_runtime": lambda s, w: s.update_runtime("bob", w.runtime, config={"x": 1}),
    "delete_runtime": lambda s, w: s.delete_runtime("bob", w.runtime),
    "route": lambda s, w: s.route("bob", w.runtime),
    "create_conversation": lambda s, w: s.create_conversation("bob", w.runtime),
    "list_conversations": lambda s, w: s.list_conversations("bob", runtime_id=w.runtime),
    "list_archived": lambda s, w: s.list_conversations(
        "bob", runtime_id=w.runtime, state="archived"
    ),
    "get_conversation": lambda s, w: s.get_conversation("bob", w.conversation),
    "rename_conversation": lambda s, w: s.rename_conversation("bob", w.conversation, "mine"),
    "tag_conversation": lambda s, w: s.tag_conversation("bob", w.conversation, add=["x"]),
    "pin_conversation": lambda s, w: s.pin_conversation("bob", w.conversation),
    "unpin_conversation": lambda s, w: s.unpin_conversation("bob", w.conversation),
    "archive_conversation": lambda s, w: s.archive_conversation("bob", w.conversation),
    "unarchive_conversation": lambda s, w: s.unarchive_conversation("bob", w.conversation),
    "trash_conversation": lambda s, w: s.trash_conversation("bob", w.conversation),
    "restore_conversation": lambda s, w: s.restore_conversation("bob", w.conversation),
    "delete_conversation": lambda s, w: s.delete_conversation("bob", w.conversation),
    "fork_conversation": lambda s, w: s.fork_conversation("bob", w.conversation, w.message),
    "fork_own_at_foreign_message": lambda s, w: s.fork_conversation(
        "bob", w.bob_conversation, w.message
    ),
    "append_message": lambda s, w: s.append_message(
        "bob", w.conversation, chatkeep.user_message("intrusion")
    ),
    "append_messages": lambda s, w: s.append_messages(
        "bob", w.conversation, [chatkeep.user_message("intrusion")]
    ),
    "append_with_foreign_parent": lambda s, w: s.append_message(
        "bob", w.bob_conversation, chatkeep.user_message("x", parent_id=w.message)
    ),
    "get_message": lambda s, w: s.get_message("bob", w.message),
    "list_messages": lambda s, w: s.list_messages("bob", w.conversation),
    "list_messages_all": lambda s, w: s.list_messages("bob", w.conversation, all_branches=True),
    "list_own_to_foreign_leaf": lambda s, w: s.list_messages(
        "bob", w.bob_conversation, leaf_id=w.message
    ),
    "list_branches": lambda s, w: s.list_branches("bob", w.conversation),
    "get_attachment": lambda s, w: s.get_attachment("bob", w.attachment),
    "read_attachment": lambda s, w: s.read_attachment("bob", w.attachment),
    "get_setting": lambda s, w: s.get_setting("bob", "ui.theme"),
    "delete_setting": lambda s, w: s.delete_setting("bob", "ui.theme"),
}


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_another_users_ids_answer_not_found_and_change_nothing(
    store: Store, world: AliceWorld, operation: str
) -> None:
    alice_before, bob_before = snapshot(store, "alice"), snapshot(store, "bob")
    with pytest.raises(NotFound):
        OPERATIONS[operation](store, world)
    assert snapshot(store, "alice") == alice_before
    assert snapshot(store, "bob") == bob_before


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_the_answer_is_the_same_as_for_an_id_that_does_not_exist(
    store: Store, world: AliceWorld, operation: str
) -> None:
    """Bob cannot tell Alice's ids from ids that were never minted."""
    with pytest.raises(NotFound) as foreign:
        OPERATIONS[operation](store, world)
    store.delete_setting("alice", "ui.theme")
    store.unpin_conversation("alice", world.conversation)
    store.delete_conversation("alice", world.conversation)
    store.delete_runtime("alice", world.runtime)
    with pytest.raises(NotFound) as missing:
        OPERATIONS[operation](store, world)
    assert type(foreign.value) is type(missing.value)
    assert foreign.value.code == missing.value.code


def test_same_runtime_name_for_two_users_is_two_runtimes(
    store: Store, alice: str, bob: str
) -> None:
    store.create_runtime(alice, "assistant", config={"who": "alice"})
    store.create_runtime(bob, "assistant", config={"who": "bob"})
    alice_home, bob_home = store.route(alice, "assistant"), store.route(bob, "assistant")
    assert alice_home.id != bob_home.id
    store.append_message(alice, alice_home.id, chatkeep.user_message("alice's words"))
    assert store.list_messages(bob, bob_home.id) == []
    assert store.get_runtime(bob, "assistant").config == {"who": "bob"}
    assert [c.id for c in store.list_conversations(bob)] == [bob_home.id]


def test_listings_never_show_another_users_objects(store: Store, world: AliceWorld) -> None:
    assert [r.id for r in store.list_runtimes("bob")] == ["bobs"]
    for state in ("active", "archived", "trashed"):
        listed = store.list_conversations("bob", state=state)  # type: ignore[arg-type]
        assert world.conversation not in {c.id for c in listed}
    assert store.list_settings("bob") == {}
