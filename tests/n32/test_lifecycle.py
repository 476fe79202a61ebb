"""The relation lifecycle (n32.lifecycle) driven in memory between two SEPPs with a fake clock:
whole handshakes, rekeys from either side without a lost message, terminate, a restart of one side
recovered without an operator, retry backoff."""
from __future__ import annotations

from pathlib import Path

import pytest

from n32.events import ContextRetired, HandshakeDue, StateChanged, TerminateDue
from n32.lifecycle import Input, RelationState, Timing
from n32.policy import PolicySet

from .sim import H, V, Clock, Net, Side, contexts

ROOT = Path(__file__).resolve().parents[2]
S = RelationState


@pytest.fixture(scope="module")
def policy():
    return PolicySet.load(ROOT / "policies/data-type-encryption.yaml", sorted((ROOT / "policies/placement").glob("*.yaml")),
                          ROOT / "policies/modification.yaml")


def lab(policy, **kw) -> Net:
    clock = Clock()
    v_kw = {k[2:]: v for k, v in kw.items() if k.startswith("v_")}
    h_kw = {k[2:]: v for k, v in kw.items() if k.startswith("h_")}
    common = {k: v for k, v in kw.items() if not k.startswith(("v_", "h_"))}
    return Net(Side(V, H, clock, policy, **common, **v_kw), Side(H, V, clock, policy, **common, **h_kw), clock)


def establish(net: Net) -> None:
    net.a.rel.want(net.clock.now)
    net.pump()
    assert net.a.rel.state is S.ESTABLISHED and net.b.rel.state is S.ESTABLISHED


def test_prins_handshake_establishes_both_sides_and_traffic_flows_both_ways(policy):
    net = lab(policy)
    establish(net)
    (cv,), (ch,) = contexts(net.a), contexts(net.b)
    assert cv.keys == ch.keys and cv.role == "initiator" and ch.role == "responder"
    assert cv.send_ready and ch.send_ready          # the only context: usable at once on both sides
    assert [net.request(net.a) for _ in range(3)] == [200] * 3
    assert [net.request(net.b) for _ in range(3)] == [200] * 3
    assert net.a.rel.get_timer() == pytest.approx(cv.created + 0.9 * cv.lifetime)   # lifetime rekey


def test_tls_handshake_establishes_a_relation_without_context(policy):
    net = lab(policy, caps=("TLS",), peer_caps=("TLS",))
    establish(net)
    assert net.a.store.relation(H).capability == "TLS" and net.b.store.relation(V).capability == "TLS"
    assert contexts(net.a) == contexts(net.b) == []


@pytest.mark.parametrize("ext", [(), ("empty-round3",)], ids=["spec-only", "extensions"])
def test_rekey_on_message_budget_loses_nothing_from_either_side(policy, ext):
    """max_messages 30, margin 10: both sides rekey repeatedly; every request succeeds; after the
    grace period each side holds one context, the same pair."""
    net = lab(policy, max_messages=30, rekey_margin=10, ext=ext)
    establish(net)
    statuses = []
    for i in range(120):
        statuses.append(net.request(net.a if i % 3 else net.b))
        net.advance(0.1)
    assert statuses == [200] * 120
    rekeys = [e for s in (net.a, net.b) for e in s.seen if isinstance(e, HandshakeDue) and e.rekey]
    assert len(rekeys) >= 4
    assert {e.peer for e in rekeys} == {V, H}       # both sides initiated rekeys (responder-side included)
    net.advance(5)
    (cv,), (ch,) = contexts(net.a), contexts(net.b)
    assert cv.local_context_id == ch.peer_context_id and cv.keys == ch.keys


