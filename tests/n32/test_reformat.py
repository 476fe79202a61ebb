"""Reformatting of HTTP messages into DataToIntegrityProtectBlock + dataToEncrypt and back
(n32/reformat.py, n32/multipart.py; TS 29.573 §6.2.5, Annex B; profile 13-16a, 21-23)."""
from __future__ import annotations

import functools
import json
import re
import string
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from lab.h2server import multipart_decode, multipart_encode
from lab.scenario import n1_establishment_request
from n32 import errors
from n32.errors import N32Error
from n32.message import HttpRequest, HttpResponse
from n32.reformat import (IeSelection, contains_enc_block_index, reformat_request, reformat_response,
                          restore_request, restore_response)

META = {"n32fContextId": "0123456789abcdef", "messageId": "7", "authorizedIpxId": "NULL"}
SUPI = "imsi-999700000000001"
AUSF = "ausf.5gc.mnc070.mcc999.3gppnetwork.org"


def wire(block: dict, data: list) -> tuple[dict, list]:
    """What the receiver gets: both parts through JSON (they travel as JWE aad / plaintext)."""
    return json.loads(json.dumps(block)), json.loads(json.dumps(data))


def jbody(doc) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def request(path="/nausf-auth/v1/ue-authentications", query="", headers=None, body=b"", method="POST"):
    return HttpRequest(method, "https", AUSF, path, query, list(headers or []), body)


# ----------------------------------------------------------------------------- Annex B-like
def test_annex_b_request_shape():
    body = {"supiOrSuci": SUPI, "servingNetworkName": "5G:mnc001.mcc001.3gppnetwork.org"}
    req = request(headers=[("content-type", "application/json"), ("authorization", "Bearer abc.def")],
                  body=jbody(body))
    block, data = reformat_request(req, IeSelection(body=("/supiOrSuci",), headers=("authorization",)), META)
    assert block == {
        "metaData": META,
        "requestLine": {"method": "POST", "scheme": "https", "authority": AUSF,
                        "path": "/nausf-auth/v1/ue-authentications", "protocolVersion": "HTTP/2"},
        "headers": [{"header": "content-type", "value": "application/json"},
                    {"header": "authorization", "value": {"encBlockIndex": 0}}],
        "payload": [{"iePath": "/supiOrSuci", "ieValueLocation": "BODY", "value": {"encBlockIndex": 1}},
                    {"iePath": "/servingNetworkName", "ieValueLocation": "BODY",
                     "value": "5G:mnc001.mcc001.3gppnetwork.org"}],
    }
    assert data == ["Bearer abc.def", SUPI]
    assert restore_request(*wire(block, data)) == req


def test_response_nested_selection_and_status_line():
    ctx = {"authType": "5G_AKA", "5gAuthData": {"rand": "R" * 32, "autn": "A" * 32, "hxresStar": "H" * 32},
           "_links": {"5g-aka": {"href": "https://ausf/x"}}}
    rsp = HttpResponse(201, [("content-type", "application/3gppHal+json"), ("location", "https://ausf/ctx1")],
                       jbody(ctx))
    sel = IeSelection(body=("/5gAuthData/rand", "/5gAuthData/autn", "/5gAuthData/hxresStar"))
    block, data = reformat_response(rsp, sel, META)
    assert block["statusLine"] == "201" and "requestLine" not in block
    assert block["payload"][1] == {"iePath": "/5gAuthData", "ieValueLocation": "BODY",
                                   "value": {"rand": {"encBlockIndex": 0}, "autn": {"encBlockIndex": 1},
                                             "hxresStar": {"encBlockIndex": 2}}}
    assert data == ["R" * 32, "A" * 32, "H" * 32]
    assert restore_response(*wire(block, data)) == rsp


def test_outermost_pattern_wins_and_wildcards_match_names_and_indices():
    doc = {"a": {"b": 1, "c": [{"x": 1, "y": 2}, {"x": 3}]}, "m": {"k1": {"s": "p"}, "k2": {"s": "q"}}}
    req = request(headers=[("content-type", "application/json")], body=jbody(doc))
    block, data = reformat_request(req, IeSelection(body=("/a/c/*/x", "/m/*/s", "/a", "/a/b")), META)
    assert data == [doc["a"], "p", "q"]           # /a taken whole, once; /m/*/s in document order
    assert block["payload"][0]["value"] == {"encBlockIndex": 0}
    assert block["payload"][1]["value"] == {"k1": {"s": {"encBlockIndex": 1}}, "k2": {"s": {"encBlockIndex": 2}}}
    assert json.loads(restore_request(*wire(block, data)).body) == doc


