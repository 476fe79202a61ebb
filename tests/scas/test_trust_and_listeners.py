"""Trust on N32 and cleartext on TLS listeners (definitions: probe/cases/edges.py)."""
import pytest

from .conftest import check


@pytest.mark.parametrize("case_id", ["trust.certificates", "trust.sender", "listener.cleartext"])
def test_trust_and_listeners(probe, case_id):
    check(probe, case_id)
