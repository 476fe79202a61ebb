"""n32/body.py: JSON bodies parsed under explicit limits, checked before the parser, and the core
steps that read NF bodies answering hostile ones with 400/413 instead of a RecursionError (issue 13
item 2)."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from n32 import body, edge, origin, prins, wire
from n32.errors import N32Error
from n32.message import HttpRequest, HttpResponse
from n32.reformat import IeSelection
from tests.n32.test_suites import _context

DEEP = b"[" * 10_000 + b"]" * 10_000
DEEP_OBJECT = b'{"a":' * 10_000 + b"1" + b"}" * 10_000
SMALL = body.Limits(body=2048, depth=3, members=5, string=4)


def refused(raw: bytes, limits: body.Limits = body.DEFAULT) -> N32Error:
    with pytest.raises(N32Error) as e:
        body.loads(raw, limits)
    return e.value


@pytest.mark.parametrize("raw,value", [
    (b"[[[1]]]", [[[1]]]),
    (b"[1,2,3,4,5]", [1, 2, 3, 4, 5]),
    (b"[[],[],[],[],[]]", [[], [], [], [], []]),
    (b'{"a":"[[[[[[[,,,,,,,,,{{{{"}', None),          # brackets and commas in strings do not count...
    (b'{"a":"\\"[[[[[[[[\\""}', None),                 # ...also next to escaped quotes
    (b'["abcd"]', ["abcd"]),
    (b'[[[]],[[]]]', [[[]], [[]]]),
])
def test_within_small_limits(raw, value):
    doc = body.loads(raw, body.Limits(depth=3, members=5, string=32 if value is None else 4))
    assert doc == (value if value is not None else json.loads(raw))


@pytest.mark.parametrize("raw,reason", [
    (b"[[[[1]]]]", "nested deeper than 3 levels"),
    (b"[[[[]]],1]", "nested deeper than 3 levels"),
    (b"[1,2,3,4,5,6]", "more than 5 members"),
    (b"[[],[],[],[],[],[]]", "more than 5 members"),
    (b'{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6}', "more than 5 members"),
    (b'["abcde"]', "a string of 5 octets exceeds the limit of 4"),
    (b'["ab\\"ef"]', "a string of 6 octets exceeds the limit of 4"),
    (b"x" * 2049, "2049 octets exceed the limit of 2048"),
    (b'{"a": NaN}', "not valid JSON"),
    (b"{not json", "not valid JSON"),
])
def test_beyond_small_limits(raw, reason):
    err = refused(raw, SMALL)
    assert reason in err.detail
    assert (err.status, err.cause) == ((413, "PAYLOAD_TOO_LARGE") if len(raw) > 2048 else (400, "INVALID_MSG_FORMAT"))


@pytest.mark.parametrize("raw", [DEEP, DEEP_OBJECT, b"[" * 2_000_000 + b"]" * 2_000_000, b"[" + b"1," * 200_000 + b"1]"])
def test_hostile_bodies_are_400_with_default_limits(raw):
    err = refused(raw)
    assert err.status == 400 and err.cause == "INVALID_MSG_FORMAT" and err.invalid_params[0]["param"] == "body"


def test_duplicates_refused_only_when_asked():
    assert body.loads(b'{"a":1,"a":2}') == {"a": 2}
    with pytest.raises(N32Error, match="duplicate member 'a'"):
        body.loads(b'{"a":1,"a":2}', unique=True)


def test_is_json_and_rewrite_keeps_content_length():
    assert wire.is_json("application/json; charset=utf-8") and wire.is_json("application/problem+json")
    assert wire.is_json("Application/Merge-Patch+JSON") and not wire.is_json("multipart/related; boundary=x")
    assert not wire.is_json(None) and not wire.is_json("text/plain")
    raw = b'{"a": 1}'
    msg = HttpResponse(200, [("content-type", "application/json"), ("content-length", str(len(raw)))], raw)
    new = body.rewrite(msg, lambda d: {**d, "b": "two"})
    assert json.loads(new.body) == {"a": 1, "b": "two"} and new.header("content-length") == str(len(new.body))
    assert body.rewrite(msg, lambda d: d) is msg
    not_json = HttpResponse(200, [("content-type", "application/json")], b"{oops")
    assert body.rewrite(not_json, lambda d: {"x": 1}) is not_json      # left to the layer that owns it


# ------------------------------------------------------------------ the core steps that read NF bodies
V_SEPP = "sepp.5gc.mnc001.mcc001.3gppnetwork.org"
NF = [("content-type", "application/json")]


def nf_request(raw: bytes) -> HttpRequest:
    return HttpRequest("POST", "https", "ausf.5gc.mnc070.mcc999.3gppnetwork.org", "/nausf-auth/v1/ue-authentications",
                       headers=NF + [("content-length", str(len(raw)))], body=raw)


@pytest.mark.parametrize("raw", [DEEP, DEEP_OBJECT])
def test_core_steps_refuse_deep_bodies_with_400(raw):
    e = edge.build(telescopic_domain=V_SEPP, hiding=True, plmn="001-01", secret=b"v" * 32, exclude=[V_SEPP])
    steps = [
        lambda: e.from_own_nf(nf_request(raw)),                          # topology hiding of our NF's request
        lambda: e.from_peer(nf_request(raw)),                            # pseudonyms restored, callbacks rewritten
        lambda: e.to_peer(HttpResponse(200, NF, raw)),
        lambda: e.to_own_nf("GET", "/nnrf-disc/v1/nf-instances", HttpResponse(200, NF, raw)),
        lambda: origin.check_plmn_consistency(nf_request(raw), ["999-70"]),
        lambda: prins.protect_request(_context("initiator", "A128GCM"), nf_request(raw), IeSelection(body=("/a",)),
                                      prins.new_message_id()),
    ]
    for step in steps:
        with pytest.raises(N32Error) as err:
            step()
        assert err.value.status == 400 and err.value.cause == "INVALID_MSG_FORMAT", err.value


def test_configured_limits_reach_the_edge():
    e = edge.build(telescopic_domain=V_SEPP, hiding=False, plmn="001-01", limits=body.Limits(depth=8))
    shallow = b'{"a":' * 8 + b"1" + b"}" * 8
    assert e.from_peer(nf_request(shallow)).body == shallow
    with pytest.raises(N32Error, match="nested deeper than 8 levels"):
        e.from_peer(nf_request(b'{"a":' * 9 + b"1" + b"}" * 9))


def _reference_loads(raw: bytes, limits: body.Limits) -> object:
    """loads as first written: the pre-scan, then the parser."""
    body.check(raw, limits)
    try:
        return body.fast_loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise body._too("body", f"not valid JSON: {e}") from None


_TEXTS = st.one_of(
    st.dictionaries(st.text(max_size=4), st.text(max_size=6) | st.dictionaries(st.text(max_size=3), st.text(max_size=3),
                                                                                max_size=5), max_size=6)
    .map(lambda d: json.dumps(d, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass")),
    st.recursive(st.integers(-2**70, 2**70) | st.text(max_size=3) | st.none(),
                 lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=2), inner, max_size=3),
                 max_leaves=12).map(lambda d: json.dumps(d, ensure_ascii=False).encode("utf-8", "surrogatepass")),
    st.dictionaries(st.text(max_size=2), st.lists(st.text(max_size=2) | st.lists(st.text(max_size=2), max_size=3),
                                                  max_size=4), max_size=3)
    .map(lambda d: json.dumps(d, separators=(",", ":")).encode()),
    st.sampled_from([b'{"a":{"b":{"c":"d"}}}', b'{"a":[[[]]]}', b'{"a":[[],{}]}', b'{"a":"' + b"x" * 9 + b'"}', b'{"a":"b","a":"c"}', b"{", b'{"a":1e400}',
                     b'{"a":"\\ud800"}', DEEP_OBJECT, b'\xef\xbb\xbf{"a":"b"}', b'{"a":"b"} x']))


@settings(max_examples=400, deadline=None)
@given(_TEXTS, st.sampled_from([body.DEFAULT, SMALL, body.Limits(depth=1, members=2, string=8),
                                 body.Limits(depth=1, members=3), body.Limits(depth=2, members=4),
                                 body.Limits(depth=3, members=6)]))
def test_loads_parses_first_with_the_verdicts_of_checking_first(raw, limits):
    """Small objects of strings skip the pre-scan: the same value or the same error as before."""
    try:
        expected = ("ok", _reference_loads(raw, limits))
    except N32Error as e:
        expected = ("error", e.status, e.cause, e.detail)
    try:
        got = ("ok", body.loads(raw, limits))
    except N32Error as e:
        got = ("error", e.status, e.cause, e.detail)
    assert got == expected
