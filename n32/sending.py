"""The sending SEPP's steps (cSEPP): our NF's request towards the peer, PRINS or TLS mode, and the
peer's answer back to our NF (TS 33.501 §13.2.4, TS 29.573 §6.2). Part of :class:`n32.engine.Engine`."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from . import body as body_mod, errors, origin, prins, rh_error, routing, wellformed, wire
from .answers import forwarded_failure, json_response
from .config import Peer as PeerConfig
from .engine_parts import EngineParts
from .context import N32fContext, PeerRelation
from .errors import N32Error
from .exchange import Action, Answer, Exchange, Forward, HopKind, Log, StartHandshake
from .message import HttpRequest, HttpResponse
from .peer import EXT_RI_PARAMETERS
from .routing import dest_path, n32f_dest
from .wire import TARGET_API_ROOT as TARGET_HEADER


class SendingSide(EngineParts):
    """cSEPP steps of :class:`n32.engine.Engine` (its entry points dispatch here)."""

    def _from_own_nf(self, ex: Exchange, req: HttpRequest) -> list[Action]:
        if self.edge.is_mapping_request(req):  # Nsepp_Telescopic_FQDN_Mapping (TS 29.573)
            ex.role, ex.answered, ex.operation = "local", True, "telescopic-mapping"
            status, body = self.edge.mapping(req, parse_qs(req.query, keep_blank_values=True))
            return [Answer(json_response(status, body))]
        req = self.edge.from_own_nf(req)
        target = routing.outbound_target(req)
        peer = routing.select_peer(target, self.cfg.peers, self.cfg.plmn_ids)
        ex.role, ex.peer, ex.report_to = "sending", peer.fqdn, None
        relation, ctx = self.store.relation(peer.fqdn), self.store.by_peer(peer.fqdn)
        if not _ready(relation, ctx):
            if not ex.handshake_waited:
                return [StartHandshake(peer.fqdn, wait=True)]
            raise N32Error(503, wire.N32_NOT_ESTABLISHED,
                           f"no N32 security context with {peer.fqdn} yet; handshake pending or failed",
                           retry_after=self._retry_after)
        assert relation is not None
        ex.mode = relation.capability
        if relation.capability == "TLS":
            return self._send_tls_mode(ex, req, target, peer, relation)
        assert ctx is not None
        return self._send_prins(ex, req, target, peer, relation, ctx)

    def _send_prins(self, ex: Exchange, req: HttpRequest, target: routing.ApiRoot, peer: PeerConfig,
                    relation: PeerRelation, ctx: N32fContext) -> list[Action]:
        # The request URI inside the protected message is built from the target apiRoot, and the
        # header is removed (TS 33.501 §13.1.1.2; SCAS TS 33.517 4.2.2.10).
        req.headers = [(k, v) for k, v in req.headers if k != TARGET_HEADER]
        req.scheme, req.authority, req.path = target.scheme, target.authority, target.prefix + req.path
        req = origin.outbound(req, self.cfg.plmn_ids, self.cfg.fqdn)
        hop = peer.first_hop_ipx
        if hop is not None and hop.fqdn not in self._ipx_with_anchor:
            raise N32Error(500, wire.SYSTEM_FAILURE, f"no trust anchor configured for IPX {hop.fqdn} (ipx_keys)")
        sel = self.policy.selection(peer.fqdn, req.method, req.path, "request")
        message_id = prins.new_message_id()
        actions: list[Action] = []
        extra = None
        if not ctx.ri_parameters_sent and EXT_RI_PARAMETERS in peer.options.extensions:  # §13.2.2.2 step 7
            extra = {prins.RI_PARAMETERS: self.ri_parameters(ctx)}
            ctx.ri_parameters_sent = True
        body, n_enc = self._seal(actions, peer, ctx, lambda: prins.protect_request(
            ctx, req, sel, message_id, hop.fqdn if hop else None, peer.options.authorized_ipx_null, extra))
        ex.request_tag = body["reformattedData"].get("tag", "")
        ex.message_id, ex.encrypted, ex.context, ex.peer_context_id = message_id, n_enc, ctx.local_context_id, \
            ctx.peer_context_id
        ex.held_context = ctx
        ex.report_to, ex.method, ex.path = peer.fqdn, req.method, req.path
        ex.original = {"method": req.method, "authority": req.authority, "path": req.target}
        dest = hop.uri if hop else n32f_dest(peer, relation)
        ex.announced_dest = self._announced(peer, dest)
        headers = [(wire.CONTENT_TYPE, wire.JSON)]
        if hop:  # the IPX routes on the receiving SEPP (interop profile: IPX routing)
            headers.append((TARGET_HEADER, f"https://{peer.fqdn}"))
        name = hop.fqdn if hop else peer.fqdn
        raw = prins.dumps(body)
        wellformed.check_carried(raw, body["reformattedData"]["aad"], self.limits)   # what the peer would refuse
        out = HttpRequest("POST", "https", name, dest_path(dest), "", headers, raw)
        kind = HopKind.IPX if hop else HopKind.PEER
        actions.append(Forward(out, dest, kind, name, ex.now + self._timeout(kind)))
        return actions

    def _send_tls_mode(self, ex: Exchange, req: HttpRequest, target: routing.ApiRoot, peer: PeerConfig,
                       relation: PeerRelation) -> list[Action]:
        """TS 33.501 §13.1.1.2: :authority becomes the receiving SEPP, the target header stays."""
        if not req.header(TARGET_HEADER):
            req.headers.append((TARGET_HEADER, str(target)))
        req = origin.outbound(req, self.cfg.plmn_ids, self.cfg.fqdn)
        dest = n32f_dest(peer, relation)
        ex.announced_dest = self._announced(peer, dest)
        port = urlsplit(dest).port or 443
        req.authority = peer.fqdn if port == 443 else f"{peer.fqdn}:{port}"
        req.scheme = "https"
        ex.method, ex.path = req.method, req.path
        ex.original = {"method": req.method, "path": req.target, "authority": str(target)}
        return [Forward(req, dest, HopKind.PEER, peer.fqdn, ex.now + self._timeout(HopKind.PEER))]

    def _restore_response(self, ex: Exchange, rsp: HttpResponse) -> list[Action]:
        ctx = ex.held_context or self.store.by_local_id(ex.context or "")
        if ctx is None:
            raise N32Error(502, errors.CONTEXT_NOT_FOUND, "N32-f context ended before the response arrived")
        if rsp.status != 200:
            raise forwarded_failure(rsp)
        body = body_mod.loads(rsp.body or b"null", self.limits)
        ex.response_jwe = body  # kept for inspection: the flow now shows the restored response
        if rh_error.is_rh_error(body):
            return self._answer_rh_error(ex, body)
        opened = prins.open_response(ctx, body, ex.message_id or "", self.modification_check(ctx))
        actions = self._after_open(ex, ctx, opened)
        msg = self.edge.to_own_nf(ex.method or "", ex.path or "", opened.message)
        ex.answered, ex.status = True, opened.message.status
        return actions + [Answer(msg)]

    def _answer_rh_error(self, ex: Exchange, body: dict) -> list[Action]:
        """Our first-hop roaming hub refused the request (TS 33.501 §13.2.4.5.2a)."""
        peer = self._peers[ex.peer or ""]
        hub = peer.first_hop_ipx.fqdn if peer.first_hop_ipx else None
        if hub is None:
            raise N32Error(502, "INVALID_RH_ERROR", "hub error received although no roaming hub is on the path")
        keys = [k for i in self.cfg.ipx_keys if i.fqdn == hub for k in i.public_keys + i.certificates]
        status, problem = rh_error.open_error(body, ex.message_id or "", ex.request_tag, hub, keys)
        ex.answered, ex.status, ex.rh_error = True, status, {"hub": hub, **problem}
        line = (f"N32-f sending: peer={ex.peer} context={ex.context} messageId={ex.message_id}: "
                f"roaming hub {hub} refused it: {status} {problem.get('cause')}")
        return [Log(line), Answer(json_response(status, problem, wire.PROBLEM_JSON))]


def _ready(relation: PeerRelation | None, ctx: N32fContext | None) -> bool:
    return relation is not None and relation.capability in ("PRINS", "TLS") and \
        (relation.capability != "PRINS" or ctx is not None)
