"""TS 33.517 4.2.2.5: IEs the policy encrypts travel as encBlockIndex (definition: probe/cases/scas.py)."""
from .conftest import check


def test_4_2_2_5(probe):
    check(probe, "4.2.2.5")
