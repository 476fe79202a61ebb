"""The engine's part of recovery without an operator (issue 12), sans-I/O: a peer answering
CONTEXT_NOT_FOUND / N32_NOT_ESTABLISHED marks what we sent on as dead (the adapter rebuilds the
relation and retries once); N32-f from an authenticated peer we hold nothing with makes us
handshake ourselves and answers 403 CONTEXT_NOT_FOUND (PRINS) or 503 N32_NOT_ESTABLISHED with
Retry-After (TLS)."""
from __future__ import annotations

import time
import base64
import json

import pytest

from certs.pki import ensure_lab_pki
from lab.topology import HOME, Lab, write_configs
from n32 import config, edge
from n32.context import ContextStore, PeerRelation
from n32.engine import Engine
from n32.exchange import Answer, Exchange, Listener, StartHandshake
from n32.message import HttpRequest, HttpResponse
from n32.policy import PolicySet

V = "sepp.5gc.mnc001.mcc001.3gppnetwork.org"


@pytest.fixture(scope="module")
def home_engine(tmp_path_factory) -> Engine:
    pki = tmp_path_factory.mktemp("pki")
    ensure_lab_pki(pki)
    lab = Lab(out=tmp_path_factory.mktemp("cfg"), pki=pki)
    cfg = config.load_sepp_config(write_configs(lab)[HOME["name"]])
    policy = PolicySet.load(cfg.policies.encryption, list(cfg.policies.placement), cfg.policies.modification)
    e = edge.build(telescopic_domain=None, hiding=False, plmn=cfg.plmn_ids[0], exclude=[cfg.fqdn])
    return Engine(cfg, policy, ContextStore(time.time), e)


def problem(status: int, cause: str) -> HttpResponse:
    return HttpResponse(status, [("content-type", "application/problem+json")],
                        json.dumps({"status": status, "cause": cause}).encode())


@pytest.mark.parametrize("mode,status,cause,dead", [
    ("PRINS", 403, "CONTEXT_NOT_FOUND", True), ("TLS", 403, "N32_NOT_ESTABLISHED", True),
    ("TLS", 503, "N32_NOT_ESTABLISHED", True), ("PRINS", 403, "INTEGRITY_CHECK_FAILED", False),
    ("PRINS", 200, "CONTEXT_NOT_FOUND", False)])
def test_a_peer_that_lost_our_context_is_detected(home_engine, mode, status, cause, dead):
    ex = Exchange(listener=Listener.SBI, role="sending", mode=mode, peer=V,
                  context="0123456789abcdef" if mode == "PRINS" else None)
    got = home_engine.context_lost(ex, problem(status, cause))
    assert (got is not None) == dead
    if dead:
        assert got.dead and got.peer == V and got.context_id == ex.context
        ex.handshake_retried = True          # the retry is the last attempt
        assert home_engine.context_lost(ex, problem(status, cause)) is None


@pytest.mark.parametrize("announced,kind_cause,dead", [
    (True, "N32_PEER_NOT_REACHABLE", True),       # a worker of the peer died with its N32-f port
    (False, "N32_PEER_NOT_REACHABLE", False),     # N32-f goes to its N32-c address: the peer is down
    (True, "N32F_FORWARDING_FAILED", False)])     # the connection broke: delivery unknown, no resend
def test_an_unreachable_announced_n32f_port_is_a_lost_context(home_engine, announced, kind_cause, dead):
    """Scale-out: the peer announced a per-worker N32-f port (senderN32fPort) that now refuses
    connections; nothing was delivered, and its N32-c address reaches its other workers."""
    store = home_engine.store
    port = 40001 if announced else int(home_engine._peers[V].n32c_uri.rsplit(":", 1)[1])
    store.set_relation(V, PeerRelation("PRINS", n32f_uri=f"https://{V}:{port}"))
    try:
        ex = Exchange(listener=Listener.SBI, role="sending", mode="PRINS", peer=V, context="0123456789abcdef")
        got = home_engine.context_lost(ex, problem(502, kind_cause))
        assert (got is not None) == dead
        if dead:
            assert got.dead and got.context_id == ex.context
    finally:
        store.set_relation(V, None)


