"""Record the NF side of the roaming scenario as a mitmproxy flow file, and retarget it for replay.

Record (runs the scenario of lab/scenario.py against a cSEPP's NF-facing listener and writes
every request it sent as an ``HTTPFlow``, without the response):

    python -m lab.replay --out lab/scenario.flows --target https://127.0.0.1:PORT --ues 2
    python -m lab.replay --out lab/scenario.flows --lab --ues 2    # against a fresh PRINS lab

Retarget (client replay sends each flow to its request's scheme/host/port; this writes a copy
pointing at another cSEPP):

    python -m lab.replay --retarget lab/scenario.flows --target https://127.0.0.1:PORT --out /tmp/s.flows
    mitmdump -n -C /tmp/s.flows -s lab/replay_summary.py --set ssl_insecure=true

Why live recording instead of building requests offline: the steps depend on earlier responses
(the 5G-AKA confirmation carries RES* computed from the AUSF's RAND/AUTN and goes to the
``_links`` href it returned; the later steps use the SUPI it returned). The lab NFs derive RAND and
authCtxId from the SUPI and a per-SUPI counter, so a scenario against a *fresh* lab is
deterministic, and so is the file: flow, connection and timestamp fields are fixed values
(``--lab`` always starts a fresh lab). The recorded UEs are 101.. (``FIRST_UE``), which ``make
lab`` does not use, so a replay succeeds end to end against a fresh lab and against one that has
run (``KEEP=1``); against a lab that already replayed it, the confirmation meets another
authCtxId (404, the SQN moved on) until ``POST /_lab/reset`` on the home NFs; the other requests
still reach the home NFs.

The file contains request headers and bodies only (SUCI/SUPI of lab subscribers, a fake OAuth2
token, RES* of lab keys): no TLS or N32 key material.
"""
from __future__ import annotations

import argparse
import asyncio
import ssl
import sys
import tempfile
import urllib.parse
import uuid
from pathlib import Path

from mitmproxy import connection, http, io

from lab.scenario import LAB_NS, Response, ue_steps
from lab.topology import ROOT, VISITED, WORK

T0 = 1_700_000_000.0  # fixed timestamps: the file is byte-for-byte reproducible


def _flow(n: int, scheme: str, host: str, port: int, method: str, path: str,
          headers: list[tuple[str, str]], body: bytes) -> http.HTTPFlow:
    ts = T0 + n
    client = connection.Client(peername=("127.0.0.1", 0), sockname=("127.0.0.1", 0), timestamp_start=ts)
    client.id = str(uuid.uuid5(LAB_NS, f"replay/client/{n}"))
    server = connection.Server(address=(host, port))
    server.id = str(uuid.uuid5(LAB_NS, f"replay/server/{n}"))
    if body and not any(k.lower() == "content-length" for k, _ in headers):
        # valid in HTTP/2 too; without it a replay that mitmproxy sends as HTTP/1.1 loses the body
        headers = [*headers, ("content-length", str(len(body)))]
    flow = http.HTTPFlow(client, server)
    flow.id = str(uuid.uuid5(LAB_NS, f"replay/flow/{n}"))
    flow.timestamp_created = ts
    flow.request = http.Request(host, port, method.encode(), scheme.encode(), f"{host}:{port}".encode(),
                                path.encode(), b"HTTP/2.0",
                                http.Headers([(k.encode(), v.encode()) for k, v in headers]),
                                body, None, ts, ts)
    return flow


# The recorded UEs are numbered from here: `make lab` (UES up to 100) uses UEs 1.., so the file
# also replays once against a lab that has run (KEEP=1). Once only: the AUSF's authentication
# context ID follows the UE's SQN, which every authentication advances (TS 33.102 §6.3), so a
# second replay's confirmations find no context (404) until the home NFs are reset.
FIRST_UE = 101


async def record(target: str, ues: int, ssl_context: ssl.SSLContext | None,
                 server_name: str | None = None, first_ue: int = FIRST_UE) -> tuple[list[http.HTTPFlow], list[str]]:
    """Run the scenario for UEs first_ue.. (``ues`` of them) one step at a time against ``target``;
    the flows of the requests sent and a list of problems (unexpected statuses, failures)."""
    from lab.traffic import H2Client

    u = urllib.parse.urlsplit(target)
    host, port = u.hostname or "127.0.0.1", u.port or (443 if u.scheme == "https" else 80)
    prefix = u.path.rstrip("/")
    client = await H2Client.connect(host, port, ssl_context if u.scheme == "https" else None, server_name)
    flows: list[http.HTTPFlow] = []
    problems: list[str] = []
    try:
        for ue in range(first_ue, first_ue + ues):
            prev: list[Response] = []
            for step in ue_steps(ue):
                req = step.build(prev)
                path = prefix + req.path + (f"?{req.query}" if req.query else "")
                flows.append(_flow(len(flows), u.scheme, host, port, req.method, path, list(req.headers), req.body))
                rsp = await client.request(req.method, path, list(req.headers), req.body)
                if not step.ok(rsp.status):
                    problems.append(f"ue {ue} {step.name}: {rsp.status} {rsp.body[:200]!r}")
                    break
                prev.append(rsp)
    finally:
        await client.close()
    return flows, problems


