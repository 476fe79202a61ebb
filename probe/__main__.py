"""``python -m probe --target https://sepp.example:PORT --config probe.yaml [--case ID ...]``

Plays the peer SEPP (and its IPX, and the NF behind the target) against the target SEPP, runs
the selected cases and prints a table; ``--json`` and ``--junit`` write the report for CI.
Exit status: 0 when every case passed or was not applicable, 1 otherwise, 2 on a bad config.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from .config import ProbeConfigError, load
from .runner import Probe


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m probe", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, type=Path, help="probe.yaml (see README: probing a SEPP)")
    ap.add_argument("--target", help="the target's N32-c apiRoot (overrides target.n32c)")
    ap.add_argument("--case", action="append", default=[], help="case ID to run (repeatable; default: all)")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    ap.add_argument("--json", type=Path, help="write the report as JSON")
    ap.add_argument("--junit", type=Path, help="write the report as JUnit XML")
    args = ap.parse_args(argv)
    from .cases import CASES
    if args.list:
        for c in CASES.values():
            print(f"{c.id:28} {'/'.join(c.modes):10} {c.title}")
        return 0
    try:
        cfg = load(args.config)
    except (ProbeConfigError, KeyError, TypeError) as e:
        print(f"probe: bad configuration: {e}", file=sys.stderr)
        return 2
    if args.target:
        cfg = dataclasses.replace(cfg, target=dataclasses.replace(cfg.target, n32c=args.target.rstrip("/")))
    unknown = [c for c in args.case if c not in CASES]
    if unknown:
        print(f"probe: unknown case(s) {unknown}; --list shows them", file=sys.stderr)
        return 2
    with Probe(cfg) as p:
        rep = p.run(args.case or None)
    print(rep.table())
    if args.json:
        args.json.write_text(rep.to_json())
    if args.junit:
        args.junit.write_text(rep.junit())
    return 0 if rep.ok else 1


if __name__ == "__main__":
    sys.exit(main())
