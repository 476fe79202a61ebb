"""Lab PKI (cryptography library): one CA per PLMN (the trust anchors), SEPP and NF certificates
per TS 33.310 §6.1.3c, ES256 keys and certificates for IPX providers, and deliberately wrong
certificates for the negative tests.

    python -m certs.pki --out certs/out [--plmn 001-01 --plmn 999-70]
                        [--ipx ipx1.ipx.lab --ipx ipx2.ipx.lab] [--force]
                        [--sepp FQDN=MCC-MNC ...]

Defaults: PLMN 001-01 (visited, test network MCC 001) and 999-70 (home, MCC 999 is for
internal use); IPX ``ipx1.ipx.lab`` contracted by 001-01 and ``ipx2.ipx.lab`` by 999-70
(``.lab`` is not a real top-level domain, so the names cannot collide with real carriers).
``--ipx FQDN`` gives the i-th IPX to the i-th PLMN (cycling); ``--ipx FQDN=MCC-MNC`` names the
contracting PLMN.

Layout (``--out``)::

    plmn-<mcc>-<mnc>/ca.crt|key     trust anchor of that PLMN: EC P-256, CA:true pathlen 0 (critical),
                                    keyCertSign+cRLSign (critical), SKI; 3 years
    plmn-<mcc>-<mnc>/sepp.crt|key   SEPP (TS 33.310 §6.1.3c): C=XX, O=<home domain>, CN=<SEPP FQDN>;
                                    SAN sepp.5gc.mnc<MNC3>.mcc<MCC>.3gppnetwork.org,
                                    *.sepp.5gc.mnc<MNC3>.mcc<MCC>.3gppnetwork.org (telescopic FQDNs),
                                    localhost, IP 127.0.0.1; keyUsage digitalSignature (critical);
                                    EKU serverAuth+clientAuth; AKI (keyid) + SKI; 1 year; serial < 20 octets
    plmn-<mcc>-<mnc>/nf.crt|key     lab NFs of that PLMN: SAN *.5gc.mnc<MNC3>.mcc<MCC>.3gppnetwork.org,
                                    localhost, 127.0.0.1; same profile
    ipx/<fqdn>.key                  IPX ES256 private key (PKCS#8 PEM)
    ipx/<fqdn>.pub                  its public key (SubjectPublicKeyInfo PEM), for ipx_keys.public_keys
    ipx/<fqdn>.crt                  its certificate (SAN <fqdn>, localhost, 127.0.0.1), issued by the CA of
                                    the PLMN that contracts it; TLS towards SEPPs and ipx_keys.certificates
    rogue/ca.crt|key                a CA nobody trusts
    rogue/sepp-<P1>.crt|key         claims the first PLMN (001-01) with its SEPP FQDN, signed by the rogue CA
                                    (must fail: unknown anchor)
    rogue/cross-<P1>.crt|key        claims the first PLMN, signed by the CA of the last PLMN (999-70)
                                    (must fail: the PLMN belongs to another anchor); not made with one PLMN

``--sepp FQDN=MCC-MNC`` issues one more SEPP certificate, for any FQDN, under that PLMN's CA:
``plmn-<mcc>-<mnc>/<FQDN>.crt|key`` (SAN = the FQDN only, plus localhost and 127.0.0.1). For a
peer implementation whose SEPP name is configurable (open5gs's ``sender``: it must be
``sepp.5gc.mnc<MNC>.mcc<MCC>.3gppnetwork.org`` or a SEPP checking the PLMN in the SAN refuses it),
or to reproduce a refusal (``--sepp sepp1.localdomain=001-01``: a certificate naming no PLMN,
like open5gs's samples, refused with ``CERTIFICATE_PLMN_MISMATCH``).

The subject country is ``XX`` (ISO 3166 user-assigned): test MCCs 001/999 have no country.

Idempotent: an existing certificate is kept when it parses, matches its key, is issued by its
current CA and does not expire within 30 days; otherwise it (and what it issued) is remade.
``--force`` remakes everything. Files are written atomically under a lock file
(``<out>/.lock``), private keys with mode 0600; certs/out/ is git-ignored.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import ipaddress
import os
import sys
import tempfile
from pathlib import Path
from typing import Iterator, Mapping, Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from n32.plmn import PlmnId, home_domain, sepp_fqdn

DEFAULT_PLMNS = ("001-01", "999-70")
DEFAULT_IPX = {"ipx1.ipx.lab": "001-01", "ipx2.ipx.lab": "999-70"}  # IPX -> contracting PLMN
LEAF_VALIDITY = datetime.timedelta(days=365)    # TS 33.310: at most 3 years
CA_VALIDITY = datetime.timedelta(days=3 * 365)
RENEW_BEFORE = datetime.timedelta(days=30)
COUNTRY = "XX"

Key = ec.EllipticCurvePrivateKey


def _p(base: Path, ext: str) -> Path:
    """``base`` + extension (names such as ipx1.ipx.lab contain dots: no with_suffix)."""
    return base.parent / (base.name + ext)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _write_if_changed(path: Path, data: bytes, mode: int = 0o644) -> None:
    try:
        if path.read_bytes() == data:
            if (path.stat().st_mode & 0o777) != mode:
                os.chmod(path, mode)
            return
    except OSError:
        pass
    _atomic_write(path, data, mode)


def _key_pem(key: Key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _pub_pem(key: Key) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _write(base: Path, cert: x509.Certificate, key: Key) -> None:
    _atomic_write(_p(base, ".key"), _key_pem(key), 0o600)
    _atomic_write(_p(base, ".crt"), cert.public_bytes(serialization.Encoding.PEM))


def _load(base: Path) -> tuple[x509.Certificate, Key] | None:
    """The certificate and key at ``base`` if both parse, the key is EC P-256 and they match."""
    try:
        cert = x509.load_pem_x509_certificate(_p(base, ".crt").read_bytes())
        key = serialization.load_pem_private_key(_p(base, ".key").read_bytes(), None)
    except (OSError, ValueError, TypeError):
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        return None
    if cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) \
            != key.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo):
        return None
    return cert, key


def _usable(base: Path, issuer: x509.Certificate | None) -> tuple[x509.Certificate, Key] | None:
    """Existing material worth keeping: parses, matches, not expiring soon, issued by ``issuer``."""
    loaded = _load(base)
    if loaded is None:
        return None
    cert, _ = loaded
    if cert.not_valid_after_utc <= _now() + RENEW_BEFORE:
        return None
    if issuer is not None:
        try:
            cert.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature):
            return None
    return loaded


def _name(cn: str, org: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, COUNTRY),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _ca(base: Path, org: str, force: bool) -> tuple[tuple[x509.Certificate, Key], bool]:
    """(CA certificate and key, whether it was (re)made)."""
    if not force and (kept := _usable(base, None)) is not None:
        return kept, False
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    subject = _name(f"{org} lab CA", org)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + CA_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    _write(base, cert, key)
    return (cert, key), True


def _leaf(base: Path, ca: tuple[x509.Certificate, Key], *, cn: str, org: str, dns: Sequence[str],
          force: bool) -> tuple[x509.Certificate, Key]:
    """An end-entity certificate per TS 33.310 §6.1.3c (digitalSignature critical, EKU, AKI),
    with ``localhost`` and 127.0.0.1 added for the loopback lab."""
    ca_cert, ca_key = ca
    if not force and (kept := _usable(base, ca_cert)) is not None:
        return kept
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    san: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    san += [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (x509.CertificateBuilder().subject_name(_name(cn, org)).issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())  # positive, at most 159 bits: < 20 octets
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(min(now + LEAF_VALIDITY, ca_cert.not_valid_after_utc))
            .add_extension(x509.SubjectAlternativeName(san), critical=False)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256()))
    _write(base, cert, key)
    return cert, key


@contextlib.contextmanager
def _locked(out: Path) -> Iterator[None]:
    """Serialise concurrent runs on one directory (parallel test sessions, lab restarts)."""
    out.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    with open(out / ".lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _ipx_plan(ipxs: Mapping[str, str] | Sequence[str] | None, plmns: Sequence[PlmnId]) -> dict[str, PlmnId]:
    if ipxs is None:
        ipxs = DEFAULT_IPX if {str(p) for p in plmns} >= set(DEFAULT_IPX.values()) else \
            [f"ipx{i + 1}.ipx.lab" for i in range(len(plmns))]
    if isinstance(ipxs, Mapping):
        plan = {fqdn: PlmnId.parse(plmn) for fqdn, plmn in ipxs.items()}
    else:
        plan = {}
        for i, item in enumerate(ipxs):
            fqdn, _, plmn = item.partition("=")
            plan[fqdn] = PlmnId.parse(plmn) if plmn else plmns[i % len(plmns)]
    for fqdn, plmn in plan.items():
        if plmn not in plmns:
            raise ValueError(f"IPX {fqdn}: contracting PLMN {plmn} is not among {[str(p) for p in plmns]}")
        if not fqdn or "/" in fqdn or fqdn.startswith("."):
            raise ValueError(f"not an IPX FQDN: {fqdn!r}")
    return plan


def ensure_lab_pki(out_dir: Path | str, plmns: Sequence[str] = DEFAULT_PLMNS,
                   ipxs: Mapping[str, str] | Sequence[str] | None = None, force: bool = False,
                   sepps: Sequence[str] = ()) -> dict:
    """Create (or keep, see the module docstring) the lab PKI under ``out_dir``.

    ``plmns``: ``"MCC-MNC"`` strings; ``sepps``: ``"FQDN=MCC-MNC"`` extra SEPP certificates; ``ipxs``: ``{fqdn: "MCC-MNC"}`` or a list of ``fqdn`` /
    ``fqdn=MCC-MNC`` (default: ipx1.ipx.lab by 001-01 and ipx2.ipx.lab by 999-70).

    Returns absolute paths::

        {"out": Path,
         "plmns": {"001-01": {"dir", "ca_cert", "ca_key", "sepp_cert", "sepp_key", "nf_cert", "nf_key",
                              "sepp_fqdn": str, "home_domain": str}, ...},
         "ipx": {"ipx1.ipx.lab": {"key", "pub", "cert", "plmn": str}, ...},
         "sepps": {"<FQDN>": {"cert", "key", "plmn": str}, ...},
         "rogue": {"ca_cert", "ca_key", "sepp_cert", "sepp_key", "cross_cert", "cross_key", "plmn": str}}
    """
    out = Path(out_dir).resolve()
    ids = [PlmnId.parse(p) for p in plmns]
    if not ids:
        raise ValueError("at least one PLMN is needed")
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate PLMN in {[str(p) for p in ids]}")
    plan = _ipx_plan(ipxs, ids)
    extra = _sepp_plan(sepps, ids)
    result: dict = {"out": out, "plmns": {}, "ipx": {}, "rogue": {}, "sepps": {}}
    with _locked(out):
        cas: dict[PlmnId, tuple[x509.Certificate, Key]] = {}
        for plmn in ids:
            d = out / f"plmn-{plmn}"
            ca, remade = _ca(d / "ca", home_domain(plmn), force)
            cas[plmn] = ca
            again = force or remade
            fqdn = sepp_fqdn(plmn)
            _leaf(d / "sepp", ca, cn=fqdn, org=home_domain(plmn), dns=[fqdn, f"*.{fqdn}"], force=again)
            _leaf(d / "nf", ca, cn=f"nf.{home_domain(plmn)}", org=home_domain(plmn),
                  dns=[f"*.{home_domain(plmn)}"], force=again)
            result["plmns"][str(plmn)] = {
                "dir": d, "ca_cert": d / "ca.crt", "ca_key": d / "ca.key", "sepp_cert": d / "sepp.crt",
                "sepp_key": d / "sepp.key", "nf_cert": d / "nf.crt", "nf_key": d / "nf.key",
                "sepp_fqdn": fqdn, "home_domain": home_domain(plmn)}
        rd = out / "rogue"
        rogue, remade = _ca(rd / "ca", "rogue.invalid", force)
        victim, anchor = ids[0], ids[-1]
        vfqdn = sepp_fqdn(victim)
        _leaf(rd / f"sepp-{victim}", rogue, cn=vfqdn, org=home_domain(victim), dns=[vfqdn], force=force or remade)
        result["rogue"] = {"ca_cert": rd / "ca.crt", "ca_key": rd / "ca.key", "plmn": str(victim),
                           "sepp_cert": rd / f"sepp-{victim}.crt", "sepp_key": rd / f"sepp-{victim}.key"}
        if anchor != victim:
            _leaf(rd / f"cross-{victim}", cas[anchor], cn=vfqdn, org=home_domain(victim), dns=[vfqdn], force=force)
            result["rogue"].update(cross_cert=rd / f"cross-{victim}.crt", cross_key=rd / f"cross-{victim}.key",
                                   cross_issuer=str(anchor))
        for fqdn, plmn in plan.items():
            base = out / "ipx" / fqdn
            _cert, key = _leaf(base, cas[plmn], cn=fqdn, org=fqdn, dns=[fqdn], force=force)
            _write_if_changed(_p(base, ".pub"), _pub_pem(key))
            result["ipx"][fqdn] = {"key": _p(base, ".key"), "pub": _p(base, ".pub"), "cert": _p(base, ".crt"),
                                   "plmn": str(plmn)}
        for fqdn, plmn in extra.items():
            base = out / f"plmn-{plmn}" / fqdn
            # O = the home network domain only for a name inside it: a name outside (sepp1.localdomain)
            # must name no PLMN anywhere, as the peer implementation's own sample certificates
            org = home_domain(plmn) if fqdn.endswith("." + home_domain(plmn)) else fqdn
            _leaf(base, cas[plmn], cn=fqdn, org=org, dns=[fqdn], force=force)
            result["sepps"][fqdn] = {"cert": _p(base, ".crt"), "key": _p(base, ".key"), "plmn": str(plmn)}
    return result


def _sepp_plan(items: Sequence[str], plmns: Sequence[PlmnId]) -> dict[str, PlmnId]:
    plan: dict[str, PlmnId] = {}
    for item in items:
        fqdn, _, plmn = item.partition("=")
        if not plmn:
            raise ValueError(f"--sepp {item!r}: give the issuing PLMN as FQDN=MCC-MNC")
        pid = PlmnId.parse(plmn)
        if pid not in plmns:
            raise ValueError(f"--sepp {fqdn}: PLMN {pid} is not among {[str(p) for p in plmns]}")
        if not fqdn or "/" in fqdn or fqdn.startswith(".") or fqdn in ("ca", "sepp", "nf"):
            raise ValueError(f"not a SEPP FQDN: {fqdn!r}")
        plan[fqdn] = pid
    return plan


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m certs.pki", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("certs/out"), help="output directory (default certs/out)")
    ap.add_argument("--plmn", action="append", metavar="MCC-MNC",
                    help="PLMN to make a CA, SEPP and NF certificate for (repeatable); default 001-01 and 999-70")
    ap.add_argument("--ipx", action="append", metavar="FQDN[=MCC-MNC]",
                    help="IPX provider (repeatable) and the PLMN contracting it (default: i-th IPX -> i-th PLMN)")
    ap.add_argument("--sepp", action="append", metavar="FQDN=MCC-MNC", default=[],
                    help="one more SEPP certificate for FQDN (SAN), issued by that PLMN's CA (repeatable)")
    ap.add_argument("--force", action="store_true", help="regenerate everything")
    args = ap.parse_args(argv)
    try:
        res = ensure_lab_pki(args.out, tuple(args.plmn or DEFAULT_PLMNS), args.ipx, args.force, args.sepp)
    except ValueError as e:
        print(f"certs.pki: {e}", file=sys.stderr)
        return 2
    for plmn, paths in res["plmns"].items():
        print(f"PLMN {plmn}: {paths['dir']} (SEPP {paths['sepp_fqdn']})")
    for fqdn, paths in res["ipx"].items():
        print(f"IPX {fqdn}: {paths['cert']} (contracted by {paths['plmn']})")
    for fqdn, paths in res["sepps"].items():
        print(f"SEPP {fqdn}: {paths['cert']} (issued by the CA of {paths['plmn']})")
    print(f"rogue: {res['out'] / 'rogue'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
