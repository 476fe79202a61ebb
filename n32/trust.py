"""Peer authentication from TLS certificates (TS 33.501 §13.1; N32-SPEC §6.1; profile 2).

A trust anchor is a set of roots plus the PLMN IDs it vouches for. The PLMN IDs in the peer's
end-entity certificate (SAN ``...mnc<MNC>.mcc<MCC>.3gppnetwork.org``) select the one peer (and
anchor) they belong to; the chain must then verify against *that* anchor only. A certificate
whose PLMN IDs map to different anchors, or to an anchor that did not issue it, is rejected
(SCAS TS 33.517 4.2.5).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from cryptography import x509
from cryptography.x509 import verification

from .errors import N32Error
from .plmn import PlmnId

_PLMN_LABELS = re.compile(r"(?:^|\.)mnc(\d{3})\.mcc(\d{3})\.3gppnetwork\.org$")


@dataclass(frozen=True)
class PeerTrust:
    fqdn: str
    plmn_ids: list  # PlmnId-like (mcc, mnc) or "mcc-mnc"
    anchors: list[Path]


def _norm(p) -> tuple[str, str]:
    return PlmnId.parse(p).key


def cert_dns_names(cert: x509.Certificate) -> list[str]:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.DNSName)
    except x509.ExtensionNotFound:
        return []


def cert_plmns(cert: x509.Certificate) -> set[tuple[str, str]]:
    """(MCC, 3-digit MNC) of every 3GPP-domain SAN DNS name of ``cert``."""
    out = set()
    for name in cert_dns_names(cert):
        m = _PLMN_LABELS.search(name.lower())
        if m:
            out.add((m.group(2), m.group(1)))
    return out


def cert_plmn_ids(cert: x509.Certificate) -> frozenset[PlmnId]:
    """The PLMN IDs ``cert`` names (TS 33.501 §13.1): what a peer may announce on N32-c."""
    return frozenset(PlmnId(mcc, mnc) for mcc, mnc in cert_plmns(cert))


def _store(anchors: Iterable[Path]) -> verification.Store:
    certs: list[x509.Certificate] = []
    for a in anchors:
        certs += x509.load_pem_x509_certificates(Path(a).read_bytes())
    return verification.Store(certs)


def identify_client_peer(chain: list[x509.Certificate], peers: list[PeerTrust]) -> PeerTrust:
    """The configured peer a client certificate chain belongs to, or N32Error 403."""
    if not chain:
        raise N32Error(403, "CERTIFICATE_REQUIRED", "no client certificate")
    leaf = chain[0]
    plmns = cert_plmns(leaf)
    if not plmns:
        raise N32Error(403, "CERTIFICATE_PLMN_MISMATCH", "certificate names no PLMN (no ...mnc.mcc.3gppnetwork.org SAN)")
    owners = {p.fqdn: p for p in peers for plmn in plmns if plmn in {_norm(x) for x in p.plmn_ids}}
    if len(owners) != 1 or any(plmn not in {_norm(x) for x in next(iter(owners.values())).plmn_ids}
                               for plmn in plmns):
        raise N32Error(403, "CERTIFICATE_PLMN_MISMATCH",
                       f"certificate PLMNs {sorted('-'.join(p) for p in plmns)} do not map to exactly one peer anchor")
    peer = next(iter(owners.values()))
    # The certificate must be a SEPP certificate of that peer, not just any certificate its
    # operator's CA issued (e.g. an NF's ``*.5gc.mnc...`` wildcard certificate): it has to name
    # the peer's SEPP FQDN exactly. Wildcards are a server-identity device (RFC 6125) and do not
    # identify a client (TS 33.501 §13.1: mutual authentication of the SEPPs on N32).
    if peer.fqdn.lower() not in {n.lower().rstrip(".") for n in cert_dns_names(leaf)}:
        raise N32Error(403, "CERTIFICATE_FQDN_MISMATCH",
                       f"certificate for PLMN {sorted('-'.join(p) for p in plmns)} does not name the SEPP "
                       f"{peer.fqdn} (SAN DNS names: {', '.join(cert_dns_names(leaf)) or 'none'})")
    try:
        verifier = verification.PolicyBuilder().store(_store(peer.anchors)).build_client_verifier()
        verifier.verify(leaf, chain[1:])
    except verification.VerificationError as e:
        raise N32Error(403, "CERTIFICATE_PLMN_MISMATCH",
                       f"certificate for PLMN {sorted('-'.join(p) for p in plmns)} is not issued by the anchor of "
                       f"{peer.fqdn}: {e}") from None
    return peer


def check_server_plmns(cert: x509.Certificate, plmn_ids: Iterable[Any]) -> None:
    """Client role (we dial the peer): its server certificate must name its PLMNs and no other, so
    that one anchor answers for every PLMN it names (TS 33.501 §13.1; SCAS TS 33.517 4.2.5, C4)."""
    plmns, allowed = cert_plmns(cert), {_norm(p) for p in plmn_ids}
    if not plmns or not plmns <= allowed:
        raise N32Error(403, "CERTIFICATE_PLMN_MISMATCH",
                       f"server certificate PLMNs {sorted('-'.join(p) for p in plmns)} are not all the peer's "
                       f"{sorted('-'.join(p) for p in allowed)}")


def check_sender(sender: str, peer_fqdn: str) -> None:
    """The N32-c ``sender`` must be the FQDN of the peer the certificate identified."""
    if sender.lower().rstrip(".") != peer_fqdn.lower():
        raise N32Error(403, "SENDER_MISMATCH",
                       f"sender {sender!r} does not match the authenticated peer {peer_fqdn}")


@dataclass(frozen=True)
class IpxTrust:
    """A roaming intermediary we accept N32-f from: its FQDN and its own anchor (TS 33.501 §13.1:
    for PRINS transport to an RI, an anchor is roots + RI identifiers, kept apart from peer SEPPs)."""

    fqdn: str
    anchors: list[Path]


def identify_client(chain: list[x509.Certificate], peers: list[PeerTrust], ipxs: list[IpxTrust]):
    """A peer SEPP (by PLMN) or a roaming intermediary (by its FQDN in the SAN)."""
    names = {n.lower() for n in cert_dns_names(chain[0])} if chain else set()
    for ipx in ipxs:
        if ipx.fqdn in names and ipx.anchors:
            try:
                verification.PolicyBuilder().store(_store(ipx.anchors)).build_client_verifier().verify(
                    chain[0], chain[1:])
            except verification.VerificationError as e:
                raise N32Error(403, "CERTIFICATE_NOT_TRUSTED", f"{ipx.fqdn}: not issued by its anchor: {e}") from None
            return ipx
    return identify_client_peer(chain, peers)
