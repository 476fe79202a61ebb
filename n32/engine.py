"""The SEPP engine for the per-message path (N32-f, both SEPP sides, PRINS and TLS mode).

Sans-I/O, in the style of h2/wsproto: the adapter hands in an :class:`~n32.exchange.Exchange`
and the message (``n32.message`` types); the engine answers with a list of actions
(:mod:`n32.exchange`) and records what it did on the exchange. It never reads a clock (the
caller sets ``Exchange.now``), opens a socket or imports mitmproxy. N32-c is not handled here:
the engine hands N32-c requests to the handshake responder (``HandleN32c``) and asks for
handshakes and rekeys (``StartHandshake``); the relation lifecycle owns those.

Every protocol failure is an ``N32Error`` raised by the core and turned here into the answer
(ProblemDetails, TS 29.571), a failure log line and, where TS 33.501 §13.2.2.3 calls for it, an
``n32f-error`` report to the peer.
"""
from __future__ import annotations

import functools
import json
import math
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs, urlsplit

from . import body as body_mod, edge as edge_mod, errors, jwe, modifications, origin, prins, rh_error, routing, wire
from . import upstream_errors, wellformed
from .config import Peer as PeerConfig, SeppConfig
from .context import ContextStore, N32fContext, PeerRelation
from .errors import N32Error
from .exchange import (Action, Answer, Exchange, Forward, HandleN32c, HopKind, Listener, Log, ReportError,
                       StartHandshake, StatusChanged)
from .message import HttpRequest, HttpResponse
from .peer import EXT_RI_PARAMETERS
from .plmn import PlmnId
from .policy import PolicySet

TARGET_HEADER = wire.TARGET_API_ROOT
N32C_PREFIX = wire.N32C_API
N32F_PROCESS = wire.N32F_PROCESS
REKEY_IN_PROGRESS = "N32_REKEY_IN_PROGRESS"


def build(cfg: SeppConfig, store: ContextStore, hiding_secret: bytes | None = None) -> "Engine":
    """The engine of the SEPP ``cfg`` describes (policies, edge steps); ``hiding_secret``: the
    content of ``topology_hiding.secret_file``, read by the caller (file I/O stays in loaders)."""
    policy = PolicySet.load(cfg.policies.encryption, list(cfg.policies.placement), cfg.policies.modification)
    th = cfg.topology_hiding
    edge = edge_mod.build(telescopic_domain=cfg.telescopic.domain, hiding=th.enabled, plmn=cfg.plmn_ids[0],
                          pseudonym_domain=th.pseudonym_domain, secret=hiding_secret,
                          home_networks=th.home_networks, exclude=[cfg.fqdn], limits=cfg.limits)
    if edge.hider is not None:   # configured routes get their pseudonyms before any traffic
        for host in cfg.home_nfs.routes:
            edge.hider.register(host)
    return Engine(cfg, policy, store, edge, cfg.limits)


