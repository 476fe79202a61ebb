"""``make lab``: the two-PLMN roaming lab in one command.

Generates the lab PKI, starts the home NFs, the home SEPP (sepp-h, PLMN 999/70) and the visited
SEPP (sepp-v, PLMN 001/01) as mitmdump processes on loopback, waits for their N32-c handshake,
runs the roaming scenario from the visited side through the pair, prints a summary, writes
lab/out/report.json, key logs and flow files, stops everything and exits non-zero on failure.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import signal
import ssl
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Iterable

from lab import procs as P
from lab import workers
from lab.topology import HOME, ROOT, VISITED, WORK, Lab, sepp_fqdn, write_configs
from n32.exchange import Exchange, of_metadata


def _say(msg: str) -> None:
    print(msg, flush=True)


def start_lab(lab: Lab, procs: P.Procs, *, web: Iterable[str] = (), slim: bool = False,
              wait_handshake: bool = True) -> dict[str, Any]:
    """Start NFs and both SEPPs; wait until N32 is established. Returns what the lab knows.

    ``web`` names the SEPPs / IPXs (``sepp-v``, ``ipx1``, ...) to run under mitmweb instead of
    mitmdump: UI and REST API on ``127.0.0.1:lab.port("<name>.web")``, password ``lab.web_token``."""
    web = set(web)

    def ui(name: str) -> dict[str, Any]:
        if name not in web:
            return {}
        return {"web_host": "127.0.0.1", "web_port": lab.port(f"{name}.web"), "web_password": lab.web_token}

    from certs.pki import ensure_lab_pki

    ensure_lab_pki(lab.pki)
    write_configs(lab)
    out = lab.out
    for name in ("sepp-v", "sepp-h"):
        for suffix in (".keylog.jsonl", ".status.json", ".flows"):
            (out / f"{name}{suffix}").unlink(missing_ok=True)
    home = lab.pki / f"plmn-{HOME['plmn']}"

    def listen(d: Path) -> list[str]:  # NF=h2c: cleartext HTTP/2 only, as open5gs NFs
        return ["--h2c-only"] if lab.nf == "h2c" else ["--tls-cert", str(d / "nf.crt"), "--tls-key", str(d / "nf.key")]

    nf = procs.start("nf-home", [sys.executable, "-m", "lab.nf", "--host", "127.0.0.1",
                                 "--port", str(lab.port("sepp-h.nf")), *listen(home), "--plmn", HOME["plmn"],
                                 "--record", str(out / "nf-home.requests.jsonl")], out=out)
    visited = lab.pki / f"plmn-{VISITED['plmn']}"
    nfv = procs.start("nf-visited", [sys.executable, "-m", "lab.nf", "--host", "127.0.0.1",
                                     "--port", str(lab.port("sepp-v.nf")), *listen(visited),
                                     "--plmn", VISITED["plmn"]], out=out)
    seppv = None
    started = [nfv]
    if lab.ipx:
        for fqdn in ("ipx2.ipx.lab", "ipx1.ipx.lab"):
            name = fqdn.split(".")[0]
            (out / f"{name}.flows").unlink(missing_ok=True)
            p = procs.start_mitmdump(name, "addons/ipx.py", {"ipx_config": lab.configs[fqdn], **ui(name),
                                                             **lab.options.get(name, {})},
                                     web=name in web, slim=slim, out=out)
            started.append(p)
            P.wait_port(lab.port(fqdn), 30, [p])
    for side in (HOME, VISITED):  # the responder listens before the initiator dials
        name = side["name"]
        if lab.workers > 1:
            side_procs = workers.start_side(lab, procs, name, lab.workers, slim=slim)
            started += side_procs
            seppv = side_procs[-1] if side is VISITED else seppv
            continue
        p = start_sepp(lab, procs, name, ui(name), web=name in web, slim=slim)
        started.append(p)
        if side is VISITED:
            seppv = p
    P.wait_port(lab.port("sepp-h.nf"), 15, [nf])
    P.wait_port(lab.port("sepp-v.nf"), 15, [nfv])
    assert seppv is not None

    def established() -> dict | None:
        sv = P.read_json(out / "sepp-v.status.json") or {}
        sh = P.read_json(out / "sepp-h.status.json") or {}
        rv = (sv.get("peers") or {}).get(sepp_fqdn(HOME)) or {}
        rh = (sh.get("peers") or {}).get(sepp_fqdn(VISITED)) or {}
        if not rv.get("capability"):
            return None
        if rv["capability"] == "PRINS" and not (rv.get("context") and rh.get("context")):
            return None
        return {"visited": rv, "home": rh}

    if lab.workers > 1:
        def established() -> dict | None:  # noqa: F811 - every worker's own relation
            return workers.established(out, VISITED["name"], HOME["name"], sepp_fqdn(HOME), sepp_fqdn(VISITED),
                                       lab.workers)
    if not wait_handshake:
        return {"status": None, "procs": [nf, *started]}
    status = P.wait_for(established, 30, "the N32-c handshake", started + [nf])
    return {"status": status, "procs": [nf, *started]}


def start_sepp(lab: Lab, procs: P.Procs, name: str, ui: dict[str, Any] | None = None, *, web: bool = False,
               slim: bool = False) -> P.Proc:
    """One lab SEPP (also to restart it with the same configuration); returns once it listens."""
    out = lab.out
    p = procs.start_mitmdump(name, "addons/sepp.py", {
        "sepp_config": lab.configs[name],
        "n32_keylog": out / f"{name}.keylog.jsonl",
        "sepp_status": out / f"{name}.status.json",
        "metrics_port": lab.port(f"{name}.metrics"),
        **(ui or {}),
        **lab.options.get(name, {}),
    }, web=web, slim=slim, out=out)
    P.wait_port(lab.port(f"{name}.n32"), 30, [p])
    return p


def keys_match(out: Path, k: int = 1) -> tuple[bool, list[dict]]:
    from n32.keylog import read_keylog

    def read(name: str) -> list[dict]:
        paths = workers.keylogs(out, name, k) if k > 1 else [out / f"{name}.keylog.jsonl"]
        return [r for p in paths if p.exists() for r in read_keylog(p)]

    v, h = read("sepp-v"), read("sepp-h")
    contexts = []
    ok = bool(v) and bool(h)
    for rv in v:
        match = [rh for rh in h if rh["initiatorContextId"] == rv["initiatorContextId"]
                 and rh["responderContextId"] == rv["responderContextId"]]
        same = bool(match) and match[0]["masterKey"] == rv["masterKey"]
        ok = ok and same
        contexts.append({"initiatorContextId": rv["initiatorContextId"],
                         "responderContextId": rv["responderContextId"], "masterKeysEqual": same})
    return ok, contexts


def client_ssl(lab: Lab) -> ssl.SSLContext:
    sslctx = ssl.create_default_context(cafile=str(lab.pki / f"plmn-{VISITED['plmn']}" / "ca.crt"))
    sslctx.set_alpn_protocols(["h2"])
    return sslctx


def run_traffic(lab: Lab, ues: int, concurrency: int = 4) -> list[Any]:
    from lab.traffic import run_scenario

    done = {"n": 0}

    def progress(result: Any) -> None:
        done["n"] += 1
        mark = "." if result.ok else "F"
        print(mark, end="" if done["n"] % 60 else "\n", flush=True)

    url = f"https://127.0.0.1:{lab.port('sepp-v.sbi')}"
    if lab.workers > 1:  # one HTTP/2 connection per worker: HAProxy spreads connections, not streams
        results = asyncio.run(_spread(url, ues, lab.workers, concurrency, client_ssl(lab), progress))
    else:
        results = asyncio.run(run_scenario(url, ues, concurrency, client_ssl(lab), progress))
    print(flush=True)
    return results


async def _spread(url: str, ues: int, k: int, concurrency: int, sslctx: ssl.SSLContext, progress: Any,
                  first_ue: int = 1) -> list[Any]:
    """UEs first_ue.. over k HTTP/2 connections: HAProxy spreads connections, not streams."""
    from lab.traffic import run_scenario

    shares = [ues // k + (1 if i < ues % k else 0) for i in range(k)]
    firsts = [first_ue + sum(shares[:i]) for i in range(k)]
    runs = [run_scenario(url, n, concurrency, sslctx, progress, first_ue=f) for n, f in zip(shares, firsts) if n]
    return [r for batch in await asyncio.gather(*runs) for r in batch]


def flow_stats(path: Path) -> list[Exchange]:
    """The exchange the SEPP left on each flow of a saved flow file."""
    from mitmproxy import io

    if not path.exists():
        return []
    stats = []
    with open(path, "rb") as f:
        for fl in io.FlowReader(f).stream():
            ex = of_metadata(getattr(fl, "metadata", None))
            if ex is not None:
                stats.append(ex)
    return stats


def summarize(results: list[Any], out: Path) -> dict[str, dict]:
    per: dict[str, dict] = {}
    prefix_api: dict[str, str] = {}
    for r in results:
        a = per.setdefault(r.api, {"messages": 0, "ok": 0, "failed": 0, "encryptedIes": 0,
                                   "ipxModifications": 0, "latencies": []})
        a["messages"] += 1
        a["ok" if r.ok else "failed"] += 1
        a["latencies"].append(r.latency_ms)
        prefix_api["/".join(r.path.split("/")[:3])] = r.api
    for path in (*out.glob("sepp-v*.flows"), *out.glob("sepp-h*.flows")):  # a SEPP's or its workers'
        for ex in flow_stats(path):
            if ex.role not in ("sending", "receiving"):
                continue
            api = prefix_api.get("/".join(str(ex.path or "").split("/")[:3]))
            if api in per:
                per[api]["encryptedIes"] += ex.encrypted + ex.encrypted_response
                per[api]["ipxModifications"] += ex.ipx_modifications
    for a in per.values():
        lat = sorted(a.pop("latencies"))
        a["meanMs"] = round(statistics.fmean(lat), 2) if lat else None
        a["p99Ms"] = round(lat[min(len(lat) - 1, int(0.99 * len(lat)))], 2) if lat else None
    return per


def ipx_counts(out: Path) -> dict[str, dict]:
    """Per IPX: messages it changed, as verified by the receiving SEPPs."""
    counts: dict[str, dict] = {}
    for name, kind in (("sepp-h", "requests"), ("sepp-v", "responses")):
        for ex in flow_stats(out / f"{name}.flows"):
            for ipx in ex.ipx_modified_by:
                c = counts.setdefault(ipx, {"requests": 0, "responses": 0})
                c[kind] += 1
    return counts


def describe_ports(ports: dict[str, int]) -> list[str]:
    """Which port is which, for people: the cSEPP's SBI is where NFs (and replays) send."""
    what = {"sepp-v.sbi": "cSEPP sepp-v SBI (visited NFs send here; the replay target)",
            "sepp-v.n32": "cSEPP sepp-v N32 (N32-c/N32-f from sepp-h)",
            "sepp-v.nf": "visited NF stub (callbacks)",
            "sepp-h.n32": "pSEPP sepp-h N32 (N32-c/N32-f from sepp-v or ipx2)",
            "sepp-h.sbi": "pSEPP sepp-h SBI", "sepp-h.nf": "home NFs (AUSF, UDM, SMF, AMF, NRF)"}
    lines = []
    for name, port in ports.items():
        if name.endswith(".web"):
            continue
        if name.endswith(".metrics"):
            lines.append(f"{name.split('.')[0]} Prometheus metrics: http://127.0.0.1:{port}/metrics")
        else:
            lines.append(f"{what.get(name, name + ' (N32-f relay)' if 'ipx' in name else name)}: https://127.0.0.1:{port}")
    return lines


