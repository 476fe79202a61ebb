"""``python -m bench.engine``: the two SEPPs' engines of the lab in one process, hot and cold
(issue 14 goal 2).

    python -m bench.engine [--mode prins|tls|both] [--rounds 1000] [--work 3000] [--calls]

Builds the lab's visited and home SEPP engines from the lab's own configuration files (as
``make lab`` writes them; certificates from ``certs/out``), joins them by an in-process N32-c
handshake (real N32-KDF, a random value for the TLS exporter), and times each engine entry point
of one exchange of ``make bench``'s Nausf request as a SEPP runs it: the visited SEPP's
``on_request`` (NF request -> N32-f), the home SEPP's ``on_request`` (N32-f -> home NF), the home
SEPP's ``on_response`` and the visited SEPP's ``on_response``. Rows hot (back to back) and cold
(each step after ~1 ms of unrelated work over a few MB of objects, as between two messages in a
live SEPP: ``bench.cold``), CPU µs per step. ``--calls``: the Python and C calls of each step
(what a change removes, read without timing noise).
"""
from __future__ import annotations

import argparse
import collections
import gc
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from bench.cold import Heap
from bench.run import ANSWER, HEADERS, PATH, REQUEST
from certs.pki import ensure_lab_pki
from lab.topology import HOME, VISITED, Lab, sepp_fqdn, write_configs
from n32 import config, engine, handshake as hs
from n32.context import ContextStore
from n32.exchange import Answer, Exchange, Forward, Listener
from n32.message import HttpRequest, HttpResponse
from n32.peer import Peer

ROOT = Path(__file__).resolve().parent.parent


class Pair:
    """The lab's two engines, related by N32-c in ``mode``."""

    def __init__(self, mode: str) -> None:
        pki = ROOT / "certs/out"
        ensure_lab_pki(pki)
        with tempfile.TemporaryDirectory(prefix="mitm-sepp-engine-") as out:    # read once, then gone
            lab = Lab(out=Path(out), pki=pki, mode=mode)
            lab.overrides["sepp-h"] = {"home_nfs": {"default": "https://127.0.0.1:9"}}
            paths = write_configs(lab)
            cfg_v, cfg_h = config.load_sepp_config(paths["sepp-v"]), config.load_sepp_config(paths["sepp-h"])
        self.v_fqdn, self.h_fqdn = sepp_fqdn(VISITED), sepp_fqdn(HOME)
        self.clock = 1_000_000.0
        self.store_v, self.store_h = ContextStore(lambda: self.clock), ContextStore(lambda: self.clock)
        self.v = engine.build(cfg_v, self.store_v)
        self.h = engine.build(cfg_h, self.store_h, os.urandom(32))
        local_v = hs.LocalSepp.from_config(cfg_v, self.v.policy)
        local_h = hs.LocalSepp.from_config(cfg_h, self.h.policy)
        resp = hs.Responder(local_h, [Peer.from_config(p) for p in cfg_h.peers], self.store_h)
        master = os.urandom(64)
        conn = hs.ConnectionState(resp.peers[self.v_fqdn], lambda: master)
        peer_h = next(Peer.from_config(p) for p in cfg_v.peers if p.fqdn == self.h_fqdn)
        init = hs.Initiator(local_v, peer_h, exporter=conn.exporter, now=self.clock)
        while (step := init.next_request()) is not None:
            out = resp.handle(conn, *step, now=self.clock)
            init.receive(out.status, out.body)
        self.store_v.set_relation(self.h_fqdn, init.peer_relation())
        if init.context is not None:
            init.context.send_ready = True
            self.store_v.add(init.context)
        for ctx in self.store_h.all():
            ctx.send_ready = True
        self.request = HttpRequest("POST", "https", f"127.0.0.1:{lab.port('sepp-v.sbi')}", PATH,
                                   headers=[tuple(h.split(": ", 1)) for h in HEADERS]  # type: ignore[misc]
                                   + [("content-length", str(len(REQUEST)))], body=REQUEST)
        self.answer = HttpResponse(201, [("content-type", "application/json"),
                                         ("content-length", str(len(ANSWER)))], ANSWER)

    def steps(self) -> list[tuple[str, Callable[[dict], None]]]:
        """The four engine calls of one exchange; each passes what the next needs in ``st``."""
        def v_request(st: dict) -> None:
            st["ex_v"] = ex = Exchange(listener=Listener.SBI, now=self.clock)
            st["fwd_v"] = _one(self.v.on_request(ex, self.request.evolve(headers=list(self.request.headers))), Forward)

        def h_request(st: dict) -> None:
            st["ex_h"] = ex = Exchange(listener=Listener.N32F, peer_identity=self.v_fqdn, now=self.clock)
            st["fwd_h"] = _one(self.h.on_request(ex, st["fwd_v"].request), Forward)

        def h_response(st: dict) -> None:
            st["ans_h"] = _one(self.h.on_response(st["ex_h"], self.answer), Answer)

        def v_response(st: dict) -> None:
            st["ans_v"] = _one(self.v.on_response(st["ex_v"], st["ans_h"].response), Answer)
            if st["ans_v"].response.status != 201:
                raise RuntimeError(f"the exchange failed: {st['ans_v'].response}")
        return [("visited on_request", v_request), ("home on_request", h_request),
                ("home on_response", h_response), ("visited on_response", v_response)]


