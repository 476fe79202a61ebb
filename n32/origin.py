"""``3gpp-Sbi-Originating-Network-Id`` and PLMN-ID consistency (TS 33.501 §5.9.3.2;
TS 29.500 §5.2.3.2.15; SCAS TS 33.517 4.2.2.4).

Header ABNF (TS29500_CustomHeaders.abnf, TS 29.500 V18.2.0)::

    3DIGIT "-" 2*3DIGIT [ "-" 11HEXDIG ] [ ";" OWS "src" ":" RWS ("SCP" / "SEPP") "-" srcfqdn ] OWS
    srcfqdn = 4*( ALPHA / DIGIT / "-" / "." )

We emit exactly that (``999-70; src: SEPP-sepp.example.org``) and accept it leniently as to
white space (none or more around ``;`` and after ``src:``, as some implementations send
``src:SEPP-...``); letters are case-insensitive (RFC 5234 strings).

* Sending SEPP (:func:`outbound`): a present value must name a PLMN/SNPN we represent, else
  403 ``PLMN_ID_MISMATCH``; absent -> inserted with our first PLMN and ``src: SEPP-<our FQDN>``.
* Receiving SEPP (:func:`inbound`): a present value must name one of the peer's PLMNs/SNPNs,
  else 403 ``PLMN_ID_MISMATCH`` reported to the peer (``n32f-error`` ``POLICY_MISMATCH``).
* :func:`check_plmn_consistency`: the PLMN IDs in a request from the peer (members
  :data:`PLMN_ID_MEMBERS`, :data:`SERVING_NETWORK_NAME_MEMBERS`, query :data:`PLMN_QUERY_PARAMS`)
  must be the peer's.
* :func:`check_access_token`: the consumer PLMN ID in the access token (``Authorization: Bearer``)
  of a request from the peer must be the peer's (claims read, signature left to the producer).

MNCs are compared 3-digit padded (``70`` == ``070``). A NID (SNPN) only matches an ID entry
with the same NID; entries are ``PlmnId``-like objects (``mcc``, ``mnc``, optional ``nid``),
``{"mcc","mnc"[,"nid"]}`` dicts, ``"mcc-mnc[-nid]"`` strings or ``(mcc, mnc)`` tuples.
"""
from __future__ import annotations

import base64
import functools
import json
import re
from typing import Any, Iterable, Iterator, NamedTuple
from urllib.parse import parse_qsl

from . import body, multipart, pointer, wire
from .errors import POLICY_MISMATCH, N32Error
from .message import HttpRequest
from .plmn import PlmnId
from .wire import ORIGINATING_NETWORK_ID
from .wire import ORIGINATING_NETWORK_ID_NAME as HEADER_NAME

MISMATCH = "PLMN_ID_MISMATCH"

# Request-body members that carry a PLMN ID the peer must own (looked for at any depth).
# ``plmnId`` also matches guami.plmnId, tai.plmnId, ecgi.plmnId, ncgi.plmnId: in a request from
# a visited PLMN they all name the serving network (or the UE's location in it).
PLMN_ID_MEMBERS = ("plmnId", "servingPlmnId", "servingNetwork")     # PlmnId / PlmnIdNid objects
SERVING_NETWORK_NAME_MEMBERS = ("servingNetworkName",)               # "5G:mnc<MNC>.mcc<MCC>.3gppnetwork.org[:<NID>]"
PLMN_QUERY_PARAMS = ("plmn-id",)                                     # JSON PlmnId in the query (Nudm_SDM)

# ASCII digits only and \Z, not $: "٠٠١" is \d to Python and "$" matches before a final newline
_ORIGIN = re.compile(
    r"^[ \t]*(?P<mcc>\d{3})-(?P<mnc>\d{2,3})(?:-(?P<nid>[0-9A-Fa-f]{11}))?"
    r"(?:[ \t]*;[ \t]*src:[ \t]*(?P<type>SCP|SEPP)-(?P<fqdn>[A-Za-z0-9.-]{4,}))?[ \t]*\Z", re.IGNORECASE | re.ASCII)