def test_escaped_member_names_in_ie_path_and_pattern():
    doc = {"a/b": {"~t": "secret"}, "": 1}
    req = request(headers=[("content-type", "application/json")], body=jbody(doc))
    block, data = reformat_request(req, IeSelection(body=("/a~1b/~0t",)), META)
    assert [e["iePath"] for e in block["payload"]] == ["/a~1b", "/"]
    assert data == ["secret"]
    assert json.loads(restore_request(*wire(block, data)).body) == doc


@pytest.mark.parametrize("doc", [[1, {"supi": SUPI}], "text", 3, None, {}])
def test_non_object_or_empty_json_body_is_one_document_entry(doc):
    req = request(headers=[("content-type", "application/json-patch+json")], body=jbody(doc))
    sel = IeSelection(body=("/1/supi",))
    block, data = reformat_request(req, sel, META)
    assert [e["iePath"] for e in block["payload"]] == [""]
    assert data == ([SUPI] if isinstance(doc, list) else [])
    assert json.loads(restore_request(*wire(block, data)).body) == doc


def test_whole_document_pattern():
    req = request(headers=[("content-type", "application/json")], body=jbody({"x": 1}))
    block, data = reformat_request(req, IeSelection(body=("",)), META)
    assert block["payload"] == [{"iePath": "", "ieValueLocation": "BODY", "value": {"encBlockIndex": 0}}]
    assert data == [{"x": 1}] and json.loads(restore_request(*wire(block, data)).body) == {"x": 1}


def test_json_body_restored_compact_and_content_length_updated():
    raw = b'{ "supi" : "imsi-1",\n  "x": [1, 2] }'
    req = request(headers=[("content-type", "application/json"), ("content-length", str(len(raw)))], body=raw)
    out = restore_request(*wire(*reformat_request(req, IeSelection(body=("/supi",)), META)))
    assert out.body == b'{"supi":"imsi-1","x":[1,2]}'
    assert out.header("content-length") == str(len(out.body))


def test_no_headers_no_body_omit_members():
    req = request(method="GET", path="/nudm-sdm/v2/x/nssai")
    block, data = reformat_request(req, IeSelection(), META)
    assert set(block) == {"metaData", "requestLine"} and data == []
    assert restore_request(block, data) == req


# ----------------------------------------------------------------------------- URI (profile 16a, 22)
def test_path_segment_and_query_values():
    path = f"/nudm-sdm/v2/{SUPI}/am-data"
    query = "plmn-id=%7B%22mcc%22%3A%22001%22%7D&supported-features=2&plmn-id=raw%20x"
    req = request(method="GET", path=path, query=query)
    block, data = reformat_request(req, IeSelection(path_segments=(2,), query=("plmn-id",)), META)
    line = block["requestLine"]
    assert line["path"] == "/nudm-sdm/v2/{encBlockIndex:0}/am-data"
    assert line["queryFragment"] == "plmn-id={encBlockIndex:1}&supported-features=2&plmn-id={encBlockIndex:2}"
    assert block["payload"] == [
        {"iePath": "/requestLine/path/2", "ieValueLocation": "URI_PARAM", "value": {"encBlockIndex": 0}},
        {"iePath": "/requestLine/query/plmn-id", "ieValueLocation": "URI_PARAM", "value": {"encBlockIndex": 1}},
        {"iePath": "/requestLine/query/plmn-id", "ieValueLocation": "URI_PARAM", "value": {"encBlockIndex": 2}}]
    assert data == [SUPI, "%7B%22mcc%22%3A%22001%22%7D", "raw%20x"]    # raw, still percent-encoded
    assert restore_request(*wire(block, data)) == req


def test_query_name_is_compared_decoded_and_flag_parameters_stay():
    req = request(method="GET", path="/x", query="gpsi%2Dlist=msisdn-1&flag&gpsi-list=")
    block, data = reformat_request(req, IeSelection(query=("gpsi-list",)), META)
    assert block["requestLine"]["queryFragment"] == "gpsi%2Dlist={encBlockIndex:0}&flag&gpsi-list={encBlockIndex:1}"
    assert data == ["msisdn-1", ""]
    assert block["payload"][0]["iePath"] == "/requestLine/query/gpsi%2Dlist"
    assert restore_request(*wire(block, data)) == req


def test_path_segment_out_of_range_is_ignored():
    req = request(method="GET", path="/a/b")
    block, data = reformat_request(req, IeSelection(path_segments=(5,)), META)
    assert block["requestLine"]["path"] == "/a/b" and data == []


