"""The SEPP engine without sockets: two engines (visited = cSEPP, home = pSEPP) built from the lab
configurations, a real N32-c handshake in memory, real N32-f crypto; the test plays the network
and the NFs by performing the engine's actions, as h2's tests drive a connection with bytes."""
from __future__ import annotations

import copy
import dataclasses
import gc
import json
import os
import weakref
from pathlib import Path

import pytest

from certs.pki import ensure_lab_pki
from lab.topology import HOME, VISITED, Lab, write_configs
from n32 import engine as eng
from n32 import handshake as hs
from n32 import ipx
from n32.config import load_sepp_config
from n32.context import ContextStore, PeerRelation
from n32.errors import N32Error
from n32.exchange import (Answer, Exchange, Forward, HandleN32c, HopKind, Listener, Log, ReportError,
                          StartHandshake, StatusChanged, of_metadata)
from n32.message import HttpRequest, HttpResponse

SUPI = "imsi-001010000000001"
UDM = "udm.5gc.mnc070.mcc999.3gppnetwork.org"
NOW = 1_000.0


class Sepp:
    """One side: its config, its context store and its engine."""

    def __init__(self, cfg) -> None:
        self.cfg = cfg
        self.store = ContextStore(clock=lambda: NOW)
        self.engine = eng.build(cfg, self.store)
        self.local = hs.LocalSepp.from_config(cfg, self.engine.policy)
        self.peer = hs.Peer.from_config(cfg.peers[0])


@pytest.fixture(scope="module")
def configs(tmp_path_factory) -> dict:
    pki = tmp_path_factory.mktemp("pki")
    ensure_lab_pki(pki)
    out = {}
    for name, overrides in (("default", {}), ("small", {"sepp-v": {"contexts": {"max_messages": 3, "rekey_margin": 2}}})):
        lab = Lab(out=tmp_path_factory.mktemp(name), pki=pki, mode="prins", overrides=overrides)
        paths = write_configs(lab)
        out[name] = {k: load_sepp_config(Path(paths[k])) for k in ("sepp-v", "sepp-h")}
    return out


def handshake(v: Sepp, h: Sepp) -> None:
    """The N32-c handshake in memory: v initiates, h responds (TS 33.501 §13.2.2.2)."""
    master = os.urandom(64)   # stands in for the TLS exporter of the N32-c connection
    conn = hs.ConnectionState(hs.Peer.from_config(h.cfg.peers[0]), lambda: master)
    responder = hs.Responder(h.local, [conn.peer], h.store)
    init = hs.Initiator(v.local, v.peer, exporter=lambda: master, now=NOW)
    while (step := init.next_request()) is not None:
        out = responder.handle(conn, *step, now=NOW)
        init.receive(out.status, out.body)
    v.store.set_relation(v.peer.fqdn, init.peer_relation())
    v.store.add(init.finish(master))


@pytest.fixture
def pair(configs) -> tuple[Sepp, Sepp]:
    v, h = Sepp(configs["default"]["sepp-v"]), Sepp(configs["default"]["sepp-h"])
    handshake(v, h)
    return v, h


def nf_request(method: str = "GET", path: str = f"/nudm-sdm/v2/{SUPI}/am-data", body: bytes = b"") -> HttpRequest:
    headers = [("3gpp-sbi-target-apiroot", f"https://{UDM}")]
    if body:
        headers.append(("content-type", "application/json"))
    return HttpRequest(method, "https", "sepp-v.local", path, "", headers, body)


def only(actions: list, kind: type):
    found = [a for a in actions if isinstance(a, kind)]
    assert len(found) == 1, actions
    return found[0]


def problem(actions: list, status: int, cause: str) -> HttpResponse:
    rsp = only(actions, Answer).response
    assert rsp.status == status and rsp.header("content-type") == "application/problem+json", rsp
    assert json.loads(rsp.body)["cause"] == cause
    return rsp


def n32(sepp: Sepp, peer: str | None, listener: Listener = Listener.N32) -> Exchange:
    return Exchange(listener=listener, peer_identity=peer, now=NOW)


