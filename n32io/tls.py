"""pyOpenSSL contexts for N32 (TS 33.501 §13.1, TS 33.210 §6.2; profile points 1-2).

* N32 server side: TLS 1.3 (1.2 only when a peer allows it), client certificate required and
  verified against the peers' trust anchors; then the certificate's PLMN IDs must select the
  anchor that issued it (TS 33.501 §13.1: a PLMN ID maps to one anchor only). That check runs
  inside the handshake (verify callback), so a wrong certificate fails the TLS handshake itself.
* N32 client side: the peer's anchor only, hostname verification against the peer FQDN, SNI.
* Every context made here writes its TLS secrets in the NSS key log format when a key log file
  is set (``set_keylog`` / ``SSLKEYLOGFILE``), so Wireshark can decrypt N32-c, N32-f and the NF
  side of a capture. Lab and debugging use only: the file decrypts every connection.
"""
from __future__ import annotations

import os
import threading
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from cryptography import x509
from OpenSSL import SSL, crypto

from n32.errors import N32Error
from n32.trust import check_server_plmns

N32_EXPORTER_LABEL = b"EXPORTER_3GPP_N32_MASTER"  # TS 33.501 §13.2.4.4.1

# X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS: wildcards only as a whole left-most label (RFC 6125).
_HOSTFLAGS = 0x4


class _KeyLog:
    """Where TLS secrets go: the file set by ``set_keylog`` (the ``tls_keylog`` option), else the
    ``SSLKEYLOGFILE`` environment variable, else nowhere. Read at each write so that an option set
    after the contexts were built still applies."""

    def __init__(self) -> None:
        self.path: str | None = None
        self._lock = threading.Lock()

    def target(self) -> str | None:
        return self.path or os.environ.get("SSLKEYLOGFILE") or None

    def __call__(self, conn: SSL.Connection, line: bytes) -> None:
        path = self.target()
        if not path:
            return
        with self._lock:  # 0600: the lines decrypt every connection
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line + b"\n")
            finally:
                os.close(fd)


_keylog = _KeyLog()


def set_keylog(path: str | None) -> None:
    """Write the secrets of every TLS connection of this process to ``path`` (None: back to
    ``SSLKEYLOGFILE``)."""
    _keylog.path = path or None


def keylog_target() -> str | None:
    return _keylog.target()


def keylog_callback(conn: SSL.Connection, line: bytes) -> None:
    """The key log writer, for TLS contexts made elsewhere (``Context.set_keylog_callback``)."""
    _keylog(conn, line)


def _new_context(method: int) -> SSL.Context:
    ctx = SSL.Context(method)
    ctx.set_keylog_callback(_keylog)
    return ctx


@dataclass
class ConnInfo:
    """Per-connection app data: the chain seen by the verify callback and the verdict."""

    certs_by_depth: dict[int, x509.Certificate] = field(default_factory=dict)
    peer: Any = None
    error: str | None = None
    alpn: tuple[bytes, ...] = (b"h2",)


def _load_anchor_store(ctx: SSL.Context, anchors: list[Path]) -> None:
    store = ctx.get_cert_store()
    assert store is not None
    for path in anchors:
        for cert in x509.load_pem_x509_certificates(Path(path).read_bytes()):
            store.add_cert(crypto.X509.from_cryptography(cert))


def _versions(ctx: SSL.Context, allow_tls12: bool) -> None:
    ctx.set_min_proto_version(SSL.TLS1_2_VERSION if allow_tls12 else SSL.TLS1_3_VERSION)
    ctx.set_max_proto_version(SSL.TLS1_3_VERSION)


def _alpn_select(conn: SSL.Connection, offers: list[bytes]) -> bytes | Any:
    info: ConnInfo = conn.get_app_data()
    for proto in info.alpn:
        if proto in offers:
            return proto
    # RFC 7301 §3.2: no protocol in common is a fatal no_application_protocol alert. Continuing
    # without ALPN served HTTP/1.1 on N32 (h2 only, TS 29.573) to a client offering only http/1.1.
    raise SSL.Error(f"no application protocol in common: offered {offers}, we speak {list(info.alpn)}")


def server_context(
    certificate: Path,
    private_key: Path,
    *,
    client_anchors: list[Path] | None = None,
    identify: Callable[[list[x509.Certificate]], Any] | None = None,
    allow_tls12: bool = False,
) -> SSL.Context:
    """A TLS server context; with ``client_anchors`` mutual TLS is required.

    ``identify(chain)`` runs once the chain is verified by OpenSSL; it returns the peer object
    (kept in the connection's ConnInfo) or raises to fail the handshake.
    """
    ctx = _new_context(SSL.TLS_SERVER_METHOD)
    _versions(ctx, allow_tls12)
    ctx.use_certificate_chain_file(str(certificate))
    ctx.use_privatekey_file(str(private_key))
    ctx.check_privatekey()
    ctx.set_alpn_select_callback(_alpn_select)
    if client_anchors:
        _load_anchor_store(ctx, client_anchors)

        def verify(conn: SSL.Connection, cert: crypto.X509, errno: int, depth: int, ok: int) -> bool:
            info: ConnInfo = conn.get_app_data()
            if not ok:
                info.error = f"certificate chain not trusted (X509 error {errno} at depth {depth})"
                return False
            info.certs_by_depth[depth] = cert.to_cryptography()
            if depth == 0 and identify is not None:
                chain = [info.certs_by_depth[d] for d in sorted(info.certs_by_depth)]
                try:
                    info.peer = identify(chain)
                except Exception as e:  # the verdict is the handshake failure itself
                    info.error = str(e)
                    return False
            return True

        ctx.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, verify)
        _no_resumption(ctx)
    return ctx


