"""``python -m probe`` end to end: config file, case selection, table, JSON, JUnit, exit status."""
from __future__ import annotations

import json
import subprocess
import sys
from xml.etree import ElementTree as ET

from lab.topology import ROOT

from ..scas.target import our_sepp


def test_cli_reports_table_json_and_junit(tmp_path):
    out = tmp_path / "out"
    with our_sepp(tmp_path / "pki", out, "prins"):
        argv = [sys.executable, "-m", "probe", "--config", str(out / "probe.yaml"), "--case", "4.2.2.7",
                "--case", "4.2.2.5", "--case", "tls.relation", "--json", str(tmp_path / "r.json"),
                "--junit", str(tmp_path / "r.xml")]
        done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4.2.2.7" in done.stdout and "2 passed, 0 failed, 0 errors, 1 not applicable" in done.stdout
    report = json.loads((tmp_path / "r.json").read_text())
    verdicts = {r["case"]: r["verdict"] for r in report["results"]}
    assert verdicts == {"4.2.2.7": "passed", "4.2.2.5": "passed", "tls.relation": "not applicable"}
    assert all(r["evidence"] for r in report["results"] if r["verdict"] == "passed")
    suite = ET.parse(tmp_path / "r.xml").getroot()
    assert suite.get("tests") == "3" and suite.get("failures") == "0" and suite.get("skipped") == "1"


def test_cli_refuses_a_bad_config(tmp_path):
    (tmp_path / "p.yaml").write_text("target: {n32c: https://127.0.0.1:1}\n")
    done = subprocess.run([sys.executable, "-m", "probe", "--config", str(tmp_path / "p.yaml")], cwd=ROOT,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "target: n32c, fqdn and plmn_ids are required" in done.stderr
