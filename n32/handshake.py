"""N32-c (TS 29.573 §5.2, TS 33.501 §13.5 and §13.2.2.2), sans-I/O.

``Responder`` answers the four operations of one N32-c TLS connection; ``Initiator`` produces the
request sequence of one handshake and digests the answers. Both derive the N32-f session keys
from the master key the adapter exports from *that* connection (profile 8-9), so no TLS object
enters the core. Parameter exchange runs in three rounds on one connection (profile 5):

1. cipher suites and each side's own ``n32fContextId``;
2. protection policies (``protectionPolicyInfo`` / ``selProtectionPolicyInfo``), or a named
   security profile (extension member ``securityProfile``), with our full modification policy
   in the extension member ``modificationPolicy`` (``{ipx fqdn: [pointer patterns]}``);
3. IPX security information (``ipxProviderSecInfoList``, omitted when a side has none).

Unknown members are ignored by peers (profile 4), so the extension members are safe to send.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any, Callable

from . import kdf, schema, trust, wire
from .context import ContextStore, N32fContext, PeerRelation
from .errors import N32Error, bad_request

NONE = "NONE"
OPERATIONS = wire.N32C_OPERATIONS


# --------------------------------------------------------------------------- inputs
@dataclass
class LocalSepp:
    fqdn: str
    plmn_ids: list                      # PlmnId-like with to_wire()
    capabilities: tuple[str, ...]
    jwe_suites: tuple[str, ...]
    jws_suites: tuple[str, ...]
    policy: Any = None                  # n32.policy.PolicySet (to_wire, mismatches, modification_policy_wire)
    ipx_sec_info: list = field(default_factory=list)
    security_profile: str | None = None
    n32f_fqdn: str | None = None
    n32f_port: int | None = None
    lifetime: float = 86400.0
    rekey_margin: int = 1000
    supported_features: str = "1"
    max_messages: int = 2 ** 32

    @classmethod
    def from_config(cls, cfg: Any, policy: Any) -> "LocalSepp":
        n32f = cfg.listeners.n32f or cfg.listeners.n32
        return cls(cfg.fqdn, list(cfg.plmn_ids), tuple(cfg.security_capabilities), tuple(cfg.jwe_cipher_suites),
                   tuple(cfg.jws_cipher_suites), policy, [k.sec_info() for k in cfg.ipx_keys],
                   cfg.security_profile, cfg.fqdn, n32f.port, cfg.contexts.lifetime, cfg.contexts.rekey_margin,
                   max_messages=cfg.contexts.max_messages)

    def plmn_wire(self) -> list[dict]:
        return [p.to_wire() if hasattr(p, "to_wire") else p for p in self.plmn_ids]


@dataclass
class PeerSettings:
    fqdn: str
    plmn_ids: list
    capabilities: tuple[str, ...]
    options: Any = None                 # config.PeerOptions
    ipx_sec_info: list = field(default_factory=list)   # configured for this peer

    @classmethod
    def from_config(cls, peer: Any) -> "PeerSettings":
        return cls(peer.fqdn, list(peer.plmn_ids), tuple(peer.security_capabilities), peer.options,
                   [k.sec_info() for k in peer.ipx_keys])

    def opt(self, name: str, default: Any) -> Any:
        return getattr(self.options, name, default) if self.options is not None else default


# --------------------------------------------------------------------------- events
@dataclass
class RelationEstablished:
    peer: str
    capability: str


@dataclass
class RelationReleased:
    peer: str


@dataclass
class ContextEstablished:
    context: N32fContext


@dataclass
class ContextTerminated:
    context: N32fContext


@dataclass
class PolicyMismatch:
    peer: str
    context: N32fContext | None
    invalid_params: list[dict]
    report: bool


@dataclass
class N32fErrorReceived:
    peer: str
    info: dict


@dataclass
class Outcome:
    status: int
    body: dict | None
    events: list = field(default_factory=list)


@dataclass
class ConnectionState:
    """Per N32-c TLS connection on the responder side."""

    peer: PeerSettings
    exporter: Callable[[], bytes]
    capability: str | None = None
    context: N32fContext | None = None
    round: int = 0


def new_context_id() -> str:
    """16 lower-case hex digits from a CSPRNG (profile 6)."""
    return secrets.token_hex(8)


def _pick(offered: list[str], allowed: tuple[str, ...]) -> str | None:
    """Profile 3/5: the first entry of the initiator's list that we allow."""
    return next((x for x in offered if x in allowed), None)


