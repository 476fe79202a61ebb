"""TS 33.517 4.2.2.10: under PRINS the NF receives the rewritten apiRoot and no 3gpp-Sbi-Target-apiRoot (definition: probe/cases/scas.py)."""
from .conftest import check


def test_4_2_2_10(probe):
    check(probe, "4.2.2.10")