# ----------------------------------------------------------------------------- headers
def test_selected_headers_each_occurrence_and_lower_case():
    req = request(headers=[("Authorization", "Bearer a"), ("x-b", "1"), ("authorization", "Bearer b")])
    block, data = reformat_request(req, IeSelection(headers=("authorization",)), META)
    assert block["headers"] == [{"header": "authorization", "value": {"encBlockIndex": 0}},
                                {"header": "x-b", "value": "1"},
                                {"header": "authorization", "value": {"encBlockIndex": 1}}]
    assert data == ["Bearer a", "Bearer b"]
    assert restore_request(*wire(block, data)).headers == [("authorization", "Bearer a"), ("x-b", "1"),
                                                           ("authorization", "Bearer b")]


def test_annex_b_headerval_form_is_accepted():
    block = {"metaData": META, "statusLine": "200",
             "headers": [{"header": "x-a", "value": {"headerval": "clear"}},
                         {"header": "x-b", "value": {"headerval": {"encBlockIndex": 0}}}]}
    assert restore_response(block, ["enc"]).headers == [("x-a", "clear"), ("x-b", "enc")]


@pytest.mark.parametrize("line,status", [("200", 200), ("HTTP/2 404 Not Found", 404), (503, 503)])
def test_status_line_first_three_digit_number(line, status):
    assert restore_response({"statusLine": line}, []).status == status


# ----------------------------------------------------------------------------- other bodies
@pytest.mark.parametrize("encrypt", [False, True])
def test_opaque_body_round_trips_byte_for_byte(encrypt):
    raw = bytes(range(256)) + b"\r\n--x"
    rsp = HttpResponse(200, [("content-type", "application/vnd.3gpp.ngap")], raw)
    block, data = reformat_response(rsp, IeSelection(binary_parts=encrypt), META)
    value = block["payload"][0]["value"]["contentBase64"]
    assert (value == {"encBlockIndex": 0}) is encrypt and len(data) == int(encrypt)
    assert restore_response(*wire(block, data)).body == raw


# ----------------------------------------------------------------------------- multipart (RFC 2387)
def smf_create(compact: bool, n1: bytes | None = None) -> tuple[HttpRequest, dict, bytes]:
    data = {"supi": SUPI, "pduSessionId": 5, "ueLocation": {"nrLocation": {"ncgi": {"nrCellId": "000000001"}}},
            "n1SmInfoFromUe": {"contentId": "n1SmMsg"}}
    root = jbody(data) if compact else json.dumps(data).encode()
    n1 = n1 if n1 is not None else n1_establishment_request(1, 5)
    ctype, body = multipart_encode([([("content-type", "application/json")], root),
                                    ([("content-type", "application/vnd.3gpp.5gnas"), ("content-id", "n1SmMsg")], n1)],
                                   boundary="lab-boundary-1-5")
    req = request(path="/nsmf-pdusession/v1/pdu-sessions", headers=[("content-type", ctype),
                                                                      ("content-length", str(len(body)))], body=body)
    return req, data, n1


@pytest.mark.parametrize("encrypt_binary", [False, True])
def test_multipart_byte_for_byte(encrypt_binary):
    req, data, n1 = smf_create(compact=True)
    assert b"\r\n--\r\n" in n1                    # a CRLF-dash sequence inside the binary part
    block, enc = reformat_request(req, IeSelection(body=("/supi", "/ueLocation"), binary_parts=encrypt_binary), META)
    root, *members, part = block["payload"]
    assert root == {"iePath": "", "ieValueLocation": "MULTIPART_BINARY", "value": {"contentType": "application/json"}}
    assert [m["iePath"] for m in members] == ["/supi", "/pduSessionId", "/ueLocation", "/n1SmInfoFromUe"]
    assert part["iePath"] == "/n1SmMsg" and part["ieValueLocation"] == "MULTIPART_BINARY"
    assert part["value"]["contentType"] == "application/vnd.3gpp.5gnas" and part["value"]["contentId"] == "n1SmMsg"
    assert (part["value"]["data"] == {"encBlockIndex": 2}) is encrypt_binary
    assert len(enc) == 2 + encrypt_binary
    out = restore_request(*wire(block, enc))
    assert out.body == req.body and out.headers == req.headers


def test_multipart_with_lab_spacing_keeps_parts_and_json_data():
    req, data, n1 = smf_create(compact=False)
    out = restore_request(*wire(*reformat_request(req, IeSelection(body=("/supi",)), META)))
    ctype = out.header("content-type")
    parts = multipart_decode(ctype, out.body)
    assert json.loads(parts[0][1]) == data and parts[1] == multipart_decode(ctype, req.body)[1]
    assert out.header("content-length") == str(len(out.body)) != str(len(req.body))


