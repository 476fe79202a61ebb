"""3gpp-Sbi-Originating-Network-Id and PLMN-ID consistency (n32.origin; TS 29.500 §5.2.3.2.15,
TS 33.501 §5.9.3.2, SCAS TS 33.517 4.2.2.4)."""
from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from n32 import multipart
from n32 import origin as o
from n32.config import PlmnId
from n32.errors import N32Error
from n32.message import HttpRequest

OWN = [PlmnId("001", "01"), PlmnId("001", "02")]          # visited PLMN (the sending side)
PEER = ["001-01", "001-002"]                              # the same PLMNs as the home SEPP knows them
OWN_SEPP = "sepp.5gc.mnc001.mcc001.3gppnetwork.org"
HDR = o.ORIGINATING_NETWORK_ID


def req(headers=(), body=None, query="", ctype="application/json"):
    hdrs = list(headers) + ([("content-type", ctype)] if body is not None else [])
    raw = body if isinstance(body, bytes) else json.dumps(body).encode() if body is not None else b""
    return HttpRequest("POST", "https", "ausf.5gc.mnc070.mcc999.3gppnetwork.org", "/nausf-auth/v1/ue-authentications",
                       query, hdrs, raw)


# ---------------------------------------------------------------------- parse / format
@pytest.mark.parametrize("value,expected", [
    ("001-01", ("001", "01", None, None)),
    ("999-070", ("999", "070", None, None)),
    (f"001-01; src: SEPP-{OWN_SEPP}", ("001", "01", None, ("SEPP", OWN_SEPP))),
    ("001-01;src:SCP-scp1.example.org", ("001", "01", None, ("SCP", "scp1.example.org"))),   # lenient spacing
    (" 001-01-000007ED9D5 ; src:  sepp-s.example.org ", ("001", "01", "000007ED9D5", ("SEPP", "s.example.org"))),
])
def test_parse(value, expected):
    v = o.parse(value)
    assert tuple(v) == expected
    mcc, mnc, nid, src = v
    assert v.key == (mcc, mnc.zfill(3), nid.lower() if nid else None)


@pytest.mark.parametrize("value", ["", "1-01", "001-1", "001-0001", "0x1-01", "001-01-12345", "001-01-00000000000x",
                                   "001-01; src: SMF-smf.example.org", "001-01; src: SEPP-a.b", "001-01; SEPP-x.org",
                                   "001-01; src: SEPP-sepp.example.org:443", "001-01,002-02", None,
                                   "001", "001-01;src:SEPP-", "001-01;src:SEPP-a b", "001-01;nid=5", "001-01\n",
                                   "\u0660\u0660\u0661-\u0660\u0661"])  # Arabic-Indic digits are \d to Python
def test_parse_refuses_malformed(value):
    with pytest.raises(N32Error) as ei:
        o.parse(value)
    assert ei.value.status == 400 and ei.value.invalid_params[0]["param"] == o.HEADER_NAME


def test_format():
    assert o.format("001", "01") == "001-01"
    assert o.format("001", "01", OWN_SEPP) == f"001-01; src: SEPP-{OWN_SEPP}"
    assert o.format("001", "001", "scp.example.org", nid="000007ed9d5", src_type="SCP") == \
        "001-001-000007ed9d5; src: SCP-scp.example.org"
    assert tuple(o.parse(o.format("001", "01", OWN_SEPP))) == ("001", "01", None, ("SEPP", OWN_SEPP))
    for bad in (("01", "01"), ("001", "1"), ("001", "0001")):
        with pytest.raises(ValueError):
            o.format(*bad)
    with pytest.raises(ValueError):
        o.format("001", "01", "sepp.example.org:443")
    with pytest.raises(ValueError):
        o.format("001", "01", "sepp.example.org", src_type="AMF")
    with pytest.raises(ValueError):
        o.format("001", "01", nid="xyz")


