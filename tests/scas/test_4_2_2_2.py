"""TS 33.517 4.2.2.2: IPX and peer SEPP key material kept apart (definition: probe/cases/scas.py)."""
from .conftest import check


def test_4_2_2_2(probe):
    check(probe, "4.2.2.2")
