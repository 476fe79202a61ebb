"""N32-f PRINS through two real SEPP processes (issue 4): messages restored unchanged, nothing
sensitive in clear on the wire, an RFC 7516 library decrypts what we send, tampering rejected
with n32f-error reports while the SEPPs keep serving."""
from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import ssl
import time
from pathlib import Path

import pytest
import yaml
from jwcrypto import jwe as jjwe, jwk

from lab import procs as P
from n32.reports import UNAUTHENTICATED
from lab.run import client_ssl, flow_stats, start_lab
from n32.exchange import of_metadata
from lab.topology import HOME, VISITED, Lab, sepp_fqdn
from lab.h2server import multipart_decode
from lab.scenario import ue_steps
from lab.traffic import H2Client, run_scenario
from n32 import jwe
from n32.keylog import keys_from_keylog, read_keylog
from n32io.h2client import H2TlsClient

from .conftest import peer_client_ctx, run

UES = 2
STEPS = len(ue_steps(1))
ROOT = Path(__file__).resolve().parents[2]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def nf(lab: Lab, method: str, path: str) -> bytes:
    ctx = ssl.create_default_context(cafile=str(lab.pki / f"plmn-{HOME['plmn']}" / "ca.crt"))
    c = await H2Client.connect("127.0.0.1", lab.port("sepp-h.nf"), ctx)
    try:
        return (await c.request(method, path, [], b"")).body
    finally:
        await c.close()


def scenario(lab: Lab, base: str, ctx: ssl.SSLContext):
    run(nf(lab, "POST", "/_lab/reset"))
    results = run(run_scenario(base, UES, 1, ctx))
    received = json.loads(run(nf(lab, "GET", "/_lab/received")))
    return results, [r for r in received if not r["path"].startswith("/_lab")]


@pytest.fixture(scope="module")
def exchanged(prins_lab):
    """The scenario once directly against the home NFs and once through the SEPP pair."""
    lab, _ = prins_lab
    home_ctx = ssl.create_default_context(cafile=str(lab.pki / f"plmn-{HOME['plmn']}" / "ca.crt"))
    direct = scenario(lab, f"https://127.0.0.1:{lab.port('sepp-h.nf')}", home_ctx)
    via = scenario(lab, f"https://127.0.0.1:{lab.port('sepp-v.sbi')}", client_ssl(lab))
    time.sleep(0.5)  # let mitmdump append the last flows to its stream file
    return lab, direct, via


def _json(body: str | bytes | None):
    try:
        return json.loads(body) if body else None
    except ValueError:
        return body


def test_requests_and_responses_arrive_unchanged(exchanged):
    lab, (d_res, d_rcv), (v_res, v_rcv) = exchanged
    assert all(r.ok for r in v_res), [(r.api, r.status, r.error) for r in v_res if not r.ok]
    assert len(v_res) == len(d_res) == STEPS * UES
    # every shipped NF API mapping is exercised end to end (Nudm_UEAU in test_n32f_variants)
    shipped = {yaml.safe_load(p.read_text())["api"] for p in (ROOT / "policies/placement").glob("*.yaml")}
    assert {r.api for r in v_res} | {"Nudm_UEAU"} == shipped - {"any"}
    for a, b in zip(d_res, v_res):
        assert (a.api, a.status) == (b.api, b.status)
        ctype = dict(b.response_headers).get("content-type", "")
        # identical but for the hosts of URIs: topology hiding and telescopic FQDNs (docs/routing.md)
        assert _uris(_parts(ctype, a.response_body)) == _uris(_parts(ctype, b.response_body)), a.api
        assert "ausf.5gc" not in b.response_body.decode(errors="replace")
    assert len(d_rcv) == len(v_rcv)
    for a, b in zip(d_rcv, v_rcv):
        assert (a["method"], a["path"], a.get("query")) == (b["method"], b["path"], b.get("query"))
        ha, hb = dict(a["headers"]), dict(b["headers"])
        for name in ("authorization", "user-agent", "content-type"):
            assert ha.get(name) == hb.get(name), name
        # SCAS TS 33.517 4.2.2.10: the target header is consumed by the sending SEPP
        assert "3gpp-sbi-target-apiroot" not in hb
        # TS 33.501 §5.9.3.2: the sending SEPP inserts the originating network
        assert hb.get("3gpp-sbi-originating-network-id") == "001-01; src: SEPP-sepp.5gc.mnc001.mcc001.3gppnetwork.org"
        assert hb.get(":authority", "").split(":")[0].endswith(".5gc.mnc070.mcc999.3gppnetwork.org")
        body_a, body_b = base64.b64decode(a.get("body") or ""), base64.b64decode(b.get("body") or "")
        assert _uris(_parts(ha.get("content-type", ""), body_a)) == _uris(_parts(hb.get("content-type", ""), body_b))


