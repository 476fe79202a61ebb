"""PRINS variants (issue 4): HTTP/1.1 NF clients, the A256GCM suite, Nudm_UEAU through the pair."""
from __future__ import annotations

import json

import pytest

from lab import procs as P
from lab.run import client_ssl, start_lab
from lab.topology import Lab
from lab.traffic import H2Client, run_scenario

from .conftest import run


@pytest.fixture(scope="module")
def a256_lab(pki, tmp_path_factory):
    lab = Lab(out=tmp_path_factory.mktemp("a256"), pki=pki, mode="prins", suite="A256GCM")
    with P.Procs(lab.out) as procs:
        info = start_lab(lab, procs)
        yield lab, info


def test_a256gcm_is_negotiated_and_carries_the_scenario(a256_lab):
    lab, info = a256_lab
    assert info["status"]["visited"]["context"]["jweCipherSuite"] == "A256GCM"
    results = run(run_scenario(f"https://127.0.0.1:{lab.port('sepp-v.sbi')}", 1, 2, client_ssl(lab)))
    assert all(r.ok for r in results), [(r.api, r.status, r.error) for r in results if not r.ok]


def test_http1_nf_clients_are_served(a256_lab):
    lab, _ = a256_lab
    ctx = client_ssl(lab)
    ctx.set_alpn_protocols(["http/1.1"])
    results = run(run_scenario(f"https://127.0.0.1:{lab.port('sepp-v.sbi')}", 1, 1, ctx, http="h1", first_ue=3))
    assert all(r.ok for r in results), [(r.api, r.status, r.error) for r in results if not r.ok]


def test_nudm_ueau_generate_auth_data(a256_lab):
    lab, _ = a256_lab

    async def call():
        c = await H2Client.connect("127.0.0.1", lab.port("sepp-v.sbi"), client_ssl(lab))
        try:
            body = json.dumps({"servingNetworkName": "5G:mnc001.mcc001.3gppnetwork.org",
                               "ausfInstanceId": "f7d1a4e2-0000-4000-8000-000000000001"}).encode()
            return await c.request("POST", "/nudm-ueau/v1/suci-0-999-70-0000-0-0-0000000005/security-information/"
                                   "generate-auth-data",
                                   [("3gpp-sbi-target-apiroot", "https://udm.5gc.mnc070.mcc999.3gppnetwork.org"),
                                    ("content-type", "application/json")], body)
        finally:
            await c.close()

    rsp = run(call())
    assert rsp.status == 200, rsp.body
    av = json.loads(rsp.body)["authenticationVector"]
    assert {"rand", "autn", "xresStar", "kausf"} <= set(av)
