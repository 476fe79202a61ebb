"""``python -m bench.workers``: one SEPP as k = 1, 2, 4 worker processes (issue 14 goal 3).

The PRINS pair of ``make bench`` (same nghttpd NF over TLS, same Nausf POST, slim runner), with
each SEPP run as k workers behind HAProxy (lab/workers.py; k = 1 is the plain pair without
HAProxy). h2load ``-c4 -m10`` opens 4 connections, which HAProxy spreads over the workers.

CPU seconds per request are read from ``/proc/<pid>/stat`` around the throughput run, summed over
the workers of a SEPP and given per SEPP (``cpu_us_per_req``: the mean of the two SEPPs), so k = 1
and k = 4 compare the work one SEPP does for one request; HAProxy's share is given apart
(``haproxy_us_per_req``, per SEPP). On a machine with fewer cores than workers throughput cannot
grow; the figure that must hold is CPU per request within 10 % of k = 1 (no coordination cost
between workers), which predicts throughput linear in cores.

Writes ``bench/out/workers.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

from bench.run import OUT, PATH, Bench, Row, measure
from lab import procs as P
from lab.topology import HOME, ROOT, Lab

SEPPS = ("sepp-v", "sepp-h")


def run_k(bench: Bench, k: int, mode: str) -> Row:
    from lab.run import start_lab

    name = f"{mode.upper()} pair, {k} worker{'s' * (k > 1)}"
    with P.Procs(bench.work / f"{mode}-k{k}") as procs:
        lab = Lab(out=procs.out, pki=bench.pki, mode=mode, workers=k)
        home_ca = bench.pki / f"plmn-{HOME['plmn']}" / "ca.crt"
        lab.overrides["sepp-h"] = {"home_nfs": {"default": bench.nf_uri, "trust_anchor": str(home_ca)}}
        start_lab(lab, procs, slim=True)
        pids = {p.name: p.popen.pid for p in procs.procs if p.name.startswith(SEPPS)}
        assert bench.nf is not None
        url = f"https://127.0.0.1:{lab.port('sepp-v.sbi')}{PATH}"
        row = measure(name, url, {**pids, "nf": bench.nf.popen.pid}, bench.work, bench.n_lat, bench.n_tp)
    by = row.cpu_us_per_req_by_process
    workers = [v for p, v in by.items() if p != "nf" and not p.endswith("haproxy")]
    proxies = [v for p, v in by.items() if p.endswith("haproxy")]
    row.cpu_us_per_req = round(sum(workers) / len(SEPPS), 1)
    row.kind = f"workers-{k}"
    row.added_latency_ms = None
    setattr(row, "haproxy_us_per_req", round(sum(proxies) / len(SEPPS), 1) if proxies else 0.0)
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=2000, help="requests per throughput run (-c4 -m10)")
    ap.add_argument("--latency-n", type=int, default=200, help="requests per latency run (-c1 -m1)")
    ap.add_argument("-k", type=int, action="append", default=[], help="worker counts (default 1 2 4)")
    ap.add_argument("--mode", choices=("prins", "tls"), default="prins")
    args = ap.parse_args(argv)
    for tool in ("h2load", "nghttpd"):
        if not shutil.which(tool):
            print(f"{tool} not found: apt-get install nghttp2-client nghttp2-server", file=sys.stderr)
            return 2
    from certs.pki import ensure_lab_pki

    pki = ROOT / "certs/out"
    ensure_lab_pki(pki)
    OUT.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="mitm-sepp-bench-workers-"))
    bench = Bench(work, pki, args.latency_n, args.n)
    print(f"bench.workers: {args.mode} pair as k workers per SEPP behind HAProxy, throughput -c4 -m10 -n {args.n}; "
          f"{os.cpu_count()} cores, load now {os.getloadavg()[0]:.2f}", flush=True)
    rows: list[dict] = []
    with P.Procs(work) as nf_procs:
        bench.start_nf(nf_procs)
        for k in args.k or [1, 2, 4]:
            row = run_k(bench, k, args.mode)
            rows.append({**asdict(row), "workers": k, "haproxy_us_per_req": getattr(row, "haproxy_us_per_req")})
    base = rows[0]
    print(f"\n{'configuration':26} {'req/s':>8} {'mean ms':>8} {'p99 ms':>8} {'CPU µs/req/SEPP':>16} "
          f"{'x k=' + str(base['workers']):>8} {'HAProxy µs/req':>15} failed")
    for r in rows:
        r["cpu_ratio_to_k1"] = round(r["cpu_us_per_req"] / base["cpu_us_per_req"], 3)
        print(f"{r['name']:26} {r['req_s']:8.0f} {r['latency_ms_mean']:8.2f} {r['latency_ms_p99']:8.2f} "
              f"{r['cpu_us_per_req']:16.0f} {r['cpu_ratio_to_k1']:8.3f} {r['haproxy_us_per_req']:15.0f} {r['failed']}")
    (OUT / "workers.json").write_text(json.dumps(rows, indent=1))
    print(f"\nwrote {OUT / 'workers.json'}; load now {os.getloadavg()[0]:.2f}")
    shutil.rmtree(work, ignore_errors=True)
    return 0 if all(r["failed"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
