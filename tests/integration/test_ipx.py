"""Roaming intermediaries on the N32-f path (issue 5), real processes on loopback:
cSEPP -> ipx1 -> ipx2 -> pSEPP -> home NF and back, and every forbidden modification rejected by
the receiving SEPP with an n32f-error naming the IPX."""
from __future__ import annotations

import json
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwcrypto import jwk, jws as jjws

from lab import procs as P
from lab.run import client_ssl, ipx_counts, start_lab
from lab.topology import HOME, Lab, sepp_fqdn
from lab.traffic import run_scenario
from n32 import ipx, jwe
from n32.keylog import keys_from_keylog, read_keylog
from n32io import tls
from n32io.h2client import H2TlsClient

from .conftest import run
from .test_n32f_prins import _log_has, b64, nf

C_IPX, P_IPX = "ipx1.ipx.lab", "ipx2.ipx.lab"


@pytest.fixture(scope="module")
def ipx_lab(pki, tmp_path_factory):
    lab = Lab(out=tmp_path_factory.mktemp("ipxlab"), pki=pki, ipx=True)
    with P.Procs(lab.out) as procs:
        start_lab(lab, procs)
        yield lab


def test_allowed_modifications_by_both_ipxs_reach_the_nf_and_the_consumer(ipx_lab):
    lab = ipx_lab
    run(nf(lab, "POST", "/_lab/reset"))
    results = run(run_scenario(f"https://127.0.0.1:{lab.port('sepp-v.sbi')}", 1, 1, client_ssl(lab)))
    assert all(r.ok for r in results), [(r.api, r.status, r.response_body[:200]) for r in results if not r.ok]
    received = [r for r in json.loads(run(nf(lab, "GET", "/_lab/received"))) if not r["path"].startswith("/_lab")]
    assert received and all(dict(r["headers"]).get("user-agent") == "AMF (via ipx1)" for r in received)
    assert all(dict(r.response_headers).get("server") == "home-nf (via ipx2)" for r in results)
    time.sleep(0.5)
    counts = ipx_counts(lab.out)
    assert counts[C_IPX]["requests"] >= len(results) and counts[P_IPX]["responses"] >= len(results)


def _key(name: str, lab: Lab) -> bytes:
    return (lab.pki / "ipx" / f"{name}.key").read_bytes()


def _request(lab: Lab, seq: int) -> dict:
    """A correctly protected request from the visited SEPP (keys from its key log)."""
    record = read_keylog(lab.out / "sepp-v.keylog.jsonl")[0]
    keys = keys_from_keylog(record)
    block = {"metaData": {"n32fContextId": record["responderContextId"], "messageId": f"9{seq}",
                          "authorizedIpxId": C_IPX},
             "requestLine": {"method": "GET", "scheme": "https", "authority": "udm.5gc.mnc070.mcc999.3gppnetwork.org",
                             "path": "/nudm-sdm/v2/{encBlockIndex:0}/nssai", "protocolVersion": "HTTP/2"},
             "headers": [{"header": "user-agent", "value": "AMF"}],
             "payload": [{"iePath": "/requestLine/path/2", "ieValueLocation": "URI_PARAM",
                          "value": {"encBlockIndex": 0}}]}
    nonce = keys.parallel_request_iv_salt + seq.to_bytes(4, "big")
    return {"reformattedData": jwe.encrypt(keys.parallel_request_key, nonce, "A128GCM", block,
                                           ["imsi-999700000000001"])}


def _rogue() -> bytes:
    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _hs256(lab: Lab, body: dict) -> dict:
    payload = json.dumps({"identity": C_IPX, "operations": None, "tag": body["reformattedData"]["tag"]})
    k = jwk.JWK(kty="oct", k=b64((lab.pki / "ipx" / f"{C_IPX}.pub").read_bytes()))
    s = jjws.JWS(payload.encode())
    s.add_signature(k, alg="HS256", protected=json.dumps({"alg": "HS256"}))
    return {**body, "modificationsBlock": [json.loads(s.serialize())]}


def _alg_none(lab: Lab, body: dict) -> dict:
    """cIPX's entry with ``alg: none`` and an empty signature (RFC 7515 §A.5), before ipx2's valid one."""
    payload = json.dumps({"identity": C_IPX, "operations": None, "tag": body["reformattedData"]["tag"]})
    unsigned = {"protected": b64(b'{"alg":"none"}'), "payload": b64(payload.encode()), "signature": ""}
    return ipx.modify({**body, "modificationsBlock": [unsigned]}, P_IPX, _key(P_IPX, lab), [], "request").body


