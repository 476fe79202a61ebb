"""Telescopic FQDNs (n32.telescopic; TS 33.501 §13.1.1.1, TS 29.573 Nsepp_Telescopic_FQDN_Mapping,
SCAS TS 33.517 4.2.2.9)."""
from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from n32 import schema
from n32.errors import N32Error
from n32.telescopic import (CALLBACK_POINTERS, TelescopicMapper, iter_pointer, restore_callback_uris,
                            rewrite_callback_uris, rewrite_discovery_result)

SEPP = "sepp.5gc.mnc001.mcc001.3gppnetwork.org"          # our (visited) SEPP's telescopic domain
HOME = "5gc.mnc070.mcc999.3gppnetwork.org"               # the peer (home) PLMN
AUSF = f"ausf.{HOME}"
LAB_OPENAPI = Path(__file__).resolve().parents[2] / "lab" / "openapi"
LDH = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


@pytest.fixture
def m() -> TelescopicMapper:
    return TelescopicMapper(SEPP)


def label_ok(label: str) -> bool:
    return bool(LDH.match(label)) and len(label) <= 63 and label[2:4] != "--"


# ---------------------------------------------------------------------- labels
@pytest.mark.parametrize("foreign,label", [
    (AUSF, "ausf-5gc-mnc070-mcc999-3gppnetwork-org"),
    (f"smf-1.{HOME}", "smf--1-5gc-mnc070-mcc999-3gppnetwork-org"),
    (f"udm1.region-a.{HOME}", "udm1-region--a-5gc-mnc070-mcc999-3gppnetwork-org"),
    ("nfv---x.example.org", "nfv------x-example-org"),
])
def test_direct_label_format_and_round_trip(m, foreign, label):
    t = m.to_telescopic(foreign)
    assert t == f"{label}.{SEPP}"
    assert m.from_telescopic(t) == foreign
    assert m.from_label(label) == foreign
    # a fresh mapper decodes direct labels without any table
    assert TelescopicMapper(SEPP).from_telescopic(t) == foreign


def test_case_and_trailing_dot_are_normalised(m):
    assert m.to_telescopic("AUSF.5GC.mnc070.mcc999.3gppnetwork.org.") == m.to_telescopic(AUSF)
    assert m.from_telescopic(m.to_telescopic(AUSF).upper() + ".") == AUSF
    assert m.from_telescopic(m.to_telescopic(AUSF) + ":443") == AUSF


def test_63_octet_limit():
    # "n" * k + ".5gc.mnc070.mcc999.3gppnetwork.org" -> direct label of k + 34 octets
    fits = "n" * 29 + "." + HOME
    too_long = "n" * 30 + "." + HOME
    m = TelescopicMapper(SEPP)
    lf = m.to_telescopic(fits).split(".")[0]
    assert len(lf) == 63 and "-" in lf
    ll = m.to_telescopic(too_long).split(".")[0]
    assert re.fullmatch(r"t[0-9a-f]{32}", ll)
    assert m.from_telescopic(m.to_telescopic(fits)) == fits
    assert m.from_telescopic(m.to_telescopic(too_long)) == too_long
    # hash labels are deterministic, but only the mapper that issued one can resolve it
    assert TelescopicMapper(SEPP).to_label(too_long) == ll
    assert TelescopicMapper(SEPP).from_label(ll) is None


def test_reserved_idna_positions_fall_back_to_hash(m):
    label = m.to_label("ab-c.example.org")          # direct would be "ab--c-example-org" (R-LDH)
    assert label.startswith("t") and "-" not in label
    assert m.from_label(label) == "ab-c.example.org"
    assert m.from_label("ab--c-example-org") is None   # not canonical: we never issue it


def test_whole_name_limit_falls_back_to_hash():
    domain = ".".join(["d" * 60] * 3) + ".example.org"   # 194 octets: a 63-octet label would exceed 253
    m = TelescopicMapper(domain)
    foreign = "n" * 29 + "." + HOME
    t = m.to_telescopic(foreign)
    assert len(t) <= 253 and t.split(".")[0].startswith("t")
    assert m.from_telescopic(t) == foreign
    with pytest.raises(ValueError):
        TelescopicMapper(".".join(["d" * 60] * 4) + ".org")
    with pytest.raises(ValueError):
        TelescopicMapper("not a domain")


