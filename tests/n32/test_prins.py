"""N32-f PRINS protection (n32/prins.py; TS 33.501 §13.2.4, TS 29.573 §6.2): a context pair from a
real N32-KDF, messages sealed and opened with the real JWE, then the receiver's refusals."""
from __future__ import annotations

import copy
import hashlib
import json
import secrets

import pytest

from n32 import errors, jwe, kdf, prins
from n32.context import N32fContext
from n32.errors import N32Error
from n32.message import HttpRequest, HttpResponse
from n32.reformat import IeSelection

INIT_ID, RESP_ID = "a1b2c3d4e5f60718", "8192a3b4c5d6e7f8"
SUPI = "imsi-999700000000001"
REQ = HttpRequest("POST", "https", "ausf.5gc.mnc070.mcc999.3gppnetwork.org", "/nausf-auth/v1/ue-authentications",
                  "", [("content-type", "application/json"), ("user-agent", "AMF")],
                  json.dumps({"supiOrSuci": SUPI, "servingNetworkName": "5G:mnc001.mcc001.3gppnetwork.org"}).encode())
SEL = IeSelection(body=("/supiOrSuci",))


def pair(suite: str = "A256GCM") -> tuple[N32fContext, N32fContext]:
    """(initiator's, responder's) context of one N32-c handshake: one master key, one KDF."""
    master = secrets.token_bytes(32)
    keys = kdf.derive_session_keys(master, INIT_ID, RESP_ID, suite)
    return (N32fContext(INIT_ID, RESP_ID, "initiator", "sepp.h.example", (), suite, "ES256", keys, master, created=0.0),
            N32fContext(RESP_ID, INIT_ID, "responder", "sepp.v.example", (), suite, "ES256", keys, master, created=0.0))


def test_request_round_trip_hides_the_selected_ie_and_restores_the_message():
    init, resp = pair()
    mid = prins.new_message_id()
    assert mid.isdigit() and int(mid) < 2 ** 64
    body, n = prins.protect_request(init, REQ, SEL, mid)
    assert n == 1 and SUPI not in json.dumps(body)
    meta = prins.peek_metadata(body)          # readable without any key, names the receiver's context
    assert meta == {"n32fContextId": RESP_ID, "messageId": mid, "authorizedIpxId": prins.NULL_IPX}
    opened = prins.open_request(resp, body)
    r = opened.message
    assert (r.method, r.authority, r.path) == (REQ.method, REQ.authority, REQ.path)
    assert json.loads(r.body) == json.loads(REQ.body)        # re-serialised JSON, same document
    assert opened.message_id == mid and opened.modifications == []


def test_response_round_trip_and_message_id_binding():
    init, resp = pair()
    rsp = HttpResponse(201, [("content-type", "application/json")], json.dumps({"authType": "5G_AKA"}).encode())
    body, _ = prins.protect_response(resp, rsp, IeSelection(), "42")
    opened = prins.open_response(init, body, "42")
    assert opened.message.status == 201 and json.loads(opened.message.body) == {"authType": "5G_AKA"}
    other, _ = prins.protect_response(resp, rsp, IeSelection(), "42")    # fresh nonce, same messageId
    with pytest.raises(N32Error) as ei:       # answer to another request (TS 33.501 §13.2.4.3.1.2)
        prins.open_response(init, other, "43")
    assert (ei.value.status, ei.value.cause) == (403, errors.INTEGRITY_CHECK_FAILED)


def test_replayed_request_is_refused():
    init, resp = pair()
    body, _ = prins.protect_request(init, REQ, SEL, prins.new_message_id())
    prins.open_request(resp, copy.deepcopy(body))
    with pytest.raises(N32Error) as ei:
        prins.open_request(resp, body)
    assert (ei.value.status, ei.value.cause) == (403, "REPLAY_DETECTED")


