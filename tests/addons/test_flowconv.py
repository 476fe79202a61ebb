"""addons/flowconv.py: the response we hand mitmproxy is the one ``Response.make`` would make."""
from __future__ import annotations

import pytest
from mitmproxy import http

from addons import flowconv
from n32.message import HttpResponse


@pytest.mark.parametrize("rsp", [
    HttpResponse(200, [("content-type", "application/json"), ("x-a", "1"), ("x-a", "2")], b'{"a":1}'),
    HttpResponse(204, [], b""),
    HttpResponse(403, [("content-type", "application/problem+json"), ("content-encoding", "gzip"),
                       ("content-length", "999"), ("connection", "close")], b'{"cause":"X"}'),
    HttpResponse(599, [("server", "nf")], b"\xff\x00"),
])
def test_response_from_equals_response_make(rsp):
    ours = flowconv.response_from(rsp)
    made = http.Response.make(rsp.status, rsp.body, flowconv._header_obj(rsp.headers, rsp.body))
    mine, theirs = ours.get_state(), made.get_state()
    for k in ("timestamp_start", "timestamp_end"):
        assert abs(mine.pop(k) - theirs.pop(k)) < 5
    assert mine == theirs
    assert ours.headers.get_all("content-length") == [str(len(rsp.body))]
    assert "content-encoding" not in ours.headers and "connection" not in ours.headers
    assert ours.content == rsp.body and ours.status_code == rsp.status and ours.reason == made.reason
    # a copy (as mitmproxy makes when saving a flow) and a state round trip work on it
    assert http.Response.from_state(ours.get_state()).get_state() == ours.get_state()
    assert ours.copy().content == rsp.body


@pytest.mark.parametrize("fields, content", [
    ([(b"Content-Type", b"application/json"), (b"X-A", b"\xc3\xa9"), (b"x-a", b"\xff"), (b"Connection", b"x")], b'{"a":1}'),
    ([(b"content-encoding", b"gzip"), (b"content-type", b"application/json")], None),
    ([(b"content-encoding", b"bogus")], b"raw"),
])
def test_request_conversion_equals_mitmproxys_own_reading(fields, content):
    import gzip
    raw = gzip.compress(b'{"z":2}') if content is None else content
    r = http.Request.make("POST", "https://a.example/p/q?x=1", raw, fields)
    got = flowconv.to_http_request(r)
    want = [(k.lower(), v) for k, v in r.headers.items(multi=True) if k.lower() not in flowconv.HOP_BY_HOP]
    assert got.headers == want and got.body == (r.get_content(strict=False) or b"")
    assert (got.path, got.query) == ("/p/q", "x=1")
