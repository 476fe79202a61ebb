"""TS 33.517 4.2.2.7: JWS other than ES256 discarded (definition: probe/cases/scas.py)."""
from .conftest import check


def test_4_2_2_7(probe):
    check(probe, "4.2.2.7")
