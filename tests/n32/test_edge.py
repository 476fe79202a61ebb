"""n32/edge.py: telescopic FQDNs and topology hiding composed per direction through a SEPP."""
from __future__ import annotations

import json

import pytest

from n32 import edge
from n32.errors import N32Error
from n32.message import HttpRequest, HttpResponse

V_SEPP = "sepp.5gc.mnc001.mcc001.3gppnetwork.org"
H_SEPP = "sepp.5gc.mnc070.mcc999.3gppnetwork.org"
AUSF = "ausf.5gc.mnc070.mcc999.3gppnetwork.org"
AMF_CB = "https://amf.5gc.mnc001.mcc001.3gppnetwork.org/namf-callback/v1/imsi-999700000000001/sdm-notify"
JSON = [("content-type", "application/json")]


def visited() -> edge.Edge:
    return edge.build(telescopic_domain=V_SEPP, hiding=True, plmn="001-01", secret=b"v" * 32, exclude=[V_SEPP])


def home() -> edge.Edge:
    return edge.build(telescopic_domain=H_SEPP, hiding=True, plmn="999-70", secret=b"h" * 32, exclude=[H_SEPP])


def req(authority: str, path: str = "/nausf-auth/v1/ue-authentications", headers=(), body: dict | None = None,
        method: str = "POST") -> HttpRequest:
    raw = json.dumps(body).encode() if body is not None else b""
    extra = JSON + [("content-length", str(len(raw)))] if body is not None else []
    return HttpRequest(method, "https", authority, path, "", list(headers) + extra, raw)


def rsp(status: int, body: dict, headers=()) -> HttpResponse:
    raw = json.dumps(body).encode()
    return HttpResponse(status, list(headers) + JSON + [("content-length", str(len(raw)))], raw)


def test_telescopic_authority_becomes_the_target_api_root():
    e = visited()
    tele = e.telescopic.to_telescopic(AUSF)
    out = e.from_own_nf(req(f"{tele}:8443"))
    assert out.header("3gpp-sbi-target-apiroot") == f"https://{AUSF}"


def test_telescopic_target_header_is_mapped_back():
    e = visited()
    tele = e.telescopic.to_telescopic(AUSF)
    out = e.from_own_nf(req("127.0.0.1:8443", headers=[("3gpp-sbi-target-apiroot", f"https://{tele}:443")]))
    assert out.header("3gpp-sbi-target-apiroot") == f"https://{AUSF}:443"


def test_inconsistent_authority_and_target_are_refused():
    e = visited()
    tele = e.telescopic.to_telescopic(AUSF)
    with pytest.raises(N32Error) as err:
        e.from_own_nf(req(tele, headers=[("3gpp-sbi-target-apiroot", "https://udm.5gc.mnc070.mcc999.3gppnetwork.org")]))
    assert err.value.status == 400 and "inconsistent" in err.value.detail


def test_unknown_telescopic_label_is_refused():
    with pytest.raises(N32Error) as err:
        visited().from_own_nf(req(f"t{'0' * 32}.{V_SEPP}"))
    assert err.value.status == 400 and err.value.invalid_params[0]["param"] == ":authority"


def test_own_nf_names_are_hidden_and_restored_on_the_answer():
    e = visited()
    body = {"callbackReference": AMF_CB, "nfInstanceId": "x"}
    out = e.from_own_nf(req("udm", headers=[("3gpp-sbi-target-apiroot", "https://udm.5gc.mnc070.mcc999.3gppnetwork.org"),
                                            ("user-agent", "AMF-amf.5gc.mnc001.mcc001.3gppnetwork.org")], body=body))
    sent = json.loads(out.body)
    assert "amf.5gc.mnc001" not in out.body.decode() and ".th.5gc.mnc001.mcc001.3gppnetwork.org" in sent["callbackReference"]
    assert out.header("user-agent").startswith("AMF-nf") and "amf.5gc" not in out.header("user-agent")
    echoed = e.to_own_nf("POST", "/nudm-sdm/v2/x/sdm-subscriptions", rsp(201, sent))
    assert json.loads(echoed.body)["callbackReference"] == AMF_CB