_SNN = re.compile(r"^5G:mnc(?P<mnc>\d{3})\.mcc(?P<mcc>\d{3})\.3gppnetwork\.org(?::(?P<nid>[0-9A-Fa-f]{11}))?\Z",
                  re.IGNORECASE | re.ASCII)
_MCC, _MNC, _NID = (re.compile(r"^\d{3}\Z", re.ASCII), re.compile(r"^\d{2,3}\Z", re.ASCII),
                    re.compile(r"^[0-9A-Fa-f]{11}\Z"))

NetworkKey = tuple[str, str, str | None]     # (MCC, 3-digit MNC, lower-case NID or None)


class OriginatingNetworkId(NamedTuple):
    mcc: str
    mnc: str                            # as received (2 or 3 digits)
    nid: str | None                     # 11 hex digits (SNPN) or None
    src: tuple[str, str] | None         # ("SCP" | "SEPP", fqdn) or None

    @property
    def key(self) -> NetworkKey:
        return _key(self.mcc, self.mnc, self.nid)


@functools.lru_cache(maxsize=1024)     # the same few networks on every request
def _key(mcc: Any, mnc: Any, nid: Any = None) -> NetworkKey:
    return (*PlmnId(str(mcc), str(mnc)).key, str(nid).lower() if nid else None)


def _raw(p: Any) -> tuple[str, str, str | None]:
    """(MCC, MNC as given, NID or None) of one ID in any of the accepted forms."""
    if isinstance(p, str):
        parts = p.strip().split("-")
        if len(parts) not in (2, 3):
            raise ValueError(f"PLMN ID {p!r} is not MCC-MNC[-NID]")
        return parts[0], parts[1], parts[2] if len(parts) == 3 else None
    if isinstance(p, dict):
        return str(p["mcc"]), str(p["mnc"]), p.get("nid")
    if isinstance(p, (tuple, list)):
        return str(p[0]), str(p[1]), p[2] if len(p) > 2 else None
    return str(p.mcc), str(p.mnc), getattr(p, "nid", None)


def network_keys(ids: Iterable[Any]) -> frozenset[NetworkKey]:
    """Normalised (MCC, 3-digit MNC, NID) of PLMN/SNPN IDs in any of the accepted forms."""
    if isinstance(ids, tuple):          # configured IDs (a tuple): asked for on every request
        hit = _NETWORK_KEYS.get(id(ids))
        if hit is not None and hit[0] is ids:
            return hit[1]
    out = frozenset(_key(*_raw(p)) for p in ids)
    if isinstance(ids, tuple) and len(_NETWORK_KEYS) < 256:
        _NETWORK_KEYS[id(ids)] = (ids, out)      # the tuple is kept: its id is not reused
    return out


_NETWORK_KEYS: dict[int, tuple[tuple, frozenset[NetworkKey]]] = {}


def _show(k: NetworkKey) -> str:
    return "-".join(x for x in k if x)


def _malformed(reason: str) -> N32Error:
    return N32Error(400, "MANDATORY_IE_INCORRECT", f"malformed {HEADER_NAME}: {reason}",
                    invalid_params=[{"param": HEADER_NAME, "reason": reason}])


@functools.lru_cache(maxsize=256)      # one value per peer and NF, on every request; errors are not kept
def parse(value: str) -> OriginatingNetworkId:
    """``(mcc, mnc, nid, src)`` of a header value; N32Error 400 if malformed."""
    m = _ORIGIN.match(value) if isinstance(value, str) else None
    if not m:
        raise _malformed(f"{value!r} does not match MCC-MNC[-NID][; src: SCP|SEPP-fqdn]")
    src = (m["type"].upper(), m["fqdn"]) if m["type"] else None
    return OriginatingNetworkId(m["mcc"], m["mnc"], m["nid"], src)


