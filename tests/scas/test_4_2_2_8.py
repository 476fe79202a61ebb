"""TS 33.517 4.2.2.8: an IPX placing encBlockIndex into a clear IE: discarded and reported (definition: probe/cases/scas.py)."""
from .conftest import check


def test_4_2_2_8(probe):
    check(probe, "4.2.2.8")
