"""N32 relations of a running SEPP: the I/O side of ``n32.lifecycle``.

The lifecycle machines (one per peer, sans-I/O) decide when to handshake, retry, rekey, retire,
promote or release; this module performs what they ask (``HandshakeDue``, ``TerminateDue``,
``ReleaseDue``) over ``n32io.n32c``, runs their timer (``get_timer``/``handle_timer``), answers
N32-c requests with ``n32.handshake.Responder``, sends the n32f-error reports the limiter admits,
and keeps the key log and the status file. Per-message decisions are ``n32.engine``'s.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any, Callable

from OpenSSL import SSL

from n32 import events, handshake, keylog, lifecycle
from n32.context import ContextStore, N32fContext
from n32.errors import N32Error
from n32.peer import Peer
from n32.reports import ErrorReports
from n32io import n32c
from n32io.h2client import H2Error

log = logging.getLogger("sepp")

SHUTDOWN_TIMEOUT = 3.0   # seconds for ending every relation on SIGTERM/SIGINT


class Relations:
    def __init__(self, cfg: Any, store: ContextStore, local: handshake.LocalSepp,
                 peer_client: dict[str, SSL.Context], keylog_path: Callable[[], str | None],
                 status_path: Callable[[], str | None], clock: Callable[[], float] = time.time) -> None:
        self.cfg, self.store, self.local, self.clock = cfg, store, local, clock
        self.peers = {p.fqdn: Peer.from_config(p) for p in cfg.peers}
        self.peer_settings = self.peers              # the name the runtime used
        self.responder = handshake.Responder(local, list(self.peers.values()), store)
        self.machines = lifecycle.Relations(list(self.peers.values()), store, lifecycle.Timing.from_config(cfg))
        self.reports = ErrorReports()
        self.report_channel = n32c.ReportChannel()   # one N32-c connection per peer for n32f-error
        self._peer_client = peer_client
        self._keylog_path, self._status_path = keylog_path, status_path
        self._handshakes: dict[str, asyncio.Task] = {}
        self._posts: set[asyncio.Task] = set()
        self._spawn: Callable[[Any], asyncio.Task] | None = None
        self._wake: asyncio.Event | None = None
        self._stopping = False
        # (kind, peer, role, outcome) for metrics: kind "handshake" (outcome "ok" or the cause) or "rekey"
        self.observers: list[Callable[[str, str, str, str], None]] = []
        # each N32-c request we make, for the flow list (addons/sepp.py)
        self.sent_observers: list[Callable[[n32c.Sent], None]] = []

    def _observe(self, kind: str, peer: str, role: str, outcome: str) -> None:
        for observer in self.observers:
            observer(kind, peer, role, outcome)

    def _sent(self, sent: n32c.Sent) -> None:
        for observer in self.sent_observers:
            observer(sent)

    def peer(self, name: str) -> Peer:
        for p in self.peers.values():
            if name in (p.name, p.fqdn):
                return p
        raise ValueError(f"unknown peer {name!r}")

    # ------------------------------------------------------------------ driving the machines
    def start_background(self, spawn: Callable[[Any], asyncio.Task]) -> None:
        self._spawn = spawn
        self._wake = asyncio.Event()
        self.write_status()
        spawn(self._timer_loop())
        if self.cfg.handshake.at_start:
            for p in self.peers.values():
                if p.initiate:
                    self.machines[p.fqdn].want(self.clock())
        self._pump()

    def _pump(self) -> None:
        """Perform what the machines asked for."""
        changed = False
        for ev in self.machines.events():
            changed = True
            match ev:
                case events.HandshakeDue():
                    self._run_handshake(self.peers[ev.peer], ev)
                case events.TerminateDue(context=ctx):
                    self._post_later(self.peers[ev.peer], "n32f-terminate", handshake.terminate_request(ctx))
                    log.info("N32-f context %s with %s: terminating", ctx.local_context_id, ev.peer)
                case events.ReleaseDue():
                    self._post_later(self.peers[ev.peer], "exchange-capability", handshake.release_request(self.local))
                    log.info("N32 TLS relation with %s: releasing", ev.peer)
                case events.ContextExpired(context=ctx):
                    log.info("N32-f context %s with %s expired", ctx.local_context_id, ev.peer)
                case events.ContextRetired(context=ctx):
                    log.info("N32-f context %s with %s retired after rekey", ctx.local_context_id, ev.peer)
                case events.StateChanged():
                    log.info("N32 relation with %s: %s -> %s (%s)", ev.peer, ev.old, ev.new, "; ".join(ev.reasons))
        if self._wake is not None:
            self._wake.set()
        if changed:
            self.write_status()

    async def _timer_loop(self) -> None:
        assert self._wake is not None
        while not self._stopping:
            t = self.machines.get_timer()
            delay = 3600.0 if t is None else max(0.0, t - self.clock())
            try:
                await asyncio.wait_for(self._wake.wait(), min(delay, 3600.0))
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            now = self.clock()
            t = self.machines.get_timer()
            if t is not None and t <= now:
                self.machines.handle_timer(now)
                self._pump()

    def _run_handshake(self, peer: Peer, due: events.HandshakeDue) -> None:
        task = self._handshakes.get(peer.fqdn)
        if (task is None or task.done()) and self._spawn is not None and not self._stopping:
            self._handshakes[peer.fqdn] = self._spawn(self._handshake_once(peer, due))

    async def _handshake_once(self, peer: Peer, due: events.HandshakeDue) -> None:
        """One initiator handshake (TS 33.501 §13.5 + §13.2.2.2, seed steps 1-6); retries are the
        lifecycle's (BACKOFF)."""
        m = self.machines[peer.fqdn]
        init = handshake.Initiator(self.local, peer, now=self.clock())

        def on_events(evs: list[events.N32Event]) -> None:
            for ev in evs:
                self.on_event(ev)

        what = "rekey" if due.rekey else f"handshake (attempt {due.attempt})"
        try:
            init, master = await n32c.run_initiator(init, peer, self._peer_client[peer.fqdn],
                                                    self.cfg.handshake.timeout, on_events=on_events,
                                                    on_sent=self._sent)
            ctx = init.finish(master) if init.selected_capability == "PRINS" else None
        except asyncio.CancelledError:
            m.handshake_failed(self.clock(), "cancelled", init.context)
            raise
        except N32Error as e:
            m.handshake_failed(self.clock(), f"{e.status} {e.cause}", init.context)
            self._observe("handshake", peer.fqdn, "initiator", e.cause or str(e.status))
            log.error("N32-c %s with %s refused: %s %s: %s%s", what, peer.fqdn, e.status, e.cause, e.detail,
                      self._retrying(m))
        except (H2Error, OSError, asyncio.TimeoutError) as e:
            m.handshake_failed(self.clock(), str(e) or type(e).__name__, init.context)
            self._observe("handshake", peer.fqdn, "initiator", "failed")
            log.warning("N32-c %s with %s failed: %s%s", what, peer.fqdn, e or type(e).__name__, self._retrying(m))
        except Exception as e:  # a bug must not kill the lifecycle: it retries with backoff
            m.handshake_failed(self.clock(), type(e).__name__, init.context)
            self._observe("handshake", peer.fqdn, "initiator", "failed")
            log.error("N32-c %s with %s failed: %s: %s%s", what, peer.fqdn, type(e).__name__, e, self._retrying(m))
        else:
            m.handshake_succeeded(self.clock(), init.peer_relation(), ctx)
            self._observe("handshake", peer.fqdn, "initiator", "ok")
            if due.rekey:
                self._observe("rekey", peer.fqdn, "initiator", "ok")
            if ctx is not None:
                log.info("N32 with %s: PRINS, context %s (ours) / %s (peer), %s/%s", peer.fqdn,
                         ctx.local_context_id, ctx.peer_context_id, ctx.jwe_suite, ctx.jws_suite)
            else:
                log.info("N32 with %s: %s selected", peer.fqdn, init.selected_capability)
        finally:
            self._pump()

    def _retrying(self, m: lifecycle.Relation) -> str:
        if m.retry_at is not None:
            return f"; retrying in {max(0.0, m.retry_at - self.clock()):.1f}s"
        return "; giving up until it is needed again" if m.state is lifecycle.RelationState.IDLE else ""

    def _task_for(self, peer: Peer) -> asyncio.Future:
        task = self._handshakes.get(peer.fqdn)
        if task is not None and not task.done():
            return task
        done: asyncio.Future = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    # ------------------------------------------------------------------ what the runtime asks
    def start_handshake(self, peer: Any, rekey: bool = False) -> asyncio.Future:
        """A relation is needed (``rekey``: the sending context's budget runs low); the returned
        future ends when the handshake running for it does."""
        p = self.peers[peer.fqdn]
        m = self.machines[p.fqdn]
        if rekey:   # some context of this peer runs low (a request or a response we protected)
            for ctx in self.store.for_peer(p.fqdn):
                m.sent_on(ctx, self.clock())
        else:
            m.want(self.clock())
        self._pump()
        return self._task_for(p)

    def context_dead(self, peer: str, context_id: str | None) -> asyncio.Future:
        """The peer does not know our context or relation (it restarted): handshake again."""
        m = self.machines[peer]
        log.warning("N32 with %s: the peer does not hold context %s; handshaking again", peer, context_id or "-")
        m.context_dead(self.clock(), context_id)
        self._pump()
        return self._task_for(self.peers[peer])

    def retry_after(self, peer: str) -> int:
        """Seconds an NF or peer should wait before retrying (Retry-After, RFC 9110 §10.2.3)."""
        m = self.machines.get(peer)
        if m is not None and m.retry_at is not None:
            return max(1, int(m.retry_at - self.clock() + 0.999))
        return 1

    async def handshake(self, peer: Any, rekey: bool = False) -> None:
        """The operator's command: handshake (or rekey) now and wait for it."""
        p = self.peers[peer.fqdn]
        m = self.machines[p.fqdn]
        if rekey:
            m.rekey(self.clock(), "operator")
        else:
            m.want(self.clock())
        self._pump()
        await asyncio.shield(self._task_for(p))

    async def terminate(self, peer: Any) -> None:
        """The operator's command: end the relation (n32f-terminate / ["NONE"])."""
        self.machines[peer.fqdn].release(self.clock())
        self._pump()
        await self._drain(self.cfg.handshake.timeout)

    async def shutdown(self, timeout: float = SHUTDOWN_TIMEOUT) -> None:
        """SIGTERM/SIGINT: end every relation as the spec says, bounded by ``timeout``."""
        self._stopping = True
        for task in list(self._handshakes.values()):
            task.cancel()
        for m in self.machines:
            m.release(self.clock())
        self._pump()
        await self._drain(timeout)
        await self.report_channel.aclose()
        if self._wake is not None:
            self._wake.set()

    async def _drain(self, timeout: float) -> None:
        pending = [t for t in self._posts if not t.done()]
        if pending:
            done, late = await asyncio.wait(pending, timeout=timeout)
            for t in late:
                t.cancel()

    def _post_later(self, peer: Peer, operation: str, body: dict) -> None:
        if self._spawn is None:
            return
        task = self._spawn(self._post(peer, operation, body))
        self._posts.add(task)
        task.add_done_callback(self._posts.discard)

    async def _post(self, peer: Any, operation: str, body: dict, reuse: bool = False) -> tuple[int, Any] | None:
        timeout = min(self.cfg.handshake.timeout, SHUTDOWN_TIMEOUT) if self._stopping else self.cfg.handshake.timeout
        post = self.report_channel.post if reuse else n32c.post_once
        try:
            status, rsp = await post(peer, self._peer_client[peer.fqdn], operation, body, timeout,
                                     on_sent=self._sent)
            log.info("N32-c %s to %s: %s", operation, peer.fqdn, status)
            return status, rsp
        except asyncio.CancelledError:
            return None
        except Exception as e:
            log.warning("N32-c %s to %s failed: %s", operation, peer.fqdn, e or type(e).__name__)
            return None

    async def report_n32f_error(self, peer_fqdn: str, info: dict) -> None:
        """``POST n32f-error`` on the peer's report connection (TS 33.501 §13.2.2.3), when the limiter
        admits it (n32/reports.py: not for unauthenticated messages, coalesced, rate-limited)."""
        if peer_fqdn not in self.peers:
            return
        if not self.reports.admit(peer_fqdn, info, self.clock()):
            self.reports.take_suppressed()
            why = "coalesced or rate-limited" if self.reports.reportable(info.get("n32fErrorType")) else \
                "the message did not authenticate"
            log.info("n32f-error %s for messageId %s to %s not sent: %s", info.get("n32fErrorType"),
                     info.get("n32fMessageId"), peer_fqdn, why)
            return
        await self._post(self.peers[peer_fqdn], "n32f-error", info, reuse=True)

    # ------------------------------------------------------------------ N32-c responder side
    def n32c_handle(self, conn_state: handshake.ConnectionState, operation: str, body: Any) -> tuple[int, Any]:
        outcome = self.responder.handle(conn_state, operation, body, now=self.clock())
        self._responder_events(outcome.events)
        if outcome.status >= 400:
            cause = outcome.body.get("cause") if isinstance(outcome.body, dict) else None
            self._observe("handshake", conn_state.peer.fqdn, "responder", cause or str(outcome.status))
        self._pump()
        log.info("N32-c %s from %s: %s", operation, conn_state.peer.fqdn, outcome.status)
        return outcome.status, outcome.body

    def connection_closed(self, conn_state: handshake.ConnectionState | None) -> None:
        """The initiator closed an N32-c connection we served (a handshake may be complete now)."""
        if conn_state is None:
            return
        self._responder_events(self.responder.connection_closed(conn_state))
        self._pump()

    def _responder_events(self, evs: list[events.N32Event]) -> None:
        for ev in evs:
            self.on_event(ev)
            if isinstance(ev, events.HandshakeCompleted):
                self._observe("handshake", ev.peer, "responder", "ok")

    def on_event(self, ev: events.N32Event) -> None:
        self.machines.handle_event(ev, self.clock())
        match ev:
            case events.ContextEstablished(context=ctx):
                self._keylog(ctx)
                log.info("N32-f context %s established with %s (%s)", ctx.local_context_id, ctx.peer_fqdn, ctx.role)
            case events.PolicyMismatch():
                log.warning("protection policy mismatch with %s (context %s): %s", ev.peer,
                            getattr(ev.context, "local_context_id", "-"), json.dumps(ev.invalid_params))
                if ev.report and self._spawn:
                    info = ev.error().n32f_error_info("0", getattr(ev.context, "peer_context_id", None))
                    self._spawn(self.report_n32f_error(ev.peer, info))
            case events.N32fErrorReceived():
                log.warning("n32f-error from %s: %s", ev.peer, json.dumps(ev.info))
            case events.ContextTerminated(context=ctx):
                log.info("N32-f context %s with %s terminated by the peer", ctx.local_context_id, ev.peer)
            case events.RelationReleased():
                log.info("N32 TLS relation with %s released by the peer", ev.peer)
            case _:  # the event's name and peer: its repr holds the whole context
                log.debug("N32 event %s with %s", type(ev).__name__, getattr(ev, "peer", "-"))
        self.write_status()

    # ------------------------------------------------------------------ key log and status
    def _keylog(self, ctx: N32fContext) -> None:
        path = self._keylog_path()
        if path:
            keylog.append_keylog(Path(path), keylog.keylog_record(ctx, self.cfg.name))

    def describe(self) -> dict:
        """Relations and contexts for humans and the lab (never key material)."""
        relations = {}
        for p in self.peers.values():
            rel = self.store.relation(p.fqdn)
            ctx = self.store.by_peer(p.fqdn)
            m = self.machines[p.fqdn]
            relations[p.fqdn] = {
                "state": m.state.value,
                "capability": getattr(rel, "capability", None),
                "lastError": m.last_error,
                "context": None if ctx is None else {
                    "role": ctx.role, "localContextId": ctx.local_context_id,
                    "peerContextId": ctx.peer_context_id, "jweCipherSuite": ctx.jwe_suite,
                    "jwsCipherSuite": ctx.jws_suite, "peerRiParameters": ctx.peer_ri_parameters,
                    "messagesLeft": min(c.remaining for c in ctx.counters.values())},
                # the context above carries new messages; others await promotion or retirement
                "contexts": sorted(c.local_context_id for c in self.store.all() if c.peer_fqdn == p.fqdn),
            }
        return {"sepp": self.cfg.name, "fqdn": self.cfg.fqdn, "peers": relations}

    def write_status(self) -> None:
        path = self._status_path()
        if path:
            tmp = Path(path + ".tmp")
            tmp.write_text(json.dumps(self.describe(), indent=2))
            tmp.replace(path)