def _embedded_jwk(lab: Lab, body: dict) -> dict:
    """cIPX's entry signed by an attacker's key that the JWS header itself carries (SCAS 4.2.2.7)."""
    attacker = jwk.JWK.from_pem(_rogue())
    payload = json.dumps({"identity": C_IPX, "operations": None, "tag": body["reformattedData"]["tag"]})
    s = jjws.JWS(payload.encode())
    s.add_signature(attacker, alg="ES256",
                    protected=json.dumps({"alg": "ES256", "jwk": json.loads(attacker.export_public())}))
    return ipx.modify({**body, "modificationsBlock": [json.loads(s.serialize())]}, P_IPX, _key(P_IPX, lab), [],
                      "request").body


def _both(lab, body, c_rules=(), c_key=None, c_id=C_IPX):
    first = ipx.modify(body, c_id, c_key or _key(C_IPX, lab), list(c_rules), "request").body
    return ipx.modify(first, P_IPX, _key(P_IPX, lab), [], "request").body


CASES = {
    "outside policy": lambda lab, b: _both(lab, b, [ipx.Rule(patch=(
        {"op": "replace", "path": "/requestLine/path", "value": "/nudm-sdm/v2/{encBlockIndex:0}/am-data"},))]),
    "unknown key": lambda lab, b: _both(lab, b, c_key=_rogue()),
    "right key, wrong identity": lambda lab, b: _both(lab, b, c_key=_key(P_IPX, lab)),
    "HS256": _hs256,
    "alg none": _alg_none,
    "embedded jwk": _embedded_jwk,
    "reordered": lambda lab, b: {**_both(lab, b), "modificationsBlock": _both(lab, b)["modificationsBlock"][::-1]},
    "dropped": lambda lab, b: {**_both(lab, b), "modificationsBlock": _both(lab, b)["modificationsBlock"][1:]},
    "copied from another message": lambda lab, b: {**b, "modificationsBlock":
                                                   _both(lab, _request(lab, 777))["modificationsBlock"]},
    "moves an encrypted IE into clear": lambda lab, b: _both(lab, b, [ipx.Rule(patch=(
        {"op": "move", "from": "/payload/0/value", "path": "/headers/0/value"},))]),
    "not authorized acting first": lambda lab, b: ipx.modify(b, P_IPX, _key(P_IPX, lab), [], "request").body,
}


async def _as_ipx2(lab: Lab, body: dict):
    base = lab.pki / "ipx" / P_IPX
    ctx = tls.client_context(certificate=base.with_name(f"{P_IPX}.crt"), private_key=base.with_name(f"{P_IPX}.key"),
                             anchors=[lab.pki / f"plmn-{HOME['plmn']}" / "ca.crt"])
    async with await H2TlsClient.connect("127.0.0.1", lab.port("sepp-h.n32"), ctx, server_name=sepp_fqdn(HOME)) as c:
        return await c.post_json("/n32f-forward/v1/n32f-process", body)


@pytest.mark.parametrize("case", list(CASES))
def test_forbidden_modifications_are_rejected(ipx_lab, case):
    lab = ipx_lab
    seq = 400 + list(CASES).index(case)
    body = CASES[case](lab, _request(lab, seq))
    rsp = run(_as_ipx2(lab, body))
    assert rsp.status == 403, rsp.body
    cause = rsp.json()["cause"]
    assert cause in ("INTEGRITY_CHECK_ON_MODIFICATIONS_FAILED", "MODIFICATIONS_INSTRUCTIONS_FAILED"), cause
    # reported to the sending SEPP with failedModificationList naming an IPX, unless a report of the
    # same type for the same context went within the last second (coalesced, n32/reports.py)
    assert _log_has(lab, "sepp-v", "n32f-error from", f'"n32fMessageId": "9{seq}"', "failedModificationList") or \
        _log_has(lab, "sepp-h", f"for messageId 9{seq}", "not sent: coalesced")


def test_valid_chain_via_ipx2_connection_is_accepted(ipx_lab):
    """Control case for the above: the same forged-by-keylog request, correctly signed, is served."""
    lab = ipx_lab
    rsp = run(_as_ipx2(lab, _both(lab, _request(lab, 450))))
    assert rsp.status == 200, rsp.body


