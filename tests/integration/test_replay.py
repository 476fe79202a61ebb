"""lab/scenario.flows replayed with ``mitmdump -C`` through the PRINS SEPP pair reaches the home
NFs (README "Replay"); lab/replay.py retargets the file to the lab's cSEPP and records
deterministically."""
from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

from lab import procs as P
from lab.replay import read_flows, retarget
from lab.topology import ROOT, VISITED

from .conftest import run
from .test_n32f_prins import nf

FLOWS = ROOT / "lab/scenario.flows"


def test_shipped_file_is_small_and_keyless():
    data = FLOWS.read_bytes()
    assert len(data) < 200_000
    assert b"PRIVATE KEY" not in data and b"masterKey" not in data
    flows = read_flows(FLOWS)
    assert flows and all(f.response is None for f in flows)
    assert {f.request.host for f in flows} == {"127.0.0.1"}
    assert all(f.request.headers.get("3gpp-sbi-target-apiroot") for f in flows)


def test_client_replay_reaches_home_nfs(prins_lab, tmp_path: Path):
    lab, _ = prins_lab
    flows = tmp_path / "scenario.flows"
    n = retarget(FLOWS, flows, f"https://127.0.0.1:{lab.port('sepp-v.sbi')}")
    run(nf(lab, "POST", "/_lab/reset"))
    ca = lab.pki / f"plmn-{VISITED['plmn']}" / "ca.crt"
    proc = subprocess.run([str(P.BIN / "mitmdump"), "-n", "-C", str(flows),
                           "--set", f"ssl_verify_upstream_trusted_ca={ca}",
                           "--set", "client_replay_concurrency=1", "--set", "flow_detail=1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    received = [r for r in json.loads(run(nf(lab, "GET", "/_lab/received"))) if not r["path"].startswith("/_lab")]
    sent = [(f.request.method, f.request.path.split("?")[0]) for f in read_flows(flows)]
    assert [(r["method"], r["path"]) for r in received] == sent
    assert len(received) == n
    # the PRINS pair restored what the NF side sent (first UE's SUCI arrived at the AUSF)
    auth = next(r for r in received if r["path"] == "/nausf-auth/v1/ue-authentications")
    assert json.loads(base64.b64decode(auth["body"]))["supiOrSuci"].startswith("suci-0-999-70-")
    # replayed against a fresh lab, every step succeeds (the lab NFs are deterministic)
    statuses = [line.split()[2] for line in proc.stdout.splitlines() if line.strip().startswith("<< HTTP")]
    assert len(statuses) == n and all(s.startswith("2") for s in statuses), proc.stdout[-3000:]


def test_recording_is_deterministic(prins_lab, tmp_path: Path):
    """Two recordings of one UE against fresh NF state give the same requests as the shipped file."""
    import asyncio

    from lab.replay import record
    from lab.run import client_ssl

    lab, _ = prins_lab
    target = f"https://127.0.0.1:{lab.port('sepp-v.sbi')}"
    run(nf(lab, "POST", "/_lab/reset"))
    flows, problems = asyncio.run(record(target, 1, client_ssl(lab)))
    shipped = read_flows(FLOWS)[:len(flows)]
    assert [(f.request.method, f.request.path, f.request.content) for f in flows] == \
        [(f.request.method, f.request.path, f.request.content) for f in shipped]


def test_replay_next_to_a_lab_that_has_run(prins_lab, tmp_path: Path):
    """The README's replay against `make lab KEEP=1` (which ran UEs 1..UES): every step 2xx, with the
    summary addon's count; a second replay meets the SQN moved on (404 on both confirmations)."""
    from lab.run import run_traffic

    lab, _ = prins_lab
    run(nf(lab, "POST", "/_lab/reset"))
    assert all(r.ok for r in run_traffic(lab, 3))
    flows = tmp_path / "scenario.flows"
    retarget(FLOWS, flows, f"https://127.0.0.1:{lab.port('sepp-v.sbi')}")
    ca = lab.pki / f"plmn-{VISITED['plmn']}" / "ca.crt"
    argv = [str(P.BIN / "mitmdump"), "-n", "-q", "-C", str(flows), "-s", str(ROOT / "lab/replay_summary.py"),
            "--set", f"ssl_verify_upstream_trusted_ca={ca}"]
    first = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert "replay: 16 flow(s): 16 2xx" in first.stdout, first.stdout[-3000:] + first.stderr[-2000:]
    again = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert "replay: 16 flow(s): 14 2xx, 2 4xx" in again.stdout, again.stdout[-3000:]
    assert again.stdout.count("5g-aka-confirmation -> 404 CONTEXT_NOT_FOUND") == 2, again.stdout
