"""n32.multipart: multipart/related bodies (TS 29.500 §6.1, RFC 2387) split and written back."""
from __future__ import annotations

import pytest

from n32 import multipart

PARTS = [([("content-type", "application/json")], b'{"n1":1}'),
         ([("content-type", "application/vnd.3gpp.5gnas"), ("content-id", "n1msg")], b"\x7e\x00\r\n--x"),
         ([], b"")]


def test_round_trip_keeps_binary_parts():
    body = multipart.serialize("b0undary", PARTS)
    assert multipart.parse("b0undary", body) == PARTS


def test_content_type_parameters():
    ct = 'Multipart/Related; boundary="abc def"; type="application/json"'
    assert multipart.media_type(ct) == ("multipart/related", {"boundary": "abc def", "type": "application/json"})
    assert multipart.boundary(ct) == "abc def"
    assert multipart.boundary("application/json; boundary=x") is None


def test_boundary_inside_a_part_is_refused():
    with pytest.raises(ValueError):
        multipart.serialize("x", [([], b"a\r\n--x\r\n")])


@pytest.mark.parametrize("body", [
    b"", b"--b\r\n\r\nno close", b"--b\r\ncontent-type: a\r\nno header end--b--",
    b"--b junk\r\n\r\nx\r\n--b--", b"--b\r\nbad header line\r\n\r\nx\r\n--b--",
])
def test_malformed_bodies_are_value_errors(body):
    with pytest.raises(ValueError):
        multipart.parse("b", body)