def _uris(value):
    """``value`` with the host of every absolute URI replaced by ``HOST`` (paths kept)."""
    if isinstance(value, dict):
        return {k: _uris(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_uris(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_uris(v) for v in value)
    if isinstance(value, str):
        return re.sub(r"^(https?://)[^/]+", r"\1HOST", value)
    return value


def _parts(ctype: str, body: bytes):
    """JSON compared as data; multipart binary parts (N1 SM) byte for byte."""
    if ctype.startswith("multipart/"):
        return [(dict(h).get("content-type"), _json(c) if b"{" == c[:1] else c)
                for h, c in multipart_decode(ctype, body)]
    return _json(body) if "json" in ctype else body


def _secrets(results) -> set[str]:
    out = set()
    for r in results:
        body = _json(r.response_body) if r.response_body.startswith(b"{") else None
        if isinstance(body, dict):
            ue_context = body.get("ueContext") or {}  # Namf_Communication UEContextTransfer
            seaf = ue_context.get("seafData") or {}
            for k, v in [("supi", body.get("supi")), ("kseaf", body.get("kseaf")), ("supi", ue_context.get("supi")),
                         ("pei", ue_context.get("pei")), ("keyAmf", (seaf.get("keyAmf") or {}).get("keyVal")),
                         ("nh", seaf.get("nh"))]:
                if isinstance(v, str):
                    out.add(v)
            av = body.get("5gAuthData") or {}
            out |= {v for k, v in av.items() if k in ("rand", "autn", "hxresStar")}
    return out


def wire_messages(lab: Lab) -> list[dict]:
    """Every N32-f body the visited SEPP sent or received, from its saved flows."""
    from mitmproxy import io

    out = []
    with open(lab.out / "sepp-v.flows", "rb") as f:
        for fl in io.FlowReader(f).stream():
            ex = of_metadata(fl.metadata)
            if ex is not None and ex.role == "sending" and ex.mode == "PRINS":
                out.append(json.loads(fl.request.raw_content))
                if ex.response_jwe:
                    out.append(ex.response_jwe)
    return out


def test_no_encrypted_ie_in_clear_on_the_wire(exchanged):
    lab, _, (v_res, v_rcv) = exchanged
    secrets = _secrets(v_res)
    supis = {s for s in secrets if s.startswith("imsi-")}
    assert supis and len(secrets) > len(supis)
    tokens = {dict(r["headers"]).get("authorization") for r in v_rcv} - {None}
    wire = wire_messages(lab)
    assert len(wire) >= 2 * STEPS * UES
    for msg in wire:
        text = json.dumps(msg)
        clear = base64.urlsafe_b64decode(msg["reformattedData"]["aad"] + "==").decode()
        for s in secrets | tokens:
            assert s not in text and s not in clear, s
        for supi in supis:
            assert supi[5:] not in clear  # not even the digits, e.g. inside a URI


def test_an_independent_jwe_library_decrypts_what_we_send(exchanged):
    lab, _, _ = exchanged
    record = read_keylog(lab.out / "sepp-v.keylog.jsonl")[0]
    keys = keys_from_keylog(record)
    key = jwk.JWK(kty="oct", k=b64(keys.parallel_request_key))
    requests = [m["reformattedData"] for m in wire_messages(lab)
                if json.loads(base64.urlsafe_b64decode(m["reformattedData"]["aad"] + "==")).get("requestLine")]
    assert len(requests) >= STEPS * UES
    encrypted = []
    for rd in requests:
        token = jjwe.JWE()
        token.deserialize(json.dumps(rd), key=key)  # raises on any RFC 7516 / AEAD mismatch
        assert token.objects["aad"] == base64.urlsafe_b64decode(rd["aad"] + "==")
        encrypted += json.loads(token.payload)["dataToEncrypt"]
    values = [str(v) for v in encrypted]
    # the SUCI of the authentication, the 5G-GUTI in the Namf_Communication URI, SUPIs in UDM URIs
    for prefix in ("suci-", "5g-guti-", "imsi-", "Bearer "):
        assert any(v.startswith(prefix) for v in values), prefix


async def post_n32f(lab: Lab, body: dict):
    ctx = peer_client_ctx(lab.pki, VISITED, HOME)
    port = lab.port("sepp-h.n32")
    async with await H2TlsClient.connect("127.0.0.1", port, ctx, server_name=sepp_fqdn(HOME)) as c:
        return await c.post_json("/n32f-forward/v1/n32f-process", body)


def _tamper(msg: dict, member: str, fn) -> dict:
    m = json.loads(json.dumps(msg))
    m["reformattedData"][member] = fn(m["reformattedData"][member])
    return m


def _flip_last(b64text: str) -> str:
    raw = bytearray(base64.urlsafe_b64decode(b64text + "=="))
    raw[-1] ^= 1
    return b64(bytes(raw))


def _edit_aad(fn):
    def edit(aad: str) -> str:
        block = json.loads(base64.urlsafe_b64decode(aad + "=="))
        fn(block)
        return b64(json.dumps(block, separators=(",", ":")).encode())
    return edit


def _forged(lab: Lab, seq: int, block_edit) -> dict:
    """A correctly encrypted request (the visited SEPP's keys from its key log) with a bad block."""
    record = read_keylog(lab.out / "sepp-v.keylog.jsonl")[0]
    keys = keys_from_keylog(record)
    block = {"metaData": {"n32fContextId": record["responderContextId"], "messageId": str(seq),
                          "authorizedIpxId": "NULL"},
             "requestLine": {"method": "GET", "scheme": "https", "authority": "udm.5gc.mnc070.mcc999.3gppnetwork.org",
                             "path": "/nudm-sdm/v2/{encBlockIndex:0}/nssai", "protocolVersion": "HTTP/2"},
             "payload": [{"iePath": "/requestLine/path/2", "ieValueLocation": "URI_PARAM",
                          "value": {"encBlockIndex": 0}}]}
    block_edit(block)
    nonce = keys.parallel_request_iv_salt + seq.to_bytes(4, "big")
    return {"reformattedData": jwe.encrypt(keys.parallel_request_key, nonce, "A128GCM", block,
                                           ["imsi-999700000000001"])}


def _log_has(lab: Lab, name: str, *needles: str, timeout: float = 8.0) -> bool:
    def check():
        text = (lab.out / f"{name}.log").read_text(errors="replace")
        return all(n in text for n in needles)
    try:
        P.wait_for(check, timeout, "log line")
        return True
    except TimeoutError:
        return False


@pytest.mark.parametrize("case,cause,error_type", [
    ("aad", "INTEGRITY_CHECK_FAILED", "INTEGRITY_CHECK_FAILED"),
    ("ciphertext", "INTEGRITY_CHECK_FAILED", "INTEGRITY_CHECK_FAILED"),
    ("iv", "INTEGRITY_CHECK_FAILED", "INTEGRITY_CHECK_FAILED"),
    ("tag", "INTEGRITY_CHECK_FAILED", "INTEGRITY_CHECK_FAILED"),
    ("context", "CONTEXT_NOT_FOUND", "CONTEXT_NOT_FOUND"),
    ("index", "MESSAGE_RECONSTRUCTION_FAILED", "MESSAGE_RECONSTRUCTION_FAILED"),
    ("replay", "REPLAY_DETECTED", None),
    ("serving-plmn", "PLMN_ID_MISMATCH", "POLICY_MISMATCH"),
    ("origin-plmn", "PLMN_ID_MISMATCH", "POLICY_MISMATCH"),
])
def test_tampering_is_rejected_and_reported(exchanged, case, cause, error_type):
    lab, _, _ = exchanged
    original = wire_messages(lab)[0]
    seq = 300 + len(case)  # ahead of the real sender, inside the 1024-wide replay window
    msg = {
        "aad": lambda: _tamper(original, "aad", _edit_aad(lambda b: b["requestLine"].update(method="PUT"))),
        "ciphertext": lambda: _tamper(original, "ciphertext", _flip_last),
        "iv": lambda: _tamper(original, "iv", _flip_last),
        "tag": lambda: _tamper(original, "tag", _flip_last),
        "context": lambda: _tamper(original, "aad", _edit_aad(lambda b: b["metaData"].update(n32fContextId="0" * 16))),
        "index": lambda: _forged(lab, seq, lambda b: (b["payload"][0]["value"].update(encBlockIndex=7),
                                                      b["requestLine"].update(path="/nudm-sdm/v2/{encBlockIndex:7}/nssai"))),
        "replay": lambda: original,
        # SCAS TS 33.517 4.2.2.4: a visited-network IE naming a PLMN the peer does not serve
        "serving-plmn": lambda: _forged(lab, seq, lambda b: (
            b.setdefault("headers", []).append({"header": "content-type", "value": "application/json"}),
            b["payload"].append({"iePath": "/servingNetworkName", "ieValueLocation": "BODY",
                                 "value": "5G:mnc002.mcc002.3gppnetwork.org"}))),
        "origin-plmn": lambda: _forged(lab, seq, lambda b: b.setdefault("headers", []).append(
            {"header": "3gpp-sbi-originating-network-id", "value": "002-02;src:SEPP-sepp.example.org"})),
    }[case]()
    rsp = run(post_n32f(lab, msg))
    assert rsp.status in (400, 403), rsp.body
    assert rsp.header("content-type") == "application/problem+json"
    assert rsp.json()["cause"] == cause
    message_id = json.loads(base64.urlsafe_b64decode(msg["reformattedData"]["aad"] + "=="))["metaData"]["messageId"]
    assert _log_has(lab, "sepp-h", f"messageId={message_id}", cause)
    if error_type in UNAUTHENTICATED:
        # no report for a message that did not authenticate: it would be an amplifier and an oracle
        assert _log_has(lab, "sepp-h", f"for messageId {message_id}", "not sent: the message did not authenticate")
    elif error_type:
        # the receiving SEPP reports to the sender over its own N32-c connection (TS 33.501 §13.2.2.3),
        # one report per peer, type and context per second (n32/reports.py)
        assert _log_has(lab, "sepp-v", "n32f-error from", error_type, message_id) or \
            _log_has(lab, "sepp-h", f"for messageId {message_id}", "not sent: coalesced")


def test_the_pair_keeps_serving_after_tampering(exchanged):
    lab, _, _ = exchanged
    results = run(run_scenario(f"https://127.0.0.1:{lab.port('sepp-v.sbi')}", 1, 1, client_ssl(lab), first_ue=7))
    assert all(r.ok for r in results), [(r.api, r.status, r.error, r.response_body[:200]) for r in results]


def test_nothing_leaves_in_clear_when_no_context_exists(pki, tmp_path_factory):
    """PRINS required but the peer is unreachable: 503 after a bounded wait, nothing forwarded."""
    lab = Lab(out=tmp_path_factory.mktemp("nopeer"), pki=pki, mode="prins")
    lab.peer_overrides["sepp-v"] = {"security_capabilities": ["PRINS"]}
    lab.ports["sepp-h.n32"] = lab.port("unused")  # nobody listens there
    from lab.topology import write_configs
    write_configs(lab)
    with P.Procs(lab.out) as procs:
        p = procs.start_mitmdump("sepp-v", "addons/sepp.py", {"sepp_config": lab.configs["sepp-v"],
                                                               "sepp_handshake_wait": 2}, out=lab.out)
        P.wait_port(lab.port("sepp-v.sbi"), 30, [p])
        t0 = time.monotonic()
        results = run(run_scenario(f"https://127.0.0.1:{lab.port('sepp-v.sbi')}", 1, 1, client_ssl(lab)))
        assert time.monotonic() - t0 < 15
        first = results[0]
        assert first.status == 503 and b"N32_NOT_ESTABLISHED" in first.response_body
        assert _log_has(lab, "sepp-v", "retrying in")  # unreachable peer: backoff, logged
        stats = flow_stats(lab.out / "sepp-v.flows")
        assert not any(s.message_id for s in stats)  # no N32-f message was built
