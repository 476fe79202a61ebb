"""Telescopic FQDNs (TS 33.501 §13.1.1.1; TS 29.573 Nsepp_Telescopic_FQDN_Mapping).

A telescopic FQDN is ``<label>.<SEPP domain>``: one DNS label that uniquely and reversibly
represents an FQDN of the other PLMN, followed by a domain of our own SEPP (for which the SEPP
holds a wildcard certificate ``*.<SEPP domain>``). Our NFs address foreign NFs by these names,
so their traffic reaches our SEPP, which maps the label back.

TS 23.003 §28.5.2 (the normative label structure) was not available to us; the format below is
ours and documented in docs/routing.md:

* **direct label** (the normal case): the foreign FQDN in lower case with every ``-`` doubled
  and every ``.`` replaced by a single ``-``
  (``ausf.5gc.mnc070.mcc999.3gppnetwork.org`` -> ``ausf-5gc-mnc070-mcc999-3gppnetwork-org``,
  ``smf-1.x.org`` -> ``smf--1-x-org``). A run of ``2k`` hyphens decodes to ``k`` hyphens, a lone
  hyphen to a dot; that is unambiguous because in a valid FQDN a dot is never next to a hyphen.
* **hash label** when the direct label would be longer than 63 octets, would make the whole
  name longer than 253 octets, or would carry ``--`` in positions 3-4 (reserved for IDNA
  labels, RFC 5891 §4.2.3.1): ``t`` + the first 32 hex digits of SHA-256(foreign FQDN). Hash
  labels contain no hyphen, so they never collide with direct labels; they are resolved through
  a bounded in-memory table filled when the label is generated.

Everything here is sans-I/O; failures are :class:`~n32.errors.N32Error`.
"""
from __future__ import annotations

import copy
import hashlib
import ipaddress
import re
from collections import OrderedDict
from typing import Any, Callable, Iterable, Mapping

from . import pointer
from .errors import N32Error
from .routing import plmn_of_nf_fqdn
from .wire import TARGET_API_ROOT_NAME as TARGET_API_ROOT
from .wire import TELESCOPIC_MAPPING

MAX_LABEL = 63
MAX_FQDN = 253
HASH_PREFIX = "t"
HASH_HEX = 32
API_NAME = "nsepp-telescopic"
MAPPING_PATH = TELESCOPIC_MAPPING

# TS 29.571 Fqdn (pattern and length limits of the OpenAPI type).
_FQDN = re.compile(r"^([0-9A-Za-z]([-0-9A-Za-z]{0,61}[0-9A-Za-z])?\.)+[A-Za-z]{2,63}\.?$")
_LDH_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_HASH_LABEL = re.compile(rf"^{HASH_PREFIX}[0-9a-f]{{{HASH_HEX}}}$")
# scheme "://" [userinfo "@"] host [":" port] [path / query / fragment]; host replaced in place.
_URI = re.compile(r"^(?P<head>[A-Za-z][A-Za-z0-9+.-]*://(?:[^@/?#]*@)?)"
                  r"(?P<host>\[[^\]/?#]*\]|[^:/?#\[\]]*)(?P<tail>(?::\d*)?(?:[/?#].*)?)$", re.S)

# Pointers (TS 29.573-style patterns, "*" = any one token) of the callback-like URIs a visited
# PLMN sends to our producers and that the pSEPP turns into telescopic URIs.
CALLBACK_POINTERS: tuple[str, ...] = (
    "/callbackReference",             # Nudm_SDM Subscribe: SdmSubscription (TS 29.503)
    "/dataRestorationCallbackUri",    # Nudm_SDM SdmSubscription, Nudm_UECM registrations
    "/deregCallbackUri",              # Nudm_UECM Amf3GppAccessRegistration / AmfNon3Gpp...
    "/pcscfRestorationCallbackUri",   # Nudm_UECM Amf registrations
    "/vsmfPduSessionUri",             # Nsmf_PDUSession Create: PduSessionCreateData (TS 29.502)
)


def is_fqdn(name: str) -> bool:
    """True for a TS 29.571 ``Fqdn`` (4..253 characters, pattern of the OpenAPI type)."""
    return isinstance(name, str) and 4 <= len(name) <= MAX_FQDN and bool(_FQDN.match(name))


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def host_of(authority: str) -> str:
    """Lower-case host of ``host``, ``host:port``, ``[v6]:port``; trailing dot removed."""
    a = authority.strip()
    if a.startswith("["):
        return a[: a.find("]") + 1].lower() if "]" in a else a.lower()
    host, sep, port = a.rpartition(":")
    if sep and port.isdigit() and ":" not in host:
        a = host
    return a.lower().rstrip(".")


