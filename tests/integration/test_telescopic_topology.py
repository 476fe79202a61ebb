"""Telescopic FQDNs and topology hiding through the SEPP pair (issue 7), in PRINS and TLS mode.

* NRF discovery: the home NRF's SearchResult reaches the visited NF with the AUSF's FQDN made
  telescopic (``<label>.sepp.5gc.mnc001.mcc001.3gppnetwork.org``) and its addresses removed; the
  visited NF then reaches the AUSF by that name alone (SNI and ``:authority`` = the telescopic
  FQDN, verified against the cSEPP's wildcard certificate, no target header).
* Subscription callback: the callback URI the home UDM receives is telescopic under the home SEPP;
  a notification the "UDM" sends to it reaches the visited AMF's real callback URI.
* Topology hiding on the wire: nothing that crosses N32 names a home NF FQDN or address or
  carries the NFs' ``server`` header; the pseudonyms that do cross are restored on the way back.
* Nsepp_Telescopic_FQDN_Mapping and the SCAS 4.2.2.9 consistency check.
"""
from __future__ import annotations

import base64
import json
import ssl
import subprocess
import sys
import time
from urllib.parse import urlsplit

import pytest
from mitmproxy import io as mio

from lab import procs as P
from lab.run import client_ssl, start_lab
from lab.topology import HOME, ROOT, VISITED, Lab
from lab.traffic import H2Client
from n32 import schema
from n32.exchange import of_metadata

from .conftest import run

V_DOMAIN = "sepp.5gc.mnc001.mcc001.3gppnetwork.org"     # telescopic domain of the visited SEPP
H_DOMAIN = "sepp.5gc.mnc070.mcc999.3gppnetwork.org"
HOME_NFS = ("ausf.5gc.mnc070.mcc999.3gppnetwork.org", "udm.5gc.mnc070.mcc999.3gppnetwork.org",
            "smf.5gc.mnc070.mcc999.3gppnetwork.org", "nrf.5gc.mnc070.mcc999.3gppnetwork.org")
SUPI = "imsi-999700000000001"
AMF_CB = f"https://amf.5gc.mnc001.mcc001.3gppnetwork.org/namf-callback/v1/{SUPI}/sdm-notify"
UDM_ROOT = "https://udm.5gc.mnc070.mcc999.3gppnetwork.org"


@pytest.fixture(scope="module", params=["prins", "tls"])
def lab(request, pki, tmp_path_factory):
    lab = Lab(out=tmp_path_factory.mktemp(f"tele-{request.param}"), pki=pki, mode=request.param)
    with P.Procs(lab.out) as procs:
        start_lab(lab, procs)
        yield lab


def _ca(lab: Lab, side: dict) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(lab.pki / f"plmn-{side['plmn']}" / "ca.crt"))


async def _call(lab: Lab, port_name: str, side: dict, method: str, path: str, headers=(), body: bytes = b"",
                authority: str | None = None):
    """One request; with ``authority`` the TLS SNI and ``:authority`` are that name (the
    certificate must cover it), as an NF that resolved it to the SEPP would send."""
    port = lab.port(port_name)
    c = await H2Client.connect("127.0.0.1", port, _ca(lab, side), server_name=authority)
    if authority:
        c.authority = f"{authority}:{port}"
    try:
        return await c.request(method, path, list(headers), body)
    finally:
        await c.close()


def _received(lab: Lab, side: str) -> list[dict]:
    nf_side = HOME if side == "home" else VISITED
    raw = run(_call(lab, f"{nf_side['name']}.nf", nf_side, "GET", "/_lab/received"))
    return [r for r in json.loads(raw.body) if not r["path"].startswith("/_lab")]


def _reset(lab: Lab) -> None:
    for side in (HOME, VISITED):
        run(_call(lab, f"{side['name']}.nf", side, "POST", "/_lab/reset"))


def _discover(lab: Lab, nf_type: str = "AUSF"):
    return run(_call(lab, "sepp-v.sbi", VISITED, "GET",
                     f"/nnrf-disc/v1/nf-instances?target-nf-type={nf_type}&requester-nf-type=AMF",
                     [("3gpp-sbi-target-apiroot", "https://nrf.5gc.mnc070.mcc999.3gppnetwork.org"),
                      ("accept", "application/json")]))


