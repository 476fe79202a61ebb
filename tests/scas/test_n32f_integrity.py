"""N32-f integrity and replay (definitions: probe/cases/n32f.py)."""
import pytest

from .conftest import check


@pytest.mark.parametrize("case_id", ["n32f.tampered", "n32f.replay", "n32f.context", "n32f.crafted"])
def test_n32f_integrity_and_replay(probe, case_id):
    check(probe, case_id)
