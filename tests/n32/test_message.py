"""n32.message: the sans-I/O HTTP messages the core rewrites."""
from __future__ import annotations

import pytest

from n32.message import HttpRequest, HttpResponse


def test_header_lookup_is_case_insensitive_and_returns_the_first_value():
    req = HttpRequest("GET", "https", "nf.example:443", "/nudm-sdm/v2/imsi-001010000000001/am-data",
                      headers=[("accept", "application/json"), ("via", "a"), ("via", "b")])
    assert req.header("Accept") == "application/json"
    assert req.header("VIA") == "a"
    assert req.header("content-type") is None


def test_target_is_the_path_with_the_query_when_there_is_one():
    req = HttpRequest("GET", "https", "nf", "/nudm-sdm/v2/x/am-data")
    assert req.target == "/nudm-sdm/v2/x/am-data"
    req.query = "plmn-id=%7B%22mcc%22%3A%22001%22%7D"
    assert req.target == "/nudm-sdm/v2/x/am-data?plmn-id=%7B%22mcc%22%3A%22001%22%7D"


def test_defaults_are_not_shared_between_messages():
    a, b = HttpResponse(200), HttpResponse(200)
    a.headers.append(("content-type", "application/json"))
    assert b.headers == [] and a.body == b.body == b""


def test_evolve_is_a_shallow_copy_with_changes_like_dataclasses_replace():
    import dataclasses
    req = HttpRequest("POST", "https", "ausf.example.org", "/x", "a=1", [("content-type", "application/json")], b"{}")
    out = req.evolve(headers=[("accept", "*/*")], body=b"[]")
    assert out == dataclasses.replace(req, headers=[("accept", "*/*")], body=b"[]") and out is not req
    assert req.headers == [("content-type", "application/json")] and req.body == b"{}"     # untouched
    assert req.evolve() == req and req.evolve().headers is req.headers                    # shallow
    rsp = HttpResponse(200, [], b"")
    assert rsp.evolve(status=404) == HttpResponse(404, [], b"") and type(rsp.evolve()) is HttpResponse
    with pytest.raises(TypeError):
        req.evolve(status=200)
