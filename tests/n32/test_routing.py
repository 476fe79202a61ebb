"""n32/routing.py: which peer a target belongs to, and which targets are refused (TS 23.003 §28,
TS 29.500 §6.10; the SSRF class of open5gs #4628)."""
from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from n32 import routing
from n32.errors import N32Error
from n32.message import HttpRequest
from n32.plmn import PlmnId

OWN = [PlmnId("001", "01")]


@dataclass
class Peer:
    fqdn: str
    plmn_ids: tuple


PEERS = [Peer("sepp.5gc.mnc070.mcc999.3gppnetwork.org", (PlmnId("999", "70"),)),
         Peer("sepp.5gc.mnc123.mcc310.3gppnetwork.org", (PlmnId("310", "123"), PlmnId("311", "480")))]


def target(value: str) -> routing.ApiRoot:
    return routing.parse_api_root(value)


@pytest.mark.parametrize("host,peer", [
    ("udm.5gc.mnc070.mcc999.3gppnetwork.org", 0),          # 2-digit MNC configured, 3-digit in the FQDN
    ("ausf.5gc.mnc123.mcc310.3gppnetwork.org", 1),
    ("smf1.region.5gc.mnc480.mcc311.3gppnetwork.org", 1),  # second PLMN of the same peer, deeper name
    ("UDM.5GC.MNC070.MCC999.3GPPNETWORK.ORG", 0),          # case-insensitive
])
def test_the_peer_is_chosen_by_the_plmn_of_the_target(host, peer):
    assert routing.select_peer(target(f"https://{host}:443"), PEERS, OWN) is PEERS[peer]


@pytest.mark.parametrize("value,status", [
    ("https://127.0.0.1:8080", 400),
    ("https://[::1]", 400),
    ("https://localhost", 400),
    ("https://udm.example.com", 400),
    ("https://udm.5gc.mnc70.mcc999.3gppnetwork.org", 400),   # 2-digit MNC label: not the TS 23.003 form
    ("https://udm.5gc.mnc001.mcc001.3gppnetwork.org", 400),  # our own PLMN is not routed over N32
    ("https://udm.5gc.mnc099.mcc099.3gppnetwork.org", 404),  # no roaming partner
])
def test_targets_outside_the_peer_domains_are_refused(value, status):
    with pytest.raises(N32Error) as e:
        routing.select_peer(target(value), PEERS, OWN)
    assert e.value.status == status and e.value.invalid_params[0]["param"] == routing.TARGET_API_ROOT


@pytest.mark.parametrize("value", ["ftp://udm.5gc.mnc070.mcc999.3gppnetwork.org", "https://",
                                   "https://u:p@udm.5gc.mnc070.mcc999.3gppnetwork.org",
                                   "https://udm.5gc.mnc070.mcc999.3gppnetwork.org/?x=1", "https://h:99999"])
def test_malformed_api_roots_are_refused(value):
    with pytest.raises(N32Error) as e:
        routing.parse_api_root(value)
    assert e.value.status == 400


def test_api_root_keeps_port_and_prefix():
    r = target("https://udm.5gc.mnc070.mcc999.3gppnetwork.org:8443/pfx/")
    assert (r.host, r.port, r.prefix, str(r)) == ("udm.5gc.mnc070.mcc999.3gppnetwork.org", 8443, "/pfx",
                                                  "https://udm.5gc.mnc070.mcc999.3gppnetwork.org:8443/pfx")


def test_outbound_target_is_the_header_else_the_authority():
    with_header = HttpRequest("GET", "https", "sepp:1", "/x", "", [(routing.TARGET_API_ROOT,
                                                                    "https://udm.5gc.mnc070.mcc999.3gppnetwork.org")])
    assert routing.outbound_target(with_header).host == "udm.5gc.mnc070.mcc999.3gppnetwork.org"
    plain = HttpRequest("GET", "https", "ausf.5gc.mnc070.mcc999.3gppnetwork.org:7443", "/x")
    t = routing.outbound_target(plain)
    assert (t.host, t.port) == ("ausf.5gc.mnc070.mcc999.3gppnetwork.org", 7443)


@pytest.mark.parametrize("host,ok", [
    ("udm.5gc.mnc001.mcc001.3gppnetwork.org", True),
    ("udm.5gc.mnc070.mcc999.3gppnetwork.org", False),   # the peer's own NF: not ours to deliver
    ("127.0.0.1", False),
    ("metadata.internal", False),
])
def test_inbound_targets_must_be_our_own_nfs(host, ok):
    t = routing.ApiRoot("https", host, None)
    if ok:
        routing.check_inbound_target(t, OWN)
    else:
        with pytest.raises(N32Error) as e:
            routing.check_inbound_target(t, OWN)
        assert e.value.status == 403 and e.value.cause == "TARGET_NOT_ALLOWED"