class Engine:
    """Per-message decisions of one SEPP; state lives in ``store`` (contexts and relations)."""

    def __init__(self, cfg: SeppConfig, policy: PolicySet, store: ContextStore, edge: edge_mod.Edge,
                 limits: body_mod.Limits = body_mod.DEFAULT) -> None:
        self.cfg = cfg
        self.limits = limits
        self.policy = policy
        self.store = store
        self.edge = edge
        self._peers = {p.fqdn: p for p in cfg.peers}
        self._ipx_with_anchor = {k.fqdn for k in cfg.ipx_keys if k.trust_anchor}

    # ================================================================== entry points
    def on_request(self, ex: Exchange, req: HttpRequest) -> list[Action]:
        """A request arrived on ``ex.listener`` (from our NF, a peer SEPP or an IPX)."""
        return self._guard(ex, lambda: self._request(ex, req))

    def on_response(self, ex: Exchange, rsp: HttpResponse) -> list[Action]:
        """The next hop answered an exchange this engine forwarded."""
        if ex.answered or ex.role is None:
            return []
        return self._guard(ex, lambda: self._response(ex, rsp))

    def on_upstream_error(self, ex: Exchange, hop: HopKind, kind: str, sent: bool = True) -> list[Action]:
        """The next hop of a ``Forward`` failed (``kind``: n32.upstream_errors.KINDS; ``sent``
        False: the request certainly never reached it). A failed
        delivery to the home NF is answered like an NF answer, so it travels back to the peer (in
        the protected N32-f response in PRINS) and the visited NF gets this side's cause; a failed
        N32-f hop is answered to our NF directly (TS 29.500 §5.2.7)."""
        ex.undelivered = not sent
        err = upstream_errors.upstream_failure(hop.value, kind, self._timeout(hop))
        if hop is HopKind.NF and not ex.answered:
            return [self._log_failure(ex, err), Answer(problem_response(err))]
        return self._fail(ex, err)

    def _timeout(self, hop: HopKind) -> float:
        t = self.cfg.timeouts
        return t.home_nf if hop is HopKind.NF else t.n32f

    def internal_error(self, ex: Exchange, exc: BaseException) -> list[Action]:
        """Fail closed on a bug: never forward what could not be processed."""
        return self._fail(ex, N32Error(500, wire.SYSTEM_FAILURE, f"internal error: {type(exc).__name__}: {exc}"))

    def on_n32c(self, ex: Exchange, respond: Callable[[], tuple[int, Any]]) -> list[Action]:
        """Answer a ``HandleN32c`` with what the handshake responder (``respond``) returns."""
        def run() -> list[Action]:
            status, body = respond()
            return [Answer(json_response(status, body))]
        return self._guard(ex, run)

    def _guard(self, ex: Exchange, run: Callable[[], list[Action]]) -> list[Action]:
        try:
            return run()
        except N32Error as e:
            return self._fail(ex, e)

    # ================================================================== dispatch
    def _request(self, ex: Exchange, req: HttpRequest) -> list[Action]:
        if ex.listener is Listener.SBI:
            return self._from_own_nf(ex, req)
        if ex.listener in (Listener.N32, Listener.N32F):
            return self._from_n32(ex, req)
        return []

    def _from_n32(self, ex: Exchange, req: HttpRequest) -> list[Action]:
        path = req.path
        if ex.ipx_identity is not None and path == N32F_PROCESS and req.method == "POST":
            # N32-f relayed by a roaming intermediary we contract (PRINS only; never N32-c)
            return self._open_n32f_request(ex, req, via_ipx=ex.ipx_identity)
        if ex.peer_identity is None or ex.peer_identity not in self._peers:
            raise N32Error(403, "PEER_NOT_AUTHENTICATED",
                           "N32 requires mutual TLS with a certificate of a configured roaming partner")
        if path.startswith(N32C_PREFIX):
            if ex.listener is not Listener.N32:
                raise N32Error(404, wire.RESOURCE_URI_STRUCTURE_NOT_FOUND,
                               f"{path}: N32-c is served on listeners.n32, this is the N32-f listener")
            operation = path[len(N32C_PREFIX):]
            body = json_body(req, self.limits, self.limits.n32c_body)
            ex.role, ex.answered, ex.peer, ex.operation = "n32c", True, ex.peer_identity, operation
            return [HandleN32c(ex.peer_identity, operation, body)]
        if path == N32F_PROCESS:
            return self._open_n32f_request(ex, req, via_ipx=None)
        if path.startswith(("/n32c-handshake/", "/n32f-forward/")):
            raise N32Error(404, wire.RESOURCE_URI_STRUCTURE_NOT_FOUND, f"no such N32 resource: {req.method} {path}")
        return self._tls_mode_inbound(ex, req)

    def _response(self, ex: Exchange, rsp: HttpResponse) -> list[Action]:
        if ex.role == "sending" and ex.mode == "PRINS":
            return self._restore_response(ex, rsp)
        if ex.role == "receiving":
            return self._protect_response(ex, rsp)
        if ex.role in ("sending", "tls-receiving") and ex.method:
            # TLS-mode N32-f: the edge steps only (TLS protects the hop)
            if ex.role == "sending":
                rsp = self.edge.to_own_nf(ex.method, ex.path or "", rsp)
            else:
                rsp = self.edge.to_peer(rsp)
            ex.status = rsp.status
            return [Answer(rsp)]
        return []

    # ================================================================== sending SEPP (cSEPP)
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

    # ================================================================== receiving SEPP (pSEPP)
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

    @property
    def _retry_after(self) -> int:
        return max(1, math.ceil(self.cfg.handshake.retry_initial))

    def context_lost(self, ex: Exchange, rsp: HttpResponse | None) -> StartHandshake | None:
        """Whether our NF's request is sent once more after a new handshake (``rsp``: the peer's
        answer, None when there was none). The peer SEPP answered our N32-f with
        CONTEXT_NOT_FOUND (PRINS) or N32_NOT_ESTABLISHED (TLS mode): it does not hold what we sent
        on, so it restarted. It could not read the message, so nothing was delivered: the relation
        is rebuilt (``dead``) and the request may be retried once. Without ``dead``: what we sent
        on is gone but was replaced already; the request is retried on the relation held now."""
        if ex.role != "sending" or ex.handshake_retried:
            return None
        if rsp is None:
            return self._worker_lost(ex)
        if rsp.status not in (403, 404, 503):
            return None
        try:
            cause = json.loads(rsp.body or b"{}").get("cause")
        except (ValueError, AttributeError):
            return None
        if cause == errors.CONTEXT_NOT_FOUND and ex.mode == "PRINS" and ex.context:
            return StartHandshake(ex.peer or "", dead=True, context_id=ex.context)
        if cause == wire.N32_NOT_ESTABLISHED and ex.mode == "TLS":
            return StartHandshake(ex.peer or "", dead=True)
        return None

    def _worker_lost(self, ex: Exchange) -> StartHandshake | None:
        """Scale-out (docs/interop-profile.md): the N32-f endpoint one worker of the peer announced
        for this context refused the request before it was written (no connection or TLS, refused
        stream, GOAWAY below it). That worker is gone with its contexts; nothing was delivered, and
        the peer's N32-c address (a load balancer) reaches the others. Decided on where this
        exchange went, not on the relation now held: a request sent on the dead context while
        another one's failure already dropped it was not delivered either."""
        if not (ex.undelivered and ex.announced_dest):
            return None
        if ex.mode == "TLS":
            peer, relation = self._peers.get(ex.peer or ""), self.store.relation(ex.peer or "")
            if peer is not None and relation is not None and n32f_dest(peer, relation) != ex.announced_dest:
                # the relation was made again already (to another worker): keep it, resend on it
                return StartHandshake(peer.fqdn, wait=True)
        return StartHandshake(ex.peer or "", dead=True, context_id=ex.context if ex.mode == "PRINS" else None)

    @staticmethod
    def _announced(peer: PeerConfig, dest: str) -> str | None:
        """``dest`` if it is an endpoint the peer announced apart from its N32-c one (not configured)."""
        return None if peer.n32f_uri or peer.first_hop_ipx or dest == peer.n32c_uri else dest

    # ================================================================== shared steps
    def _seal(self, actions: list[Action], peer: PeerConfig, ctx: N32fContext, protect: Callable[[], tuple[dict, int]]
              ) -> tuple[dict, int]:
        """Protect with ``ctx``; a rekey starts before any counter could wrap (profile 11). A context
        whose keys are spent answers 503 (``_fail`` asks for the rekey, once)."""
        if ctx.needs_rekey:
            actions.append(StartHandshake(peer.fqdn, rekey=True))
        try:
            return protect()
        except jwe.KeyExhausted:
            raise N32Error(503, REKEY_IN_PROGRESS, f"N32-f keys with {peer.fqdn} exhausted; rekeying") from None

    def _after_open(self, ex: Exchange, ctx: N32fContext, opened: prins.Opened) -> list[Action]:
        """Count verified IPX modifications; learn the peer's RI parameters (§13.2.2.2 step 7)."""
        changed = [m for m in opened.modifications if m.get("operations")]
        ex.ipx_modifications, ex.ipx_modified_by = len(changed), [m["identity"] for m in changed]
        ri = opened.block.get(prins.RI_PARAMETERS)
        if isinstance(ri, dict):
            ctx.peer_ri_parameters = ri
            return [StatusChanged()]
        return []

    def ri_parameters(self, ctx: N32fContext) -> dict:
        """The N32-c parameters relevant to roaming intermediaries (TS 33.501 §13.2.2.2 step 7)."""
        return {"sender": self.cfg.fqdn, "jweCipherSuite": ctx.jwe_suite, "jwsCipherSuite": ctx.jws_suite,
                "ipxProviderIds": [k.fqdn for k in self.cfg.ipx_keys],
                "modificationPolicy": self.policy.modification_policy_wire(ctx.peer_fqdn)}

    def modification_check(self, ctx: N32fContext) -> prins.ModificationCheck:
        """Verifier of modificationsBlock (TS 33.501 §13.2.4.7): the peer's IPXs with the keys and
        policy learnt on N32-c for this context, ours with configured keys and our local policy.

        Built once per context, not per message (issue 14), and kept on the context so it ends
        with it. Rebuilt when N32-c gives the context other IPX keys or policy: the responder's
        context is in the store from round 1, before rounds 2 and 3 bring them (handshake.py
        assigns new objects there, so an identity test sees the change)."""
        ipx_info, ipx_policy = ctx.peer_ipx_sec_info, ctx.peer_modification_policy
        cached = ctx.modification_check
        if cached is not None and cached[0] is self and cached[1] is ipx_info and cached[2] is ipx_policy:
            return cached[3]
        signers = modifications.signers_from(ipx_info, ipx_policy or {})
        for k in self.cfg.ipx_keys:
            signers[k.fqdn] = modifications.Signer(k.fqdn, tuple(k.public_keys + k.certificates),
                                                   tuple(self.policy.modification_patterns(k.fqdn, ctx.peer_fqdn)))

        def check(ctx: N32fContext, body: dict, block: dict, tag: str) -> tuple[dict, list[dict]]:
            return modifications.verify_and_apply(block, body.get("modificationsBlock"), tag, signers)
        ctx.modification_check = (self, ipx_info, ipx_policy, check)
        return check

    # ================================================================== failures
    def _fail(self, ex: Exchange, err: N32Error) -> list[Action]:
        ex.answered = True
        ex.error = {"status": err.status, "cause": err.cause, "detail": err.detail}
        allow = "GET" if ex.operation == "telescopic-mapping" else "POST"
        actions: list[Action] = [Answer(problem_response(err, allow)), self._log_failure(ex, err)]
        if err.cause == REKEY_IN_PROGRESS and ex.peer:
            actions.insert(0, StartHandshake(ex.peer, rekey=True))
        if err.n32f_error_type and ex.report_to:
            message_id = ex.message_id or "0"
            actions.append(ReportError(ex.report_to, err.n32f_error_info(message_id, ex.peer_context_id),
                                       message_id, ex.peer_context_id))
        return actions

    @staticmethod
    def _log_failure(ex: Exchange, err: N32Error) -> Log:
        kind = "N32-f" if ex.role in ("sending", "receiving") else "N32"
        return Log(f"{kind} {ex.role or 'local'}: peer={ex.peer or ex.peer_identity or '-'} "
                   f"context={ex.context or '-'} messageId={ex.message_id or '-'}: "
                   f"{err.status} {err.cause}: {err.detail}")