# ------------------------------------------------------------------------------ both sides, PRINS
def test_prins_request_and_response_through_both_seps(pair):
    v, h = pair
    # cSEPP: our NF's request becomes an N32-f message for the peer SEPP
    ex_v = Exchange(listener=Listener.SBI, now=NOW)
    fwd = only(v.engine.on_request(ex_v, nf_request()), Forward)
    assert fwd.hop is HopKind.PEER and fwd.tls_name == h.cfg.fqdn and fwd.deadline == NOW + v.cfg.timeouts.n32f
    assert fwd.request.method == "POST" and fwd.request.path == eng.N32F_PROCESS
    assert SUPI.encode() not in fwd.request.body           # encrypted IE (policy: SUPI in the path)
    assert (ex_v.role, ex_v.mode, ex_v.peer) == ("sending", "PRINS", h.cfg.fqdn) and ex_v.encrypted >= 1
    assert ex_v.report_to == h.cfg.fqdn and ex_v.message_id

    # pSEPP: opens it and delivers the restored request to the home NF
    ex_h = n32(h, v.cfg.fqdn)
    acts = h.engine.on_request(ex_h, fwd.request)
    to_nf = only(acts, Forward)
    assert to_nf.hop is HopKind.NF and to_nf.tls_name == UDM and to_nf.deadline == NOW + h.cfg.timeouts.home_nf
    assert to_nf.protocol == h.cfg.home_nfs.route(UDM)[1]
    assert to_nf.request.path == f"/nudm-sdm/v2/{SUPI}/am-data" and to_nf.request.authority == UDM
    assert to_nf.request.header("3gpp-sbi-target-apiroot") is None   # consumed (TS 33.501 §13.1.1.2)
    assert ex_h.role == "receiving" and ex_h.message_id == ex_v.message_id and ex_h.request_jwe
    assert ex_h.context == ex_v.peer_context_id and ex_h.peer_context_id == ex_v.context
    assert any(isinstance(a, StatusChanged) for a in acts)   # the RI parameters were learnt

    # pSEPP: the NF's answer is protected for the way back
    nf_rsp = HttpResponse(200, [("content-type", "application/json")], json.dumps({"supi": SUPI}).encode())
    back = only(h.engine.on_response(ex_h, nf_rsp), Answer).response
    assert back.status == 200 and SUPI.encode() not in back.body and ex_h.answered and ex_h.status == 200

    # cSEPP: restores it for our NF
    restored = only(v.engine.on_response(ex_v, back), Answer).response
    assert restored.status == 200 and json.loads(restored.body) == {"supi": SUPI}
    assert ex_v.answered and ex_v.response_jwe and ex_v.status == 200
    assert v.engine.on_response(ex_v, back) == []            # answered once


def test_exchange_is_saved_as_plain_data_and_read_back(pair):
    v, _ = pair
    ex = Exchange(listener=Listener.SBI, now=NOW)
    v.engine.on_request(ex, nf_request())
    saved = copy.deepcopy(ex)                              # what mitmproxy's get_state() stores
    assert isinstance(saved, dict) and saved["role"] == "sending" and saved["messageId"] == ex.message_id
    json.dumps(saved)
    back = of_metadata({"n32": saved})
    assert back is not None and back.to_dict() == saved and back.original == ex.original
    # an untyped dict of an older saved flow reads the same way
    old = of_metadata({"n32": {"role": "receiving", "ipxModifiedBy": ["ipx1"], "encryptedResponse": 2}})
    assert old is not None and old.ipx_modified_by == ["ipx1"] and old.encrypted_response == 2
    assert of_metadata({}) is None


# ------------------------------------------------------------------------------ TLS mode
def test_tls_mode_both_sides(configs):
    v, h = Sepp(configs["default"]["sepp-v"]), Sepp(configs["default"]["sepp-h"])
    v.store.set_relation(h.cfg.fqdn, PeerRelation("TLS"))
    h.store.set_relation(v.cfg.fqdn, PeerRelation("TLS"))
    ex_v = Exchange(listener=Listener.SBI, now=NOW)
    fwd = only(v.engine.on_request(ex_v, nf_request()), Forward)
    assert fwd.hop is HopKind.PEER and ex_v.mode == "TLS"
    assert fwd.request.header("3gpp-sbi-target-apiroot") == f"https://{UDM}"   # kept in TLS mode
    assert fwd.request.authority.split(":")[0] == h.cfg.fqdn
    assert fwd.request.header("3gpp-sbi-originating-network-id")

    ex_h = n32(h, v.cfg.fqdn)
    to_nf = only(h.engine.on_request(ex_h, fwd.request), Forward)
    assert to_nf.hop is HopKind.NF and ex_h.role == "tls-receiving" and to_nf.request.authority == UDM
    rsp = HttpResponse(200, [("content-type", "application/json")], b'{"ok":true}')
    assert only(h.engine.on_response(ex_h, rsp), Answer).response.status == 200
    assert json.loads(only(v.engine.on_response(ex_v, rsp), Answer).response.body) == {"ok": True}


