"""N32-f messages from a packet capture (pcap/pcapng), read with tshark and a TLS key log.

TLS is opened with the secrets the lab's processes wrote through ``SSLKEYLOGFILE`` (NSS key log
format); every port a TCP connection was opened to is decoded as TLS (the lab uses free ports,
not 443) and the HTTP/2 bodies tshark reassembles are returned when they are N32-f messages
(``reformattedData``, TS 29.573 §6.2.5.2.2-3). The JWE inside is for :mod:`addons.decode`.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Iterator

PCAP_MAGIC = (b"\x0a\x0d\x0d\x0a", b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")


def is_capture(path: str | Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) in PCAP_MAGIC
    except OSError:
        return False


def _tshark(args: list[str]) -> str:
    tshark = shutil.which("tshark")
    if not tshark:
        raise OSError("reading a capture needs tshark (Debian package tshark)")
    proc = subprocess.run([tshark, "-n", *args], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise OSError(f"tshark: {proc.stderr.strip()[-500:]}")
    return proc.stdout


def server_ports(path: str | Path) -> list[int]:
    """The ports TCP connections were opened to (SYN without ACK)."""
    out = _tshark(["-r", str(path), "-Y", "tcp.flags.syn == 1 && tcp.flags.ack == 0", "-T", "fields",
                   "-e", "tcp.dstport"])
    return sorted({int(p) for p in out.split()})


def http2_bodies(path: str | Path, tls_keylog: str | Path) -> Iterator[tuple[str, bytes]]:
    """``(where, body)`` of every complete HTTP/2 body in the capture.

    A body ends with the DATA frame carrying END_STREAM (RFC 9113 §6.1): tshark reassembles one
    sent in several frames (``http2.body.reassembled.data`` in that packet); one sent in a single
    frame is that frame's ``http2.data.data``. The per-frame fields of a packet come in frame
    order, one ``http2.data.data`` per DATA frame."""
    decode_as = [a for p in server_ports(path) for a in ("-d", f"tcp.port=={p},tls")]
    out = _tshark(["-r", str(path), "-o", f"tls.keylog_file:{tls_keylog}", *decode_as,
                   "-Y", "http2.type == 0", "-T", "fields", "-E", "separator=/t",
                   "-e", "frame.number", "-e", "tcp.srcport", "-e", "tcp.dstport", "-e", "http2.streamid",
                   "-e", "http2.type", "-e", "http2.flags", "-e", "http2.data.data",
                   "-e", "http2.body.reassembled.data"])
    for line in out.splitlines():
        frame, src, dst, streams, types, flags, data, reassembled = (line.split("\t") + [""] * 8)[:8]
        chunks = iter(data.split(",") if data else [])
        whole = iter(reassembled.split(",") if reassembled else [])
        for stream, kind, flag in zip(streams.split(","), types.split(","), flags.split(",")):
            if kind != "0":
                continue
            chunk = next(chunks, "")
            if not int(flag, 16) & 0x1:       # END_STREAM: the body is complete
                continue
            body = next(whole, None) or chunk
            if body:
                yield f"frame {frame} tcp {src}->{dst} stream {stream}", bytes.fromhex(body.replace(":", ""))