# ---------------------------------------------------------------------- sending SEPP
def test_outbound_inserts_first_own_plmn():
    r = req()
    out = o.outbound(r, OWN, OWN_SEPP)
    assert out.header(HDR) == f"001-01; src: SEPP-{OWN_SEPP}"
    assert r.header(HDR) is None                        # input untouched
    assert o.outbound(req(), [{"mcc": "001", "mnc": "002", "nid": "000007ed9d5"}], OWN_SEPP).header(HDR) == \
        f"001-002-000007ed9d5; src: SEPP-{OWN_SEPP}"


@pytest.mark.parametrize("value", ["001-01", "001-001", "001-02; src: SCP-scp1.5gc.mnc001.mcc001.3gppnetwork.org"])
def test_outbound_keeps_a_value_of_ours(value):
    out = o.outbound(req([(HDR, value)]), OWN, OWN_SEPP)
    assert [v for k, v in out.headers if k == HDR] == [value]


@pytest.mark.parametrize("value", ["999-70", "001-03", "001-01-000007ed9d5"])
def test_outbound_refuses_a_foreign_value(value):
    with pytest.raises(N32Error) as ei:
        o.outbound(req([(HDR, value)]), OWN, OWN_SEPP)
    e = ei.value
    assert (e.status, e.cause, e.n32f_error_type) == (403, "PLMN_ID_MISMATCH", None)


def test_outbound_refuses_two_header_fields():
    with pytest.raises(N32Error) as ei:
        o.outbound(req([(HDR, "001-01"), (HDR, "999-70")]), OWN, OWN_SEPP)
    assert ei.value.status == 400


# ---------------------------------------------------------------------- receiving SEPP
def test_inbound():
    o.inbound(req([(HDR, f"001-01; src: SEPP-{OWN_SEPP}")]), PEER)
    o.inbound(req([(HDR, "001-02")]), PEER)                           # 02 == 002
    o.inbound(req(), PEER)                                            # absent: accepted by default
    with pytest.raises(N32Error) as ei:
        o.inbound(req(), PEER, required=True)
    assert (ei.value.status, ei.value.cause) == (400, "MANDATORY_IE_MISSING")
    with pytest.raises(N32Error) as ei:
        o.inbound(req([(HDR, "999-70; src: SEPP-sepp.5gc.mnc070.mcc999.3gppnetwork.org")]), PEER)
    e = ei.value
    assert (e.status, e.cause, e.n32f_error_type) == (403, "PLMN_ID_MISMATCH", "POLICY_MISMATCH")
    assert e.invalid_params[0]["param"] == o.HEADER_NAME and "999-070" in e.detail
    with pytest.raises(N32Error) as ei:
        o.inbound(req([(HDR, "001-01-000007ed9d5")]), PEER)               # SNPN of the same PLMN ID: not the peer
    assert ei.value.status == 403
    o.inbound(req([(HDR, "001-01-000007ED9D5")]), ["001-01-000007ed9d5"])
    with pytest.raises(N32Error) as ei:
        o.inbound(req([(HDR, "001-2")]), PEER)
    assert ei.value.status == 400


# ---------------------------------------------------------------------- PLMN consistency (SCAS 4.2.2.4)
AUTH_INFO = {"supiOrSuci": "suci-0-999-70-0000-0-0-0000000001", "servingNetworkName": "5G:mnc001.mcc001.3gppnetwork.org"}
AMF_REG = {"amfInstanceId": "0f5e8f5c-8f4e-4a47-9d7a-2c1a3b4c5d6e", "deregCallbackUri": "https://amf1.example.org/cb",
           "guami": {"plmnId": {"mcc": "001", "mnc": "01"}, "amfId": "cafe00"}, "ratType": "NR",
           "initialRegistrationInd": True}
PDU_CREATE = {"supi": "imsi-999700000000001", "pduSessionId": 5, "servingNetwork": {"mcc": "001", "mnc": "01"},
              "ueLocation": {"nrLocation": {"tai": {"plmnId": {"mcc": "001", "mnc": "02"}, "tac": "000001"},
                                            "ncgi": {"plmnId": {"mcc": "001", "mnc": "01"}, "nrCellId": "000000001"}}},
              "hplmnSnssai": {"sst": 1}, "anType": "3GPP_ACCESS"}


