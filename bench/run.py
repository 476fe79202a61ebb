"""``make bench``: throughput of the SEPP pair against plain mitmproxy, measured in one run.

Every figure is printed as requests/s and as a ratio to the baseline measured in the same run
(plain mitmdump as an HTTP/2 reverse proxy in front of the same NF stub), never as an absolute
pass/fail. Uses h2load (Debian package nghttp2-client) with -c4 -m10 like the brief.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from lab import procs as P
from lab.run import start_lab
from lab.topology import HOME, ROOT, Lab, free_port

PATH = "/nudm-sdm/v2/imsi-999700000000001/am-data?plmn-id=%7B%22mcc%22%3A%22001%22%2C%22mnc%22%3A%2201%22%7D"
TARGET = "https://udm.5gc.mnc070.mcc999.3gppnetwork.org"


def h2load(url: str, n: int, headers: list[str]) -> float:
    rps = _h2load(url, n, headers)
    print(f"  {url}: {rps:.0f} req/s", flush=True)
    return rps


def _h2load(url: str, n: int, headers: list[str]) -> float:
    argv = ["h2load", "-n", str(n), "-c", "4", "-m", "10"]
    for h in headers:
        argv += ["-H", h]
    out = subprocess.run(argv + [url], capture_output=True, text=True, timeout=600).stdout
    m = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out)
    ok = re.search(r"(\d+) succeeded, (\d+) failed", out) or re.search(r"requests: .* (\d+) succeeded, (\d+) failed", out)
    if not m:
        raise RuntimeError(f"h2load output not understood:\n{out}")
    if ok and int(ok.group(2)):
        print(f"  warning: {ok.group(2)} requests failed", flush=True)
    return float(m.group(1))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("-n", type=int, default=3000, help="requests per measurement")
    args = ap.parse_args(argv)
    if not shutil.which("h2load"):
        print("h2load not found: apt-get install nghttp2-client", file=sys.stderr)
        return 2
    out = Path(tempfile.mkdtemp(prefix="mitm-sepp-bench-"))
    results: dict[str, float] = {}
    hdr = [f"3gpp-sbi-target-apiroot: {TARGET}", "authorization: Bearer bench"]
    with P.Procs(out) as procs:
        lab = Lab(out=out / "prins", pki=ROOT / "certs/out", mode="prins")
        start_lab(lab, procs)
        nf_port = lab.port("sepp-h.nf")
        rp = free_port()
        base = procs.start("plain-mitmdump", [str(P.BIN / "mitmdump"), "--mode",
                                              f"reverse:https://127.0.0.1:{nf_port}@127.0.0.1:{rp}",
                                              "--set", "ssl_insecure=true", "--set", "flow_detail=0"])
        P.wait_port(rp, 20, [base])
        results["NF stub direct"] = h2load(f"https://127.0.0.1:{nf_port}{PATH}", args.n, hdr)
        results["plain mitmdump reverse proxy (baseline)"] = h2load(f"https://127.0.0.1:{rp}{PATH}", args.n, hdr)
        results["SEPP pair, PRINS, mitmdump -s"] = h2load(
            f"https://127.0.0.1:{lab.port('sepp-v.sbi')}{PATH}", args.n, hdr)
        procs.stop()
        lab2 = Lab(out=out / "slim", pki=ROOT / "certs/out", mode="prins")
        start_lab(lab2, procs, slim=True)
        results["SEPP pair, PRINS, slim runner"] = h2load(
            f"https://127.0.0.1:{lab2.port('sepp-v.sbi')}{PATH}", args.n, hdr)
        procs.stop()
        lab3 = Lab(out=out / "tls", pki=ROOT / "certs/out", mode="tls")
        start_lab(lab3, procs, slim=True)
        results["SEPP pair, TLS mode, slim runner"] = h2load(
            f"https://127.0.0.1:{lab3.port('sepp-v.sbi')}{PATH}", args.n, hdr)
    baseline = results["plain mitmdump reverse proxy (baseline)"]
    print(f"\n{'measurement':45} {'req/s':>10} {'x baseline':>11}")
    for name, rps in results.items():
        print(f"{name:45} {rps:10.0f} {rps / baseline:11.2f}")
    print("\nyardstick (brief): open5gs 2.7.7 C SEPP pair, TLS mode, ~8,500 req/s on the same box")
    (ROOT / "bench" / "last.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