def metrics_summary(ports: dict[str, int]) -> list[str]:
    """The per-peer summary of each running SEPP's Prometheus metrics (docs/metrics.md)."""
    from lab.scrape import summary_lines

    lines = []
    for name in (VISITED["name"], HOME["name"]):
        if f"{name}.metrics" in ports:
            try:
                lines += summary_lines(name, ports[f"{name}.metrics"])
            except OSError as e:
                lines.append(f"{name}: metrics not readable: {e}")
    return lines


def print_table(per: dict[str, dict]) -> None:
    cols = ("messages", "ok", "failed", "encryptedIes", "ipxModifications", "meanMs", "p99Ms")
    _say(f"{'API':28} " + " ".join(f"{c:>16}" for c in cols))
    for api, a in per.items():
        _say(f"{api:28} " + " ".join(f"{str(a[c]):>16}" for c in cols))


class Stop(KeyboardInterrupt):
    """SIGTERM or SIGHUP (a CI cancel, ``timeout``, a closed terminal): stop like Ctrl-C."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_stop(signum: int, _frame: object) -> None:
    raise Stop(signum)


def _install_stop_handlers() -> dict[int, Any]:
    """SIGTERM/SIGHUP raise :class:`Stop`; returns the previous handlers to restore.

    A signal ignored on entry (``nohup``) stays ignored. When our parent dies (``make`` killed
    with SIGHUP does not pass it on), Linux sends us SIGHUP so the lab still cleans up."""
    previous = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) is not signal.SIG_IGN:
            previous[sig] = signal.signal(sig, _raise_stop)
    if signal.SIGHUP in previous and sys.platform == "linux":
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(P.PR_SET_PDEATHSIG, signal.SIGHUP)
        except (OSError, AttributeError):
            pass
    return previous


# What a lab run leaves in its output directory; each run starts without the previous run's
# files (a run without IPX must not show the IPX flows of an earlier one).
_OUT_FILES = ("*.flows", "*.log", "*.keylog.jsonl", "*.status.json", "*.yaml", "*.requests.jsonl",
              "report.json", "report.html", "*.pcapng", "tls-keys.txt", "*.haproxy.cfg")


def clean_out(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for pattern in _OUT_FILES:
        for f in out.glob(pattern):
            if f.is_file():
                f.unlink()


def _wait_while_running(procs: list[P.Proc]) -> str | None:
    """KEEP=1: block until a signal stops us or a process exits (returns its name)."""
    while True:
        for p in procs:
            if not p.alive():
                return p.name
        time.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--ues", type=int, default=3)
    ap.add_argument("--mode", choices=("prins", "tls"), default="prins")
    ap.add_argument("--suite", choices=("A128GCM", "A256GCM"), default="A128GCM")
    ap.add_argument("--ipx", type=int, default=0)
    ap.add_argument("--nf", choices=("tls", "h2c"), default="tls", help="h2c: home NFs speak only cleartext HTTP/2")
    ap.add_argument("--keep", type=int, default=0)
    ap.add_argument("--out", type=Path, default=WORK / "lab/out")
    ap.add_argument("--handshake-only", action="store_true")
    ap.add_argument("--capture", type=int, default=0, help="pcapng of the loopback traffic + TLS keys")
    ap.add_argument("--workers", type=int, default=1, help="each SEPP as this many processes behind HAProxy")
    ap.add_argument("--slim", type=int, default=0,
                    help="run the SEPPs and IPXs with the slim runner (for load: no flows kept, no web UI)")
    args = ap.parse_args(argv)
    if args.workers > 1 and (args.ipx or args.capture):
        # an IPX relays to one fixed next hop (not to the announcing worker), and the capture
        # filter is made before the workers' ports exist
        ap.error("--workers > 1 does not combine with --ipx or --capture")
    previous = _install_stop_handlers()
    try:
        return _run(args)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _report(args: argparse.Namespace, report: dict[str, Any], results: list[Any], failed: bool,
            t0: float) -> bool:
    """Print the table, write report.json; returns whether the run failed."""
    if results:
        per = summarize(results, args.out)
        if args.ipx:
            report["ipx"] = ipx_counts(args.out)
        report["apis"] = per
        report["messages"] = sum(a["messages"] for a in per.values())
        report["failed"] = sum(a["failed"] for a in per.values())
        failed |= report["failed"] > 0
        print_table(per)
        if getattr(args, "slim", 0):
            _say("lab: slim runner: no flows kept, so encryptedIes and ipxModifications read 0 above; "
                 "the metrics below count them")
        if report.get("metrics"):
            _say("lab: per peer, from the SEPPs' Prometheus metrics:")
            for line in report["metrics"]:
                _say(f"  {line}")
        for r in results:
            if not r.ok:
                _say(f"  FAILED ue={r.ue} {r.api} {r.method} {r.path}: {r.status} {r.error or ''}")
    report["ok"] = not failed
    report["seconds"] = round(time.monotonic() - t0, 2)
    (args.out / "report.json").write_text(json.dumps(report, indent=2))
    from lab.report import write as write_html

    page = write_html(args.out, report, results)
    _say(f"lab: report in {page} (open it in a browser) and {args.out / 'report.json'}; "
         f"key logs and flows in {args.out}/")
    if report.get("capture"):
        _say(f"lab: {report['capture']}")
    _say("lab: OK" if not failed else "lab: FAILED")
    return failed


def _run(args: argparse.Namespace) -> int:
    clean_out(args.out)
    lab = Lab(out=args.out, pki=WORK / "certs/out", mode=args.mode, suite=args.suite, ipx=bool(args.ipx),
              nf=args.nf, workers=max(1, args.workers))
    report: dict[str, Any] = {"mode": args.mode, "ues": args.ues}
    failed = False
    reported = False
    t0 = time.monotonic()
    with P.Procs(args.out) as procs:
        try:
            _say(f"lab: starting home NFs, {HOME['name']} (PLMN {HOME['plmn']}) and "
                 f"{VISITED['name']} (PLMN {VISITED['plmn']}) on loopback ...")
            if args.capture:
                from certs.pki import ensure_lab_pki
                from lab import capture

                ensure_lab_pki(lab.pki)
                write_configs(lab)   # the ports to capture (start_lab writes the same again)
                capture.start(lab, procs)
                report["capture"] = capture.describe(args.out, lab.ports)
            started = start_lab(lab, procs, slim=bool(args.slim))
            report["ports"] = lab.ports
            st = started["status"]["visited"]
            ctx = st.get("context") or {}
            report.update(capability=st["capability"], jweCipherSuite=ctx.get("jweCipherSuite"),
                          jwsCipherSuite=ctx.get("jwsCipherSuite"))
            if st["capability"] == "PRINS":
                ok, contexts = keys_match(args.out, lab.workers)
                report.update(contexts=contexts, keysMatch=ok)
                failed |= not ok
            else:
                report.update(contexts=[], keysMatch=None)
            _say(f"lab: N32 established: {st['capability']}"
                 + (f", JWE {ctx.get('jweCipherSuite')}, JWS {ctx.get('jwsCipherSuite')}, contexts "
                    f"{ctx.get('localContextId')}/{ctx.get('peerContextId')}, master keys equal: "
                    f"{report.get('keysMatch')}" if ctx else ""))
            results = []
            if not args.handshake_only:
                _say(f"lab: running the roaming scenario for {args.ues} UE(s) ...")
                results = run_traffic(lab, args.ues)
                report["metrics"] = metrics_summary(lab.ports)
            if args.keep:
                failed = _report(args, report, results, failed, t0)
                reported = True
                _say("lab: KEEP=1: processes stay up; Ctrl-C stops them. Listeners (report.json \"ports\"):")
                for line in describe_ports(lab.ports):
                    _say(f"  {line}")
                gone = _wait_while_running(started["procs"])
                _say(f"lab: {gone} exited, stopping")
                failed = True
        except KeyboardInterrupt as e:
            # Ctrl-C, SIGTERM or SIGHUP: the with-block stops every process; a user stopping a
            # KEEP=1 lab whose run succeeded is a normal end (exit 0), anything earlier is not
            _say(f"lab: {'interrupted' if not isinstance(e, Stop) else e.args[0]}, stopping")
            if not reported:
                return 128 + (e.signum if isinstance(e, Stop) else signal.SIGINT)
            return 1 if failed else 0
        except Exception as e:
            _say(f"lab: FAILED: {e}")
            report["error"] = str(e)
            failed = True
            results = []
    if reported:
        return 1 if failed else 0
    return 1 if _report(args, report, results, failed, t0) else 0


if __name__ == "__main__":
    sys.exit(main())
