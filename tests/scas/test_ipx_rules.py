"""IPX patch rules (definition: probe/cases/scas.py). The two-IPX chain relayed by the home
operator's IPX is tests/integration/test_ipx.py."""
from .conftest import check


def test_ipx_rules(probe):
    check(probe, "ipx.rules")
