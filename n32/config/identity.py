"""Warnings (not errors) when a SEPP's identities disagree: its configured PLMN IDs, the PLMN its
FQDN names (``sepp.5gc.mnc<MNC>.mcc<MCC>.3gppnetwork.org``, TS 23.003 §28.2) and the names in its
certificate (TS 33.501 §13.1: peers map the certificate's SAN to a PLMN and the ``sender`` to the
SAN). Issue 15: ``plmn_ids: [001-02]`` with ``fqdn: sepp.5gc.mnc001.mcc001...`` loaded silently,
and the first symptom was a refused handshake on the peer's side.

A mismatch is legal to configure (a lab, a SEPP serving several PLMNs, an operator's own naming),
so it is reported, not refused. Each warning reads ``<file>: <key>: <what disagrees>``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from cryptography import x509

from ..plmn import PlmnId, plmn_from_fqdn, plmns_from_certificate
from .fields import covers, dns_names


def _names(plmns: Iterable[PlmnId]) -> str:
    return ", ".join(str(p) for p in plmns) or "none"


def sepp_identity(file: Path, fqdn: str, plmn_ids: tuple[PlmnId, ...], leaf: x509.Certificate) -> list[str]:
    """What disagrees between ``fqdn``, ``plmn_ids`` and the SEPP certificate ``leaf``."""
    out: list[str] = []
    named = plmn_from_fqdn(fqdn)
    if named is None:
        out.append(f"{file}: fqdn: {fqdn} is not a 3GPP SEPP FQDN (sepp.5gc.mnc<MNC>.mcc<MCC>.3gppnetwork.org); "
                   "peers that derive the PLMN from the sender or the certificate will refuse it")
    elif named not in plmn_ids:
        out.append(f"{file}: fqdn: {fqdn} names PLMN {named}, which is not among plmn_ids ({_names(plmn_ids)})")
    san = dns_names(leaf)
    if not covers(san, fqdn):
        out.append(f"{file}: certificate: does not name {fqdn} (SAN: {', '.join(san) or 'none'}); "
                   "peers compare the N32-c sender with the certificate (SENDER_MISMATCH)")
    cert_plmns = plmns_from_certificate(leaf)
    if not cert_plmns:
        out.append(f"{file}: certificate: names no PLMN (no ...mnc<MNC>.mcc<MCC>.3gppnetwork.org SAN); "
                   "peers map the certificate to a PLMN (TS 33.501 §13.1, CERTIFICATE_PLMN_MISMATCH)")
    for p in sorted(cert_plmns):
        if p not in plmn_ids:
            out.append(f"{file}: certificate: names PLMN {p}, which is not among plmn_ids ({_names(plmn_ids)})")
    for i, p in enumerate(plmn_ids):
        if cert_plmns and p not in cert_plmns:
            out.append(f"{file}: plmn_ids[{i}]: {p} is not named by the certificate "
                       f"({_names(sorted(cert_plmns))}); peers will refuse it on N32-c")
    return out


def peer_identity(file: Path, key: str, fqdn: str, plmn_ids: tuple[PlmnId, ...]) -> list[str]:
    """A peer whose FQDN names a PLMN it is not configured with."""
    named = plmn_from_fqdn(fqdn)
    if named is not None and named not in plmn_ids:
        return [f"{file}: {key}.fqdn: {fqdn} names PLMN {named}, which is not among {key}.plmn_ids "
                f"({_names(plmn_ids)})"]
    return []