def split_uri(uri: str) -> tuple[str, str, str] | None:
    """``(head, host, tail)`` of an absolute ``http``/``https`` URI, else None.

    ``head + host + tail == uri``; ``tail`` starts with the port or the path."""
    m = _URI.match(uri) if isinstance(uri, str) else None
    if not m or m.group("head").split(":", 1)[0].lower() not in ("http", "https") or not m.group("host"):
        return None
    return m.group("head"), m.group("host"), m.group("tail")


def replace_uri_host(uri: str, fn: Callable[[str], str | None]) -> str:
    """``uri`` with its host replaced by ``fn(host)`` (unchanged if not an http(s) URI or None)."""
    parts = split_uri(uri)
    if parts is None:
        return uri
    head, host, tail = parts
    new = fn(host)
    return uri if new is None else head + new + tail


_escape = pointer.escape
iter_pointer = pointer.walk   # (container, key, pointer) of the members a pattern matches


def _bad_ie(param: str, reason: str, status: int = 400, cause: str = "MANDATORY_IE_INCORRECT") -> N32Error:
    return N32Error(status, cause, f"{param}: {reason}", invalid_params=[{"param": param, "reason": reason}])


def _direct(fqdn: str) -> str:
    return fqdn.replace("-", "--").replace(".", "-")


