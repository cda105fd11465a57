"""Hypothesis: round trips of anything storable, and hostile input of any shape.

The store under test is shared across examples (one vault per test function), which
is what ``HealthCheck.function_scoped_fixture`` is suppressed for in conftest.
"""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

import chatkeep
from chatkeep import limits
from chatkeep.errors import ChatkeepError, InvalidId, InvalidInput, NotFound
from chatkeep.model import NewMessage, Part, canonical_json
from chatkeep.store import Store

# Any Unicode scalar value, NUL and controls included; lone surrogates cannot be UTF-8.
any_text = st.text(st.characters(codec="utf-8"))
json_leaf = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | any_text
json_leaf |= st.floats(allow_nan=False, allow_infinity=False)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4),
    max_leaves=12,
)
part_kind = st.sampled_from(chatkeep.model.KNOWN_PART_KINDS) | st.from_regex(
    r"[a-z][a-z0-9_.-]{0,20}", fullmatch=True
)
parts = st.lists(
    st.builds(
        Part,
        kind=part_kind,
        text=st.none() | any_text,
        data=st.dictionaries(any_text, json_value, max_size=3),
    ),
    min_size=1,
    max_size=5,
)


def _conversation(store: Store) -> str:
    if not store.list_users():
        store.add_user("alice")
        store.create_runtime("alice", "r")
    return store.route("alice", "r").id


@given(text=any_text)
def test_any_text_reads_back_identically(store: Store, text: str) -> None:
    conversation = _conversation(store)
    stored = store.append_message("alice", conversation, chatkeep.user_message(text))
    read = store.get_message("alice", stored.id)
    assert read.parts == (Part("text", text),)
    assert read.text.encode("utf-8") == text.encode("utf-8") or not text


@given(content=parts, metadata=st.dictionaries(any_text, json_value, max_size=4))
def test_any_parts_and_metadata_read_back_identically(
    store: Store, content: list[Part], metadata: dict[str, Any]
) -> None:
    conversation = _conversation(store)
    new = NewMessage(role="assistant", parts=tuple(content), metadata=metadata)
    stored = store.append_message("alice", conversation, new)
    read = store.get_message("alice", stored.id)
    assert read.parts == tuple(content)
    assert read.metadata == metadata
    assert canonical_json([p.to_dict() for p in read.parts]) == canonical_json(
        [p.to_dict() for p in content]
    )


# 25 examples: each writes up to 4 MiB (half a second on PostgreSQL); the fill spreads
# them over the whole range up to the limit.
@settings(max_examples=25)
@given(seed=st.text(st.characters(codec="utf-8"), min_size=1, max_size=8), fill=st.floats(0, 1))
def test_messages_up_to_the_size_limit_read_back_identically(
    store: Store, seed: str, fill: float
) -> None:
    conversation = _conversation(store)
    overhead = len(canonical_json([Part("text", "").to_dict()]))
    budget = int((limits.MAX_MESSAGE_BYTES - overhead) * fill)
    unit = len(canonical_json(seed)) - 2  # encoded size of seed inside a JSON string
    text = seed * max(1, budget // max(unit, 1))
    if len(canonical_json([Part("text", text).to_dict()])) > limits.MAX_MESSAGE_BYTES:
        text = seed
    stored = store.append_message("alice", conversation, chatkeep.user_message(text))
    assert store.get_message("alice", stored.id).parts[0].text == text


@given(value=any_text)
def test_any_string_as_an_id_is_refused_or_not_found(store: Store, value: str) -> None:
    conversation = _conversation(store)
    calls = [
        lambda: store.get_conversation("alice", value),
        lambda: store.get_message("alice", value),
        lambda: store.get_attachment("alice", value),
        lambda: store.get_runtime("alice", value),
        lambda: store.get_user(value),
        lambda: store.append_message("alice", value, chatkeep.user_message("x")),
        lambda: store.append_message(
            "alice", conversation, chatkeep.user_message("x", parent_id=value)
        ),
        lambda: store.get_setting("alice", value),
    ]
    for call in calls:
        # Anything but these two (a crash, a database error) fails the test.
        with contextlib.suppress(InvalidId, NotFound):
            call()


@given(name=any_text)
def test_any_string_as_a_name_is_refused_or_accepted_cleanly(store: Store, name: str) -> None:
    try:
        created = store.add_user(name)
    except InvalidId:
        return
    except ChatkeepError as error:  # a repeat of an accepted name
        assert error.code == "conflict"
        return
    assert created.id == name
    assert name.isascii() and "/" not in name and ".." not in name and "\x00" not in name


@given(key=any_text, value=json_value)
def test_hostile_settings_are_refused_or_stored_exactly(store: Store, key: str, value: Any) -> None:
    _conversation(store)
    try:
        store.set_setting("alice", key, value)
    except InvalidInput:
        return
    assert store.get_setting("alice", key) == value


def test_a_large_message_of_many_distinct_words_is_stored_and_found(store: Store) -> None:
    """PostgreSQL refuses a tsvector over 1 MB; a message must never be refused for it."""
    import random
    import string

    rng = random.Random(3)
    words = [
        "".join(rng.choices(string.ascii_lowercase, k=8))
        for _ in range(limits.MAX_MESSAGE_BYTES // 10)
    ]
    words[5] = "needleword"
    text = " ".join(words)
    conversation = _conversation(store)
    stored = store.append_message("alice", conversation, chatkeep.user_message(text))
    assert store.get_message("alice", stored.id).parts[0].text == text
    hits = store.search("alice", "needleword").hits
    assert [h.message_id for h in hits] == [stored.id]
