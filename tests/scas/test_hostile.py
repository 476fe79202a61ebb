"""Hostile bodies (definition: probe/cases/n32f.py)."""
from .conftest import check


def test_deep_json_is_a_client_error(probe):
    check(probe, "hostile.depth")


def test_oversized_bodies_are_refused(probe):
    check(probe, "hostile.size")


def test_mutated_n32f_messages(probe):
    check(probe, "fuzz.n32f")
