"""Soak: N minutes of lab traffic through a PRINS pair that rekeys every few hundred messages,
with one injected restart (SIGKILL, then the same config) of the home SEPP.

    python -m bench.soak --minutes 10        (make soak MINUTES=10)

Prints the messages sent, the failed ones outside and inside the restart window (outside must be
0), the rekeys of each side, the recovery time after the restart, and the RSS of each SEPP after
warm-up and at the end (must stay within 10 %). Exit status 1 when a criterion is not met.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from lab import procs as P
from lab.load import Load, problem_defects
from lab.run import start_lab, start_sepp
from lab.topology import Lab
from n32.keylog import read_keylog

RSS_TOLERANCE = 0.10


def rss_kib(proc: P.Proc) -> int:
    for line in Path(f"/proc/{proc.popen.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {proc.name}")


def live(procs: P.Procs, name: str) -> P.Proc:
    return [p for p in procs.procs if p.name == name and p.alive()][-1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--max-messages", type=int, default=300, help="contexts.max_messages of both SEPPs")
    ap.add_argument("--workers", type=int, default=3, help="UEs in flight")
    ap.add_argument("--out", type=Path, default=None, help="lab output (default: a temporary directory)")
    ap.add_argument("--json", type=Path, default=None, help="write the figures here too")
    args = ap.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="soak-"))
    total = args.minutes * 60
    restart_at = min(60.0, total * 0.1)          # early, so both SEPPs are warm long before the end
    # warm-up: both SEPPs, the restarted one included, have run two minutes of traffic
    warm_at = min(max(restart_at + 120.0, total * 0.25), total * 0.5)
    small = {"contexts": {"max_messages": args.max_messages, "rekey_margin": max(10, args.max_messages // 6),
                          "rekey_grace": 2.0}}
    lab = Lab(out=out, pki=out / "pki", mode="prins", overrides={"sepp-v": small, "sepp-h": small})
    figures: dict = {"minutes": args.minutes, "max_messages": args.max_messages}
    with P.Procs(out) as procs:
        start_lab(lab, procs)
        load = Load(lab, workers=args.workers, deadline=10.0)
        t_start = time.monotonic()
        with load:
            time.sleep(restart_at)
            home = live(procs, "sepp-h")
            t_kill = time.monotonic()
            home.popen.send_signal(signal.SIGKILL)
            home.popen.wait(10)
            (out / "sepp-h.status.json").unlink(missing_ok=True)
            start_sepp(lab, procs, "sepp-h")
            t_ready = time.monotonic()
            time.sleep(max(0.0, t_start + warm_at - time.monotonic()))
            warm = {n: rss_kib(live(procs, n)) for n in ("sepp-v", "sepp-h")}
            while time.monotonic() - t_start < total:
                time.sleep(min(5.0, total - (time.monotonic() - t_start)))
            end = {n: rss_kib(live(procs, n)) for n in ("sepp-v", "sepp-h")}
        recovery = load.recovery(t_ready, horizon=30.0)   # a restart's failures end within 30 s
        t_recovered = t_ready + (recovery if recovery is not None else total)
        sent = [s for s in load.samples if s.sent]
        # the window: from the kill (requests in flight then included) until traffic succeeded again
        inside = [s for s in load.failed() if s.end >= t_kill and s.start < t_recovered]
        outside = [s for s in load.failed() if not (s.end >= t_kill and s.start < t_recovered)]
        texts = {n: "".join(p.log_text() for p in procs.procs if p.name == n) for n in ("sepp-v", "sepp-h")}
        figures.update({
            "messages_sent": len(sent),
            "failed_outside_restart_window": len(outside),
            "failed_inside_restart_window": len(inside),
            "restart_window_s": round(t_recovered - t_kill, 2),
            "recovery_s_after_restart": None if recovery is None else round(recovery, 2),
            # the home SEPP's log restarts with it; the visited key log holds every context
            "contexts_established": len(read_keylog(out / "sepp-v.keylog.jsonl")),
            "rekeys_logged": {n: t.count("-> rekeying") for n, t in texts.items()},
            "rss_kib_warm": warm, "rss_kib_end": end,
            "rss_change_pct": {n: round(100 * (end[n] - warm[n]) / warm[n], 1) for n in warm},
            "non_problem_details_answers": len(problem_defects(sent)),
            "failures": dict(Counter(f"{s.result.status} {s.result.error or ''}"[:120] for s in inside + outside)),
        })
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    ok = (not outside and recovery is not None and figures["non_problem_details_answers"] == 0
          and all(abs(v) <= 100 * RSS_TOLERANCE for v in figures["rss_change_pct"].values()))
    print("soak:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
