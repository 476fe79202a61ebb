"""N32-c negotiation matrix and schema conformance (definitions: probe/cases/n32c.py)."""
import pytest

from .conftest import check


@pytest.mark.parametrize("case_id", ["n32c.negotiation", "n32c.schema"])
def test_n32c(probe, case_id):
    check(probe, case_id)
