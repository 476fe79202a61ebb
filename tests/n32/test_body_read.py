"""n32.body.read: one parse per bytes object for read-only steps, with every check kept."""
from __future__ import annotations

import pytest

from n32 import body
from n32.errors import N32Error


def test_the_same_bytes_object_is_parsed_once():
    raw = b'{"a":{"b":[1,2]}}'
    first = body.read(raw)
    assert body.read(raw) is first and body.read(raw, unique=True) is first
    assert body.read(bytes(bytearray(raw))) == first      # another object: parsed again, same value


def test_duplicates_are_refused_by_a_unique_read_after_a_plain_one():
    raw = b'{"a":1,"a":2}'
    assert body.read(raw) == {"a": 2}                     # plain: the last wins, as json
    with pytest.raises(N32Error) as ei:
        body.read(raw, unique=True)
    assert ei.value.status == 400 and "duplicate" in ei.value.detail


def test_limits_are_checked_on_every_read_and_not_json_is_told():
    raw = b'{"a":[[[[1]]]]}'
    body.read(raw)
    with pytest.raises(N32Error):
        body.read(raw, body.Limits(depth=2))
    assert body.read(b"not json", or_not_json=True) is body.NOT_JSON
    with pytest.raises(N32Error):
        body.read(b"not json")
