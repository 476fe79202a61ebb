"""A slim mitmproxy runner for load: only the addons a SEPP/IPX needs.

    python -m addons.slim -s addons/sepp.py --set sepp_config=FILE [--set n32_keylog=FILE]

``mitmdump -s`` dispatches every hook through ~40 built-in addons; measured on our machines a
Master with only core, proxyserver, next_layer, tlsconfig and errorcheck forwards ~1.5x more.
Use this for benchmarks and load; use mitmdump/mitmweb to inspect (flows are not kept here).
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from mitmproxy import master, options
from mitmproxy.addons import core, errorcheck, next_layer, proxyserver, script, tlsconfig


def parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m addons.slim", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-s", "--script", action="append", default=[], help="addon script (repeatable)")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="option (repeatable)")
    ap.add_argument("-v", "--verbose", action="store_true")
    return ap.parse_args(argv)


async def main(argv: list[str]) -> int:
    args = parse(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stdout)
    opts = options.Options()
    m = master.Master(opts, with_termlog=False)
    m.addons.add(core.Core(), proxyserver.Proxyserver(), next_layer.NextLayer(), tlsconfig.TlsConfig(),
                 errorcheck.ErrorCheck(), script.ScriptLoader())
    # the scripts register their options when they load: defer ours until then (as mitmdump does)
    opts.set(*args.set, defer=True)
    opts.update(scripts=args.script)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, m.shutdown)
    await m.run()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
