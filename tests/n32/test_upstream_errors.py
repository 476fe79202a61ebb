"""n32.upstream_errors: the ProblemDetails for each failed hop (TS 29.500 Table 5.2.7.2-1, TS 29.573)."""
from __future__ import annotations

import pytest

from n32 import upstream_errors as ue


@pytest.mark.parametrize("hop,kind,status,cause", [
    (ue.NF, ue.UNREACHABLE, 504, "TARGET_NF_NOT_REACHABLE"),
    (ue.NF, ue.RESET, 504, "TARGET_NF_NOT_REACHABLE"),
    (ue.PEER, ue.UNREACHABLE, 502, "N32_PEER_NOT_REACHABLE"),
    (ue.IPX, ue.TLS, 502, "N32_PEER_NOT_REACHABLE"),
    (ue.PEER, ue.RESET, 502, "N32F_FORWARDING_FAILED"),
    (ue.NEXT, ue.PROTOCOL, 502, "N32F_FORWARDING_FAILED"),
    (ue.PEER, ue.TIMEOUT, 504, "TIMED_OUT_REQUEST"),
])
def test_status_and_cause_per_hop_and_kind(hop, kind, status, cause):
    e = ue.upstream_failure(hop, kind, 2.5)
    assert (e.status, e.cause) == (status, cause)
    assert ":" not in e.detail or "2.5 s" in e.detail          # names the hop, never an address or port


def test_timeout_names_the_deadline_and_unknowns_are_refused():
    assert "within 2.5 s" in ue.upstream_failure(ue.NF, ue.TIMEOUT, 2.5).detail
    assert "within" not in ue.upstream_failure(ue.NF, ue.TIMEOUT).detail
    with pytest.raises(ValueError):
        ue.upstream_failure("elsewhere", ue.RESET)
    with pytest.raises(ValueError):
        ue.upstream_failure(ue.NF, "melted")
