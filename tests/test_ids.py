"""Minted ids: well-formed, strictly increasing, and the encoding matches the ULID spec."""

from __future__ import annotations

import random

import pytest

from chatkeep import ids
from chatkeep.errors import InvalidId

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def reference_encoding(value: int, length: int) -> str:
    digits = []
    for _ in range(length):
        digits.append(CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(digits))


def test_the_fast_encoding_matches_the_reference() -> None:
    rng = random.Random(7)
    for _ in range(5_000):
        when, noise = rng.getrandbits(48), rng.getrandbits(80)
        expected = reference_encoding(when, 10) + reference_encoding(noise, 16)
        assert ids._encode_ulid((when << 80) | noise) == expected


@pytest.mark.parametrize("kind", ["conversation", "message", "attachment"])
def test_minted_ids_are_valid_unique_and_increasing(kind: ids.IdKind) -> None:
    minted = [ids.new_id(kind) for _ in range(20_000)]
    assert minted == sorted(minted)
    assert len(set(minted)) == len(minted)
    assert all(ids.check_id(kind, value) == value for value in minted)


def test_an_id_of_one_kind_is_not_valid_as_another() -> None:
    with pytest.raises(InvalidId):
        ids.check_id("message", ids.new_id("conversation"))
