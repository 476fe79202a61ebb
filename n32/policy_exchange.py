"""The protection and modification policies as exchanged in exchange-params round 2.

TS 29.573 §6.1.5.2 ``ProtectionPolicy`` (``apiIeMappingList`` of ``ApiIeMapping`` with ``IeList``
of ``IeInfo``); TS 33.501 §13.2.3.4 (modification policy). Two of our members are extensions,
sent only to peers whose options accept them (docs/interop-profile.md, "Extensions"):

* ``"*"`` for ``apiSignature`` / ``apiMethod`` (the generic placement rules): ``apiSignature`` is a
  ``Uri`` or a ``CallbackName`` in the schema, so the spec-only form leaves those mappings out;
* ``modificationPolicy`` (``{ipx fqdn: [JSON-pointer patterns]}``) beside the standard
  per-IE ``isModifiableByIpx``.

On receipt the standard ``isModifiableByIpx`` is the peer IPX's modification policy; our
extension member, when present, widens it.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .policy import ANY, Ie

if TYPE_CHECKING:
    from .policy import PolicySet

_LOCATIONS = {"BODY": "pointer", "HEADER": "header", "MULTIPART_BINARY": "binary"}


def is_wildcard(mapping: Any) -> bool:
    return isinstance(mapping, dict) and (mapping.get("apiSignature") == ANY or mapping.get("apiMethod") == ANY)


def policy_wire(policy: "PolicySet | None", peer: str, wildcards: bool) -> dict | None:
    """Our ProtectionPolicy for ``peer``; without the ``"*"`` mappings unless ``wildcards``."""
    if policy is None:
        return None
    wire = policy.to_wire(peer)
    if not wildcards:
        wire = {**wire, "apiIeMappingList": [m for m in wire["apiIeMappingList"] if not is_wildcard(m)]}
        if not wire["apiIeMappingList"]:   # minItems 1: no mapping left, no ProtectionPolicy
            return None
    return wire


def mismatches(policy: "PolicySet", peer: str, received: Any) -> list[dict]:
    """Differences between ``received`` and ours, comparing like with like: a peer that sends the
    spec-only form (no ``"*"`` mappings) is compared with ours without them."""
    if isinstance(received, dict) and isinstance(received.get("apiIeMappingList"), list) and \
            not any(is_wildcard(m) for m in received["apiIeMappingList"]):
        ours = policy.to_wire(peer)
        received = {**received, "apiIeMappingList": received["apiIeMappingList"] +
                    [m for m in ours["apiIeMappingList"] if is_wildcard(m)]}
    return list(policy.mismatches(peer, received))


def _ie(info: dict) -> Ie | None:
    """The placement IE an IeInfo names, to find where it sits in the clear block."""
    loc, name = info.get("ieLoc"), info.get("reqIe", info.get("rspIe"))
    if not isinstance(name, str) or not name:
        return None
    if loc == "URI_PARAM":
        kind, name = ("path", name[1:-1]) if name.startswith("{") and name.endswith("}") else ("query", name)
    elif loc in _LOCATIONS:
        kind = _LOCATIONS[loc]
        if kind == "pointer" and not name.startswith("/"):
            return None
    else:
        return None
    return Ie(kind, name, str(info.get("ieType", "")))


def modification_policy(received: Any, extension: Any = None) -> dict[str, list[str]]:
    """``{ipx fqdn: [patterns]}`` from the standard ``IeInfo.isModifiableByIpx`` of ``received``
    (TS 29.573; TS 33.501 §13.2.3.4), widened by our ``modificationPolicy`` member if present."""
    out: dict[str, list[str]] = {}
    mappings = received.get("apiIeMappingList") if isinstance(received, dict) else None
    for mapping in mappings if isinstance(mappings, list) else []:
        ies = mapping.get("IeList") if isinstance(mapping, dict) else None
        for info in ies if isinstance(ies, list) else []:
            by_ipx = info.get("isModifiableByIpx") if isinstance(info, dict) else None
            if not isinstance(by_ipx, dict):
                continue
            ie = _ie(info)
            if ie is None:
                continue
            for ipx, allowed in by_ipx.items():
                pats = out.setdefault(str(ipx), [])
                if allowed is True and ie.block_location not in pats:
                    pats.append(ie.block_location)
    if isinstance(extension, dict):
        for ipx, pats in extension.items():
            if isinstance(pats, list):
                have = out.setdefault(str(ipx), [])
                have.extend(p for p in pats if isinstance(p, str) and p not in have)
    return {ipx: pats for ipx, pats in out.items() if pats}