@pytest.mark.parametrize("body", [AUTH_INFO, AMF_REG, PDU_CREATE, {"plmnId": None}, {"nothing": [1, "x"]}])
def test_consistent_requests_pass(body):
    o.check_plmn_consistency(req(body=body), PEER)


@pytest.mark.parametrize("body,pointer", [
    ({**AUTH_INFO, "servingNetworkName": "5G:mnc070.mcc999.3gppnetwork.org"}, "/servingNetworkName"),
    ({**AMF_REG, "guami": {"plmnId": {"mcc": "999", "mnc": "70"}, "amfId": "cafe00"}}, "/guami/plmnId"),
    ({**PDU_CREATE, "servingNetwork": {"mcc": "001", "mnc": "01", "nid": "000007ed9d5"}}, "/servingNetwork"),
    ({"ueLocation": {"nrLocation": {"tai": {"plmnId": {"mcc": "002", "mnc": "01"}, "tac": "1"}}}},
     "/ueLocation/nrLocation/tai/plmnId"),
    ({"items": [{"servingPlmnId": {"mcc": "001", "mnc": "01"}}, {"servingPlmnId": {"mcc": "001", "mnc": "03"}}]},
     "/items/1/servingPlmnId"),
])
def test_foreign_plmn_ids_are_refused(body, pointer):
    with pytest.raises(N32Error) as ei:
        o.check_plmn_consistency(req(body=body), PEER)
    e = ei.value
    assert (e.status, e.cause, e.n32f_error_type) == (403, "PLMN_ID_MISMATCH", "POLICY_MISMATCH")
    assert e.invalid_params[0]["param"] == pointer


@pytest.mark.parametrize("raw", [
    {"servingNetworkName": "5G:mnc01.mcc001.3gppnetwork.org"},
    {"servingNetworkName": 5},
    {"plmnId": {"mcc": "001"}},
    {"guami": {"plmnId": {"mcc": "1", "mnc": "01"}}},
    {"plmnId": "001-01"},
    b'{"servingNetworkName": "5G:mnc070.mcc999.3gppnetwork.org", "servingNetworkName": "5G:mnc001.mcc001.3gppnetwork.org"}',
    b"{not json",
])
def test_malformed_plmn_information_is_400(raw):
    with pytest.raises(N32Error) as ei:
        o.check_plmn_consistency(req(body=raw), PEER)
    assert ei.value.status == 400


def test_snpn_serving_network_name_and_case():
    o.check_plmn_consistency(req(body={"servingNetworkName": "5G:MNC001.MCC001.3GPPNETWORK.ORG"}), PEER)
    snpn = {"servingNetworkName": "5G:mnc001.mcc001.3gppnetwork.org:000007ed9d5"}
    o.check_plmn_consistency(req(body=snpn), ["001-01-000007ed9d5"])
    with pytest.raises(N32Error):
        o.check_plmn_consistency(req(body=snpn), PEER)


def test_query_and_multipart_and_other_bodies():
    ok = quote(json.dumps({"mcc": "001", "mnc": "01"}))
    bad = quote(json.dumps({"mcc": "999", "mnc": "70"}))
    o.check_plmn_consistency(req(query=f"plmn-id={ok}&dataset-names=AM"), PEER)
    with pytest.raises(N32Error) as ei:
        o.check_plmn_consistency(req(query=f"plmn-id={bad}"), PEER)
    assert ei.value.invalid_params[0]["param"] == "?plmn-id"
    with pytest.raises(N32Error) as ei:
        o.check_plmn_consistency(req(query="plmn-id=garbage"), PEER)
    assert ei.value.status == 400
    parts = [([("content-type", "application/json")], json.dumps({**PDU_CREATE, "servingNetwork": {"mcc": "999", "mnc": "70"}}).encode()),
             ([("content-type", "application/vnd.3gpp.5gnas"), ("content-id", "n1")], b"\x2e\x05\x01")]
    mp = req(body=multipart.serialize("b1", parts), ctype="multipart/related; boundary=b1")
    with pytest.raises(N32Error) as ei:
        o.check_plmn_consistency(mp, PEER)
    assert ei.value.cause == "PLMN_ID_MISMATCH"
    o.check_plmn_consistency(req(body=b"\x00\x01", ctype="application/vnd.3gpp.5gnas"), PEER)   # not JSON: nothing to check