def test_multipart_part_headers_brackets_and_headerless_parts():
    body = (b"--b1\r\ncontent-type: application/json\r\ncontent-id: <root@x>\r\n\r\n{\"a\":1}\r\n"
            b"--b1\r\ncontent-type: application/vnd.3gpp.ngap\r\ncontent-id: <n2@x>\r\n"
            b"content-transfer-encoding: binary\r\n\r\n\x00\x01\r\n"
            b"--b1\r\n\r\nno headers\r\n--b1--\r\n")
    rsp = HttpResponse(200, [("content-type", 'multipart/related; boundary="b1"; start="<root@x>"')], body)
    block, data = reformat_response(rsp, IeSelection(binary_parts=True), META)
    entries = block["payload"]
    assert [e["iePath"] for e in entries] == ["/root@x", "/a", "/n2@x", ""]
    assert entries[2]["value"]["headers"] == [{"header": "content-transfer-encoding", "value": "binary"}]
    assert entries[2]["value"]["contentId"] == "<n2@x>"
    assert restore_response(*wire(block, data)).body == body


def test_multipart_without_json_root_has_data_in_every_part():
    body = b"--q\r\ncontent-type: application/octet-stream\r\n\r\nAB\r\n--q--\r\n"
    req = request(headers=[("content-type", "multipart/related; boundary=q")], body=body)
    block, data = reformat_request(req, IeSelection(), META)
    assert block["payload"] == [{"iePath": "", "ieValueLocation": "MULTIPART_BINARY",
                                 "value": {"contentType": "application/octet-stream", "data": "QUI="}}]
    assert restore_request(block, data).body == body


# ----------------------------------------------------------------------------- sending-side rejections
@pytest.mark.parametrize("req", [
    request(headers=[("content-type", "application/json")], body=b'{"a":{"b":[{"encBlockIndex":0}]}}'),
    request(headers=[("content-type", "application/problem+json")], body=b'[{"encBlockIndex":1}]'),
    request(headers=[("x-sneaky", '{"encBlockIndex": 0}')]),
    request(path="/nudm-sdm/v2/{encBlockIndex:0}/am-data", method="GET"),
    request(query="supi={encBlockIndex:0}", method="GET"),
    request(headers=[("content-type", "multipart/related; boundary=b")],
            body=b'--b\r\ncontent-type: application/json\r\n\r\n{"encBlockIndex":2}\r\n--b--\r\n'),
], ids=["json-body", "json-array", "header", "path", "query", "multipart-root"])
def test_nf_message_with_enc_block_index_is_rejected(req):
    with pytest.raises(N32Error) as e:
        reformat_request(req, IeSelection(), META)
    assert e.value.status == 400 and e.value.cause == "INVALID_MSG_FORMAT" and "encBlockIndex" in e.value.detail


@pytest.mark.parametrize("ctype,body,detail", [
    ("application/json", b"{not json", "declared JSON"),
    ("application/json", b'{"a": NaN}', "declared JSON"),
    ("multipart/related; boundary=b", b"--b\r\nno end", "multipart"),
    ("multipart/related", b"--b\r\n\r\nx\r\n--b--\r\n", "boundary"),
])
def test_malformed_bodies_are_rejected(ctype, body, detail):
    with pytest.raises(N32Error) as e:
        reformat_request(request(headers=[("content-type", ctype)], body=body), IeSelection(), META)
    assert e.value.status == 400 and e.value.cause == "INVALID_MSG_FORMAT" and detail in e.value.detail


def test_contains_enc_block_index():
    assert contains_enc_block_index({"a": [1, {"b": {"encBlockIndex": 0}}]})
    assert not contains_enc_block_index({"a": ["encBlockIndex"], "b": {"x": "encBlockIndex"}})


# ----------------------------------------------------------------------------- restore errors
def base_block() -> tuple[dict, list]:
    req = request(path=f"/nudm-uecm/v1/{SUPI}/registrations/amf-3gpp-access", query="a=1",
                  headers=[("content-type", "application/json"), ("authorization", "Bearer t")],
                  body=jbody({"pei": "imeisv-1", "x": {"y": 2}}), method="PUT")
    return wire(*reformat_request(req, IeSelection(body=("/pei",), headers=("authorization",),
                                                   path_segments=(2,), query=("a",)), META))