def test_discovery_result_and_location_become_telescopic():
    e = visited()
    result = {"validityPeriod": 60, "nfInstances": [{
        "nfInstanceId": "1", "nfType": "AUSF", "nfStatus": "REGISTERED", "fqdn": AUSF, "ipv4Addresses": ["10.70.0.12"],
        "nfServices": [{"serviceInstanceId": "a", "serviceName": "nausf-auth", "scheme": "https", "fqdn": AUSF,
                        "nfServiceStatus": "REGISTERED", "versions": [],
                        "ipEndPoints": [{"ipv4Address": "10.70.0.12", "port": 443}]}]}]}
    out = e.to_own_nf("GET", "/nnrf-disc/v1/nf-instances", rsp(200, result))
    prof = json.loads(out.body)["nfInstances"][0]
    assert prof["fqdn"] == e.telescopic.to_telescopic(AUSF) and "ipv4Addresses" not in prof
    assert prof["nfServices"][0]["ipEndPoints"] == [{"port": 443}]
    assert dict(out.headers)["content-length"] == str(len(out.body))
    # other paths are not discovery results
    same = e.to_own_nf("GET", "/nudm-sdm/v2/x", rsp(200, result))
    assert json.loads(same.body)["nfInstances"][0]["fqdn"] == AUSF
    created = e.to_own_nf("POST", "/nsmf-pdusession/v1/pdu-sessions", rsp(201, {}, [
        ("location", "https://smf.5gc.mnc070.mcc999.3gppnetwork.org/nsmf-pdusession/v1/pdu-sessions/7")]))
    loc = dict(created.headers)["location"]
    assert loc == f"https://{e.telescopic.to_telescopic('smf.5gc.mnc070.mcc999.3gppnetwork.org')}/nsmf-pdusession/v1/pdu-sessions/7"
    ip = e.to_own_nf("POST", "/x", rsp(201, {}, [("location", "https://10.0.0.1/x")]))
    assert dict(ip.headers)["location"] == "https://10.0.0.1/x"


def test_peer_request_pseudonyms_restored_and_callbacks_made_telescopic():
    h = home()
    pseudo = h.hider.pseudonym("udm.5gc.mnc070.mcc999.3gppnetwork.org")
    out = h.from_peer(req(pseudo, "/nudm-sdm/v2/x/sdm-subscriptions", body={"callbackReference": AMF_CB}))
    assert out.authority == "udm.5gc.mnc070.mcc999.3gppnetwork.org"
    cb = json.loads(out.body)["callbackReference"]
    assert cb.startswith("https://") and f".{H_SEPP}/namf-callback/" in cb
    assert dict(out.headers)["content-length"] == str(len(out.body))
    # the 201 echoes the telescopic URI: the peer gets its own URI back, and no home name
    answer = h.to_peer(rsp(201, json.loads(out.body), [("server", "UDM-lab-1.0"), (
        "location", "https://udm.5gc.mnc070.mcc999.3gppnetwork.org/nudm-sdm/v2/x/sdm-subscriptions/1")]))
    assert json.loads(answer.body)["callbackReference"] == AMF_CB
    hdrs = dict(answer.headers)
    assert "server" not in hdrs and hdrs["location"].startswith(f"https://{pseudo}/")


def test_callback_members_are_found_however_the_json_text_spells_them():
    """A body is skipped only when its octets name no callback member (n32.body.may_contain): a
    name written with an escape, or a callback that is not a URI, is still found."""
    h = home()
    path = "/nudm-sdm/v2/x/sdm-subscriptions"
    for raw in (b'{"\\u0063allbackReference": "%s"}' % AMF_CB.encode(),
                b'{"callbackReference": "%s"}' % AMF_CB.replace("/", "\\/").encode()):
        out = h.from_peer(HttpRequest("POST", "https", AUSF, path, "", JSON, raw))
        assert f".{H_SEPP}/namf-callback/" in json.loads(out.body)["callbackReference"], raw
    with pytest.raises(N32Error) as e:       # present but not a URI: refused, as before
        h.from_peer(req(AUSF, path, body={"subscriptionId": "1", "callbackReference": 7}))
    assert e.value.status == 400
    plain = req(AUSF, path, body={"nfInstanceId": "x", "monitoredResourceUris": ["/a"]})
    assert h.from_peer(plain) is plain          # nothing to rewrite: the same message


def test_unknown_pseudonym_from_the_peer_is_refused():
    with pytest.raises(N32Error) as err:
        home().from_peer(req("nf0123456789abcdef.th.5gc.mnc070.mcc999.3gppnetwork.org"))
    assert err.value.status == 403


def test_mapping_api_is_get_only():
    e = visited()
    label = e.telescopic.to_label(AUSF)
    mapping = req("127.0.0.1", "/nsepp-telescopic/v1/mapping", method="GET")
    assert e.is_mapping_request(mapping)
    status, body = e.mapping(mapping, {"telescopic-label": [label]})
    assert status == 200 and body["foreignFqdn"] == AUSF
    with pytest.raises(N32Error) as err:
        e.mapping(req("127.0.0.1", "/nsepp-telescopic/v1/mapping", method="POST"), {})
    assert err.value.status == 405


def test_disabled_features_leave_messages_alone():
    e = edge.build(telescopic_domain=None, hiding=False, plmn="001-01")
    r = req(f"x.{V_SEPP}", body={"callbackReference": AMF_CB})
    assert e.from_own_nf(r) == r and e.from_peer(r) == r and not e.is_mapping_request(r)
    s = rsp(200, {"a": 1}, [("server", "x")])
    assert e.to_peer(s) == s and e.to_own_nf("GET", "/nnrf-disc/v1/nf-instances", s) == s


def test_default_pseudonym_domain_is_inside_the_own_nf_domain():
    assert edge.pseudonym_domain_for("001-01") == "th.5gc.mnc001.mcc001.3gppnetwork.org"
