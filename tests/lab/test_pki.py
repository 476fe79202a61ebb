"""Lab PKI (certs/pki.py): TS 33.310 §6.1.3c profile, chains that verify against the right anchor
only, IPX keys, idempotence, --force, key file modes."""
from __future__ import annotations

import datetime
import os
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certs import pki
from n32.plmn import PlmnId, plmns_from_certificate

V_FQDN = "sepp.5gc.mnc001.mcc001.3gppnetwork.org"
H_FQDN = "sepp.5gc.mnc070.mcc999.3gppnetwork.org"


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> dict:
    return pki.ensure_lab_pki(tmp_path_factory.mktemp("pki"))


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def ext(cert: x509.Certificate, cls):
    return cert.extensions.get_extension_for_class(cls)


def verify(leaf: Path, anchor: Path, server_name: str | None = None, client: bool = False) -> None:
    store = verification.Store(x509.load_pem_x509_certificates(anchor.read_bytes()))
    builder = verification.PolicyBuilder().store(store)
    if client:
        builder.build_client_verifier().verify(load(leaf), [])
    else:
        builder.build_server_verifier(x509.DNSName(server_name)).verify(load(leaf), [])


def files(root: Path) -> dict[Path, tuple[bytes, int]]:
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(root.rglob("*")) if p.is_file()
            and p.name != ".lock"}


def test_layout_and_returned_paths(lab):
    out = lab["out"]
    for plmn in ("001-01", "999-70"):
        d = out / f"plmn-{plmn}"
        for name in ("ca", "sepp", "nf"):
            assert (d / f"{name}.crt").is_file() and (d / f"{name}.key").is_file()
        assert lab["plmns"][plmn]["sepp_cert"] == d / "sepp.crt"
    assert lab["plmns"]["999-70"]["sepp_fqdn"] == H_FQDN
    for fqdn, plmn in (("ipx1.ipx.lab", "001-01"), ("ipx2.ipx.lab", "999-70")):
        assert lab["ipx"][fqdn] == {"key": out / "ipx" / f"{fqdn}.key", "pub": out / "ipx" / f"{fqdn}.pub",
                                    "cert": out / "ipx" / f"{fqdn}.crt", "plmn": plmn}
    assert lab["rogue"]["sepp_cert"] == out / "rogue" / "sepp-001-01.crt"
    assert lab["rogue"]["cross_cert"] == out / "rogue" / "cross-001-01.crt"


def test_ca_profile(lab):
    ca = load(lab["plmns"]["001-01"]["ca_cert"])
    bc = ext(ca, x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0
    ku = ext(ca, x509.KeyUsage)
    assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign and not ku.value.digital_signature
    ext(ca, x509.SubjectKeyIdentifier)
    assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey) and ca.public_key().curve.name == "secp256r1"


