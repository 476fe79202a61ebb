"""Offline decoder (python -m addons.decode) on real N32-f captures: no crypto is mocked.

Messages are sealed with n32.kdf.derive_session_keys + n32.jwe.encrypt under a random master
key, IPX modifications signed with n32.jws.sign_modifications under a fresh P-256 key, and the
flows saved with mitmproxy's FlowWriter. The builders here are shared with test_n32view.py.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from mitmproxy import http, io
from mitmproxy.test import tflow

from addons import decode
from n32 import jwe, jws, kdf, keylog

INITIATOR = "a1b2c3d4e5f60718"   # N32-c initiator's (sepp-v) context ID
RESPONDER = "0f1e2d3c4b5a6978"   # N32-c responder's (sepp-h) context ID
SUPI = "imsi-001010000000001"
SNN = "5G:mnc001.mcc001.3gppnetwork.org"
IPX = "ipx1.example.org"
MESSAGE_ID = "9876543210123456789"

# (kind, receiver's context ID) -> label, TS 33.501 §13.2.4.4.1 / n32/inspect.py
LABELS = {("request", RESPONDER): "parallel_request", ("request", INITIATOR): "reverse_request",
          ("response", INITIATOR): "parallel_response", ("response", RESPONDER): "reverse_response"}


@dataclass
class Lab:
    record: dict
    keys: kdf.SessionKeys
    keylog: Path
    ipx_private_pem: bytes
    ipx_public: Path


def make_lab(tmp_path: Path, enc: str = "A256GCM") -> Lab:
    tmp_path.mkdir(parents=True, exist_ok=True)
    master = os.urandom(64)
    record = {"sepp": "sepp-v.5gc.mnc001.mcc001.3gppnetwork.org", "peer": "sepp-h.5gc.mnc002.mcc002.3gppnetwork.org",
              "role": "initiator", "initiatorContextId": INITIATOR, "responderContextId": RESPONDER,
              "masterKey": master.hex(), "jweCipherSuite": enc, "jwsCipherSuite": "ES256",
              "kdfContext": "default", "kdfHash": "sha256"}
    path = tmp_path / "sepp-v.keylog.jsonl"
    keylog.append_keylog(path, record)
    private = ec.generate_private_key(ec.SECP256R1())
    public = tmp_path / "ipx1.pub.pem"
    public.write_bytes(private.public_key().public_bytes(serialization.Encoding.PEM,
                                                         serialization.PublicFormat.SubjectPublicKeyInfo))
    private_pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
    keys = kdf.derive_session_keys(master, INITIATOR, RESPONDER, enc)
    return Lab(record, keys, path, private_pem, public)


def request_block(receiver: str) -> tuple[dict, list]:
    """An AUSF authentication request with the SUPI encrypted (encBlockIndex 0)."""
    block = {"metaData": {"n32fContextId": receiver, "messageId": MESSAGE_ID, "authorizedIpxId": IPX},
             "requestLine": {"method": "POST", "scheme": "https",
                             "authority": "ausf.5gc.mnc002.mcc002.3gppnetwork.org",
                             "path": "/nausf-auth/v1/ue-authentications", "protocolVersion": "HTTP/2"},
             "headers": [{"header": "content-type", "value": "application/json"}],
             "payload": [{"iePath": "/supiOrSuci", "ieValueLocation": "BODY", "value": {"encBlockIndex": 0}},
                         {"iePath": "/servingNetworkName", "ieValueLocation": "BODY", "value": SNN}]}
    return block, [SUPI]


def response_block(receiver: str) -> tuple[dict, list]:
    """The 201 answer carrying the SUPI (encrypted) and a clear authType."""
    block = {"metaData": {"n32fContextId": receiver, "messageId": MESSAGE_ID, "authorizedIpxId": IPX},
             "statusLine": "201",
             "headers": [{"header": "content-type", "value": "application/3gppHal+json"}],
             "payload": [{"iePath": "/authType", "ieValueLocation": "BODY", "value": "5G_AKA"},
                         {"iePath": "/supi", "ieValueLocation": "BODY", "value": {"encBlockIndex": 0}}]}
    return block, [SUPI]


def seal(lab: Lab, kind: str, receiver: str, modify: bool = False, seq: int = 0,
         message: tuple[dict, list] | None = None) -> dict:
    """A real N32fReformattedReqMsg/RspMsg sealed with the key of LABELS[kind, receiver], nonce SEQ
    ``seq``; ``message`` = (DataToIntegrityProtectBlock, dataToEncrypt), default request/response_block."""
    label = LABELS[kind, receiver]
    block, data = message or (request_block if kind == "request" else response_block)(receiver)
    nonce = getattr(lab.keys, f"{label}_iv_salt") + seq.to_bytes(4, "big")
    body: dict = {"reformattedData": jwe.encrypt(getattr(lab.keys, f"{label}_key"), nonce,
                                                 lab.record["jweCipherSuite"], block, data)}
    if modify:
        ops = [{"op": "replace", "path": "/headers/0/value", "value": "application/json"}]
        body["modificationsBlock"] = [jws.sign_modifications(lab.ipx_private_pem, IPX, ops,
                                                             body["reformattedData"]["tag"])]
    return body


def json_body(body: dict) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def n32f_flow(request_body: dict | None = None, response_body: dict | None = None,
              n32: dict | None = None) -> http.HTTPFlow:
    """A flow whose request and/or response body is an N32-f message; the other side plain JSON."""
    f = tflow.tflow(resp=True)
    f.request.method, f.request.path = "POST", "/n32f-forward/v1/n32f-process"
    f.request.headers["content-type"] = "application/json"
    f.response.headers["content-type"] = "application/json"
    f.request.content = json_body(request_body) if request_body else json_body({"supiOrSuci": SUPI,
                                                                                 "servingNetworkName": SNN})
    f.response.content = json_body(response_body) if response_body else json_body({"authType": "5G_AKA",
                                                                                    "supi": SUPI})
    if n32 is not None:
        f.metadata["n32"] = n32
    return f


def sending_flow(lab: Lab, modify: bool = False) -> http.HTTPFlow:
    """As kept by the sending SEPP (N32-c initiator): N32-f request out, response restored."""
    return n32f_flow(request_body=seal(lab, "request", RESPONDER, modify),
                     n32={"role": "sending", "peer": lab.record["peer"], "context": INITIATOR,
                          "peerContextId": RESPONDER, "messageId": MESSAGE_ID, "encrypted": 1,
                          "responseJwe": seal(lab, "response", INITIATOR)})


def receiving_flow(lab: Lab) -> http.HTTPFlow:
    """As kept by the receiving SEPP (the initiator, reverse session): request restored, N32-f response."""
    f = n32f_flow(response_body=seal(lab, "response", RESPONDER),
                  n32={"role": "receiving", "peer": lab.record["peer"], "context": INITIATOR,
                       "peerContextId": RESPONDER, "messageId": MESSAGE_ID,
                       "requestJwe": seal(lab, "request", INITIATOR)})
    f.request.path = "/nausf-auth/v1/ue-authentications"
    return f


def save(path: Path, flows: list[http.HTTPFlow]) -> Path:
    with open(path, "wb") as f:
        w = io.FlowWriter(f)
        for fl in flows:
            w.add(fl)
    return path


def run(capsys: pytest.CaptureFixture, *argv: str | Path) -> tuple[int, str]:
    code = decode.main([str(a) for a in argv])
    return code, capsys.readouterr().out


# ---------------------------------------------------------------------------------------------

@pytest.fixture
def lab(tmp_path: Path) -> Lab:
    return make_lab(tmp_path)


@pytest.fixture
def capture(tmp_path: Path, lab: Lab) -> Path:
    return save(tmp_path / "sepp.flows", [sending_flow(lab), receiving_flow(lab)])


def test_json_output_covers_all_four_keys(capsys, lab, capture):
    code, out = run(capsys, capture, "--keylog", lab.keylog, "--json")
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) == 4
    got = {(m["direction"], m["contextId"]): m for m in lines}
    assert {k: m["keyLabel"] for k, m in got.items()} == LABELS
    assert {m["source"] for m in lines} == {"request", "response", "metadata.requestJwe", "metadata.responseJwe"}
    for m in lines:
        assert m["decrypted"] is True and m["integrity"] == "ok" and m["messageId"] == MESSAGE_ID
        assert m["dataToEncrypt"] == [SUPI]
        assert m["modifications"] == []
        supi = next(p for p in m["clear"]["payload"] if p["iePath"] in ("/supi", "/supiOrSuci"))
        assert supi["value"] == {"\U0001f512encrypted": SUPI}
        assert m["clear"]["metaData"]["authorizedIpxId"] == IPX


def test_text_output(capsys, lab, capture):
    code, out = run(capsys, capture, "--keylog", lab.keylog)
    assert code == 0
    assert out.count(f'{{"\U0001f512encrypted": "{SUPI}"}}') == 4
    for label in LABELS.values():
        assert f"key: {label}  decrypted" in out
    assert "POST https://ausf.5gc.mnc002.mcc002.3gppnetwork.org/nausf-auth/v1/ue-authentications HTTP/2" in out
    assert "integrity (JWE AEAD, TS 33.501 §13.2.4.4): ok" in out
    assert "masterKey" not in out and lab.record["masterKey"] not in out
    assert out.rstrip().endswith("4 N32-f message(s): 4 verified, 0 FAILED, 0 not verifiable (no key)")


def test_without_key_log_shows_clear_part(capsys, capture):
    code, out = run(capsys, capture)
    assert code == 0
    assert SUPI not in out and SNN in out
    assert '"<block 0: no key>"' in out
    assert f"not verified: no key-log entry for context {RESPONDER}" in out
    assert "0 verified, 0 FAILED, 4 not verifiable" in out


def test_key_log_of_another_context_is_not_a_failure(capsys, tmp_path, capture):
    other = make_lab(tmp_path / "other")
    other_log = tmp_path / "other.jsonl"
    rec = dict(other.record, initiatorContextId="1111111111111111", responderContextId="2222222222222222")
    keylog.append_keylog(other_log, rec)
    code, out = run(capsys, capture, "--keylog", other_log)
    assert code == 0 and "4 not verifiable" in out


def test_tampered_ciphertext_byte_fails(capsys, tmp_path, lab):
    flow = sending_flow(lab)
    ct = json.loads(flow.request.content)["reformattedData"]["ciphertext"]
    path = save(tmp_path / "tampered.flows", [flow])
    raw = path.read_bytes()
    assert raw.count(ct.encode()) == 1
    flipped = ("B" if ct[0] != "B" else "C") + ct[1:]        # same length: the flow file stays valid
    path.write_bytes(raw.replace(ct.encode(), flipped.encode()))

    code, out = run(capsys, path, "--keylog", lab.keylog)
    assert code == 1
    assert "FAILED: INTEGRITY_CHECK_FAILED" in out and "AEAD verification failed" in out
    assert SUPI not in out.split("metadata.responseJwe")[0]   # the tampered request stays closed
    assert "1 verified, 1 FAILED" in out                       # the untouched response still opens

    code, out = run(capsys, path, "--keylog", lab.keylog, "--json")
    rows = {r["source"]: r for r in map(json.loads, out.splitlines())}
    assert code == 1
    assert rows["request"]["integrity"].startswith("FAILED: INTEGRITY_CHECK_FAILED")
    assert rows["request"]["decrypted"] is False and rows["request"]["keyLabel"] == "parallel_request"
    assert rows["metadata.responseJwe"]["integrity"] == "ok"


def test_tampered_clear_block_fails(capsys, tmp_path, lab):
    """The clear part is AEAD-protected too: changing it (without an IPX JWS) is detected."""
    body = seal(lab, "request", RESPONDER)
    block = jwe.peek_aad(body["reformattedData"])
    block["payload"][1]["value"] = "5G:mnc999.mcc999.3gppnetwork.org"
    body["reformattedData"]["aad"] = jwe.b64url_encode(jwe.json_dumps(block))
    path = save(tmp_path / "c.flows", [n32f_flow(request_body=body)])
    code, out = run(capsys, path, "--keylog", lab.keylog)
    assert code == 1 and "FAILED" in out


def test_without_key_tampering_is_not_reported(capsys, tmp_path, lab):
    body = seal(lab, "request", RESPONDER)
    body["reformattedData"]["tag"] = jwe.b64url_encode(bytes(16))
    path = save(tmp_path / "t.flows", [n32f_flow(request_body=body)])
    code, out = run(capsys, path)
    assert code == 0 and "not verified" in out


def test_ipx_modification_verified_with_key(capsys, tmp_path, lab):
    path = save(tmp_path / "ipx.flows", [sending_flow(lab, modify=True)])
    code, out = run(capsys, path, "--keylog", lab.keylog, "--ipx-key", lab.ipx_public)
    assert code == 0
    assert f"IPX modification 1: signer {IPX}: ok" in out
    assert '"path": "/headers/0/value"' in out

    code, out = run(capsys, path, "--keylog", lab.keylog, "--ipx-key", lab.ipx_public, "--json")
    row = next(r for r in map(json.loads, out.splitlines()) if r["source"] == "request")
    assert row["modifications"] == [{"index": 0, "signer": IPX, "verification": "ok", "operations": [
        {"op": "replace", "path": "/headers/0/value", "value": "application/json"}]}]


def test_ipx_modification_without_key(capsys, tmp_path, lab):
    path = save(tmp_path / "ipx.flows", [sending_flow(lab, modify=True)])
    code, out = run(capsys, path, "--keylog", lab.keylog)
    assert code == 0
    assert f"IPX modification 1: signer {IPX}: not verified: no key" in out


def test_ipx_modification_wrong_key_or_moved_jws_fails(capsys, tmp_path, lab):
    other = make_lab(tmp_path / "other")
    path = save(tmp_path / "ipx.flows", [sending_flow(lab, modify=True)])
    code, out = run(capsys, path, "--keylog", lab.keylog, "--ipx-key", other.ipx_public)
    assert code == 1 and f"signer {IPX}: FAILED: JWS of {IPX}: modifications JWS: signature does not verify" in out

    # A valid JWS lifted onto another message: its tag names the other JWE.
    donor = seal(lab, "request", RESPONDER, modify=True)
    victim = seal(lab, "request", RESPONDER, seq=1)
    victim["modificationsBlock"] = donor["modificationsBlock"]
    path = save(tmp_path / "moved.flows", [n32f_flow(request_body=victim)])
    code, out = run(capsys, path, "--keylog", lab.keylog, "--ipx-key", lab.ipx_public)
    assert code == 1 and f"FAILED: JWS of {IPX} belongs to another message (tag mismatch)" in out


def test_bad_inputs(capsys, tmp_path, lab):
    assert decode.main([str(tmp_path / "missing.flows")]) == 2
    not_flows = tmp_path / "x.flows"
    not_flows.write_bytes(b"garbage that is no tnetstring")
    assert decode.main([str(not_flows)]) == 2
    capture = save(tmp_path / "ok.flows", [sending_flow(lab)])
    bad_pem = tmp_path / "bad.pem"
    bad_pem.write_text("no key here")
    assert decode.main([str(capture), "--ipx-key", str(bad_pem)]) == 2
    capsys.readouterr()


def test_plain_flows_are_skipped(capsys, tmp_path):
    path = save(tmp_path / "plain.flows", [tflow.tflow(resp=True)])
    code, out = run(capsys, path)
    assert code == 0 and "0 N32-f message(s)" in out


def test_module_entry_point(tmp_path, lab):
    import subprocess
    import sys

    capture = save(tmp_path / "s.flows", [sending_flow(lab)])
    p = subprocess.run([sys.executable, "-m", "addons.decode", str(capture), "--keylog", str(lab.keylog), "--json"],
                       capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2], timeout=60)
    assert p.returncode == 0, p.stderr
    assert [json.loads(line)["keyLabel"] for line in p.stdout.splitlines()] == ["parallel_request",
                                                                                 "parallel_response"]


@pytest.mark.parametrize("ops, reason", [
    ([{"op": "replace", "path": "/payload/0/value", "value": "imsi-999990000000001"}], "touches an encrypted IE"),
    ([{"op": "replace", "path": "/metaData/messageId", "value": "1"}], "metaData is not modifiable"),
    ([{"op": "add", "path": "/payload/1/value", "value": {"encBlockIndex": 0}}], "inserts an encBlockIndex"),
])
def test_ipx_patch_the_sepp_refuses_is_failed_here_too(capsys, tmp_path, lab, ops, reason):
    """The decoder and the view verify with the SEPP's verifier (n32.modifications): a correctly
    signed patch that the receiving SEPP would refuse (SCAS TS 33.517 4.2.2.8) is not "ok" here."""
    body = seal(lab, "request", RESPONDER)
    body["modificationsBlock"] = [jws.sign_modifications(lab.ipx_private_pem, IPX, ops, body["reformattedData"]["tag"])]
    path = save(tmp_path / "bad-patch.flows", [n32f_flow(request_body=body)])
    code, out = run(capsys, path, "--keylog", lab.keylog, "--ipx-key", lab.ipx_public)
    assert code == 1 and f"IPX modification 1: signer {IPX}: FAILED: " in out and reason in out
