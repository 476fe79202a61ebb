"""``python -m bench.cold``: the core's steps hot (back to back, as ``bench.core`` times them) and
cold (each after ~1 ms of unrelated work over a few MB of Python objects, as in a SEPP under load,
where mitmproxy's layers run between two messages) (issue 14 goal 2).

    python -m bench.cold [--rounds 1500] [--work 3000]

Measured in a live PRINS SEPP under ``h2load`` (the steps wrapped with ``process_time``), protect
and open cost 1.8-3.2x their ``bench.core`` figure; this reproduces that outside the proxy, so
that a change to the core can be judged in the regime that counts (fewer objects and calls
touched per message, not only fewer instructions in a warm loop). CPU time per step, µs.
"""
from __future__ import annotations

import argparse
import gc
import random
import sys
import time
from typing import Callable

from bench.core import Pipeline, context_pair, lab_messages, load_policy


class Heap:
    """Unrelated work: random reads over ~60,000 small objects (a few MB, beyond the L2 cache)."""

    def __init__(self, n: int = 60_000, seed: int = 1) -> None:
        self.objs = [{f"k{i}": [i, str(i), (i, i)]} for i in range(n)]
        self.rng = random.Random(seed)

    def work(self, reads: int) -> int:
        s, objs, pick = 0, self.objs, self.rng.randrange
        for _ in range(reads):
            for v in objs[pick(len(objs))].values():
                s += v[0]
        return s


def steps(pipe: Pipeline, heap: Heap, reads: int, rounds: int) -> dict[str, float]:
    """Mean CPU µs of each step of the Nausf exchange, with ``reads`` of ``heap`` before each."""
    req, rsp = next(iter(lab_messages().values()))
    acc = {"protect request": 0, "open request": 0, "protect response": 0, "open response": 0}
    clock = time.process_time_ns

    def timed(name: str, fn: Callable[[], object]) -> object:
        heap.work(reads)
        t = clock()
        out = fn()
        acc[name] += clock() - t
        return out

    for _ in range(rounds):
        wire, mid = timed("protect request", lambda: pipe.protect_request(req))  # type: ignore[misc]
        timed("open request", lambda: pipe.open_request(wire))
        wire_r = timed("protect response", lambda: pipe.protect_response(rsp, req, mid))
        timed("open response", lambda: pipe.open_response(wire_r, mid))  # type: ignore[arg-type]
    return {k: v / rounds / 1000 for k, v in acc.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=1500)
    ap.add_argument("--work", type=int, default=3000, help="object reads before each step (~1 ms)")
    args = ap.parse_args(argv)
    policy = load_policy()
    pipe, heap = Pipeline(policy, *context_pair(policy)), Heap()
    gc.collect()
    gc.freeze()     # the filler is not scanned by the collections the steps trigger
    rows = {}
    for label, reads in (("hot", 0), ("cold", args.work), ("hot", 0), ("cold", args.work)):  # interleaved
        for k, v in steps(pipe, heap, reads, args.rounds).items():
            rows.setdefault((k, label), []).append(v)
    print(f"{'step (Nausf)':18} {'hot µs':>8} {'cold µs':>8} {'x':>5}")
    for k in ("protect request", "open request", "protect response", "open response"):
        hot, cold = min(rows[(k, "hot")]), min(rows[(k, "cold")])
        print(f"{k:18} {hot:8.1f} {cold:8.1f} {cold / hot:5.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