def test_make_before_break_the_responder_keeps_sending_on_the_old_context(policy):
    net = lab(policy, timing=Timing(retry_initial=0.5, retry_max=4, rekey_grace=2.0))
    establish(net)
    old_h = net.b.store.by_peer(V)
    net.a.rel._input(Input.REKEY_DUE, net.clock.now)
    net.pump()
    assert len(contexts(net.a)) == 2 and len(contexts(net.b)) == 2
    new_v = net.a.store.by_peer(H)
    assert new_v.created >= old_h.created and new_v.send_ready
    # H (responder of the new context) sends on the old one until V is known to hold the new one
    assert net.b.store.by_peer(V) is old_h
    assert net.request(net.b) == 200 and net.b.store.by_peer(V) is old_h
    assert net.request(net.a) == 200                # V sends on the new context: proof for H
    assert net.b.store.by_peer(V).local_context_id == new_v.peer_context_id
    net.advance(2.5)                                # grace over: V retires the old pair
    assert any(isinstance(e, ContextRetired) for e in net.a.seen)
    assert len(contexts(net.a)) == 1 and len(contexts(net.b)) == 1


def test_responder_promotes_a_new_context_after_the_grace_period_if_the_peer_never_uses_it(policy):
    net = lab(policy)
    establish(net)
    old_h = net.b.store.by_peer(V)
    net.a.rel._input(Input.REKEY_DUE, net.clock.now)
    net.pump()
    assert net.b.store.by_peer(V) is old_h
    net.advance(2.1)
    assert net.b.store.by_peer(V) is not old_h and net.b.store.by_peer(V).send_ready


def test_terminate_ends_the_relation_on_both_sides(policy):
    net = lab(policy)
    establish(net)
    net.a.rel.release(net.clock.now)
    evs = net.a.relations.events()
    assert [type(e) for e in evs if not isinstance(e, StateChanged)] == [TerminateDue]
    due = next(e for e in evs if isinstance(e, TerminateDue))
    assert net.post(net.a, "n32f-terminate", {"n32fContextId": due.context.peer_context_id})[0] == 200
    assert contexts(net.a) == [] and contexts(net.b) == []
    assert net.a.rel.state is S.IDLE and net.b.rel.state is S.IDLE
    assert net.b.store.relation(V) is None


def test_tls_release_with_none_ends_the_relation_on_both_sides(policy):
    net = lab(policy, caps=("TLS",), peer_caps=("TLS",))
    establish(net)
    net.a.rel.release(net.clock.now)
    net.pump()
    assert net.b.store.relation(V) is None and net.b.rel.state is S.IDLE


@pytest.mark.parametrize("restarted", ["responder", "initiator"])
def test_restart_of_one_side_recovers_without_an_operator(policy, restarted):
    """The restarted side forgot everything: the next request of the other side gets
    CONTEXT_NOT_FOUND, which kills the dead context, runs the handshake again and retries the
    request once on the new context; the NF sees 200."""
    net = lab(policy)
    establish(net)
    side = net.b if restarted == "responder" else net.a
    other = net.other(side)
    side.boot()
    assert net.request(other) == 200
    assert other.rel.state is S.ESTABLISHED and side.rel.state is S.ESTABLISHED
    assert len(contexts(other)) == 1 and len(contexts(side)) == 1
    assert net.request(side) == 200


def test_handshake_retries_with_backoff_while_the_peer_is_down(policy):
    net = lab(policy, timing=Timing(retry_initial=0.5, retry_max=4.0, rekey_grace=2.0))
    net.b.up = False
    net.a.rel.want(net.clock.now)
    net.pump()
    assert net.a.rel.state is S.BACKOFF and net.a.rel.get_timer() == pytest.approx(net.clock.now + 0.5)
    net.advance(10, step=0.05)
    dues = [e for e in net.a.seen if isinstance(e, HandshakeDue)]
    assert [d.attempt for d in dues] == list(range(1, len(dues) + 1))
    assert 4 <= len(dues) <= 6                        # 0, 0.5, 1.5, 3.5, 7.5 (capped at 4 s)
    net.b.up = True
    net.advance(5, step=0.05)
    assert net.a.rel.state is S.ESTABLISHED and net.request(net.a) == 200


def test_attempts_limit_gives_up_until_wanted_again(policy):
    net = lab(policy, timing=Timing(retry_initial=0.5, retry_max=4.0, attempts=2))
    net.b.up = False
    net.a.rel.want(net.clock.now)
    net.pump()
    net.advance(3)
    assert net.a.rel.state is S.IDLE and net.a.rel.get_timer() is None
    net.b.up = True
    assert net.request(net.a) == 200