def test_hash_table_is_bounded():
    m = TelescopicMapper(SEPP, max_entries=2)
    names = [f"{'n' * 40}{i}.{HOME}" for i in range(3)]
    labels = [m.to_label(n) for n in names]
    assert m.from_label(labels[0]) is None and m.from_label(labels[2]) == names[2]


@pytest.mark.parametrize("host", [
    AUSF,                                       # not under our domain
    SEPP,                                       # the domain itself
    f"a.ausf-5gc-org.{SEPP}",                   # more than one label below it
    f"t{'0' * 32}.{SEPP}",                      # hash label we never issued
    f"ausf---5gc-org.{SEPP}",                   # odd hyphen run
    f"ausf-5gc-mnc070.{SEPP}",                  # decodes to a non-FQDN (numeric TLD)
    f"nf-sepp-5gc-mnc001-mcc001-3gppnetwork-org.{SEPP}",   # decodes into our own domain
    f"x_y-org.{SEPP}",
])
def test_from_telescopic_refuses(m, host):
    assert m.from_telescopic(host) is None


@pytest.mark.parametrize("bad", ["", "localhost", "10.0.0.1", "a..b.org", "-a.b.org", "a b.org", None, 5])
def test_to_telescopic_refuses_non_fqdns(m, bad):
    with pytest.raises(N32Error) as ei:
        m.to_telescopic(bad)
    assert ei.value.status == 400


def test_to_telescopic_is_idempotent_and_refuses_our_domain(m):
    t = m.to_telescopic(AUSF)
    assert m.to_telescopic(t) == t
    with pytest.raises(N32Error):
        m.to_label(t)
    with pytest.raises(N32Error):
        m.to_telescopic(SEPP)


_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)


@settings(max_examples=300, deadline=None)
@given(st.lists(_label, min_size=1, max_size=8), st.from_regex(r"[a-z]{2,6}", fullmatch=True))
def test_round_trip_property(labels, tld):
    foreign = ".".join(labels + [tld])
    if len(foreign) > 253:
        return
    m = TelescopicMapper(SEPP)
    t = m.to_telescopic(foreign)
    assert len(t) <= 253 and t.endswith("." + SEPP)
    assert label_ok(t[: -len(SEPP) - 1])
    assert m.from_telescopic(t) == foreign


# ---------------------------------------------------------------------- URIs
def test_rewrite_and_restore_uri_keep_everything_but_the_host(m):
    uri = f"https://{AUSF}:7443/nausf-auth/v1/ue-authentications/1/5g-aka-confirmation?x=%2F#f"
    t = m.rewrite_uri(uri)
    assert t == (f"https://ausf-5gc-mnc070-mcc999-3gppnetwork-org.{SEPP}:7443"
                 "/nausf-auth/v1/ue-authentications/1/5g-aka-confirmation?x=%2F#f")
    assert m.restore_uri(t) == uri
    assert m.rewrite_uri(f"http://{AUSF}") == f"http://{m.to_telescopic(AUSF)}"
    assert m.restore_uri("https://udm.example.org/x") == "https://udm.example.org/x"
    assert m.restore_uri(f"https://t{'0' * 32}.{SEPP}/x") == f"https://t{'0' * 32}.{SEPP}/x"


@pytest.mark.parametrize("uri", ["https://10.1.2.3:8080/cb", "https://[fd00::1]/cb", "/relative/cb",
                                 "urn:uuid:1234", "ftp://x.example.org/"])
def test_rewrite_uri_refuses(m, uri):
    with pytest.raises(N32Error) as ei:
        m.rewrite_uri(uri, param="/callbackReference")
    assert ei.value.status == 400 and ei.value.invalid_params[0]["param"] == "/callbackReference"


# ---------------------------------------------------------------------- mapping API
def _valid(body):
    schema.validate("TelescopicMapping", body, api="TS29573_SeppTelescopicFqdnMapping")