def test_tls_mode_request_without_relation_is_refused(configs):
    h = Sepp(configs["default"]["sepp-h"])
    acts = h.engine.on_request(n32(h, h.cfg.peers[0].fqdn), nf_request())
    problem(acts, 503, "N32_NOT_ESTABLISHED")
    assert not any(isinstance(a, Forward) for a in acts)
    assert any(isinstance(a, StartHandshake) for a in acts)


# ------------------------------------------------------------------------------ errors
def test_no_relation_asks_for_a_handshake_then_503(configs):
    v = Sepp(configs["default"]["sepp-v"])
    ex = Exchange(listener=Listener.SBI, now=NOW)
    acts = v.engine.on_request(ex, nf_request())
    assert acts == [StartHandshake(v.peer.fqdn, rekey=False, wait=True)]
    ex.handshake_waited = True
    acts = v.engine.on_request(ex, nf_request())
    problem(acts, 503, "N32_NOT_ESTABLISHED")
    assert not any(isinstance(a, (Forward, ReportError)) for a in acts)


def test_unknown_context_is_refused_and_reported(pair, configs):
    v, h = pair
    fwd = only(v.engine.on_request(Exchange(listener=Listener.SBI, now=NOW), nf_request()), Forward)
    stranger = Sepp(configs["default"]["sepp-h"])           # a restarted pSEPP: no contexts
    ex = n32(stranger, v.cfg.fqdn)
    acts = stranger.engine.on_request(ex, fwd.request)
    problem(acts, 403, "CONTEXT_NOT_FOUND")
    report = only(acts, ReportError)
    assert report.peer == v.cfg.fqdn and report.info["n32fErrorType"] == "CONTEXT_NOT_FOUND"
    assert report.message_id == ex.message_id
    assert "CONTEXT_NOT_FOUND" in only(acts, Log).line and not any(isinstance(a, Forward) for a in acts)


def test_tampered_message_is_refused_and_nothing_reaches_the_nf(pair):
    v, h = pair
    fwd = only(v.engine.on_request(Exchange(listener=Listener.SBI, now=NOW), nf_request()), Forward)
    body = json.loads(fwd.request.body)
    tag = body["reformattedData"]["tag"]
    body["reformattedData"]["tag"] = ("A" if tag[0] != "A" else "B") + tag[1:]
    req = HttpRequest("POST", "https", h.cfg.fqdn, eng.N32F_PROCESS, "", [("content-type", "application/json")],
                      json.dumps(body).encode())
    acts = h.engine.on_request(n32(h, v.cfg.fqdn), req)
    rsp = only(acts, Answer).response
    assert rsp.status == 403 and not any(isinstance(a, Forward) for a in acts)
    assert only(acts, ReportError).peer == v.cfg.fqdn


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
@pytest.mark.parametrize("path", [eng.N32F_PROCESS, "/n32c-handshake/v1/exchange-capability"])
def test_wrong_method_on_n32_resources_is_405_with_allow(pair, method, path):
    v, h = pair
    req = HttpRequest(method, "https", h.cfg.fqdn, path)
    rsp = problem(h.engine.on_request(n32(h, v.cfg.fqdn), req), 405, "METHOD_NOT_ALLOWED")
    assert rsp.header("allow") == "POST"


def test_n32_listener_dispatch(pair):
    v, h = pair
    body = json.dumps({"sender": v.cfg.fqdn}).encode()
    n32c = HttpRequest("POST", "https", h.cfg.fqdn, "/n32c-handshake/v1/exchange-capability", "",
                       [("content-type", "application/json")], body)
    handed = only(h.engine.on_request(ex := n32(h, v.cfg.fqdn), n32c), HandleN32c)
    assert (handed.peer, handed.operation, handed.body) == (v.cfg.fqdn, "exchange-capability", {"sender": v.cfg.fqdn})
    assert ex.role == "n32c"
    # the responder's answer, and its refusal, become the HTTP answer
    assert only(h.engine.on_n32c(ex, lambda: (200, {"ok": 1})), Answer).response.status == 200

    def refuse() -> tuple[int, dict]:
        raise N32Error(400, "MANDATORY_IE_INCORRECT", "round order")
    problem(h.engine.on_n32c(ex, refuse), 400, "MANDATORY_IE_INCORRECT")
    # N32-c on the N32-f-only listener, unknown N32 resources, and nobody authenticated
    problem(h.engine.on_request(n32(h, v.cfg.fqdn, Listener.N32F), n32c), 404, "RESOURCE_URI_STRUCTURE_NOT_FOUND")
    problem(h.engine.on_request(n32(h, v.cfg.fqdn), HttpRequest("POST", "https", "x", "/n32f-forward/v1/other")),
            404, "RESOURCE_URI_STRUCTURE_NOT_FOUND")
    problem(h.engine.on_request(n32(h, None), n32c), 403, "PEER_NOT_AUTHENTICATED")


