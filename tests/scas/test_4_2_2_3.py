"""TS 33.517 4.2.2.3: an IPX key learnt on another N32 connection does not validate patches here (definition: probe/cases/scas.py)."""
from .conftest import check


def test_4_2_2_3(probe):
    check(probe, "4.2.2.3")
