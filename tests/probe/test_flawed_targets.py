"""The probe catches planted flaws: our SEPP with one check patched out in the target process
(an addon script from tests/probe/flaws/ loaded before the SEPP's; the product has no such
switch). Each flaw must make exactly its case fail, with its clause, and nothing else: the
failing set is compared with a run against the unflawed SEPP (which may still fail cases whose
fix is pending elsewhere). The targets run side by side (each its own ports and probe)."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from probe import Probe, Report

from ..scas.target import make_pki, our_sepp

FLAWS = Path(__file__).parent / "flaws"
PLANTED = {  # flaw script -> (case that must fail, the clause it names)
    "wrong_ca": ("4.2.5", "TS 33.517 4.2.5"),
    "replay": ("n32f.replay", "TS 33.501 §13.2.4.4.1"),
    "alg_none": ("4.2.2.7", "TS 33.517 4.2.2.7"),
    "cleartext": ("listener.cleartext", "TS 33.501 §13.1"),
    "dot_segments": ("routing.dot-segments", "RFC 3986 §5.2.4"),
    "ipx_keys_global": ("4.2.2.3", "TS 33.517 4.2.2.3"),
    "clear_av": ("4.2.2.5", "TS 33.517 4.2.2.5"),
    "server_plmns": ("4.2.5", "TS 33.517 4.2.5"),
}


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, Report]:
    pki = tmp_path_factory.mktemp("flawpki")
    certs = make_pki(pki)

    def run(flaw: str | None) -> Report:
        out = tmp_path_factory.mktemp(flaw or "baseline")
        flaws = (FLAWS / f"{flaw}.py",) if flaw else ()
        with our_sepp(pki, out, "prins", flaws, certs) as cfg, Probe(cfg) as p:
            return p.run()

    names = [None, *PLANTED]
    with ThreadPoolExecutor(len(names)) as pool:
        return dict(zip(["baseline", *PLANTED], pool.map(run, names)))


@pytest.mark.parametrize("flaw", list(PLANTED))
def test_the_probe_reports_exactly_the_planted_flaw(flaw, reports):
    case_id, clause = PLANTED[flaw]
    base, rep = set(reports["baseline"].failed()), reports[flaw]
    assert case_id not in base, f"{case_id} fails against the unflawed SEPP too:\n{reports['baseline'].table()}"
    result = rep.by_case()[case_id]
    assert result.verdict == "failed", rep.table()
    assert clause in result.clause and result.evidence
    assert set(rep.failed()) == base | {case_id}, rep.table()
