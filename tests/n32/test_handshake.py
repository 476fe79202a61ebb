"""N32-c state machines in process (n32.handshake, n32.context): real N32-KDF, a random 64-octet
value standing in for the TLS exporter (the real exporter is exercised in tests/integration)."""
from __future__ import annotations

import time
import os
from pathlib import Path

import pytest

from n32 import handshake as hs
from n32.context import ContextStore
from n32.errors import N32Error
from n32.config import PeerOptions
from n32.peer import EXTENSIONS
from n32.policy import PolicySet

ROOT = Path(__file__).resolve().parents[2]
V, H = "sepp.5gc.mnc001.mcc001.3gppnetwork.org", "sepp.5gc.mnc070.mcc999.3gppnetwork.org"


@pytest.fixture(scope="module")
def policy():
    return PolicySet.load(ROOT / "policies/data-type-encryption.yaml", sorted((ROOT / "policies/placement").glob("*.yaml")),
                          ROOT / "policies/modification.yaml")


def local(fqdn, plmn, caps, policy, jwe=("A128GCM", "A256GCM")):
    return hs.LocalSepp(fqdn, [plmn], tuple(caps), tuple(jwe), ("ES256",), policy)


def run(init: hs.Initiator, resp: hs.Responder, conn: hs.ConnectionState) -> None:
    while (step := init.next_request()) is not None:
        op, body = step
        try:
            out = resp.handle(conn, op, body)
            init.receive(out.status, out.body)
        except N32Error as e:
            init.receive(e.status, e.problem_details())


def pair(policy, v_caps=("PRINS", "TLS"), h_allows=("PRINS", "TLS"), h_jwe=("A128GCM", "A256GCM"), ext=EXTENSIONS):
    master = os.urandom(64)
    store_h = ContextStore(time.time)
    lv = local(V, {"mcc": "001", "mnc": "01"}, v_caps, policy)
    lh = local(H, {"mcc": "999", "mnc": "70"}, ("PRINS", "TLS"), policy, h_jwe)
    opts = PeerOptions(extensions=tuple(ext))
    resp = hs.Responder(lh, [hs.Peer(V, ["001-01"], tuple(h_allows), opts)], store_h)
    init = hs.Initiator(lv, hs.Peer(H, ["999-70"], ("PRINS", "TLS"), opts))
    conn = hs.ConnectionState(resp.peers[V], lambda: master)
    return init, resp, conn, store_h, master


def test_prins_handshake_gives_both_sides_the_same_keys(policy):
    init, resp, conn, store_h, master = pair(policy)
    run(init, resp, conn)
    assert init.selected_capability == "PRINS" and init.state == "done" and conn.round == 3
    ctx_v, ctx_h = init.finish(master), store_h.by_peer(V)
    assert ctx_v.keys == ctx_h.keys
    assert (ctx_v.initiator_context_id, ctx_v.responder_context_id) == (ctx_h.initiator_context_id,
                                                                        ctx_h.responder_context_id)
    assert ctx_v.local_context_id != ctx_v.peer_context_id
    for kind in ("request", "response"):  # what one side sends with, the other receives with
        assert ctx_v.send_params(kind)[0] == ctx_h.receive_params(kind)[0]
        assert ctx_h.send_params(kind)[0] == ctx_v.receive_params(kind)[0]
        assert ctx_v.send_params(kind)[0] != ctx_h.send_params(kind)[0]
    text = repr(ctx_v)  # no key material in reprs (they end up in logs)
    for secret in (ctx_v.keys.parallel_request_key, ctx_v.keys.reverse_response_iv_salt, master):
        assert secret.hex() not in text and repr(secret) not in text


@pytest.mark.parametrize("offer,allowed,selected", [
    (("PRINS", "TLS"), ("PRINS", "TLS"), "PRINS"), (("TLS",), ("PRINS", "TLS"), "TLS"),
    (("PRINS",), ("PRINS",), "PRINS"), (("PRINS", "TLS"), ("TLS",), "TLS"),
])
def test_capability_selection(policy, offer, allowed, selected):
    init, resp, conn, _, _ = pair(policy, v_caps=offer, h_allows=allowed)
    run(init, resp, conn)
    assert init.selected_capability == selected


def test_no_overlap(policy):
    init, resp, conn, _, _ = pair(policy, v_caps=("PRINS",), h_allows=("TLS",))
    with pytest.raises(N32Error) as ei:
        run(init, resp, conn)
    assert ei.value.status == 400 and ei.value.cause == "NEGOTIATION_NOT_ALLOWED"


def test_suite_follows_initiator_priority_among_allowed(policy):
    init, resp, conn, store_h, _ = pair(policy, h_jwe=("A256GCM",))
    run(init, resp, conn)
    assert init.jwe == "A256GCM" and store_h.by_peer(V).jwe_suite == "A256GCM"