def _round_of(body: dict) -> int:
    if "jweCipherSuiteList" in body or "jwsCipherSuiteList" in body:
        return 1
    if "protectionPolicyInfo" in body or "securityProfile" in body or "selProtectionPolicyInfo" in body:
        return 2
    return 3


def _policy_members(local: Any, peer_fqdn: str, policy_key: str) -> dict[str, Any]:
    """The protection-policy members of a round-2 exchange-params body (TS 29.573 §6.1.5.2.3):
    ``policy_key`` is ``protectionPolicyInfo`` (request) or ``selProtectionPolicyInfo`` (response)."""
    out: dict[str, Any] = {}
    wire = _policy_wire(local, peer_fqdn)
    if wire is not None:
        out[policy_key] = wire
    if local.security_profile:
        out["securityProfile"] = local.security_profile
    mod = _mod_wire(local, peer_fqdn)
    if mod:
        out["modificationPolicy"] = mod
    return out


def _policy_wire(local: LocalSepp, peer: str) -> dict | None:
    return local.policy.to_wire(peer) if local.policy is not None and local.security_profile is None else None


def _mod_wire(local: LocalSepp, peer: str) -> dict:
    if local.policy is None or not hasattr(local.policy, "modification_policy_wire"):
        return {}
    return local.policy.modification_policy_wire(peer) or {}


def _mismatches(local: LocalSepp, peer: PeerSettings, received: dict | None, profile: str | None) -> list[dict]:
    if profile is not None or local.security_profile is not None:
        if profile != local.security_profile:
            return [{"param": "/securityProfile", "reason": f"peer uses {profile!r}, we use {local.security_profile!r}"}]
        return []
    if local.policy is None or received is None:
        return [] if received is None else []
    return list(local.policy.mismatches(peer.fqdn, received))


def _derive(local: LocalSepp, peer: PeerSettings, master: bytes, role: str, own_id: str, peer_id: str,
            jwe: str, jws: str, plmns: list) -> N32fContext:
    init_id, resp_id = (own_id, peer_id) if role == "initiator" else (peer_id, own_id)
    kctx, khash = peer.opt("kdf_context", "default"), peer.opt("kdf_hash", "sha256")
    keys = kdf.derive_session_keys(master, init_id, resp_id, jwe, kctx, khash)
    return N32fContext(own_id, peer_id, role, peer.fqdn, tuple(plmns), jwe, jws, keys, master, kctx, khash,
                       lifetime=local.lifetime, rekey_margin=local.rekey_margin, counter_limit=local.max_messages)


