"""PLMN identities: the value type and its text/wire/FQDN forms.

* ``PlmnId(mcc, mnc)``: MCC 3 digits, MNC 2 or 3 digits (TS 29.571 ``PlmnId``). Text form
  ``"001-01"``, wire form ``{"mcc": "001", "mnc": "01"}``; both keep the MNC digits as given.
* Home network domain (TS 23.003 §28.2): ``5gc.mnc<MNC>.mcc<MCC>.3gppnetwork.org`` with the MNC
  always written with 3 digits (a 2-digit MNC is left-padded with ``0``).
* FQDN -> PLMN: the rightmost ``mnc<3 digits>.mcc<3 digits>`` label pair of a name in the
  ``3gppnetwork.org`` domain.

**MNC length and equality.** An FQDN always carries 3 MNC digits, so ``mnc070`` cannot tell MNC
``70`` from MNC ``070``. ``PlmnId`` equality and hashing therefore compare the MNC zero-padded to
3 digits: ``PlmnId("999", "70") == PlmnId("999", "070")`` (one network in FQDN context, as
TS 23.003 forces when the FQDN is the only source). A ``PlmnId`` parsed from an FQDN keeps the 3
digits it saw (``str()`` gives ``999-070``); compare, do not print, such values against
configured ones. ``matches_fqdn_mnc`` states the rule for a bare 3-digit MNC.

The originating-network header (TS 29.500 §5.2.3.2.15) is parsed, formatted and checked in
``n32/origin.py``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

_MCC = re.compile(r"^\d{3}\Z", re.ASCII)
_MNC = re.compile(r"^\d{2,3}\Z", re.ASCII)
_TEXT = re.compile(r"^\s*(\d{3})-(\d{2,3})\s*\Z", re.ASCII)
_MNC_LABEL = re.compile(r"^mnc\d{3}\Z", re.ASCII)
_MCC_LABEL = re.compile(r"^mcc\d{3}\Z", re.ASCII)
_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z")
_3GPP_TAILS = (("3gppnetwork", "org"), ("pub", "3gppnetwork", "org"))


@dataclass(frozen=True, eq=False)
class PlmnId:
    """A PLMN ID. Equal (and same hash) when MCC and the 3-digit-padded MNC are equal."""

    mcc: str
    mnc: str

    def __post_init__(self) -> None:
        if not isinstance(self.mcc, str) or not _MCC.match(self.mcc):
            raise ValueError(f"MCC must be 3 digits, got {self.mcc!r}")
        if not isinstance(self.mnc, str) or not _MNC.match(self.mnc):
            raise ValueError(f"MNC must be 2 or 3 digits, got {self.mnc!r}")

    @classmethod
    def parse(cls, value: Any) -> "PlmnId":
        """From ``"001-01"``, a ``{"mcc", "mnc"}`` mapping (other members such as ``nid`` are
        ignored), an ``(mcc, mnc)`` pair or a ``PlmnId``; ``ValueError`` otherwise."""
        if isinstance(value, PlmnId):
            return value
        if isinstance(value, str):
            m = _TEXT.match(value)
            if not m:
                raise ValueError(f"PLMN ID must look like 001-01 (MCC-MNC), got {value!r}")
            return cls(m.group(1), m.group(2))
        if isinstance(value, dict):
            if "mcc" not in value or "mnc" not in value:
                raise ValueError(f"PLMN ID object needs mcc and mnc, got {value!r}")
            return cls(value["mcc"], value["mnc"])
        if isinstance(value, (tuple, list)) and len(value) == 2:
            return cls(*value)
        raise ValueError(f"not a PLMN ID: {value!r}")

    @property
    def mnc3(self) -> str:
        """The MNC with 3 digits, as in FQDNs."""
        return self.mnc.zfill(3)

    @property
    def key(self) -> tuple[str, str]:
        """``(mcc, mnc3)``: what equality and hashing use."""
        return self.mcc, self.mnc3

    def matches_fqdn_mnc(self, mnc3: str) -> bool:
        """True if the 3-digit MNC of an FQDN (``mnc070``) designates this PLMN."""
        return self.mnc3 == mnc3

    def to_wire(self) -> dict[str, str]:
        """TS 29.571 ``PlmnId`` JSON."""
        return {"mcc": self.mcc, "mnc": self.mnc}

    def home_domain(self) -> str:
        return home_domain(self)

    def __str__(self) -> str:
        return f"{self.mcc}-{self.mnc}"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PlmnId):
            return NotImplemented
        return self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __lt__(self, other: "PlmnId") -> bool:
        if not isinstance(other, PlmnId):
            return NotImplemented
        return self.key < other.key


def home_domain(plmn: Any) -> str:
    """``5gc.mnc<MNC3>.mcc<MCC>.3gppnetwork.org`` (TS 23.003 §28.2)."""
    p = PlmnId.parse(plmn)
    return f"5gc.mnc{p.mnc3}.mcc{p.mcc}.3gppnetwork.org"


def sepp_fqdn(plmn: Any) -> str:
    """The customary SEPP FQDN of a PLMN: ``sepp.`` + home network domain (N32-SPEC §6.2)."""
    return f"sepp.{home_domain(plmn)}"


def plmn_from_fqdn(fqdn: str, strict: bool = True) -> PlmnId | None:
    """The PLMN of the rightmost ``mnc<3d>.mcc<3d>`` label pair, or None.

    ``strict`` (default): the pair must be followed by exactly ``3gppnetwork.org`` or
    ``pub.3gppnetwork.org``; otherwise any domain after the pair is accepted. Wildcard labels
    (``*.sepp.5gc.mnc001.mcc001.3gppnetwork.org``) and a trailing dot are fine. The MNC keeps
    its 3 digits (see the module docstring on equality).
    """
    if not isinstance(fqdn, str):
        return None
    labels = fqdn.strip().lower().rstrip(".").split(".")
    for i in range(len(labels) - 2, -1, -1):
        mnc, mcc = labels[i], labels[i + 1]
        if _MNC_LABEL.match(mnc) and _MCC_LABEL.match(mcc):
            tail = tuple(labels[i + 2:])
            if strict and tail not in _3GPP_TAILS:
                return None
            if not tail or not all(_LABEL.match(x) for x in tail):
                return None
            return PlmnId(mcc[3:], mnc[3:])
    return None


def plmns_from_certificate(cert: x509.Certificate) -> set[PlmnId]:
    """PLMN IDs named by a certificate: every SAN DNS name and the subject O (home network
    domain, TS 33.310 §6.1.3c) in the ``3gppnetwork.org`` domain."""
    names: list[str] = []
    try:
        names += cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value \
            .get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        pass
    names += [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    return {p for p in map(plmn_from_fqdn, names) if p is not None}