def test_network_keys_forms():
    assert o.network_keys([PlmnId("001", "01"), {"mcc": "002", "mnc": "002"}, "003-03-000007ED9D5", ("004", "04")]) == {
        ("001", "001", None), ("002", "002", None), ("003", "003", "000007ed9d5"), ("004", "004", None)}
    with pytest.raises(ValueError):
        o.network_keys(["00101"])


# ---------------------------------------------------------------------- access token (SCAS 4.2.2.4)
def _b64(data: bytes) -> str:
    import base64
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(claims, head=b'{"alg":"ES256","typ":"JWT"}') -> str:
    raw = claims if isinstance(claims, bytes) else json.dumps(claims).encode()
    return f"{_b64(head)}.{_b64(raw)}.{_b64(b'signature-not-checked')}"


CLAIMS = {"iss": "nrf", "sub": "2b5f6c0e-0e0c-4a73-9c2e-000000000002", "aud": "UDM", "scope": "nudm-sdm",
          "exp": 1893456000, "producerPlmnId": {"mcc": "999", "mnc": "70"}}


@pytest.mark.parametrize("claims", [
    {**CLAIMS, "consumerPlmnId": {"mcc": "001", "mnc": "01"}},
    {**CLAIMS, "consumerPlmnId": {"mcc": "001", "mnc": "002"}},       # 3-digit MNC of the peer's "001-002"
    CLAIMS,                                                            # no consumer PLMN claim: nothing to compare
])
def test_access_token_of_the_peer_passes(claims):
    o.check_access_token(req([("authorization", f"Bearer {token(claims)}")]), PEER)


def test_access_token_naming_another_plmn_is_refused_and_reported():
    bad = token({**CLAIMS, "consumerPlmnId": {"mcc": "998", "mnc": "98"}})
    for hdrs in ([("authorization", f"Bearer {bad}")],
                 [("Authorization", f"bearer  {bad}")],                            # scheme case-insensitive
                 [("authorization", f"Bearer {token(CLAIMS)}"), ("authorization", f"Bearer {bad}")]):
        with pytest.raises(N32Error) as ei:
            o.check_access_token(req(hdrs), PEER)
        e = ei.value
        assert (e.status, e.cause, e.n32f_error_type) == (403, o.MISMATCH, "POLICY_MISMATCH")
        assert "consumerPlmnId" in e.invalid_params[0]["param"] and "998-098" in e.detail


def test_access_token_snpn_claim_is_checked():
    snpn = token({**CLAIMS, "consumerSnpnId": {"mcc": "001", "mnc": "01", "nid": "000007ed9d5"}})
    with pytest.raises(N32Error) as ei:       # the peer serves PLMN 001-01, not this SNPN of it
        o.check_access_token(req([("authorization", f"Bearer {snpn}")]), PEER)
    assert ei.value.status == 403


@pytest.mark.parametrize("value", ["Basic dXNlcjpwYXNz", "Bearer opaque-token", "Bearer a.b.c.d.e", "Bearer"])
def test_tokens_the_sepp_cannot_read_are_left_to_the_producer(value):
    o.check_access_token(req([("authorization", value)]), PEER)


@pytest.mark.parametrize("tok,status", [
    ("a!b.c.d", 400),                                                   # not base64url
    (token(b"[1, 2]"), 400),                                            # claims not an object
    (token(b"not json"), 400),
    (token({**CLAIMS, "consumerPlmnId": "001-01"}), 400),              # claim of the wrong type
    (token({**CLAIMS, "consumerPlmnId": {"mcc": ["001"], "mnc": "01"}}), 400),
    (token(b"[" * 2_000 + b"]" * 2_000), 400),                             # nesting bounded before parsing
    (token({**CLAIMS, "x": "y" * 20_000}), 413),                        # size bounded before decoding
])
def test_malformed_access_token_is_a_4xx(tok, status):
    with pytest.raises(N32Error) as ei:
        o.check_access_token(req([("authorization", f"Bearer {tok}")]), PEER)
    assert ei.value.status == status and not ei.value.n32f_error_type