def format(mcc: str, mnc: str, src_fqdn: str | None = None, *, nid: str | None = None,  # noqa: A001
           src_type: str = "SEPP") -> str:
    """The header value; ValueError for values the ABNF does not allow."""
    mcc, mnc = str(mcc), str(mnc)
    if not _MCC.match(mcc) or not _MNC.match(mnc):
        raise ValueError(f"invalid PLMN ID {mcc}-{mnc}")
    out = f"{mcc}-{mnc}"
    if nid is not None:
        if not _NID.match(nid):
            raise ValueError(f"invalid NID {nid!r} (11 hex digits)")
        out += f"-{nid}"
    if src_fqdn is not None:
        if src_type not in ("SCP", "SEPP") or not re.match(r"^[A-Za-z0-9.-]{4,}$", src_fqdn):
            raise ValueError(f"invalid src {src_type}-{src_fqdn}")
        out += f"; src: {src_type}-{src_fqdn}"
    return out


def _single(req: HttpRequest) -> OriginatingNetworkId | None:
    values = [v for k, v in req.headers if k == ORIGINATING_NETWORK_ID]
    if len(values) > 1:
        raise _malformed(f"{len(values)} header fields (exactly one allowed)")
    return parse(values[0]) if values else None


def _mismatch(param: str, found: NetworkKey, allowed: frozenset[NetworkKey], report: bool) -> N32Error:
    reason = f"{_show(found)} is not among {sorted(_show(k) for k in allowed)}"
    return N32Error(403, MISMATCH, f"{param}: {reason}", n32f_error_type=POLICY_MISMATCH if report else None,
                    invalid_params=[{"param": param, "reason": reason}])


def outbound(req: HttpRequest, own_plmns: Iterable[Any], own_fqdn: str) -> HttpRequest:
    """Sending SEPP: a copy of ``req`` with a checked or inserted originating network ID.

    Present and not ours -> N32Error 403 ``PLMN_ID_MISMATCH`` (no n32f report: the error is
    our NF's); absent -> ``<first own PLMN>; src: SEPP-<own_fqdn>`` appended."""
    own = tuple(own_plmns)      # the configured tuple itself: network_keys keeps its set
    if not own:
        raise ValueError("no own PLMN configured")
    allowed = network_keys(own)
    present = _single(req)
    if present is not None:
        if present.key not in allowed:
            raise _mismatch(HEADER_NAME, present.key, allowed, report=False)
        return req.evolve(headers=list(req.headers))
    mcc, mnc, nid = _raw(own[0])                 # MNC as configured (2 or 3 digits)
    value = _own_value(mcc, mnc, own_fqdn, nid)
    return req.evolve(headers=[*req.headers, (ORIGINATING_NETWORK_ID, value)])


@functools.lru_cache(maxsize=16)
def _own_value(mcc: str, mnc: str, fqdn: str, nid: str | None) -> str:
    return format(mcc, mnc, fqdn, nid=nid)      # the same value on every request


def inbound(req: HttpRequest, peer_plmns: Iterable[Any], *, required: bool = False) -> None:
    """Receiving SEPP: a present value must name one of the peer's PLMNs/SNPNs, else N32Error
    403 ``PLMN_ID_MISMATCH`` (reported to the peer as ``POLICY_MISMATCH``). Absent is accepted
    unless ``required`` (older peers do not insert it); then N32Error 400."""
    present = _single(req)
    if present is None:
        if required:
            raise N32Error(400, "MANDATORY_IE_MISSING", f"{HEADER_NAME} is missing",
                           invalid_params=[{"param": HEADER_NAME, "reason": "missing"}])
        return
    allowed = network_keys(peer_plmns)
    if present.key not in allowed:
        raise _mismatch(HEADER_NAME, present.key, allowed, report=True)


