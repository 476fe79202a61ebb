"""N32-c (TS 29.573 §5.2, TS 33.501 §13.5 and §13.2.2.2) as two explicit state machines, sans-I/O.

``Responder`` answers the four operations on one N32-c TLS connection; ``Initiator`` produces the
request sequence of one handshake and digests the answers. Each role has one
``(state, input) -> next state`` table (as ``h2``'s connection state machine): the order of the
exchange (capability, then exchange-params rounds 1..3 on the same connection, TS 33.501
§13.2.2.2) is enforced by the table, and an input the table does not list for the current state
is answered with its wire error (400 ``MANDATORY_IE_INCORRECT``, profile 5). Both roles derive
the N32-f session keys from the master key the adapter exports from *that* connection (profile
8-9), so no TLS object enters the core. Rounds of exchange-params:

1. cipher suites and each side's own ``n32fContextId``;
2. protection policies (``protectionPolicyInfo`` / ``selProtectionPolicyInfo``) or a named
   security profile (extension member ``securityProfile``); sent when a side has one;
3. IPX security information (``ipxProviderSecInfoList``); sent when we have some, or empty when
   the peer accepts that extension (``peers[].options.extensions``).

Events (``n32.events``) report what happened; errors are ``N32Error`` carrying the answer.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import TYPE_CHECKING, Any, Callable

from . import kdf, policy_exchange, schema, trust, wire
from .context import ContextStore, N32fContext, PeerRelation
from .errors import N32Error, bad_request
from .events import (ContextEstablished, ContextTerminated, HandshakeCompleted, N32Event, N32fErrorReceived,
                     PolicyMismatch, RelationEstablished, RelationReleased)
from .peer import EXT_EMPTY_ROUND3, EXT_MODIFICATION_POLICY, EXT_WILDCARDS, EXTENSIONS, Peer
from .plmn import PlmnId

if TYPE_CHECKING:
    from .config import SeppConfig
    from .policy import PolicySet

__all__ = ["NONE", "OPERATIONS", "LocalSepp", "Peer", "PeerSettings", "ConnectionState", "Outcome", "Responder",
           "Initiator", "ResponderState", "InitiatorState", "LocalProtocolError", "release_request",
           "terminate_request", "new_context_id", "N32Event", "RelationEstablished", "RelationReleased",
           "ContextEstablished", "ContextTerminated", "HandshakeCompleted", "PolicyMismatch", "N32fErrorReceived",
           "EXTENSIONS"]

NONE = "NONE"
OPERATIONS = wire.N32C_OPERATIONS
PeerSettings = Peer            # the name the runtime used before the typed Peer



class LocalProtocolError(RuntimeError):
    """We drove a state machine wrongly (a bug in the caller, never the peer's doing)."""


# --------------------------------------------------------------------------- inputs
@dataclass
class LocalSepp:
    fqdn: str
    plmn_ids: list                      # PlmnId
    capabilities: tuple[str, ...]
    jwe_suites: tuple[str, ...]
    jws_suites: tuple[str, ...]
    policy: "PolicySet | None" = None
    ipx_sec_info: list = field(default_factory=list)
    security_profile: str | None = None
    n32f_fqdn: str | None = None
    n32f_port: int | None = None
    lifetime: float = 86400.0
    rekey_margin: int = 1000
    supported_features: str = "1"
    max_messages: int = 2 ** 32

    @classmethod
    def from_config(cls, cfg: "SeppConfig", policy: "PolicySet | None") -> "LocalSepp":
        n32f = cfg.listeners.n32f or cfg.listeners.n32
        return cls(cfg.fqdn, list(cfg.plmn_ids), tuple(cfg.security_capabilities), tuple(cfg.jwe_cipher_suites),
                   tuple(cfg.jws_cipher_suites), policy, [k.sec_info() for k in cfg.ipx_keys],
                   cfg.security_profile, cfg.fqdn, n32f.port, cfg.contexts.lifetime, cfg.contexts.rekey_margin,
                   max_messages=cfg.contexts.max_messages)

    def plmn_wire(self) -> list[dict]:
        return [PlmnId.parse(p).to_wire() for p in self.plmn_ids]


@dataclass
class Outcome:
    status: int
    body: dict | None
    events: list[N32Event] = field(default_factory=list)


def new_context_id() -> str:
    """16 lower-case hex digits from a CSPRNG (profile 6)."""
    return secrets.token_hex(8)


def _pick(offered: list[str], allowed: tuple[str, ...]) -> str | None:
    """Profile 3/5: the first entry of the initiator's list that we allow."""
    return next((x for x in offered if x in allowed), None)


def _n32f_uri(fqdn: Any, port: Any) -> str | None:
    """Rel-18 ``senderN32fFqdn`` + ``senderN32fPort`` (request) / first of ``senderN32fPortList``."""
    if isinstance(port, list):
        port = port[0] if port else None
    if isinstance(fqdn, str) and fqdn and isinstance(port, int) and not isinstance(port, bool) and 0 < port < 65536:
        return f"https://{fqdn.lower().rstrip('.')}:{port}"
    return None


def _check_plmns(announced: Any, peer: Peer, cert_plmns: frozenset[PlmnId] | None, status: int) -> None:
    """TS 33.501 §13.1, SCAS TS 33.517 4.2.5: every PLMN a peer announces on N32-c must be covered
    by its trust anchor (the peer's configured PLMNs) and, when known, by its certificate."""
    bad = []
    for i, p in enumerate(announced or []):
        try:
            plmn = PlmnId.parse(p)
        except ValueError:
            bad.append({"param": f"/plmnIdList/{i}", "reason": "not a PLMN ID"})
            continue
        if plmn not in set(peer.plmn_ids):
            bad.append({"param": f"/plmnIdList/{i}", "reason": f"{plmn} is not vouched for by the trust anchor of {peer.fqdn}"})
        elif cert_plmns is not None and plmn not in cert_plmns:
            bad.append({"param": f"/plmnIdList/{i}", "reason": f"{plmn} is not named by the certificate of {peer.fqdn}"})
    if bad:
        raise N32Error(status, "PLMN_NOT_ALLOWED", f"{peer.fqdn} announced PLMN IDs its certificate and trust anchor "
                       f"do not cover: {', '.join(b['reason'].split(' ')[0] for b in bad)}", invalid_params=bad)


def _round2_members(local: LocalSepp, peer: Peer, policy_key: str) -> dict[str, Any]:
    """Protection-policy members of a round-2 body (TS 29.573 §6.1.5.2.3); ``policy_key`` is
    ``protectionPolicyInfo`` (request) or ``selProtectionPolicyInfo`` (response)."""
    out: dict[str, Any] = {}
    if local.security_profile:
        out["securityProfile"] = local.security_profile
    else:
        wire = policy_exchange.policy_wire(local.policy, peer.fqdn, peer.accepts(EXT_WILDCARDS))
        if wire is not None:
            out[policy_key] = wire
    if peer.accepts(EXT_MODIFICATION_POLICY) and local.policy is not None:
        mod = local.policy.modification_policy_wire(peer.fqdn)
        if mod:
            out["modificationPolicy"] = mod
    return out


def _profile(body: dict) -> str | None:
    p = body.get("securityProfile")
    return None if p in (None, "none") else p   # "none": what earlier versions sent for "no policy"


def _mismatches(local: LocalSepp, peer: Peer, received: dict | None, profile: str | None) -> list[dict]:
    if profile is not None or local.security_profile is not None:
        if profile != local.security_profile:
            return [{"param": "/securityProfile", "reason": f"peer uses {profile!r}, we use {local.security_profile!r}"}]
        return []
    if local.policy is None or received is None:
        return []
    return policy_exchange.mismatches(local.policy, peer.fqdn, received)


def _apply_round2(ctx: N32fContext, body: dict, policy_key: str) -> None:
    ctx.peer_protection_policy = body.get(policy_key)
    ctx.peer_modification_policy = policy_exchange.modification_policy(ctx.peer_protection_policy,
                                                                       body.get("modificationPolicy"))
    ctx.security_profile = _profile(body)


def _derive(local: LocalSepp, peer: Peer, master: bytes, role: str, own_id: str, peer_id: str,
            jwe: str, jws: str, now: float | None) -> N32fContext:
    init_id, resp_id = (own_id, peer_id) if role == "initiator" else (peer_id, own_id)
    kctx, khash = peer.opt("kdf_context", "default"), peer.opt("kdf_hash", "sha256")
    keys = kdf.derive_session_keys(master, init_id, resp_id, jwe, kctx, khash)
    return N32fContext(own_id, peer_id, role, peer.fqdn, tuple(peer.plmn_ids), jwe, jws, keys, master, kctx, khash,
                       lifetime=local.lifetime, rekey_margin=local.rekey_margin, counter_limit=local.max_messages,
                       created=0.0 if now is None else now)


# --------------------------------------------------------------------------- responder
class ResponderState(StrEnum):
    IDLE = "idle"                    # nothing exchanged on this connection yet
    TLS = "tls"                      # TLS selected: the relation needs nothing more
    AWAIT_ROUND1 = "await-round1"    # PRINS selected: cipher suites next
    AWAIT_ROUND2 = "await-round2"
    AWAIT_ROUND3 = "await-round3"
    DONE = "done"


class RxInput(Enum):
    """What the responder received, classified by operation and (for rounds 1 and 3 skipped to)
    by the members that only that message carries."""
    CAPABILITY_PRINS = "exchange-capability selecting PRINS"
    CAPABILITY_TLS = "exchange-capability selecting TLS"
    RELEASE = 'exchange-capability ["NONE"]'
    SUITES = "exchange-params with cipher suites (round 1)"
    POLICY = "exchange-params with protection policies (round 2)"
    IPX = "exchange-params with IPX security information (round 3)"
    PARAMS = "exchange-params"
    TERMINATE = "n32f-terminate"
    ERROR = "n32f-error"


_R = ResponderState
_RX_TABLE: dict[tuple[ResponderState, RxInput], ResponderState] = {
    (_R.IDLE, RxInput.CAPABILITY_PRINS): _R.AWAIT_ROUND1,
    (_R.IDLE, RxInput.CAPABILITY_TLS): _R.TLS,
    (_R.AWAIT_ROUND1, RxInput.SUITES): _R.AWAIT_ROUND2,
    (_R.AWAIT_ROUND2, RxInput.POLICY): _R.AWAIT_ROUND3,
    (_R.AWAIT_ROUND2, RxInput.PARAMS): _R.AWAIT_ROUND3,    # a round 2 with nothing in it
    (_R.AWAIT_ROUND2, RxInput.IPX): _R.DONE,              # round 2 is optional ("may"): skipped
    (_R.AWAIT_ROUND3, RxInput.IPX): _R.DONE,
    (_R.AWAIT_ROUND3, RxInput.PARAMS): _R.DONE,           # round 3 of a side with no IPX
}
for _s in ResponderState:   # on any connection state; they do not change it
    _RX_TABLE[(_s, RxInput.RELEASE)] = _R.IDLE
    _RX_TABLE[(_s, RxInput.TERMINATE)] = _s
    _RX_TABLE[(_s, RxInput.ERROR)] = _s

_EXPECTED = {_R.IDLE: "exchange-capability", _R.TLS: "nothing more (TLS was selected)",
             _R.AWAIT_ROUND1: "round 1 (cipher suites)", _R.AWAIT_ROUND2: "round 2 or 3",
             _R.AWAIT_ROUND3: "round 3", _R.DONE: "nothing more (all rounds done)"}


@dataclass
class ConnectionState:
    """One N32-c TLS connection on the responder side."""

    peer: Peer
    exporter: Callable[[], bytes]
    # PLMN IDs of the peer's certificate on this connection (None: not known to the caller)
    cert_plmns: frozenset[PlmnId] | None = None
    state: ResponderState = ResponderState.IDLE
    capability: str | None = None
    context: N32fContext | None = None
    peer_n32f_uri: str | None = None
    capability_request: dict = field(default_factory=dict)

    @property
    def round(self) -> int:
        return {_R.AWAIT_ROUND2: 1, _R.AWAIT_ROUND3: 2, _R.DONE: 3}.get(self.state, 0)


def _classify_params(body: dict) -> RxInput:
    if "jweCipherSuiteList" in body or "jwsCipherSuiteList" in body:
        return RxInput.SUITES
    if any(k in body for k in ("protectionPolicyInfo", "securityProfile", "modificationPolicy")):
        return RxInput.POLICY
    if "ipxProviderSecInfoList" in body:
        return RxInput.IPX
    return RxInput.PARAMS


class Responder:
    def __init__(self, local: LocalSepp, peers: list[Peer], store: ContextStore) -> None:
        self.local, self.store = local, store
        self.peers = {p.fqdn: p for p in peers}

    def handle(self, conn: ConnectionState, operation: str, body: Any, now: float | None = None) -> Outcome:
        if operation not in OPERATIONS:
            raise N32Error(404, "RESOURCE_URI_STRUCTURE_NOT_FOUND", f"unknown N32-c operation {operation!r}")
        if operation == "exchange-capability":
            return self._exchange_capability(conn, body)
        if operation == "exchange-params":
            return self._exchange_params(conn, body, now)
        if operation == "n32f-terminate":
            schema.validate("N32fContextInfo", body)
            self._step(conn, RxInput.TERMINATE)
            ctx = self.store.by_either_id(body["n32fContextId"])
            if ctx is None or ctx.peer_fqdn != conn.peer.fqdn:
                raise N32Error(404, "CONTEXT_NOT_FOUND", f"no N32-f context {body['n32fContextId']} with {conn.peer.fqdn}")
            self.store.remove(ctx)
            return Outcome(200, {"n32fContextId": body["n32fContextId"]}, [ContextTerminated(ctx)])
        schema.validate("N32fErrorInfo", body)
        self._step(conn, RxInput.ERROR)
        return Outcome(204, None, [N32fErrorReceived(conn.peer.fqdn, body)])

    def connection_closed(self, conn: ConnectionState) -> list[N32Event]:
        """The initiator closed the N32-c connection (TS 33.501 §13.2.2.2 step 6): a handshake that
        skipped round 3 (no IPX on its side) is complete now."""
        if conn.context is not None and conn.state in (_R.AWAIT_ROUND2, _R.AWAIT_ROUND3):
            conn.state = _R.DONE
            return [HandshakeCompleted(conn.peer.fqdn, "PRINS", conn.context)]
        return []

    @staticmethod
    def _step(conn: ConnectionState, rx: RxInput) -> None:
        nxt = _RX_TABLE.get((conn.state, rx))
        if nxt is None:
            what = "exchange-params before PRINS was selected on this connection" if conn.state in (_R.IDLE, _R.TLS) \
                and rx in (RxInput.SUITES, RxInput.POLICY, RxInput.IPX, RxInput.PARAMS) else f"{rx.value} out of order"
            hint = " (before round 1)" if conn.state == _R.AWAIT_ROUND1 else ""
            raise bad_request(f"{what}{hint}: expected {_EXPECTED[conn.state]}", cause="MANDATORY_IE_INCORRECT")
        conn.state = nxt

    # ---------------------------------------------------------------- exchange-capability
    def _exchange_capability(self, conn: ConnectionState, body: Any) -> Outcome:
        schema.validate("SecNegotiateReqData", body)
        trust.check_sender(body["sender"], conn.peer.fqdn)
        offered = body["supportedSecCapabilityList"]
        base = {"sender": self.local.fqdn}
        if offered == [NONE]:
            # Profile 3: releases an established TLS-mode relation (open5gs' way to terminate).
            self._step(conn, RxInput.RELEASE)
            rel = self.store.relation(conn.peer.fqdn)
            if rel is not None and rel.capability == "TLS":
                self.store.set_relation(conn.peer.fqdn, None)
            return Outcome(200, {**base, "selectedSecCapability": NONE}, [RelationReleased(conn.peer.fqdn)])
        if conn.state is not _R.IDLE:
            raise bad_request(f"exchange-capability out of order: expected {_EXPECTED[conn.state]}")
        _check_plmns(body.get("plmnIdList"), conn.peer, conn.cert_plmns, 403)
        chosen = _pick(offered, tuple(c for c in conn.peer.capabilities if c in self.local.capabilities))
        if chosen is None:
            raise N32Error(400, "NEGOTIATION_NOT_ALLOWED",
                           f"none of {offered} is allowed with {conn.peer.fqdn} "
                           f"(allowed: {list(conn.peer.capabilities)})")
        rsp = {**base, "selectedSecCapability": chosen, "3GppSbiTargetApiRootSupported": True,
               "plmnIdList": self.local.plmn_wire()}
        if "supportedFeatures" in body:
            try:
                rsp["supportedFeatures"] = format(int(body["supportedFeatures"] or "0", 16) &
                                                  int(self.local.supported_features, 16), "x")
            except ValueError:
                raise bad_request("supportedFeatures is not hexadecimal") from None
        if self.local.n32f_fqdn and self.local.n32f_port:
            rsp["senderN32fFqdn"] = self.local.n32f_fqdn
            rsp["senderN32fPortList"] = [self.local.n32f_port]
        self._step(conn, RxInput.CAPABILITY_PRINS if chosen == "PRINS" else RxInput.CAPABILITY_TLS)
        conn.capability, conn.capability_request = chosen, body
        conn.peer_n32f_uri = _n32f_uri(body.get("senderN32fFqdn"), body.get("senderN32fPort"))
        events: list[N32Event] = []
        if chosen == "TLS":
            self.store.set_relation(conn.peer.fqdn, self._relation(conn, "TLS"))
            events.append(RelationEstablished(conn.peer.fqdn, "TLS"))
            events.append(HandshakeCompleted(conn.peer.fqdn, "TLS"))
        return Outcome(200, rsp, events)

    @staticmethod
    def _relation(conn: ConnectionState, capability: str) -> PeerRelation:
        b = conn.capability_request
        return PeerRelation(capability, b.get("sender"), b.get("plmnIdList", []), conn.peer_n32f_uri,
                            bool(b.get("3GppSbiTargetApiRootSupported", False)), b.get("supportedFeatures"))

    # ---------------------------------------------------------------- exchange-params
    def _exchange_params(self, conn: ConnectionState, body: Any, now: float | None) -> Outcome:
        schema.validate("SecParamExchReqData", body)
        if body.get("sender") is not None:
            trust.check_sender(body["sender"], conn.peer.fqdn)
        rx = _classify_params(body)
        before = conn.state
        ctx = conn.context
        if rx is not RxInput.SUITES and ctx is not None and body["n32fContextId"] != ctx.peer_context_id:
            raise bad_request(f"n32fContextId {body['n32fContextId']} is not the one of round 1 "
                              f"({ctx.peer_context_id})", cause="MANDATORY_IE_INCORRECT",
                              invalid_params=[{"param": "/n32fContextId", "reason": "not the round-1 ID"}])
        if before is _R.AWAIT_ROUND1 and rx is RxInput.SUITES:
            return self._round1(conn, body, now)
        self._step(conn, rx)
        assert ctx is not None   # every state past round 1 has its context
        base = {"n32fContextId": ctx.local_context_id, "sender": self.local.fqdn}
        if before is _R.AWAIT_ROUND2 and rx is not RxInput.IPX:
            _apply_round2(ctx, body, "protectionPolicyInfo")
            events: list[N32Event] = []
            bad = _mismatches(self.local, conn.peer, ctx.peer_protection_policy, ctx.security_profile)
            if bad:
                events.append(PolicyMismatch(conn.peer.fqdn, ctx, bad,
                                             conn.peer.opt("policy_mismatch", "report") == "report"))
            return Outcome(200, {**base, **_round2_members(self.local, conn.peer, "selProtectionPolicyInfo")}, events)
        ctx.peer_ipx_sec_info = list(body.get("ipxProviderSecInfoList") or []) + list(conn.peer.ipx_sec_info)
        rsp = dict(base)
        if self.local.ipx_sec_info:
            rsp["ipxProviderSecInfoList"] = self.local.ipx_sec_info
        return Outcome(200, rsp, [HandshakeCompleted(conn.peer.fqdn, "PRINS", ctx)])

    def _round1(self, conn: ConnectionState, body: dict, now: float | None) -> Outcome:
        jwe = _pick(body.get("jweCipherSuiteList") or [], self.local.jwe_suites)
        jws = _pick(body.get("jwsCipherSuiteList") or [], self.local.jws_suites)
        if jwe is None or jws is None:
            raise N32Error(400, "NEGOTIATION_NOT_ALLOWED", f"no common {'JWE' if jwe is None else 'JWS'} cipher suite "
                           f"(ours: {list(self.local.jwe_suites if jwe is None else self.local.jws_suites)})")
        own = new_context_id()
        while own == body["n32fContextId"]:
            own = new_context_id()
        self._step(conn, RxInput.SUITES)
        # the context's age counts on the store's clock (the caller's) unless the caller said when
        ctx = _derive(self.local, conn.peer, conn.exporter(), "responder", own, body["n32fContextId"], jwe, jws,
                      self.store.clock() if now is None else now)
        ctx.peer_ipx_sec_info = list(conn.peer.ipx_sec_info)
        ctx.peer_n32f_uri = conn.peer_n32f_uri
        # Make before break: the initiator may not hold it yet; the lifecycle decides when we send on it.
        ctx.send_ready = False
        self.store.add(ctx)   # several contexts per peer FQDN may coexist (TS 29.573)
        self.store.set_relation(conn.peer.fqdn, self._relation(conn, "PRINS"))
        conn.context = ctx
        return Outcome(200, {"n32fContextId": own, "selectedJweCipherSuite": jwe, "selectedJwsCipherSuite": jws,
                             "sender": self.local.fqdn}, [ContextEstablished(ctx)])


# --------------------------------------------------------------------------- initiator
class InitiatorState(StrEnum):
    CAPABILITY = "capability"            # next: send exchange-capability
    AWAIT_CAPABILITY = "await-capability"
    ROUND1 = "round1"
    AWAIT_ROUND1 = "await-round1"
    ROUND2 = "round2"
    AWAIT_ROUND2 = "await-round2"
    ROUND3 = "round3"
    AWAIT_ROUND3 = "await-round3"
    DONE = "done"
    FAILED = "failed"


class TxInput(Enum):
    SEND = "send"
    SKIP = "skip"                   # a round with nothing to send (rounds 2 and 3 are optional)
    PRINS = "PRINS selected"
    TLS = "TLS selected"
    OK = "200"
    REFUSED = "error answer"


_I = InitiatorState
_TX_TABLE: dict[tuple[InitiatorState, TxInput], InitiatorState] = {
    (_I.CAPABILITY, TxInput.SEND): _I.AWAIT_CAPABILITY,
    (_I.AWAIT_CAPABILITY, TxInput.PRINS): _I.ROUND1,
    (_I.AWAIT_CAPABILITY, TxInput.TLS): _I.DONE,
    (_I.ROUND1, TxInput.SEND): _I.AWAIT_ROUND1,
    (_I.AWAIT_ROUND1, TxInput.OK): _I.ROUND2,
    (_I.ROUND2, TxInput.SEND): _I.AWAIT_ROUND2,
    (_I.ROUND2, TxInput.SKIP): _I.ROUND3,
    (_I.AWAIT_ROUND2, TxInput.OK): _I.ROUND3,
    (_I.ROUND3, TxInput.SEND): _I.AWAIT_ROUND3,
    (_I.ROUND3, TxInput.SKIP): _I.DONE,
    (_I.AWAIT_ROUND3, TxInput.OK): _I.DONE,
}
for _s in (_I.AWAIT_CAPABILITY, _I.AWAIT_ROUND1, _I.AWAIT_ROUND2, _I.AWAIT_ROUND3):
    _TX_TABLE[(_s, TxInput.REFUSED)] = _I.FAILED


class Initiator:
    """The request sequence of one handshake towards ``peer`` on one connection.

    With ``exporter`` (the master key of this connection) the context is built as soon as round 1
    is answered and reported with ``ContextEstablished`` (not yet for sending), so that a peer
    sending on it right after its round-3 answer finds it stored (make before break). ``now``:
    the caller's clock when the handshake starts, the created time of the context (the core
    reads no clock; without it the context counts its age from 0)."""

    def __init__(self, local: LocalSepp, peer: Peer, exporter: Callable[[], bytes] | None = None,
                 now: float | None = None, cert_plmns: frozenset[PlmnId] | None = None) -> None:
        self.local, self.peer, self.exporter, self.now, self.cert_plmns = local, peer, exporter, now, cert_plmns
        self.own_id = new_context_id()
        self.state = InitiatorState.CAPABILITY
        self.selected_capability: str | None = None
        self.peer_context_id: str | None = None
        self.jwe: str | None = None
        self.jws: str | None = None
        self.capability_response: dict = {}
        self.round2_response: dict = {}
        self.peer_ipx: list = []
        self.context: N32fContext | None = None
        self.events: list[N32Event] = []
        self._taken = 0

    def take_events(self) -> list[N32Event]:
        """The events since the last call (``events`` keeps them all)."""
        out, self._taken = self.events[self._taken:], len(self.events)
        return out

    def _step(self, tx: TxInput) -> None:
        nxt = _TX_TABLE.get((self.state, tx))
        if nxt is None:
            raise LocalProtocolError(f"{tx.value} in state {self.state}")
        self.state = nxt

    def offered(self) -> list[str]:
        return [c for c in self.local.capabilities if c in self.peer.capabilities]

    def next_request(self) -> tuple[str, dict] | None:
        if self.state in (_I.DONE, _I.FAILED):
            return None
        step = self._request()
        while step is None and self.state in (_I.ROUND2, _I.ROUND3):
            self._step(TxInput.SKIP)
            step = None if self.state is _I.DONE else self._request()
        if step is not None:
            self._step(TxInput.SEND)
        return step

    def _request(self) -> tuple[str, dict] | None:
        base = {"sender": self.local.fqdn}
        if self.state is _I.CAPABILITY:
            body = {**base, "supportedSecCapabilityList": self.offered(), "3GppSbiTargetApiRootSupported": True,
                    "plmnIdList": self.local.plmn_wire(), "supportedFeatures": self.local.supported_features}
            if self.local.n32f_fqdn and self.local.n32f_port:
                body.update(senderN32fFqdn=self.local.n32f_fqdn, senderN32fPort=self.local.n32f_port)
            return "exchange-capability", body
        if self.state is _I.ROUND1:
            return "exchange-params", {"n32fContextId": self.own_id, "jweCipherSuiteList": list(self.local.jwe_suites),
                                       "jwsCipherSuiteList": list(self.local.jws_suites), **base}
        if self.state is _I.ROUND2:
            members = _round2_members(self.local, self.peer, "protectionPolicyInfo")
            return ("exchange-params", {"n32fContextId": self.own_id, **base, **members}) if members else None
        if self.state is _I.ROUND3:
            if self.local.ipx_sec_info:
                return "exchange-params", {"n32fContextId": self.own_id, **base,
                                           "ipxProviderSecInfoList": self.local.ipx_sec_info}
            if self.peer.accepts(EXT_EMPTY_ROUND3):
                return "exchange-params", {"n32fContextId": self.own_id, **base}
            return None
        raise LocalProtocolError(f"next_request while {self.state}: receive the answer first")

    def receive(self, status: int, body: Any) -> None:
        if status != 200:
            where = self.state
            self._step(TxInput.REFUSED)
            cause = body.get("cause") if isinstance(body, dict) else None
            detail = body.get("detail") if isinstance(body, dict) else None
            raise N32Error(status if 400 <= status < 600 else 502, cause or "N32C_FAILED",
                           f"{self.peer.fqdn} answered {status} in {where}: {detail or ''}".strip())
        try:
            self._receive_ok(body)
        except N32Error:
            self.state = _I.FAILED
            raise

    def _receive_ok(self, body: Any) -> None:
        if self.state is _I.AWAIT_CAPABILITY:
            schema.validate("SecNegotiateRspData", body)
            trust.check_sender(body["sender"], self.peer.fqdn)
            sel = body["selectedSecCapability"]
            if sel not in self.offered():
                raise N32Error(502, "NEGOTIATION_NOT_ALLOWED", f"{self.peer.fqdn} selected {sel}, which we did not offer")
            _check_plmns(body.get("plmnIdList"), self.peer, self.cert_plmns, 502)
            self.selected_capability, self.capability_response = sel, body
            self._step(TxInput.PRINS if sel == "PRINS" else TxInput.TLS)
            if sel == "TLS":
                self.events += [RelationEstablished(self.peer.fqdn, "TLS"), HandshakeCompleted(self.peer.fqdn, "TLS")]
            return
        if self.state not in (_I.AWAIT_ROUND1, _I.AWAIT_ROUND2, _I.AWAIT_ROUND3):
            raise LocalProtocolError(f"an answer in state {self.state}: nothing was sent")
        schema.validate("SecParamExchRspData", body)
        if body.get("sender") is not None:
            trust.check_sender(body["sender"], self.peer.fqdn)
        if self.state is _I.AWAIT_ROUND1:
            jwe, jws = body.get("selectedJweCipherSuite"), body.get("selectedJwsCipherSuite")
            if jwe not in self.local.jwe_suites or jws not in self.local.jws_suites:
                raise N32Error(502, "NEGOTIATION_NOT_ALLOWED", f"{self.peer.fqdn} selected {jwe}/{jws}, not offered")
            if body["n32fContextId"] == self.own_id:
                raise N32Error(502, "MANDATORY_IE_INCORRECT", "peer chose our own context ID")
            self.peer_context_id, self.jwe, self.jws = body["n32fContextId"], jwe, jws
            self._step(TxInput.OK)
            if self.exporter is not None:
                self.context = self._build(self.exporter())
                self.events.append(ContextEstablished(self.context))
            return
        if body["n32fContextId"] != self.peer_context_id:
            raise N32Error(502, "MANDATORY_IE_INCORRECT", "peer changed its n32fContextId between rounds")
        if self.state is _I.AWAIT_ROUND2:
            self.round2_response = body
            bad = _mismatches(self.local, self.peer, body.get("selProtectionPolicyInfo"), _profile(body))
            if bad:
                self.events.append(PolicyMismatch(self.peer.fqdn, self.context, bad,
                                                  self.peer.opt("policy_mismatch", "report") == "report"))
            if self.context is not None:
                _apply_round2(self.context, body, "selProtectionPolicyInfo")
        else:
            self.peer_ipx = list(body.get("ipxProviderSecInfoList") or [])
            if self.context is not None:
                self.context.peer_ipx_sec_info = self.peer_ipx + list(self.peer.ipx_sec_info)
        self._step(TxInput.OK)
        if self.state is _I.DONE and self.context is not None:
            self.context.send_ready = True   # the responder has held it since round 1
            self.events.append(HandshakeCompleted(self.peer.fqdn, "PRINS", self.context))

    # the round-2 view the runtime read before contexts were built early
    @property
    def peer_policy(self) -> dict | None:
        return self.round2_response.get("selProtectionPolicyInfo")

    def peer_relation(self) -> PeerRelation:
        b = self.capability_response
        return PeerRelation(self.selected_capability, b.get("sender"), b.get("plmnIdList", []),
                            _n32f_uri(b.get("senderN32fFqdn"), b.get("senderN32fPortList")),
                            bool(b.get("3GppSbiTargetApiRootSupported", False)), b.get("supportedFeatures"))

    def _build(self, master: bytes) -> N32fContext:
        ctx = _derive(self.local, self.peer, master, "initiator", self.own_id, self.peer_context_id or "",
                      self.jwe or "", self.jws or "", self.now)
        ctx.peer_ipx_sec_info = list(self.peer.ipx_sec_info)
        ctx.peer_n32f_uri = self.peer_relation().n32f_uri
        ctx.send_ready = False
        return ctx

    def finish(self, master: bytes) -> N32fContext:
        """The complete context (built now if no exporter was given up front)."""
        if self.state is not _I.DONE or self.selected_capability != "PRINS" or not self.peer_context_id:
            raise LocalProtocolError(f"handshake not complete (state {self.state})")
        if self.context is None:
            self.context = self._build(master)
            _apply_round2(self.context, self.round2_response, "selProtectionPolicyInfo")
            self.context.peer_ipx_sec_info = self.peer_ipx + list(self.peer.ipx_sec_info)
            for ev in self.events:
                if isinstance(ev, PolicyMismatch):
                    ev.context = self.context
        self.context.send_ready = True
        return self.context


def release_request(local: LocalSepp) -> dict:
    """exchange-capability with ["NONE"]: ends a TLS-mode relation (profile 3)."""
    return {"sender": local.fqdn, "supportedSecCapabilityList": [NONE]}


def terminate_request(ctx: N32fContext) -> dict:
    """N32fContextInfo with the receiver's context ID (profile 6)."""
    return {"n32fContextId": ctx.peer_context_id}
