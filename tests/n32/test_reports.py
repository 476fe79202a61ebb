"""n32f-error reports: never for unauthenticated messages, coalesced, rate-limited per peer."""
from __future__ import annotations

from n32 import errors
from n32.errors import N32Error
from n32.reports import ErrorReports

P, Q = "sepp.5gc.mnc001.mcc001.3gppnetwork.org", "sepp.5gc.mnc002.mcc002.3gppnetwork.org"


def err(kind: str) -> N32Error:
    return N32Error(403, kind, "x", n32f_error_type=kind)


def test_no_report_for_messages_that_did_not_authenticate():
    r = ErrorReports()
    for kind in (errors.CONTEXT_NOT_FOUND, errors.INTEGRITY_CHECK_FAILED, errors.DECIPHERING_FAILED):
        assert r.offer(P, err(kind), "1", "0123456789abcdef", 0.0) is None
    assert r.offer(P, N32Error(400, "MANDATORY_IE_INCORRECT", "no type"), "1", None, 0.0) is None
    info = r.offer(P, err(errors.MODIFICATIONS_INSTRUCTIONS_FAILED), "7", "0123456789abcdef", 0.0)
    assert info == {"n32fMessageId": "7", "n32fErrorType": "MODIFICATIONS_INSTRUCTIONS_FAILED",
                    "n32fContextId": "0123456789abcdef"}


def test_fifty_bad_messages_give_one_report_per_window():
    r = ErrorReports(interval=1.0, per_interval=5)
    sent = [r.offer(P, err(errors.MESSAGE_RECONSTRUCTION_FAILED), str(i), "0123456789abcdef", i * 0.01)
            for i in range(50)]
    assert sum(s is not None for s in sent) == 1
    assert r.take_suppressed() == {(P, "MESSAGE_RECONSTRUCTION_FAILED", "0123456789abcdef"): 49}
    assert r.offer(P, err(errors.MESSAGE_RECONSTRUCTION_FAILED), "x", "0123456789abcdef", 1.0) is not None


def test_rate_limit_per_peer_across_contexts_and_types():
    r = ErrorReports(interval=1.0, per_interval=3)
    sent = [r.offer(P, err(errors.MESSAGE_RECONSTRUCTION_FAILED), "1", f"{i:016x}", 0.5) for i in range(10)]
    assert sum(s is not None for s in sent) == 3
    assert r.offer(Q, err(errors.MESSAGE_RECONSTRUCTION_FAILED), "1", None, 0.5) is not None   # other peer
