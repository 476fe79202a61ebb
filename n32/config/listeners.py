"""``listeners:``: where a SEPP or IPX accepts connections."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import show
from .fields import REQUIRED, Section

_WILDCARD_HOSTS = ("", "0.0.0.0", "::", "[::]")


@dataclass(frozen=True)
class Listener:
    host: str
    port: int
    tls: bool = True
    certificate: Path | None = None
    private_key: Path | None = None


@dataclass(frozen=True)
class Listeners:
    n32: Listener
    n32f: Listener | None = None
    sbi: Listener | None = None


def listener(m: Section | None, with_tls: bool) -> Listener | None:
    if m is None:
        return None
    host = m.get("host", str, "127.0.0.1")
    if not host.strip() or any(ch.isspace() for ch in host):
        m.fail(f"not a host name or address: {show(host)}", "host")
    port = m.integer("port", REQUIRED, minimum=1, maximum=65535)
    if not with_tls:
        return Listener(host, port)
    tls = m.get("tls", bool, True)
    cert, key = m.path("certificate", None), m.path("private_key", None)
    if (cert is None) != (key is None):
        m.fail("certificate and private_key go together", "private_key" if cert else "certificate")
    if cert is not None:
        if not tls:
            m.fail("a certificate needs tls: true", "certificate")
        m.files.cert_and_key(m.k("certificate"), cert, m.k("private_key"), key)
    return Listener(host, port, tls, cert, key)


def same_socket(a: Listener, b: Listener) -> bool:
    return a.port == b.port and (a.host == b.host or a.host in _WILDCARD_HOSTS or b.host in _WILDCARD_HOSTS)


def sepp_listeners(top: Section) -> Listeners:
    lm = top.sub("listeners", ("n32", "n32f", "sbi"), required=True)
    assert lm is not None
    n32 = listener(lm.sub("n32", ("host", "port"), required=True), with_tls=False)
    n32f = listener(lm.sub("n32f", ("host", "port")), with_tls=False)
    sbi = listener(lm.sub("sbi", ("host", "port", "tls", "certificate", "private_key")), with_tls=True)
    assert n32 is not None
    for other, other_key in ((n32, "n32"), (n32f, "n32f")):
        if sbi is not None and other is not None and same_socket(sbi, other):
            lm.fail(f"same address as listeners.{other_key} ({other.host}:{other.port})", "sbi.port")
    return Listeners(n32, n32f, sbi)
