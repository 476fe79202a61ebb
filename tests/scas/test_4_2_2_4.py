"""TS 33.517 4.2.2.4: serving PLMN ID mismatch detected, reported on N32-c with the message ID (definition: probe/cases/scas.py)."""
from .conftest import check


def test_4_2_2_4(probe):
    check(probe, "4.2.2.4")


def test_4_2_2_4_access_token(probe):
    """The consumer PLMN of the access token (Authorization: Bearer, TS 29.510 AccessTokenClaims)."""
    check(probe, "4.2.2.4-token")