# ---------------------------------------------------------------------- PLMN IDs in the body
def _bad(param: str, reason: str) -> N32Error:
    return N32Error(400, "MANDATORY_IE_INCORRECT", f"{param}: {reason}",
                    invalid_params=[{"param": param, "reason": reason}])


def _plmn_object(v: Any, param: str) -> NetworkKey | None:
    if v is None:                      # PlmnIdRm / nullable
        return None
    if not isinstance(v, dict) or not isinstance(v.get("mcc"), str) or not isinstance(v.get("mnc"), str) \
            or not _MCC.match(v["mcc"]) or not _MNC.match(v["mnc"]) \
            or (v.get("nid") is not None and not (isinstance(v["nid"], str) and _NID.match(v["nid"]))):
        raise _bad(param, f"malformed PLMN ID {json.dumps(v)[:80]}")
    return _key(v["mcc"], v["mnc"], v.get("nid"))


def find_plmn_ids(doc: Any, path: str = "") -> Iterator[tuple[str, NetworkKey]]:
    """``(JSON pointer, PLMN key)`` of every checked member in ``doc`` (N32Error 400 if one of
    them is malformed)."""
    if isinstance(doc, dict):
        for k, v in doc.items():    # the pointer is made only for a member that needs it
            if k in SERVING_NETWORK_NAME_MEMBERS:
                p = pointer.child(path, k)
                if not isinstance(v, str) or not (m := _SNN.match(v)):
                    raise _bad(p, f"malformed serving network name {v!r}")
                yield p, _key(m["mcc"], m["mnc"], m["nid"])
            elif k in PLMN_ID_MEMBERS:
                p = pointer.child(path, k)
                key = _plmn_object(v, p)
                if key is not None:
                    yield p, key
            elif type(v) is dict or type(v) is list:     # only containers hold more members
                yield from find_plmn_ids(v, pointer.child(path, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            if type(v) is dict or type(v) is list:
                yield from find_plmn_ids(v, f"{path}/{i}")


def _json(raw: bytes, where: str, limits: body.Limits) -> Any:
    return body.read(raw, limits, where, unique=True)     # read only


def check_plmn_consistency(req: HttpRequest, peer_plmns: Iterable[Any],
                           limits: body.Limits = body.DEFAULT) -> None:
    """Every PLMN ID of a request from the peer (JSON body, JSON parts of multipart/related,
    ``plmn-id`` query parameter) must be one of the peer's: N32Error 403 ``PLMN_ID_MISMATCH``
    (n32f ``POLICY_MISMATCH``) naming the first offending member as a JSON pointer (query:
    ``?plmn-id``); 400 if the body or a checked member is malformed (duplicate JSON members
    included, so that no parser sees a different value than we checked)."""
    allowed = network_keys(peer_plmns)
    found: list[tuple[str, NetworkKey]] = []
    for name, value in parse_qsl(req.query, keep_blank_values=True) if req.query else ():
        if name in PLMN_QUERY_PARAMS:
            key = _plmn_object(_json(value.encode(), f"?{name}", limits), f"?{name}")
            if key is not None:
                found.append((f"?{name}", key))
    ctype = req.header(wire.CONTENT_TYPE) or ""
    if req.body and wire.is_json(ctype):
        found += find_plmn_ids(_json(req.body, "body", limits))
    elif req.body and multipart.media_type(ctype)[0] == "multipart/related" and (bnd := multipart.boundary(ctype)):
        try:
            parts = multipart.parse(bnd, req.body)
        except ValueError as e:
            raise N32Error(400, "INVALID_MSG_FORMAT", f"malformed multipart body: {e}") from None
        for i, (phdrs, content) in enumerate(parts):
            if wire.is_json(next((v for k, v in phdrs if k == wire.CONTENT_TYPE), "")):
                found += find_plmn_ids(_json(content, f"part {i}", limits))
    for param, key in found:
        if key not in allowed:
            raise _mismatch(param, key, allowed, report=True)


# ---------------------------------------------------------------------- PLMN ID in the access token
# TS 33.501 §13.4.1.2 / §5.9.3.2 and SCAS TS 33.517 4.2.2.4: the receiving SEPP checks that the
# serving (consumer) PLMN ID in the access token of a request from the peer is the peer's. The
# token is a JWS signed by the NRF (TS 33.501 §13.4.1.1); the SEPP does not hold the NRF's key, so
# it reads the claims (TS 29.510 §6.3.5.2.4 AccessTokenClaims) without verifying the signature:
# the producer NF verifies it. Anything else (opaque or encrypted token) is left to the producer.
TOKEN_PARAM = "Authorization"
TOKEN_CLAIMS = ("consumerPlmnId", "consumerSnpnId")   # PlmnId / PlmnIdNid of the serving network
MAX_TOKEN = 16 * 1024           # octets of one token: far above real ones (a few hundred octets)
_TOKEN_LIMITS = body.Limits(body=MAX_TOKEN, depth=16, members=1024, string=MAX_TOKEN)
_B64URL = re.compile(r"^[A-Za-z0-9_-]+\Z", re.ASCII)


def _token_part(part: str, where: str) -> dict[str, Any]:
    """One base64url JSON object of a JWS compact serialisation (RFC 7515 §7.1)."""
    if not _B64URL.match(part) or len(part) % 4 == 1:
        raise _bad(where, "not base64url")
    doc = body.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)), _TOKEN_LIMITS, where, unique=True)
    if not isinstance(doc, dict):
        raise _bad(where, "not a JSON object")
    return doc


