"""N32-f contexts and N32 relations (TS 33.501 §13.2.2.4), kept in memory.

Key selection (TS 33.501 §13.2.4.4.1; profile 9): the N32-c initiator is the HTTP client of the
"parallel" session and the responder the client of the "reverse" session, so

    initiator sends requests  with parallel_request_*,  responses with reverse_response_*
    responder sends requests  with reverse_request_*,   responses with parallel_response_*

and each side receives with the key its peer sends with. One NonceCounter per sending key and
one ReplayWindow per receiving key.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from . import suites
from .jwe import NonceCounter
from .kdf import RECEIVE_LABELS as _RECV
from .kdf import SEND_LABELS as _SEND
from .kdf import SessionKeys
from .replay import MessageIdCache, ReplayWindow
from .suites import Aead


@dataclass(eq=False)
class N32fContext:
    local_context_id: str
    peer_context_id: str
    role: str                                  # "initiator" | "responder" (of the N32-c exchange)
    peer_fqdn: str
    peer_plmn_ids: tuple
    jwe_suite: str
    jws_suite: str
    keys: SessionKeys = field(repr=False)
    master_key: bytes = field(repr=False)
    kdf_context: str = "default"
    kdf_hash: str = "sha256"
    capability: str = "PRINS"
    peer_n32f_uri: str | None = None
    peer_protection_policy: dict | None = None
    peer_modification_policy: dict = field(default_factory=dict)   # IPX FQDN -> [pointer patterns]
    peer_ipx_sec_info: list = field(default_factory=list)            # IpxProviderSecInfo of the peer's IPXs
    security_profile: str | None = None
    # when it was made, on the caller's clock (the core reads none): no default on purpose
    created: float = field(kw_only=True)
    lifetime: float = 86400.0
    rekey_margin: int = 1000
    counter_limit: int = 2 ** 32
    # TS 33.501 §13.2.2.2 step 7: the N32-c parameters for the RIs travel once per context over
    # N32-f (``n32cParameters``, interop profile); what we sent and what the peer sent.
    ri_parameters_sent: bool = False
    peer_ri_parameters: dict | None = None
    # Make before break (docs/interop-profile.md, "Rekey"): a context carries new messages only
    # once both sides are known to hold it. The initiator knows at the end of round 3; the
    # responder when an N32-f message arrives on it or its lifecycle says so.
    send_ready: bool = True
    # order of arrival in the store (newer = larger): creation times may tie
    seq: int = 0

    def __post_init__(self) -> None:
        self.counters = {label: NonceCounter(getattr(self.keys, f"{label}_iv_salt"), self.counter_limit)
                         for label in set(_SEND.values())}
        self.windows = {label: ReplayWindow() for label in set(_RECV.values())}
        self.message_ids = MessageIdCache()
        self._counter_list = tuple(self.counters.values())
        # the engine's verifier of modificationsBlock for this context, built on first use and
        # gone with the context (Engine.modification_check)
        self.modification_check: tuple[object, list, dict, Callable[..., tuple[dict, list[dict]]]] | None = None
        # per direction, what sealing and opening need, with the AEAD object made once per key
        # rather than per message (issue 14 goal 1)
        self._sending: dict[str, tuple[bytes, NonceCounter, str, Aead]] = {}
        self._receiving: dict[str, tuple[bytes, bytes, ReplayWindow, str, Aead]] = {}

    @property
    def initiator_context_id(self) -> str:
        return self.local_context_id if self.role == "initiator" else self.peer_context_id

    @property
    def responder_context_id(self) -> str:
        return self.peer_context_id if self.role == "initiator" else self.local_context_id

    @property
    def expires(self) -> float:
        return self.created + self.lifetime

    def send_params(self, kind: str) -> tuple[bytes, NonceCounter, str]:
        label = _SEND[(self.role, kind)]
        return getattr(self.keys, f"{label}_key"), self.counters[label], self.jwe_suite

    def receive_params(self, kind: str) -> tuple[bytes, bytes, ReplayWindow, str]:
        label = _RECV[(self.role, kind)]
        return (getattr(self.keys, f"{label}_key"), getattr(self.keys, f"{label}_iv_salt"),
                self.windows[label], self.jwe_suite)

    def sending(self, kind: str) -> tuple[bytes, NonceCounter, str, Aead]:
        """:meth:`send_params` and the AEAD object of that key."""
        got = self._sending.get(kind)
        if got is None:
            key, counter, enc = self.send_params(kind)
            got = self._sending[kind] = (key, counter, enc, suites.jwe(enc).aead(key))
        return got

    def receiving(self, kind: str) -> tuple[bytes, bytes, ReplayWindow, str, Aead]:
        """:meth:`receive_params` and the AEAD object of that key."""
        got = self._receiving.get(kind)
        if got is None:
            key, salt, window, enc = self.receive_params(kind)
            got = self._receiving[kind] = (key, salt, window, enc, suites.jwe(enc).aead(key))
        return got

    @property
    def needs_rekey(self) -> bool:
        """A sending counter within ``rekey_margin`` nonces of its limit (profile 11): asked per
        message sent, so ints compared (remaining < margin, i.e. issued > limit - margin)."""
        at = self.counter_limit - self.rekey_margin
        for c in self._counter_list:
            if c.issued > at:
                return True
        return False


@dataclass
class PeerRelation:
    """What N32-c established with one peer, whatever the capability."""

    capability: str | None
    sender: str | None = None
    plmn_ids: list = field(default_factory=list)          # the peer's plmnIdList as received
    n32f_uri: str | None = None
    target_api_root_supported: bool = False
    supported_features: str | None = None


class ContextStore:
    """The live N32-f contexts and peer relations. The core never reads a clock: ``clock`` is
    the I/O owner's (wall-clock seconds, as ``Exchange.now``) or a test's fake clock."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._by_id: dict[str, N32fContext] = {}
        self._by_peer: dict[str, dict[str, N32fContext]] = {}    # peer FQDN -> local ID -> context
        self._relations: dict[str, PeerRelation] = {}
        self._seq = 0

    def add(self, ctx: N32fContext) -> None:
        self._seq += 1
        ctx.seq = self._seq
        old = self._by_id.get(ctx.local_context_id)
        if old is not None:
            self._unindex(old)
        self._by_id[ctx.local_context_id] = ctx
        self._by_peer.setdefault(ctx.peer_fqdn, {})[ctx.local_context_id] = ctx

    def _unindex(self, ctx: N32fContext) -> None:
        peers = self._by_peer.get(ctx.peer_fqdn)
        if peers is not None:
            peers.pop(ctx.local_context_id, None)
            if not peers:
                del self._by_peer[ctx.peer_fqdn]

    def by_local_id(self, context_id: str) -> N32fContext | None:
        ctx = self._by_id.get(context_id)      # ctx.expires, without the property call (per message)
        return ctx if ctx is not None and ctx.created + ctx.lifetime > self.clock() else None

    def by_either_id(self, context_id: str) -> N32fContext | None:
        """Profile 6: n32f-terminate / n32f-error may name either ID of the pair."""
        return self.by_local_id(context_id) or next(
            (c for c in self._by_id.values() if c.peer_context_id == context_id), None)

    def by_peer(self, fqdn: str) -> N32fContext | None:
        """The context new messages to ``fqdn`` go on: the newest one both sides hold (send_ready),
        else the newest live one. TS 29.573 lets one peer FQDN hold several contexts at once."""
        now = self.clock()
        newest = ready = None          # one pass over this peer's contexts (per message sent)
        for c in self._by_peer.get(fqdn, {}).values():
            if c.expires > now:
                if newest is None or c.seq > newest.seq:
                    newest = c
                if c.send_ready and (ready is None or c.seq > ready.seq):
                    ready = c
        return ready or newest

    def for_peer(self, fqdn: str) -> list[N32fContext]:
        """Every live context with ``fqdn``, oldest first."""
        now = self.clock()
        return sorted((c for c in self._by_peer.get(fqdn, {}).values() if c.expires > now), key=lambda c: c.seq)

    def all(self) -> list[N32fContext]:
        return list(self._by_id.values())

    def remove(self, ctx: N32fContext) -> None:
        gone = self._by_id.pop(ctx.local_context_id, None)
        if gone is not None:
            self._unindex(gone)
        rel = self._relations.get(ctx.peer_fqdn)
        if rel is not None and rel.capability == "PRINS" and self.by_peer(ctx.peer_fqdn) is None:
            self._relations.pop(ctx.peer_fqdn, None)

    def expire(self) -> list[N32fContext]:
        now = self.clock()
        gone = [c for c in self._by_id.values() if c.expires <= now]
        for c in gone:
            self.remove(c)
        return gone

    def relation(self, fqdn: str) -> PeerRelation | None:
        return self._relations.get(fqdn)

    def set_relation(self, fqdn: str, relation: PeerRelation | None) -> None:
        if relation is None:
            self._relations.pop(fqdn, None)
        else:
            self._relations[fqdn] = relation
