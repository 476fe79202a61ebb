"""TS 33.517 4.2.2.9: telescopic FQDN and 3gpp-Sbi-Target-apiRoot must agree (definition: probe/cases/scas.py)."""
from .conftest import check


def test_4_2_2_9(probe):
    check(probe, "4.2.2.9")
