"""What a SEPP changes in NF messages at the edge of its PLMN, besides N32-f protection:
telescopic FQDNs (TS 33.501 §13.1.1.1) and topology hiding (TS 33.501 §5.9.3.2, §13.1.2).

Sans-I/O: four pure steps over :class:`~n32.message.HttpRequest` / ``HttpResponse``, one per
direction through the SEPP, composed from :mod:`n32.telescopic` and :mod:`n32.topology`:

====================  ===============================  ==========================================
step                  where                            what
====================  ===============================  ==========================================
``from_own_nf``       SBI listener (we are the cSEPP)  telescopic ``:authority`` or target apiRoot
                                                       -> the foreign apiRoot (SCAS 4.2.2.9
                                                       consistency check); our NFs' names hidden
``to_own_nf``         peer's response to our NF        our pseudonyms restored; foreign NF FQDNs
                                                       in Nnrf_NFDiscovery results and ``Location``
                                                       (PDU session / resource URIs) -> telescopic
``from_peer``         N32 request for our NF (pSEPP)   our pseudonyms restored; callback URIs of the
                                                       peer's NFs -> telescopic, so our NFs call
                                                       back through us
``to_peer``           our NF's response to the peer    echoed callback URIs restored; our NFs'
                                                       names and addresses hidden, ``server`` etc.
                                                       removed
====================  ===============================  ==========================================

Each feature is optional (``None``): without a mapper or hider the steps leave messages alone.
"""
from __future__ import annotations

import dataclasses
import functools
import re
from typing import Any, Iterable

from . import body, pointer
from .errors import N32Error
from .message import HttpRequest, HttpResponse
from .telescopic import (CALLBACK_POINTERS, MAPPING_PATH, TelescopicMapper, host_of, restore_callback_uris,
                         rewrite_callback_uris, rewrite_discovery_result, split_uri)
from .plmn import home_domain
from .routing import check_path
from .wellformed import check_request, check_response
from .topology import TopologyHider
from .wire import LOCATION
from .wire import TARGET_API_ROOT as TARGET
DISCOVERY_PREFIX = "/nnrf-disc/v1/nf-instances"
# Response headers holding the URI of a resource in the peer's PLMN that our NF will use next
# (PDU session URIs, TS 29.502 §5.2.2.7.1 step 3; any created resource, TS 29.500 §6.1).
RESOURCE_URI_HEADERS = (LOCATION,)