def test_n32f_body_checks(pair):
    v, h = pair

    def post(ctype: str, body: bytes) -> list:
        return h.engine.on_request(n32(h, v.cfg.fqdn), HttpRequest("POST", "https", h.cfg.fqdn, eng.N32F_PROCESS,
                                                                   "", [("content-type", ctype)], body))
    problem(post("text/plain", b"{}"), 415, "UNSUPPORTED_MEDIA_TYPE")
    problem(post("application/json", b"{not json"), 400, "INVALID_MSG_FORMAT")
    problem(post("application/json", b"[" * 10_000 + b"]" * 10_000), 400, "INVALID_MSG_FORMAT")
    problem(post("application/json", b" " * (h.engine.limits.body + 1)), 413, "PAYLOAD_TOO_LARGE")


def test_key_exhausted_rekeys_once_and_answers_503(configs):
    v, h = Sepp(configs["small"]["sepp-v"]), Sepp(configs["small"]["sepp-h"])
    handshake(v, h)
    ctx = v.store.by_peer(h.cfg.fqdn)
    assert ctx is not None
    rekeys = []
    for _ in range(ctx.counters["parallel_request"].remaining):
        acts = v.engine.on_request(Exchange(listener=Listener.SBI, now=NOW), nf_request())
        only(acts, Forward)
        rekeys += [a for a in acts if isinstance(a, StartHandshake)]
    assert rekeys and all(a.rekey and not a.wait for a in rekeys)    # asked before the counter ran out
    acts = v.engine.on_request(ex := Exchange(listener=Listener.SBI, now=NOW), nf_request())
    problem(acts, 503, "N32_REKEY_IN_PROGRESS")
    assert only(acts, StartHandshake) == StartHandshake(h.cfg.fqdn, rekey=True)
    assert not any(isinstance(a, (Forward, ReportError)) for a in acts) and ex.error["status"] == 503


def test_peer_refusal_relays_the_suggested_status(pair):
    v, _ = pair
    ex = Exchange(listener=Listener.SBI, now=NOW)
    only(v.engine.on_request(ex, nf_request()), Forward)
    refusal = HttpResponse(403, [("content-type", "application/problem+json")],
                           json.dumps({"status": 403, "cause": "INTEGRITY_CHECK_FAILED",
                                       "suggestedStatusCode": 400}).encode())
    problem(v.engine.on_response(ex, refusal), 400, "INTEGRITY_CHECK_FAILED")


def test_telescopic_mapping_wrong_method_names_get(configs, tmp_path):
    cfg = configs["default"]["sepp-v"]
    if not cfg.telescopic.domain:
        pytest.skip("lab config without telescopic FQDNs")
    v = Sepp(cfg)
    req = HttpRequest("POST", "https", "sepp-v.local", "/nsepp-telescopic/v1/mapping")
    rsp = problem(v.engine.on_request(Exchange(listener=Listener.SBI, now=NOW), req), 405, "METHOD_NOT_ALLOWED")
    assert rsp.header("allow") == "GET"


def test_context_retired_while_a_message_is_in_flight_still_carries_its_answer(pair):
    """Make before break: a rekey may retire (or the peer terminate) the context a message was sent
    on while it is in flight; its answer is bound to that context and must still get through on
    both sides (the soak lost 1 request in 3,000 to "context ended before the response")."""
    v, h = pair
    ex_v = Exchange(listener=Listener.SBI, now=NOW)
    fwd = only(v.engine.on_request(ex_v, nf_request()), Forward)
    ex_h = n32(h, v.cfg.fqdn)
    only(h.engine.on_request(ex_h, fwd.request), Forward)
    # both sides drop the context while the home NF works on the request
    h.store.remove(h.store.by_local_id(ex_h.context))
    v.store.remove(v.store.by_local_id(ex_v.context))
    nf_rsp = HttpResponse(200, [("content-type", "application/json")], json.dumps({"supi": SUPI}).encode())
    back = only(h.engine.on_response(ex_h, nf_rsp), Answer).response
    assert back.status == 200 and SUPI.encode() not in back.body
    restored = only(v.engine.on_response(ex_v, back), Answer).response
    assert restored.status == 200 and json.loads(restored.body) == {"supi": SUPI}
    # a new message cannot use the removed context: nothing is held for it
    assert v.store.by_local_id(ex_v.context) is None
    assert "held_context" not in json.dumps(ex_v.to_dict())


