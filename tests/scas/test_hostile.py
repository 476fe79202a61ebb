"""Hostile bodies (definition: probe/cases/n32f.py)."""
import pytest

from .conftest import check


@pytest.mark.xfail(strict=True, reason="fix pending: JSON depth limit (RecursionError -> 500)")
def test_deep_json_is_a_client_error(probe):
    check(probe, "hostile.depth")