def _decode_direct(label: str) -> str | None:
    out: list[str] = []
    i = 0
    while i < len(label):
        if label[i] != "-":
            out.append(label[i])
            i += 1
            continue
        j = i
        while j < len(label) and label[j] == "-":
            j += 1
        n = j - i
        if n == 1:
            out.append(".")
        elif n % 2 == 0:
            out.append("-" * (n // 2))
        else:
            return None
        i = j
    return "".join(out)


def remember(table: OrderedDict[str, str], name: str, value: str, max_entries: int, what: str) -> None:
    """Store ``name -> value`` in a bounded LRU ``table`` (oldest dropped first). A ``name``
    already bound to another value is a hash collision: refuse rather than misroute."""
    known = table.get(name)
    if known is not None and known != value:
        raise N32Error(500, "SYSTEM_FAILURE", f"{what} collision for {value!r}")
    table[name] = value
    table.move_to_end(name)
    while len(table) > max_entries:
        table.popitem(last=False)


class TelescopicMapper:
    """Maps foreign FQDNs to ``<label>.<sepp_domain>`` and back.

    ``sepp_domain`` should be a domain used only for telescopic names (e.g.
    ``sepp.5gc.mnc001.mcc001.3gppnetwork.org`` with a ``*.sepp.5gc...`` certificate): every name
    strictly below it is taken to be telescopic. ``max_entries`` bounds the table of hash
    labels (least recently used entries are dropped first)."""

    def __init__(self, sepp_domain: str, *, max_entries: int = 65536) -> None:
        domain = sepp_domain.strip().lower().rstrip(".")
        if not is_fqdn(domain):
            raise ValueError(f"SEPP domain {sepp_domain!r} is not an FQDN")
        if len(HASH_PREFIX) + HASH_HEX + 1 + len(domain) > MAX_FQDN:
            raise ValueError(f"SEPP domain {sepp_domain!r} leaves no room for a telescopic label")
        self.sepp_domain = domain
        self._suffix = "." + domain
        self._max = max_entries
        self._table: OrderedDict[str, str] = OrderedDict()   # hash label -> foreign FQDN

    # ------------------------------------------------------------------ names
    def _norm_foreign(self, foreign_fqdn: str, param: str) -> str:
        if not isinstance(foreign_fqdn, str) or not is_fqdn(foreign_fqdn.strip()):
            raise _bad_ie(param, f"{foreign_fqdn!r} is not an FQDN")
        return foreign_fqdn.strip().lower().rstrip(".")

    def is_telescopic(self, host: str) -> bool:
        """True if ``host`` (or authority) lies strictly below the SEPP domain."""
        return host_of(host).endswith(self._suffix)

    def _direct_label(self, fqdn: str) -> str | None:
        """The direct label of a normalised FQDN, or None if the hash form must be used."""
        label = _direct(fqdn)
        if len(label) <= MAX_LABEL and len(label) + len(self._suffix) <= MAX_FQDN \
                and label[2:4] != "--" and _LDH_LABEL.match(label):
            return label
        return None

    def to_label(self, foreign_fqdn: str, *, param: str = "foreign-fqdn") -> str:
        """The telescopic label of a foreign FQDN (N32Error 400 if it is not an FQDN)."""
        fqdn = self._norm_foreign(foreign_fqdn, param)
        if fqdn == self.sepp_domain or fqdn.endswith(self._suffix):
            raise _bad_ie(param, f"{fqdn!r} is already under the SEPP domain {self.sepp_domain}")
        label = self._direct_label(fqdn)
        if label is not None:
            return label
        label = HASH_PREFIX + hashlib.sha256(fqdn.encode()).hexdigest()[:HASH_HEX]
        remember(self._table, label, fqdn, self._max, "telescopic label")
        return label

    def from_label(self, label: str) -> str | None:
        """The foreign FQDN of a label, or None if it is not one we issue / know."""
        label = label.strip().lower()
        if _HASH_LABEL.match(label):
            fqdn = self._table.get(label)
            if fqdn is not None:
                self._table.move_to_end(label)
            return fqdn
        if not _LDH_LABEL.match(label):
            return None
        fqdn = _decode_direct(label)
        if fqdn is None or not is_fqdn(fqdn) or fqdn.endswith(self._suffix) or fqdn == self.sepp_domain:
            return None
        return fqdn if self._direct_label(fqdn) == label else None

    def to_telescopic(self, foreign_fqdn: str) -> str:
        """``<label>.<sepp_domain>``; a name already under the SEPP domain is returned as is."""
        if isinstance(foreign_fqdn, str) and self.is_telescopic(foreign_fqdn):
            return host_of(foreign_fqdn)
        return self.to_label(foreign_fqdn, param="fqdn") + self._suffix

    def from_telescopic(self, fqdn: str) -> str | None:
        """The foreign FQDN behind a telescopic host (``host`` or ``host:port``), else None
        (not under our domain, more than one label below it, or an unknown label)."""
        host = host_of(fqdn)
        if not host.endswith(self._suffix):
            return None
        label = host[: -len(self._suffix)]
        return None if "." in label else self.from_label(label)

    # ------------------------------------------------------------------ URIs
    def rewrite_uri(self, uri: str, *, param: str = "uri") -> str:
        """Absolute URI of a foreign NF -> the same URI on its telescopic host (scheme, port,
        path, query kept). N32Error 400 if ``uri`` is not an absolute http(s) URI or its host
        is an IP literal (cannot be represented; traffic must not bypass the SEPP)."""
        parts = split_uri(uri)
        if parts is None:
            raise _bad_ie(param, f"{uri!r} is not an absolute http(s) URI")
        head, host, tail = parts
        if is_ip_literal(host):
            raise _bad_ie(param, f"{uri!r}: an IP address cannot be given a telescopic FQDN")
        return head + self.to_telescopic(host) + tail

    def restore_uri(self, uri: str) -> str:
        """Inverse of :meth:`rewrite_uri`; other URIs (and unknown labels) come back unchanged."""
        return replace_uri_host(uri, self.from_telescopic)

    # ------------------------------------------------------------------ Nsepp_Telescopic_FQDN_Mapping
    def mapping_api(self, query: Mapping[str, Any]) -> tuple[int, dict[str, str]]:
        """``GET /nsepp-telescopic/v1/mapping`` (TS 29.573, GetTelescopicMapping).

        ``query``: parameter -> value (str, or a list of str as from ``parse_qs``); exactly one
        of ``foreign-fqdn`` / ``telescopic-label``; other parameters are ignored. Returns
        ``(200, TelescopicMapping)``; raises N32Error 400 (missing, both, repeated or invalid
        parameter) or 404 (label not known)."""
        values: dict[str, str] = {}
        for name in ("foreign-fqdn", "telescopic-label"):
            if name not in query:
                continue
            v = query[name]
            if isinstance(v, (list, tuple)):
                if len(v) != 1:
                    raise _bad_ie(name, "query parameter must occur exactly once", cause="INVALID_QUERY_PARAM")
                v = v[0]
            if not isinstance(v, str) or not v:
                raise _bad_ie(name, "empty query parameter", cause="INVALID_QUERY_PARAM")
            values[name] = v
        if not values:
            raise N32Error(400, "MANDATORY_QUERY_PARAM_MISSING",
                           "one of foreign-fqdn or telescopic-label is required",
                           invalid_params=[{"param": "foreign-fqdn", "reason": "missing"},
                                           {"param": "telescopic-label", "reason": "missing"}])
        if len(values) == 2:
            raise N32Error(400, "INVALID_QUERY_PARAM", "foreign-fqdn and telescopic-label are mutually exclusive",
                           invalid_params=[{"param": "telescopic-label", "reason": "not allowed with foreign-fqdn"}])
        if "foreign-fqdn" in values:
            fqdn = values["foreign-fqdn"]
            if not is_fqdn(fqdn):
                raise _bad_ie("foreign-fqdn", f"{fqdn!r} is not an FQDN", cause="INVALID_QUERY_PARAM")
            try:
                label = self.to_label(fqdn)
            except N32Error as e:
                raise _bad_ie("foreign-fqdn", e.detail, cause="INVALID_QUERY_PARAM") from None
            foreign = fqdn.lower().rstrip(".")
        else:
            raw = values["telescopic-label"].strip().lower()
            label = raw[: -len(self._suffix)] if raw.endswith(self._suffix) else raw
            if not _LDH_LABEL.match(label):
                raise _bad_ie("telescopic-label", f"{raw!r} is not a DNS label", cause="INVALID_QUERY_PARAM")
            found = self.from_label(label)
            if found is None:
                raise N32Error(404, "TELESCOPIC_LABEL_NOT_FOUND", f"no foreign FQDN for telescopic label {label!r}",
                               invalid_params=[{"param": "telescopic-label", "reason": "unknown label"}])
            foreign = found
        return 200, {"telescopicLabel": label, "seppDomain": self.sepp_domain, "foreignFqdn": foreign}

    # ------------------------------------------------------------------ SCAS 4.2.2.9
    def check_consistent(self, telescopic_host: str | None, target_api_root_host: str | None) -> None:
        """Refuse (N32Error 400) a request whose telescopic host and ``3gpp-Sbi-Target-apiRoot``
        host name different NFs (TS 33.517 4.2.2.9). Either may be a host or ``host:port``.

        Nothing to check when one is absent or ``telescopic_host`` is not below the SEPP domain
        (e.g. the SEPP's own FQDN); a name below it that is not a known label is refused."""
        if not telescopic_host or not target_api_root_host or not self.is_telescopic(telescopic_host):
            return
        foreign = self.from_telescopic(telescopic_host)
        if foreign is None:
            raise N32Error(400, "MANDATORY_IE_INCORRECT", f"{host_of(telescopic_host)!r} is not a valid telescopic FQDN",
                           invalid_params=[{"param": ":authority", "reason": "unknown telescopic FQDN"}])
        target = host_of(target_api_root_host)
        if self.is_telescopic(target):
            target = self.from_telescopic(target) or target
        if target != foreign:
            a, b = plmn_of_nf_fqdn(foreign), plmn_of_nf_fqdn(target)
            what = f"PLMN {'-'.join(a) if a else '?'} vs {'-'.join(b) if b else '?'}" if a != b else "same PLMN"
            reason = f"telescopic FQDN names {foreign}, {TARGET_API_ROOT} names {target} ({what})"
            raise N32Error(400, "MANDATORY_IE_INCORRECT", f"inconsistent routing information: {reason}",
                           invalid_params=[{"param": TARGET_API_ROOT, "reason": reason},
                                           {"param": ":authority", "reason": reason}])


# ---------------------------------------------------------------------- body rewriting
# NFProfile / NFService members (TS 29.510) handled by rewrite_discovery_result.
FQDN_MEMBERS = ("fqdn", "interPlmnFqdn")
IP_MEMBERS = ("ipv4Addresses", "ipv6Addresses")
ENDPOINT_ADDRESS_MEMBERS = ("ipv4Address", "ipv6Address")


def _upstream(e: N32Error, pointer: str) -> N32Error:
    return N32Error(502, "INVALID_MSG_FORMAT", f"discovery result from the peer: {pointer}: {e.detail}",
                    invalid_params=[{"param": pointer, "reason": e.detail}])


def _rewrite_nf(obj: dict, mapper: TelescopicMapper, path: str) -> None:
    for k in FQDN_MEMBERS:
        if k in obj:
            try:
                obj[k] = mapper.to_telescopic(obj[k])
            except N32Error as e:
                raise _upstream(e, f"{path}/{k}") from None
    for k in IP_MEMBERS:
        obj.pop(k, None)
    if isinstance(obj.get("ipEndPoints"), list):
        eps = []
        for ep in obj["ipEndPoints"]:
            if isinstance(ep, dict):
                ep = {k: v for k, v in ep.items() if k not in ENDPOINT_ADDRESS_MEMBERS}
                if ep:
                    eps.append(ep)
        if eps:
            obj["ipEndPoints"] = eps
        else:
            del obj["ipEndPoints"]

    def uri(container: Any, key: Any, p: str) -> None:
        v = container[key]
        if isinstance(v, str) and split_uri(v) is not None:
            try:
                container[key] = mapper.rewrite_uri(v, param=p)
            except N32Error as e:
                raise _upstream(e, p) from None

    if "apiPrefix" in obj:
        uri(obj, "apiPrefix", f"{path}/apiPrefix")
    for c, k, p in iter_pointer(obj, "/callbackUriPrefixList/*/callbackUriPrefix"):
        uri(c, k, path + p)
    for c, k, p in iter_pointer(obj, "/defaultNotificationSubscriptions/*/callbackUri"):
        uri(c, k, path + p)


def rewrite_discovery_result(search_result: dict, mapper: TelescopicMapper) -> dict:
    """cSEPP: a SearchResult (TS 29.510) received over N32, made fit for our own NFs.

    Every NFProfile in it is foreign. In ``nfInstances``/``completeNfInstances`` profiles and
    their ``nfServices[]``/``nfServiceList{}``: ``fqdn``/``interPlmnFqdn`` -> telescopic FQDN;
    ``ipv4Addresses``/``ipv6Addresses`` and the addresses in ``ipEndPoints`` removed (transport
    and port kept; entries left empty dropped); absolute URIs in ``apiPrefix``,
    ``callbackUriPrefixList[].callbackUriPrefix``, ``defaultNotificationSubscriptions[].callbackUri``
    and ``nfInstanceList{}.nrfDiscApiUri`` rewritten. Returns a new dict; N32Error 502 naming the
    member if a value cannot be rewritten."""
    out = copy.deepcopy(search_result)
    if not isinstance(out, dict):
        raise N32Error(502, "INVALID_MSG_FORMAT", "discovery result from the peer is not a JSON object")
    for key in ("nfInstances", "completeNfInstances"):
        profiles = out.get(key)
        if not isinstance(profiles, list):
            continue
        for i, prof in enumerate(profiles):
            if not isinstance(prof, dict):
                continue
            _rewrite_nf(prof, mapper, f"/{key}/{i}")
            services = prof.get("nfServices")
            if isinstance(services, list):
                for j, svc in enumerate(services):
                    if isinstance(svc, dict):
                        _rewrite_nf(svc, mapper, f"/{key}/{i}/nfServices/{j}")
            services = prof.get("nfServiceList")
            if isinstance(services, dict):
                for sid, svc in services.items():
                    if isinstance(svc, dict):
                        _rewrite_nf(svc, mapper, f"/{key}/{i}/nfServiceList/{_escape(sid)}")
    for c, k, p in iter_pointer(out, "/nfInstanceList/*/nrfDiscApiUri"):
        if isinstance(c[k], str):
            try:
                c[k] = mapper.rewrite_uri(c[k], param=p)
            except N32Error as e:
                raise _upstream(e, p) from None
    return out


def rewrite_callback_uris(body: dict, paths: Iterable[str], mapper: TelescopicMapper) -> dict:
    """pSEPP: callback-like URIs (e.g. :data:`CALLBACK_POINTERS`) in a request body from the
    peer -> telescopic URIs, so our producers call back through the SEPP. ``paths`` are JSON
    pointer patterns (``*`` = any one token); absent members are skipped. Returns a new dict;
    N32Error 400 naming the member if a value is not an absolute http(s) URI with an FQDN."""
    if not _any_member(body, paths):
        return body             # most messages carry none: no copy
    out = copy.deepcopy(body)
    for pattern in paths:
        for c, k, p in iter_pointer(out, pattern):
            if not isinstance(c[k], str):
                raise _bad_ie(p, "callback URI must be a string")
            c[k] = mapper.rewrite_uri(c[k], param=p)
    return out


def _any_member(body: Any, paths: Iterable[str]) -> bool:
    return any(next(iter_pointer(body, pattern), None) is not None for pattern in paths)


def restore_callback_uris(body: dict, paths: Iterable[str], mapper: TelescopicMapper) -> dict:
    """Inverse of :func:`rewrite_callback_uris` (e.g. for the 201 response echoing the
    subscription back to the peer). Returns a new dict (``body`` itself when no pattern
    matches); other values are left alone."""
    if not _any_member(body, paths):
        return body
    out = copy.deepcopy(body)
    for pattern in paths:
        for c, k, _ in iter_pointer(out, pattern):
            if isinstance(c[k], str):
                c[k] = mapper.restore_uri(c[k])
    return out
