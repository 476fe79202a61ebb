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