def test_mapping_api_both_directions(m):
    st_, body = m.mapping_api({"foreign-fqdn": AUSF})
    assert st_ == 200 and body == {"telescopicLabel": "ausf-5gc-mnc070-mcc999-3gppnetwork-org",
                                   "seppDomain": SEPP, "foreignFqdn": AUSF}
    _valid(body)
    assert m.mapping_api({"telescopic-label": [body["telescopicLabel"]]}) == (200, body)
    assert m.mapping_api({"telescopic-label": m.to_telescopic(AUSF)}) == (200, body)   # full FQDN accepted
    long = "n" * 40 + "." + HOME
    _, b2 = m.mapping_api({"foreign-fqdn": [long], "unrelated": "x"})
    _valid(b2)
    assert m.mapping_api({"telescopic-label": b2["telescopicLabel"]})[1]["foreignFqdn"] == long


@pytest.mark.parametrize("query,status,cause", [
    ({}, 400, "MANDATORY_QUERY_PARAM_MISSING"),
    ({"foreign-fqdn": AUSF, "telescopic-label": "x-org"}, 400, "INVALID_QUERY_PARAM"),
    ({"foreign-fqdn": ["a.org", "b.org"]}, 400, "INVALID_QUERY_PARAM"),
    ({"foreign-fqdn": ""}, 400, "INVALID_QUERY_PARAM"),
    ({"foreign-fqdn": "not_an fqdn"}, 400, "INVALID_QUERY_PARAM"),
    ({"foreign-fqdn": f"x.{SEPP}"}, 400, "INVALID_QUERY_PARAM"),
    ({"telescopic-label": "Not A Label"}, 400, "INVALID_QUERY_PARAM"),
    ({"telescopic-label": "-x"}, 400, "INVALID_QUERY_PARAM"),
    ({"telescopic-label": f"t{'a' * 32}"}, 404, "TELESCOPIC_LABEL_NOT_FOUND"),
    ({"telescopic-label": "ausf---x-org"}, 404, "TELESCOPIC_LABEL_NOT_FOUND"),
])
def test_mapping_api_errors(m, query, status, cause):
    with pytest.raises(N32Error) as ei:
        m.mapping_api(query)
    e = ei.value
    assert (e.status, e.cause) == (status, cause)
    pd = e.problem_details()
    assert pd["status"] == status and pd["cause"] == cause and pd["invalidParams"]


# ---------------------------------------------------------------------- SCAS 4.2.2.9
def test_check_consistent_accepts_matching_or_incomplete_information(m):
    t = m.to_telescopic(AUSF)
    m.check_consistent(t, AUSF)
    m.check_consistent(t + ":443", AUSF.upper() + ":7443")
    m.check_consistent(t, t)                              # header itself telescopic
    m.check_consistent(t, None)
    m.check_consistent(None, AUSF)
    m.check_consistent(f"sepp.{HOME}", AUSF)              # not a telescopic name: nothing to compare
    m.check_consistent(SEPP, AUSF)


@pytest.mark.parametrize("target,why", [
    ("ausf.5gc.mnc002.mcc002.3gppnetwork.org", "PLMN 999-070 vs 002-002"),
    (f"udm.{HOME}", "same PLMN"),
])
def test_check_consistent_refuses_different_targets(m, target, why):
    with pytest.raises(N32Error) as ei:
        m.check_consistent(m.to_telescopic(AUSF), target)
    assert ei.value.status == 400 and why in ei.value.detail
    assert {p["param"] for p in ei.value.invalid_params} == {"3gpp-Sbi-Target-apiRoot", ":authority"}


def test_check_consistent_refuses_a_wrong_telescopic_fqdn(m):
    with pytest.raises(N32Error) as ei:
        m.check_consistent(f"t{'1' * 32}.{SEPP}", AUSF)
    assert ei.value.status == 400 and "not a valid telescopic FQDN" in ei.value.detail