def test_params_before_prins_and_rounds_out_of_order_are_400(policy):
    _, resp, conn, _, _ = pair(policy)
    with pytest.raises(N32Error) as ei:
        resp.handle(conn, "exchange-params", {"n32fContextId": "0123456789abcdef", "sender": V,
                                              "jweCipherSuiteList": ["A128GCM"]})
    assert ei.value.status == 400
    resp.handle(conn, "exchange-capability", {"sender": V, "supportedSecCapabilityList": ["PRINS"]})
    with pytest.raises(N32Error) as ei:
        resp.handle(conn, "exchange-params", {"n32fContextId": "0123456789abcdef", "sender": V})
    assert ei.value.status == 400 and "before round 1" in ei.value.detail


def test_round_with_another_context_id_is_400(policy):
    init, resp, conn, _, _ = pair(policy)
    for _ in range(2):  # capability, round 1
        op, body = init.next_request()
        init.receive(200, resp.handle(conn, op, body).body)
    op, body = init.next_request()
    body["n32fContextId"] = "ffffffffffffffff"
    with pytest.raises(N32Error) as ei:
        resp.handle(conn, op, body)
    assert ei.value.invalid_params[0]["param"] == "/n32fContextId"


def test_wrong_sender_is_403(policy):
    _, resp, conn, _, _ = pair(policy)
    with pytest.raises(N32Error) as ei:
        resp.handle(conn, "exchange-capability", {"sender": "sepp2.localdomain", "supportedSecCapabilityList": ["TLS"]})
    assert ei.value.status == 403


def test_terminate_by_either_id_and_unknown(policy):
    init, resp, conn, store_h, master = pair(policy)
    run(init, resp, conn)
    ctx_v = init.finish(master)
    out = resp.handle(conn, "n32f-terminate", hs.terminate_request(ctx_v))
    assert out.status == 200 and store_h.by_peer(V) is None
    with pytest.raises(N32Error) as ei:
        resp.handle(conn, "n32f-terminate", hs.terminate_request(ctx_v))
    assert ei.value.status == 404


def test_an_expired_context_is_gone_from_every_lookup(policy):
    """TS 33.501 §13.2.2.4: a context has a validity; once over, no lookup finds it, ``expire``
    drops it and the PRINS relation with it (so the next message triggers a new handshake)."""
    now = [1000.0]
    init, resp, conn, store_h, master = pair(policy)
    store_h.clock = lambda: now[0]
    run(init, resp, conn)
    ctx = store_h.by_peer(V)
    assert ctx is not None and store_h.relation(V) is not None
    ctx.created, ctx.lifetime = now[0], 60.0
    assert store_h.by_local_id(ctx.local_context_id) is ctx
    assert store_h.by_either_id(ctx.peer_context_id) is ctx and store_h.expire() == []
    now[0] += 60.0
    assert store_h.by_local_id(ctx.local_context_id) is None and store_h.by_peer(V) is None
    assert store_h.expire() == [ctx]
    assert store_h.all() == [] and store_h.by_either_id(ctx.peer_context_id) is None
    assert store_h.relation(V) is None


def test_after_a_rekey_the_newest_context_sends_and_the_old_one_still_receives(policy):
    """A second handshake with the same responder (a rekey): new IDs and keys; ``by_peer`` (what
    senders use) gives the new context, the old one is still found by its ID for messages in
    flight until it is removed; removing it keeps the relation."""
    init, resp, conn, store_h, master = pair(policy)
    run(init, resp, conn)
    old = store_h.by_peer(V)
    old.created -= 1  # the clock may not tick between the two handshakes
    old.send_ready = True  # as the lifecycle does once that handshake completed
    master2 = os.urandom(64)
    init2 = hs.Initiator(init.local, init.peer)
    run(init2, resp, hs.ConnectionState(resp.peers[V], lambda: master2))
    new_v, new_h = init2.finish(master2), store_h.for_peer(V)[-1]
    # make before break: the responder sends on the old context until the new one is promoted
    assert store_h.by_peer(V) is old and not new_h.send_ready and new_v.send_ready
    new_h.send_ready = True
    assert store_h.by_peer(V) is new_h
    assert new_h is not old and new_h.keys == new_v.keys and new_h.keys != old.keys
    assert {new_h.local_context_id, new_h.peer_context_id}.isdisjoint({old.local_context_id, old.peer_context_id})
    assert store_h.by_local_id(old.local_context_id) is old
    store_h.remove(old)
    assert store_h.by_peer(V) is new_h and store_h.relation(V) is not None
    assert store_h.by_local_id(old.local_context_id) is None
