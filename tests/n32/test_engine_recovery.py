"""The engine's part of recovery without an operator (issue 12), sans-I/O: a peer answering
CONTEXT_NOT_FOUND / N32_NOT_ESTABLISHED marks what we sent on as dead (the adapter rebuilds the
relation and retries once); N32-f from an authenticated peer we hold nothing with makes us
handshake ourselves and answers 403 CONTEXT_NOT_FOUND (PRINS) or 503 N32_NOT_ESTABLISHED with
Retry-After (TLS)."""
from __future__ import annotations

import base64
import json
import time
from dataclasses import replace

import pytest

from certs.pki import ensure_lab_pki
from lab.topology import HOME, Lab, write_configs
from n32 import config, edge, lifecycle, upstream_errors as ue
from n32.context import ContextStore, PeerRelation
from n32.engine import Engine
from n32.events import HandshakeDue
from n32.exchange import Answer, Exchange, Forward, HopKind, Listener, StartHandshake
from n32.message import HttpRequest, HttpResponse
from n32.policy import PolicySet
from tests.n32.test_engine import (NOW, Sepp, configs, handshake, nf_request, only, pair,  # noqa: F401 (fixtures)
                                   problem as answered)

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


def test_an_unreachable_announced_n32f_port_is_a_lost_context(pair):
    """Scale-out: the peer announced a per-worker N32-f port (senderN32fPort) that now refuses
    connections; nothing was delivered, and its N32-c address reaches its other workers. Decided
    on where each exchange went: a request protected on the dead context before another one's
    failure dropped it is retried too; requests arriving meanwhile wait for the new handshake."""
    v, h = pair
    fqdn = v.peer.fqdn
    v.store.set_relation(fqdn, replace(v.store.relation(fqdn), n32f_uri=f"https://{fqdn}:40001"))
    dead = v.store.by_peer(fqdn).local_context_id
    first, racing = Exchange(listener=Listener.SBI, now=NOW), Exchange(listener=Listener.SBI, now=NOW)
    for ex in (first, racing):
        fwd = only(v.engine.on_request(ex, nf_request()), Forward)
        assert fwd.uri == "https://127.0.0.1:40001" and ex.announced_dest == fwd.uri and ex.context == dead
    # the first one finds the port closed: not written, so the context is dead and it is resent
    answered(v.engine.on_upstream_error(first, HopKind.PEER, ue.UNREACHABLE, sent=False), 502,
             "N32_PEER_NOT_REACHABLE")
    got = v.engine.context_lost(first, None)   # our own answer: the peer gave none
    assert got == StartHandshake(fqdn, dead=True, context_id=dead)
    # the lifecycle drops it and handshakes again through the peer's N32-c address
    rel = lifecycle.Relation(v.peer, v.store)
    rel.state = lifecycle.RelationState.ESTABLISHED
    rel.context_dead(NOW, got.context_id)
    assert rel.state is lifecycle.RelationState.HANDSHAKING and v.store.by_peer(fqdn) is None
    assert any(isinstance(e, HandshakeDue) for e in rel.events())
    # a request arriving meanwhile is not sent on the dead context: it waits for the handshake
    waiting = Exchange(listener=Listener.SBI, now=NOW)
    assert v.engine.on_request(waiting, nf_request()) == [StartHandshake(fqdn, wait=True)]
    # the one protected on the dead context before: a GOAWAY below its stream is "not written"
    # too, and it is retried although the relation it went out on is gone already
    answered(v.engine.on_upstream_error(racing, HopKind.PEER, ue.RESET, sent=False), 502,
             "N32F_FORWARDING_FAILED")
    assert v.engine.context_lost(racing, None) == StartHandshake(fqdn, dead=True, context_id=dead)
    rel.context_dead(NOW, dead)                  # already handshaking: no second handshake
    assert rel.state is lifecycle.RelationState.HANDSHAKING and not rel.events()
    # the new handshake (through the load balancer, another worker): the waiting request goes out
    # on the new context; a late failure on the dead one leaves the new context alone
    handshake(v, h)
    fresh = v.store.by_peer(fqdn)
    rel.handshake_succeeded(NOW, v.store.relation(fqdn), fresh)
    waiting.handshake_waited = True
    only(v.engine.on_request(waiting, nf_request()), Forward)
    assert waiting.context == fresh.local_context_id != dead
    rel.events()
    rel.context_dead(NOW, dead)
    assert v.store.by_peer(fqdn) is fresh and rel.state is lifecycle.RelationState.ESTABLISHED and not rel.events()


