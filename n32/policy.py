"""Protection policies (TS 33.501 §13.2.3, §5.9.3.3; TS 29.573 ProtectionPolicy).

Three inputs, formats in docs/policies.md:

* the **data-type encryption policy** (generic + per-peer overrides): which IeTypes are
  encrypted on N32-f. Authentication material, key material, location data, SMS content
  (``OTHER``) and authorization tokens are always encrypted (TS 33.501 §5.9.3.3): a file that
  leaves one out is rejected. ``UEID`` (SUPI/NAI) is on unless a policy leaves it out.
* **NF API data-type placement mappings** (one file per API, plus ``generic`` rules for any
  API): for a method and path template, which IE of which type sits where in the request and
  the response;
* the **modification policy**: per IPX (and optionally per peer) the JSON-pointer patterns
  into the clear DataToIntegrityProtectBlock that the IPX may patch (profile 25).

:meth:`PolicySet.selection` turns them into the :class:`~n32.reformat.IeSelection` of one
message; :meth:`PolicySet.to_wire` / :meth:`PolicySet.mismatches` give the ProtectionPolicy
exchanged on N32-c and detect misconfiguration between partners (§13.2.3.6).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonpointer
import yaml

from .reformat import IeSelection

IE_TYPES = ("UEID", "LOCATION", "KEY_MATERIAL", "AUTHENTICATION_MATERIAL", "AUTHORIZATION_TOKEN", "OTHER",
            "NONSENSITIVE")                                    # TS 29.573 IeType
MANDATORY = frozenset({"AUTHENTICATION_MATERIAL", "KEY_MATERIAL", "LOCATION", "AUTHORIZATION_TOKEN", "OTHER"})
DEFAULT_ENCRYPTED = MANDATORY | {"UEID"}
DIRECTIONS = ("request", "response")
METHODS = ("GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS")
ANY = "*"                                # apiSignature / apiMethod of the generic rules on the wire
MAX_MISMATCHES = 20
_MAX_CACHED = 4096                       # compiled selections kept (bounded: offsets come from the wire)
# IE kind in a placement file -> TS 29.573 IeLocation
_KINDS = {"pointer": "BODY", "header": "HEADER", "path": "URI_PARAM", "query": "URI_PARAM",
          "binary": "MULTIPART_BINARY"}


class PolicyError(ValueError):
    """A policy file problem: ``<file>: <key>: <problem>``."""

    def __init__(self, file: Path | str, key: str, problem: str) -> None:
        super().__init__(f"{file}: {key}: {problem}")


def pointer_matches(pattern: str, pointer: str) -> bool:
    """RFC 6901 ``pointer`` matches ``pattern``, in which a ``*`` token stands for exactly one token."""
    try:
        p, q = jsonpointer.JsonPointer(pattern).parts, jsonpointer.JsonPointer(pointer).parts
    except jsonpointer.JsonPointerException:
        return False
    return len(p) == len(q) and all(a in (ANY, b) for a, b in zip(p, q))


@dataclass(frozen=True)
class DataTypePolicy:
    """TS 33.501 §13.2.3.2: identifier, release and the encrypted data types."""

    policy_id: str
    release: str
    encrypted: frozenset[str]


@dataclass(frozen=True)
class Ie:
    """One IE of a placement mapping."""

    kind: str               # pointer | header | path | query | binary
    name: str               # JSON pointer, header name, path template variable, query name, "*"
    type: str               # IeType

    @property
    def location(self) -> str:
        return _KINDS[self.kind]

    @property
    def wire_name(self) -> str:
        """IeInfo.reqIe / rspIe: the pointer, header or query name; ``{var}``; ``*`` (all parts)."""
        return "{%s}" % self.name if self.kind == "path" else self.name

    @property
    def block_location(self) -> str:
        """Where the IE sits in the clear block (``*`` for positions known only per message)."""
        if self.kind == "pointer":
            return "/payload/*/value" + jsonpointer.JsonPointer.from_parts(
                jsonpointer.JsonPointer(self.name).parts[1:]).path
        return {"header": "/headers/*/value", "path": "/requestLine/path",
                "query": "/requestLine/queryFragment", "binary": "/payload/*/value/data"}[self.kind]


@dataclass(frozen=True)
class Mapping:
    """Placement of IEs for one method on one resource (path template, ``{x}`` = one segment)."""

    mapping_id: str
    method: str
    path: str
    ies: dict[str, tuple[Ie, ...]]      # direction -> IEs

    @property
    def template(self) -> tuple[str, ...]:
        return tuple(self.path.split("/")[1:])

    def offset(self, method: str, segments: list[str]) -> int | None:
        """Where the template matches the trailing path segments (after an apiRoot prefix), else None."""
        tmpl, off = self.template, len(segments) - len(self.template)
        if method.upper() != self.method or off < 0:
            return None
        ok = all(t.startswith("{") or t == s for t, s in zip(tmpl, segments[off:]))
        return off if ok else None

    @property
    def literals(self) -> int:
        return sum(not t.startswith("{") for t in self.template)


class _MappingIndex:
    """The placement mappings as a trie over their path templates read from the last segment
    backwards (a template matches the trailing segments of a path, after any apiRoot prefix).

    :meth:`best` gives the mappings ``Mapping.offset`` matches, reduced to those with the most
    literal segments (``/shared-data`` beats ``/{supi}``), without visiting every mapping."""

    def __init__(self, mappings: list[Mapping]) -> None:
        self._roots: dict[str, dict] = {}          # method -> node; node: {"lit": {}, "var": node, "end": []}
        for order, m in enumerate(mappings):
            node = self._roots.setdefault(m.method, _node())
            for seg in reversed(m.template):
                node = node.setdefault("var", _node()) if seg.startswith("{") else \
                    node["lit"].setdefault(seg, _node())
            node["end"].append(order)

    def best(self, method: str, segments: list[str]) -> tuple[tuple[int, int], ...]:
        """(load order, offset) of the matching mappings with the most literal segments, in load order."""
        root = self._roots.get(method)
        if root is None:
            return ()
        found: list[tuple[int, int, int]] = []              # (literals, order, offset)
        stack = [(root, len(segments), 0)]
        while stack:
            node, i, lits = stack.pop()
            found += [(lits, order, i) for order in node["end"]]
            if i == 0:
                continue
            if (child := node["lit"].get(segments[i - 1])) is not None:
                stack.append((child, i - 1, lits + 1))
            if (child := node.get("var")) is not None:
                stack.append((child, i - 1, lits))
        if not found:
            return ()
        top = max(f[0] for f in found)
        return tuple(sorted((order, off) for lits, order, off in found if lits == top))


def _node() -> dict:
    return {"lit": {}, "end": []}


class PolicySet:
    """All configured policies of one SEPP (built by :meth:`load`)."""

    def __init__(self, generic: DataTypePolicy, peers: dict[str, DataTypePolicy], mappings: list[Mapping],
                 generic_ies: dict[str, tuple[Ie, ...]], modification: dict[str, dict[str | None, tuple[str, ...]]]):
        self._generic, self._peers, self._mappings = generic, peers, mappings
        self._generic_ies, self._modification = generic_ies, modification
        self._index = _MappingIndex(mappings)
        self._selections: dict[tuple, IeSelection] = {}

    @classmethod
    def load(cls, encryption_policy: Path, placement_files: list[Path],
             modification_policy: Path | None = None) -> PolicySet:
        """Load and validate the policy files; :class:`PolicyError` (a ValueError) names file and key."""
        generic, peers = _load_encryption(Path(encryption_policy))
        mappings: list[Mapping] = []
        generic_ies: dict[str, tuple[Ie, ...]] = {d: () for d in DIRECTIONS}
        seen: dict[str, Path] = {}
        for f in map(Path, placement_files):
            mapping_id, file_mappings, file_generic = _load_placement(f)
            if mapping_id in seen:
                raise PolicyError(f, "mapping_id", f"{mapping_id!r} is also used by {seen[mapping_id]}")
            seen[mapping_id] = f
            mappings += file_mappings
            generic_ies = {d: generic_ies[d] + file_generic.get(d, ()) for d in DIRECTIONS}
        modification = _load_modification(Path(modification_policy)) if modification_policy else {}
        return cls(generic, peers, mappings, generic_ies, modification)

    # ------------------------------------------------------------------ encryption
    def data_type_policy(self, peer: str | None) -> DataTypePolicy:
        """The data-type encryption policy for ``peer`` (its override, else the generic one)."""
        return self._peers.get((peer or "").lower(), self._generic)

    def selection(self, peer: str | None, method: str, path: str, direction: str) -> IeSelection:
        """What to encrypt in one message to or from ``peer`` (``path``: the request's path).

        Runs for every request and response: the matching mappings come from a trie built at
        load, and the IeSelection of each (policy, direction, mappings, offset) is built once."""
        encrypted = self.data_type_policy(peer).encrypted
        found = self._index.best(method.upper(), path.split("/")[1:])
        key = (encrypted, direction, found)
        sel = self._selections.get(key)
        if sel is None:
            if len(self._selections) >= _MAX_CACHED:
                self._selections.clear()
            sel = self._selections[key] = self._compile(encrypted, direction, found)
        return sel

    def _compile(self, encrypted: frozenset[str], direction: str, found: tuple[tuple[int, int], ...]) -> IeSelection:
        ies: list[tuple[Ie, tuple[Mapping, int] | None]] = [(ie, None) for ie in self._generic_ies[direction]]
        for order, off in found:
            mapping = self._mappings[order]
            ies += [(ie, (mapping, off)) for ie in mapping.ies.get(direction, ())]
        body, headers, segs, query, binary = [], [], [], [], False
        for ie, where in ies:
            if ie.type not in encrypted:
                continue
            if ie.kind == "pointer":
                body.append(ie.name)
            elif ie.kind == "header":
                headers.append(ie.name)
            elif ie.kind == "query":
                query.append(ie.name)
            elif ie.kind == "binary":
                binary = True
            elif where is not None:
                mapping, off = where
                segs.append(off + mapping.template.index("{%s}" % ie.name))
        return IeSelection(tuple(dict.fromkeys(body)), tuple(dict.fromkeys(headers)), tuple(sorted(set(segs))),
                           tuple(dict.fromkeys(query)), binary)

    # ------------------------------------------------------------------ wire form (N32-c)
    def to_wire(self, peer: str | None) -> dict:
        """TS 29.573 ProtectionPolicy for ``peer``: placement mappings and encrypted data types.

        The generic rules appear as the mapping ``{"apiSignature": "*", "apiMethod": "*"}``.
        ``isModifiable`` says whether a configured IPX may patch the IE's location in the clear
        block (never for an encrypted IE), ``isModifiableByIpx`` says which.
        """
        encrypted = self.data_type_policy(peer).encrypted
        ipx = {fqdn: self.modification_patterns(fqdn, peer) for fqdn in self._modification}
        groups: dict[tuple[str, str], list[dict]] = {}
        sources = [(ANY, ANY, self._generic_ies)] + [(m.path, m.method, m.ies) for m in self._mappings]
        for path, method, by_direction in sources:
            for direction in DIRECTIONS:
                for ie in by_direction.get(direction, ()):
                    groups.setdefault((path, method), []).append(_ie_info(ie, direction, encrypted, ipx))
        return {"apiIeMappingList": [{"apiSignature": p, "apiMethod": m, "IeList": ies}
                                     for (p, m), ies in groups.items()],
                "dataTypeEncPolicy": sorted(encrypted)}

    def mismatches(self, peer: str | None, received: Any) -> list[dict]:
        """InvalidParams where the ProtectionPolicy ``received`` from ``peer`` differs from ours
        (order-insensitive; modifiability is not compared, each side's IPXs differ)."""
        if not isinstance(received, dict):
            return [{"param": "/", "reason": "not a ProtectionPolicy object"}]
        ours = self.to_wire(peer)
        out: list[dict] = []
        theirs = received.get("dataTypeEncPolicy") or []
        if not isinstance(theirs, list):
            out.append({"param": "/dataTypeEncPolicy", "reason": "not an array of IeType"})
            theirs = []
        for t in sorted(set(ours["dataTypeEncPolicy"]) - set(map(str, theirs))):
            out.append({"param": "/dataTypeEncPolicy", "reason": f"we encrypt {t}, the peer does not"})
        for t in sorted(set(map(str, theirs)) - set(ours["dataTypeEncPolicy"])):
            out.append({"param": "/dataTypeEncPolicy", "reason": f"the peer encrypts {t}, we do not"})
        their_ies = _ie_keys(received.get("apiIeMappingList"))
        if their_ies is None:
            out.append({"param": "/apiIeMappingList", "reason": "not an array of ApiIeMapping"})
            their_ies = {}
        our_ies = _ie_keys(ours["apiIeMappingList"]) or {}
        for key in sorted(set(their_ies) - set(our_ies)):
            out.append({"param": their_ies[key], "reason": f"{_describe(key)}: not in our placement mappings"})
        for key in sorted(set(our_ies) - set(their_ies)):
            out.append({"param": "/apiIeMappingList", "reason": f"{_describe(key)}: missing in the peer's mappings"})
        if len(out) > MAX_MISMATCHES:
            out = out[:MAX_MISMATCHES - 1] + [{"param": "/", "reason": f"and {len(out) - MAX_MISMATCHES + 1} more"}]
        return out

    # ------------------------------------------------------------------ modification policy
    def modification_patterns(self, ipx_fqdn: str, peer: str | None = None) -> tuple[str, ...]:
        """Patterns ``ipx_fqdn`` may patch in messages to/from ``peer`` (its per-peer list, else its default)."""
        per_ipx = self._modification.get(ipx_fqdn.lower(), {})
        return per_ipx.get((peer or "").lower() or None, per_ipx.get(None, ()))

    def modification_policy_wire(self, peer: str | None) -> dict[str, list[str]]:
        """``{ipx_fqdn: [patterns]}`` for ``peer``: our modification policy as sent on N32-c."""
        out = {fqdn: list(self.modification_patterns(fqdn, peer)) for fqdn in self._modification}
        return {fqdn: pats for fqdn, pats in out.items() if pats}


# ---------------------------------------------------------------------------- wire helpers
def _ie_info(ie: Ie, direction: str, encrypted: frozenset[str], ipx: dict[str, tuple[str, ...]]) -> dict:
    loc = jsonpointer.JsonPointer(ie.block_location).parts
    prefixes = [jsonpointer.JsonPointer.from_parts(loc[:n]).path for n in range(1, len(loc) + 1)]
    by_ipx = {fqdn: ie.type not in encrypted and any(pointer_matches(p, q) for p in pats for q in prefixes)
              for fqdn, pats in ipx.items()}
    info: dict[str, Any] = {"ieLoc": ie.location, "ieType": ie.type,
                            ("reqIe" if direction == "request" else "rspIe"): ie.wire_name,
                            "isModifiable": any(by_ipx.values())}
    if by_ipx:
        info["isModifiableByIpx"] = by_ipx
    return info


_Key = tuple[str, str, str, str, str, str]  # apiSignature, apiMethod, ieLoc, ieType, direction, name


def _ie_keys(mappings: Any) -> dict[_Key, str] | None:
    """IE identity -> JSON pointer of its IeInfo in the ProtectionPolicy; None if malformed."""
    if not isinstance(mappings, list):
        return None
    out: dict[_Key, str] = {}
    for i, m in enumerate(mappings):
        ies = m.get("IeList") if isinstance(m, dict) else None
        if not isinstance(ies, list):
            return None
        for j, ie in enumerate(ies):
            if not isinstance(ie, dict):
                return None
            direction, name = ("request", ie.get("reqIe")) if "reqIe" in ie else ("response", ie.get("rspIe"))
            key = (str(m.get("apiSignature")), str(m.get("apiMethod")), str(ie.get("ieLoc")), str(ie.get("ieType")),
                   direction, str(name))
            out[key] = f"/apiIeMappingList/{i}/IeList/{j}"
    return out


def _describe(key: _Key) -> str:
    sig, method, loc, typ, direction, name = key
    return f"{method} {sig} {direction} {loc} {name} ({typ})"


# ---------------------------------------------------------------------------- file loading
def _read(file: Path) -> dict:
    try:
        doc = yaml.safe_load(file.read_text())
    except OSError as e:
        raise PolicyError(file, "(file)", f"cannot read: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise PolicyError(file, "(file)", f"not valid YAML: {e}") from None
    if not isinstance(doc, dict):
        raise PolicyError(file, "(file)", "must be a mapping")
    return doc


def _keys(file: Path, key: str, node: Any, allowed: set[str], required: set[str] = frozenset()) -> dict:
    if not isinstance(node, dict):
        raise PolicyError(file, key, "must be a mapping")
    unknown, missing = set(node) - allowed, required - set(node)
    if unknown:
        raise PolicyError(file, f"{key}.{sorted(map(str, unknown))[0]}" if key else sorted(map(str, unknown))[0],
                          f"unknown key (allowed: {', '.join(sorted(allowed))})")
    if missing:
        raise PolicyError(file, f"{key}.{sorted(missing)[0]}" if key else sorted(missing)[0], "missing")
    return node


def _string(file: Path, key: str, value: Any) -> str:
    if not isinstance(value, (str, int)) or isinstance(value, bool) or str(value) == "":
        raise PolicyError(file, key, "must be a non-empty string")
    return str(value)


def _load_encryption(file: Path) -> tuple[DataTypePolicy, dict[str, DataTypePolicy]]:
    doc = _keys(file, "", _read(file), {"generic", "peers"}, {"generic"})
    g = _keys(file, "generic", doc["generic"], {"policy_id", "release", "encrypt"}, {"policy_id", "release"})
    generic = DataTypePolicy(_string(file, "generic.policy_id", g["policy_id"]),
                             _string(file, "generic.release", g["release"]),
                             _encrypted(file, "generic.encrypt", g.get("encrypt", sorted(DEFAULT_ENCRYPTED))))
    peers: dict[str, DataTypePolicy] = {}
    for fqdn, p in _keys(file, "peers", doc.get("peers") or {}, set(doc.get("peers") or {})).items():
        key = f"peers.{fqdn}"
        p = _keys(file, key, p, {"policy_id", "release", "encrypt"})
        peers[str(fqdn).lower()] = DataTypePolicy(
            _string(file, f"{key}.policy_id", p.get("policy_id", generic.policy_id)),
            _string(file, f"{key}.release", p.get("release", generic.release)),
            _encrypted(file, f"{key}.encrypt", p["encrypt"]) if "encrypt" in p else generic.encrypted)
    return generic, peers


def _encrypted(file: Path, key: str, value: Any) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PolicyError(file, key, "must be a list of data types")
    bad = [v for v in value if v not in IE_TYPES or v == "NONSENSITIVE"]
    if bad:
        raise PolicyError(file, key, f"{bad[0]!r} is not a data type that can be encrypted "
                                     f"({', '.join(IE_TYPES[:-1])})")
    missing = sorted(MANDATORY - set(value))
    if missing:
        raise PolicyError(file, key, f"{', '.join(missing)} cannot be turned off: always encrypted on N32-f "
                                     "(TS 33.501 §5.9.3.3)")
    return frozenset(value)


def _load_placement(file: Path) -> tuple[str, list[Mapping], dict[str, tuple[Ie, ...]]]:
    doc = _keys(file, "", _read(file), {"mapping_id", "nf", "api", "version", "release", "generic", "entries"},
                {"mapping_id", "nf", "api", "version", "release"})
    for k in ("nf", "api", "version", "release"):
        _string(file, k, doc[k])
    mapping_id = _string(file, "mapping_id", doc["mapping_id"])
    generic = _directions(file, "generic", doc.get("generic") or {}, None)
    entries = doc.get("entries") or []
    if not isinstance(entries, list):
        raise PolicyError(file, "entries", "must be a list")
    mappings = []
    for i, e in enumerate(entries):
        key = f"entries[{i}]"
        e = _keys(file, key, e, {"method", "path", "request", "response"}, {"method", "path"})
        method = _string(file, f"{key}.method", e["method"]).upper()
        if method not in METHODS:
            raise PolicyError(file, f"{key}.method", f"must be one of {', '.join(METHODS)}")
        path = _string(file, f"{key}.path", e["path"])
        template = path.split("/")[1:]
        if not path.startswith("/") or any(not s or ("{" in s or "}" in s) and not
                                           (s.startswith("{") and s.endswith("}") and len(s) > 2) for s in template):
            raise PolicyError(file, f"{key}.path", "must be an absolute path template; {name} = one whole segment")
        ies = _directions(file, key, e, [s[1:-1] for s in template if s.startswith("{")])
        mappings.append(Mapping(mapping_id, method, path, ies))
    return mapping_id, mappings, generic


def _directions(file: Path, key: str, node: Any, variables: list[str] | None) -> dict[str, tuple[Ie, ...]]:
    if key == "generic":
        _keys(file, key, node, set(DIRECTIONS))
    out = {}
    for d in DIRECTIONS:
        items = node.get(d) or []
        if not isinstance(items, list):
            raise PolicyError(file, f"{key}.{d}", "must be a list of IEs")
        out[d] = tuple(_ie(file, f"{key}.{d}[{j}]", it, d, variables) for j, it in enumerate(items))
    return out


def _ie(file: Path, key: str, node: Any, direction: str, variables: list[str] | None) -> Ie:
    node = _keys(file, key, node, set(_KINDS) | {"type"}, {"type"})
    kinds = [k for k in _KINDS if k in node]
    if len(kinds) != 1:
        raise PolicyError(file, key, f"needs exactly one of {', '.join(_KINDS)}")
    kind, typ = kinds[0], node["type"]
    if typ not in IE_TYPES:
        raise PolicyError(file, f"{key}.type", f"unknown data type {typ!r} ({', '.join(IE_TYPES)})")
    value = node[kind]
    if kind == "binary":
        if value is not True:
            raise PolicyError(file, f"{key}.binary", "must be true (all binary parts)")
        return Ie(kind, ANY, typ)
    name = _string(file, f"{key}.{kind}", value)
    if kind in ("path", "query") and direction == "response":
        raise PolicyError(file, f"{key}.{kind}", "a response has no URI")
    if kind == "path" and (variables is None or name not in variables):
        raise PolicyError(file, f"{key}.path", f"{{{name}}} is not a variable of the path template")
    if kind == "header" and name != name.lower():
        raise PolicyError(file, f"{key}.header", "header names are lower case")
    if kind == "pointer":
        _pattern(file, f"{key}.pointer", name)
    return Ie(kind, name, typ)


def _pattern(file: Path, key: str, value: Any) -> str:
    try:
        jsonpointer.JsonPointer(value)
    except (jsonpointer.JsonPointerException, TypeError, AttributeError):
        raise PolicyError(file, key, f"{value!r} is not a JSON pointer (RFC 6901; '*' = any one token)") from None
    return value


def _load_modification(file: Path) -> dict[str, dict[str | None, tuple[str, ...]]]:
    doc = _keys(file, "", _read(file), {"ipx"}, {"ipx"})
    ipxs = doc["ipx"] or {}
    out: dict[str, dict[str | None, tuple[str, ...]]] = {}
    for fqdn, node in _keys(file, "ipx", ipxs, set(ipxs)).items():
        key = f"ipx.{fqdn}"
        node = _keys(file, key, node, {"default", "peers"})
        per: dict[str | None, tuple[str, ...]] = {None: _patterns(file, f"{key}.default", node.get("default") or [])}
        peers = node.get("peers") or {}
        for peer, pats in _keys(file, f"{key}.peers", peers, set(peers)).items():
            per[str(peer).lower()] = _patterns(file, f"{key}.peers.{peer}", pats or [])
        out[str(fqdn).lower()] = per
    return out


def _patterns(file: Path, key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise PolicyError(file, key, "must be a list of JSON-pointer patterns")
    for j, p in enumerate(value):
        _pattern(file, f"{key}[{j}]", p)
        if p in ("", "/metaData") or p.startswith("/metaData/"):
            raise PolicyError(file, f"{key}[{j}]", "metaData (and the whole block) can never be modified")
    return tuple(value)
