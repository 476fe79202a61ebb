"""PLMN-ID anti-spoofing on N32-f (TS 33.501 §5.9.3.2, §13.1; SCAS TS 33.517 4.2.2.4).

* ``3gpp-Sbi-Originating-Network-Id`` (TS 29.500 ABNF ``MCC "-" MNC [ "-" NID ] [ ";" "src:" ...]``):
  the sending SEPP checks a present value against the PLMNs it represents, or inserts its own;
  the receiving SEPP checks it against the peer's PLMNs.
* PLMN IDs in a request body from the peer (serving network name ``5G:mnc<MNC>.mcc<MCC>...``,
  ``servingNetwork``/``plmnId``/``servingPlmnId`` objects) must be among the peer's PLMNs.

A mismatch is answered 403 ``PLMN_ID_MISMATCH`` and reported to the peer as ``n32f-error``
``POLICY_MISMATCH`` with ``policyMismatchList`` naming the IE (TS 29.573 has no dedicated type;
our interop profile).
"""
from __future__ import annotations

import json
import re
from typing import Any, Iterable, Iterator

from .errors import POLICY_MISMATCH, N32Error
from .message import HttpRequest
from .routing import plmn_set

ORIGINATING_NETWORK_ID = "3gpp-sbi-originating-network-id"
_ORIGIN = re.compile(r"^\s*(\d{3})-(\d{2,3})(?:-[0-9A-Fa-f]{11})?\s*(?:;\s*src:\s*(SCP|SEPP)-(\S+))?\s*$")
_SNN = re.compile(r"^5G:mnc(\d{3})\.mcc(\d{3})\.3gppnetwork\.org")
PLMN_MEMBERS = ("servingNetwork", "plmnId", "servingPlmnId", "selectedPlmnId")


def _mismatch(param: str, plmn: tuple[str, str], allowed: set) -> N32Error:
    reason = f"PLMN {plmn[0]}-{plmn[1]} is not among {sorted('-'.join(p) for p in allowed)}"
    return N32Error(403, "PLMN_ID_MISMATCH", f"{param}: {reason}", n32f_error_type=POLICY_MISMATCH,
                    invalid_params=[{"param": param, "reason": reason}])


def parse_origin(value: str) -> tuple[str, str]:
    m = _ORIGIN.match(value)
    if not m:
        raise N32Error(400, "MANDATORY_IE_INCORRECT", f"malformed {ORIGINATING_NETWORK_ID}: {value!r}",
                       invalid_params=[{"param": ORIGINATING_NETWORK_ID, "reason": "malformed"}])
    return m.group(1), m.group(2).zfill(3)


def _check_origin(req: HttpRequest, allowed: set) -> bool:
    """True if the header is present (and then its PLMN must be in ``allowed``)."""
    value = req.header(ORIGINATING_NETWORK_ID)
    if value is None:
        return False
    plmn = parse_origin(value)
    if plmn not in allowed:
        raise _mismatch(ORIGINATING_NETWORK_ID, plmn, allowed)
    return True


def outbound(req: HttpRequest, own_plmns: Iterable[Any], own_fqdn: str) -> None:
    """Sending SEPP: check or insert the originating network ID (in place)."""
    if _check_origin(req, plmn_set(own_plmns)):
        return
    first = next(iter(own_plmns))
    mcc, mnc = (first.mcc, first.mnc) if hasattr(first, "mcc") else str(first).split("-")
    req.headers.append((ORIGINATING_NETWORK_ID, f"{mcc}-{mnc};src:SEPP-{own_fqdn}"))


def _body_plmns(doc: Any, path: str = "") -> Iterator[tuple[str, tuple[str, str]]]:
    if isinstance(doc, dict):
        for k, v in doc.items():
            p = f"{path}/{k}"
            if k == "servingNetworkName" and isinstance(v, str) and (m := _SNN.match(v)):
                yield p, (m.group(2), m.group(1))
            elif k in PLMN_MEMBERS and isinstance(v, dict) and isinstance(v.get("mcc"), str) \
                    and isinstance(v.get("mnc"), str):
                yield p, (v["mcc"], v["mnc"].zfill(3))
            else:
                yield from _body_plmns(v, p)
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _body_plmns(v, f"{path}/{i}")


def inbound(req: HttpRequest, peer_plmns: Iterable[Any]) -> None:
    """Receiving SEPP: the originating network and the serving-network IEs must be the peer's."""
    allowed = plmn_set(peer_plmns)
    _check_origin(req, allowed)
    ctype = (req.header("content-type") or "").split(";")[0].strip()
    if req.body and (ctype == "application/json" or ctype.endswith("+json")):
        try:
            doc = json.loads(req.body)
        except ValueError:
            return
        for param, plmn in _body_plmns(doc):
            if plmn not in allowed:
                raise _mismatch(param, plmn, allowed)
