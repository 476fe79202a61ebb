"""Inter-PLMN routing refusals and TLS-mode forwarding (definitions: probe/cases/edges.py)."""
import pytest

from .conftest import check


@pytest.mark.parametrize("case_id", ["routing.foreign", "tls.target-apiroot", "tls.relation"])
def test_routing(probe, case_id):
    check(probe, case_id)


def test_dot_segments(probe):
    check(probe, "routing.dot-segments")
