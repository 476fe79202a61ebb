"""n32.pointer: JSON pointers (RFC 6901) over jsonpointer, with the ``*`` patterns of policies."""
from __future__ import annotations

import pytest

from n32 import pointer

DOC = {"a": [{"b/c": 1}, {"b/c": 2, "~x": 3}], "m": {"k": None}, "01": "x"}


def test_escape_join_child():
    assert pointer.join(["a", 0, "b/c"]) == "/a/0/b~1c"
    assert pointer.child("/a", "~x") == "/a/~0x"
    assert pointer.tokens("/a/0/b~1c") == ["a", "0", "b/c"]


@pytest.mark.parametrize("ptr,present", [
    ("/a/1/~0x", True), ("/m/k", True), ("/a/0/b~1c", True), ("/01", True),
    ("/a/2", False), ("/a/01", False),          # RFC 6901 §4: no leading zeros, within the array
    ("/a/-", False), ("/m/k/z", False), ("a", False), ("/a/x", False),
])
def test_exists(ptr, present):
    assert pointer.exists(DOC, ptr) is present


def test_walk_with_wildcards_skips_absent_members():
    assert [p for _, _, p in pointer.walk(DOC, "/a/*/b~1c")] == ["/a/0/b~1c", "/a/1/b~1c"]
    assert [p for _, _, p in pointer.walk(DOC, "/a/*/~0x")] == ["/a/1/~0x"]
    container, key, _ = next(pointer.walk(DOC, "/m/k"))
    assert container is DOC["m"] and key == "k"
    assert list(pointer.walk(DOC, "/nothing/*")) == [] and list(pointer.walk(DOC, "")) == []
    with pytest.raises(ValueError):
        list(pointer.walk(DOC, "no-slash"))
