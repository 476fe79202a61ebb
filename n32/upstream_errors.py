"""What the NF is told when the next hop fails (TS 29.500 §5.2.7, TS 29.571 ProblemDetails).

The SEPP dials every next hop itself (n32io.upstream); a failure there has a *kind* (what went
wrong) and a *hop* (where). This module turns the pair into the answer; it never sees an address,
so no internal host or port can leak into a detail sent to an NF or across N32.

| hop \\ kind      | unreachable, tls                | reset, protocol                | timeout                |
|-----------------|---------------------------------|--------------------------------|------------------------|
| nf (home NF)    | 504 TARGET_NF_NOT_REACHABLE     | 504 TARGET_NF_NOT_REACHABLE    | 504 TIMED_OUT_REQUEST  |
| peer, ipx, next | 502 N32_PEER_NOT_REACHABLE      | 502 N32F_FORWARDING_FAILED     | 504 TIMED_OUT_REQUEST  |

TARGET_NF_NOT_REACHABLE and TIMED_OUT_REQUEST are TS 29.500 Table 5.2.7.2-1 causes (504).
TS 29.500 has no cause for a SEPP that cannot reach the next SEPP or IPX on N32: ours name
that hop (N32_PEER_NOT_REACHABLE: no connection; N32F_FORWARDING_FAILED: connection broke before
the answer) so that an operator reading the NF's log knows which side failed. The home SEPP's
answer for its NF hop travels back inside the N32-f response like any NF answer, so the visited
NF sees the home side's cause unchanged.
"""
from __future__ import annotations

from .errors import N32Error

# kinds of failure (set by the I/O layer)
UNREACHABLE = "unreachable"   # no TCP connection (refused, no route, name not resolved)
TLS = "tls"                   # TLS handshake failed or the server refused our certificate
RESET = "reset"               # connection closed or reset before the whole answer arrived
PROTOCOL = "protocol"         # the server broke HTTP (no ALPN h2, invalid frames, bad status line)
TIMEOUT = "timeout"           # no complete answer within the hop's deadline
KINDS = (UNREACHABLE, TLS, RESET, PROTOCOL, TIMEOUT)

PEER_NOT_REACHABLE = "N32_PEER_NOT_REACHABLE"   # our cause: no connection to the N32 next hop

# hops
NF = "nf"          # the home NF the receiving SEPP delivers to
PEER = "peer"      # N32-f to the peer SEPP
IPX = "ipx"        # N32-f to our first-hop IPX
NEXT = "next"      # an IPX's next N32-f hop (the next IPX or the receiving SEPP)
HOPS = (NF, PEER, IPX, NEXT)

_WHO = {NF: "the home NF", PEER: "the peer SEPP", IPX: "the first-hop IPX", NEXT: "the IPX's next N32-f hop"}
_WHAT = {
    UNREACHABLE: "is not reachable",
    TLS: "refused the TLS handshake",
    RESET: "closed the connection before answering",
    PROTOCOL: "broke the HTTP/2 protocol",
}


def upstream_failure(hop: str, kind: str, deadline: float | None = None) -> N32Error:
    """The ProblemDetails for a failed hop. ``deadline`` (seconds) is named for timeouts."""
    if hop not in HOPS or kind not in KINDS:
        raise ValueError(f"unknown hop/kind {hop!r}/{kind!r}")
    who = _WHO[hop]
    if kind == TIMEOUT:
        within = f" within {deadline:g} s" if deadline is not None else ""
        return N32Error(504, "TIMED_OUT_REQUEST", f"{who} did not answer{within}")
    detail = f"{who} {_WHAT[kind]}"
    if hop == NF:
        return N32Error(504, "TARGET_NF_NOT_REACHABLE", detail)
    if kind in (UNREACHABLE, TLS):
        return N32Error(502, PEER_NOT_REACHABLE, detail)
    return N32Error(502, "N32F_FORWARDING_FAILED", detail)