# ------------------------------------------------------------------------------ IPX verifier per context
@pytest.fixture(scope="module")
def ipx_lab(tmp_path_factory) -> tuple[dict, Path]:
    pki = tmp_path_factory.mktemp("pki-ipx")
    ensure_lab_pki(pki)
    lab = Lab(out=tmp_path_factory.mktemp("ipx"), pki=pki, mode="prins", ipx=True)
    paths = write_configs(lab)
    return {k: load_sepp_config(Path(paths[k])) for k in ("sepp-v", "sepp-h")}, pki


def _via_ipxs(pki: Path, body: bytes, user_agent: str) -> bytes:
    """ipx1 (the sender's) sets a clear header, ipx2 (ours) signs that it changed nothing."""
    keys = {f: (pki / "ipx" / f"{f}.key").read_bytes() for f in ("ipx1.ipx.lab", "ipx2.ipx.lab")}
    doc = ipx.modify(json.loads(body), "ipx1.ipx.lab", keys["ipx1.ipx.lab"],
                     [ipx.Rule("request", set_headers=(("user-agent", user_agent),))], "request").body
    doc = ipx.modify(doc, "ipx2.ipx.lab", keys["ipx2.ipx.lab"], [], "request").body
    return json.dumps(doc).encode()


def test_modification_checker_is_built_once_per_context_and_still_verifies(ipx_lab):
    configs, pki = ipx_lab
    v, h = Sepp(configs["sepp-v"]), Sepp(configs["sepp-h"])
    handshake(v, h)
    ctx = h.store.by_peer(v.cfg.fqdn)
    check = h.engine.modification_check(ctx)
    assert h.engine.modification_check(ctx) is check            # not rebuilt per message
    for n in range(3):                                            # the cached checker, message after message
        fwd = only(v.engine.on_request(Exchange(listener=Listener.SBI, now=NOW), nf_request()), Forward)
        patched = dataclasses.replace(fwd.request, body=_via_ipxs(pki, fwd.request.body, f"AMF {n}"))
        ex = Exchange(listener=Listener.N32F, ipx_identity="ipx2.ipx.lab", now=NOW)
        to_nf = only(h.engine.on_request(ex, patched), Forward).request
        assert to_nf.header("user-agent") == f"AMF {n}" and ex.ipx_modified_by == ["ipx1.ipx.lab"]
    assert h.engine.modification_check(ctx) is check
    # still refused with the cached checker: a patch signed by a key N32-c did not give (ipx2's key as ipx1)
    fwd = only(v.engine.on_request(Exchange(listener=Listener.SBI, now=NOW), nf_request()), Forward)
    key2 = (pki / "ipx" / "ipx2.ipx.lab.key").read_bytes()
    forged = ipx.modify(json.loads(fwd.request.body), "ipx1.ipx.lab", key2,
                        [ipx.Rule("request", set_headers=(("user-agent", "x"),))], "request").body
    forged = ipx.modify(forged, "ipx2.ipx.lab", key2, [], "request").body
    ex = Exchange(listener=Listener.N32F, ipx_identity="ipx2.ipx.lab", now=NOW)
    acts = h.engine.on_request(ex, dataclasses.replace(fwd.request, body=json.dumps(forged).encode()))
    assert not [a for a in acts if isinstance(a, Forward)] and ex.error
    assert (ex.error["status"], ex.error["cause"]) == (403, "INTEGRITY_CHECK_ON_MODIFICATIONS_FAILED"), ex.error


def test_modification_checker_follows_the_context(ipx_lab):
    configs, _ = ipx_lab
    v, h = Sepp(configs["sepp-v"]), Sepp(configs["sepp-h"])
    handshake(v, h)
    ctx = h.store.by_peer(v.cfg.fqdn)
    check = h.engine.modification_check(ctx)
    # N32-c hands the context other IPX keys (the responder holds it from round 1): rebuilt
    ctx.peer_ipx_sec_info = []
    fresh = h.engine.modification_check(ctx)
    assert fresh is not check and h.engine.modification_check(ctx) is fresh
    # another engine never uses this engine's checker
    assert Sepp(configs["sepp-h"]).engine.modification_check(ctx) is not fresh
    # a new context gets its own; the one that ended takes its checker with it
    handshake(v, h)
    new = h.store.by_peer(v.cfg.fqdn)
    assert new is not ctx and h.engine.modification_check(new) is not fresh
    gone = weakref.ref(fresh)
    h.store.remove(ctx)
    del ctx, check, fresh
    gc.collect()
    assert gone() is None
