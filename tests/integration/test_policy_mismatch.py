"""Protection policy mismatch on N32-c (TS 33.501 §13.2.3.6, SCAS TS 33.517 4.2.2.6): the
responder detects it and, as configured, reports n32f-error POLICY_MISMATCH to the initiator over
its own second N32-c connection (seed step 5), or only logs it."""
from __future__ import annotations

import pytest
import yaml

from lab import procs as P
from lab.run import start_lab
from lab.topology import ROOT, Lab

from .test_n32f_prins import _log_has


def _lab(pki, tmp, mode: str) -> Lab:
    lab = Lab(out=tmp, pki=pki)
    policy = yaml.safe_load((ROOT / "policies/data-type-encryption.yaml").read_text())
    policy["generic"]["encrypt"] = [t for t in policy["generic"]["encrypt"] if t != "UEID"]  # SUPI in clear
    (tmp / "enc.yaml").write_text(yaml.safe_dump(policy))
    lab.overrides["sepp-h"] = {"policies": {"encryption": str(tmp / "enc.yaml"),
                                            "placement": [str(ROOT / "policies/placement")],
                                            "modification": str(ROOT / "policies/modification.yaml")}}
    lab.peer_overrides["sepp-h"] = {"options": {"policy_mismatch": mode}}
    return lab


@pytest.mark.parametrize("mode", ["report", "log"])
def test_policy_mismatch_is_reported_or_logged(pki, tmp_path, mode):
    lab = _lab(pki, tmp_path, mode)
    with P.Procs(lab.out) as procs:
        start_lab(lab, procs)
        assert _log_has(lab, "sepp-h", "protection policy mismatch", "/dataTypeEncPolicy")
        # the initiator compares too and sees the same difference from its side
        assert _log_has(lab, "sepp-v", "protection policy mismatch")
        reported = _log_has(lab, "sepp-v", "n32f-error from sepp.5gc.mnc070.mcc999.3gppnetwork.org",
                            "POLICY_MISMATCH", timeout=3 if mode == "log" else 8)
        assert reported == (mode == "report")
        if mode == "report":
            # delivered on a second N32-c connection that the responder opened towards the initiator
            assert _log_has(lab, "sepp-h", "N32-c n32f-error to sepp.5gc.mnc001.mcc001.3gppnetwork.org: 204")
