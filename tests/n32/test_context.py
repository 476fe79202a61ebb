"""n32.context: the context store on a fake clock (the core reads none) and the key directions of
a context pair from a real N32-KDF."""
from __future__ import annotations

import secrets

from n32 import kdf
from n32.context import ContextStore, N32fContext, PeerRelation

PEER = "sepp.5gc.mnc070.mcc999.3gppnetwork.org"
A, B = "a" * 16, "b" * 16     # N32-f context IDs: 16 hex digits (TS 29.573 profile 6)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0


def ctx(local: str, peer_id: str, *, role: str = "initiator", peer: str = PEER, created: float = 1_000.0,
        lifetime: float = 60.0, send_ready: bool = True) -> N32fContext:
    master = secrets.token_bytes(32)
    ids = (local, peer_id) if role == "initiator" else (peer_id, local)
    keys = kdf.derive_session_keys(master, *ids, "A256GCM")
    c = N32fContext(local, peer_id, role, peer, (), "A256GCM", "ES256", keys, master, created=created, lifetime=lifetime)
    c.send_ready = send_ready
    return c


def test_lookup_and_expiry_follow_the_callers_clock():
    clock = Clock()
    store = ContextStore(lambda: clock.now)
    a = ctx("aaaaaaaaaaaaaaaa", "1111111111111111")
    store.add(a)
    assert store.by_local_id("aaaaaaaaaaaaaaaa") is a and store.by_either_id("1111111111111111") is a
    assert store.by_local_id("1111111111111111") is None               # the peer's ID is not ours
    clock.now = 1_059.9
    assert store.for_peer(PEER) == [a] and store.expire() == []
    clock.now = 1_060.0                                     # expires = created + lifetime
    assert store.by_local_id("aaaaaaaaaaaaaaaa") is None and store.by_peer(PEER) is None
    assert store.expire() == [a] and store.all() == []


def test_new_messages_go_on_the_newest_context_both_sides_hold():
    store = ContextStore(lambda: 1_000.0)
    old, new = ctx("aaaaaaaaaaaaaaaa", "1111111111111111"), ctx("bbbbbbbbbbbbbbbb", "2222222222222222", send_ready=False)
    store.add(old)
    store.add(new)
    assert store.for_peer(PEER) == [old, new]              # oldest first
    assert store.by_peer(PEER) is old                       # make before break: new not yet held by the peer
    new.send_ready = True
    assert store.by_peer(PEER) is new
    store.add(ctx("cccccccccccccccc", "3333333333333333", peer="other.example"))
    assert store.by_peer(PEER) is new and len(store.for_peer("other.example")) == 1


def test_removing_the_last_prins_context_ends_the_relation():
    store = ContextStore(lambda: 1_000.0)
    a, b = ctx("aaaaaaaaaaaaaaaa", "1111111111111111"), ctx("bbbbbbbbbbbbbbbb", "2222222222222222")
    store.add(a)
    store.add(b)
    store.set_relation(PEER, PeerRelation("PRINS", sender=PEER))
    store.remove(a)
    assert store.relation(PEER) is not None                 # b still carries it
    store.remove(b)
    assert store.relation(PEER) is None
    store.set_relation("tls.example", PeerRelation("TLS"))
    store.set_relation("tls.example", None)
    assert store.relation("tls.example") is None


def test_the_pair_uses_opposite_directions():
    master = secrets.token_bytes(32)
    keys = kdf.derive_session_keys(master, A, B, "A256GCM")
    init = N32fContext(A, B, "initiator", PEER, (), "A256GCM", "ES256", keys, master, created=0.0)
    resp = N32fContext(B, A, "responder", PEER, (), "A256GCM", "ES256", keys, master, created=0.0)
    assert (init.initiator_context_id, init.responder_context_id) == (A, B)
    assert (resp.initiator_context_id, resp.responder_context_id) == (A, B)
    for kind in ("request", "response"):
        send_key, _, _ = init.send_params(kind)
        recv_key, _, _, _ = resp.receive_params(kind)
        assert send_key == recv_key and send_key != init.receive_params(kind)[0]
    assert init.send_params("request")[0] != init.send_params("response")[0]
    assert init.expires == 86400.0 and not init.needs_rekey



def test_needs_rekey_is_remaining_below_the_margin_for_any_sending_counter():
    """The int comparison (issued > limit - margin) says what ``remaining < rekey_margin`` says,
    whichever counter advances, up to and past the margin and at exhaustion."""
    keys = kdf.derive_session_keys(secrets.token_bytes(64), A, B, "A128GCM")
    for role in ("initiator", "responder"):
        c = N32fContext(A, B, role, PEER, (), "A128GCM", "ES256", keys, b"m", rekey_margin=3, counter_limit=8, created=0.0)
        for kind in ("request", "response"):
            counter = c.sending(kind)[1]
            for _ in range(8):
                expected = any(x.remaining < c.rekey_margin for x in c.counters.values())
                assert c.needs_rekey is expected
                counter.next()
            assert c.needs_rekey and counter.remaining == 0
        c.rekey_margin = 0          # read per call, not frozen at construction
        assert c.needs_rekey is False


def test_peer_lookups_follow_every_add_and_remove():
    """by_peer/for_peer (indexed by peer) agree with a search over all contexts after random
    adds (new IDs and reused ones), removals, expiries and send_ready changes."""
    import random
    rng = random.Random(7)
    clock = Clock()
    store = ContextStore(lambda: clock.now)
    peers = [PEER, "sepp.other.example", "sepp.third.example"]
    made = [ctx(f"{n:016x}", f"{n + 100:016x}", peer=rng.choice(peers), created=1_000.0 + n,
                lifetime=rng.choice([30.0, 300.0])) for n in range(12)]
    for _ in range(300):
        c = rng.choice(made)
        op = rng.random()
        if op < 0.4:
            store.add(c)
        elif op < 0.6:
            store.remove(c)
        elif op < 0.8:
            c.send_ready = not c.send_ready
        else:
            clock.now += rng.choice([0.0, 5.0])
        for peer in peers:
            live = sorted((x for x in store.all() if x.peer_fqdn == peer and x.expires > clock.now),
                          key=lambda x: x.seq)
            pick = [x for x in live if x.send_ready] or live
            assert store.for_peer(peer) == live
            assert store.by_peer(peer) is (max(pick, key=lambda x: x.seq) if pick else None)