def test_discovery_result_gets_telescopic_fqdns_and_the_nf_is_reachable_by_them(lab):
    _reset(lab)
    rsp = _discover(lab)
    assert rsp.status == 200, rsp.body[:500]
    raw = rsp.body.decode()
    profile = json.loads(raw)["nfInstances"][0]
    tele = profile["fqdn"]
    assert tele.endswith("." + V_DOMAIN) and "." not in tele[: -len(V_DOMAIN) - 1], tele
    assert profile["nfServices"][0]["fqdn"] == tele
    assert "ipv4Addresses" not in profile and "ipv4Address" not in profile["nfServices"][0]["ipEndPoints"][0]
    assert profile["nfServices"][0]["ipEndPoints"][0]["port"] == 443
    assert not any(h in raw for h in HOME_NFS) and "10.70." not in raw, raw
    # the home NRF itself saw an ordinary discovery request
    assert [r["path"] for r in _received(lab, "home")] == ["/nnrf-disc/v1/nf-instances"]

    # the visited AMF uses the telescopic FQDN as it is: no target header
    body = json.dumps({"supiOrSuci": "suci-0-999-70-0000-0-0-0000000001",
                       "servingNetworkName": "5G:mnc001.mcc001.3gppnetwork.org"}).encode()
    auth = run(_call(lab, "sepp-v.sbi", VISITED, "POST", "/nausf-auth/v1/ue-authentications",
                     [("content-type", "application/json")], body, authority=tele))
    assert auth.status == 201, auth.body[:500]
    assert "5gAuthData" in json.loads(auth.body)
    # the Location of the created resource is telescopic too: the AMF comes back through its SEPP
    loc = urlsplit(dict(auth.headers)["location"])
    assert loc.hostname.endswith("." + V_DOMAIN)
    got = _received(lab, "home")[-1]
    assert got["path"] == "/nausf-auth/v1/ue-authentications"
    assert dict(got["headers"])[":authority"].split(":")[0] == "ausf.5gc.mnc070.mcc999.3gppnetwork.org"

    # Nsepp_Telescopic_FQDN_Mapping: the label maps back to what crossed N32 (a pseudonym of the AUSF)
    label = tele.split(".", 1)[0]
    m = run(_call(lab, "sepp-v.sbi", VISITED, "GET", f"/nsepp-telescopic/v1/mapping?telescopic-label={label}"))
    assert m.status == 200, m.body
    mapping = json.loads(m.body)
    assert schema.errors("TelescopicMapping", mapping, api="TS29573_SeppTelescopicFqdnMapping.yaml") == ([], False)
    assert mapping["telescopicLabel"] == label and mapping["seppDomain"] == V_DOMAIN
    assert mapping["foreignFqdn"].endswith(".th.5gc.mnc070.mcc999.3gppnetwork.org")


def test_inconsistent_telescopic_fqdn_and_target_header_are_not_forwarded(lab):
    """SCAS TS 33.517 4.2.2.9."""
    _reset(lab)
    tele = json.loads(_discover(lab).body)["nfInstances"][0]["fqdn"]
    rsp = run(_call(lab, "sepp-v.sbi", VISITED, "GET", f"/nudm-sdm/v2/{SUPI}/nssai",
                    [("3gpp-sbi-target-apiroot", "https://udm.5gc.mnc070.mcc999.3gppnetwork.org")], authority=tele))
    assert rsp.status == 400 and dict(rsp.headers)["content-type"] == "application/problem+json"
    pd = json.loads(rsp.body)
    assert "inconsistent" in pd["detail"] and {p["param"] for p in pd["invalidParams"]} >= {"3gpp-Sbi-Target-apiRoot"}
    unknown = run(_call(lab, "sepp-v.sbi", VISITED, "GET", f"/nudm-sdm/v2/{SUPI}/nssai",
                        authority=f"t{'0' * 32}.{V_DOMAIN}"))
    assert unknown.status == 400 and json.loads(unknown.body)["invalidParams"][0]["param"] == ":authority"
    assert [r["path"] for r in _received(lab, "home")] == ["/nnrf-disc/v1/nf-instances"]