# --------------------------------------------------------------------------- responder
class Responder:
    def __init__(self, local: LocalSepp, peers: list[PeerSettings], store: ContextStore) -> None:
        self.local, self.store = local, store
        self.peers = {p.fqdn: p for p in peers}

    def handle(self, conn: ConnectionState, operation: str, body: Any) -> Outcome:
        if operation not in OPERATIONS:
            raise N32Error(404, "RESOURCE_URI_STRUCTURE_NOT_FOUND", f"unknown N32-c operation {operation!r}")
        return getattr(self, "_" + operation.replace("-", "_"))(conn, body)

    def _exchange_capability(self, conn: ConnectionState, body: Any) -> Outcome:
        schema.validate("SecNegotiateReqData", body)
        trust.check_sender(body["sender"], conn.peer.fqdn)
        offered = body["supportedSecCapabilityList"]
        base = {"sender": self.local.fqdn}
        if offered == [NONE]:
            # Profile 3: releases an established TLS-mode relation (open5gs' way to terminate).
            self.store.set_relation(conn.peer.fqdn, None)
            return Outcome(200, {**base, "selectedSecCapability": NONE}, [RelationReleased(conn.peer.fqdn)])
        chosen = _pick(offered, tuple(c for c in conn.peer.capabilities if c in self.local.capabilities))
        if chosen is None:
            raise N32Error(400, "NEGOTIATION_NOT_ALLOWED",
                           f"none of {offered} is allowed with {conn.peer.fqdn} "
                           f"(allowed: {list(conn.peer.capabilities)})")
        conn.capability = chosen
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
        events: list = []
        if chosen == "TLS":
            n32f_uri = None
            if body.get("senderN32fFqdn") and body.get("senderN32fPort"):
                n32f_uri = f"https://{body['senderN32fFqdn']}:{body['senderN32fPort']}"
            self.store.set_relation(conn.peer.fqdn, PeerRelation(
                "TLS", body["sender"], body.get("plmnIdList", []), n32f_uri,
                bool(body.get("3GppSbiTargetApiRootSupported", False)), body.get("supportedFeatures")))
            events.append(RelationEstablished(conn.peer.fqdn, "TLS"))
        return Outcome(200, rsp, events)

    def _exchange_params(self, conn: ConnectionState, body: Any) -> Outcome:
        schema.validate("SecParamExchReqData", body)
        if body.get("sender") is not None:
            trust.check_sender(body["sender"], conn.peer.fqdn)
        if conn.capability != "PRINS":
            raise bad_request("exchange-params before PRINS was selected on this connection",
                              cause="MANDATORY_IE_INCORRECT")
        rnd = _round_of(body)
        if rnd == 1:
            return self._round1(conn, body)
        ctx = conn.context
        if ctx is None:
            raise bad_request(f"exchange-params round {rnd} before round 1", cause="MANDATORY_IE_INCORRECT")
        if body["n32fContextId"] != ctx.peer_context_id:
            raise bad_request(f"n32fContextId {body['n32fContextId']} is not the one of round 1 "
                              f"({ctx.peer_context_id})", cause="MANDATORY_IE_INCORRECT",
                              invalid_params=[{"param": "/n32fContextId", "reason": "not the round-1 ID"}])
        base = {"n32fContextId": ctx.local_context_id, "sender": self.local.fqdn}
        if rnd == 2:
            ctx.peer_protection_policy = body.get("protectionPolicyInfo")
            ctx.peer_modification_policy = dict(body.get("modificationPolicy") or {})
            ctx.security_profile = body.get("securityProfile")
            events: list = []
            bad = _mismatches(self.local, conn.peer, ctx.peer_protection_policy, ctx.security_profile)
            if bad:
                events.append(PolicyMismatch(conn.peer.fqdn, ctx, bad, conn.peer.opt("policy_mismatch", "report") == "report"))
            rsp = {**base, **_policy_members(self.local, conn.peer.fqdn, "selProtectionPolicyInfo")}
            conn.round = 2
            return Outcome(200, rsp, events)
        ctx.peer_ipx_sec_info = list(body.get("ipxProviderSecInfoList") or []) + list(conn.peer.ipx_sec_info)
        rsp = dict(base)
        if self.local.ipx_sec_info:
            rsp["ipxProviderSecInfoList"] = self.local.ipx_sec_info
        conn.round = 3
        return Outcome(200, rsp)

    def _round1(self, conn: ConnectionState, body: dict) -> Outcome:
        if conn.context is not None:
            raise bad_request("cipher suites were already exchanged on this connection", cause="MANDATORY_IE_INCORRECT")
        jwe = _pick(body.get("jweCipherSuiteList") or [], self.local.jwe_suites)
        jws = _pick(body.get("jwsCipherSuiteList") or [], self.local.jws_suites)
        if jwe is None or jws is None:
            raise N32Error(400, "NEGOTIATION_NOT_ALLOWED", f"no common {'JWE' if jwe is None else 'JWS'} cipher suite "
                           f"(ours: {list(self.local.jwe_suites if jwe is None else self.local.jws_suites)})")
        own = new_context_id()
        while own == body["n32fContextId"]:
            own = new_context_id()
        ctx = _derive(self.local, conn.peer, conn.exporter(), "responder", own, body["n32fContextId"], jwe, jws,
                      conn.peer.plmn_ids)
        ctx.peer_ipx_sec_info = list(conn.peer.ipx_sec_info)
        self.store.add(ctx)
        self.store.set_relation(conn.peer.fqdn, PeerRelation("PRINS", body.get("sender")))
        conn.context, conn.round = ctx, 1
        return Outcome(200, {"n32fContextId": own, "selectedJweCipherSuite": jwe, "selectedJwsCipherSuite": jws,
                             "sender": self.local.fqdn}, [ContextEstablished(ctx)])

    def _n32f_terminate(self, conn: ConnectionState, body: Any) -> Outcome:
        schema.validate("N32fContextInfo", body)
        ctx = self.store.by_either_id(body["n32fContextId"])
        if ctx is None or ctx.peer_fqdn != conn.peer.fqdn:
            raise N32Error(404, "CONTEXT_NOT_FOUND", f"no N32-f context {body['n32fContextId']} with {conn.peer.fqdn}")
        self.store.remove(ctx)
        return Outcome(200, {"n32fContextId": body["n32fContextId"]}, [ContextTerminated(ctx)])

    def _n32f_error(self, conn: ConnectionState, body: Any) -> Outcome:
        schema.validate("N32fErrorInfo", body)
        return Outcome(204, None, [N32fErrorReceived(conn.peer.fqdn, body)])