def test_same_message_id_under_a_new_nonce_is_refused():
    init, resp = pair()
    prins.open_request(resp, prins.protect_request(init, REQ, SEL, "7")[0])
    with pytest.raises(N32Error) as ei:
        prins.open_request(resp, prins.protect_request(init, REQ, SEL, "7")[0])
    assert ei.value.cause == "REPLAY_DETECTED" and "messageId 7" in ei.value.detail


def test_message_ids_are_remembered_for_their_ttl_on_the_callers_clock():
    init, resp = pair()
    ttl = resp.message_ids.ttl
    prins.open_request(resp, prins.protect_request(init, REQ, SEL, "8")[0], now=1_000.0)
    with pytest.raises(N32Error):           # within the ttl: a replay under a new nonce
        prins.open_request(resp, prins.protect_request(init, REQ, SEL, "8")[0], now=1_000.0 + ttl - 1)
    # after it the nonce window alone guards this key; the id may come again (a peer's counter)
    assert prins.open_request(resp, prins.protect_request(init, REQ, SEL, "8")[0],
                              now=1_000.0 + ttl + 1).message_id == "8"


def test_tampered_clear_block_does_not_open():
    init, resp = pair()
    body, _ = prins.protect_request(init, REQ, SEL, prins.new_message_id())
    sealed = body["reformattedData"]
    block = json.loads(jwe.b64url_decode(sealed["aad"]))
    block["requestLine"]["path"] = "/nausf-auth/v1/other"
    sealed["aad"] = jwe.b64url_encode(json.dumps(block).encode())
    with pytest.raises(N32Error) as ei:
        prins.open_request(resp, body)
    assert ei.value.status == 403 and ei.value.cause == errors.INTEGRITY_CHECK_FAILED


def test_direction_keys_are_apart():
    init, _ = pair()
    body, _ = prins.protect_request(init, REQ, SEL, prins.new_message_id())
    with pytest.raises(N32Error) as ei:       # the sender's own context cannot open what it sent
        prins.open_request(init, body)
    assert ei.value.status == 403


def test_other_handshake_does_not_open():
    init, _ = pair()
    _, other = pair()                         # same IDs, other master key
    with pytest.raises(N32Error) as ei:
        prins.open_request(other, prins.protect_request(init, REQ, SEL, prins.new_message_id())[0])
    # the IV salt (a KDF output too) already differs: refused before the AEAD is tried
    assert (ei.value.status, ei.value.cause) == (403, errors.DECIPHERING_FAILED)


def test_modifications_block_without_authorized_ipx_is_refused():
    init, resp = pair()
    body, _ = prins.protect_request(init, REQ, SEL, prins.new_message_id())
    body["modificationsBlock"] = [{"identity": "ipx.example", "operations": []}]
    with pytest.raises(N32Error) as ei:
        prins.open_request(resp, body)
    assert ei.value.n32f_error_type == errors.INTEGRITY_CHECK_ON_MODIFICATIONS_FAILED


def test_extra_members_travel_integrity_protected_in_clear():
    init, resp = pair()
    extra = {prins.RI_PARAMETERS: {"ipxProviderSecInfoList": []}}
    body, _ = prins.protect_request(init, REQ, SEL, "9", authorized_ipx="ipx.example", extra=extra)
    peeked = prins.peek(body)
    assert peeked.block[prins.RI_PARAMETERS] == extra[prins.RI_PARAMETERS]
    assert peeked.meta["authorizedIpxId"] == "ipx.example"
    assert prins.open_request(resp, body, peeked=peeked).block[prins.RI_PARAMETERS] == extra[prins.RI_PARAMETERS]


def test_null_ipx_forms():
    init, _ = pair()
    assert prins.metadata(init, "1", None)["authorizedIpxId"] == "NULL"
    assert prins.metadata(init, "1", None, "json-null")["authorizedIpxId"] is None


@pytest.mark.parametrize("body", [None, [], {}, {"reformattedData": "x"}, {"reformattedData": {"aad": 5}}])
def test_malformed_bodies_are_a_4xx(body):
    _, resp = pair()
    for op in (prins.peek, lambda b: prins.open_request(resp, b)):
        with pytest.raises(N32Error) as ei:
            op(body)
        assert 400 <= ei.value.status < 500


