"""Lab PKI (cryptography library): one CA per PLMN (the trust anchors), SEPP and NF certificates
per TS 33.310 §6.1.3c, ES256 keys for IPX providers, and deliberately wrong certificates for
the negative tests.

    python -m certs.pki --out certs/out [--plmn 001-01 --plmn 999-70] [--ipx ipx1.ipx.lab] [--force]

Layout (``--out``)::

    plmn-<mcc>-<mnc>/ca.crt|key        trust anchor of that PLMN
    plmn-<mcc>-<mnc>/sepp.crt|key      SEPP: SAN sepp.5gc.mnc<MNC3>.mcc<MCC>.3gppnetwork.org (+ wildcard for
                                       telescopic FQDNs, localhost, 127.0.0.1), serverAuth+clientAuth
    plmn-<mcc>-<mnc>/nf.crt|key        lab NFs: SAN *.5gc.mnc<MNC3>.mcc<MCC>.3gppnetwork.org
    ipx/<fqdn>.key|pub|crt             IPX ES256 key, public key, certificate by its contracting PLMN's CA
    rogue/ca.crt|key                   a CA nobody trusts
    rogue/sepp-001-01.crt|key          claims PLMN 001-01, signed by the rogue CA
    rogue/cross-001-01.crt|key         claims PLMN 001-01, signed by the 999-70 CA (wrong anchor)

Idempotent: valid existing files (parse, match their key, not expiring within 30 days) are kept.
Private keys are written with mode 0600 and are git-ignored.
"""
from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_PLMNS = ("001-01", "999-70")
DEFAULT_IPX = {"ipx1.ipx.lab": "001-01", "ipx2.ipx.lab": "999-70"}  # IPX -> contracting PLMN
VALIDITY = datetime.timedelta(days=365)  # TS 33.310: at most 3 years


def home_domain(plmn: str) -> str:
    mcc, mnc = plmn.split("-")
    return f"5gc.mnc{mnc.zfill(3)}.mcc{mcc}.3gppnetwork.org"


def sepp_fqdn(plmn: str) -> str:
    return f"sepp.{home_domain(plmn)}"


def _p(base: Path, ext: str) -> Path:
    """``base`` + extension (names such as ipx1.ipx.lab contain dots: no with_suffix)."""
    return base.parent / (base.name + ext)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write(path: Path, cert: x509.Certificate | None, key: ec.EllipticCurvePrivateKey) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    kp = _p(path, ".key")
    fd = os.open(kp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    if cert is not None:
        _p(path, ".crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _valid(path: Path) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(_p(path, ".crt").read_bytes())
        key = serialization.load_pem_private_key(_p(path, ".key").read_bytes(), None)
    except (OSError, ValueError, TypeError):
        return False
    soon = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=30)
    return cert.not_valid_after_utc > soon and cert.public_key().public_numbers() == key.public_key().public_numbers()


def _load(path: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert = x509.load_pem_x509_certificate(_p(path, ".crt").read_bytes())
    key = serialization.load_pem_private_key(_p(path, ".key").read_bytes(), None)
    return cert, key  # type: ignore[return-value]


def _ca(path: Path, name: str, force: bool) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    if not force and _valid(path):
        return _load(path)
    key = _key()
    now = datetime.datetime.now(datetime.timezone.utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "XX"),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, name),
                         x509.NameAttribute(NameOID.COMMON_NAME, f"{name} lab CA")])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    _write(path, cert, key)
    return cert, key


def _leaf(path: Path, ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey], *, cn: str, org: str,
          dns: list[str], force: bool, key: ec.EllipticCurvePrivateKey | None = None) -> None:
    """An end-entity certificate per TS 33.310 §6.1.3c (digitalSignature critical, EKU, AKI)."""
    if not force and _valid(path):
        return
    key = key or _key()
    ca_cert, ca_key = ca
    now = datetime.datetime.now(datetime.timezone.utc)
    san: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    san += [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "XX"),
                                     x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
                                     x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())  # < 20 octets
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + VALIDITY)
            .add_extension(x509.SubjectAlternativeName(san), critical=False)
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256()))
    _write(path, cert, key)


def ensure_lab_pki(out: Path, plmns: tuple[str, ...] = DEFAULT_PLMNS,
                   ipxs: dict[str, str] | None = None, force: bool = False) -> dict[str, Path]:
    """Create (or keep) the lab PKI under ``out``; returns the main paths."""
    out = Path(out)
    ipxs = DEFAULT_IPX if ipxs is None else ipxs
    cas = {}
    paths: dict[str, Path] = {}
    for plmn in plmns:
        d = out / f"plmn-{plmn}"
        cas[plmn] = _ca(d / "ca", home_domain(plmn), force)
        _leaf(d / "sepp", cas[plmn], cn=sepp_fqdn(plmn), org=home_domain(plmn),
              dns=[sepp_fqdn(plmn), f"*.{sepp_fqdn(plmn)}"], force=force)
        _leaf(d / "nf", cas[plmn], cn=f"nf.{home_domain(plmn)}", org=home_domain(plmn),
              dns=[f"*.{home_domain(plmn)}"], force=force)
        paths[plmn] = d
    rogue = _ca(out / "rogue" / "ca", "rogue", force)
    victim, anchor = plmns[0], plmns[-1]
    _leaf(out / "rogue" / f"sepp-{victim}", rogue, cn=sepp_fqdn(victim), org=home_domain(victim),
          dns=[sepp_fqdn(victim)], force=force)
    _leaf(out / "rogue" / f"cross-{victim}", cas[anchor], cn=sepp_fqdn(victim), org=home_domain(victim),
          dns=[sepp_fqdn(victim)], force=force)
    for fqdn, plmn in ipxs.items():
        base = out / "ipx" / fqdn
        if force or not _valid(base):
            key = _key()
            _leaf(base, cas[plmn], cn=fqdn, org=fqdn, dns=[fqdn], force=True, key=key)
        cert, key = _load(base)
        _p(base, ".pub").write_bytes(key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    paths["rogue"] = out / "rogue"
    paths["ipx"] = out / "ipx"
    return paths


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m certs.pki", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("certs/out"))
    ap.add_argument("--plmn", action="append", help="MCC-MNC (repeatable); default 001-01 and 999-70")
    ap.add_argument("--ipx", action="append", metavar="FQDN=PLMN", help="IPX and its contracting PLMN")
    ap.add_argument("--force", action="store_true", help="regenerate everything")
    args = ap.parse_args(argv)
    ipxs = dict(i.split("=", 1) for i in args.ipx) if args.ipx else None
    paths = ensure_lab_pki(args.out, tuple(args.plmn or DEFAULT_PLMNS), ipxs, args.force)
    for k, v in paths.items():
        print(f"{k}: {v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