# --------------------------------------------------------------------------- initiator
class Initiator:
    """The request sequence of one handshake towards ``peer`` on one connection."""

    def __init__(self, local: LocalSepp, peer: PeerSettings) -> None:
        self.local, self.peer = local, peer
        self.own_id = new_context_id()
        self.state = "capability"
        self.selected_capability: str | None = None
        self.peer_context_id: str | None = None
        self.jwe: str | None = None
        self.jws: str | None = None
        self.capability_response: dict = {}
        self.peer_policy: dict | None = None
        self.peer_modification_policy: dict = {}
        self.peer_profile: str | None = None
        self.peer_ipx: list = []
        self.events: list = []

    def offered(self) -> list[str]:
        return [c for c in self.local.capabilities if c in self.peer.capabilities]

    def next_request(self) -> tuple[str, dict] | None:
        base = {"sender": self.local.fqdn}
        if self.state == "capability":
            return "exchange-capability", {**base, "supportedSecCapabilityList": self.offered(),
                                           "3GppSbiTargetApiRootSupported": True, "plmnIdList": self.local.plmn_wire(),
                                           "supportedFeatures": self.local.supported_features,
                                           **({"senderN32fFqdn": self.local.n32f_fqdn, "senderN32fPort": self.local.n32f_port}
                                              if self.local.n32f_fqdn and self.local.n32f_port else {})}
        if self.state == "round1":
            return "exchange-params", {"n32fContextId": self.own_id, "jweCipherSuiteList": list(self.local.jwe_suites),
                                       "jwsCipherSuiteList": list(self.local.jws_suites), **base}
        if self.state == "round2":
            body: dict[str, Any] = {"n32fContextId": self.own_id, **base,
                                    **_policy_members(self.local, self.peer.fqdn, "protectionPolicyInfo")}
            if "protectionPolicyInfo" not in body and "securityProfile" not in body:
                body["securityProfile"] = "none"  # keeps round 2 distinguishable from round 3
            return "exchange-params", body
        if self.state == "round3":
            body = {"n32fContextId": self.own_id, **base}
            if self.local.ipx_sec_info:
                body["ipxProviderSecInfoList"] = self.local.ipx_sec_info
            return "exchange-params", body
        return None

    def receive(self, status: int, body: Any) -> None:
        if status != 200:
            cause = body.get("cause") if isinstance(body, dict) else None
            detail = body.get("detail") if isinstance(body, dict) else None
            raise N32Error(status if 400 <= status < 600 else 502, cause or "N32C_FAILED",
                           f"{self.peer.fqdn} answered {status} in {self.state}: {detail or ''}".strip())
        if self.state == "capability":
            schema.validate("SecNegotiateRspData", body)
            trust.check_sender(body["sender"], self.peer.fqdn)
            sel = body["selectedSecCapability"]
            if sel not in self.offered():
                raise N32Error(502, "NEGOTIATION_NOT_ALLOWED", f"{self.peer.fqdn} selected {sel}, which we did not offer")
            self.selected_capability, self.capability_response = sel, body
            self.state = "round1" if sel == "PRINS" else "done"
            if sel == "TLS":
                self.events.append(RelationEstablished(self.peer.fqdn, "TLS"))
            return
        schema.validate("SecParamExchRspData", body)
        if body.get("sender") is not None:
            trust.check_sender(body["sender"], self.peer.fqdn)
        if self.state == "round1":
            jwe, jws = body.get("selectedJweCipherSuite"), body.get("selectedJwsCipherSuite")
            if jwe not in self.local.jwe_suites or jws not in self.local.jws_suites:
                raise N32Error(502, "NEGOTIATION_NOT_ALLOWED", f"{self.peer.fqdn} selected {jwe}/{jws}, not offered")
            self.peer_context_id, self.jwe, self.jws = body["n32fContextId"], jwe, jws
            if self.peer_context_id == self.own_id:
                raise N32Error(502, "MANDATORY_IE_INCORRECT", "peer chose our own context ID")
            self.state = "round2"
            return
        if body["n32fContextId"] != self.peer_context_id:
            raise N32Error(502, "MANDATORY_IE_INCORRECT", "peer changed its n32fContextId between rounds")
        if self.state == "round2":
            self.peer_policy = body.get("selProtectionPolicyInfo")
            self.peer_modification_policy = dict(body.get("modificationPolicy") or {})
            self.peer_profile = body.get("securityProfile")
            bad = _mismatches(self.local, self.peer, self.peer_policy, self.peer_profile)
            if bad:
                self.events.append(PolicyMismatch(self.peer.fqdn, None, bad,
                                                  self.peer.opt("policy_mismatch", "report") == "report"))
            self.state = "round3"
            return
        if self.state == "round3":
            self.peer_ipx = list(body.get("ipxProviderSecInfoList") or [])
            self.state = "done"

    def peer_relation(self) -> PeerRelation:
        b = self.capability_response
        uri = None
        if b.get("senderN32fFqdn") and b.get("senderN32fPortList"):
            uri = f"https://{b['senderN32fFqdn']}:{b['senderN32fPortList'][0]}"
        return PeerRelation(self.selected_capability, b.get("sender"), b.get("plmnIdList", []), uri,
                            bool(b.get("3GppSbiTargetApiRootSupported", False)), b.get("supportedFeatures"))

    def finish(self, master: bytes) -> N32fContext:
        if self.state != "done" or self.selected_capability != "PRINS" or not self.peer_context_id:
            raise RuntimeError(f"handshake not complete (state {self.state})")
        ctx = _derive(self.local, self.peer, master, "initiator", self.own_id, self.peer_context_id,
                      self.jwe or "", self.jws or "", self.peer.plmn_ids)
        ctx.peer_protection_policy = self.peer_policy
        ctx.peer_modification_policy = self.peer_modification_policy
        ctx.security_profile = self.peer_profile
        ctx.peer_ipx_sec_info = self.peer_ipx + list(self.peer.ipx_sec_info)
        for ev in self.events:
            if isinstance(ev, PolicyMismatch):
                ev.context = ctx
        return ctx


def release_request(local: LocalSepp) -> dict:
    """exchange-capability with ["NONE"]: ends a TLS-mode relation (profile 3)."""
    return {"sender": local.fqdn, "supportedSecCapabilityList": [NONE]}


def terminate_request(ctx: N32fContext) -> dict:
    """N32fContextInfo with the receiver's context ID (profile 6)."""
    return {"n32fContextId": ctx.peer_context_id}
