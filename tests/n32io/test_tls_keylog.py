"""Every TLS context of n32io.tls writes the NSS key log (issue 15): a real in-memory handshake."""
from __future__ import annotations

from pathlib import Path

import pytest

from n32io import tls

from .memtls import pump


def handshake(pki: Path) -> None:
    me, peer = pki / "plmn-001-01", pki / "plmn-999-70"
    server = tls.server_connection(tls.server_context(peer / "sepp.crt", peer / "sepp.key",
                                                      client_anchors=[me / "ca.crt"]))
    client = tls.client_connection(tls.client_context(certificate=me / "sepp.crt", private_key=me / "sepp.key",
                                                      anchors=[peer / "ca.crt"]),
                                   "sepp.5gc.mnc070.mcc999.3gppnetwork.org")
    pump(client, server)
    assert client.get_alpn_proto_negotiated() == b"h2"


@pytest.fixture
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from certs.pki import ensure_lab_pki

    d = tmp_path_factory.getbasetemp() / "pki-keylog"
    ensure_lab_pki(d)
    return d


def test_option_file_gets_both_sides_secrets(pki: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSLKEYLOGFILE", raising=False)
    keys = tmp_path / "keys"
    tls.set_keylog(str(keys))
    try:
        handshake(pki)
    finally:
        tls.set_keylog(None)
    lines = keys.read_bytes().splitlines()
    labels = [line.split(b" ")[0] for line in lines]
    # client and server context each log the five TLS 1.3 secrets of the connection
    assert labels.count(b"CLIENT_TRAFFIC_SECRET_0") == 2 and labels.count(b"SERVER_HANDSHAKE_TRAFFIC_SECRET") == 2
    assert keys.stat().st_mode & 0o777 == 0o600


def test_environment_variable_and_off(pki: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keys = tmp_path / "env-keys"
    monkeypatch.setenv("SSLKEYLOGFILE", str(keys))
    handshake(pki)
    assert b"EXPORTER_SECRET" in keys.read_bytes()
    monkeypatch.delenv("SSLKEYLOGFILE")
    before = keys.read_bytes()
    handshake(pki)
    assert keys.read_bytes() == before


def test_handshake_failure_reason_without_the_proxy_wording() -> None:
    err = "OpenSSL Error([('SSL routines', '', 'session id context uninitialized')])"
    assert tls.handshake_failure(f"The client may not trust the proxy's certificate for 127.0.0.1:9 ({err})") == err
    assert tls.handshake_failure("The client disconnected during the handshake. If this happens ...") == \
        "the client closed the connection during the handshake"
    assert tls.handshake_failure("Cannot parse ClientHello: x") == "Cannot parse ClientHello: x"
    assert tls.handshake_failure(None) == "unknown"
