"""Rekeying a PRINS relation between two real SEPP processes (issues 3 and 4): by the operator
with the ``sepp.rekey`` command (driven through mitmweb's command API, as a user would from its
command bar), and automatically before a nonce counter could run out (profile point 11). Each
rekey runs a new N32-c handshake: new context IDs and a new exported master key on both sides;
traffic keeps flowing; the old context is retired on both sides after the grace period."""
from __future__ import annotations

import json
import secrets
import urllib.request

import pytest

from lab import procs as P
from lab.run import client_ssl, keys_match, start_lab
from lab.scenario import ue_steps
from lab.topology import HOME, VISITED, Lab, sepp_fqdn
from lab.traffic import run_scenario
from n32.keylog import read_keylog

from .conftest import run

STEPS = len(ue_steps(1))


def web_command(lab: Lab, name: str, command: str, *args: str) -> dict:
    """``POST /commands/<command>`` on ``name``'s mitmweb, as its command bar does: authenticated
    with the lab's token, and with tornado's XSRF double submit (the same value as cookie and header)."""
    xsrf = secrets.token_hex(16)
    req = urllib.request.Request(
        f"http://127.0.0.1:{lab.port(f'{name}.web')}/commands/{command}",
        data=json.dumps({"arguments": list(args)}).encode(), method="POST",
        headers={"content-type": "application/json", "authorization": f"Bearer {lab.web_token}",
                 "cookie": f"_mitmproxy_xsrf={xsrf}", "x-xsrftoken": xsrf})
    with urllib.request.urlopen(req, timeout=10) as rsp:
        return json.loads(rsp.read())


def status(lab: Lab, name: str) -> dict:
    peer = sepp_fqdn(HOME if name == "sepp-v" else VISITED)
    return ((P.read_json(lab.out / f"{name}.status.json") or {}).get("peers") or {}).get(peer) or {}


def contexts_settle(lab: Lab, keylog_lines: int, timeout: float = 20.0) -> tuple[dict, dict]:
    """Wait until both SEPPs logged ``keylog_lines`` contexts and each holds exactly one (the newest)."""
    def settled():
        v, h = status(lab, "sepp-v"), status(lab, "sepp-h")
        lines = [len(read_keylog(lab.out / f"{n}.keylog.jsonl")) for n in ("sepp-v", "sepp-h")]
        if lines != [keylog_lines] * 2 or not v.get("context") or not h.get("context"):
            return None
        if len(v.get("contexts") or []) != 1 or len(h.get("contexts") or []) != 1:
            return None
        return v, h
    return P.wait_for(settled, timeout, f"{keylog_lines} contexts, old ones retired")


def scenario_ok(lab: Lab, ues: int, first_ue: int = 1) -> None:
    results = run(run_scenario(f"https://127.0.0.1:{lab.port('sepp-v.sbi')}", ues, 1, client_ssl(lab),
                               first_ue=first_ue))
    assert len(results) == ues * STEPS
    assert all(r.ok for r in results), [(r.step, r.status, r.error) for r in results if not r.ok]


def distinct_keys(lab: Lab) -> list[dict]:
    log = read_keylog(lab.out / "sepp-v.keylog.jsonl")
    assert len({r["initiatorContextId"] for r in log}) == len(log)
    assert len({r["responderContextId"] for r in log}) == len(log)
    assert len({r["masterKey"] for r in log}) == len(log)  # a new TLS session, a new exported key
    ok, contexts = keys_match(lab.out)
    assert ok, contexts
    return log


@pytest.fixture(scope="module")
def web_lab(pki, tmp_path_factory):
    """sepp-v under mitmweb, sepp-h under mitmdump; rekey grace 0.5 s."""
    lab = Lab(out=tmp_path_factory.mktemp("rekey-web"), pki=pki, mode="prins",
              overrides={"sepp-v": {"contexts": {"rekey_grace": 0.5}}})
    with P.Procs(lab.out) as procs:
        info = start_lab(lab, procs, web={"sepp-v"})
        yield lab, info