def test_ri_parameters_travel_over_n32f_in_clear_and_are_answered(ipx_lab):
    """TS 33.501 §13.2.2.2 step 7: carried as n32cParameters in the clear, integrity-protected block."""
    lab = ipx_lab
    status_h = json.loads((lab.out / "sepp-h.status.json").read_text())
    status_v = json.loads((lab.out / "sepp-v.status.json").read_text())
    got_h = next(iter(status_h["peers"].values()))["context"]["peerRiParameters"]
    got_v = next(iter(status_v["peers"].values()))["context"]["peerRiParameters"]
    assert got_h["sender"] == "sepp.5gc.mnc001.mcc001.3gppnetwork.org" and got_h["ipxProviderIds"] == [C_IPX]
    assert C_IPX in got_h["modificationPolicy"] and got_h["jwsCipherSuite"] == "ES256"
    assert got_v["sender"] == sepp_fqdn(HOME) and got_v["ipxProviderIds"] == [P_IPX]


@pytest.fixture(scope="module")
def hub_lab(pki, tmp_path_factory):
    lab = Lab(out=tmp_path_factory.mktemp("hublab"), pki=pki, ipx=True)
    lab.ipx_rules[C_IPX] = [{"direction": "request", "path": "^/nudm-sdm/", "reject":
                             {"status": 403, "cause": "CONTRACTUAL_REASONS", "detail": "SDM not in our contract"}}]
    with P.Procs(lab.out) as procs:
        start_lab(lab, procs)
        yield lab


def test_roaming_hub_error_reaches_the_nf_consumer(hub_lab):
    lab = hub_lab

    async def call():
        c = await H2Client.connect("127.0.0.1", lab.port("sepp-v.sbi"), client_ssl(lab))
        try:
            return await c.request("GET", "/nudm-sdm/v2/imsi-999700000000001/nssai",
                                   [("3gpp-sbi-target-apiroot", "https://udm.5gc.mnc070.mcc999.3gppnetwork.org")], b"")
        finally:
            await c.close()

    from lab.traffic import H2Client
    rsp = run(call())
    assert rsp.status == 403
    assert json.loads(rsp.body)["cause"] == "CONTRACTUAL_REASONS"
    assert _log_has(lab, "sepp-v", "roaming hub ipx1.ipx.lab refused it")
    received = [r for r in json.loads(run(nf(lab, "GET", "/_lab/received"))) if r["path"].startswith("/nudm-sdm")]
    assert received == []


@pytest.mark.parametrize("ipx", ["ipx1.ipx.lab", "ipx2.ipx.lab"])
def test_ipx_listener_refuses_cleartext(ipx_lab, ipx):
    """The IPX's N32-f listener is TLS only (issue 13.1): cleartext HTTP gets a closed connection."""
    import socket

    lab = ipx_lab
    with socket.create_connection(("127.0.0.1", lab.port(ipx)), timeout=5) as s:
        s.sendall(b"POST /n32f-forward/v1/n32f-process HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}")
        assert s.recv(4096) == b""
    log = (lab.out / f"{ipx.split('.')[0]}.log").read_text()
    assert "listeners.n32f: connection from 127.0.0.1:" in log


@pytest.mark.parametrize("head,status,cause", [
    (b"GARBAGE\r\n\r\n", 400, "INVALID_MSG_FORMAT"),
    (b"POST /n32f-forward/v1/n32f-process HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
     b"content-length: 100000000000\r\n\r\n{}", 413, "PAYLOAD_TOO_LARGE"),
], ids=["malformed-head", "body-over-the-limit"])
def test_ipx_answers_what_mitmproxy_refuses_with_problem_details(ipx_lab, head, status, cause):
    """The IPX shares the SEPP's listener stack: mitmproxy's HTML page and an unbounded body
    (a declared 100 GB was waited for) are a ProblemDetails there too."""
    import ssl

    from .test_hostile_input import _h1_problem, _over_tls

    lab = ipx_lab
    me = lab.pki / "plmn-001-01"
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE   # the answer is under test, not the IPX's name
    ctx.load_cert_chain(me / "sepp.crt", me / "sepp.key")
    _h1_problem(_over_tls(lab.port(C_IPX), ctx, C_IPX, head, alpn=False), status, cause)
