"""n32.wellformed: the request line and header values a SEPP routes, and the answer to a request
the HTTP layer refused."""
from __future__ import annotations

import pytest

from n32 import edge, wellformed
from n32.errors import N32Error
from n32.message import HttpRequest

UDM = "https://udm.5gc.mnc070.mcc999.3gppnetwork.org"


def _req(path: str = "/nudm-sdm/v2/imsi-999700000000001/nssai", query: str = "", headers=()) -> HttpRequest:
    return HttpRequest("GET", "https", "sepp", path, query, [("3gpp-sbi-target-apiroot", UDM), *headers])


@pytest.mark.parametrize("path,query", [("*", ""), (UDM + "/nudm-sdm/v2/x/nssai", ""), ("", ""),
                                        ("/nudm-sdm/v2/imsi 1/nssai", ""), ("/a\tb", ""), ("/a", "x=1 2"),
                                        ("/a\0", "")])
def test_paths_a_peer_would_refuse_are_400_naming_path(path, query):
    with pytest.raises(N32Error) as e:
        wellformed.check_request(_req(path, query))
    assert (e.value.status, e.value.cause) == (400, "INVALID_MSG_FORMAT")
    assert e.value.invalid_params[0]["param"] == ":path"


@pytest.mark.parametrize("value", ["a\0b", "a\rb", "a\r\nx-smuggled: 1", "\n"])
def test_control_characters_in_a_header_value_are_400_naming_the_header(value):
    with pytest.raises(N32Error) as e:
        wellformed.check_request(_req(headers=[("x-ok", "fine"), ("x-bad", value)]))
    assert (e.value.status, e.value.cause) == (400, "INVALID_MSG_FORMAT")
    assert e.value.invalid_params[0]["param"] == "x-bad"


def test_a_usual_request_passes():
    wellformed.check_request(_req(query="dataset-names=AM&plmn-id=%7B%22mcc%22%3A%22001%22%7D",
                                  headers=[("user-agent", "AMF-x"), ("accept", "application/json, */*")]))


def test_both_edges_check_it():
    """The cSEPP for its NF's request, the pSEPP for the peer's (TLS mode, or restored)."""
    e = edge.Edge()
    for step in (e.from_own_nf, e.from_peer):
        with pytest.raises(N32Error) as err:
            step(_req("*"))
        assert err.value.status == 400


@pytest.mark.parametrize("status,expect", [(400, (400, "INVALID_MSG_FORMAT")), (None, (400, "INVALID_MSG_FORMAT")),
                                           (502, (400, "INVALID_MSG_FORMAT")), (413, (413, "PAYLOAD_TOO_LARGE"))])
def test_a_refusal_of_the_http_layer_is_never_a_5xx(status, expect):
    err = wellformed.refused_by_http_layer(status, "x" * 5000)
    assert (err.status, err.cause) == expect
    assert len(err.detail) < 600


def test_a_body_over_the_limit_is_413_without_the_library_words():
    err = wellformed.refused_by_http_layer(413, "Request body exceeds mitmproxy's body_size_limit.")
    assert (err.status, err.cause) == (413, "PAYLOAD_TOO_LARGE") and "mitmproxy" not in err.detail


def test_two_target_api_roots_are_400():
    """We would route on the first; a TLS-mode peer or an NF may take the other."""
    with pytest.raises(N32Error) as e:
        wellformed.check_request(_req(headers=[("3gpp-sbi-target-apiroot",
                                                "https://udm.5gc.mnc001.mcc001.3gppnetwork.org")]))
    assert (e.value.status, e.value.invalid_params[0]["param"]) == (400, "3gpp-sbi-target-apiroot")


@pytest.mark.parametrize("field,param", [
    ({"headers": [("x-a", "caf\udce9")]}, "x-a"),               # mitmproxy's form of the octet 0xE9
    ({"path": "/nudm-sdm/v2/\udcff/nssai"}, ":path"),
    ({"query": "a=\udce9"}, ":path"),
    ({"method": "G\udce9T"}, ":method"),
    ({"method": "GE T"}, ":method"),
], ids=["header", "path", "query", "method-octet", "method-space"])
def test_octets_that_are_not_utf8_and_methods_that_are_no_token_are_400(field, param):
    """They reached the encoding for the next hop and raised: 500 SYSTEM_FAILURE."""
    kw = {"path": "/nudm-sdm/v2/imsi-999700000000001/nssai", "query": "", "headers": [], "method": "GET", **field}
    req = HttpRequest(kw["method"], "https", "sepp", kw["path"], kw["query"],
                      [("3gpp-sbi-target-apiroot", UDM), *kw["headers"]])
    with pytest.raises(N32Error) as e:
        wellformed.check_request(req)
    assert (e.value.status, e.value.invalid_params[0]["param"]) == (400, param)


def test_utf8_beyond_ascii_passes():
    wellformed.check_request(_req(headers=[("x-a", "café")]))


def test_an_n32f_message_the_receiver_would_refuse_is_refused_by_its_sender():
    """The NF's body sits a few levels deeper in the aad: 62 levels pass the NF-side check, not
    the receiver's check of the aad."""
    import json

    from n32 import body, jwe

    limits = body.Limits()
    nf_body = {"x": json.loads("[" * 62 + "]" * 62)}
    body.check(json.dumps(nf_body).encode(), limits)             # within the limits as the NF sent it
    aad = jwe.b64url_encode(json.dumps({"payload": [{"iePath": "/", "value": nf_body}]}).encode())
    with pytest.raises(N32Error) as e:
        wellformed.check_carried(b'{"reformattedData":{}}', aad, limits)
    assert (e.value.status, e.value.cause) == (400, "INVALID_MSG_FORMAT") and "aad" in e.value.detail
    with pytest.raises(N32Error) as e:
        wellformed.check_carried(b" " * (limits.body + 1), jwe.b64url_encode(b"{}"), limits)
    assert (e.value.status, e.value.cause) == (413, "PAYLOAD_TOO_LARGE")
    wellformed.check_carried(b'{"reformattedData":{}}', jwe.b64url_encode(b'{"a":[1]}'), limits)


@pytest.mark.parametrize("value", ["caf\udce9", "a\0b", "a\r\nx: y"])
def test_an_nf_answer_that_cannot_be_carried_is_502_before_it_is_protected(value):
    """A header value with an octet that is not UTF-8 raised in the protection (a 500 and a
    traceback in the receiving SEPP); edge.to_peer refuses it first, in both modes."""
    from n32.message import HttpResponse

    rsp = HttpResponse(200, [("content-type", "application/json"), ("x-a", value)], b"{}")
    with pytest.raises(N32Error) as e:
        edge.Edge().to_peer(rsp)
    assert e.value.status == 502 and "x-a" in e.value.detail
    edge.Edge().to_peer(HttpResponse(200, [("x-a", "café")], b""))