def test_subscription_callback_round_trip(lab):
    _reset(lab)
    sub = {"nfInstanceId": "51c4b970-0a7b-56e9-b7ba-372d95d6468d", "callbackReference": AMF_CB,
           "monitoredResourceUris": [f"{UDM_ROOT}/nudm-sdm/v2/{SUPI}/am-data"],
           "plmnId": {"mcc": "001", "mnc": "01"}}
    rsp = run(_call(lab, "sepp-v.sbi", VISITED, "POST", f"/nudm-sdm/v2/{SUPI}/sdm-subscriptions",
                    [("3gpp-sbi-target-apiroot", UDM_ROOT), ("content-type", "application/json")],
                    json.dumps(sub).encode()))
    assert rsp.status == 201, rsp.body[:500]
    echoed = json.loads(rsp.body)
    assert echoed["callbackReference"] == AMF_CB            # restored for the AMF on both SEPPs
    # the UDM's own resource URI comes back under its pseudonym (topology hiding), same path
    mon = urlsplit(echoed["monitoredResourceUris"][0])
    assert mon.hostname.endswith(".th.5gc.mnc070.mcc999.3gppnetwork.org") and mon.path.endswith("/am-data")

    # what the home UDM got: a callback on the home SEPP's telescopic domain
    got = json.loads(base64.b64decode(_received(lab, "home")[-1]["body"]))
    cb = urlsplit(got["callbackReference"])
    assert cb.hostname.endswith("." + H_DOMAIN) and cb.path == urlsplit(AMF_CB).path, got["callbackReference"]

    # the UDM notifies: it resolves the telescopic FQDN to its SEPP (wildcard certificate *.sepp...)
    note = {"notifyItems": [{"resourceId": f"{UDM_ROOT}/nudm-sdm/v2/{SUPI}/am-data",
                             "changedItems": [{"op": "REPLACE", "path": "/subscribedUeAmbr/uplink", "newValue": "2 Gbps"}]}]}
    n = run(_call(lab, "sepp-h.sbi", HOME, "POST", cb.path, [("content-type", "application/json")],
                  json.dumps(note).encode(), authority=cb.hostname))
    assert n.status == 204, n.body[:500]
    at_amf = _received(lab, "visited")
    assert [r["path"] for r in at_amf] == [urlsplit(AMF_CB).path]
    h = dict(at_amf[0]["headers"])
    assert h[":authority"].split(":")[0] == "amf.5gc.mnc001.mcc001.3gppnetwork.org"
    # the AMF sees the home UDM only under its pseudonym
    body = base64.b64decode(at_amf[0]["body"]).decode()
    assert "udm.5gc.mnc070" not in body and ".th.5gc.mnc070.mcc999.3gppnetwork.org" in body


def _flows(path) -> list:
    P.wait_for(lambda: path.exists() and path.stat().st_size > 0, 10, path.name)
    time.sleep(0.5)
    with open(path, "rb") as f:
        return [fl for fl in mio.FlowReader(f).stream() if getattr(fl, "request", None)]


def _wire(lab: Lab) -> tuple[str, str]:
    """(requests, responses) as they crossed N32 between the SEPPs (decrypted for PRINS)."""
    reqs, rsps = [], []
    if lab.mode == "prins":
        out = subprocess.run([sys.executable, "-m", "addons.decode", str(lab.out / "sepp-v.flows"), "--keylog",
                              str(lab.out / "sepp-v.keylog.jsonl"), "--json"], capture_output=True, text=True,
                             cwd=ROOT, timeout=60)
        assert out.returncode == 0, out.stderr[-2000:]
        for line in filter(str.strip, out.stdout.splitlines()):
            (reqs if json.loads(line)["direction"] == "request" else rsps).append(line)
        return "\n".join(reqs), "\n".join(rsps)
    for fl in _flows(lab.out / "sepp-v.flows"):          # requests as the cSEPP sent them
        if getattr(of_metadata(fl.metadata), "role", None) != "sending":
            continue
        reqs.append(json.dumps([fl.request.pretty_url, list(fl.request.headers.items(multi=True)),
                                fl.request.get_text(strict=False)]))
    for fl in _flows(lab.out / "sepp-h.flows"):          # responses as the pSEPP sent them
        if fl.response and getattr(of_metadata(fl.metadata), "role", None) == "tls-receiving":
            rsps.append(json.dumps([fl.response.status_code, list(fl.response.headers.items(multi=True)),
                                    fl.response.get_text(strict=False)]))
    return "\n".join(reqs), "\n".join(rsps)


def test_topology_is_hidden_on_the_wire(lab):
    """Each SEPP hides its own PLMN's NFs: the home side's responses name no home NF FQDN or
    address and carry no ``server`` header; the visited side's requests name no visited NF (its
    callback URIs cross as pseudonyms). The visited NF may of course name the home NF it targets."""
    from lab.run import run_traffic

    results = run_traffic(lab, 1, concurrency=1)
    assert all(r.ok for r in results), [(r.step, r.status, r.error) for r in results if not r.ok]
    _discover(lab)
    requests, responses = _wire(lab)
    assert requests and responses
    for host in HOME_NFS:
        assert host not in responses, host
    # the NRF's NF addresses (10.70.0.12-14); 10.70.0.1 is the H-UPF's N9 tunnel endpoint in the
    # PDU session answer, which the visited UPF must reach (user plane: not topology hiding's)
    assert not any(f"10.70.0.{n}" in responses for n in (12, 13, 14))
    assert "-lab-1.0" not in responses                 # the NFs' server header (AUSF-lab-1.0 ...)
    assert ".th.5gc.mnc070.mcc999.3gppnetwork.org" in responses      # pseudonyms did cross
    for host in ("amf.5gc.mnc001.mcc001", "smf.5gc.mnc001.mcc001"):
        assert host not in requests, host
    assert ".th.5gc.mnc001.mcc001.3gppnetwork.org" in requests
