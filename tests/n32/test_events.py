"""n32.events: the events the N32 state machines emit, dispatched by type."""
from __future__ import annotations

import secrets

from n32 import kdf
from n32.context import N32fContext
from n32.errors import POLICY_MISMATCH
from n32.events import ContextEstablished, ContextTerminated, N32Event, PolicyMismatch, RelationEstablished

PEER = "sepp.5gc.mnc070.mcc999.3gppnetwork.org"


def _ctx() -> N32fContext:
    master = secrets.token_bytes(32)
    keys = kdf.derive_session_keys(master, "a" * 16, "b" * 16, "A256GCM")
    return N32fContext("a" * 16, "b" * 16, "initiator", PEER, (), "A256GCM", "ES256", keys, master, created=0.0)


def test_context_events_name_the_contexts_peer_unless_told():
    c = _ctx()
    assert ContextEstablished(c).peer == PEER and ContextTerminated(c).peer == PEER
    assert ContextEstablished(c, peer="other.example").peer == "other.example"


def test_events_are_dispatched_by_class():
    seen = []
    for ev in (RelationEstablished(PEER, "TLS"), ContextEstablished(_ctx())):
        assert isinstance(ev, N32Event)
        match ev:
            case RelationEstablished(capability=cap):
                seen.append(cap)
            case ContextEstablished(context=c):
                seen.append(c.local_context_id)
    assert seen == ["TLS", "a" * 16]


def test_policy_mismatch_carries_the_n32f_error_it_reports():
    params = [{"param": "/dataTypeEncPolicy", "reason": "differs"}]
    err = PolicyMismatch(PEER, None, params, report=True).error()
    # TS 29.573 §6.1.5.2.6 N32fErrorType POLICY_MISMATCH, answered 403
    assert (err.status, err.cause, err.n32f_error_type) == (403, POLICY_MISMATCH, POLICY_MISMATCH)
    assert err.invalid_params == params