# ---------------------------------------------------------------------- discovery results (cSEPP)
def search_result() -> dict:
    return {
        "validityPeriod": 3600,
        "nfInstances": [
            {"nfInstanceId": "8a3c0d2e-4f10-4c7b-9b1e-2f5a6d7e8f90", "nfType": "AUSF", "nfStatus": "REGISTERED",
             "plmnList": [{"mcc": "999", "mnc": "70"}],
             "fqdn": AUSF, "interPlmnFqdn": f"ausf-ext.{HOME}",
             "ipv4Addresses": ["10.70.0.11"], "ipv6Addresses": ["fd00:70::11"],
             "nfServices": [{
                 "serviceInstanceId": "ausf-auth-1", "serviceName": "nausf-auth",
                 "versions": [{"apiVersionInUri": "v1", "apiFullVersion": "1.3.0"}],
                 "scheme": "https", "nfServiceStatus": "REGISTERED", "fqdn": AUSF,
                 "ipEndPoints": [{"ipv4Address": "10.70.0.11", "transport": "TCP", "port": 7443},
                                 {"ipv6Address": "fd00:70::11"}],
                 "apiPrefix": f"https://{AUSF}:7443/pfx",
                 "defaultNotificationSubscriptions": [
                     {"notificationType": "N1_MESSAGES", "callbackUri": f"https://{AUSF}/n1-notify"}],
             }]},
            {"nfInstanceId": "1b2c3d4e-0000-4000-8000-000000000002", "nfType": "UDM", "nfStatus": "REGISTERED",
             "ipv4Addresses": ["10.70.0.12"],
             "nfServiceList": {"sdm-1": {"serviceInstanceId": "sdm-1", "serviceName": "nudm-sdm",
                                         "versions": [{"apiVersionInUri": "v2", "apiFullVersion": "2.3.0"}],
                                         "scheme": "https", "nfServiceStatus": "REGISTERED",
                                         "fqdn": f"udm.{HOME}", "apiPrefix": "/operator/prefix",
                                         "ipEndPoints": [{"ipv4Address": "10.70.0.12"}]}}},
        ],
        "nfInstanceList": {"8a3c0d2e-4f10-4c7b-9b1e-2f5a6d7e8f90": {
            "nrfDiscApiUri": f"https://nrf.{HOME}/nnrf-disc/v1"}},
    }


def test_rewrite_discovery_result(m, tmp_path):
    original = search_result()
    snapshot = copy.deepcopy(original)
    out = rewrite_discovery_result(original, m)
    assert original == snapshot                               # input untouched
    ausf, udm = out["nfInstances"]
    assert ausf["fqdn"] == m.to_telescopic(AUSF) and m.from_telescopic(ausf["fqdn"]) == AUSF
    assert m.from_telescopic(ausf["interPlmnFqdn"]) == f"ausf-ext.{HOME}"
    assert "ipv4Addresses" not in ausf and "ipv6Addresses" not in ausf and "ipv4Addresses" not in udm
    svc = ausf["nfServices"][0]
    assert svc["fqdn"] == m.to_telescopic(AUSF)
    assert svc["ipEndPoints"] == [{"transport": "TCP", "port": 7443}]
    assert svc["apiPrefix"] == f"https://{m.to_telescopic(AUSF)}:7443/pfx"
    assert m.restore_uri(svc["defaultNotificationSubscriptions"][0]["callbackUri"]) == f"https://{AUSF}/n1-notify"
    sdm = udm["nfServiceList"]["sdm-1"]
    assert sdm["fqdn"] == m.to_telescopic(f"udm.{HOME}") and "ipEndPoints" not in sdm
    assert sdm["apiPrefix"] == "/operator/prefix"             # a path prefix: nothing to rewrite
    nrf = out["nfInstanceList"]["8a3c0d2e-4f10-4c7b-9b1e-2f5a6d7e8f90"]["nrfDiscApiUri"]
    assert m.restore_uri(nrf) == f"https://nrf.{HOME}/nnrf-disc/v1" and nrf != m.restore_uri(nrf)
    # no address of a foreign NF is left anywhere
    text = repr(out)
    assert "10.70.0." not in text and "fd00:70" not in text and f".{HOME}" not in text
    schema.validate("SearchResult", out, api="TS29510_Nnrf_NFDiscovery")       # shipped in n32/openapi


def test_rewrite_discovery_result_refuses_malformed_profiles(m):
    bad = search_result()
    bad["nfInstances"][1]["nfServiceList"]["sdm-1"]["fqdn"] = "10.70.0.12"
    with pytest.raises(N32Error) as ei:
        rewrite_discovery_result(bad, m)
    assert ei.value.status == 502 and ei.value.invalid_params[0]["param"] == "/nfInstances/1/nfServiceList/sdm-1/fqdn"
    with pytest.raises(N32Error):
        rewrite_discovery_result([], m)
    assert rewrite_discovery_result({"validityPeriod": 1, "nfInstances": []}, m)["nfInstances"] == []