@pytest.mark.parametrize("plmn,fqdn,mnc3,mcc", [("001-01", V_FQDN, "001", "001"), ("999-70", H_FQDN, "070", "999")])
def test_sepp_certificate_follows_ts_33_310(lab, plmn, fqdn, mnc3, mcc):
    cert = load(lab["plmns"][plmn]["sepp_cert"])
    ca = load(lab["plmns"][plmn]["ca_cert"])
    domain = f"5gc.mnc{mnc3}.mcc{mcc}.3gppnetwork.org"
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == domain
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == fqdn
    assert len(cert.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value) == 2
    san = ext(cert, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [fqdn, f"*.{fqdn}", "localhost"]
    assert [str(a) for a in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    ku = ext(cert, x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and not ku.value.key_cert_sign
    eku = ext(cert, x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in eku and ExtendedKeyUsageOID.CLIENT_AUTH in eku
    aki = ext(cert, x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ext(ca, x509.SubjectKeyIdentifier).value.digest
    assert not ext(cert, x509.BasicConstraints).value.ca
    assert cert.not_valid_after_utc - cert.not_valid_before_utc <= datetime.timedelta(days=3 * 365)
    assert 0 < cert.serial_number and len(cert.serial_number.to_bytes(21, "big").lstrip(b"\0")) <= 20
    assert plmns_from_certificate(cert) == {PlmnId.parse(plmn)}


def test_chains_verify_against_their_own_anchor_only(lab):
    v, h = lab["plmns"]["001-01"], lab["plmns"]["999-70"]
    verify(v["sepp_cert"], v["ca_cert"], V_FQDN)
    verify(v["sepp_cert"], v["ca_cert"], "ausf.sepp.5gc.mnc001.mcc001.3gppnetwork.org")   # telescopic wildcard
    verify(v["sepp_cert"], v["ca_cert"], client=True)
    verify(h["sepp_cert"], h["ca_cert"], H_FQDN)
    verify(h["nf_cert"], h["ca_cert"], "ausf.5gc.mnc070.mcc999.3gppnetwork.org")
    with pytest.raises(verification.VerificationError):
        verify(v["sepp_cert"], h["ca_cert"], V_FQDN)
    with pytest.raises(verification.VerificationError):
        verify(h["sepp_cert"], h["ca_cert"], V_FQDN)                                       # wrong name


def test_rogue_certificates(lab):
    r, v, h = lab["rogue"], lab["plmns"]["001-01"], lab["plmns"]["999-70"]
    for cert in (r["sepp_cert"], r["cross_cert"]):
        assert plmns_from_certificate(load(cert)) == {PlmnId("001", "01")}
        with pytest.raises(verification.VerificationError):
            verify(cert, v["ca_cert"], V_FQDN)                 # not issued by 001-01's anchor
    verify(r["sepp_cert"], r["ca_cert"], V_FQDN)               # only the rogue CA vouches for it
    verify(r["cross_cert"], h["ca_cert"], V_FQDN)              # issued by the 999-70 CA: wrong anchor for 001-01


def test_ipx_keys(lab):
    for fqdn, paths in lab["ipx"].items():
        key = serialization.load_pem_private_key(paths["key"].read_bytes(), None)
        assert paths["key"].read_bytes().startswith(b"-----BEGIN " + b"PRIVATE KEY-----")      # PKCS#8
        pub = serialization.load_pem_public_key(paths["pub"].read_bytes())
        assert paths["pub"].read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")       # SPKI
        assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"    # ES256
        assert pub.public_numbers() == key.public_key().public_numbers()
        cert = load(paths["cert"])
        assert cert.public_key().public_numbers() == pub.public_numbers()
        verify(paths["cert"], lab["plmns"][paths["plmn"]]["ca_cert"], fqdn)


def test_private_keys_are_0600(lab):
    keys = list(lab["out"].rglob("*.key"))
    assert len(keys) == 2 * 3 + 3 + 2
    for k in keys:
        assert oct(k.stat().st_mode & 0o777) == "0o600", k


def test_idempotent_then_force(tmp_path):
    pki.ensure_lab_pki(tmp_path)
    before = files(tmp_path)
    pki.ensure_lab_pki(tmp_path)
    assert files(tmp_path) == before                      # same bytes, same mtimes
    pki.ensure_lab_pki(tmp_path, force=True)
    after = files(tmp_path)
    assert after.keys() == before.keys()
    for p in before:
        assert after[p][0] != before[p][0], p             # every key and certificate regenerated


def test_invalid_material_is_replaced_and_what_it_issued_too(tmp_path):
    pki.ensure_lab_pki(tmp_path)
    d = tmp_path / "plmn-999-70"
    (d / "nf.key").write_bytes(b"garbage")
    nf_before, sepp_before = (d / "nf.crt").read_bytes(), (d / "sepp.crt").read_bytes()
    pki.ensure_lab_pki(tmp_path)
    assert (d / "nf.crt").read_bytes() != nf_before and (d / "sepp.crt").read_bytes() == sepp_before
    serialization.load_pem_private_key((d / "nf.key").read_bytes(), None)
    # a new CA (its key no longer matches) means new leaves below it, the IPX it contracts included
    (d / "ca.key").write_bytes((tmp_path / "plmn-001-01" / "ca.key").read_bytes())
    ipx_before = (tmp_path / "ipx" / "ipx2.ipx.lab.crt").read_bytes()
    pki.ensure_lab_pki(tmp_path)
    verify(d / "sepp.crt", d / "ca.crt", H_FQDN)
    verify(tmp_path / "ipx" / "ipx2.ipx.lab.crt", d / "ca.crt", "ipx2.ipx.lab")
    verify(tmp_path / "rogue" / "cross-001-01.crt", d / "ca.crt", V_FQDN)
    assert (tmp_path / "ipx" / "ipx2.ipx.lab.crt").read_bytes() != ipx_before


def test_certificate_expiring_soon_is_renewed(tmp_path, monkeypatch):
    pki.ensure_lab_pki(tmp_path)
    crt = tmp_path / "plmn-001-01" / "sepp.crt"
    before = crt.read_bytes()
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=340)
    monkeypatch.setattr(pki, "_now", lambda: later)
    pki.ensure_lab_pki(tmp_path)
    assert crt.read_bytes() != before


def test_cli_custom_plmns_and_ipx_names(tmp_path, capsys):
    rc = pki.main(["--out", str(tmp_path), "--plmn", "262-01", "--plmn", "310-410",
                   "--ipx", "ipx-c.lab", "--ipx", "ipx-p.lab=262-01"])
    assert rc == 0
    assert "sepp.5gc.mnc410.mcc310.3gppnetwork.org" in capsys.readouterr().out
    san = ext(load(tmp_path / "plmn-262-01" / "sepp.crt"), x509.SubjectAlternativeName).value
    assert "sepp.5gc.mnc001.mcc262.3gppnetwork.org" in san.get_values_for_type(x509.DNSName)
    verify(tmp_path / "ipx" / "ipx-c.lab.crt", tmp_path / "plmn-262-01" / "ca.crt", "ipx-c.lab")
    verify(tmp_path / "ipx" / "ipx-p.lab.crt", tmp_path / "plmn-262-01" / "ca.crt", "ipx-p.lab")
    assert (tmp_path / "rogue" / "cross-262-01.crt").is_file()
    assert pki.main(["--out", str(tmp_path), "--plmn", "262-01", "--ipx", "x.lab=999-99"]) == 2
    assert "not among" in capsys.readouterr().err


def test_single_plmn_has_no_cross_certificate(tmp_path):
    res = pki.ensure_lab_pki(tmp_path, plmns=["001-01"], ipxs=[])
    assert "cross_cert" not in res["rogue"] and res["ipx"] == {}
    assert not (tmp_path / "rogue" / "cross-001-01.crt").exists()


def test_writes_are_atomic_no_temporary_files_left(tmp_path):
    pki.ensure_lab_pki(tmp_path)
    assert not [p for p in tmp_path.rglob(".*") if p.name != ".lock"]
    assert os.access(tmp_path / ".lock", os.F_OK)


def test_extra_sepp_certificate_for_any_fqdn(tmp_path):
    """--sepp FQDN=MCC-MNC: a SEPP certificate for a peer implementation's configured name (the
    README's open5gs recipe), and one naming no PLMN, as open5gs's sample certificates."""
    good = "sepp.5gc.mnc070.mcc999.3gppnetwork.org"
    assert pki.main(["--out", str(tmp_path), "--plmn", "999-70", "--sepp", f"{good}=999-70",
                     "--sepp", "sepp1.localdomain=999-70"]) == 0
    for fqdn, plmns in ((good, {PlmnId.parse("999-70")}), ("sepp1.localdomain", set())):
        cert = x509.load_pem_x509_certificate((tmp_path / "plmn-999-70" / f"{fqdn}.crt").read_bytes())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.DNSName) == [fqdn, "localhost"]
        assert plmns_from_certificate(cert) == plmns
        assert (tmp_path / "plmn-999-70" / f"{fqdn}.key").stat().st_mode & 0o777 == 0o600
    assert pki.main(["--out", str(tmp_path), "--plmn", "999-70", "--sepp", "x.example=001-01"]) == 2
    assert pki.main(["--out", str(tmp_path), "--plmn", "999-70", "--sepp", "x.example"]) == 2