def test_tls_mode_a_dead_peer_worker_drops_the_relation_once(configs):
    """TLS mode holds no context: the relation made with the dead worker is what is dropped. A
    request sent on it that fails after the relation was made again (to another worker) is
    resent on the new one, which stays."""
    v = Sepp(configs["default"]["sepp-v"])
    fqdn = v.peer.fqdn
    v.store.set_relation(fqdn, PeerRelation("TLS", n32f_uri=f"https://{fqdn}:40001"))
    first, late = Exchange(listener=Listener.SBI, now=NOW), Exchange(listener=Listener.SBI, now=NOW)
    for ex in (first, late):
        only(v.engine.on_request(ex, nf_request()), Forward)
        assert ex.mode == "TLS" and ex.announced_dest == "https://127.0.0.1:40001"
    answered(v.engine.on_upstream_error(first, HopKind.PEER, ue.UNREACHABLE, sent=False), 502,
             "N32_PEER_NOT_REACHABLE")
    assert v.engine.context_lost(first, None) == StartHandshake(fqdn, dead=True)
    rel = lifecycle.Relation(v.peer, v.store)
    rel.state = lifecycle.RelationState.ESTABLISHED
    rel.context_dead(NOW, None)
    assert v.store.relation(fqdn) is None and rel.state is lifecycle.RelationState.HANDSHAKING
    new = PeerRelation("TLS", n32f_uri=f"https://{fqdn}:40002")        # another worker's port
    rel.handshake_succeeded(NOW, new, None)
    answered(v.engine.on_upstream_error(late, HopKind.PEER, ue.UNREACHABLE, sent=False), 502,
             "N32_PEER_NOT_REACHABLE")
    assert v.engine.context_lost(late, None) == StartHandshake(fqdn, wait=True)    # not dead: kept
    retry = Exchange(listener=Listener.SBI, now=NOW, handshake_waited=True, handshake_retried=True)
    assert only(v.engine.on_request(retry, nf_request()), Forward).uri == "https://127.0.0.1:40002"


@pytest.mark.parametrize("kind,sent,announced", [
    (ue.RESET, True, True),            # the connection broke after the request went out: delivery unknown
    (ue.TIMEOUT, True, True),
    (ue.UNREACHABLE, False, False)])   # N32-f goes to the N32-c address: the peer itself is down
def test_a_request_that_may_have_been_delivered_is_not_resent(pair, kind, sent, announced):
    v, _ = pair
    fqdn = v.peer.fqdn
    port = 40001 if announced else int(v.cfg.peers[0].n32c_uri.rsplit(":", 1)[1])
    v.store.set_relation(fqdn, replace(v.store.relation(fqdn), n32f_uri=f"https://{fqdn}:{port}"))
    ex = Exchange(listener=Listener.SBI, now=NOW)
    only(v.engine.on_request(ex, nf_request()), Forward)
    assert (ex.announced_dest is not None) == announced
    rsp = only(v.engine.on_upstream_error(ex, HopKind.PEER, kind, sent=sent), Answer).response
    assert rsp.status in (502, 504) and v.engine.context_lost(ex, None) is None


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
    ctx = N32fContext("2" * 16, "1" * 16, "responder", V, (), "A128GCM", "ES256", keys, b"\0" * 64,
                      created=home_engine.store.clock())
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
    from n32.routing import n32f_dest
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