def token_claims(value: str) -> dict[str, Any] | None:
    """The claims of a ``Bearer`` JWS access token in an ``Authorization`` value, unverified;
    None for another scheme or a token that is not a JWS compact serialisation (3 parts);
    N32Error 400 for a JWS whose header or claims are not base64url JSON objects."""
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or token.count(".") != 2:      # RFC 6750 §2.1: scheme case-insensitive
        return None
    if len(token) > MAX_TOKEN:
        raise N32Error(413, wire.PAYLOAD_TOO_LARGE, f"{TOKEN_PARAM}: access token over {MAX_TOKEN} octets",
                       invalid_params=[{"param": TOKEN_PARAM, "reason": f"over {MAX_TOKEN} octets"}])
    head, claims, _signature = token.split(".")
    _token_part(head, f"{TOKEN_PARAM} (JWS header)")
    return _token_part(claims, f"{TOKEN_PARAM} (claims)")


def check_access_token(req: HttpRequest, peer_plmns: Iterable[Any]) -> None:
    """Receiving SEPP: the consumer PLMN/SNPN ID of every access token in ``req`` must be one of
    the peer's, else N32Error 403 ``PLMN_ID_MISMATCH`` reported to the peer (``n32f-error``
    ``POLICY_MISMATCH`` naming the N32-f message ID); 400 if a claim is malformed."""
    allowed = None
    for name, value in req.headers:
        if name.lower() != "authorization":
            continue
        for param, key in _token_networks(value):
            allowed = network_keys(peer_plmns) if allowed is None else allowed
            if key not in allowed:
                raise _mismatch(param, key, allowed, report=True)


@functools.lru_cache(maxsize=256)
def _token_networks(value: str) -> tuple[tuple[str, NetworkKey], ...]:
    """(parameter, network) of the consumer claims of the token in one ``Authorization`` value.
    Kept per value: an NF sends the same token until it expires, and decoding it (base64, JSON
    under limits) on every request was a visible share of a receiving SEPP's work. A malformed
    token raises every time (errors are not kept)."""
    claims = token_claims(value)
    if claims is None:
        return ()
    out = []
    for claim in TOKEN_CLAIMS:
        param = f"{TOKEN_PARAM} (claim {claim})"
        key = _plmn_object(claims.get(claim), param)
        if key is not None:
            out.append((param, key))
    return tuple(out)
