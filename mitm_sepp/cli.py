"""``mitm-sepp COMMAND [ARGS]``: the tools of the project behind one console command.

Each command hands its arguments to the module a clone runs with ``python -m`` (same options,
``mitm-sepp COMMAND --help``); ``sepp``, ``ipx`` and ``view`` start mitmproxy with the installed
addon, so an installed SEPP needs no path to a script.
"""
from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Callable

ADDONS = Path(__file__).resolve().parent.parent / "addons"
BIN = Path(sys.executable).parent


def _lab(argv: list[str]) -> int:
    from lab.run import main
    return main(argv)


def _decode(argv: list[str]) -> int:
    from addons.decode import main
    return main(argv)


def _pki(argv: list[str]) -> int:
    from certs.pki import main
    return main(argv)


def _replay(argv: list[str]) -> int:
    from lab.replay import main
    return main(argv)


def _probe(argv: list[str]) -> int:
    from probe.__main__ import main
    return main(argv)


def _slim(argv: list[str]) -> int:
    from n32io.slim import main
    return asyncio.run(main(["-s", str(ADDONS / "sepp.py"), *argv]))


def _policies(argv: list[str]) -> int:
    import policies

    print(policies.DIR)
    return 0


def _mitm(tool: str, script: str) -> Callable[[list[str]], int]:
    def run(argv: list[str]) -> int:
        exe = BIN / tool
        if not exe.exists():
            print(f"mitm-sepp: {tool} not found next to {sys.executable}", file=sys.stderr)
            return 2
        os.execv(exe, [str(exe), "-s", str(ADDONS / script), *argv])
        return 0  # not reached
    return run


COMMANDS: dict[str, tuple[Callable[[list[str]], int], str]] = {
    "lab": (_lab, "the two-PLMN roaming lab (make lab): --ues N --mode prins|tls --ipx 1 --keep 1 ..."),
    "sepp": (_mitm("mitmdump", "sepp.py"), "a SEPP: mitmdump with the SEPP addon (--set sepp_config=FILE ...)"),
    "sepp-web": (_mitm("mitmweb", "sepp.py"), "the same under mitmweb (web UI, command API)"),
    "ipx": (_mitm("mitmdump", "ipx.py"), "a roaming intermediary: mitmdump with the IPX addon (--set ipx_config=FILE)"),
    "view": (_mitm("mitmweb", "n32view.py"), "mitmweb with the N32-f content view (-r FLOWS --set n32view_keylog=...)"),
    "decode": (_decode, "decode and verify saved N32-f flows with an n32 key log"),
    "pki": (_pki, "the lab PKI (CAs, SEPP/NF certificates, IPX keys): --out DIR"),
    "slim": (_slim, "the SEPP addon in a minimal mitmproxy master for load (--set sepp_config=FILE)"),
    "probe": (_probe, "TS 33.517 SEPP test cases against any SEPP (--target URL --config FILE)"),
    "replay": (_replay, "record or retarget the NF side of the roaming scenario"),
    "policies": (_policies, "print the directory of the shipped protection policies"),
}


def usage() -> str:
    lines = ["usage: mitm-sepp COMMAND [ARGS...]   (mitm-sepp COMMAND --help for its options)", "", "commands:"]
    lines += [f"  {name:10} {text}" for name, (_, text) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0 if argv else 2
    command = COMMANDS.get(argv[0])
    if command is None:
        print(f"mitm-sepp: unknown command {argv[0]!r}\n\n{usage()}", file=sys.stderr)
        return 2
    result = command[0](argv[1:])
    return int(result or 0)
