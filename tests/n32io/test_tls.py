"""n32io.tls: the TLS contexts of N32 (TS 33.501 §13.1, TS 33.210 profile) in real handshakes
between two pyOpenSSL connections in memory, with the lab PKI's certificates."""
from __future__ import annotations

from pathlib import Path

import pytest
from OpenSSL import SSL

from n32 import trust
from n32.plmn import PlmnId
from n32io import tls

from .memtls import pump

HOME = "sepp.5gc.mnc070.mcc999.3gppnetwork.org"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from certs.pki import ensure_lab_pki

    d = tmp_path_factory.mktemp("pki-tls")
    ensure_lab_pki(d)
    return d


def pair(pki: Path, *, identify=None, client_anchor: str = "plmn-999-70", server_name: str = HOME,
         peer_plmns=None, client_tls12_only: bool = False) -> tuple[SSL.Connection, SSL.Connection]:
    me, peer = pki / "plmn-001-01", pki / "plmn-999-70"
    server = tls.server_connection(tls.server_context(peer / "sepp.crt", peer / "sepp.key",
                                                      client_anchors=[me / "ca.crt"], identify=identify))
    cctx = tls.client_context(certificate=me / "sepp.crt", private_key=me / "sepp.key",
                              anchors=[pki / client_anchor / "ca.crt"], peer_plmns=peer_plmns,
                              allow_tls12=client_tls12_only)
    if client_tls12_only:
        cctx.set_max_proto_version(SSL.TLS1_2_VERSION)
    return tls.client_connection(cctx, server_name), server


def test_mutual_tls_exports_one_n32_master_per_connection(pki: Path) -> None:
    client, server = pair(pki, identify=lambda chain: trust.cert_plmn_ids(chain[0]))
    pump(client, server)
    assert client.get_protocol_version_name() == "TLSv1.3" and server.get_alpn_proto_negotiated() == b"h2"
    master = tls.export_n32_master(client)
    assert len(master) == 64 and master == tls.export_n32_master(server)     # TS 33.501 §13.2.2.2 step 4
    assert PlmnId("001", "01") in set(server.get_app_data().peer)            # identify() ran on the chain
    client2, server2 = pair(pki)
    pump(client2, server2)
    assert tls.export_n32_master(client2) != master


def test_client_refuses_a_server_of_another_root(pki: Path) -> None:
    client, server = pair(pki, client_anchor="plmn-001-01")      # trusts its own root, not the peer's
    with pytest.raises(SSL.Error):
        pump(client, server)


def test_client_checks_the_server_name(pki: Path) -> None:
    client, server = pair(pki, server_name="sepp.5gc.mnc098.mcc998.3gppnetwork.org")
    with pytest.raises(SSL.Error):
        pump(client, server)


def test_server_identify_refusal_fails_the_handshake(pki: Path) -> None:
    def refuse(chain):
        raise ValueError("PLMN 001-01 is not a configured peer")

    client, server = pair(pki, identify=refuse)
    with pytest.raises(SSL.Error):
        pump(client, server)
    assert server.get_app_data().error == "PLMN 001-01 is not a configured peer"


def test_client_refuses_a_server_certificate_naming_other_plmns(pki: Path) -> None:
    client, server = pair(pki, peer_plmns=[PlmnId("998", "98")])
    with pytest.raises(SSL.Error):
        pump(client, server)
    assert client.get_app_data().error                 # the reason, for the log


def test_tls_1_2_is_refused_unless_allowed(pki: Path) -> None:
    client, server = pair(pki, client_tls12_only=True)
    with pytest.raises(SSL.Error):
        pump(client, server)


def test_handshake_failure_wording() -> None:
    assert tls.handshake_failure(None) == "unknown"
    assert tls.handshake_failure("The client may not trust the proxy's certificate for 127.0.0.1 "
                                 "(sslv3 alert bad certificate)") == "sslv3 alert bad certificate"
    assert "closed the connection" in tls.handshake_failure("The client disconnected during the handshake.")


def test_a_client_offering_no_protocol_we_speak_fails_the_handshake(pki: Path) -> None:
    """RFC 7301 §3.2: a fatal alert. Continuing without ALPN served HTTP/1.1 on N32 (h2 only)."""
    me, peer = pki / "plmn-001-01", pki / "plmn-999-70"
    cctx = tls.client_context(certificate=me / "sepp.crt", private_key=me / "sepp.key", anchors=[peer / "ca.crt"])

    def server() -> SSL.Connection:
        return tls.server_connection(tls.server_context(peer / "sepp.crt", peer / "sepp.key",
                                                        client_anchors=[me / "ca.crt"]))
    with pytest.raises(SSL.Error):
        pump(tls.client_connection(cctx, HOME, alpn=(b"http/1.1",)), server())
    plain, s = tls.client_connection(cctx, HOME, alpn=()), server()   # no ALPN offered: as before
    pump(plain, s)
    assert s.get_alpn_proto_negotiated() == b""
