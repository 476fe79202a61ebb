"""Topology hiding (n32.topology; TS 33.501 §5.9.3.2, §13.1.2)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from n32 import multipart, schema
from n32.errors import N32Error
from n32.message import HttpRequest, HttpResponse
from n32.topology import TopologyHider

HOME = "5gc.mnc070.mcc999.3gppnetwork.org"
PSEUDO = f"th.{HOME}"
AUSF = f"ausf.{HOME}"
CTX = "9f7c6a52-36d5-5c52-b4b1-6b1c0f1a2b3c"
LOC = f"https://{AUSF}:7443/nausf-auth/v1/ue-authentications/{CTX}"
SECRET = b"k" * 32
LAB_OPENAPI = Path(__file__).resolve().parents[2] / "lab" / "openapi"
PSEUDONYM = re.compile(rf"^nf[0-9a-f]{{16}}\.{re.escape(PSEUDO)}$")


@pytest.fixture
def th() -> TopologyHider:
    return TopologyHider(HOME, PSEUDO, secret=SECRET, exclude_domains=[f"sepp.{HOME}"])


def jrsp(status, body, headers=(), ctype="application/json"):
    raw = json.dumps(body).encode()
    return HttpResponse(status, [("content-type", ctype), ("content-length", str(len(raw))), *headers], raw)


def jreq(method, authority, path, body=None, headers=()):
    hdrs = list(headers) + ([("content-type", "application/json")] if body is not None else [])
    return HttpRequest(method, "https", authority, path, "", hdrs, json.dumps(body).encode() if body is not None else b"")


def ausf_created() -> HttpResponse:
    """Nausf_UEAuthentication Authenticate 201 (TS 29.509 §5.2.2.2.2), as the lab AUSF sends it."""
    body = {"authType": "5G_AKA", "servingNetworkName": "5G:mnc001.mcc001.3gppnetwork.org",
            "5gAuthData": {"rand": "6f0a3f0e4b9d2c1a8e7f6d5c4b3a2918", "autn": "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6",
                           "hxresStar": "00112233445566778899aabbccddeeff"},
            "_links": {"5g-aka": {"href": f"{LOC}/5g-aka-confirmation"}}}
    return jrsp(201, body, [("location", LOC), ("server", "AUSF-lab-1.0"), ("via", "2 scp1.internal"),
                            ("x-powered-by", "nfstack/3"), ("x-forwarded-for", "10.70.0.5"),
                            ("x-envoy-upstream-service-time", "3"), ("date", "Mon, 23 Nov 2026 00:00:00 GMT")],
                ctype="application/3gppHal+json")


# ---------------------------------------------------------------------- responses
def test_hide_ausf_authentication_response(th):
    rsp = ausf_created()
    out = th.hide_response(rsp)
    names = [k for k, _ in out.headers]
    assert names == ["content-type", "content-length", "location", "date"]
    loc = out.header("location")
    m = re.fullmatch(rf"https://(nf[0-9a-f]{{16}}\.{re.escape(PSEUDO)}):7443/nausf-auth/v1/ue-authentications/{CTX}", loc)
    assert m, loc
    body = json.loads(out.body)
    assert body["_links"]["5g-aka"]["href"] == f"{loc}/5g-aka-confirmation"
    assert body["servingNetworkName"] == "5G:mnc001.mcc001.3gppnetwork.org"
    assert body["5gAuthData"] == json.loads(rsp.body)["5gAuthData"]
    assert out.header("content-length") == str(len(out.body))
    assert AUSF.encode() not in out.body and rsp.header("location") == LOC      # input untouched
    schema.validate("UEAuthenticationCtx", body, api="TS29509_Nausf_UEAuthentication", search_path=(LAB_OPENAPI,))


def test_pseudonyms_are_stable_per_secret():
    a = TopologyHider(HOME, PSEUDO, secret=SECRET)
    b = TopologyHider(HOME, PSEUDO, secret=SECRET)
    c = TopologyHider(HOME, PSEUDO, secret=b"other")
    assert a.pseudonym(AUSF) == b.pseudonym(AUSF.upper() + ".") != c.pseudonym(AUSF)
    assert PSEUDONYM.match(a.pseudonym(AUSF))
    assert a.pseudonym(AUSF) != a.pseudonym(f"udm.{HOME}")
    assert PSEUDONYM.match(TopologyHider(HOME, PSEUDO).pseudonym(AUSF))     # random per-process secret


def test_round_trip_location_to_confirmation_request(th):
    out = th.hide_response(ausf_created())
    href = json.loads(out.body)["_links"]["5g-aka"]["href"]
    authority = href.split("/")[2]
    req = jreq("PUT", authority, f"/nausf-auth/v1/ue-authentications/{CTX}/5g-aka-confirmation",
               {"resStar": "00112233445566778899aabbccddeeff"},
               [("3gpp-sbi-target-apiroot", f"https://{authority}")])
    back = th.restore_request(req)
    assert back.authority == f"{AUSF}:7443"
    assert back.header("3gpp-sbi-target-apiroot") == f"https://{AUSF}:7443"
    assert back.path == req.path and back.body == req.body


def test_hide_discovery_result(th):
    nrf_rsp = {"validityPeriod": 3600, "nfInstances": [
        {"nfInstanceId": "8a3c0d2e-4f10-4c7b-9b1e-2f5a6d7e8f90", "nfType": "AUSF", "nfStatus": "REGISTERED",
         "fqdn": AUSF, "ipv4Addresses": ["10.70.0.11"],
         "nfServices": [{"serviceInstanceId": "1", "serviceName": "nausf-auth", "scheme": "https",
                         "versions": [{"apiVersionInUri": "v1", "apiFullVersion": "1.3.0"}],
                         "nfServiceStatus": "REGISTERED", "fqdn": AUSF,
                         "ipEndPoints": [{"ipv4Address": "10.70.0.11", "port": 7443}]}]},
        {"nfInstanceId": "1b2c3d4e-0000-4000-8000-000000000002", "nfType": "UDM", "nfStatus": "REGISTERED",
         "ipv6Addresses": ["fd00:70::12"]},
    ]}
    out = th.hide_response(jrsp(200, nrf_rsp))
    body = json.loads(out.body)
    ausf, udm = body["nfInstances"]
    assert ausf["fqdn"] == th.pseudonym(AUSF) and "ipv4Addresses" not in ausf
    assert ausf["nfServices"][0]["fqdn"] == th.pseudonym(AUSF)
    assert ausf["nfServices"][0]["ipEndPoints"] == [{"port": 7443}]
    assert PSEUDONYM.match(udm["fqdn"]) and "ipv6Addresses" not in udm      # only IPs: pseudonym of the IP
    assert th.real_host(udm["fqdn"]) == "fd00:70::12"
    assert b"10.70." not in out.body and b"fd00:70" not in out.body and AUSF.encode() not in out.body
    req = th.restore_request(jreq("GET", f"{udm['fqdn']}:443", "/nudm-sdm/v2/imsi-001010000000001/am-data"))
    assert req.authority == "[fd00:70::12]:443"


def test_what_is_not_hidden(th):
    body = {"callbackReference": f"https://amf1.5gc.mnc001.mcc001.3gppnetwork.org/cb",      # the peer's
            "tel": f"https://x-org.sepp.{HOME}/cb",                                         # telescopic (excluded)
            "supi": "imsi-999700000000001", "pgwFqdn": f"pgw1.{HOME}", "note": f"see https://{AUSF}/ in text",
            "fqdn": "udm.example.net"}
    out = th.hide_response(jrsp(200, body))
    assert json.loads(out.body) == body and out.body == json.dumps(body).encode()   # byte-identical
    # hiding twice changes nothing more
    once = th.hide_response(ausf_created())
    assert th.hide_response(once) == once
    # a foreign Location stays
    assert th.hide_response(HttpResponse(201, [("location", "https://smf.5gc.mnc001.mcc001.3gppnetwork.org/x")])) \
        .header("location") == "https://smf.5gc.mnc001.mcc001.3gppnetwork.org/x"


def test_ip_literals_and_home_networks():
    th = TopologyHider(HOME, PSEUDO, secret=SECRET, home_networks=["10.70.0.0/16"])
    body = {"a": "https://10.70.1.2:8080/x", "b": "https://192.0.2.1/y", "c": "http://[fd00::1]/z"}
    out = json.loads(th.hide_response(jrsp(200, body)).body)
    assert PSEUDONYM.match(out["a"].split("/")[2].split(":")[0]) and out["a"].endswith(":8080/x")
    assert out["b"] == body["b"] and out["c"] == body["c"]
    every = TopologyHider(HOME, PSEUDO, secret=SECRET)          # no home_networks: every IP literal is ours
    out = json.loads(every.hide_response(jrsp(200, body)).body)
    assert all("10.70" not in v and "192.0.2" not in v and "fd00" not in v for v in out.values())
    back = every.restore_response(jrsp(200, out))
    assert json.loads(back.body) == body


def test_multipart_pdu_session_response(th):
    """Nsmf_PDUSession Create 201 with an N1 SM binary part (TS 29.502 §6.1.6.4)."""
    created = {"pduSessionId": 5, "hcnTunnelInfo": {"ipv4Addr": "10.70.9.9", "gtpTeid": "0000abcd"},
               "n1SmInfoToUe": {"contentId": "n1msg"}, "ueIpv4Address": "10.45.0.2",
               "_links": {"self": {"href": f"https://smf.{HOME}/nsmf-pdusession/v1/pdu-sessions/77"}}}
    parts = [([("content-type", "application/json")], json.dumps(created).encode()),
             ([("content-type", "application/vnd.3gpp.5gnas"), ("content-id", "n1msg")], bytes.fromhex("2e0501c2110001"))]
    ctype = "multipart/related; boundary=----b"
    rsp = HttpResponse(201, [("content-type", ctype), ("location", f"https://smf.{HOME}/nsmf-pdusession/v1/pdu-sessions/77")],
                       multipart.serialize("----b", parts))
    out = th.hide_response(rsp)
    p = multipart.parse("----b", out.body)
    j = json.loads(p[0][1])
    assert PSEUDONYM.match(j["_links"]["self"]["href"].split("/")[2])
    assert j["ueIpv4Address"] == "10.45.0.2" and j["hcnTunnelInfo"]["ipv4Addr"] == "10.70.9.9"   # not URIs: kept
    assert p[1] == parts[1]
    assert out.header("location") == j["_links"]["self"]["href"]


def test_non_json_and_broken_bodies_are_left_alone(th):
    for ctype, body in (("text/plain", f"https://{AUSF}/".encode()), ("application/json", b"{broken"),
                        ("multipart/related; boundary=x", b"not multipart")):
        rsp = HttpResponse(200, [("content-type", ctype)], body)
        assert th.hide_response(rsp).body == body


# ---------------------------------------------------------------------- requests
def test_hide_request_headers_and_callbacks(th):
    req = jreq("POST", "smf.5gc.mnc001.mcc001.3gppnetwork.org", "/nsmf-pdusession/v1/pdu-sessions/ab12/modify",
               {"notifUri": f"https://pcf.{HOME}:8080/npcf-callback/v1/ab12",
                "hsmfUri": f"https://smf.{HOME}/nsmf-pdusession/v1/pdu-sessions/77"},
               [("user-agent", f"SMF-smf.{HOME}"), ("via", "1.1 scp1"),
                ("3gpp-sbi-originating-network-id", f"999-70; src: SCP-scp1.{HOME}"),
                ("3gpp-sbi-binding", f"bl=nf-set; nfset=set1.smfset.{HOME}; nr=https://smf.{HOME}/notify"),
                ("3gpp-sbi-target-apiroot", "https://smf.5gc.mnc001.mcc001.3gppnetwork.org")])
    out = th.hide_request(req)
    assert out.authority == req.authority and out.header("via") is None
    assert out.header("user-agent") == f"SMF-{th.pseudonym(f'smf.{HOME}')}"
    assert out.header("3gpp-sbi-originating-network-id") == f"999-70; src: SCP-{th.pseudonym(f'scp1.{HOME}')}"
    assert out.header("3gpp-sbi-binding") == \
        f"bl=nf-set; nfset=set1.smfset.{HOME}; nr=https://{th.pseudonym(f'smf.{HOME}')}/notify"
    assert out.header("3gpp-sbi-target-apiroot") == "https://smf.5gc.mnc001.mcc001.3gppnetwork.org"
    body = json.loads(out.body)
    assert body["notifUri"] == f"https://{th.pseudonym(f'pcf.{HOME}')}:8080/npcf-callback/v1/ab12"
    # the peer later notifies the pseudonym: restored to our PCF
    back = th.restore_request(jreq("POST", f"{th.pseudonym(f'pcf.{HOME}')}:8080", "/npcf-callback/v1/ab12", {}))
    assert back.authority == f"pcf.{HOME}:8080"
    # and a response echoing our hidden URI is restored on the way back to our NF
    echo = th.restore_response(jrsp(200, {"notifUri": body["notifUri"], "fqdn": th.pseudonym(f"pcf.{HOME}")}))
    assert json.loads(echo.body) == {"notifUri": f"https://pcf.{HOME}:8080/npcf-callback/v1/ab12", "fqdn": f"pcf.{HOME}"}


def test_restore_request_refuses_unknown_pseudonyms(th):
    ghost = f"nf0123456789abcdef.{PSEUDO}"
    with pytest.raises(N32Error) as ei:
        th.restore_request(jreq("GET", ghost, "/x"))
    assert (ei.value.status, ei.value.cause) == (403, "TARGET_NOT_ALLOWED")
    with pytest.raises(N32Error) as ei:
        th.restore_request(jreq("GET", f"sepp.{HOME}", "/x", headers=[("3gpp-sbi-target-apiroot", f"https://{ghost}:443")]))
    assert ei.value.invalid_params[0]["param"] == "3gpp-Sbi-Target-apiRoot"
    # unknown pseudonyms in a body are left for the NF to refuse; real names pass unchanged
    r = jreq("POST", f"udm.{HOME}", "/nudm-sdm/v2/imsi-001010000000001/sdm-subscriptions",
             {"monitoredResourceUris": [f"https://{ghost}/x"]})
    assert th.restore_request(r) == r


def test_constructor_validation():
    with pytest.raises(ValueError):
        TopologyHider("not a domain", PSEUDO)
    with pytest.raises(ValueError):
        TopologyHider(HOME, ".".join(["p" * 60] * 4))


# ---------------------------------------------------------------------- bodies not parsed
def test_bodies_spelling_names_otherwise_are_still_hidden(th):
    """A body is left unparsed only when its octets certainly hold no URI, FQDN member or NF
    profile (n32.body.may_contain): the same hosts written with JSON escapes or as UTF-16 are
    hidden as before, and restored."""
    href = f"{LOC}/5g-aka-confirmation"
    plain = json.dumps({"_links": {"5g-aka": {"href": href}}, "fqdn": AUSF})
    for raw in (plain.replace("/", "\\/").encode(),                         # "https:\/\/ausf..."
                plain.replace('"fqdn"', '"\\u0066qdn"').replace("https://", "https\\u003a//").encode(),
                plain.encode("utf-16-le")):                                # zero octets
        rsp = HttpResponse(200, [("content-type", "application/json")], raw)
        out = th.hide_response(rsp)
        doc = json.loads(out.body)
        assert AUSF.encode() not in out.body and AUSF not in json.dumps(doc), raw[:40]
        assert PSEUDONYM.match(doc["fqdn"]) and doc["_links"]["5g-aka"]["href"].endswith("/5g-aka-confirmation")
        assert json.loads(th.restore_response(HttpResponse(200, rsp.headers, out.body)).body) == json.loads(plain)


def test_messages_without_anything_to_hide_are_the_same_objects(th):
    rsp = jrsp(200, {"authResult": "AUTHENTICATION_SUCCESS", "supi": "imsi-999700000000001"})
    assert th.hide_response(rsp) is rsp and th.restore_response(rsp) is rsp
    req = jreq("POST", AUSF, "/nausf-auth/v1/ue-authentications", {"servingNetworkName": "5G:mnc001.mcc001"},
               [("user-agent", "AMF")])
    assert th.hide_request(req) is req


def test_a_body_beyond_the_limits_is_refused_even_with_nothing_to_hide(th):
    deep = b"[" * 100 + b"]" * 100          # nothing a pseudonym could replace, but 100 levels deep
    with pytest.raises(N32Error) as e:
        th.hide_response(HttpResponse(200, [("content-type", "application/json")], deep))
    assert e.value.status == 400


def test_ip_literal_forms_are_recognised_without_parsing_every_fqdn():
    th = TopologyHider(HOME, PSEUDO, secret=SECRET, home_networks=["10.70.0.0/16"])
    for host in ("10.70.1.2", "[10.70.1.2]", "[fd00::1]"):
        assert th.is_home(host) is (host != "[fd00::1]"), host
    assert not th.is_home("1nf.example.org") and th.is_home(AUSF)
