"""TLS-mode N32-f and routing safety (issue 7): the lab scenario over a TLS relation, targets
outside the allowed domains refused (the SSRF class of open5gs #4628), N32-f without a TLS
relation refused."""
from __future__ import annotations

import json

import pytest

from lab import procs as P
from lab.run import client_ssl, start_lab
from lab.topology import HOME, VISITED, Lab, sepp_fqdn
from lab.traffic import H2Client, run_scenario
from n32io.h2client import H2TlsClient

from .conftest import peer_client_ctx, run
from .test_n32f_prins import nf


@pytest.fixture(scope="module")
def tls_lab(pki, tmp_path_factory):
    lab = Lab(out=tmp_path_factory.mktemp("tls"), pki=pki, mode="tls")
    with P.Procs(lab.out) as procs:
        info = start_lab(lab, procs)
        yield lab, info


def test_tls_mode_round_trip_of_the_lab_scenario(tls_lab):
    lab, info = tls_lab
    assert info["status"]["visited"]["capability"] == "TLS"
    run(nf(lab, "POST", "/_lab/reset"))
    results = run(run_scenario(f"https://127.0.0.1:{lab.port('sepp-v.sbi')}", 1, 1, client_ssl(lab)))
    assert all(r.ok for r in results), [(r.api, r.status, r.error) for r in results if not r.ok]
    received = [r for r in json.loads(run(nf(lab, "GET", "/_lab/received"))) if not r["path"].startswith("/_lab")]
    for r in received:
        h = dict(r["headers"])
        assert h[":authority"].split(":")[0].endswith(".5gc.mnc070.mcc999.3gppnetwork.org")
        assert h["3gpp-sbi-originating-network-id"].startswith("001-01")


async def _nf_request(lab: Lab, target: str):
    c = await H2Client.connect("127.0.0.1", lab.port("sepp-v.sbi"), client_ssl(lab))
    try:
        return await c.request("GET", "/nudm-sdm/v2/imsi-999700000000001/nssai",
                               [("3gpp-sbi-target-apiroot", target)], b"")
    finally:
        await c.close()


@pytest.mark.parametrize("target,status", [
    ("https://127.0.0.1:8080", 400),                                   # IP literal
    ("https://localhost", 400),                                        # loopback name
    ("https://udm.example.com", 400),                                  # other domain
    ("https://udm.5gc.mnc001.mcc001.3gppnetwork.org", 400),            # our own PLMN
    ("https://udm.5gc.mnc099.mcc099.3gppnetwork.org", 404),            # no roaming partner
    ("ftp://udm.5gc.mnc070.mcc999.3gppnetwork.org", 400),              # not an apiRoot
])
def test_targets_outside_the_allowed_domains_are_refused(tls_lab, target, status):
    lab, _ = tls_lab
    run(nf(lab, "POST", "/_lab/reset"))
    rsp = run(_nf_request(lab, target))
    assert rsp.status == status
    assert dict(rsp.headers).get("content-type") == "application/problem+json"
    assert json.loads(rsp.body)["invalidParams"][0]["param"] == "3gpp-sbi-target-apiroot"
    received = [r for r in json.loads(run(nf(lab, "GET", "/_lab/received"))) if not r["path"].startswith("/_lab")]
    assert received == []


async def _direct_n32f(lab: Lab, authority_target: str):
    ctx = peer_client_ctx(lab.pki, VISITED, HOME)
    async with await H2TlsClient.connect("127.0.0.1", lab.port("sepp-h.n32"), ctx, server_name=sepp_fqdn(HOME)) as c:
        return await c.request("GET", "/nudm-sdm/v2/imsi-999700000000001/nssai",
                               headers=[("3gpp-sbi-target-apiroot", authority_target)])


def test_inbound_target_outside_the_home_plmn_is_refused(tls_lab):
    lab, _ = tls_lab
    rsp = run(_direct_n32f(lab, "https://evil.5gc.mnc001.mcc001.3gppnetwork.org"))
    assert rsp.status == 403 and rsp.json()["cause"] == "TARGET_NOT_ALLOWED"


def test_n32f_without_a_tls_relation_is_refused(prins_lab):
    """The PRINS pair has no TLS-mode relation: plain N32-f requests are not forwarded."""
    lab, _ = prins_lab
    rsp = run(_direct_n32f(lab, "https://udm.5gc.mnc070.mcc999.3gppnetwork.org"))
    assert rsp.status == 403 and rsp.json()["cause"] == "N32_NOT_ESTABLISHED"