@dataclasses.dataclass
class Edge:
    telescopic: TelescopicMapper | None = None
    hider: TopologyHider | None = None
    callback_pointers: tuple[str, ...] = CALLBACK_POINTERS
    limits: body.Limits = body.DEFAULT         # config ``limits:``

    @functools.cached_property
    def _callback_marks(self) -> re.Pattern[bytes] | None:
        """The member names the callback pointers end in: a body without any has no callback
        URI to rewrite or restore, and is not parsed (body.may_contain)."""
        last = [pointer.tokens(p)[-1] if p else "*" for p in self.callback_pointers]
        # a last token of digits (or "-") may be an array index, not a member name
        return body.member_marks("*" if t.isdigit() or t == "-" else t for t in last)

    # ---------------------------------------------------------------- Nsepp_Telescopic_FQDN_Mapping
    def is_mapping_request(self, req: HttpRequest) -> bool:
        return self.telescopic is not None and req.path == MAPPING_PATH

    def mapping(self, req: HttpRequest, query: dict[str, list[str]]) -> tuple[int, dict]:
        """``GET /nsepp-telescopic/v1/mapping`` served to our own NFs (TS 29.573 §5.x)."""
        assert self.telescopic is not None
        if req.method != "GET":
            raise N32Error(405, "METHOD_NOT_ALLOWED", f"{req.method} is not allowed on {MAPPING_PATH}; use GET")
        return self.telescopic.mapping_api(query)

    # ---------------------------------------------------------------- cSEPP
    def from_own_nf(self, req: HttpRequest) -> HttpRequest:
        """A request of our NF towards another PLMN, as it will be routed and sent."""
        check_request(req)          # refused here, not by the peer after the trip (a 502 for the NF)
        check_path(req.path)        # before routing and policy selection (issue 13 item 3)
        req = req.evolve(headers=list(req.headers))
        tm = self.telescopic
        if tm is not None:
            target = req.header(TARGET)
            target_host = None
            if target:
                parts = split_uri(target.strip())
                target_host = parts[1] if parts else None
            authority_host = host_of(req.authority)
            # SCAS TS 33.517 4.2.2.9: a telescopic :authority and the target header must agree.
            tm.check_consistent(authority_host, target_host)
            if target_host and tm.is_telescopic(target_host):
                req.headers = [(k, tm.restore_uri(v.strip()) if k == TARGET else v) for k, v in req.headers]
                if tm.from_telescopic(target_host) is None:
                    raise _unknown(target_host, TARGET)
            elif not target and tm.is_telescopic(authority_host):
                foreign = tm.from_telescopic(authority_host)
                if foreign is None:
                    raise _unknown(authority_host, ":authority")
                # The NF addressed the foreign NF by its telescopic name (no target header, TS 29.500
                # §6.1): the foreign apiRoot is the label's FQDN on the default port.
                req.headers.append((TARGET, f"{req.scheme or 'https'}://{foreign}"))
        if self.hider is not None:
            req = self.hider.hide_request(req)
        return req

    def to_own_nf(self, method: str, path: str, rsp: HttpResponse) -> HttpResponse:
        """The peer's response to our NF's request ``method path``."""
        if self.hider is not None:
            rsp = self.hider.restore_response(rsp)
        tm = self.telescopic
        if tm is None:
            return rsp
        headers = [(k, _telescopic_uri(tm, v) if k in RESOURCE_URI_HEADERS else v) for k, v in rsp.headers]
        rsp = rsp.evolve(headers=headers)
        if method == "GET" and path.split("?", 1)[0].startswith(DISCOVERY_PREFIX) and 200 <= rsp.status < 300:
            rsp = body.rewrite(rsp, lambda d: rewrite_discovery_result(d, tm), self.limits)
        return rsp

    # ---------------------------------------------------------------- pSEPP
    def from_peer(self, req: HttpRequest) -> HttpRequest:
        """A request from the peer PLMN for one of our NFs, as our NF will receive it."""
        check_request(req)          # a TLS-mode peer's HTTP/1.1 request is not checked by HTTP/2
        check_path(req.path)        # the restored path, before it is routed to our NF
        if self.hider is not None:
            req = self.hider.restore_request(req)
        if self.telescopic is not None:
            req = body.rewrite(req, lambda d: rewrite_callback_uris(d, self.callback_pointers, self.telescopic),
                               self.limits, marks=self._callback_marks)
        return req

    def to_peer(self, rsp: HttpResponse) -> HttpResponse:
        """Our NF's response, as the peer may see it."""
        check_response(rsp)
        if self.telescopic is not None:
            rsp = body.rewrite(rsp, lambda d: restore_callback_uris(d, self.callback_pointers, self.telescopic),
                               self.limits, marks=self._callback_marks)
        if self.hider is not None:
            rsp = self.hider.hide_response(rsp)
        return rsp


def _unknown(host: str, param: str) -> N32Error:
    return N32Error(400, "MANDATORY_IE_INCORRECT", f"{host!r} is not a telescopic FQDN this SEPP issued",
                    invalid_params=[{"param": param, "reason": "unknown telescopic FQDN"}])


def _telescopic_uri(tm: TelescopicMapper, value: str) -> str:
    """A foreign resource URI -> the same URI on its telescopic host (unchanged if it cannot be)."""
    parts = split_uri(value.strip())
    if parts is None or tm.is_telescopic(parts[1]):
        return value
    try:
        return tm.rewrite_uri(value.strip())
    except N32Error:
        return value          # e.g. an IP literal: left for the NF; routing refuses IP targets anyway


def pseudonym_domain_for(plmn: Any) -> str:
    """Default pseudonym domain of topology hiding: ``th.5gc.mnc<MNC>.mcc<MCC>.3gppnetwork.org``
    (inside our own NF domain, so the peer routes pseudonyms back to us)."""
    return f"th.{home_domain_for(plmn)}"


def home_domain_for(plmn: Any) -> str:
    return home_domain(plmn)


def build(*, telescopic_domain: str | None, hiding: bool, plmn: Any, pseudonym_domain: str | None = None,
          secret: bytes | None = None, home_networks: Iterable[str] | None = None,
          exclude: Iterable[str] = (), limits: body.Limits = body.DEFAULT) -> Edge:
    """An :class:`Edge` from configuration values (see docs/configuration.md)."""
    tm = TelescopicMapper(telescopic_domain) if telescopic_domain else None
    hider = None
    if hiding:
        excl = [d for d in exclude if d] + ([telescopic_domain] if telescopic_domain else [])
        hider = TopologyHider(home_domain_for(plmn), pseudonym_domain or pseudonym_domain_for(plmn), secret=secret,
                              home_networks=home_networks, exclude_domains=excl)
    return Edge(tm, hider, limits=limits)
