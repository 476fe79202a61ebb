"""``make lab CAPTURE=1``: a pcapng of the lab's loopback traffic and the TLS keys to read it.

dumpcap (Debian ``tshark``) captures the lab's ports on ``lo`` into ``lab/out/lab.pcapng``; every
process of the lab (SEPPs, IPXs, NF stubs, the traffic source) writes its TLS secrets to
``lab/out/tls-keys.txt`` through ``SSLKEYLOGFILE`` (NSS key log format). Wireshark/tshark then
show N32-c and N32-f in clear HTTP/2 (``-o tls.keylog_file:lab/out/tls-keys.txt``); the N32-f
JWE inside is opened with the n32 key log (``python -m addons.decode``). docs/inspection.md.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from lab import procs as P
from lab.topology import Lab

PCAP = "lab.pcapng"
TLS_KEYS = "tls-keys.txt"


def tshark_decode_as(ports: dict[str, int]) -> list[str]:
    """``-d tcp.port==N,tls`` for every lab port: the lab uses free ports, not TLS's 443."""
    return [arg for port in sorted(set(ports.values())) for arg in ("-d", f"tcp.port=={port},tls")]


def start(lab: Lab, procs: P.Procs) -> P.Proc:
    """Key log for every process started from now on, and dumpcap on the lab's ports."""
    dumpcap = shutil.which("dumpcap")
    if not dumpcap:
        raise RuntimeError("CAPTURE=1 needs dumpcap (Debian package tshark; `make system-deps` installs it)")
    keys = lab.out / TLS_KEYS
    keys.unlink(missing_ok=True)
    # TLS secrets: owner-only, like the n32 key log (os.open: created 0600 whatever the umask)
    os.close(os.open(keys, os.O_CREAT | os.O_WRONLY, 0o600))
    os.environ["SSLKEYLOGFILE"] = str(keys)
    ports = sorted(set(lab.ports.values()))
    pcap = lab.out / PCAP
    pcap.unlink(missing_ok=True)
    proc = procs.start("dumpcap", [dumpcap, "-q", "-i", "lo", "-f", " or ".join(f"tcp port {p}" for p in ports),
                                   "-w", str(pcap)], out=lab.out, drain=1.0)
    # drain: on Linux, libpcap hands packets over in blocks retired by a timer; dumpcap stopped
    # right after the last message would lose the last block, so it stops a second after the rest.
    # dumpcap writes the pcapng section header once it captures
    P.wait_for(lambda: pcap.exists() and pcap.stat().st_size > 0, 15, "dumpcap to start capturing", [proc])
    return proc


def describe(out: Path, ports: dict[str, int]) -> str:
    return (f"capture in {out / PCAP} with TLS keys in {out / TLS_KEYS}: tshark -r {out / PCAP} "
            f"-o tls.keylog_file:{out / TLS_KEYS} {' '.join(tshark_decode_as(ports))} -Y http2")