def expect_failure(block, data, reason, attribute):
    with pytest.raises(N32Error) as e:
        restore_request(block, data)
    err = e.value
    assert err.status == 403 and err.cause == errors.MESSAGE_RECONSTRUCTION_FAILED
    assert err.n32f_error_type == errors.MESSAGE_RECONSTRUCTION_FAILED
    assert err.error_details == [{"attribute": attribute, "msgReconstructFailReason": reason}]
    info = err.n32f_error_info("7", META["n32fContextId"])
    assert info["n32fErrorType"] == "MESSAGE_RECONSTRUCTION_FAILED" and info["errorDetailsList"]


def test_base_block_restores():
    block, data = base_block()
    assert data == [SUPI, "1", "Bearer t", "imeisv-1"]
    assert restore_request(block, data).path == f"/nudm-uecm/v1/{SUPI}/registrations/amf-3gpp-access"


@pytest.mark.parametrize("bad", [4, -1, "0", True, 1.0, None])
def test_bad_index_values(bad):
    block, data = base_block()
    block["headers"][1]["value"] = {"encBlockIndex": bad}
    expect_failure(block, data, errors.INVALID_INDEX_TO_ENCRYPTED_BLOCK, "/headers/1/value")


@pytest.mark.parametrize("extra", ['{"encBlockIndex":0}', '{"encBlock\\u0049ndex":0}', '[{"encBlockIndex":0}]'])
def test_index_bound_never_hides_a_reference(extra):
    """The restorer stops walking after the last index object the text can hold, never before."""
    from n32 import jwe
    from n32.reformat import index_bound
    req = request(headers=[("content-type", "application/json")], body=jbody({"a": SUPI, "b": "x", "c": [1, {}]}))
    block, data = reformat_request(req, IeSelection(body=("/a",)), META)
    text = jbody(block).replace(b'"value":"x"', b'"value":' + extra.encode())
    assert text != jbody(block)
    ok = jbody(block)
    assert restore_request(jwe.json_object(ok), data, ok).body == req.body
    assert index_bound(ok) == 1
    with pytest.raises(N32Error) as e:
        restore_request(jwe.json_object(text), data, text)
    assert e.value.status == 403 and "referenced twice" in e.value.detail


def test_index_object_with_extra_member():
    block, data = base_block()
    block["payload"][2]["value"] = {"encBlockIndex": 3, "also": 1}
    expect_failure(block, data, errors.INVALID_INDEX_TO_ENCRYPTED_BLOCK, "/payload/2/value")


def test_index_used_twice_and_unused_value():
    block, data = base_block()
    block["payload"][3]["value"]["y"] = {"encBlockIndex": 3}      # /x/y now points at the PEI as well
    expect_failure(block, data, errors.INVALID_INDEX_TO_ENCRYPTED_BLOCK, "/payload/3/value/y")
    block, data = base_block()
    expect_failure(block, data + ["spare"], errors.INVALID_INDEX_TO_ENCRYPTED_BLOCK, "/dataToEncrypt/4")


def test_missing_data_to_encrypt_member_means_empty():
    block, _ = wire(*reformat_request(request(method="GET", path="/a"), IeSelection(), META))
    assert restore_request(block, []).path == "/a"
    with pytest.raises(N32Error):
        restore_request(block, None)  # type: ignore[arg-type]


@pytest.mark.parametrize("header,value", [
    ("x a", "v"), (":path", "/x"), ("connection", "close"), ("transfer-encoding", "chunked"),
    ("x-a", "v\r\nx-injected: 1"), ("x-a", 5), ("x-a", {"other": 1}),
])
def test_invalid_headers(header, value):
    block, data = base_block()
    block["headers"][0] = {"header": header, "value": value}
    expect_failure(block, data, errors.INVALID_HTTP_HEADER, "/headers/0")


def test_encrypted_header_value_must_be_a_string():
    block, data = base_block()
    data[2] = {"token": "Bearer t"}
    expect_failure(block, data, errors.INVALID_HTTP_HEADER, "/headers/1")


def test_uri_param_entry_must_match_request_line():
    block, data = base_block()
    block["payload"][0]["iePath"] = "/requestLine/path/3"
    expect_failure(block, data, errors.INVALID_JSON_POINTER, "/payload/0/iePath")
    block, data = base_block()
    block["payload"][1]["value"] = {"encBlockIndex": 0}           # the path's index, not the query's
    expect_failure(block, data, errors.INVALID_JSON_POINTER, "/payload/1/iePath")


def test_placeholder_without_uri_param_entry():
    block, data = base_block()
    del block["payload"][1]
    expect_failure(block, data, errors.INVALID_INDEX_TO_ENCRYPTED_BLOCK, "/requestLine")


