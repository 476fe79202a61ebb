"""``python -m bench.spyshare PROFILE.raw``: our share of a SEPP's py-spy samples (issue 14 goal 2).

Reads ``py-spy record --format raw`` output (one collapsed stack and its count a line). A sample is
ours when, walking from the innermost frame outwards, a frame of ours (``n32/``, ``n32io/``,
``addons/`` but the listener layers) comes before any frame of mitmproxy, asyncio, h2, hpack,
OpenSSL or the ssl module: so JSON, base64 and crypto called by us count as ours, and what
mitmproxy does for us (building a response we hand it) counts as mitmproxy's. Prints the share by
module (of the samples where the event loop's thread works: py-spy counts threads blocked in
a queue or ``select`` as active, they are left out), then the functions with the most samples on their stack (``--top N``, inclusive) and the
innermost frames (self).
"""
from __future__ import annotations

import argparse
import collections
import re
import sys

FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^():]*?)(?::(?P<line>\d+))?\)$")
OURS = ("n32/", "n32io/", "addons/")
NOT_OURS = ("addons/listener_layers.py", "addons/slim.py")
THEIRS = ("mitmproxy/", "asyncio/", "h2/", "hpack/", "hyperframe/", "OpenSSL/", "ssl.py", "selectors.py")


def frames(stack: str) -> list[tuple[str, str]]:
    out = []
    for f in stack.split(";"):
        m = FRAME.match(f)
        out.append((m["func"], m["file"]) if m else (f, ""))
    return out


def owner(stack: list[tuple[str, str]], by_function: bool = False) -> str:
    for func, file in reversed(stack):
        if file.startswith(OURS) and not file.startswith(NOT_OURS):
            return f"{func} ({file})" if by_function else file
        if any(t in file for t in THEIRS) or file.startswith(NOT_OURS):
            return "other:" + (file.split("/", 1)[0] if "/" in file else file)
    return "other:?"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("profile")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--grep", help="only stacks with a frame containing this")
    args = ap.parse_args(argv)
    by_owner: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    self_: collections.Counter[str] = collections.Counter()
    by_func: collections.Counter[str] = collections.Counter()
    total = idle = 0
    with open(args.profile) as fh:
        for line in fh:
            stack, _, n = line.rstrip("\n").rpartition(" ")
            if not stack or (args.grep and args.grep not in stack):
                continue
            count = int(n)
            fs = frames(stack)
            # py-spy counts threads blocked in a queue or select (the metrics server, executor
            # workers, the loop's own select) as active: only the event loop's work is counted
            if not any(f == "BaseEventLoop._run_once" for f, _ in fs) or fs[-1][0].endswith(".select"):
                idle += count
                continue
            total += count
            by_owner[owner(fs)] += count
            by_func[owner(fs, True)] += count
            for key in {f"{func} ({file})" for func, file in fs}:
                incl[key] += count
            self_[f"{fs[-1][0]} ({fs[-1][1]})"] += count
    if not total:
        print("no samples")
        return 1
    ours = sum(c for k, c in by_owner.items() if not k.startswith("other:"))
    print(f"{total} samples of the event loop ({idle} idle or in other threads left out); "
          f"ours {100 * ours / total:.1f} %")
    mods = sorted(by_owner.items(), key=lambda kv: -kv[1])
    print("  " + ", ".join(f"{k} {100 * c / total:.1f}" for k, c in mods if 100 * c / total >= 0.3))
    print(f"\nours by innermost function of ours (top {args.top}):")
    for k, c in [kv for kv in by_func.most_common() if not kv[0].startswith("other:")][:args.top]:
        print(f"  {100 * c / total:5.1f}  {k}")
    print(f"\ninclusive (top {args.top}):")
    for k, c in incl.most_common(args.top):
        print(f"  {100 * c / total:5.1f}  {k}")
    print(f"\nself (top {args.top}):")
    for k, c in self_.most_common(args.top):
        print(f"  {100 * c / total:5.1f}  {k}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
