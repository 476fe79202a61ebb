"""The TS 33.517 SEPP cases against our own SEPP: one target per N32-f mode for the whole
session (PRINS and TLS), the probe playing its peer SEPP, the peer's IPX and its home NF."""
from __future__ import annotations

import json

import pytest

from probe import Probe

from .target import our_sepp


@pytest.fixture(scope="session", params=["prins", "tls"])
def probe(request, tmp_path_factory):
    d = tmp_path_factory.mktemp(f"scas-{request.param}")
    with our_sepp(d / "pki", d / "out", request.param) as cfg, Probe(cfg) as p:
        yield p


def check(probe: Probe, case_id: str) -> None:
    """Run the shared definition of ``case_id``; passed, or skipped when not applicable."""
    r = probe.run_case(case_id)
    if r.verdict == "not applicable":
        pytest.skip(f"{case_id}: {r.reason}")
    assert r.verdict == "passed", (f"{r.case} {r.verdict}: {r.reason}\nclause: {r.clause}\nevidence:\n"
                                   + json.dumps(r.evidence, indent=1, default=str)[:6000])
