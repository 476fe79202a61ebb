"""TS 33.517 4.2.2.4: serving PLMN ID mismatch detected, reported on N32-c with the message ID (definition: probe/cases/scas.py)."""
import pytest

from .conftest import check


def test_4_2_2_4(probe):
    check(probe, "4.2.2.4")


@pytest.mark.xfail(strict=True, reason="not implemented in our SEPP: the consumer PLMN of an access token "
                   "(Authorization: Bearer, TS 29.510 AccessTokenClaims) is not compared with the N32-f context")
def test_4_2_2_4_access_token(probe):
    check(probe, "4.2.2.4-token")
