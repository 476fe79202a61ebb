"""SEPP configuration: the lab configs load; every mistake stops start-up with one line naming
the file, the key and the problem (issue 3)."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from certs.pki import ensure_lab_pki
from lab.topology import HOME, VISITED, Lab, sepp_config
from n32.config import ConfigError, load_sepp_config


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("pki")
    ensure_lab_pki(d)
    return d


def write(tmp: Path, pki: Path, edit=None) -> Path:
    cfg = sepp_config(Lab(out=tmp, pki=pki), VISITED, HOME, initiate=True)
    if edit:
        edit(cfg)
    p = tmp / "sepp.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


def test_lab_config_loads(tmp_path, pki):
    cfg = load_sepp_config(write(tmp_path, pki))
    assert cfg.fqdn == "sepp.5gc.mnc001.mcc001.3gppnetwork.org"
    assert [str(p) for p in cfg.plmn_ids] == ["001-01"]
    assert cfg.peers[0].security_capabilities == ("PRINS", "TLS")
    assert cfg.peers[0].options.kdf_context == "default"
    assert len(cfg.policies.placement) >= 6


@pytest.mark.parametrize("edit,key,problem", [
    (lambda c: c["peers"][0].update(trust_anchor="nope/ca.crt"), "peers[0].trust_anchor", "file not found"),
    (lambda c: c.update(plmn_ids=["1-1"]), "plmn_ids[0]", "PLMN ID"),
    (lambda c: c.update(security_capabilities=["PRINS", "ALS"]), "security_capabilities[1]", "must be one of"),
    (lambda c: c.update(jws_cipher_suites=["HS256"]), "jws_cipher_suites[0]", "must be one of"),
    (lambda c: c["listeners"]["n32"].update(port=70000), "listeners.n32.port", "1-65535"),
    (lambda c: c.update(fqdn="not a fqdn"), "fqdn", "not a valid FQDN"),
    (lambda c: c.update(colour="blue"), "colour", "unknown key"),
    (lambda c: c["peers"][0].update(security_capabilities=["NONE"]), "peers[0].security_capabilities[0]",
     "must be one of"),
    (lambda c: c["peers"][0]["options"].update(kdf_hash="md5") if "options" in c["peers"][0]
     else c["peers"][0].update(options={"kdf_hash": "md5"}), "peers[0].options.kdf_hash", "must be one of"),
    (lambda c: c.pop("certificate"), "certificate", "missing"),
    (lambda c: c["peers"].append(dict(c["peers"][0])), "peers[1].fqdn", "duplicate peer"),
])
def test_each_mistake_gives_one_line_naming_file_and_key(tmp_path, pki, edit, key, problem):
    path = write(tmp_path, pki, edit)
    with pytest.raises(ConfigError) as ei:
        load_sepp_config(path)
    msg = str(ei.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path}: {key}: ") and problem in msg, msg


def test_key_that_does_not_match_the_certificate(tmp_path, pki):
    path = write(tmp_path, pki, lambda c: c.update(private_key=str(pki / "plmn-999-70" / "sepp.key")))
    with pytest.raises(ConfigError, match=r"private_key: does not match"):
        load_sepp_config(path)


def test_pki_is_idempotent_and_follows_the_profile(tmp_path):
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    ensure_lab_pki(tmp_path)
    crt = tmp_path / "plmn-001-01" / "sepp.crt"
    before = crt.read_bytes()
    ensure_lab_pki(tmp_path)
    assert crt.read_bytes() == before
    cert = x509.load_pem_x509_certificate(before)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert "sepp.5gc.mnc001.mcc001.3gppnetwork.org" in san
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in eku and ExtendedKeyUsageOID.CLIENT_AUTH in eku
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).critical
    cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    ensure_lab_pki(tmp_path, force=True)
    assert crt.read_bytes() != before
    assert oct((tmp_path / "plmn-001-01" / "sepp.key").stat().st_mode)[-3:] == "600"