@pytest.mark.parametrize("host", ["sepp.5gc.mnc001.mcc001.3gppnetwork.org", "SEPP.5gc.mnc001.mcc001.3gppnetwork.org",
                                  "udm-5gc-mnc001-mcc001-3gppnetwork-org.sepp.5gc.mnc001.mcc001.3gppnetwork.org"])
def test_inbound_targets_naming_the_receiving_sepp_are_refused(host):
    """Our FQDN and the telescopic FQDNs below it are in our PLMN but name us (a loop)."""
    t = routing.ApiRoot("https", host, None)
    routing.check_inbound_target(t, OWN)       # without our FQDN: only the PLMN is checked
    with pytest.raises(N32Error) as e:
        routing.check_inbound_target(t, OWN, "sepp.5gc.mnc001.mcc001.3gppnetwork.org")
    assert e.value.status == 403 and e.value.cause == "TARGET_NOT_ALLOWED"
    routing.check_inbound_target(routing.ApiRoot("https", "udm.5gc.mnc001.mcc001.3gppnetwork.org", None), OWN,
                                 "sepp.5gc.mnc001.mcc001.3gppnetwork.org")


# ------------------------------------------------------------------ paths (issue 13 item 3)
@pytest.mark.parametrize("path", ["/nudm-sdm/v2/imsi-1/am-data", "/a/b%20c", "/a/.b..", "/a/%25/b", "/", "/a//b"])
def test_clean_paths_pass(path):
    routing.check_path(path)


@pytest.mark.parametrize("path,why", [
    ("/nudm-sdm/v2/../../admin", "dot segment"),
    ("/nudm-sdm/v2/..", "dot segment"),
    ("/a/./b", "dot segment"),
    ("/a/%2e%2E/b", "dot segment"),
    ("/a/.%2e/b", "dot segment"),
    ("/a/%252e%252e/b", "dot segment"),
    ("/a/%2fb", "encoded '/'"),
    ("/a/%5Cb", "encoded '/'"),
    ("/a/%252Fb", "encoded '/'"),
    ("/a\\b", "backslash"),
])
def test_dot_segments_and_encoded_separators_are_refused(path, why):
    with pytest.raises(N32Error) as e:
        routing.check_path(path)
    assert (e.value.status, e.value.cause) == (400, "INVALID_MSG_FORMAT")
    assert why in e.value.invalid_params[0]["reason"] and e.value.invalid_params[0]["param"] == ":path"


def test_api_root_prefix_with_dot_segments_is_refused():
    with pytest.raises(N32Error) as e:
        routing.parse_api_root("https://udm.5gc.mnc070.mcc999.3gppnetwork.org/nudm-sdm/..")
    assert e.value.invalid_params[0]["param"] == "3gpp-sbi-target-apiroot"


def test_what_is_echoed_is_bounded():
    from n32.errors import MAX_DETAIL, bounded
    err = N32Error(403, "CONTEXT_NOT_FOUND", "no N32-f context " + "f" * 1_000_000, context_id="f" * 1_000_000,
                   invalid_params=[{"param": "/" + "x" * 100_000, "reason": "r"}] * 1000)
    err.message_id = "1" * 1_000_000
    assert len(err.detail) < MAX_DETAIL + 50 and len(str(err)) < MAX_DETAIL + 100
    assert len(json.dumps(err.problem_details())) < 5000 and len(err.invalid_params) == 20
    assert len(json.dumps(err.n32f_error_info(err.message_id, err.context_id))) < 500
    assert bounded("abc") == "abc" and bounded("x" * 200).endswith("...(40 more characters)")


@pytest.mark.parametrize("value,host", [
    ("https://udm.5gc.mnc070.mcc999.3gppnetwork.org.", "udm.5gc.mnc070.mcc999.3gppnetwork.org"),
    ("https://UDM.5gc.mnc070.mcc999.3gppnetwork.org.:443/p", "udm.5gc.mnc070.mcc999.3gppnetwork.org"),
])
def test_the_absolute_form_of_a_target_is_the_nf_it_names(value, host):
    """A trailing root dot reached the next hop's TLS name check, which failed: a 500."""
    assert routing.parse_api_root(value).host == host
    req = HttpRequest("GET", "https", "udm.5gc.mnc070.mcc999.3gppnetwork.org.:8443", "/x")
    assert routing.outbound_target(req).host == "udm.5gc.mnc070.mcc999.3gppnetwork.org"


@pytest.mark.parametrize("value", ["https://udm.5gc.mnc070.mcc999.3gppnetwork.org..", "https://./"])
def test_more_than_the_root_dot_is_a_malformed_target(value):
    with pytest.raises(N32Error) as e:
        routing.parse_api_root(value)
    assert e.value.status == 400
