"""The Store contract: what every backend must do.

Every test here takes the ``store`` fixture, which is parametrised over the backends
in ``conftest.BACKENDS``; a new backend runs this whole file by joining that list.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import chatkeep
from chatkeep import limits
from chatkeep.errors import Conflict, InvalidId, InvalidInput, LimitExceeded, NotFound
from chatkeep.model import NewAttachment, NewMessage, Part
from chatkeep.store import Store


def user_msg(text: str, **options: Any) -> NewMessage:
    return chatkeep.user_message(text, **options)


def snapshot(store: Store, user: str) -> dict[str, Any]:
    """Everything a user can read back, for "nothing changed" assertions."""
    state: dict[str, Any] = {"runtimes": store.list_runtimes(user), "settings": {}}
    state["settings"] = store.list_settings(user)
    for which in ("active", "archived", "trashed"):
        conversations = store.list_conversations(user, state=which, limit=1000)
        state[which] = conversations
        for conversation in conversations:
            state[conversation.id] = store.list_messages(user, conversation.id, all_branches=True)
    return state


@pytest.fixture
def runtime(store: Store, alice: str) -> str:
    store.create_runtime(alice, "synth-001", config={"model": "m1", "instructions": "be kind"})
    return "synth-001"


@pytest.fixture
def conversation(store: Store, alice: str, runtime: str) -> str:
    return store.create_conversation(alice, runtime, title="First").id


# -- users ---------------------------------------------------------------------------
class TestUsers:
    def test_added_users_are_listed_and_readable(self, store: Store) -> None:
        store.add_user("alice", display_name="Alice")
        store.add_user("bob")
        assert [u.id for u in store.list_users()] == ["alice", "bob"]
        assert store.get_user("alice").display_name == "Alice"

    def test_a_taken_name_is_a_conflict(self, store: Store, alice: str) -> None:
        with pytest.raises(Conflict):
            store.add_user(alice)

    @pytest.mark.parametrize(
        "name", ["", "../x", "a/b", "a\\b", "..", "x\x00y", "Alice", "a" * 65, "-lead", "a b"]
    )
    def test_bad_names_are_refused(self, store: Store, name: str) -> None:
        with pytest.raises(InvalidId):
            store.add_user(name)
        assert store.list_users() == []

    def test_an_unknown_user_is_not_found(self, store: Store) -> None:
        with pytest.raises(NotFound):
            store.get_user("nobody")
        with pytest.raises(NotFound):
            store.list_runtimes("nobody")
        with pytest.raises(NotFound):
            store.create_runtime("nobody", "r1")


# -- runtimes and routing ------------------------------------------------------------
class TestRuntimes:
    def test_a_runtime_is_born_with_its_home_conversation(
        self, store: Store, alice: str, runtime: str
    ) -> None:
        created = store.get_runtime(alice, runtime)
        assert created.origin == "native"
        assert created.config == {"model": "m1", "instructions": "be kind"}
        home = store.route(alice, runtime)
        assert home.id == created.primary_conversation_id
        assert home.title == "chat_with_synth-001"
        assert home.is_primary and home.pinned and home.state == "active"

    def test_route_is_stable(self, store: Store, alice: str, runtime: str) -> None:
        assert store.route(alice, runtime).id == store.route(alice, runtime).id

    def test_a_taken_runtime_name_is_a_conflict(
        self, store: Store, alice: str, runtime: str
    ) -> None:
        with pytest.raises(Conflict):
            store.create_runtime(alice, runtime)
        assert len(store.list_runtimes(alice)) == 1

    def test_configuration_updates(self, store: Store, alice: str, runtime: str) -> None:
        config = {"model": "m2", "tools": ["search"], "memories": [{"text": "likes tea"}]}
        updated = store.update_runtime(alice, runtime, name="Synth", config=config)
        assert (updated.name, updated.config) == ("Synth", config)
        assert store.get_runtime(alice, runtime).config == config

    def test_configuration_must_be_storable_json(
        self, store: Store, alice: str, runtime: str
    ) -> None:
        before = store.get_runtime(alice, runtime)
        with pytest.raises(InvalidInput):
            store.update_runtime(alice, runtime, config={"x": float("nan")})
        with pytest.raises(InvalidInput):
            store.update_runtime(alice, runtime, config={"x": object()})
        assert store.get_runtime(alice, runtime) == before

    def test_delete_runtime_refused_while_it_has_conversations(
        self, store: Store, alice: str, runtime: str, conversation: str
    ) -> None:
        with pytest.raises(Conflict):
            store.delete_runtime(alice, runtime)
        store.delete_conversation(alice, conversation)
        home = store.route(alice, runtime)
        store.append_message(alice, home.id, user_msg("hi"))
        report = store.delete_runtime(alice, runtime)
        assert (report.conversations, report.messages) == (1, 1)
        with pytest.raises(NotFound):
            store.get_runtime(alice, runtime)
        with pytest.raises(NotFound):
            store.get_conversation(alice, home.id)


# -- sidebar -------------------------------------------------------------------------
class TestSidebar:
    def test_home_then_pins_then_recent_activity(
        self, store: Store, alice: str, runtime: str
    ) -> None:
        a = store.create_conversation(alice, runtime, title="a").id
        b = store.create_conversation(alice, runtime, title="b").id
        c = store.create_conversation(alice, runtime, title="c").id
        store.append_message(alice, a, user_msg("a is now the most recent"))
        store.pin_conversation(alice, b)
        home = store.route(alice, runtime).id
        order = [x.id for x in store.list_conversations(alice, runtime_id=runtime)]
        assert order == [home, b, a, c]
        assert [x.pinned for x in store.list_conversations(alice, runtime_id=runtime)] == [
            True,
            True,
            False,
            False,
        ]

    def test_newest_pin_comes_first_and_unpin_returns_to_activity_order(
        self, store: Store, alice: str, runtime: str
    ) -> None:
        a = store.create_conversation(alice, runtime, title="a").id
        b = store.create_conversation(alice, runtime, title="b").id
        store.pin_conversation(alice, a)
        store.pin_conversation(alice, b)
        home = store.route(alice, runtime).id
        assert [x.id for x in store.list_conversations(alice, runtime_id=runtime)] == [home, b, a]
        store.unpin_conversation(alice, b)
        assert [x.id for x in store.list_conversations(alice, runtime_id=runtime)] == [home, a, b]

    def test_a_pin_belongs_to_one_runtime(self, store: Store, alice: str, runtime: str) -> None:
        store.create_runtime(alice, "other")
        pinned = store.create_conversation(alice, runtime, title="pinned here").id
        store.pin_conversation(alice, pinned)
        other = [x.id for x in store.list_conversations(alice, runtime_id="other")]
        assert other == [store.route(alice, "other").id]
        assert pinned in [x.id for x in store.list_conversations(alice, runtime_id=runtime)]

    def test_paging_walks_the_same_order(self, store: Store, alice: str, runtime: str) -> None:
        ids = [store.create_conversation(alice, runtime, title=f"c{i}").id for i in range(7)]
        store.pin_conversation(alice, ids[0])
        store.pin_conversation(alice, ids[3])
        whole = [x.id for x in store.list_conversations(alice, runtime_id=runtime, limit=100)]
        paged: list[str] = []
        for offset in range(0, 8, 3):
            page = store.list_conversations(alice, runtime_id=runtime, limit=3, offset=offset)
            paged += [x.id for x in page]
        assert paged == whole and len(whole) == 8

    def test_archived_and_trashed_leave_the_sidebar(
        self, store: Store, alice: str, runtime: str
    ) -> None:
        archived = store.create_conversation(alice, runtime).id
        trashed = store.create_conversation(alice, runtime).id
        store.pin_conversation(alice, archived)
        store.archive_conversation(alice, archived)
        store.trash_conversation(alice, trashed)
        sidebar = [x.id for x in store.list_conversations(alice, runtime_id=runtime)]
        assert archived not in sidebar and trashed not in sidebar
        assert [x.id for x in store.list_conversations(alice, state="archived")] == [archived]
        assert [x.id for x in store.list_conversations(alice, state="trashed")] == [trashed]


# -- conversation life ---------------------------------------------------------------
class TestConversations:
    def test_create_rename_and_tag(self, store: Store, alice: str, runtime: str) -> None:
        created = store.create_conversation(alice, runtime, title="t", model="m", tags=["x", "y"])
        assert (created.title, created.model, created.tags) == ("t", "m", ("x", "y"))
        assert created.origin == "native" and created.message_count == 0
        assert store.rename_conversation(alice, created.id, "renamed").title == "renamed"
        tagged = store.tag_conversation(alice, created.id, add=["z"], remove=["x"])
        assert tagged.tags == ("y", "z")
        assert store.get_conversation(alice, created.id).tags == ("y", "z")

    @pytest.mark.parametrize("title", ["", "   ", "x" * (limits.MAX_TITLE_LENGTH + 1), "a\x00b"])
    def test_bad_titles_change_nothing(
        self, store: Store, alice: str, conversation: str, title: str
    ) -> None:
        before = store.get_conversation(alice, conversation)
        with pytest.raises(InvalidInput):
            store.rename_conversation(alice, conversation, title)
        assert store.get_conversation(alice, conversation) == before

    def test_state_transitions(self, store: Store, alice: str, conversation: str) -> None:
        assert store.archive_conversation(alice, conversation).state == "archived"
        assert store.unarchive_conversation(alice, conversation).state == "active"
        trashed = store.trash_conversation(alice, conversation)
        assert trashed.state == "trashed" and trashed.trashed_at is not None
        restored = store.restore_conversation(alice, conversation)
        assert restored.state == "active" and restored.trashed_at is None

    def test_illegal_transitions_are_conflicts(
        self, store: Store, alice: str, conversation: str
    ) -> None:
        # Asking for the state it is in already is a no-op, not an error.
        assert store.restore_conversation(alice, conversation).state == "active"
        store.trash_conversation(alice, conversation)
        with pytest.raises(Conflict):
            store.archive_conversation(alice, conversation)
        with pytest.raises(Conflict):
            store.unarchive_conversation(alice, conversation)
        with pytest.raises(Conflict):
            store.append_message(alice, conversation, user_msg("into the trash?"))

    def test_the_home_conversation_is_protected(
        self, store: Store, alice: str, runtime: str
    ) -> None:
        home = store.route(alice, runtime).id
        for action in (
            store.trash_conversation,
            store.archive_conversation,
            store.delete_conversation,
        ):
            with pytest.raises(Conflict):
                action(alice, home)
        assert store.get_conversation(alice, home).state == "active"

    def test_hard_delete_removes_messages_and_unused_blobs(
        self, vault: chatkeep.Vault, alice: str, runtime: str
    ) -> None:
        store = vault.store
        keep = store.create_conversation(alice, runtime).id
        gone = store.create_conversation(alice, runtime).id
        shared = NewAttachment(name="shared.bin", data=b"shared bytes")
        own = NewAttachment(name="own.bin", data=b"only in the deleted one")
        store.append_message(alice, keep, user_msg("keep", attachments=(shared,)))
        message = store.append_message(alice, gone, user_msg("gone", attachments=(shared, own)))
        report = store.delete_conversation(alice, gone)
        assert (report.conversations, report.messages, report.attachments, report.blobs) == (
            1,
            1,
            2,
            1,
        )
        with pytest.raises(NotFound):
            store.get_conversation(alice, gone)
        with pytest.raises(NotFound):
            store.get_message(alice, message.id)
        own_sha = message.attachments[1].sha256
        assert not (vault.paths.blobs / own_sha[:2] / own_sha).exists()
        kept = store.list_messages(alice, keep)[0]
        assert store.read_attachment(alice, kept.attachments[0].id) == b"shared bytes"
        assert [p for p in vault.doctor() if p.severity == "error"] == []

    def test_fork_copies_the_path_and_records_its_origin(
        self, store: Store, alice: str, conversation: str
    ) -> None:
        first = store.append_message(alice, conversation, user_msg("one", tokens=3, cost=0.5))
        second = store.append_message(
            alice,
            conversation,
            user_msg("two", attachments=(NewAttachment(name="f.txt", data=b"file"),)),
        )
        store.append_message(alice, conversation, user_msg("three (not copied)"))
        fork = store.fork_conversation(alice, conversation, second.id, title="forked")
        assert fork.forked_from_conversation_id == conversation
        assert fork.forked_from_message_id == second.id
        assert (fork.title, fork.message_count, fork.total_tokens) == ("forked", 2, 3)
        copied = store.list_messages(alice, fork.id)
        assert [m.text for m in copied] == ["one", "two"]
        assert {m.id for m in copied}.isdisjoint({first.id, second.id})
        assert copied[1].parent_id == copied[0].id
        assert copied[0].created_at == first.created_at
        attachment = copied[1].attachments[0]
        assert store.read_attachment(alice, attachment.id) == b"file"
        assert copied[1].parts[-1].data["attachment_id"] == attachment.id
        # The source is untouched.
        assert [m.text for m in store.list_messages(alice, conversation)] == [
            "one",
            "two",
            "three (not copied)",
        ]

    def test_fork_at_a_message_of_another_conversation_is_refused(
        self, store: Store, alice: str, runtime: str, conversation: str
    ) -> None:
        other = store.create_conversation(alice, runtime).id
        foreign = store.append_message(alice, other, user_msg("elsewhere"))
        before = snapshot(store, alice)
        with pytest.raises(InvalidInput):
            store.fork_conversation(alice, conversation, foreign.id)
        assert snapshot(store, alice) == before


# -- messages and branches -----------------------------------------------------------
class TestMessages:
    def test_append_continues_the_active_branch(
        self, store: Store, alice: str, conversation: str
    ) -> None:
        first = store.append_message(alice, conversation, user_msg("hello"))
        second = store.append_message(alice, conversation, chatkeep.assistant_message("hi"))
        assert first.parent_id is None and second.parent_id == first.id
        assert (first.seq, second.seq) == (0, 1)
        assert [m.id for m in store.list_messages(alice, conversation)] == [first.id, second.id]
        updated = store.get_conversation(alice, conversation)
        assert updated.message_count == 2 and updated.active_leaf_id == second.id

    def test_every_field_reads_back(self, store: Store, alice: str, conversation: str) -> None:
        parts = (
            Part("text", "look at this"),
            Part("code", "print(1)", {"language": "python"}),
            Part("tool_call", None, {"name": "search", "arguments": {"q": "x"}}),
            Part("tool_result", "42", {"call_id": "c1"}),
            Part("reasoning", "thinking..."),
            Part("x-vendor-thing", None, {"anything": [1, 2.5, None, True]}),
        )
        new = NewMessage(
            role="assistant",
            parts=parts,
            author="Synth",
            model="m1",
            tokens=12,
            cost=0.25,
            metadata={"finish_reason": "stop"},
            hidden=True,
        )
        stored = store.append_message(alice, conversation, new)
        read = store.get_message(alice, stored.id)
        assert read == stored
        assert read.parts == parts
        assert (read.role, read.author, read.model, read.tokens, read.cost) == (
            "assistant",
            "Synth",
            "m1",
            12,
            0.25,
        )
        assert read.metadata == {"finish_reason": "stop"} and read.hidden
        totals = store.get_conversation(alice, conversation)
        assert (totals.total_tokens, totals.total_cost) == (12, 0.25)

    def test_continuing_from_an_earlier_message_makes_a_sibling_branch(
        self, store: Store, alice: str, conversation: str
    ) -> None:
        question = store.append_message(alice, conversation, user_msg("q"))
        answer = store.append_message(alice, conversation, chatkeep.assistant_message("a1"))
        retry = store.append_message(
            alice, conversation, chatkeep.assistant_message("a2", parent_id=question.id)
        )
        assert retry.parent_id == question.id
        branches = store.list_branches(alice, conversation)
        assert [(b.index, b.leaf_id, b.active) for b in branches] == [
            (1, answer.id, False),
            (2, retry.id, True),
        ]
        assert branches[0].message_ids == (question.id, answer.id)
        assert [m.text for m in store.list_messages(alice, conversation)] == ["q", "a2"]
        first = store.list_messages(alice, conversation, leaf_id=answer.id)
        assert [m.text for m in first] == ["q", "a1"]
        everything = store.list_messages(alice, conversation, all_branches=True)
        assert [m.text for m in everything] == ["q", "a1", "a2"]
        # The earlier branch was not altered.
        assert store.get_message(alice, answer.id) == answer

    def test_a_new_root_starts_a_separate_tree(
        self, store: Store, alice: str, conversation: str
    ) -> None:
        store.append_message(alice, conversation, user_msg("one"))
        root = store.append_message(alice, conversation, user_msg("again", root=True))
        assert root.parent_id is None
        assert len(store.list_branches(alice, conversation)) == 2

    def test_a_parent_from_another_conversation_is_refused(
        self, store: Store, alice: str, runtime: str, conversation: str
    ) -> None:
        other = store.create_conversation(alice, runtime).id
        foreign = store.append_message(alice, other, user_msg("elsewhere"))
        before = snapshot(store, alice)
        with pytest.raises(InvalidInput, match="another conversation"):
            store.append_message(alice, conversation, user_msg("x", parent_id=foreign.id))
        assert snapshot(store, alice) == before

    @pytest.mark.parametrize(
        "new",
        [
            NewMessage(role="robot", parts=(Part("text", "x"),)),
            NewMessage(role="user", parts=()),
            NewMessage(role="user", parts=(Part("Bad Kind", "x"),)),
            NewMessage(role="user", parts=(Part("text", "\ud800"),)),
            NewMessage(role="user", parts=(Part("text", "x", {"n": float("inf")}),)),
            NewMessage(role="user", parts=(Part("text", "x", {"n": 2**70}),)),
            NewMessage(role="user", parts=(Part("text", "x"),), tokens=-1),
            NewMessage(role="user", parts=(Part("text", "x"),), cost=float("nan")),
            NewMessage(role="user", parts=(Part("text", "x"),), metadata={1: "x"}),  # type: ignore[dict-item]
            NewMessage(role="user", parts=(Part("text", "x"),), parent_id="../../etc/passwd"),
            NewMessage(
                role="user", parts=(Part("text", "x"),) * (limits.MAX_PARTS_PER_MESSAGE + 1)
            ),
            NewMessage(
                role="user",
                parts=(Part("text", "x"),),
                attachments=(NewAttachment(name="", data=b"x"),),
            ),
        ],
        ids=[
            "unknown-role",
            "empty",
            "bad-kind",
            "lone-surrogate",
            "infinite-number",
            "huge-int",
            "negative-tokens",
            "nan-cost",
            "non-string-key",
            "traversal-parent",
            "too-many-parts",
            "nameless-attachment",
        ],
    )
    def test_bad_messages_are_refused_and_change_nothing(
        self, store: Store, alice: str, conversation: str, new: NewMessage
    ) -> None:
        store.append_message(alice, conversation, user_msg("existing"))
        before = snapshot(store, alice)
        with pytest.raises(InvalidInput):
            store.append_message(alice, conversation, new)
        assert snapshot(store, alice) == before

    def test_the_size_limit_is_exact(self, store: Store, alice: str, conversation: str) -> None:
        overhead = len(chatkeep.model.canonical_json([Part("text", "").to_dict()]))
        text = "x" * (limits.MAX_MESSAGE_BYTES - overhead)
        stored = store.append_message(alice, conversation, user_msg(text))
        assert store.get_message(alice, stored.id).text == text
        before = snapshot(store, alice)
        with pytest.raises(LimitExceeded):
            store.append_message(alice, conversation, user_msg(text + "x"))
        assert snapshot(store, alice) == before

    def test_a_failing_batch_writes_nothing(
        self, store: Store, alice: str, conversation: str
    ) -> None:
        before = snapshot(store, alice)
        with pytest.raises(InvalidInput):
            store.append_messages(
                alice, conversation, [user_msg("fine"), NewMessage(role="nope", parts=())]
            )
        missing_parent = user_msg("orphan", parent_id="m_01M809GAPYEYZMDERAWYV17YC4")
        with pytest.raises(NotFound):
            store.append_messages(alice, conversation, [user_msg("fine"), missing_parent])
        assert snapshot(store, alice) == before

    def test_a_batch_chains_its_messages(self, store: Store, alice: str, conversation: str) -> None:
        stored = store.append_messages(alice, conversation, [user_msg(str(i)) for i in range(5)])
        assert [m.parent_id for m in stored] == [None] + [m.id for m in stored[:-1]]
        assert [m.text for m in store.list_messages(alice, conversation)] == list("01234")

    def test_attachments_are_stored_once_by_content(
        self, vault: chatkeep.Vault, alice: str, conversation: str, tmp_path: Any
    ) -> None:
        store = vault.store
        source = tmp_path / "picture.png"
        source.write_bytes(b"\x89PNG fake image bytes")
        one = store.append_message(
            alice,
            conversation,
            user_msg(
                "see",
                attachments=(NewAttachment(name="p.png", path=str(source), mime_type="image/png"),),
            ),
        )
        two = store.append_message(
            alice,
            conversation,
            user_msg("again", attachments=(NewAttachment(name="q.png", data=source.read_bytes()),)),
        )
        a, b = one.attachments[0], two.attachments[0]
        assert a.id != b.id and a.sha256 == b.sha256 and a.size == len(source.read_bytes())
        assert list(vault.paths.blobs.glob("??/*")) == [vault.paths.blobs / a.sha256[:2] / a.sha256]
        assert store.read_attachment(alice, a.id) == source.read_bytes()
        assert one.parts[-1].kind == "image" and one.parts[-1].data["attachment_id"] == a.id
        assert store.get_attachment(alice, a.id) == a

    def test_an_unreadable_attachment_path_is_refused(
        self, store: Store, alice: str, conversation: str, tmp_path: Any
    ) -> None:
        before = snapshot(store, alice)
        missing = NewAttachment(name="gone", path=str(tmp_path / "does-not-exist"))
        with pytest.raises(InvalidInput):
            store.append_message(alice, conversation, user_msg("x", attachments=(missing,)))
        assert snapshot(store, alice) == before


# -- settings ------------------------------------------------------------------------
class TestSettings:
    def test_set_get_list_delete(self, store: Store, alice: str) -> None:
        store.set_setting(alice, "ui.theme", "dark")
        store.set_setting(alice, "ui.font.size", 14)
        store.set_setting(alice, "llm.models", ["a", {"b": None}])
        store.set_setting(alice, "ui.theme", "light")
        assert store.get_setting(alice, "ui.theme") == "light"
        assert store.list_settings(alice, prefix="ui") == {"ui.font.size": 14, "ui.theme": "light"}
        store.delete_setting(alice, "ui.theme")
        with pytest.raises(NotFound):
            store.get_setting(alice, "ui.theme")
        with pytest.raises(NotFound):
            store.delete_setting(alice, "ui.theme")

    @pytest.mark.parametrize("key", ["theme", "", "UI.theme", "ui..x", "ui/x.y", "a." * 200])
    def test_keys_must_be_namespaced(self, store: Store, alice: str, key: str) -> None:
        with pytest.raises(InvalidId):
            store.set_setting(alice, key, 1)
        assert store.list_settings(alice) == {}

    def test_values_must_be_json(self, store: Store, alice: str) -> None:
        with pytest.raises(InvalidInput):
            store.set_setting(alice, "ui.x", float("nan"))
        with pytest.raises(LimitExceeded):
            store.set_setting(alice, "ui.x", "x" * (limits.MAX_JSON_BYTES + 1))
        assert store.list_settings(alice) == {}


# -- integrity -----------------------------------------------------------------------
def test_a_busy_vault_passes_its_own_check(
    vault: chatkeep.Vault, alice: str, runtime: str, conversation: str
) -> None:
    store = vault.store
    q = store.append_message(alice, conversation, user_msg("q", tokens=1, cost=0.1))
    store.append_message(alice, conversation, user_msg("a", tokens=2, cost=0.2))
    store.append_message(alice, conversation, user_msg("b", parent_id=q.id))
    store.fork_conversation(alice, conversation, q.id)
    store.pin_conversation(alice, conversation)
    assert vault.doctor() == []


# -- ids -----------------------------------------------------------------------------
Call = Callable[[Store, str], Any]


@pytest.mark.parametrize(
    "bad_id",
    [
        "",
        "..",
        "../c_x",
        "c_/etc/passwd",
        "c_\x00",
        "c_" + "A" * 200,
        "m_01M809GAPYEYZMDERAWYV17YC4",
    ],
)
def test_malformed_ids_are_refused_before_any_lookup(store: Store, alice: str, bad_id: str) -> None:
    with pytest.raises((InvalidId, NotFound)):
        store.get_conversation(alice, bad_id)
    with pytest.raises((InvalidId, NotFound)):
        store.append_message(alice, bad_id, user_msg("x"))


def test_root_and_parent_together_are_refused(store: Store, alice: str, conversation: str) -> None:
    first = store.append_message(alice, conversation, user_msg("one"))
    with pytest.raises(InvalidInput, match="root"):
        store.append_message(alice, conversation, user_msg("x", root=True, parent_id=first.id))


def test_tagging_with_nothing_to_change_keeps_the_sidebar_order(
    store: Store, alice: str, conversation: str
) -> None:
    tagged = store.tag_conversation(alice, conversation, add=["x"])
    again = store.tag_conversation(alice, conversation, add=["x"])
    assert again.updated_at == tagged.updated_at


def test_an_unknown_user_is_named_as_the_problem(store: Store, alice: str, runtime: str) -> None:
    with pytest.raises(NotFound, match="no user 'nobody'"):
        store.create_conversation("nobody", runtime)
    with pytest.raises(NotFound, match="no user 'nobody'"):
        store.get_conversation("nobody", store.route(alice, runtime).id)
