"""Client identification on N32 (n32/trust.py) with the lab PKI's real certificates."""
from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509

from n32 import trust
from n32.errors import N32Error

V_FQDN, H_FQDN = "sepp.5gc.mnc001.mcc001.3gppnetwork.org", "sepp.5gc.mnc070.mcc999.3gppnetwork.org"


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    from certs.pki import ensure_lab_pki

    d = tmp_path_factory.mktemp("pki")
    ensure_lab_pki(d)
    return d


def chain(pki: Path, name: str) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates((pki / f"{name}.crt").read_bytes())


def peers(pki: Path) -> list[trust.PeerTrust]:
    return [trust.PeerTrust(V_FQDN, ["001-01"], [pki / "plmn-001-01" / "ca.crt"]),
            trust.PeerTrust(H_FQDN, ["999-70"], [pki / "plmn-999-70" / "ca.crt"])]


def test_the_peers_sepp_certificate_identifies_it(pki):
    assert trust.identify_client_peer(chain(pki, "plmn-001-01/sepp"), peers(pki)).fqdn == V_FQDN
    assert trust.identify_client_peer(chain(pki, "plmn-999-70/sepp"), peers(pki)).fqdn == H_FQDN


def test_an_nf_certificate_of_the_peer_operator_is_not_a_sepp_certificate(pki):
    # same CA, same PLMN, SAN *.5gc.mnc001.mcc001.3gppnetwork.org: still refused
    with pytest.raises(N32Error) as e:
        trust.identify_client_peer(chain(pki, "plmn-001-01/nf"), peers(pki))
    assert e.value.cause == "CERTIFICATE_FQDN_MISMATCH" and V_FQDN in e.value.detail


@pytest.mark.parametrize("name", ["rogue/sepp-001-01", "rogue/cross-001-01"])
def test_a_certificate_from_another_ca_is_refused(pki, name):
    with pytest.raises(N32Error) as e:
        trust.identify_client_peer(chain(pki, name), peers(pki))
    assert e.value.status == 403 and "not issued by the anchor" in e.value.detail


def test_a_certificate_without_plmn_names_is_refused(pki):
    with pytest.raises(N32Error) as e:
        trust.identify_client_peer(chain(pki, "ipx/ipx1.ipx.lab"), peers(pki))
    assert e.value.cause == "CERTIFICATE_PLMN_MISMATCH"


def test_no_certificate_is_refused():
    with pytest.raises(N32Error) as e:
        trust.identify_client_peer([], [])
    assert e.value.cause == "CERTIFICATE_REQUIRED"


def test_an_ipx_is_identified_by_its_own_anchor(pki):
    ipxs = [trust.IpxTrust("ipx1.ipx.lab", [pki / "plmn-001-01" / "ca.crt"])]
    assert trust.identify_client(chain(pki, "ipx/ipx1.ipx.lab"), peers(pki), ipxs).fqdn == "ipx1.ipx.lab"


def test_a_server_certificate_must_name_only_the_peers_plmns(pki):
    """Client role of SCAS 4.2.5: the server's PLMNs must all be the dialled peer's."""
    trust.check_server_plmns(chain(pki, "plmn-001-01/sepp")[0], ["001-01"])
    for name, plmns in (("plmn-001-01/sepp", ["999-70"]), ("ipx/ipx1.ipx.lab", ["001-01"])):
        with pytest.raises(N32Error) as e:
            trust.check_server_plmns(chain(pki, name)[0], plmns)
        assert e.value.cause == "CERTIFICATE_PLMN_MISMATCH"
