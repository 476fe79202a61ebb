"""Protection policies (TS 33.501 §13.2.3): data-type encryption policy, NF API IE placement
mappings and modification policies, loaded from ``policies/`` (formats in docs/policies.md).

``PolicySet.selection`` answers "what must be encrypted in this message?" as an IeSelection;
``to_wire`` / ``mismatches`` give the TS 29.573 ProtectionPolicy exchanged on N32-c and detect
misconfiguration between partners (§13.2.3.6).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .reformat import IeSelection

DATA_TYPES = ("UEID", "LOCATION", "KEY_MATERIAL", "AUTHENTICATION_MATERIAL", "AUTHORIZATION_TOKEN", "OTHER",
              "NONSENSITIVE")
# TS 33.501 §5.9.3.3: always encrypted on N32-f, whatever a policy says (OTHER covers SMS content).
MANDATORY = frozenset({"AUTHENTICATION_MATERIAL", "KEY_MATERIAL", "LOCATION", "AUTHORIZATION_TOKEN", "OTHER"})
_LOCS = {"body": "BODY", "headers": "HEADER", "path": "URI_PARAM", "query": "URI_PARAM", "binary": "MULTIPART_BINARY"}


def pointer_matches(pattern: str, pointer: str) -> bool:
    """JSON pointer ``pointer`` matches ``pattern`` where "*" stands for exactly one token."""
    p, q = pattern.split("/"), pointer.split("/")
    return len(p) == len(q) and all(a == "*" or a == b for a, b in zip(p, q))


@dataclass(frozen=True)
class Placement:
    """One API resource + method: where each IE of a data type sits, per direction."""

    mapping_id: str
    method: str
    path: str                                   # template, "{x}" = one segment; "*" = any path
    ies: dict[str, dict[str, dict[str, str]]]   # direction -> location -> {name: type}

    def matches(self, method: str, path: str) -> bool:
        if self.method not in ("*", method.upper()):
            return False
        if self.path == "*":
            return True
        t, s = self.path.strip("/").split("/"), path.strip("/").split("/")
        return len(t) == len(s) and all(a.startswith("{") or a == b for a, b in zip(t, s))

    def segment_index(self, name: str) -> int | None:
        for i, seg in enumerate(self.path.strip("/").split("/")):
            if seg == "{" + name + "}":
                return i
        return None


@dataclass
class PolicySet:
    policy_id: str
    release: Any
    generic: frozenset[str]
    per_peer: dict[str, frozenset[str]]
    placements: list[Placement]
    modification: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def load(cls, encryption_policy: Path, placement_files: list[Path], modification_policy: Path | None = None
             ) -> "PolicySet":
        enc = _yaml(encryption_policy)
        generic = _types(encryption_policy, "generic.encrypt", (enc.get("generic") or {}).get("encrypt"))
        per_peer = {peer: _types(encryption_policy, f"peers.{peer}.encrypt", (v or {}).get("encrypt"))
                    for peer, v in (enc.get("peers") or {}).items()}
        placements: list[Placement] = []
        for f in placement_files:
            doc = _yaml(f)
            for i, e in enumerate(doc.get("entries") or []):
                ies = {d: {loc: dict(v) for loc, v in (e.get(d) or {}).items()} for d in ("request", "response")}
                for d, locs in ies.items():
                    for loc, items in locs.items():
                        if loc not in _LOCS:
                            raise ValueError(f"{f}: entries[{i}].{d}.{loc}: unknown location (use {', '.join(_LOCS)})")
                        for name, typ in items.items():
                            if typ not in DATA_TYPES:
                                raise ValueError(f"{f}: entries[{i}].{d}.{loc}.{name}: unknown data type {typ!r}")
                placements.append(Placement(str(doc.get("mapping_id", f.stem)), str(e.get("method", "*")).upper(),
                                            str(e["path"]), ies))
        modification: dict[str, tuple[str, ...]] = {}
        if modification_policy is not None:
            mod = _yaml(modification_policy)
            modification = {ipx: tuple(pats or ()) for ipx, pats in (mod.get("ipx") or {}).items()}
        return cls(str(enc.get("policy_id", "default")), enc.get("release"), generic, per_peer, placements,
                   modification)

    def types_for(self, peer: str | None) -> frozenset[str]:
        return self.per_peer.get(peer or "", self.generic) | MANDATORY

    def selection(self, peer: str | None, method: str, path: str, direction: str) -> IeSelection:
        types = self.types_for(peer)
        body: list[str] = []
        headers: list[str] = []
        segments: list[int] = []
        query: list[str] = []
        binary = False
        for pl in self.placements:
            if not pl.matches(method, path):
                continue
            locs = pl.ies.get(direction) or {}
            body += [n for n, t in (locs.get("body") or {}).items() if t in types]
            headers += [n.lower() for n, t in (locs.get("headers") or {}).items() if t in types]
            query += [n for n, t in (locs.get("query") or {}).items() if t in types]
            binary |= any(t in types for t in (locs.get("binary") or {}).values())
            for n, t in (locs.get("path") or {}).items():
                idx = pl.segment_index(n)
                if idx is not None and t in types:
                    segments.append(idx)
        return IeSelection(tuple(dict.fromkeys(body)), tuple(dict.fromkeys(headers)), tuple(sorted(set(segments))),
                           tuple(dict.fromkeys(query)), binary)

    def to_wire(self, peer: str | None) -> dict:
        """TS 29.573 ProtectionPolicy: our placement mappings and encrypted data types."""
        mappings = []
        for pl in self.placements:
            ie_list = []
            for direction, locs in pl.ies.items():
                for loc, items in locs.items():
                    for name, typ in items.items():
                        ie = {"ieLoc": _LOCS[loc], "ieType": typ, ("reqIe" if direction == "request" else "rspIe"): name}
                        ie["isModifiable"] = False
                        ie_list.append(ie)
            if ie_list:
                mappings.append({"apiSignature": pl.path, "apiMethod": pl.method if pl.method != "*" else "POST",
                                 "IeList": ie_list})
        return {"apiIeMappingList": mappings, "dataTypeEncPolicy": sorted(self.types_for(peer))}

    def mismatches(self, peer: str | None, received: Any) -> list[dict]:
        """InvalidParam list where ``received`` differs from what we configured for ``peer``."""
        if not isinstance(received, dict):
            return [{"param": "/protectionPolicyInfo", "reason": "missing"}]
        ours = self.to_wire(peer)
        out = []
        theirs_types = set(received.get("dataTypeEncPolicy") or [])
        if theirs_types != set(ours["dataTypeEncPolicy"]):
            out.append({"param": "/dataTypeEncPolicy",
                        "reason": f"peer encrypts {sorted(theirs_types)}, we encrypt {ours['dataTypeEncPolicy']}"})
        if _ie_set(received.get("apiIeMappingList")) != _ie_set(ours["apiIeMappingList"]):
            out.append({"param": "/apiIeMappingList", "reason": "IE placement mappings differ"})
        return out

    def modification_patterns(self, ipx_fqdn: str, peer: str | None = None) -> tuple[str, ...]:
        return self.modification.get(ipx_fqdn, ())

    def modification_policy_wire(self, peer: str | None) -> dict:
        return {ipx: list(p) for ipx, p in self.modification.items()}


def _ie_set(mappings: Any) -> set:
    out = set()
    for m in mappings or []:
        for ie in m.get("IeList") or []:
            out.add((str(m.get("apiSignature")), m.get("apiMethod"), ie.get("ieLoc"), ie.get("ieType"),
                     ie.get("reqIe"), ie.get("rspIe")))
    return out


def _yaml(path: Path) -> dict:
    try:
        doc = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ValueError(f"{path}: cannot load policy: {e}") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: a policy file must be a mapping")
    return doc


def _types(file: Path, key: str, value: Any) -> frozenset[str]:
    if not isinstance(value, list):
        raise ValueError(f"{file}: {key}: must be a list of data types")
    bad = [v for v in value if v not in DATA_TYPES]
    if bad:
        raise ValueError(f"{file}: {key}: unknown data type(s) {bad}")
    missing = MANDATORY - set(value)
    if missing:
        raise ValueError(f"{file}: {key}: {sorted(missing)} must always be encrypted (TS 33.501 §5.9.3.3)")
    return frozenset(value)
