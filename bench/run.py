"""``make bench``: the SEPP against its floors, measured in one run (issue 14).

One NF for every configuration: ``nghttpd`` (Debian nghttp2-server, C) over TLS with the home
NF's certificate, answering the lab's Nausf POST. ``h2load`` drives each configuration twice:
``-c1 -m1`` for latency (mean and p99 from its per-request log) and ``-c4 -m10`` for throughput;
CPU time per request of every process is read from ``/proc/<pid>/stat`` around the throughput
run. The floor, TLS-mode and PRINS pairs are measured in ``--rounds`` interleaved rounds (3) and
each of their rows is the median. Configurations, in the order of the table:

* ``NF direct``: h2load -> nghttpd;
* ``plain mitmdump pair``: two chained ``mitmdump --mode reverse`` (mitmproxy's own floor);
* ``slim pair (floor)``: two chained slim mitmproxy masters without any addon: the floor
  every SEPP pair is compared with (``ratio_to_floor``);
* ``TLS-mode pair``, ``PRINS pair``, ``PRINS via 2 IPXs``: the lab's SEPPs (and IPXs) on the
  slim runner.

Then the core micro-benchmarks (bench/core.py): protect, open and selection of the lab's Nausf
and Nudm messages against raw AES-GCM of the same bytes (``ratio_to_floor`` = x AES-GCM),
bodies of 1 KB / 16 KB / 256 KB, 1 / 10 / 100 encrypted IEs, and 50 peers with 50 live contexts.

Writes ``bench/out/results.json`` (one object per row) and ``bench/out/bench.png``. Read ratios
within one run: other load on the machine moves the absolute figures.
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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from lab import procs as P
from lab.scenario import AMF_ID, access_token
from lab.topology import HOME, ROOT, Lab, free_port

OUT = ROOT / "bench" / "out"
SLIM = "addons.slim"                     # the slim runner module (python -m ...)
PATH = "/nausf-auth/v1/ue-authentications"
TARGET = "https://ausf.5gc.mnc070.mcc999.3gppnetwork.org"
REQUEST = json.dumps({"supiOrSuci": "suci-0-999-70-0000-0-0-0000000001",
                      "servingNetworkName": "5G:mnc001.mcc001.3gppnetwork.org"}).encode()
ANSWER = json.dumps({"authType": "5G_AKA", "servingNetworkName": "5G:mnc001.mcc001.3gppnetwork.org",
                     "5gAuthData": {"rand": "a1" * 16, "autn": "b2" * 16, "hxresStar": "c3" * 16},
                     "_links": {"5g-aka": {"href": f"{TARGET}{PATH}/0b8d4f0e/5g-aka-confirmation"}}}).encode()
HEADERS = [f"3gpp-sbi-target-apiroot: {TARGET}", "content-type: application/json", "user-agent: AMF",
           # a token whose claims the receiving SEPP reads (SCAS TS 33.517 4.2.2.4: consumer PLMN)
           "authorization: Bearer " + access_token(AMF_ID, "AUSF", "nausf-auth")]
TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Row:
    """One line of the table and one object of results.json."""

    name: str
    req_s: float | None = None
    latency_ms_mean: float | None = None
    latency_ms_p99: float | None = None
    cpu_us_per_req: float | None = None          # per proxy process (mean over them); core rows: µs per call
    ratio_to_floor: float | None = None          # req_s / slim floor pair; core rows: µs / raw AES-GCM
    kind: str = "pair"                           # pair | core
    added_latency_ms: float | None = None        # mean -c1 -m1 latency over the slim floor pair
    # floor CPU per request per proxy / ours: what throughput would be relative to the floor if
    # the cores were ours alone (robust when other load on the machine moves req/s)
    cpu_ratio_to_floor: float | None = None
    # (ours - floor) / ours, CPU per request per proxy: the part of a SEPP process's CPU that a
    # slim master without addon forwarding the same request does not spend, i.e. what our addon
    # costs (issue 14 goal 2, "our share"; docs/benchmarks.md says why not a profile's attribution)
    share_over_floor: float | None = None
    cpu_us_per_req_by_process: dict[str, float] = field(default_factory=dict)
    failed: int = 0


# ---------------------------------------------------------------------------- h2load and /proc
@dataclass
class Load:
    req_s: float
    latencies_ms: list[float]
    failed: int


def h2load(url: str, n: int, c: int, m: int, work: Path) -> Load:
    log = work / "h2load.log"
    log.unlink(missing_ok=True)
    argv = ["h2load", "-n", str(n), "-c", str(c), "-m", str(m), "-d", str(work / "request.json"),
            "--log-file", str(log)]
    for h in HEADERS:
        argv += ["-H", h]
    t0 = time.monotonic()
    out = subprocess.run(argv + [url], capture_output=True, text=True, timeout=600).stdout
    wall = time.monotonic() - t0
    lat, bad = [], 0
    for line in log.read_text().splitlines():
        cols = line.split("\t")
        if len(cols) >= 3:
            lat.append(int(cols[2]) / 1000)
            bad += not cols[1].startswith("2")
    done = next((int(x.split()[0]) for x in out.split(",") if x.strip().endswith("succeeded")), len(lat))
    bad += max(0, n - len(lat))
    if not lat:
        raise RuntimeError(f"h2load got no answer from {url}:\n{out[-2000:]}")
    rate = next((float(x.split()[0]) for x in out.split(",") if x.strip().endswith("req/s")), done / wall)
    return Load(rate, lat, bad)


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (proc(5) fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) >= 100 else max(values)


def measure(name: str, url: str, pids: dict[str, int], work: Path, n_lat: int, n_tp: int) -> Row:
    h2load(url, 50, 1, 1, work)                                  # warm up (TLS sessions, N32 context)
    lat = h2load(url, n_lat, 1, 1, work)
    before = {k: cpu_seconds(p) for k, p in pids.items()}
    tp = h2load(url, n_tp, 4, 10, work)
    cpu = {k: round((cpu_seconds(p) - before[k]) * 1e6 / n_tp, 1) for k, p in pids.items()}
    proxies = [v for k, v in cpu.items() if k != "nf"]
    row = Row(name, round(tp.req_s, 1), round(statistics.fmean(lat.latencies_ms), 3),
              round(p99(lat.latencies_ms), 3), round(statistics.fmean(proxies), 1) if proxies else cpu.get("nf"),
              cpu_us_per_req_by_process=cpu, failed=lat.failed + tp.failed)
    print(f"  {name:24} {row.req_s:8.0f} req/s  {row.latency_ms_mean:7.2f} ms mean  {row.latency_ms_p99:7.2f} ms p99  "
          f"CPU/req {cpu}" + (f"  FAILED {row.failed}" if row.failed else ""), flush=True)
    return row


# ---------------------------------------------------------------------------- configurations
class Bench:
    def __init__(self, work: Path, pki: Path, n_lat: int, n_tp: int) -> None:
        self.work, self.pki, self.n_lat, self.n_tp = work, pki, n_lat, n_tp
        self.nf_port = free_port()
        self.nf: P.Proc | None = None

    @property
    def nf_uri(self) -> str:
        return f"https://127.0.0.1:{self.nf_port}"

    def start_nf(self, procs: P.Procs) -> None:
        docroot = self.work / "docroot"
        (docroot / PATH.rsplit("/", 1)[0].lstrip("/")).mkdir(parents=True, exist_ok=True)
        (docroot / PATH.lstrip("/")).write_bytes(ANSWER)
        (self.work / "request.json").write_bytes(REQUEST)
        home = self.pki / f"plmn-{HOME['plmn']}"
        self.nf = procs.start("nghttpd", ["nghttpd", "-d", str(docroot), str(self.nf_port),
                                          str(home / "nf.key"), str(home / "nf.crt")])
        P.wait_port(self.nf_port, 10, [self.nf])

    def run(self, name: str, start: Callable[[P.Procs], tuple[str, dict[str, int]]]) -> Row:
        with P.Procs(self.work / name.replace(" ", "-")) as procs:
            url, pids = start(procs)
            assert self.nf is not None
            return measure(name, url, {**pids, "nf": self.nf.popen.pid}, self.work, self.n_lat, self.n_tp)

    # -- the configurations
    def direct(self, procs: P.Procs) -> tuple[str, dict[str, int]]:
        return f"{self.nf_uri}{PATH}", {}

    def _chain(self, procs: P.Procs, argv: Callable[[str, int], list[str]]) -> tuple[str, dict[str, int]]:
        """Two reverse proxies: h2load -> a -> b -> NF."""
        pa, pb = free_port(), free_port()
        b = procs.start("b", argv(self.nf_uri, pb))
        a = procs.start("a", argv(f"https://127.0.0.1:{pb}", pa))
        for port, p in ((pb, b), (pa, a)):
            P.wait_port(port, 30, [p])
        return f"https://127.0.0.1:{pa}{PATH}", {"a": a.popen.pid, "b": b.popen.pid}

    def mitmdump_pair(self, procs: P.Procs) -> tuple[str, dict[str, int]]:
        return self._chain(procs, lambda up, port: [
            str(P.BIN / "mitmdump"), "--mode", f"reverse:{up}@127.0.0.1:{port}", "--set", "ssl_insecure=true",
            "--set", "flow_detail=0", "--set", "termlog_verbosity=warn"])

    def slim_pair(self, procs: P.Procs) -> tuple[str, dict[str, int]]:
        return self._chain(procs, lambda up, port: [
            sys.executable, "-m", SLIM, "--set", f"mode=reverse:{up}@127.0.0.1:{port}", "--set", "ssl_insecure=true"])

    def lab_pair(self, mode: str, ipx: bool = False) -> Callable[[P.Procs], tuple[str, dict[str, int]]]:
        def start(procs: P.Procs) -> tuple[str, dict[str, int]]:
            from lab.run import start_lab

            lab = Lab(out=procs.out, pki=self.pki, mode=mode, ipx=ipx)
            home_ca = self.pki / f"plmn-{HOME['plmn']}" / "ca.crt"
            lab.overrides["sepp-h"] = {"home_nfs": {"default": self.nf_uri, "trust_anchor": str(home_ca)}}
            start_lab(lab, procs, slim=True)
            names = ["sepp-v", "sepp-h"] + (["ipx1", "ipx2"] if ipx else [])
            pids = {p.name: p.popen.pid for p in procs.procs if p.name in names}
            return f"https://127.0.0.1:{lab.port('sepp-v.sbi')}{PATH}", pids
        return start


ROUNDS = ("slim pair (floor)", "TLS-mode pair", "PRINS pair")


def median_row(rows: list[Row]) -> Row:
    """One row of several runs of a configuration: the median of each figure."""
    if len(rows) == 1:
        return rows[0]

    def med(values: list) -> Any:
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else None
    procs = {k for r in rows for k in r.cpu_us_per_req_by_process}
    return Row(rows[0].name, med([r.req_s for r in rows]), med([r.latency_ms_mean for r in rows]),
               med([r.latency_ms_p99 for r in rows]), med([r.cpu_us_per_req for r in rows]),
               cpu_us_per_req_by_process={k: med([r.cpu_us_per_req_by_process.get(k) for r in rows]) for k in procs},
               failed=sum(r.failed for r in rows))


# ---------------------------------------------------------------------------- output
def core_rows(quick: bool) -> list[Row]:
    from bench import core

    rows = []
    for r in core.run_all(sizes=True, quick=quick):
        rows.append(Row(r.name, round(1e6 / r.us, 0), round(r.us / 1000, 4), None, round(r.us, 1),
                        round(r.x_aes, 1) if r.x_aes else None, kind="core"))
    return rows


def print_table(rows: list[Row]) -> None:
    print(f"\n{'configuration':32} {'req/s':>8} {'x floor':>8} {'mean ms':>8} {'p99 ms':>8} {'+ms':>6} "
          f"{'CPU µs/req/proxy':>17} {'x floor CPU':>12} {'our share':>10}")
    for r in rows:
        if r.kind != "pair":
            continue
        print(f"{r.name:32} {r.req_s:8.0f} {r.ratio_to_floor or 0:8.2f} {r.latency_ms_mean:8.2f} "
              f"{r.latency_ms_p99:8.2f} {r.added_latency_ms or 0:6.2f} {r.cpu_us_per_req or 0:17.0f} "
              f"{r.cpu_ratio_to_floor or 0:12.2f} "
              + (f"{r.share_over_floor:10.1%}" if r.share_over_floor is not None else f"{'':10}"))
    print(f"\n{'core step (in process)':62} {'µs':>9} {'msg/s':>9} {'x AES':>7}")
    for r in rows:
        if r.kind == "core":
            x = f"{r.ratio_to_floor:7.1f}" if r.ratio_to_floor else ""
            print(f"{r.name:62} {r.cpu_us_per_req:9.1f} {r.req_s:9.0f} {x}")


def plot(rows: list[Row], path: Path) -> None:
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs = [r for r in rows if r.kind == "pair"]
    names = [r.name for r in pairs]
    y = list(range(len(pairs)))
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(17, 5), sharey=True)
    bars = ax1.barh(y, [r.req_s for r in pairs], color="tab:blue")
    ax1.bar_label(bars, labels=[f"{r.req_s:.0f}" + (f" ({r.ratio_to_floor:.2f}x floor)" if r.ratio_to_floor else "")
                                for r in pairs], padding=3, fontsize=8)
    top, low = max(r.req_s for r in pairs), min(r.req_s for r in pairs)
    if top > 20 * low:      # NF direct is ~100x the pairs: log scale, bars from 10 req/s
        ax1.set_xscale("log")
        ax1.set_xlim(10, top * 20)
        ax1.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    else:
        ax1.set_xlim(0, top * 1.4)
    ax1.set_yticks(y, names)
    ax1.invert_yaxis()
    ax1.set_xlabel("requests/s, h2load -c4 -m10")
    ax1.set_title("throughput")
    ax2.barh([i - 0.2 for i in y], [r.latency_ms_mean for r in pairs], height=0.4, label="mean", color="tab:green")
    b2 = ax2.barh([i + 0.2 for i in y], [r.latency_ms_p99 for r in pairs], height=0.4, label="p99", color="tab:red")
    ax2.bar_label(b2, labels=[f"{r.latency_ms_p99:.1f}" for r in pairs], padding=3, fontsize=8)
    ax2.set_xlim(right=max(r.latency_ms_p99 for r in pairs) * 1.25)
    ax2.set_xlabel("latency ms, h2load -c1 -m1")
    ax2.set_title("latency")
    ax2.legend(loc="upper right")
    cpu = [r.cpu_us_per_req or 0 for r in pairs]
    b3 = ax3.barh(y, cpu, color="tab:purple")
    ax3.bar_label(b3, labels=[f"{c:.0f}" for c in cpu], padding=3, fontsize=8)
    ax3.set_xlim(right=max(cpu + [1]) * 1.25)
    ax3.set_xlabel("CPU µs per request per proxy process (/proc), -c4 -m10")
    ax3.set_title("CPU cost")
    fig.suptitle(f"make bench, {time.strftime('%Y-%m-%d %H:%M')} UTC, Nausf POST, NF = nghttpd over TLS")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=2000, help="requests per throughput run (-c4 -m10)")
    ap.add_argument("--latency-n", type=int, default=300, help="requests per latency run (-c1 -m1)")
    ap.add_argument("--only", action="append", default=[], help="run only configurations whose name has this")
    ap.add_argument("--no-core", action="store_true", help="skip the core micro-benchmarks")
    ap.add_argument("--quick", action="store_true", help="fewer requests, shorter micro-benchmarks")
    ap.add_argument("--rounds", type=int, default=3,
                    help="rounds of the floor, TLS-mode and PRINS pairs, interleaved; each row is their median")
    args = ap.parse_args(argv)
    for tool in ("h2load", "nghttpd"):
        if not shutil.which(tool):
            print(f"{tool} not found: apt-get install nghttp2-client nghttp2-server", file=sys.stderr)
            return 2
    if args.quick:
        args.n, args.latency_n = 400, 100
    from certs.pki import ensure_lab_pki

    pki = ROOT / "certs/out"
    ensure_lab_pki(pki)
    OUT.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="mitm-sepp-bench-"))
    bench = Bench(work, pki, args.latency_n, args.n)
    configs: list[tuple[str, Callable]] = [
        ("NF direct", bench.direct), ("plain mitmdump pair", bench.mitmdump_pair),
        ("slim pair (floor)", bench.slim_pair), ("TLS-mode pair", bench.lab_pair("tls")),
        ("PRINS pair", bench.lab_pair("prins")), ("PRINS via 2 IPXs", bench.lab_pair("prins", ipx=True))]
    rows: list[Row] = []
    print(f"make bench: NF nghttpd over TLS, POST {PATH} ({len(REQUEST)} bytes), latency -c1 -m1 -n "
          f"{args.latency_n}, throughput -c4 -m10 -n {args.n}; load now {os.getloadavg()[0]:.2f}", flush=True)
    configs = [c for c in configs if not args.only or any(o.lower() in c[0].lower() for o in args.only)]
    # The pairs the goals compare are measured in interleaved rounds (floor, TLS, PRINS, floor, ...)
    # and each row is their median: other load on a shared machine then hits them alike, and one
    # disturbed run does not decide a ratio.
    repeated = [c for c in configs if c[0] in ROUNDS]
    once = [c for c in configs if c[0] not in ROUNDS]
    runs: dict[str, list[Row]] = {}
    with P.Procs(work) as nf_procs:
        bench.start_nf(nf_procs)
        for name, start in once[:2] + repeated * max(1, args.rounds) + once[2:]:
            try:
                runs.setdefault(name, []).append(bench.run(name, start))
            except Exception as e:  # one broken configuration must not lose the others' figures
                print(f"  {name}: FAILED: {e}", flush=True)
    rows = [median_row(runs[name]) for name, _ in configs if runs.get(name)]
    floor = next((r for r in rows if r.name.startswith("slim pair")), None)
    for r in rows:
        if floor and r.req_s:
            r.ratio_to_floor = round(r.req_s / floor.req_s, 3)
            r.added_latency_ms = round(r.latency_ms_mean - floor.latency_ms_mean, 3)
            if r.cpu_us_per_req and floor.cpu_us_per_req and r.name != "NF direct":
                r.cpu_ratio_to_floor = round(floor.cpu_us_per_req / r.cpu_us_per_req, 3)
                r.share_over_floor = round((r.cpu_us_per_req - floor.cpu_us_per_req) / r.cpu_us_per_req, 3)
    if not args.no_core:
        print("core micro-benchmarks ...", flush=True)
        rows += core_rows(args.quick)
    print_table(rows)
    (OUT / "results.json").write_text(json.dumps([asdict(r) for r in rows], indent=1))
    if any(r.kind == "pair" for r in rows):
        plot(rows, OUT / "bench.png")
    print(f"\nwrote {OUT / 'results.json'} and {OUT / 'bench.png'}; load now {os.getloadavg()[0]:.2f}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
