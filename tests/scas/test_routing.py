"""Inter-PLMN routing refusals and TLS-mode forwarding (definitions: probe/cases/edges.py)."""
import pytest

from .conftest import check


@pytest.mark.parametrize("case_id", ["routing.foreign", "tls.target-apiroot", "tls.relation"])
def test_routing(probe, case_id):
    check(probe, case_id)


@pytest.mark.xfail(strict=True, reason="fix pending: dot segments are forwarded verbatim (RFC 3986 §5.2.4)")
def test_dot_segments(probe):
    check(probe, "routing.dot-segments")