def test_rekey_command_gives_new_keys_and_retires_the_old_context(web_lab):
    lab, info = web_lab
    first = info["status"]["visited"]["context"]
    scenario_ok(lab, 1)

    listed = json.loads(web_command(lab, "sepp-v", "sepp.contexts")["value"])
    assert listed["peers"][sepp_fqdn(HOME)]["context"]["localContextId"] == first["localContextId"]
    assert "masterKey" not in json.dumps(listed) and "key" not in json.dumps(listed).lower().replace("keys", "")

    assert web_command(lab, "sepp-v", "sepp.rekey", sepp_fqdn(HOME)) == {"value": None}
    v, h = contexts_settle(lab, 2)
    assert v["context"]["localContextId"] != first["localContextId"]
    assert v["context"]["peerContextId"] == h["context"]["localContextId"]
    assert v["contexts"] == [v["context"]["localContextId"]] and h["contexts"] == [h["context"]["localContextId"]]
    distinct_keys(lab)
    scenario_ok(lab, 1, first_ue=2)  # the new keys carry traffic

    # an unknown peer is a command error, not a crash
    assert "unknown peer" in web_command(lab, "sepp-v", "sepp.rekey", "nobody.example.org").get("error", "").lower()
    # and the operator can end the relation: both sides drop the context
    assert web_command(lab, "sepp-v", "sepp.terminate", sepp_fqdn(HOME)) == {"value": None}
    P.wait_for(lambda: not status(lab, "sepp-v").get("contexts") and not status(lab, "sepp-h").get("contexts"),
               10, "the context gone from both SEPPs")
    assert web_command(lab, "sepp-v", "sepp.handshake", sepp_fqdn(HOME)) == {"value": None}
    contexts_settle(lab, 3)
    scenario_ok(lab, 1, first_ue=3)


@pytest.fixture(scope="module")
def small_key_budget_lab(pki, tmp_path_factory):
    """sepp-v may protect at most 40 messages per key and rekeys when fewer than 30 are left."""
    lab = Lab(out=tmp_path_factory.mktemp("rekey-auto"), pki=pki, mode="prins",
              overrides={"sepp-v": {"contexts": {"max_messages": 40, "rekey_margin": 30, "rekey_grace": 0.5}}})
    with P.Procs(lab.out) as procs:
        info = start_lab(lab, procs)
        yield lab, info


def test_automatic_rekey_before_the_counter_runs_out(small_key_budget_lab):
    lab, info = small_key_budget_lab
    assert info["status"]["visited"]["context"]["messagesLeft"] == 40
    ues = 3  # 3 x STEPS requests: past the margin twice, never near the 40-message limit
    scenario_ok(lab, ues)
    log = read_keylog(lab.out / "sepp-v.keylog.jsonl")
    assert len(log) >= 2, "no rekey happened"
    v, _ = contexts_settle(lab, len(log))
    distinct_keys(lab)
    assert v["context"]["messagesLeft"] > 40 - ues * STEPS
    text = (lab.out / "sepp-v.log").read_text(errors="replace")
    assert "retired after rekey" in text and "N32_REKEY_IN_PROGRESS" not in text


def test_rekey_storm_on_both_sides_loses_nothing(pki, tmp_path_factory):
    """Both SEPPs with a 40-message budget and a 30-message margin: each rekeys every few requests,
    the home SEPP (the N32-c responder) included, while 4 UEs run concurrently. Make before break
    (docs/interop-profile.md, "Rekey"): every step succeeds and no side ever sends on a context
    its peer does not hold yet (no CONTEXT_NOT_FOUND anywhere)."""
    small = {"contexts": {"max_messages": 40, "rekey_margin": 30, "rekey_grace": 1.0}}
    lab = Lab(out=tmp_path_factory.mktemp("rekey-storm"), pki=pki, mode="prins",
              overrides={"sepp-v": small, "sepp-h": small})
    with P.Procs(lab.out) as procs:
        start_lab(lab, procs)
        results = run(run_scenario(f"https://127.0.0.1:{lab.port('sepp-v.sbi')}", 12, 4, client_ssl(lab)))
        assert len(results) == 12 * STEPS
        assert all(r.ok for r in results), [(r.step, r.status, r.error) for r in results if not r.ok][:5]
        texts = {n: (lab.out / f"{n}.log").read_text(errors="replace") for n in ("sepp-v", "sepp-h")}
        rekeys = {n: t.count("-> rekeying") for n, t in texts.items()}
        assert rekeys["sepp-v"] >= 2 and rekeys["sepp-h"] >= 1, rekeys
        for n, t in texts.items():
            # an n32f-terminate for a context its peer retired first is answered 404 on N32-c
            # (both sides retire after a simultaneous rekey): harmless; N32-f must never see one
            n32f = "\n".join(ln for ln in t.splitlines() if " n32c: " not in ln)
            assert "CONTEXT_NOT_FOUND" not in n32f and "N32_REKEY_IN_PROGRESS" not in n32f, n