# ---------------------------------------------------------------------- callbacks (pSEPP)
AMF = "amf1.5gc.mnc001.mcc001.3gppnetwork.org"     # a visited-PLMN NF, as seen by a home pSEPP


def test_sdm_subscription_callback_round_trip():
    home_sepp = TelescopicMapper(f"sepp.{HOME}")
    sub = {"nfInstanceId": "0f5e8f5c-8f4e-4a47-9d7a-2c1a3b4c5d6e",
           "callbackReference": f"https://{AMF}:8443/namf-callback/v1/imsi-001010000000001/sdm-notify",
           "monitoredResourceUris": [f"https://udm.{HOME}/nudm-sdm/v2/imsi-001010000000001/am-data"],
           "plmnId": {"mcc": "001", "mnc": "01"}}
    out = rewrite_callback_uris(sub, CALLBACK_POINTERS, home_sepp)
    cb = out["callbackReference"]
    assert cb == (f"https://amf1-5gc-mnc001-mcc001-3gppnetwork-org.sepp.{HOME}:8443"
                  "/namf-callback/v1/imsi-001010000000001/sdm-notify")
    assert out["monitoredResourceUris"] == sub["monitoredResourceUris"] and sub["callbackReference"] != cb
    schema.validate("SdmSubscription", out, api="TS29503_Nudm_SDM", search_path=(LAB_OPENAPI,))
    assert restore_callback_uris(out, CALLBACK_POINTERS, home_sepp) == sub


def test_pdu_session_create_vsmf_uri():
    home_sepp = TelescopicMapper(f"sepp.{HOME}")
    body = {"supi": "imsi-001010000000001", "pduSessionId": 5, "dnn": "internet", "vsmfId": "11111111-2222-4333-8444-555555555555",
            "vsmfPduSessionUri": f"https://smf.5gc.mnc001.mcc001.3gppnetwork.org/nsmf-pdusession/v1/pdu-sessions/ab12",
            "servingNetwork": {"mcc": "001", "mnc": "01"}, "anType": "3GPP_ACCESS"}
    out = rewrite_callback_uris(body, ["/vsmfPduSessionUri"], home_sepp)
    assert home_sepp.restore_uri(out["vsmfPduSessionUri"]) == body["vsmfPduSessionUri"]
    assert out["vsmfPduSessionUri"].startswith("https://smf-5gc-mnc001-mcc001-3gppnetwork-org.sepp.")


def test_callback_wildcards_and_errors():
    home_sepp = TelescopicMapper(f"sepp.{HOME}")
    body = {"subs": [{"notifUri": f"https://{AMF}/a"}, {"other": 1}, {"notifUri": f"https://{AMF}/b"}]}
    out = rewrite_callback_uris(body, ["/subs/*/notifUri", "/absent", "/subs/9/notifUri"], home_sepp)
    assert [home_sepp.restore_uri(s.get("notifUri", "")) for s in out["subs"]] == [f"https://{AMF}/a", "", f"https://{AMF}/b"]
    with pytest.raises(N32Error) as ei:
        rewrite_callback_uris({"callbackReference": "https://192.0.2.1/cb"}, CALLBACK_POINTERS, home_sepp)
    assert ei.value.invalid_params[0]["param"] == "/callbackReference"
    with pytest.raises(N32Error):
        rewrite_callback_uris({"callbackReference": {"uri": "x"}}, CALLBACK_POINTERS, home_sepp)


def test_iter_pointer_escapes():
    doc = {"a/b": {"~x": [10, 20]}}
    assert [(p, c[k]) for c, k, p in iter_pointer(doc, "/a~1b/~0x/1")] == [("/a~1b/~0x/1", 20)]
    assert [p for _, _, p in iter_pointer(doc, "/a~1b/~0x/*")] == ["/a~1b/~0x/0", "/a~1b/~0x/1"]
    assert list(iter_pointer(doc, "/a~1b/~0x/01")) == []
    with pytest.raises(ValueError):
        list(iter_pointer(doc, "no-slash"))
