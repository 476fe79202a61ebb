"""Inter-PLMN routing checks of the SEPP (TS 33.501 §5.9.3.2, §13.1.1.2; TS 29.500 §6.10).

Outbound: the target (``3gpp-Sbi-Target-apiRoot``, else the request authority) must be an NF
FQDN of a configured peer PLMN (``<nf>.5gc.mnc<MNC>.mcc<MCC>.3gppnetwork.org``, TS 23.003 §28).
Inbound: it must be an NF FQDN of our own PLMN. Anything else (IP literals, other domains,
loopback names) is refused, which closes the SSRF class of open5gs issue #4628.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Sequence
from urllib.parse import unquote, urlsplit

from . import wire
from .errors import N32Error, bounded
from .message import HttpRequest
from .plmn import PlmnId
from .wire import TARGET_API_ROOT

if TYPE_CHECKING:     # the configuration imports this module
    from .config import Peer as PeerConfig
    from .context import PeerRelation
_NF_FQDN = re.compile(
    r"^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+5gc\.mnc(\d{3})\.mcc(\d{3})\.3gppnetwork\.org\Z", re.ASCII)


# Percent-encoded "/" and "\\": a server that decodes before splitting sees other segments than
# the SEPP routed and selected the policy for (RFC 3986 §2.2, §7.3).
_ENCODED_SEPARATOR = re.compile(r"%(?:2f|5c)", re.IGNORECASE)
_DOT_SEGMENTS = (".", "..")


def check_path(path: str, param: str = ":path") -> None:
    """Refuse (400 ``INVALID_MSG_FORMAT``) a request path with dot segments (``.``, ``..``, also
    percent-encoded such as ``%2e%2e``), an encoded slash or backslash (``%2f``, ``%5c``), a
    backslash, or any of these encoded twice (``%252e``).

    Called before routing and before policy selection, on the NF-facing side and on the message a
    peer sent us. RFC 3986 §5.2.4 would remove dot segments, but the SEPP routes and selects
    policies on the path it forwards, and an NF that resolves them again (or decodes ``%2f``)
    would serve another resource than the one checked: refusing keeps one reading of the path
    (docs/routing.md)."""
    if "%" not in path and "\\" not in path and ("." not in path or not any(
            seg in _DOT_SEGMENTS for seg in path.split("/"))):
        return                          # nothing encoded, no backslash, no dot segment: the usual path
    text = path
    for _ in range(2):                  # as sent, then once decoded (double encoding)
        why = None
        if "\\" in text:
            why = "backslash in the path"
        elif _ENCODED_SEPARATOR.search(text):
            why = "encoded '/' or '\\' (%2F, %5C) in the path"
        elif any(unquote(seg) in _DOT_SEGMENTS for seg in text.split("/")):
            why = "dot segment ('.' or '..', RFC 3986 §5.2.4) in the path"
        if why:
            raise N32Error(400, "INVALID_MSG_FORMAT", f"{why}: {bounded(path)}",
                           invalid_params=[{"param": param, "reason": why}])
        if "%" not in text:
            return
        text = unquote(text)


@dataclass(frozen=True)
class ApiRoot:
    scheme: str
    host: str
    port: int | None
    prefix: str = ""

    @property
    def authority(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.scheme}://{self.authority}{self.prefix}"


def _refuse(detail: str, param: str = TARGET_API_ROOT) -> N32Error:
    return N32Error(400, "MANDATORY_IE_INCORRECT", detail,
                    invalid_params=[{"param": param, "reason": detail}])


@functools.lru_cache(maxsize=512)     # the same few apiRoots on every request; errors are not kept
def parse_api_root(value: str) -> ApiRoot:
    """Parse ``3gpp-Sbi-Target-apiRoot`` (ABNF of TS 29.500: scheme "://" host [":" port] [path])."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError as e:
        raise _refuse(f"malformed apiRoot {value!r}: {e}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment \
            or parts.username or parts.password:
        raise _refuse(f"malformed apiRoot {value!r}")
    check_path(parts.path or "/", TARGET_API_ROOT)     # the prefix is prepended to the request path
    return ApiRoot(parts.scheme, _host(parts.hostname, value), port, parts.path.rstrip("/"))


def _host(host: str, value: str) -> str:
    """``host`` in lower case without the root's dot: ``udm.example.org.`` (the absolute form,
    RFC 1034 §3.1) is the NF ``udm.example.org``, as certificates and routes name it; kept, it
    reached the TLS name check of the next hop and failed there (a 500 from the receiving SEPP)."""
    host = host.lower()
    host = host[:-1] if host.endswith(".") else host
    if not host or host.endswith("."):
        raise _refuse(f"malformed apiRoot {value!r}")
    return host


@functools.lru_cache(maxsize=1024)
def plmn_of_nf_fqdn(host: str) -> tuple[str, str] | None:
    """(MCC, 3-digit MNC) of an NF FQDN in the 3GPP domain, else None."""
    m = _NF_FQDN.match(host.lower().rstrip("."))
    return (m.group(2), m.group(1)) if m else None


def plmn_set(plmns: Iterable[Any]) -> frozenset[tuple[str, str]]:
    """(MCC, 3-digit MNC) of PlmnId objects, {"mcc","mnc"} dicts or "mcc-mnc" strings."""
    if isinstance(plmns, tuple):        # configured IDs (a tuple): asked for on every request
        hit = _PLMN_SETS.get(id(plmns))
        if hit is not None and hit[0] is plmns:
            return hit[1]
    out = frozenset(PlmnId.parse(p).key for p in plmns)
    if isinstance(plmns, tuple) and len(_PLMN_SETS) < 256:
        _PLMN_SETS[id(plmns)] = (plmns, out)     # the tuple is kept: its id is not reused
    return out


_PLMN_SETS: dict[int, tuple[tuple, frozenset[tuple[str, str]]]] = {}


def outbound_target(req: HttpRequest) -> ApiRoot:
    """Where an NF request from our PLMN is meant to go (TS 29.500 §6.10.2)."""
    header = req.header(TARGET_API_ROOT)
    if header:
        return parse_api_root(header)
    host, _, port = req.authority.rpartition(":") if ":" in req.authority else (req.authority, "", "")
    return ApiRoot(req.scheme or "https", _host(host, req.authority) if host.endswith(".") else host.lower(),
                   int(port) if port.isdigit() else None)


def select_peer(target: ApiRoot, peers: Sequence[Any], own_plmns: Iterable[Any]) -> Any:
    """The peer SEPP serving the PLMN of ``target.host`` (peers have ``plmn_ids``)."""
    plmn = plmn_of_nf_fqdn(target.host)
    if plmn is None:
        raise _refuse(f"target {target.host!r} is not an NF FQDN of a 3GPP PLMN "
                      "(<nf>.5gc.mnc<MNC>.mcc<MCC>.3gppnetwork.org)")
    if plmn in plmn_set(own_plmns):
        raise _refuse(f"target {target.host!r} is in our own PLMN; it is not routed over N32")
    for peer in peers:
        if plmn in plmn_set(peer.plmn_ids):
            return peer
    raise N32Error(404, "PLMN_NOT_ALLOWED",
                   f"no roaming partner configured for PLMN {plmn[0]}-{plmn[1]} (target {target.host})",
                   invalid_params=[{"param": TARGET_API_ROOT, "reason": "PLMN not served by any peer"}])


def check_inbound_target(target: ApiRoot, own_plmns: Iterable[Any], own_fqdn: str | None = None) -> None:
    """Inbound requests may only address NFs of our own PLMN, and not this SEPP itself: its FQDN
    and the telescopic FQDNs below it (TS 33.501 §13.1.1.1) name it to our own NFs only, so a peer
    addressing them asks for a loop (it went to the default home NF route, which failed: a 504)."""
    host, own = target.host.lower(), (own_fqdn or "").lower()
    if own and (host == own or host.endswith("." + own)):
        raise N32Error(403, "TARGET_NOT_ALLOWED", f"target {bounded(target.host)!r} is this SEPP, not an NF",
                       invalid_params=[{"param": ":authority", "reason": "names the receiving SEPP"}])
    plmn = plmn_of_nf_fqdn(target.host)
    if plmn is None or plmn not in plmn_set(own_plmns):
        raise N32Error(403, "TARGET_NOT_ALLOWED",
                       f"target {target.host!r} is not an NF of this PLMN",
                       invalid_params=[{"param": ":authority", "reason": "not in the home network domain"}])


# ---------------------------------------------------------------------- N32-f destination of a peer
def n32f_dest(peer: PeerConfig, relation: PeerRelation | None) -> str:
    """See :func:`_n32f_dest`; the same few answers on every request, so they are kept."""
    learnt = getattr(relation, "n32f_uri", None)
    key = (peer.fqdn, peer.n32f_uri, learnt, peer.n32c_uri,
           tuple(peer.plmn_ids) if learnt and not peer.n32f_uri else None)
    dest = _DESTS.get(key)
    if dest is None:
        if len(_DESTS) >= 1024:
            _DESTS.clear()
        dest = _DESTS[key] = _n32f_dest(peer, relation)
    return dest


_DESTS: dict[tuple, str] = {}


def _n32f_dest(peer: PeerConfig, relation: PeerRelation | None) -> str:
    """Where N32-f for ``peer`` goes: configured ``n32f_uri``; else the endpoint the peer announced
    on N32-c (Rel-18 ``senderN32fFqdn`` + ``senderN32fPort`` / ``senderN32fPortList``): its own FQDN
    with that port means the address configured for its N32-c with that port (labs rarely have
    DNS for SEPP FQDNs); another FQDN is used as announced if it lies in one of the peer's PLMN
    domains (``...mnc<MNC>.mcc<MCC>.3gppnetwork.org``), never elsewhere; else its N32-c apiRoot."""
    if peer.n32f_uri:
        return peer.n32f_uri
    learnt = getattr(relation, "n32f_uri", None)
    if learnt:
        lp, cp = urlsplit(learnt), urlsplit(peer.n32c_uri)
        host = (lp.hostname or "").lower()
        if host == peer.fqdn and lp.port:
            return f"https://{cp.hostname}:{lp.port}"
        domains = [f".mnc{p.mnc3}.mcc{p.mcc}.3gppnetwork.org" for p in peer.plmn_ids]
        if lp.port and any(host.endswith(d) for d in domains):
            return f"https://{host}:{lp.port}"
    return peer.n32c_uri


@functools.lru_cache(maxsize=256)
def dest_path(uri: str) -> str:
    return urlsplit(uri).path.rstrip("/") + wire.N32F_PROCESS
