"""The receiving SEPP's steps (pSEPP): N32-f from the peer (or a roaming intermediary) to our home
NF, and our NF's answer protected back (TS 33.501 §13.2.4.7, TS 29.573 §6.2). Part of
:class:`n32.engine.Engine`."""
from __future__ import annotations

from typing import Iterable
from urllib.parse import urlsplit

from . import errors, origin, prins, routing, wire
from .answers import json_body
from .engine_parts import EngineParts
from .errors import N32Error
from .exchange import Action, Answer, Exchange, Forward, HopKind, StartHandshake
from .message import HttpRequest, HttpResponse
from .plmn import PlmnId
from .wire import TARGET_API_ROOT as TARGET_HEADER


class ReceivingSide(EngineParts):
    """pSEPP steps of :class:`n32.engine.Engine` (its entry points dispatch here)."""

    def _open_n32f_request(self, ex: Exchange, req: HttpRequest, via_ipx: str | None) -> list[Action]:
        body = json_body(req, self.limits, self.limits.body)
        peeked = prins.peek(body)  # metaData read once per hop, without a key
        meta = peeked.meta
        ctx = self.store.by_local_id(meta["n32fContextId"])
        # relayed by a roaming intermediary: the context names the sending SEPP
        peer = ex.peer_identity if via_ipx is None else (ctx.peer_fqdn if ctx is not None else None)
        if peer is None or peer not in self._peers:
            raise N32Error(403, errors.CONTEXT_NOT_FOUND, f"no N32-f context {meta['n32fContextId']}",
                           n32f_error_type=errors.CONTEXT_NOT_FOUND, context_id=meta["n32fContextId"])
        ex.role, ex.peer, ex.message_id, ex.report_to, ex.via_ipx = "receiving", peer, meta["messageId"], peer, via_ipx
        ex.request_jwe = body  # kept for inspection: the flow now shows the restored request
        if ctx is None or ctx.peer_fqdn != peer:
            err = N32Error(403, errors.CONTEXT_NOT_FOUND, f"no N32-f context {meta['n32fContextId']} with {peer}",
                           n32f_error_type=errors.CONTEXT_NOT_FOUND, context_id=meta["n32fContextId"])
            if via_ipx is None and self.store.by_peer(peer) is None:
                # an authenticated peer we hold no context with (we restarted): we handshake
                # ourselves, whatever ``initiate`` says; the 403 tells it its context is gone
                return [StartHandshake(peer)] + self._fail(ex, err)
            raise err
        ex.context, ex.peer_context_id, ex.held_context = ctx.local_context_id, ctx.peer_context_id, ctx
        opened = prins.open_request(ctx, body, self.modification_check(ctx), peeked, ex.now)
        actions = self._after_open(ex, ctx, opened)
        ex.answer_ri_parameters = isinstance(opened.block.get(prins.RI_PARAMETERS), dict)
        assert isinstance(opened.message, HttpRequest)
        try:
            fwd = self._deliver_to_home_nf(ex, opened.message, ctx.peer_plmn_ids)
        except N32Error as e:
            # the authentic message asks for what we refuse (its target, path, PLMN IDs): the NF
            # behind the sending SEPP is told so, not a 502 (ProblemDetailsMsgForwarding, profile 20)
            e.suggested_status = e.status if e.suggested_status is None else e.suggested_status
            raise
        r = fwd.request
        ex.method, ex.path = r.method, r.path
        ex.original = {"method": r.method, "authority": r.authority, "path": r.target}
        return actions + [fwd]

    def _tls_mode_inbound(self, ex: Exchange, req: HttpRequest) -> list[Action]:
        """N32-f in TLS mode from the peer authenticated by its certificate."""
        peer = self._peers[ex.peer_identity or ""]
        relation = self.store.relation(peer.fqdn)
        ex.role, ex.peer = "tls-receiving", peer.fqdn
        if relation is None:
            # we hold no relation with this authenticated peer (we restarted, or it released it): we
            # handshake ourselves, whatever ``initiate`` says, and the peer is told to come back
            # (issue 12: 503 with Retry-After; TS 29.500 §5.2.7.2 "service unavailable"). Nothing is
            # forwarded meanwhile (TS 33.501 §13.1.1.2: N32-f follows the N32-c negotiation).
            err = N32Error(503, wire.N32_NOT_ESTABLISHED,
                           f"no TLS-mode N32 relation with {peer.fqdn}; establishing it", retry_after=self._retry_after)
            return [StartHandshake(peer.fqdn)] + self._fail(ex, err)
        if relation.capability != "TLS":
            # the negotiated relation is PRINS: TLS-mode N32-f is not what was agreed, and a new
            # handshake would not change that (fail closed: nothing leaves PRINS in clear)
            err = N32Error(403, wire.N32_NOT_ESTABLISHED,
                           f"N32 with {peer.fqdn} is {relation.capability}, not TLS mode; use n32f-process")
            return self._fail(ex, err)
        fwd = self._deliver_to_home_nf(ex, req, peer.plmn_ids)
        ex.method, ex.path = fwd.request.method, fwd.request.path
        return [fwd]

    def _deliver_to_home_nf(self, ex: Exchange, req: HttpRequest, peer_plmns: Iterable[PlmnId]) -> Forward:
        """Checks shared by both N32-f modes, then the request goes to the home NF the target names.
        The target header, if any, is consumed here: delivery is direct (open5gs does the same)."""
        origin.inbound(req, peer_plmns)
        origin.check_plmn_consistency(req, peer_plmns, self.limits)
        origin.check_access_token(req, peer_plmns)
        req = self.edge.from_peer(req)
        target = routing.outbound_target(req)
        routing.check_inbound_target(target, self.cfg.plmn_ids, self.cfg.fqdn)
        route = self.cfg.home_nfs.route(target.host)
        if route is None:
            raise N32Error(504, "TARGET_NF_NOT_REACHABLE", f"no route to home NF {target.host}")
        uri, protocol = route   # http:// is HTTP/2 prior knowledge unless the route says h1
        if req.header(TARGET_HEADER):
            req.authority, req.path = target.authority, target.prefix + req.path
        req.headers = [(k, v) for k, v in req.headers if k != TARGET_HEADER]
        req.scheme = urlsplit(uri).scheme
        return Forward(req, uri, HopKind.NF, target.host, ex.now + self._timeout(HopKind.NF), protocol)

    def _protect_response(self, ex: Exchange, rsp: HttpResponse) -> list[Action]:
        ctx = ex.held_context or self.store.by_local_id(ex.context or "")
        if ctx is None:
            raise N32Error(503, errors.CONTEXT_NOT_FOUND, "N32-f context ended before the response")
        rsp = self.edge.to_peer(rsp)
        sel = self.policy.selection(ctx.peer_fqdn, ex.method or "", ex.path or "", "response")
        peer = self._peers[ctx.peer_fqdn]
        ipx = peer.first_hop_ipx.fqdn if peer.first_hop_ipx and ex.via_ipx else None
        extra = {prins.RI_PARAMETERS: self.ri_parameters(ctx)} if ex.answer_ri_parameters else None
        actions: list[Action] = []
        body, n_enc = self._seal(actions, peer, ctx, lambda: prins.protect_response(
            ctx, rsp, sel, ex.message_id or "", ipx, peer.options.authorized_ipx_null, extra))
        ex.status, ex.encrypted_response, ex.answered = rsp.status, n_enc, True
        return actions + [Answer(HttpResponse(200, [(wire.CONTENT_TYPE, wire.JSON)], prins.dumps(body)))]
