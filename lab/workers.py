"""One SEPP as k worker processes behind HAProxy (``make lab WORKERS=k``; issue 14 goal 3).

HAProxy (TCP mode, TLS passed through: the worker terminates TLS because it exports the N32
master key from its own connection, TS 33.501 §13.2.4.4.1) takes the SEPP's public N32-c and
NF-facing (SBI) ports and spreads connections round-robin over the workers, health-checking each
with a TCP connect. Each worker runs its own N32-c handshake and holds its own N32-f contexts:
context IDs travel only in exchange-params, and §13.2.4.4.1 requires a new, unique context ID
whenever more HTTP sessions use the keys. A worker therefore announces its own N32-f port in
exchange-capability (``senderN32fFqdn`` + ``senderN32fPort`` / ``senderN32fPortList``, TS 29.573
SecNegotiateReqData/RspData), and the peer sends the N32-f of that context straight to the worker
that holds it. Nothing is shared between workers (docs/interop-profile.md, "Scale-out").
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from lab import procs as P
from lab.topology import Lab

WORKER_FILES = ("keylog.jsonl", "status.json", "flows", "log", "yaml")


def worker_name(sepp: str, i: int) -> str:
    return f"{sepp}.w{i}"


def worker_config(lab: Lab, sepp: str, i: int) -> Path:
    """The SEPP's lab config with this worker's own listeners: N32-c and SBI behind HAProxy
    (the SEPP's public ports stay HAProxy's), N32-f on a port of its own, which it announces."""
    cfg: dict[str, Any] = yaml.safe_load(lab.configs[sepp].read_text())
    w = worker_name(sepp, i)
    sbi = dict(cfg["listeners"]["sbi"], port=lab.port(f"{w}.sbi"))
    cfg["listeners"] = {"n32": {"host": "127.0.0.1", "port": lab.port(f"{w}.n32")},
                        "n32f": {"host": "127.0.0.1", "port": lab.port(f"{w}.n32f")},
                        "sbi": sbi}
    path = lab.out / f"{w}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def haproxy_config(lab: Lab, sepp: str, k: int) -> str:
    """TCP mode: the TLS of NFs and peer SEPPs reaches the workers untouched. ``redispatch``:
    a connection refused by a worker that just died is retried on another one before the health
    check (every 300 ms, down after 2 failures) takes it out of the rotation."""
    lines = ["global", "    maxconn 4096", "defaults", "    mode tcp", "    timeout connect 1s",
             "    timeout client 120s", "    timeout server 120s", "    retries 2", "    option redispatch", ""]
    for listener in ("n32", "sbi"):
        lines += [f"frontend {listener}", f"    bind 127.0.0.1:{lab.port(f'{sepp}.{listener}')}",
                  f"    default_backend {listener}_workers", f"backend {listener}_workers", "    balance roundrobin"]
        lines += [f"    server w{i} 127.0.0.1:{lab.port(f'{worker_name(sepp, i)}.{listener}')} "
                  f"check inter 300ms fall 2 rise 1" for i in range(k)]
        lines.append("")
    return "\n".join(lines)


def haproxy_binary() -> str:
    for candidate in (shutil.which("haproxy"), "/usr/sbin/haproxy"):
        if candidate and Path(candidate).exists():
            return candidate
    raise RuntimeError("haproxy not found: install Debian's haproxy package (make system-deps)")


def start_side(lab: Lab, procs: P.Procs, sepp: str, k: int, *, slim: bool = False) -> list[P.Proc]:
    """k workers of one SEPP, then its HAProxy in front of them; returns once HAProxy listens."""
    out = lab.out
    started = []
    for i in range(k):
        w = worker_name(sepp, i)
        for suffix in WORKER_FILES:
            (out / f"{w}.{suffix}").unlink(missing_ok=True)
        path = worker_config(lab, sepp, i)
        p = procs.start_mitmdump(w, "addons/sepp.py", {
            "sepp_config": path, "n32_keylog": out / f"{w}.keylog.jsonl",
            "sepp_status": out / f"{w}.status.json", **lab.options.get(sepp, {})}, slim=slim, out=out)
        started.append(p)
    for i, p in enumerate(started):
        P.wait_port(lab.port(f"{worker_name(sepp, i)}.n32"), 30, [p])
        P.wait_port(lab.port(f"{worker_name(sepp, i)}.sbi"), 30, [p])
    cfg = out / f"{sepp}.haproxy.cfg"
    cfg.write_text(haproxy_config(lab, sepp, k))
    hp = procs.start(f"{sepp}.haproxy", [haproxy_binary(), "-db", "-f", str(cfg)], out=out)
    P.wait_port(lab.port(f"{sepp}.n32"), 15, [hp])
    return [*started, hp]


def statuses(out: Path, sepp: str, k: int) -> list[dict]:
    return [P.read_json(out / f"{worker_name(sepp, i)}.status.json") or {} for i in range(k)]


def established(out: Path, visited: str, home: str, home_fqdn: str, visited_fqdn: str, k: int) -> dict | None:
    """Every visited worker holds a relation (PRINS: a context) with the home SEPP, and each home
    worker holds at least one: round-robin gives each home worker one of the k handshakes."""
    rv = [(s.get("peers") or {}).get(home_fqdn) or {} for s in statuses(out, visited, k)]
    rh = [(s.get("peers") or {}).get(visited_fqdn) or {} for s in statuses(out, home, k)]
    if not all(r.get("capability") for r in rv):
        return None
    if rv[0]["capability"] == "PRINS" and not (all(r.get("context") for r in rv) and all(r.get("contexts") for r in rh)):
        return None
    return {"visited": rv[0], "home": rh[0], "workers": {"visited": rv, "home": rh}}


def keylogs(out: Path, sepp: str, k: int) -> list[Path]:
    return [out / f"{worker_name(sepp, i)}.keylog.jsonl" for i in range(k)]
