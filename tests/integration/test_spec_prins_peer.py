"""Spec-conformant PRINS peers against our real SEPPs (issue 17, points 6 and 7).

* Point 6: both SEPPs toward a peer not known to accept our extensions (``extensions: []``),
  each behind its IPX, which patches messages: the peer IPX's rights travel only as the standard
  ``IeInfo.isModifiableByIpx`` of round 2 (no ``modificationPolicy``, no ``n32cParameters``),
  and the receiving SEPPs still accept those patches (no ``MODIFICATIONS_INSTRUCTIONS_FAILED``).
* Point 7: a peer whose certificate is for 001-01 announcing 002-02 in ``plmnIdList`` (open5gs's
  exchange-capability body otherwise) is refused by the real N32-c server with 403
  ``PLMN_NOT_ALLOWED`` naming ``plmnIdList``.
"""
from __future__ import annotations

import json
from pathlib import Path

import policies

from lab import procs as P
from lab.run import client_ssl, ipx_counts, start_lab
from lab.topology import HOME, VISITED, Lab, sepp_fqdn
from lab.traffic import run_scenario

from .conftest import n32c_post, run


def _placement_with_a_modifiable_header(d: Path) -> Path:
    """The shipped placement, plus the clear ``user-agent`` header (NONSENSITIVE) of the AUSF
    request: an IE the standard form can mark ``isModifiableByIpx`` (the shipped placement names
    only encrypted IEs, and spec-only peers send no generic "*" mapping)."""
    import shutil

    out = d / "placement"
    shutil.copytree(policies.PLACEMENT, out)
    f = out / "nausf-auth.yaml"
    text = f.read_text()
    anchor = "      - {pointer: /supiOrSuci, type: UEID}\n"
    assert anchor in text
    f.write_text(text.replace(anchor, anchor + "      - {header: user-agent, type: NONSENSITIVE}\n", 1))
    return out


def test_spec_only_prins_peers_take_the_standard_is_modifiable_by_ipx(pki, tmp_path_factory):
    out = tmp_path_factory.mktemp("spec-ipx")
    lab = Lab(out=out, pki=pki, mode="prins", ipx=True)
    placement = _placement_with_a_modifiable_header(out)
    pol = {"encryption": str(policies.ENCRYPTION), "placement": [str(placement)],
           "modification": str(policies.MODIFICATION)}
    for name in ("sepp-v", "sepp-h"):
        lab.peer_overrides[name] = {"options": {"extensions": []}}
        lab.overrides[name] = {"policies": pol}
    lab.ipx_rules = {"ipx1.ipx.lab": [{"direction": "request", "method": "POST",
                                       "path": "^/nausf-auth/v1/ue-authentications$",
                                       "set_headers": {"user-agent": "AMF (via ipx1)"}}],
                     "ipx2.ipx.lab": []}
    with P.Procs(lab.out) as procs:
        info = start_lab(lab, procs)
        assert info["status"]["visited"]["capability"] == "PRINS"
        results = run(run_scenario(f"https://127.0.0.1:{lab.port('sepp-v.sbi')}", 1, 1, client_ssl(lab)))
        assert all(r.ok for r in results), [(r.api, r.status, r.error) for r in results if not r.ok]
    log_h = (lab.out / "sepp-h.log").read_text(errors="replace")
    assert "MODIFICATIONS_INSTRUCTIONS_FAILED" not in log_h
    assert "modificationPolicy" not in log_h
    assert ipx_counts(lab.out)["ipx1.ipx.lab"]["requests"] == 1       # the AUSF request, patched and accepted
    got = [json.loads(line) for line in (lab.out / "nf-home.requests.jsonl").read_text().splitlines()]
    auth = next(r for r in got if r["path"] == "/nausf-auth/v1/ue-authentications")
    assert dict(auth["headers"])["user-agent"] == "AMF (via ipx1)"


def test_announced_plmn_not_covered_by_the_certificate_is_refused(prins_lab):
    lab, _ = prins_lab
    body = {"sender": sepp_fqdn(VISITED), "supportedSecCapabilityList": ["TLS"],
            "3GppSbiTargetApiRootSupported": True, "plmnIdList": [{"mcc": "002", "mnc": "02"}],
            "supportedFeatures": "1"}
    rsp = run(n32c_post(lab, HOME, "exchange-capability", body))
    assert rsp.status == 403 and rsp.json()["cause"] == "PLMN_NOT_ALLOWED", rsp.body
    assert any(p["param"].startswith("/plmnIdList") or p["param"] == "plmnIdList"
               for p in rsp.json()["invalidParams"]), rsp.json()
    ok = run(n32c_post(lab, HOME, "exchange-capability", {**body, "plmnIdList": [{"mcc": "001", "mnc": "01"}]}))
    assert ok.status == 200 and ok.json()["selectedSecCapability"] == "TLS"