def test_encrypted_path_segment_must_stay_one_segment():
    block, data = base_block()
    data[0] = "a/../../admin"
    expect_failure(block, data, errors.INVALID_HTTP_HEADER, "/payload/0/value")


@pytest.mark.parametrize("entry,attribute", [
    ({"iePath": "/x/y", "ieValueLocation": "BODY", "value": 1}, "/payload/4/iePath"),
    ({"iePath": "x", "ieValueLocation": "BODY", "value": 1}, "/payload/4/iePath"),
    ({"iePath": "/pei", "ieValueLocation": "BODY", "value": 1}, "/payload/4/iePath"),
    ({"iePath": "", "ieValueLocation": "BODY", "value": 1}, "/payload/4/iePath"),
    ({"iePath": "/z", "ieValueLocation": "HEADER", "value": 1}, "/payload/4/ieValueLocation"),
    ({"iePath": "/z", "value": 1}, "/payload/4/ieValueLocation"),
    ({"ieValueLocation": "BODY", "value": 1}, "/payload/4"),
])
def test_invalid_payload_entries(entry, attribute):
    block, data = base_block()
    block["payload"].append(entry)
    expect_failure(block, data, errors.INVALID_JSON_POINTER, attribute)


def test_missing_request_line_and_status_line():
    with pytest.raises(N32Error) as e:
        restore_request({"metaData": META}, [])
    assert e.value.error_details[0] == {"attribute": "/requestLine", "msgReconstructFailReason": "INVALID_HTTP_HEADER"}
    with pytest.raises(N32Error) as e:
        restore_response({"statusLine": "OK"}, [])
    assert e.value.error_details[0]["attribute"] == "/statusLine"


def test_multipart_restore_errors():
    req, _, _ = smf_create(compact=True)
    block, data = wire(*reformat_request(req, IeSelection(binary_parts=True), META))
    bad = json.loads(json.dumps(block))
    bad["headers"][0]["value"] = "application/json"              # boundary gone
    expect_failure(bad, data, errors.INVALID_HTTP_HEADER, "/headers")
    bad = json.loads(json.dumps(block))
    del bad["payload"][-1]["value"]["data"]                       # a second data-less part
    expect_failure(bad, data, errors.INVALID_JSON_POINTER, f"/payload/{len(bad['payload']) - 1}/value")
    expect_failure(block, data[:-1] + ["not base64!"], errors.INVALID_JSON_POINTER,
                   f"/payload/{len(block['payload']) - 1}/value/data")
    boundary_in_part = data[:-1] + ["DQotLWxhYi1ib3VuZGFyeS0xLTU="]   # b"\r\n--lab-boundary-1-5"
    expect_failure(block, boundary_in_part, errors.INVALID_JSON_POINTER, "/payload")


def test_restored_json_must_be_serialisable():
    block = {"statusLine": "200", "payload": [{"iePath": "/a", "ieValueLocation": "BODY",
                                               "value": {"encBlockIndex": 0}}]}
    with pytest.raises(N32Error) as e:
        restore_response(block, [float("nan")])
    assert e.value.error_details[0]["attribute"] == "/payload"


# ----------------------------------------------------------------------------- TS 29.573 schema
def block_validator() -> Draft202012Validator:
    openapi = Path(__file__).resolve().parents[2] / "n32" / "openapi"

    @functools.cache
    def retrieve(uri: str) -> Resource:
        return Resource(yaml.safe_load((openapi / uri).read_text()), specification=DRAFT202012)
    return Draft202012Validator(
        {"$ref": "TS29573_JOSEProtectedMessageForwarding.yaml#/components/schemas/DataToIntegrityProtectBlock"},
        registry=Registry(retrieve=retrieve))  # type: ignore[call-arg]


def test_block_with_object_values_is_schema_valid():
    # HttpPayload.value is typed object in TS 29.573; scalar member values (allowed by profile 14)
    # would not validate, so this message has object-valued members only.
    req, _, _ = smf_create(compact=True)
    req.body = req.body.replace(b'"supi":"%s","pduSessionId":5,' % SUPI.encode(), b"")
    block, _ = reformat_request(req, IeSelection(body=("/ueLocation",), path_segments=(1,), query=("q",),
                                                 binary_parts=True), META)
    block_validator().validate(block)


# ----------------------------------------------------------------------------- properties
TOKEN_ALPHABET = string.ascii_lowercase + string.digits + "-"
SEGMENT_ALPHABET = string.ascii_letters + string.digits + "-._~%!$'()*+,;=:@"
QUERY_ALPHABET = string.ascii_letters + string.digits + "-._~%!$'()*+,;=:@/?"
json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) \
    | st.text(max_size=8)
