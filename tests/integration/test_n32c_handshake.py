"""N32-c between two real SEPP processes (issue 3): PRINS negotiated, same master key, same keys."""
from __future__ import annotations

import json

from lab.run import keys_match
from lab.topology import HOME, VISITED, sepp_fqdn
from n32.keylog import keys_from_keylog, read_keylog


def test_both_seps_export_the_same_master_and_derive_the_same_keys(prins_lab):
    lab, info = prins_lab
    v = read_keylog(lab.out / "sepp-v.keylog.jsonl")
    h = read_keylog(lab.out / "sepp-h.keylog.jsonl")
    assert len(v) == 1 and len(h) == 1
    rv, rh = v[0], h[0]
    assert rv["role"] == "initiator" and rh["role"] == "responder"
    assert rv["peer"] == sepp_fqdn(HOME) and rh["peer"] == sepp_fqdn(VISITED)
    assert len(bytes.fromhex(rv["masterKey"])) == 64
    assert rv["masterKey"] == rh["masterKey"]
    assert (rv["initiatorContextId"], rv["responderContextId"]) == (rh["initiatorContextId"], rh["responderContextId"])
    assert rv["initiatorContextId"] != rv["responderContextId"]
    assert rv["jweCipherSuite"] == "A128GCM" and rv["jwsCipherSuite"] == "ES256"
    assert keys_from_keylog(rv) == keys_from_keylog(rh)
    ok, contexts = keys_match(lab.out)
    assert ok and contexts[0]["masterKeysEqual"]


def test_status_names_the_context_without_key_material(prins_lab):
    lab, _ = prins_lab
    for name in ("sepp-v", "sepp-h"):
        text = (lab.out / f"{name}.status.json").read_text()
        status = json.loads(text)
        ctx = next(iter(status["peers"].values()))["context"]
        assert ctx["jweCipherSuite"] == "A128GCM"
        master = read_keylog(lab.out / f"{name}.keylog.jsonl")[0]["masterKey"]
        assert master not in text
        log = (lab.out / f"{name}.log").read_text()
        assert master not in log and ctx["localContextId"] in log


def test_n32f_terminate_removes_the_context(prins_lab):
    """Profile 6: the terminating side names the receiver's context ID; the answer echoes it."""
    from lab.topology import HOME
    from .conftest import n32c_post, run

    lab, _ = prins_lab
    h = read_keylog(lab.out / "sepp-h.keylog.jsonl")[0]
    rsp = run(n32c_post(lab, HOME, "n32f-terminate", {"n32fContextId": h["responderContextId"]}))
    assert rsp.status == 200 and rsp.json() == {"n32fContextId": h["responderContextId"]}
    status = json.loads((lab.out / "sepp-h.status.json").read_text())
    assert next(iter(status["peers"].values()))["context"] is None
    again = run(n32c_post(lab, HOME, "n32f-terminate", {"n32fContextId": h["responderContextId"]}))
    assert again.status == 404


def test_spec_only_peers_interoperate(pki, tmp_path_factory):
    """Both SEPPs configured as toward a peer not known to accept our extensions
    (``options.extensions: []``): no round 3 (no IPX), no "*" mappings, no modificationPolicy,
    no n32cParameters; the handshake completes, keys agree and the lab scenario runs."""
    from lab import procs as P
    from lab.run import client_ssl, keys_match, start_lab
    from lab.topology import Lab
    from lab.traffic import run_scenario

    from .conftest import run

    lab = Lab(out=tmp_path_factory.mktemp("spec-only"), pki=pki, mode="prins")
    for name in ("sepp-v", "sepp-h"):
        lab.peer_overrides[name] = {"options": {"extensions": []}}
    with P.Procs(lab.out) as procs:
        info = start_lab(lab, procs)
        assert info["status"]["visited"]["capability"] == "PRINS"
        results = run(run_scenario(f"https://127.0.0.1:{lab.port('sepp-v.sbi')}", 2, 2, client_ssl(lab)))
        assert all(r.ok for r in results), [(r.api, r.status, r.error) for r in results if not r.ok]
        ok, contexts = keys_match(lab.out)
        assert ok, contexts
        log_h = (lab.out / "sepp-h.log").read_text(errors="replace")
        assert log_h.count("N32-c exchange-params from") == 2          # rounds 1 and 2 only
        assert "protection policy mismatch" not in log_h
        status = json.loads((lab.out / "sepp-h.status.json").read_text())
        assert status["peers"][sepp_fqdn(VISITED)]["context"]["peerRiParameters"] is None   # no n32cParameters
