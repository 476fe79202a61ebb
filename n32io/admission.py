"""What a listener accepts, decided from the first bytes a client sends (pure, no I/O).

* A listener configured for TLS (N32-c, N32-f, the NF side with ``tls: true``) accepts a TLS
  ClientHello and nothing else: cleartext HTTP on it would bypass mutual TLS, the peer
  authentication of TS 33.501 §13.1 and the confidentiality of the SBI (TS 33.501 §13.1.0).
* A cleartext listener (the NF side with ``tls: false``) accepts HTTP/1.1 and HTTP/2 with prior
  knowledge (RFC 9113 §3.3: the client opens with the connection preface; open5gs NFs, nghttp and
  h2load do), and refuses TLS, which it has no certificate policy for.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from n32.header_limits import HeaderLimits

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"  # RFC 9113 §3.4

# TLS record header (RFC 8446 §5.1): type 22 handshake, legacy version 3.x, 2-octet length,
# then the handshake message type, 1 = ClientHello (RFC 8446 §4).
_HANDSHAKE, _MAJOR, _CLIENT_HELLO = 0x16, 0x03, 0x01
_TLS_HEAD = 6


@dataclass(frozen=True)
class Listener:
    """One listener as the admission and header checks see it."""
    name: str                      # as in the configuration, e.g. "listeners.sbi"
    tls: bool                      # TLS required
    headers: HeaderLimits = field(default_factory=HeaderLimits)


class Verdict(Enum):
    MORE = "more"        # too few octets to tell yet
    TLS = "tls"          # a TLS ClientHello: continue with the TLS handshake
    H2C = "h2c"          # cleartext HTTP/2 with prior knowledge
    HTTP1 = "http/1.1"   # cleartext, not the HTTP/2 preface: HTTP/1.1
    REFUSE = "refuse"    # not allowed on this listener: close the connection


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: str = ""


def _tls_prefix(data: bytes) -> bool | None:
    """True: a ClientHello record starts here; False: it cannot be one; None: need more octets."""
    head = data[:_TLS_HEAD]
    checks = ((0, lambda b: b == _HANDSHAKE), (1, lambda b: b == _MAJOR), (2, lambda b: b <= 0x04),
              (5, lambda b: b == _CLIENT_HELLO))
    for i, ok in checks:
        if len(head) > i and not ok(head[i]):
            return False
    return True if len(head) >= _TLS_HEAD else None


def admit(first: bytes, *, tls: bool) -> Decision:
    """Whether a connection whose client sent ``first`` (so far) may go on, and as what."""
    if not first:
        return Decision(Verdict.MORE)
    hello = _tls_prefix(first)
    if tls:
        if hello is None:
            return Decision(Verdict.MORE)
        if hello:
            return Decision(Verdict.TLS)
        what = "HTTP/2 preface" if first.startswith(H2_PREFACE[:3]) else "cleartext"
        return Decision(Verdict.REFUSE, f"{what} on a TLS listener (first octets {first[:8]!r})")
    if first[0] == _HANDSHAKE:
        return Decision(Verdict.REFUSE, "TLS on a cleartext listener")
    if first.startswith(H2_PREFACE):
        return Decision(Verdict.H2C)
    if H2_PREFACE.startswith(first):
        return Decision(Verdict.MORE)
    return Decision(Verdict.HTTP1)
