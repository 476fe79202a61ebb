"""TS 33.517 4.2.5: trust anchoring by PLMN ID (C1/C2 accepted, C3/C4 refused; server and client roles) (definition: probe/cases/scas.py)."""
from .conftest import check


def test_4_2_5(probe):
    check(probe, "4.2.5")