def test_expired_context_is_dropped_and_the_next_request_handshakes_again(policy):
    net = lab(policy)
    establish(net)
    for s in (net.a, net.b):
        for c in contexts(s):
            c.lifetime = 10.0
            s.rel.rekey_requested.add(c.local_context_id)    # no lifetime rekey: let it expire
    net.advance(11)
    assert contexts(net.a) == [] and net.a.rel.state is S.IDLE
    assert net.request(net.a) == 200


def test_lifetime_rekey_replaces_the_context_before_it_expires(policy):
    net = lab(policy)
    establish(net)
    for s in (net.a, net.b):
        for c in contexts(s):
            c.lifetime = 100.0
    net.advance(95)
    (cv,), (ch,) = contexts(net.a), contexts(net.b)
    assert cv.created >= 1000.0 + 90 and cv.keys == ch.keys


def test_both_sides_rekeying_at_once_converge_without_loss(policy):
    """The request counter of one side and the response counter of the other run low together, so
    both rekey at once: each keeps the context the other created (it is newer or retired by its
    creator), nothing is lost, and they end on one common context."""
    net = lab(policy, max_messages=40, rekey_margin=30)
    establish(net)
    statuses = []
    for _ in range(60):
        net.a.rel._input(Input.REKEY_DUE, net.clock.now) if not statuses else None
        net.b.rel._input(Input.REKEY_DUE, net.clock.now) if not statuses else None
        net.pump()
        statuses.append(net.request(net.a))
        net.advance(0.05)
    assert statuses == [200] * 60
    net.advance(5)
    (cv,), (ch,) = contexts(net.a), contexts(net.b)
    assert cv.keys == ch.keys


def test_a_rekey_that_fails_is_retried_with_backoff_until_the_peer_is_back(policy):
    """The peer dies while our budget runs low (a rekey storm, then a restart): the rekey fails,
    the keys run out, and nothing else would ever start a handshake (the current context sends
    nothing, so no CONTEXT_NOT_FOUND comes back). The failed rekey must retry with backoff, and
    traffic must succeed again once the peer is back."""
    net = lab(policy, max_messages=30, rekey_margin=10, timing=Timing(retry_initial=0.5, retry_max=2.0,
                                                                      rekey_grace=1.0))
    establish(net)
    for _ in range(15):
        assert net.request(net.a) == 200
        net.advance(0.05)
    net.b.up = False
    seen = len(net.a.seen)
    statuses = []
    for _ in range(40):
        statuses.append(net.request(net.a, retry=False))
        net.advance(0.1)
    assert 200 not in statuses[-10:]                 # the keys are spent, the peer is down
    dues = [e for e in net.a.seen[seen:] if isinstance(e, HandshakeDue)]
    assert 2 <= len(dues) <= 4, dues                 # retried, with backoff (0.5 s, 1 s, 2 s...)
    assert net.a.rel.state is S.BACKOFF and net.a.rel.retry_at is not None
    net.b.boot()
    net.b.up = True
    net.advance(3, step=0.05)
    assert net.request(net.a) == 200
    assert net.a.rel.state is S.ESTABLISHED


def test_established_with_nothing_held_handshakes_again_when_needed(policy):
    """Both sides rekeyed at once and each retired the other's new context (seen in a soak): the
    relation said established while no context was left, and every NF request got 503 for ever.
    A relation needed while nothing usable is held handshakes again."""
    net = lab(policy)
    establish(net)
    for c in contexts(net.a):
        net.a.store.remove(c)
    assert net.a.rel.state is S.ESTABLISHED and not net.a.rel.usable()
    assert net.request(net.a) == 200
    assert net.a.rel.state is S.ESTABLISHED and net.a.rel.usable()


def test_retiring_the_last_context_ends_the_established_state(policy):
    net = lab(policy, timing=Timing(rekey_grace=1.0))
    establish(net)
    (ctx,) = contexts(net.a)
    net.a.rel.retire_at[ctx.local_context_id] = net.clock.now + 0.5   # as after a rekey of ours
    net.advance(1.0)
    assert not contexts(net.a) and net.a.rel.state is S.IDLE
    assert net.request(net.a) == 200
