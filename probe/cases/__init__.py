"""The case registry: ``CASES`` maps a case ID (a TS 33.517 clause, or ``area.name`` for the
further issue-16 cases) to its one definition, shared by ``python -m probe`` and tests/scas/."""
from __future__ import annotations

from ..runner import Case

CASES: dict[str, Case] = {}


def case(cid: str, title: str, clause: str, modes: tuple[str, ...] = ("PRINS", "TLS")):
    """Register ``fn(env, trace)`` as case ``cid`` (``modes``: the target's N32-f modes it applies to)."""
    def register(fn):
        CASES[cid] = Case(cid, title, clause, fn, modes)
        return fn
    return register


from . import scas, trust, ipx, n32f, n32c, edges, fuzz  # noqa: E402,F401  (registers the cases, in this order)
