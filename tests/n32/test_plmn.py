"""PLMN IDs (n32/plmn.py): value type, home network domain, FQDN and certificate PLMNs,
3gpp-Sbi-Originating-Network-Id."""
from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from n32.plmn import PlmnId, home_domain, plmn_from_fqdn, plmns_from_certificate, sepp_fqdn


@pytest.mark.parametrize("value", ["001-01", " 999-070 ", {"mcc": "001", "mnc": "01"},
                                   {"mcc": "001", "mnc": "01", "nid": "000007ED9D5"}, ("001", "01")])
def test_parse_accepts(value):
    p = PlmnId.parse(value)
    assert p.mcc in ("001", "999") and p.mnc in ("01", "070")
    assert PlmnId.parse(p) is p


@pytest.mark.parametrize("value", ["1-1", "001-1", "001-0101", "00101", "001_01", "abc-de", "", None, 101,
                                   {"mcc": "001"}, {"mcc": 1, "mnc": "01"}, "٠٠١-٠١", "001-01\n-"])
def test_parse_rejects(value):
    with pytest.raises(ValueError):
        PlmnId.parse(value)


def test_constructor_validates():
    with pytest.raises(ValueError, match="MCC"):
        PlmnId("01", "01")
    with pytest.raises(ValueError, match="MNC"):
        PlmnId("001", "1")
    with pytest.raises(ValueError):
        PlmnId("001\n", "01")


def test_text_and_wire_forms_keep_the_digits():
    p = PlmnId("999", "70")
    assert str(p) == "999-70" and p.to_wire() == {"mcc": "999", "mnc": "70"}
    assert p.mnc3 == "070" and p.key == ("999", "070")


def test_equality_pads_the_mnc():
    assert PlmnId("999", "70") == PlmnId("999", "070")
    assert hash(PlmnId("999", "70")) == hash(PlmnId("999", "070"))
    assert {PlmnId("999", "70")} == {PlmnId("999", "070")}
    assert PlmnId("999", "70") != PlmnId("999", "71") and PlmnId("999", "70") != PlmnId("998", "70")
    assert PlmnId("001", "01") != "001-01"
    assert PlmnId("999", "70").matches_fqdn_mnc("070") and not PlmnId("999", "70").matches_fqdn_mnc("70")
    assert sorted([PlmnId("999", "70"), PlmnId("001", "02"), PlmnId("001", "01")]) == \
        [PlmnId("001", "01"), PlmnId("001", "02"), PlmnId("999", "70")]


def test_frozen():
    with pytest.raises(AttributeError):
        PlmnId("001", "01").mcc = "002"  # type: ignore[misc]


def test_home_domain():
    assert home_domain("001-01") == "5gc.mnc001.mcc001.3gppnetwork.org"
    assert home_domain(PlmnId("999", "70")) == "5gc.mnc070.mcc999.3gppnetwork.org"
    assert home_domain({"mcc": "345", "mnc": "12"}) == "5gc.mnc012.mcc345.3gppnetwork.org"   # TS 23.003 example
    assert home_domain("310-410") == "5gc.mnc410.mcc310.3gppnetwork.org"
    assert sepp_fqdn("001-01") == "sepp.5gc.mnc001.mcc001.3gppnetwork.org"
    assert PlmnId("001", "01").home_domain() == home_domain("001-01")


@pytest.mark.parametrize("fqdn,expected", [
    ("sepp.5gc.mnc001.mcc001.3gppnetwork.org", PlmnId("001", "01")),
    ("AUSF.5GC.MNC070.MCC999.3GPPNETWORK.ORG.", PlmnId("999", "70")),
    ("*.sepp.5gc.mnc070.mcc999.3gppnetwork.org", PlmnId("999", "070")),
    ("5gc.mnc410.mcc310.3gppnetwork.org", PlmnId("310", "410")),
    ("epdg.epc.mnc001.mcc001.pub.3gppnetwork.org", PlmnId("001", "01")),
    ("nrf.5gc.nid000007ed9d5.mnc001.mcc001.3gppnetwork.org", PlmnId("001", "01")),
    # telescopic FQDN: the foreign FQDN is one label; the SEPP's own domain decides
    ("ausf-5gc-mnc070-mcc999-3gppnetwork-org.sepp.5gc.mnc001.mcc001.3gppnetwork.org", PlmnId("001", "01")),
    ("mnc070.mcc999.5gc.mnc001.mcc001.3gppnetwork.org", PlmnId("001", "01")),                 # rightmost pair
    ("sepp.5gc.mnc01.mcc001.3gppnetwork.org", None),                                           # 2 digits
    ("sepp.5gc.mnc001.mcc001.3gppnetwork.org.evil.example", None),
    ("sepp.5gc.mnc001.mcc001.example.org", None),
    ("sepp.5gc.mcc001.mnc001.3gppnetwork.org", None),
    ("localhost", None),
    ("127.0.0.1", None),
    ("", None),
])
def test_plmn_from_fqdn(fqdn, expected):
    assert plmn_from_fqdn(fqdn) == expected


def test_plmn_from_fqdn_keeps_three_digits_and_lax_mode():
    p = plmn_from_fqdn("sepp.5gc.mnc070.mcc999.3gppnetwork.org")
    assert p is not None and p.mnc == "070" and str(p) == "999-070"
    assert plmn_from_fqdn("example.sepp.5gc.mnc002.mcc262.exampleipx.ipxnetwork.org", strict=False) == \
        PlmnId("262", "02")
    assert plmn_from_fqdn(None) is None  # type: ignore[arg-type]


def _cert(dns: list[str], org: str) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, org), x509.NameAttribute(NameOID.COMMON_NAME, "x")])
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
         .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1)))
    if dns:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]), critical=False)
    return b.sign(key, hashes.SHA256())


def test_plmns_from_certificate():
    c = _cert(["sepp.5gc.mnc001.mcc001.3gppnetwork.org", "*.sepp.5gc.mnc001.mcc001.3gppnetwork.org", "localhost",
               "sepp.5gc.mnc002.mcc001.3gppnetwork.org"], "5gc.mnc001.mcc001.3gppnetwork.org")
    assert plmns_from_certificate(c) == {PlmnId("001", "01"), PlmnId("001", "02")}
    assert plmns_from_certificate(_cert([], "5gc.mnc070.mcc999.3gppnetwork.org")) == {PlmnId("999", "70")}  # subject O
    assert plmns_from_certificate(_cert(["localhost"], "Example Corp")) == set()