def _one(actions: list, kind: type) -> Any:
    found = [a for a in actions if isinstance(a, kind)]
    if len(found) != 1:
        raise RuntimeError(f"expected one {kind.__name__}, got {actions}")
    return found[0]


def timed(pair: Pair, heap: Heap, reads: int, rounds: int) -> dict[str, float]:
    steps = pair.steps()
    acc = dict.fromkeys((n for n, _ in steps), 0)
    clock = time.process_time_ns
    for _ in range(rounds):
        st: dict = {}
        for name, fn in steps:
            heap.work(reads)
            t = clock()
            fn(st)
            acc[name] += clock() - t
        pair.clock += 0.001
    return {k: v / rounds / 1000 for k, v in acc.items()}


def calls(pair: Pair) -> dict[str, tuple[int, int]]:
    """(Python calls, C calls) of each step, counted with a profile hook."""
    out = {}
    st: dict = {}
    for name, fn in pair.steps():
        c: collections.Counter = collections.Counter()

        def prof(frame: Any, event: str, arg: Any) -> None:
            if event in ("call", "c_call"):
                c[event] += 1
        sys.setprofile(prof)
        fn(st)
        sys.setprofile(None)
        out[name] = (c["call"], c["c_call"])
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=("prins", "tls", "both"), default="both")
    ap.add_argument("--rounds", type=int, default=1000)
    ap.add_argument("--work", type=int, default=3000, help="object reads before each step (~1 ms)")
    ap.add_argument("--calls", action="store_true")
    args = ap.parse_args(argv)
    heap = Heap()
    for mode in ("prins", "tls") if args.mode == "both" else (args.mode,):
        pair = Pair(mode)
        timed(pair, heap, 0, 50)        # warm-up: caches of the engine and the interpreter
        if args.calls:
            print(f"{mode}: " + ", ".join(f"{k} {py}+{c}" for k, (py, c) in calls(pair).items())
                  + "  (Python + C calls)")
        gc.collect()
        gc.freeze()
        rows: dict[tuple[str, str], list[float]] = {}
        for label, reads in (("hot", 0), ("cold", args.work), ("hot", 0), ("cold", args.work)):
            for k, v in timed(pair, heap, reads, args.rounds).items():
                rows.setdefault((k, label), []).append(v)
        gc.unfreeze()
        print(f"{mode + ' engine step':24} {'hot µs':>8} {'cold µs':>8} {'x':>5}")
        total = [0.0, 0.0]
        for k in dict.fromkeys(k for k, _ in rows):
            hot, cold = min(rows[(k, "hot")]), min(rows[(k, "cold")])
            total[0] += hot
            total[1] += cold
            print(f"{k:24} {hot:8.1f} {cold:8.1f} {cold / hot:5.1f}")
        print(f"{'per exchange (2 SEPPs)':24} {total[0]:8.1f} {total[1]:8.1f} {total[1] / total[0]:5.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
