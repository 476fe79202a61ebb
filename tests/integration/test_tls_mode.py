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
from n32io import tls
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


# ---------------------------------------------------------------- certificates on N32-f
@pytest.mark.parametrize("cert,why", [
    ("plmn-001-01/nf", "an NF certificate of the peer operator (right CA and PLMN, not its SEPP)"),
    ("rogue/sepp-001-01", "the peer's SEPP FQDN and PLMN, issued by another CA"),
    ("rogue/cross-001-01", "issued by another CA that also claims PLMN 001-01"),
    ("plmn-999-70/sepp", "the home SEPP's own certificate (our PLMN, no relation)"),
])
def test_n32f_with_a_certificate_that_does_not_match_the_n32c_relation_is_refused(tls_lab, cert, why):
    """TS 33.501 §13.1.1.2: N32-f only from the peer of an established N32-c relation, whose
    certificate carries the same identity; the refusal happens in the TLS handshake and nothing
    reaches the home NF."""
    lab, _ = tls_lab
    run(nf(lab, "POST", "/_lab/reset"))
    ctx = tls.client_context(certificate=lab.pki / f"{cert}.crt", private_key=lab.pki / f"{cert}.key",
                             anchors=[lab.pki / "plmn-999-70" / "ca.crt"])

    async def attempt():
        async with await H2TlsClient.connect("127.0.0.1", lab.port("sepp-h.n32"), ctx,
                                             server_name=sepp_fqdn(HOME)) as c:
            return await c.request("GET", "/nudm-sdm/v2/imsi-999700000000001/nssai",
                                   headers=[("3gpp-sbi-target-apiroot", "https://udm.5gc.mnc070.mcc999.3gppnetwork.org")])

    with pytest.raises(Exception):   # the TLS handshake fails: no HTTP response at all
        run(attempt())
    received = [r for r in json.loads(run(nf(lab, "GET", "/_lab/received"))) if not r["path"].startswith("/_lab")]
    assert received == [], why
    log = (lab.out / "sepp-h.log").read_text()
    assert "TLS handshake from" in log and "refused" in log


# ---------------------------------------------------------------- N32-c and N32-f on separate ports
@pytest.fixture(scope="module")
def split_lab(pki, tmp_path_factory):
    """The home SEPP serves N32-c on one port and N32-f on another (listeners.n32f) and
    announces the latter on N32-c (senderN32fFqdn / senderN32fPortList)."""
    lab = Lab(out=tmp_path_factory.mktemp("split"), pki=pki, mode="tls")
    lab.overrides["sepp-h"] = {"listeners": {
        "n32": {"host": "127.0.0.1", "port": lab.port("sepp-h.n32")},
        "n32f": {"host": "127.0.0.1", "port": lab.port("sepp-h.n32f")},
        "sbi": {"host": "127.0.0.1", "port": lab.port("sepp-h.sbi"), "tls": True}}}
    with P.Procs(lab.out) as procs:
        info = start_lab(lab, procs)
        yield lab, info


def test_n32f_goes_to_the_separate_port_the_peer_announced(split_lab):
    from mitmproxy import io as mio

    lab, info = split_lab
    assert info["status"]["visited"]["capability"] == "TLS"
    results = run(run_scenario(f"https://127.0.0.1:{lab.port('sepp-v.sbi')}", 1, 1, client_ssl(lab)))
    assert all(r.ok for r in results), [(r.api, r.status, r.error) for r in results if not r.ok]
    flows_file = lab.out / "sepp-h.flows"
    P.wait_for(lambda: flows_file.exists() and flows_file.stat().st_size > 0, 10, "sepp-h.flows")
    import time
    time.sleep(0.5)
    with open(flows_file, "rb") as f:
        flows = [fl for fl in mio.FlowReader(f).stream() if getattr(fl, "request", None)]
    n32f = [fl for fl in flows if not fl.request.path.startswith("/n32c-handshake/")]
    n32c = [fl for fl in flows if fl.request.path.startswith("/n32c-handshake/")]
    assert len(n32f) == len(results)
    assert {fl.client_conn.sockname[1] for fl in n32f} == {lab.port("sepp-h.n32f")}
    assert {fl.client_conn.sockname[1] for fl in n32c} <= {lab.port("sepp-h.n32")}


def test_n32c_operations_are_not_served_on_a_separate_n32f_port(split_lab):
    lab, _ = split_lab
    ctx = peer_client_ctx(lab.pki, VISITED, HOME)

    async def post():
        async with await H2TlsClient.connect("127.0.0.1", lab.port("sepp-h.n32f"), ctx,
                                             server_name=sepp_fqdn(HOME)) as c:
            return await c.request("POST", "/n32c-handshake/v1/exchange-capability", body=b"{}",
                                   headers=[("content-type", "application/json")])
    rsp = run(post())
    assert rsp.status == 404 and rsp.json()["cause"] == "RESOURCE_URI_STRUCTURE_NOT_FOUND"