# --- the bytes on the wire do not change with the implementation -----------------------------------
# Digests of N32-f bodies sealed with fixed keys and nonces, written by the implementation of
# commit ec07eaf (checked by an independent JWE implementation, tests/integration/test_spec_prins_peer.py).
# Any change to the sealing, the JSON writer or the reformatting that alters one octet fails here.
GOLDEN = {
    "A128GCM": ("e8d328a29f8a41dcd31b982345c3c7745bd1cd80fe0714d9fa3164324b5f0dcb",
                "a378110b578553427f7d9403e0a247123a4201cc521c00fd8603c0ed1db63903"),
    "A256GCM": ("1c301d44bc35b1f4216ea3fc8bbfe73666c002f24d47fd357ec9e3f7c702dbfc",
                "7f8065fcf2ff9100ef6877a637420ca27b24e36455f9eca3cf50843d8ee160cd"),
}


def golden_wire(suite: str) -> tuple[bytes, bytes]:
    """(N32fReformattedReqMsg, N32fReformattedRspMsg) as sent, keys from a fixed master key."""
    master = bytes(range(32))
    keys = kdf.derive_session_keys(master, INIT_ID, RESP_ID, suite)
    ctx = N32fContext(INIT_ID, RESP_ID, "initiator", "sepp.h.example", (), suite, "ES256", keys, master, created=0.0)
    peer = N32fContext(RESP_ID, INIT_ID, "responder", "sepp.v.example", (), suite, "ES256", keys, master, created=0.0)
    body = json.dumps({"supiOrSuci": SUPI, "servingNetworkName": "5G:mnc001.mcc001.3gppnetwork.org",
                       "n": [1, 2.5, 1e-05, None, True], "é": {"a": {"b": "c"}}}).encode()
    req = HttpRequest("POST", "https", "udm.5gc.mnc070.mcc999.3gppnetwork.org", f"/nudm-uecm/v1/{SUPI}/registrations",
                      "plmn-id=%7B%22mcc%22%3A%22001%22%7D&x=1", [("content-type", "application/json"),
                                                                  ("authorization", "Bearer t"), ("User-Agent", "AMF")],
                      body)
    sel = IeSelection(body=("/supiOrSuci", "/é/a/b", "/n/1"), headers=("authorization",), path_segments=(2,),
                      query=("plmn-id",))
    q, _ = prins.protect_request(ctx, req, sel, "12345678901234567890", None,
                                 extra={prins.RI_PARAMETERS: {"x": "ü"}})
    rsp = HttpResponse(201, [("content-type", "application/3gppHal+json"), ("location", "https://a/b")], body)
    r, _ = prins.protect_response(peer, rsp, IeSelection(body=("/supiOrSuci",)), "12345678901234567890", "ipx.example")
    return prins.dumps(q), prins.dumps(r)


@pytest.mark.parametrize("suite", sorted(GOLDEN))
def test_wire_bytes_are_those_of_the_reference_implementation(suite):
    q, r = golden_wire(suite)
    assert (hashlib.sha256(q).hexdigest(), hashlib.sha256(r).hexdigest()) == GOLDEN[suite]
    # what the standard library writes (the engine wrote them with json before)
    for wire in (q, r):
        assert json.dumps(json.loads(wire), separators=(",", ":")).encode() == wire


def test_message_ids_of_a_forked_worker_differ_from_its_parents():
    """IDs are drawn from the OS 256 at a time: a forked child starts a draw of its own."""
    import os
    ids = {prins.new_message_id() for _ in range(600)}
    assert len(ids) == 600 and all(0 <= int(i) < 2**64 for i in ids)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:        # pragma: no cover (child)
        os.write(w, prins.new_message_id().encode())
        os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    child = os.read(r, 64).decode()
    os.close(r)
    assert child and child != prins.new_message_id()