json_values = st.recursive(json_scalars, lambda kids: st.lists(kids, max_size=3)
                           | st.dictionaries(st.text(max_size=5), kids, max_size=3), max_leaves=12)


def node_paths(doc, prefix=()):
    """Every node below the root as a token tuple."""
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for k, v in items:
        yield prefix + (str(k),)
        yield from node_paths(v, prefix + (str(k),))


def put(doc, path, value):
    node = doc
    for t in path[:-1]:
        node = node[int(t)] if isinstance(node, list) else node[t]
    if isinstance(node, list):
        node[int(path[-1])] = value
    else:
        node[path[-1]] = value


def pointer(tokens) -> str:
    return "".join("/" + t.replace("~", "~0").replace("/", "~1") for t in tokens)


@st.composite
def messages(draw):
    """(request, selection): selected values are unique tokens SECRETnnnnX; patterns may use '*'."""
    counter = iter(range(10 ** 6))

    def secret() -> str:
        return f"SECRET{next(counter):04d}X"

    doc = draw(st.dictionaries(st.text(max_size=6), json_values, min_size=1, max_size=5))
    chosen = draw(st.lists(st.sampled_from(list(node_paths(doc))), unique=True, max_size=4)) \
        if list(node_paths(doc)) else []
    patterns = []
    for path in sorted(chosen, key=len, reverse=True):      # deep first: an outer token may replace inner ones
        put(doc, path, secret())
        stars = draw(st.lists(st.booleans(), min_size=len(path), max_size=len(path)))
        patterns.append(pointer(["*" if s else t for s, t in zip(stars, path)]))
    names = draw(st.lists(st.from_regex(r"x-[a-z0-9-]{1,8}", fullmatch=True), unique=True, max_size=4))
    enc_names = draw(st.lists(st.sampled_from(names), unique=True)) if names else []
    headers = [("content-type", "application/json")]
    for n in names:
        headers.append((n, secret() if n in enc_names else draw(st.text(string.printable.strip("\r\n\x0b\x0c"),
                                                                          max_size=10))))
    segments = draw(st.lists(st.text(SEGMENT_ALPHABET, min_size=1, max_size=6), min_size=1, max_size=5))
    enc_segments = draw(st.lists(st.integers(0, len(segments) - 1), unique=True, max_size=2))
    segments = [secret() if i in enc_segments else s for i, s in enumerate(segments)]
    qnames = draw(st.lists(st.text(TOKEN_ALPHABET, min_size=1, max_size=5), max_size=4))
    enc_q = draw(st.lists(st.sampled_from(qnames), unique=True)) if qnames else []
    query = "&".join(f"{q}={secret() if q in enc_q else draw(st.text(QUERY_ALPHABET, max_size=5))}" for q in qnames)
    req = HttpRequest(draw(st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"])), "https", AUSF,
                      "/" + "/".join(segments), query, headers, jbody(doc))
    sel = IeSelection(tuple(patterns), tuple(enc_names), tuple(enc_segments), tuple(enc_q))
    return req, sel


def all_secrets(text: str) -> set[str]:
    return set(re.findall(r"SECRET\d{4}X", text))


@settings(max_examples=300, deadline=None)
@given(messages())
def test_property_request_round_trip_and_no_selected_value_in_clear(m):
    req, sel = m
    secrets = all_secrets(json.dumps([req.path, req.query, req.headers, json.loads(req.body)]))
    block, data = reformat_request(req, sel, META)
    clear = json.dumps(block, ensure_ascii=False)
    assert not all_secrets(clear), f"selected values in the clear block: {all_secrets(clear)}"
    assert secrets <= all_secrets(json.dumps(data))
    out = restore_request(*wire(block, data))
    assert (out.method, out.scheme, out.authority, out.path, out.query, out.headers) == \
        (req.method, req.scheme, req.authority, req.path, req.query, req.headers)
    assert json.loads(out.body) == json.loads(req.body)


def _reference_walk(node, patterns, data):
    """The selection walk as first written (patterns as token tuples, nothing compiled)."""
    if not patterns:
        return node
    if any(not p for p in patterns):
        data.append(node)
        return {"encBlockIndex": len(data) - 1}
    if isinstance(node, dict):
        if any(p[0] == "*" for p in patterns):
            return {k: _reference_walk(v, tuple(p[1:] for p in patterns if p[0] in ("*", k)), data)
                    for k, v in node.items()}
        heads = sorted({p[0] for p in patterns if p[0] in node}, key=list(node).index)
        out = dict(node)
        for k in heads:
            out[k] = _reference_walk(node[k], tuple(p[1:] for p in patterns if p[0] == k), data)
        return out
    if isinstance(node, list):
        return [_reference_walk(v, tuple(p[1:] for p in patterns if p[0] in ("*", str(i))), data)
                for i, v in enumerate(node)]
    return node


@settings(max_examples=300, deadline=None)
@given(messages(), st.lists(st.sampled_from(["/a", "/*", "/0/*", "/*/b", "/a/*/c", "/*/0", "/b/*"]), max_size=3))
def test_compiled_selection_selects_what_the_pattern_walk_selects(m, more):
    """The same clear block and the same dataToEncrypt, in the same order, as walking the patterns."""
    req, sel = m
    sel = IeSelection(sel.body + tuple(more))
    block, data = reformat_request(req, sel, META)
    expected_data: list = []
    doc = _reference_walk(json.loads(req.body), sel.body_parts, expected_data)
    entries = [e for e in block.get("payload", []) if e["ieValueLocation"] == "BODY"]
    if isinstance(doc, dict) and doc and "encBlockIndex" not in doc:
        assert {e["iePath"]: e["value"] for e in entries} == {pointer([k]): v for k, v in doc.items()}
        assert [e["iePath"] for e in entries] == [pointer([k]) for k in doc]
    else:
        assert entries == [{"iePath": "", "ieValueLocation": "BODY", "value": doc}]
    assert data[len(data) - len(expected_data):] == expected_data


@settings(max_examples=150, deadline=None)
@given(status=st.integers(100, 599), doc=json_values,
       headers=st.lists(st.tuples(st.from_regex(r"[a-z][a-z0-9-]{0,8}", fullmatch=True),
                                  st.text(string.ascii_letters + " ;=,/", max_size=10)), max_size=4))
def test_property_response_round_trip(status, doc, headers):
    headers = [h for h in headers if h[0] not in ("content-type", "content-length", "connection", "keep-alive",
                                                  "proxy-connection", "transfer-encoding", "upgrade")]
    rsp = HttpResponse(status, [("content-type", "application/json")] + headers, jbody(doc))
    out = restore_response(*wire(*reformat_response(rsp, IeSelection(), META)))
    assert (out.status, out.headers) == (rsp.status, rsp.headers) and json.loads(out.body) == doc


@settings(max_examples=150, deadline=None)
@given(parts=st.lists(st.binary(max_size=40), min_size=1, max_size=4), encrypt=st.booleans(),
       root=st.dictionaries(st.text(max_size=4), json_scalars, max_size=3))
def test_property_multipart_byte_for_byte(parts, encrypt, root):
    bnd = "b-7f3a"
    parts = [p for p in parts if b"--" + bnd.encode() not in p] or [b""]
    ctype, body = multipart_encode([([("content-type", "application/json")], jbody(root))]
                                   + [([("content-type", "application/octet-stream"), ("content-id", f"p{i}")], p)
                                      for i, p in enumerate(parts)], boundary=bnd)
    rsp = HttpResponse(200, [("content-type", ctype)], body)
    block, data = reformat_response(rsp, IeSelection(binary_parts=encrypt), META)
    assert len(data) == (len(parts) if encrypt else 0)
    assert restore_response(*wire(block, data)).body == body


def test_values_no_encoding_can_write_are_a_reconstruction_failure():
    """JSON may carry a lone surrogate ("\\ud800"): as a header value or path it could not be sent
    to the NF, so the restorer refuses it (403, not an internal error when it is written)."""
    block = {"metaData": {}, "requestLine": {"method": "POST", "scheme": "https", "authority": "udm.example.org",
                                             "path": "/nudm-sdm/v2/x", "protocolVersion": "HTTP/2"},
             "headers": [{"header": "x-a", "value": "\ud800"}]}
    with pytest.raises(N32Error) as e:
        restore_request(block, [])
    assert e.value.status == 403 and e.value.n32f_error_type == errors.MESSAGE_RECONSTRUCTION_FAILED
    block["headers"] = [{"header": "x-a", "value": "caf\udce9"}]      # octet 0xE9 as read (obs-text): kept
    assert restore_request(block, []).headers == [("x-a", "caf\udce9")]
    block["headers"], block["requestLine"]["path"] = [], "/nudm-sdm/v2/\ud800"
    with pytest.raises(N32Error) as e:
        restore_request(block, [])
    assert e.value.status == 403