def _n32f(context_id: str) -> HttpRequest:
    aad = {"metaData": {"n32fContextId": context_id, "messageId": "1", "authorizedIpxId": "NULL"}}
    body = {"reformattedData": {"protected": "eyJhbGciOiJkaXIiLCJlbmMiOiJBMTI4R0NNIn0",
                                "aad": base64.urlsafe_b64encode(json.dumps(aad).encode()).decode().rstrip("="),
                                "iv": "AAAAAAAAAAAAAAAA", "ciphertext": "", "tag": "AAAAAAAAAAAAAAAAAAAAAA"}}
    return HttpRequest("POST", "https", "sepp", "/n32f-forward/v1/n32f-process", "",
                       [("content-type", "application/json")], json.dumps(body).encode())


def test_n32f_from_a_peer_we_hold_nothing_with_starts_our_handshake(home_engine):
    ex = Exchange(listener=Listener.N32F, peer_identity=V)
    actions = home_engine.on_request(ex, _n32f("0123456789abcdef"))
    assert StartHandshake(V) in actions
    answer = next(a for a in actions if isinstance(a, Answer))
    assert answer.response.status == 403 and json.loads(answer.response.body)["cause"] == "CONTEXT_NOT_FOUND"


def test_tls_mode_n32f_without_relation_gets_503_retry_after_and_starts_our_handshake(home_engine):
    ex = Exchange(listener=Listener.N32F, peer_identity=V)
    req = HttpRequest("GET", "https", "sepp", "/nudm-sdm/v2/imsi-999700000000001/nssai", "",
                      [("3gpp-sbi-target-apiroot", "https://udm.5gc.mnc070.mcc999.3gppnetwork.org")])
    actions = home_engine.on_request(ex, req)
    assert StartHandshake(V) in actions
    rsp = next(a for a in actions if isinstance(a, Answer)).response
    assert rsp.status == 503 and json.loads(rsp.body)["cause"] == "N32_NOT_ESTABLISHED"
    assert rsp.header("retry-after") == "1"


def test_unknown_context_while_we_hold_one_is_not_a_reason_to_handshake(home_engine):
    # a late message on a retired context: we still hold a usable one, so nothing is started
    from n32 import kdf
    from n32.context import N32fContext
    keys = kdf.derive_session_keys(b"\0" * 64, "1" * 16, "2" * 16, "A128GCM")
    ctx = N32fContext("2" * 16, "1" * 16, "responder", V, (), "A128GCM", "ES256", keys, b"\0" * 64)
    home_engine.store.add(ctx)
    try:
        actions = home_engine.on_request(Exchange(listener=Listener.N32F, peer_identity=V), _n32f("f" * 16))
        assert not any(isinstance(a, StartHandshake) for a in actions)
    finally:
        home_engine.store.remove(ctx)


def test_n32f_destination_uses_what_the_peer_announced():
    """TS 29.573 Rel-18 senderN32fFqdn/senderN32fPort(List); peers[].n32f_uri wins (open5gs
    announces nothing and takes N32-f only on its dedicated port)."""
    from types import SimpleNamespace

    from n32.context import PeerRelation
    from n32.engine import n32f_dest
    from n32.plmn import PlmnId
    peer = SimpleNamespace(fqdn=V, n32f_uri=None, n32c_uri="https://127.0.0.1:7001", plmn_ids=(PlmnId("001", "01"),))
    rel = lambda uri: PeerRelation("TLS", V, [], uri)  # noqa: E731
    assert n32f_dest(peer, rel(None)) == "https://127.0.0.1:7001"
    assert n32f_dest(peer, rel(f"https://{V}:7443")) == "https://127.0.0.1:7443"
    assert n32f_dest(peer, rel("https://n32f.sepp.5gc.mnc001.mcc001.3gppnetwork.org:8443")) == \
        "https://n32f.sepp.5gc.mnc001.mcc001.3gppnetwork.org:8443"
    assert n32f_dest(peer, rel("https://evil.example.org:8443")) == "https://127.0.0.1:7001"   # not its domain
    peer.n32f_uri = "https://127.0.0.1:7777"
    assert n32f_dest(peer, rel(f"https://{V}:7443")) == "https://127.0.0.1:7777"
