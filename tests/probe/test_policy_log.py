"""SCAS 4.2.2.6 allows "error or log": a target configured only to log a protection policy
mismatch passes when the probe can read its log (target.log), and fails when it cannot see any
sign of the mismatch (the same target with its log hidden from the probe)."""
from __future__ import annotations

import dataclasses

from probe import Probe

from ..scas.target import our_sepp


def _log_only(cfg: dict) -> None:
    cfg["peers"][0]["options"] = {"policy_mismatch": "log"}


def test_a_logged_policy_mismatch_passes_only_when_the_log_is_visible(tmp_path):
    with our_sepp(tmp_path / "pki", tmp_path / "out", "prins", tweak=_log_only) as cfg:
        with Probe(cfg) as p:
            seen = p.run_case("4.2.2.6")
        blind = dataclasses.replace(cfg, target=dataclasses.replace(cfg.target, log=None))
        with Probe(blind) as p:
            unseen = p.run_case("4.2.2.6")
    assert seen.verdict == "passed", seen
    assert any("in the target's log" in e.get("got", "") and e["lines"] for e in seen.evidence)
    assert unseen.verdict == "failed" and "set target.log" in unseen.reason