# ====================================================================== helpers
def _ready(relation: PeerRelation | None, ctx: N32fContext | None) -> bool:
    return relation is not None and relation.capability in ("PRINS", "TLS") and \
        (relation.capability != "PRINS" or ctx is not None)


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
    return urlsplit(uri).path.rstrip("/") + N32F_PROCESS


def forwarded_failure(rsp: HttpResponse) -> N32Error:
    """The peer refused our N32-f message: relay its suggestion to the NF (profile 20)."""
    try:
        pd = json.loads(rsp.body or b"{}")
    except ValueError:
        pd = {}
    if not isinstance(pd, dict):
        pd = {}
    status = pd.get("suggestedStatusCode")
    detail = f"peer SEPP answered {rsp.status} {pd.get('cause', '')}".strip()
    return N32Error(status if isinstance(status, int) and 400 <= status < 600 else 502,
                    pd.get("cause") or "N32F_FORWARDING_FAILED", detail)


def json_body(req: HttpRequest, limits: body_mod.Limits, max_body: int) -> Any:
    """The JSON body of an N32 POST (TS 29.573 §6.1/§6.2 take application/json only), parsed
    within ``limits`` (413 before 415, as the size is known first)."""
    if req.method != "POST":
        raise N32Error(405, wire.METHOD_NOT_ALLOWED, f"{req.method} is not allowed here; use POST")
    ctype = wire.media_type(req.header(wire.CONTENT_TYPE))
    if len(req.body) <= max_body and ctype != wire.JSON:
        raise N32Error(415, wire.UNSUPPORTED_MEDIA_TYPE,
                       f"content-type must be application/json, got {ctype or 'none'!r}")
    return body_mod.loads(req.body, limits, max_body=max_body)


def json_response(status: int, obj: Any, content_type: str = wire.JSON) -> HttpResponse:
    body = b"" if obj is None else json.dumps(obj, separators=(",", ":")).encode()
    return HttpResponse(status, [("content-type", content_type)] if body else [], body)


def problem_response(err: N32Error, allow: str = "POST") -> HttpResponse:
    """ProblemDetails (TS 29.571); with ``suggested_status`` set it is a ProblemDetailsMsgForwarding
    (TS 29.573 §6.2.5.2.4) as n32f-process answers it. A 405 names the allowed method (RFC 9110 §15.5.6)."""
    rsp = json_response(err.status, err.problem_details(), wire.PROBLEM_JSON)
    if err.status == 405:
        rsp.headers.append((wire.ALLOW, allow))
    if err.retry_after is not None:
        rsp.headers.append((wire.RETRY_AFTER, str(err.retry_after)))
    return rsp
