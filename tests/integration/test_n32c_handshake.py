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
