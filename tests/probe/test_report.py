"""Report rendering and configuration errors of the probe (no target needed)."""
from __future__ import annotations

import json
from xml.etree import ElementTree as ET

import pytest

from probe import Report, Result, from_dict
from probe.config import ProbeConfigError


def _report() -> Report:
    return Report("https://sepp.example:443", [
        Result("4.2.2.7", "JWS other than ES256 discarded", "TS 33.517 4.2.2.7", "failed", "alg none accepted",
               [{"sent": "a patch signed with alg none"}, {"got": "answer", "status": 200}], 0.5),
        Result("4.2.2.10", "apiRoot rewritten", "TS 33.517 4.2.2.10", "not applicable", "the target negotiated TLS"),
        Result("4.2.5", "trust anchoring", "TS 33.517 4.2.5", "passed", "", [{"sent": "C1"}], 0.2),
    ])


def test_table_json_and_junit_carry_verdict_evidence_and_clause():
    rep = _report()
    assert not rep.ok and rep.failed() == ["4.2.2.7"]
    table = rep.table()
    assert "alg none accepted" in table and "clause: TS 33.517 4.2.2.7" in table
    assert "1 passed, 1 failed, 0 errors, 1 not applicable" in table
    doc = json.loads(rep.to_json())
    assert doc["counts"]["failed"] == 1 and doc["results"][0]["evidence"][1]["status"] == 200
    suite = ET.fromstring(rep.junit())
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("3", "1", "1")
    failure = suite.find("testcase/failure")
    assert failure is not None and "TS 33.517 4.2.2.7" in failure.get("message") and "alg none" in failure.text


@pytest.mark.parametrize("raw,message", [
    ({}, "target: n32c, fqdn and plmn_ids are required"),
    ({"target": {"n32c": "https://x:1", "fqdn": "s", "plmn_ids": ["001-01"], "ca": "ca.crt"}},
     "peer: fqdn and plmn_ids are required"),
    ({"target": {"n32c": "https://x:1", "fqdn": "s", "plmn_ids": ["001-01"], "ca": "ca.crt"},
      "peer": {"fqdn": "p", "plmn_ids": ["999-70"], "certificate": "c", "private_key": "k"}, "nf": {}},
     "nf.listen is required"),
    ({"target": {"n32c": "https://x:1", "fqdn": "s", "plmn_ids": ["001-01"], "ca": "ca.crt"},
      "peer": {"fqdn": "p", "plmn_ids": ["999-70"], "certificate": "c", "private_key": "k", "n32c_listen": "7777"},
      "nf": {"listen": "127.0.0.1:1"}}, "expected host:port"),
])
def test_configuration_errors_name_the_key(raw, message):
    with pytest.raises(ProbeConfigError, match=message):
        from_dict(raw)
