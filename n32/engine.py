"""The SEPP engine for the per-message path (N32-f, both SEPP sides, PRINS and TLS mode).

Sans-I/O, in the style of h2/wsproto: the adapter hands in an :class:`~n32.exchange.Exchange`
and the message (``n32.message`` types); the engine answers with a list of actions
(:mod:`n32.exchange`) and records what it did on the exchange. It never reads a clock (the
caller sets ``Exchange.now``), opens a socket or imports mitmproxy. N32-c is not handled here:
the engine hands N32-c requests to the handshake responder (``HandleN32c``) and asks for
handshakes and rekeys (``StartHandshake``); the relation lifecycle owns those.

The steps of each side are in n32/sending.py (cSEPP) and n32/receiving.py (pSEPP); what the
engine answers with in n32/answers.py; where N32-f for a peer goes in n32/routing.py.

Every protocol failure is an ``N32Error`` raised by the core and turned here into the answer
(ProblemDetails, TS 29.571), a failure log line and, where TS 33.501 §13.2.2.3 calls for it, an
``n32f-error`` report to the peer.
"""
from __future__ import annotations

import json
import math
from typing import Any, Callable

from . import body as body_mod, edge as edge_mod, errors, jwe, modifications, prins, wire
from . import upstream_errors
from .answers import json_body, json_response, problem_response
from .config import Peer as PeerConfig, SeppConfig
from .context import ContextStore, N32fContext
from .errors import N32Error
from .exchange import (Action, Answer, Exchange, HandleN32c, HopKind, Listener, Log, ReportError,
                       StartHandshake, StatusChanged)
from .message import HttpRequest, HttpResponse
from .policy import PolicySet
from .receiving import ReceivingSide
from .routing import n32f_dest
from .sending import SendingSide

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


class Engine(SendingSide, ReceivingSide):
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