def _no_resumption(ctx: SSL.Context) -> None:
    """Every mutual-TLS connection is a full handshake; a client offering a session to resume
    (TLS 1.3 ticket, TLS 1.2 session ID: open5gs's libcurl does on parallel N32-f connections)
    falls back to one instead of being dropped.

    Why not resume: the peer is identified and checked against the current trust anchors inside
    the handshake (``verify`` above), which OpenSSL skips on resumption, and a ticket outlives
    changes of anchors and certificate validity. No ticket is issued (SSL_OP_NO_TICKET makes
    TLS 1.3 tickets stateful, and with the cache off no ticket is ever found again), and the
    session ID context is set because OpenSSL refuses a verified-peer resumption attempt without
    one ("session id context uninitialized") instead of ignoring it.
    """
    ctx.set_session_id(b"mitm-sepp-mtls")
    ctx.set_options(SSL.OP_NO_TICKET)
    ctx.set_session_cache_mode(SSL.SESS_CACHE_OFF)


def server_connection(ctx: SSL.Context, alpn: tuple[bytes, ...] = (b"h2",)) -> SSL.Connection:
    conn = SSL.Connection(ctx)
    conn.set_app_data(ConnInfo(alpn=alpn))
    conn.set_accept_state()
    return conn


def client_context(
    *,
    certificate: Path | None,
    private_key: Path | None,
    anchors: list[Path],
    allow_tls12: bool = False,
    peer_plmns: list | None = None,
) -> SSL.Context:
    """A TLS client context trusting only ``anchors`` (the peer's own trust anchor); with
    ``peer_plmns`` the server certificate must name those PLMNs only (n32.trust.check_server_plmns)."""
    ctx = _new_context(SSL.TLS_CLIENT_METHOD)
    _versions(ctx, allow_tls12)
    if certificate and private_key:
        ctx.use_certificate_chain_file(str(certificate))
        ctx.use_privatekey_file(str(private_key))
        ctx.check_privatekey()
    _load_anchor_store(ctx, anchors)

    def verify(conn: SSL.Connection, cert: crypto.X509, errno: int, depth: int, ok: int) -> bool:
        if not ok or depth != 0 or peer_plmns is None:
            return bool(ok)
        try:
            check_server_plmns(cert.to_cryptography(), peer_plmns)
        except N32Error as e:  # the verdict is the handshake failure itself
            info = conn.get_app_data()
            if isinstance(info, ConnInfo):
                info.error = e.detail
            return False
        return True

    ctx.set_verify(SSL.VERIFY_PEER, verify)
    return ctx


def client_connection(
    ctx: SSL.Context, server_name: str, alpn: tuple[bytes, ...] = (b"h2",)
) -> SSL.Connection:
    """A client connection that sends SNI and verifies the certificate for ``server_name``."""
    conn = SSL.Connection(ctx)
    conn.set_app_data(ConnInfo(alpn=alpn))
    host = server_name.encode("idna")
    conn.set_tlsext_host_name(host)
    # Hostname verification as mitmproxy does it (no public pyOpenSSL API for it).
    param = SSL._lib.SSL_get0_param(conn._ssl)  # type: ignore[attr-defined]
    SSL._lib.X509_VERIFY_PARAM_set_hostflags(param, _HOSTFLAGS)  # type: ignore[attr-defined]
    SSL._openssl_assert(SSL._lib.X509_VERIFY_PARAM_set1_host(param, host, len(host)) == 1)  # type: ignore[attr-defined]
    if alpn:
        conn.set_alpn_protos(list(alpn))
    conn.set_connect_state()
    return conn


def export_n32_master(conn: SSL.Connection) -> bytes:
    """The N32-f master key: exporter label EXPORTER_3GPP_N32_MASTER, empty context, 64 octets
    (TS 33.501 §13.2.2.2 step 4, §13.2.4.4.1; profile point 8)."""
    return conn.export_keying_material(N32_EXPORTER_LABEL, 64, b"")


_PROXY_HINT = re.compile(r"The client (?:may not|does not) trust the proxy's certificate for \S+ \((?P<err>.*)\)$",
                         re.DOTALL)


def handshake_failure(message: str | None) -> str:
    """mitmproxy's reason for a failed client handshake without its proxy wording: as a SEPP we
    are the server, our certificate is not in question, and the address it names is the
    placeholder upstream. What remains is OpenSSL's error."""
    if not message:
        return "unknown"
    m = _PROXY_HINT.match(message)
    if m:
        return m.group("err")
    if message.startswith("The client disconnected during the handshake"):
        return "the client closed the connection during the handshake"
    return message
