"""``python -m bench.ab``: CPU per request of one SEPP against the slim floor, A/B across trees
(issue 14 goal 2: measure an optimisation before and after it, interleaved, in one window).

    python -m bench.ab [--tree OLD_CHECKOUT] [--rounds 2] [--only prins] [-n 2000] [--hold SECONDS]

One ``nghttpd`` over TLS (the NF of ``make bench``) serves every run. Each round starts, for every
tree (this one first, then each ``--tree``: a plain copy of an older commit, e.g. ``git archive``),
the slim floor pair, the TLS-mode pair and the PRINS pair one after the other, warms each up and
reads the CPU seconds of each proxy process from ``/proc`` around ``h2load -c4 -m10``; rounds
interleave the trees (A, B, A, B), so that other load on the machine hits both alike. Prints CPU µs
per request per proxy (and x floor), throughput and -c1 -m1 latency. ``--hold`` keeps each pair
under load that long before measuring and prints its PIDs (to profile it with py-spy).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.run import Bench, h2load, measure
from lab import procs as P
from lab.topology import ROOT

CONFIGS = {"floor": lambda b: b.slim_pair, "tls": lambda b: b.lab_pair("tls"), "prins": lambda b: b.lab_pair("prins")}


def one(args: argparse.Namespace) -> int:
    """Child: one configuration of this tree against the NF at ``--nf-port``; prints a JSON row."""
    work = Path(tempfile.mkdtemp(prefix="mitm-sepp-ab-"))
    (work / "request.json").write_bytes(Path(args.request).read_bytes())
    bench = Bench(work, Path(args.pki), args.latency_n, args.n)
    bench.nf_port = args.nf_port
    start = CONFIGS[args.config](bench)
    with P.Procs(work / args.config) as procs:
        url, pids = start(procs)
        if args.hold:
            print(json.dumps({"pids": pids}), file=sys.stderr, flush=True)
            stop = time.monotonic() + args.hold
            while time.monotonic() < stop:
                h2load(url, 400, 4, 10, work)
        row = measure(args.config, url, {**pids, "nf": args.nf_pid}, work, args.latency_n, args.n)
    shutil.rmtree(work, ignore_errors=True)
    print("ROW " + json.dumps({"config": args.config, "req_s": row.req_s, "lat_ms": row.latency_ms_mean,
                               "cpu": {k: v for k, v in row.cpu_us_per_req_by_process.items() if k != "nf"},
                               "failed": row.failed}), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tree", action="append", default=[], help="another checkout to compare (repeatable)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--only", action="append", default=[], choices=sorted(CONFIGS))
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("--latency-n", type=int, default=100)
    ap.add_argument("--hold", type=float, default=0.0)
    ap.add_argument("--one", choices=sorted(CONFIGS), help=argparse.SUPPRESS)
    ap.add_argument("--nf-port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--nf-pid", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--pki", help=argparse.SUPPRESS)
    ap.add_argument("--request", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        args.config = args.one
        return one(args)
    from certs.pki import ensure_lab_pki

    pki = ROOT / "certs/out"
    ensure_lab_pki(pki)
    work = Path(tempfile.mkdtemp(prefix="mitm-sepp-ab-"))
    bench = Bench(work, pki, args.latency_n, args.n)
    trees = [ROOT] + [Path(t).resolve() for t in args.tree]
    configs = args.only or ["floor", "tls", "prins"]
    results: dict[tuple[str, str], list[dict]] = {}
    print(f"load {os.getloadavg()}", flush=True)
    with P.Procs(work) as nf_procs:
        bench.start_nf(nf_procs)
        assert bench.nf is not None
        for rnd in range(args.rounds):
            for tree in trees:
                for config in configs:
                    argv = [sys.executable, "-m", "bench.ab", "--one", config, "--nf-port", str(bench.nf_port),
                            "--nf-pid", str(bench.nf.popen.pid), "--pki", str(pki), "-n", str(args.n),
                            "--latency-n", str(args.latency_n), "--hold", str(args.hold),
                            "--request", str(work / "request.json")]
                    # with --hold the child's stderr (the PIDs to profile) is shown as it comes
                    p = subprocess.run(argv, cwd=tree, stdout=subprocess.PIPE, text=True, timeout=900,
                                       stderr=None if args.hold else subprocess.PIPE)
                    line = next((ln for ln in p.stdout.splitlines() if ln.startswith("ROW ")), None)
                    if line is None:
                        print(f"{tree.name} {config}: FAILED\n{p.stdout[-1500:]}{(p.stderr or '')[-1500:]}", flush=True)
                        continue
                    row = json.loads(line[4:])
                    results.setdefault((tree.name, config), []).append(row)
                    print(f"round {rnd + 1} {tree.name:12} {config:6} {row['req_s']:7.0f} req/s {row['lat_ms']:6.2f} ms "
                          f"cpu/req {row['cpu']} failed {row['failed']}  load {os.getloadavg()[0]:.1f}", flush=True)
    print()
    for tree in trees:
        floor = results.get((tree.name, "floor"))
        f_cpu = statistics.fmean(v for r in floor for v in r["cpu"].values()) if floor else None
        for config in configs:
            rows = results.get((tree.name, config)) or []
            if not rows:
                continue
            cpu = statistics.fmean(v for r in rows for v in r["cpu"].values())
            ratio = f"  {f_cpu / cpu:.2f}x floor CPU, our share {(cpu - f_cpu) / cpu:.1%}" if f_cpu else ""
            print(f"{tree.name:12} {config:6} {cpu:7.0f} µs/req/proxy "
                  f"{statistics.fmean(r['req_s'] for r in rows):6.0f} req/s "
                  f"{statistics.fmean(r['lat_ms'] for r in rows):6.2f} ms{ratio}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