def write_flows(path: Path, flows: list[http.HTTPFlow]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        w = io.FlowWriter(fh)
        for f in flows:
            w.add(f)


def read_flows(path: Path) -> list[http.HTTPFlow]:
    with open(path, "rb") as fh:
        return [f for f in io.FlowReader(fh).stream() if isinstance(f, http.HTTPFlow)]


def retarget(src: Path, dst: Path, target: str) -> int:
    """Copy ``src`` to ``dst`` with every request sent to ``target`` (scheme://host:port[/prefix]
    replaces the recorded one). Returns the number of flows."""
    u = urllib.parse.urlsplit(target)
    host, port = u.hostname or "127.0.0.1", u.port or (443 if u.scheme == "https" else 80)
    flows = read_flows(src)
    for f in flows:
        r = f.request
        r.scheme, r.host, r.port, r.authority = u.scheme, host, port, f"{host}:{port}"
        if u.path.rstrip("/"):
            r.path = u.path.rstrip("/") + r.path
        f.server_conn.address = (host, port)
    write_flows(dst, flows)
    return len(flows)


def _record_fresh_lab(out: Path, ues: int) -> list[str]:
    """Start a fresh PRINS lab in a temporary directory, record against its cSEPP, stop it."""
    from lab import procs as P
    from lab.run import client_ssl, start_lab
    from lab.topology import Lab

    with tempfile.TemporaryDirectory(prefix="replay-lab-") as tmp:
        # topology hiding off: its pseudonyms (in the _links href the confirmation follows) are
        # keyed by a per-start secret, so a file recorded with them only replays against that lab
        lab = Lab(out=Path(tmp), pki=WORK / "certs/out", mode="prins",
                  overrides={"sepp-h": {"topology_hiding": {"enabled": False}}})
        with P.Procs(lab.out) as procs:
            start_lab(lab, procs)
            flows, problems = asyncio.run(record(f"https://127.0.0.1:{lab.port('sepp-v.sbi')}", ues,
                                                 client_ssl(lab)))
    # the lab's port is random: store a fixed one (retarget before replaying)
    for f in flows:
        f.request.port, f.request.authority = 8443, "127.0.0.1:8443"
        f.server_conn.address = ("127.0.0.1", 8443)
    write_flows(out, flows)
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="flow file to write")
    ap.add_argument("--target", help="the cSEPP's NF-facing listener, e.g. https://127.0.0.1:8443")
    ap.add_argument("--ues", type=int, default=2)
    ap.add_argument("--lab", action="store_true", help="record against a fresh PRINS lab (certs/out PKI); "
                                                        "the flows then name https://127.0.0.1:8443")
    ap.add_argument("--cafile", help="trust anchor of the SEPP's SBI certificate "
                                     "(default: the visited lab CA, certs/out/plmn-001-01/ca.crt)")
    ap.add_argument("--insecure", action="store_true", help="do not verify the SEPP's certificate")
    ap.add_argument("--server-name", help="TLS SNI / name to verify (default: the target host)")
    ap.add_argument("--retarget", type=Path, metavar="FLOWS",
                    help="do not record: copy FLOWS to --out with every request sent to --target")
    args = ap.parse_args(argv)

    if args.retarget:
        if not args.target:
            ap.error("--retarget needs --target")
        n = retarget(args.retarget, args.out, args.target)
        print(f"replay: {n} flows -> {args.out} (target {args.target})")
        return 0
    if args.lab:
        problems = _record_fresh_lab(args.out, args.ues)
    else:
        if not args.target:
            ap.error("--target or --lab is required")
        ctx = None
        if args.target.startswith("https"):
            ctx = ssl.create_default_context(
                cafile=args.cafile or str(WORK / "certs/out" / f"plmn-{VISITED['plmn']}" / "ca.crt"))
            if args.insecure:
                ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        flows, problems = asyncio.run(record(args.target, args.ues, ctx, args.server_name))
        write_flows(args.out, flows)
    for p in problems:
        print(f"replay: {p}", file=sys.stderr)
    print(f"replay: wrote {args.out}" + (f" ({len(problems)} problem(s))" if problems else ""))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
