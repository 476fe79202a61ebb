"""TS 33.517 4.2.2.6: protection policy mismatch answered with an error or reported (definition: probe/cases/scas.py)."""
from .conftest import check


def test_4_2_2_6(probe):
    check(probe, "4.2.2.6")
