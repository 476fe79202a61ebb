"""The life of the N32 relation with one peer SEPP, as an explicit state machine, sans-I/O.

States: IDLE (nothing held, nothing running), HANDSHAKING (our initiator handshake runs),
BACKOFF (the last attempt failed; the next one is timed), ESTABLISHED, REKEYING (established,
a new handshake runs, the current context still carries traffic), RELEASING (we are ending the
relation). One ``(state, input) -> next state`` table; the I/O owner feeds it inputs, asks
``get_timer()`` and calls ``handle_timer(now)`` as aioquic's connections do, and performs the
events it takes from ``events()`` (``HandshakeDue``, ``TerminateDue``, ``ReleaseDue``...). The
core never reads a clock: every call gets ``now``.

Timers: handshake retry with exponential backoff (``handshake.retry_initial`` doubling up to
``retry_max``, at most ``attempts``); after a rekey we initiated, older contexts are retired
(n32f-terminate, TS 29.573 §5.2.2.4) ``contexts.rekey_grace`` seconds later; a context we hold as
responder becomes usable for sending by the make-before-break rule (docs/interop-profile.md,
"Rekey"); a rekey starts at 90 % of a context's lifetime or when its message budget runs low
(``contexts.max_messages`` / ``rekey_margin``, profile 11); an expired context is dropped.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import TYPE_CHECKING

from .context import ContextStore, N32fContext, PeerRelation
from .events import (ContextEstablished, ContextExpired, ContextRetired, ContextTerminated, HandshakeCompleted,
                     HandshakeDue, N32Event, RelationEstablished, RelationReleased, ReleaseDue, StateChanged,
                     TerminateDue)
from .peer import Peer

if TYPE_CHECKING:
    from .config import SeppConfig

REKEY_AT = 0.9      # fraction of a context's lifetime after which its initiator rekeys
SETTLE = 0.25       # seconds after a peer's rekey completes before we send on its new context


class RelationState(StrEnum):
    IDLE = "idle"
    HANDSHAKING = "handshaking"
    BACKOFF = "backoff"
    ESTABLISHED = "established"
    REKEYING = "rekeying"
    RELEASING = "releasing"


class Input(Enum):
    WANT = "a relation is needed"               # start-up (initiate), an NF request, N32-f from the peer
    HANDSHAKE_OK = "our handshake succeeded"
    HANDSHAKE_FAILED = "our handshake failed"
    RETRY = "retry timer"
    PEER_ESTABLISHED = "the peer established a context or relation with us"
    REKEY_DUE = "a context needs replacing"
    CONTEXT_DEAD = "the peer does not know our context or relation"
    CONTEXT_GONE = "the last context ended"
    RELEASE = "we end the relation"
    RELEASED = "the relation was released"


_S = RelationState
_TABLE: dict[tuple[RelationState, Input], RelationState] = {
    (_S.IDLE, Input.WANT): _S.HANDSHAKING,
    (_S.IDLE, Input.PEER_ESTABLISHED): _S.ESTABLISHED,
    (_S.IDLE, Input.HANDSHAKE_OK): _S.ESTABLISHED,      # an operator's handshake
    (_S.IDLE, Input.CONTEXT_DEAD): _S.HANDSHAKING,
    (_S.IDLE, Input.REKEY_DUE): _S.HANDSHAKING,
    (_S.HANDSHAKING, Input.HANDSHAKE_OK): _S.ESTABLISHED,
    (_S.HANDSHAKING, Input.HANDSHAKE_FAILED): _S.BACKOFF,
    (_S.HANDSHAKING, Input.RELEASED): _S.HANDSHAKING,
    (_S.BACKOFF, Input.RETRY): _S.HANDSHAKING,
    (_S.BACKOFF, Input.PEER_ESTABLISHED): _S.ESTABLISHED,
    (_S.BACKOFF, Input.HANDSHAKE_OK): _S.ESTABLISHED,
    (_S.ESTABLISHED, Input.REKEY_DUE): _S.REKEYING,
    (_S.ESTABLISHED, Input.CONTEXT_DEAD): _S.HANDSHAKING,
    (_S.ESTABLISHED, Input.CONTEXT_GONE): _S.IDLE,
    (_S.ESTABLISHED, Input.RELEASED): _S.IDLE,
    (_S.ESTABLISHED, Input.HANDSHAKE_OK): _S.ESTABLISHED,
    (_S.ESTABLISHED, Input.PEER_ESTABLISHED): _S.ESTABLISHED,
    (_S.REKEYING, Input.HANDSHAKE_OK): _S.ESTABLISHED,
    # the current context goes on meanwhile; the rekey is retried with backoff (a peer that died
    # mid-rekey leaves a spent context that sends nothing, so nothing else would ever retry it)
    (_S.REKEYING, Input.HANDSHAKE_FAILED): _S.BACKOFF,
    (_S.REKEYING, Input.CONTEXT_DEAD): _S.HANDSHAKING,       # the running handshake is the recovery
    (_S.REKEYING, Input.CONTEXT_GONE): _S.HANDSHAKING,
    (_S.REKEYING, Input.RELEASED): _S.HANDSHAKING,
    (_S.RELEASING, Input.RELEASED): _S.IDLE,
}
for _s in RelationState:
    _TABLE.setdefault((_s, Input.RELEASE), _S.RELEASING if _s in (_S.ESTABLISHED, _S.REKEYING) else _S.IDLE)
    for _i in (Input.WANT, Input.REKEY_DUE, Input.PEER_ESTABLISHED, Input.CONTEXT_DEAD):
        _TABLE.setdefault((_s, _i), _s)          # already on its way, or nothing to do
    for _i in (Input.HANDSHAKE_FAILED, Input.RETRY, Input.CONTEXT_GONE, Input.HANDSHAKE_OK, Input.RELEASED):
        _TABLE.setdefault((_s, _i), _s)          # late news of something superseded
_TABLE[(_S.RELEASING, Input.WANT)] = _S.RELEASING
_TABLE[(_S.IDLE, Input.RELEASED)] = _S.IDLE


@dataclass(frozen=True)
class Timing:
    retry_initial: float = 0.5
    retry_max: float = 30.0
    attempts: int | None = None          # None: retry for ever
    rekey_grace: float = 5.0

    @classmethod
    def from_config(cls, cfg: "SeppConfig") -> "Timing":
        hs, ctxs = cfg.handshake, cfg.contexts
        return cls(hs.retry_initial, hs.retry_max, hs.attempts, ctxs.rekey_grace)


class Relation:
    """The lifecycle of the relation with one peer."""

    def __init__(self, peer: Peer, store: ContextStore, timing: Timing = Timing()) -> None:
        self.peer, self.store, self.timing = peer, store, timing
        self.state = RelationState.IDLE
        self.attempt = 0
        self.retry_at: float | None = None
        self.retire_at: dict[str, float] = {}        # local context ID -> when it leaves (after our rekey)
        self.promote_at: dict[str, float] = {}       # local context ID -> when we start sending on it
        self.rekey_requested: set[str] = set()        # contexts already replaced or being replaced
        self.completed: set[str] = set()              # responder contexts whose handshake ended
        self.last_error: str | None = None
        self._events: list[N32Event] = []

    # ------------------------------------------------------------------ the table
    def _input(self, inp: Input, now: float, reason: str = "") -> RelationState:
        old = self.state
        new = _TABLE[(old, inp)]
        self.state = new
        if old in (_S.IDLE, _S.ESTABLISHED):
            self.attempt = 0 if new in (_S.HANDSHAKING, _S.REKEYING) else self.attempt
        # REKEYING -> HANDSHAKING: the handshake already running is the recovery
        if (new is _S.HANDSHAKING and old not in (_S.HANDSHAKING, _S.REKEYING)) or \
                (new is _S.REKEYING and old is not _S.REKEYING):
            self.attempt += 1
            self._events.append(HandshakeDue(self.peer.fqdn, rekey=new is _S.REKEYING, attempt=self.attempt))
        if new is _S.BACKOFF and old is not _S.BACKOFF:
            t = self.timing
            if t.attempts is not None and self.attempt >= t.attempts:
                self.state = new = _S.IDLE            # give up until something wants the relation again
                self.retry_at = None
            else:
                self.retry_at = now + min(t.retry_initial * 2 ** max(self.attempt - 1, 0), t.retry_max)
        if new is not _S.BACKOFF:
            self.retry_at = None
        if new is not old:
            self._events.append(StateChanged(self.peer.fqdn, old.value, new.value, [reason or inp.value]))
        return new

    def events(self) -> list[N32Event]:
        """What happened and what to do since the last call (drains the queue)."""
        out, self._events = self._events, []
        return out

    # ------------------------------------------------------------------ inputs from the I/O owner
    def want(self, now: float) -> RelationState:
        """A relation is needed now (start-up, an NF request, N32-f from this authenticated peer)."""
        if self.state is _S.IDLE and self.usable():
            return self._input(Input.PEER_ESTABLISHED, now)
        if self.state is _S.ESTABLISHED and not self.usable():
            # everything held is gone (after simultaneous rekeys each side may retire the other's
            # context): established in name only, so nothing else would ever handshake again
            return self._input(Input.CONTEXT_DEAD, now, "no usable context left")
        return self._input(Input.WANT, now)

    def usable(self) -> bool:
        rel = self.store.relation(self.peer.fqdn)
        if rel is None:
            return False
        return rel.capability == "TLS" or (rel.capability == "PRINS" and self.store.by_peer(self.peer.fqdn) is not None)

    def handshake_succeeded(self, now: float, relation: PeerRelation, context: N32fContext | None) -> None:
        """Our initiator handshake ended well; ``context`` (PRINS) is complete."""
        was = self.state
        self.store.set_relation(self.peer.fqdn, relation)
        if context is not None:
            context.send_ready = True
            if self.store.by_local_id(context.local_context_id) is None:
                self.store.add(context)
            # Every older context of this peer goes after the grace period (make before break); one
            # the peer created meanwhile (both sides rekeyed at once) is newer and stays.
            for old in self.store.for_peer(self.peer.fqdn):
                if old is not context and old.seq < context.seq and old.local_context_id not in self.retire_at:
                    self.retire_at[old.local_context_id] = now + self.timing.rekey_grace
                    self.rekey_requested.add(old.local_context_id)
        self.last_error = None
        self._input(Input.HANDSHAKE_OK, now, "rekeyed" if was is _S.REKEYING else "")

    def handshake_failed(self, now: float, error: str, context: N32fContext | None = None) -> None:
        """Our initiator handshake failed; ``context`` (stored early, at round 1) is dropped."""
        if context is not None and self.store.by_local_id(context.local_context_id) is context:
            self.store.remove(context)
            self._forget(context)
        self.last_error = error
        if self.state is _S.REKEYING:   # the contexts it was to replace may ask again (budget, lifetime)
            self.rekey_requested -= {c.local_context_id for c in self._held()
                                     if c.local_context_id not in self.retire_at}
        self._input(Input.HANDSHAKE_FAILED, now, error)

    def rekey(self, now: float, reason: str = "requested") -> None:
        """Replace the current context now (an operator's command; an exhausted key)."""
        self._input(Input.REKEY_DUE if self.state is not _S.IDLE else Input.WANT, now, reason)

    def handle_event(self, ev: N32Event, now: float) -> None:
        """An event of the N32-c state machines concerning this peer."""
        if isinstance(ev, ContextEstablished):
            ctx = ev.context
            if self.store.by_local_id(ctx.local_context_id) is None:
                self.store.add(ctx)
            if ctx.role == "responder" and not ctx.send_ready:
                # Make before break: send on it once the peer is known to hold it (an N32-f message
                # on it, or the end of its handshake), at the latest after the grace period.
                self.promote_at[ctx.local_context_id] = now + self.timing.rekey_grace
                self._input(Input.PEER_ESTABLISHED, now)
        elif isinstance(ev, HandshakeCompleted):
            ctx = ev.context
            if ctx is not None and ctx.role == "responder" and not ctx.send_ready:
                self.completed.add(ctx.local_context_id)
                others = [c for c in self.store.for_peer(self.peer.fqdn) if c is not ctx and c.send_ready]
                if not others or all(c.needs_rekey for c in others):
                    self._promote(ctx)
                else:   # the peer holds it now; a peer that stores it late gets a moment
                    at = now + min(self.timing.rekey_grace, SETTLE)
                    self.promote_at[ctx.local_context_id] = min(self.promote_at.get(ctx.local_context_id, at), at)
            self._input(Input.PEER_ESTABLISHED, now)
        elif isinstance(ev, RelationEstablished):
            if ev.capability == "TLS":
                self._input(Input.PEER_ESTABLISHED, now)
        elif isinstance(ev, ContextTerminated):
            self._forget(ev.context)
            if not self.store.for_peer(self.peer.fqdn):
                self._input(Input.CONTEXT_GONE, now, "the peer terminated the last context")
        elif isinstance(ev, RelationReleased):
            self._input(Input.RELEASED, now, "the peer released the relation")

    def received_on(self, ctx: N32fContext, now: float) -> None:
        """A message from the peer opened with ``ctx``: the peer holds it."""
        if not ctx.send_ready:
            self._promote(ctx)

    def sent_on(self, ctx: N32fContext, now: float) -> None:
        """We protected a message with ``ctx``: before its budget runs out, move to a newer context
        the peer is known to hold, or start a rekey if there is none and none is on its way."""
        if not ctx.needs_rekey:
            return
        newer = [c for c in self.store.for_peer(self.peer.fqdn) if c is not ctx and c.seq > ctx.seq]
        if any(c.send_ready for c in newer):
            return                                   # already moving on
        done = [c for c in newer if c.local_context_id in self.completed]
        if done:
            self._promote(done[-1])                  # the peer rekeyed and holds it: use it now
            return
        if newer or ctx.local_context_id in self.rekey_requested:
            return                                   # a newer context is on its way
        self.rekey_requested.add(ctx.local_context_id)
        self._input(Input.REKEY_DUE, now, f"context {ctx.local_context_id}: message budget low")

    def context_dead(self, now: float, context_id: str | None = None) -> None:
        """The peer answered CONTEXT_NOT_FOUND or N32_NOT_ESTABLISHED: what we hold is useless to it
        (it restarted). Drop it and handshake again."""
        ctx = self.store.by_either_id(context_id) if context_id else None
        if ctx is not None and ctx.peer_fqdn == self.peer.fqdn:
            self.store.remove(ctx)
            self._forget(ctx)
        elif context_id is None:
            for c in self.store.for_peer(self.peer.fqdn):
                self.store.remove(c)
                self._forget(c)
        if not self.usable() or context_id is None:
            self.store.set_relation(self.peer.fqdn, None)
            self._input(Input.CONTEXT_DEAD, now, "the peer does not hold our context or relation")

    def release(self, now: float) -> None:
        """We end the relation (shutdown): n32f-terminate for each PRINS context, exchange-capability
        ``["NONE"]`` for a TLS-mode relation (interop profile point 3)."""
        if self.state is _S.RELEASING:
            return
        rel = self.store.relation(self.peer.fqdn)
        contexts = self.store.for_peer(self.peer.fqdn)
        self._input(Input.RELEASE, now)
        for ctx in contexts:
            self._events.append(TerminateDue(self.peer.fqdn, ctx))
            self.store.remove(ctx)
            self._forget(ctx)
        if rel is not None and rel.capability == "TLS":
            self._events.append(ReleaseDue(self.peer.fqdn))
        self.store.set_relation(self.peer.fqdn, None)
        self._input(Input.RELEASED, now, "released by us")

    # ------------------------------------------------------------------ timers
    def _deadlines(self) -> list[float]:
        out = [t for t in (self.retry_at,) if t is not None]
        out += self.retire_at.values()
        out += self.promote_at.values()
        for ctx in self._held() if self.state is not _S.RELEASING else ():
            out.append(ctx.expires)
            if ctx.local_context_id not in self.rekey_requested:
                out.append(self._rekey_time(ctx))
        return out

    @staticmethod
    def _rekey_time(ctx: N32fContext) -> float:
        # the initiator of a context replaces it first; the responder only if it did not
        return ctx.created + ctx.lifetime * (REKEY_AT if ctx.role == "initiator" else (1 + REKEY_AT) / 2)

    def get_timer(self) -> float | None:
        d = self._deadlines()
        return min(d) if d else None

    def handle_timer(self, now: float) -> None:
        if self.retry_at is not None and now >= self.retry_at:
            self.retry_at = None
            self._input(Input.RETRY, now)
        for cid, at in list(self.promote_at.items()):
            if now >= at:
                ctx = self.store.by_local_id(cid)
                if ctx is not None:
                    self._promote(ctx)
                self.promote_at.pop(cid, None)
        for cid, at in list(self.retire_at.items()):
            if now >= at:
                self.retire_at.pop(cid, None)
                ctx = self.store.by_local_id(cid)
                if ctx is not None:
                    self.store.remove(ctx)
                    self._forget(ctx)
                    self._events += [TerminateDue(self.peer.fqdn, ctx), ContextRetired(self.peer.fqdn, ctx)]
                    if not self.store.for_peer(self.peer.fqdn):
                        self._input(Input.CONTEXT_GONE, now, "the last context was retired")
        all_ctx = self._held()
        for ctx in all_ctx:
            if ctx.expires <= now:
                self.store.remove(ctx)
                self._forget(ctx)
                self._events.append(ContextExpired(self.peer.fqdn, ctx))
            elif ctx.local_context_id not in self.rekey_requested and now >= self._rekey_time(ctx):
                self.rekey_requested.add(ctx.local_context_id)
                self._input(Input.REKEY_DUE, now, f"context {ctx.local_context_id}: lifetime ending")
        if any(c.expires <= now for c in all_ctx) and not self.store.for_peer(self.peer.fqdn):
            self._input(Input.CONTEXT_GONE, now, "the last context expired")

    # ------------------------------------------------------------------ helpers
    def _held(self) -> list[N32fContext]:
        """Every context of this peer in the store, expired ones included (they await removal)."""
        return [c for c in self.store.all() if c.peer_fqdn == self.peer.fqdn]

    def _promote(self, ctx: N32fContext) -> None:
        ctx.send_ready = True
        self.promote_at.pop(ctx.local_context_id, None)

    def _forget(self, ctx: N32fContext) -> None:
        cid = ctx.local_context_id
        self.retire_at.pop(cid, None)
        self.promote_at.pop(cid, None)
        self.rekey_requested.discard(cid)
        self.completed.discard(cid)


class Relations:
    """The lifecycle machines of all configured peers, with one timer for the I/O owner."""

    def __init__(self, peers: list[Peer], store: ContextStore, timing: Timing = Timing()) -> None:
        self.store = store
        self.by_fqdn = {p.fqdn: Relation(p, store, timing) for p in peers}

    def __getitem__(self, fqdn: str) -> Relation:
        return self.by_fqdn[fqdn]

    def get(self, fqdn: str) -> Relation | None:
        return self.by_fqdn.get(fqdn)

    def __iter__(self):
        return iter(self.by_fqdn.values())

    def get_timer(self) -> float | None:
        timers = [t for r in self.by_fqdn.values() if (t := r.get_timer()) is not None]
        return min(timers) if timers else None

    def handle_timer(self, now: float) -> None:
        for r in self.by_fqdn.values():
            r.handle_timer(now)

    def handle_event(self, ev: N32Event, now: float) -> None:
        r = self.by_fqdn.get(ev.peer)
        if r is not None:
            r.handle_event(ev, now)

    def events(self) -> list[N32Event]:
        return [ev for r in self.by_fqdn.values() for ev in r.events()]
