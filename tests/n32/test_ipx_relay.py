"""n32.ipx_relay: what the lab's IPX does with each message, sans-I/O, with its real key and a
PRINS message sealed by the real path: relay n32f-process with its signed modification, refuse
anything else with ProblemDetails, answer a reject rule with a signed roaming-hub error."""
from __future__ import annotations

import json
from pathlib import Path

from n32 import ipx_relay, jws, prins, rh_error, upstream_errors as ue, wire
from n32.config import load_ipx_config
from n32.message import HttpRequest
from tests.n32.test_config import pki, write_ipx  # noqa: F401 (pki is a fixture)
from tests.n32.test_prins import REQ, SEL, pair

IPX1 = "ipx1.ipx.lab"
HOME = "https://sepp.5gc.mnc070.mcc999.3gppnetwork.org"


def relay(tmp: Path, pki: Path, edit=None):
    cfg = load_ipx_config(write_ipx(tmp, pki, edit))
    return ipx_relay.Relay(cfg, cfg.private_key.read_bytes())


def n32f(body: dict, path: str = wire.N32F_PROCESS, method: str = "POST") -> HttpRequest:
    return HttpRequest(method, "https", "ipx1.ipx.lab", path, "",
                       [(wire.TARGET_API_ROOT, HOME), ("content-type", wire.JSON)], json.dumps(body).encode())


def test_relays_n32f_process_with_its_signed_modification(tmp_path: Path, pki: Path):
    r = relay(tmp_path, pki)
    init, _ = pair()
    body, _ = prins.protect_request(init, REQ, SEL, "11", authorized_ipx=IPX1)
    out = r.request(n32f(body))
    assert isinstance(out, ipx_relay.Forward) and out.server_name == "ipx2.ipx.lab"
    sent = json.loads(out.body)
    assert sent["reformattedData"] == body["reformattedData"]          # the JWE is untouched
    (entry,) = sent["modificationsBlock"]
    payload = jws.verify_modifications(entry, [(pki / "ipx" / f"{IPX1}.pub").read_bytes()])
    assert payload["identity"] == IPX1 and payload["operations"] == out.operations != []


def test_anything_but_n32f_process_is_a_problem(tmp_path: Path, pki: Path):
    r = relay(tmp_path, pki)
    for req in (n32f({}, path="/n32c-handshake/v1/exchange-capability"), n32f({}, method="GET")):
        out = r.request(req)
        assert isinstance(out, ipx_relay.Answer) and out.response.status == 404
        assert out.response.header("content-type") == wire.PROBLEM_JSON
    bad = r.request(HttpRequest("POST", "https", "x", wire.N32F_PROCESS, "", [(wire.TARGET_API_ROOT, HOME)],
                                b'{"reformattedData": 5'))
    assert bad.response.status == 400 and json.loads(bad.response.body)["cause"] == wire.INVALID_MSG_FORMAT
    failed = r.next_hop_failed(ue.UNREACHABLE)
    assert (failed.status, json.loads(failed.body)["cause"]) == (502, "N32_PEER_NOT_REACHABLE")


def test_reject_rule_answers_a_signed_roaming_hub_error(tmp_path: Path, pki: Path):
    def edit(cfg):
        cfg["modifications"] = [{"direction": "request", "method": "POST", "reject": {"status": 403}}]

    r = relay(tmp_path, pki, edit)
    init, _ = pair()
    body, _ = prins.protect_request(init, REQ, SEL, "12", authorized_ipx=IPX1)
    out = r.request(n32f(body))
    assert isinstance(out, ipx_relay.Answer) and out.rejected == {"status": 403}
    assert out.response.status == 200 and rh_error.is_rh_error(json.loads(out.response.body))
