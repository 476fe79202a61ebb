"""Two SEPPs in memory, as h2's tests drive a connection with bytes: each side is the sans-I/O
core (handshake state machines, context store, relation lifecycle); the "network" delivers N32-c
requests to the other side's Responder and N32-f messages to the other side's store, and a fake
clock drives every timer. A random 64-octet value stands in for the TLS exporter of each N32-c
connection (the real exporter is exercised in tests/integration)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from n32 import handshake as hs
from n32 import prins
from n32.jwe import KeyExhausted
from n32.config import PeerOptions
from n32.context import ContextStore, N32fContext
from n32.errors import N32Error
from n32.events import HandshakeDue, N32Event, ReleaseDue, TerminateDue
from n32.lifecycle import Relations, Timing
from n32.message import HttpRequest, HttpResponse
from n32.peer import EXTENSIONS, Peer
from n32.reformat import IeSelection

V, H = "sepp.5gc.mnc001.mcc001.3gppnetwork.org", "sepp.5gc.mnc070.mcc999.3gppnetwork.org"
PLMN = {V: "001-01", H: "999-70"}
SUPI_SEL = IeSelection(path_segments=(2,))


@dataclass
class Clock:
    now: float = 1000.0


class Side:
    def __init__(self, fqdn: str, peer: str, clock: Clock, policy, caps=("PRINS", "TLS"), peer_caps=("PRINS", "TLS"),
                 ext=EXTENSIONS, timing: Timing = Timing(retry_initial=0.5, retry_max=4.0, rekey_grace=2.0),
                 max_messages: int = 2 ** 32, rekey_margin: int = 10) -> None:
        self.fqdn, self.clock, self.timing = fqdn, clock, timing
        self.local = hs.LocalSepp(fqdn, [PLMN[fqdn]], tuple(caps), ("A128GCM", "A256GCM"), ("ES256",), policy,
                                  lifetime=3600.0, rekey_margin=rekey_margin, max_messages=max_messages)
        self.peer = Peer(peer, [PLMN[peer]], tuple(peer_caps), PeerOptions(extensions=tuple(ext)))
        self.up = True
        self.boot()

    def boot(self) -> None:
        """A fresh process: nothing remembered."""
        self.store = ContextStore(clock=lambda: self.clock.now)
        self.responder = hs.Responder(self.local, [self.peer], self.store)
        self.relations = Relations([self.peer], self.store, self.timing)
        self.rel = self.relations[self.peer.fqdn]
        self.seen: list[N32Event] = []

    def event(self, ev: N32Event) -> None:
        self.seen.append(ev)
        self.relations.handle_event(ev, self.clock.now)


@dataclass
class Net:
    a: Side
    b: Side
    clock: Clock
    log: list[str] = field(default_factory=list)

    def other(self, side: Side) -> Side:
        return self.b if side is self.a else self.a

    # ------------------------------------------------------------------ N32-c
    def connect(self, to: Side) -> hs.ConnectionState:
        if not to.up:
            raise ConnectionRefusedError(to.fqdn)
        master = os.urandom(64)
        frm = self.other(to)
        return hs.ConnectionState(to.responder.peers[frm.fqdn], lambda: master)

    def post(self, frm: Side, operation: str, body: dict) -> tuple[int, dict | None]:
        to = self.other(frm)
        conn = self.connect(to)
        try:
            out = to.responder.handle(conn, operation, body, now=self.clock.now)
        except N32Error as e:
            return e.status, e.problem_details()
        for ev in out.events:
            to.event(ev)
        return out.status, out.body

    def handshake(self, frm: Side) -> None:
        to, now = self.other(frm), self.clock.now
        try:
            conn = self.connect(to)
        except ConnectionRefusedError as e:
            frm.rel.handshake_failed(now, f"connection refused by {e}")
            return
        init = hs.Initiator(frm.local, frm.peer, exporter=conn.exporter, now=now)
        try:
            while (step := init.next_request()) is not None:
                op, body = step
                try:
                    out = to.responder.handle(conn, op, body, now=now)
                except N32Error as e:
                    init.receive(e.status, e.problem_details())
                else:
                    for ev in out.events:
                        to.event(ev)
                    init.receive(out.status, out.body)
                for ev in init.take_events():
                    frm.event(ev)
        except N32Error as e:
            frm.rel.handshake_failed(now, f"{e.status} {e.cause}")
            return
        finally:
            for ev in to.responder.connection_closed(conn):
                to.event(ev)
        frm.rel.handshake_succeeded(now, init.peer_relation(), init.context)
        self.log.append(f"{frm.fqdn[:16]} handshake -> {init.selected_capability}")

    def pump(self) -> None:
        """Perform what both lifecycles asked for, until they ask for nothing more."""
        for _ in range(50):
            todo = [(s, ev) for s in (self.a, self.b) if s.up for ev in s.relations.events()]
            if not todo:
                return
            for side, ev in todo:
                side.seen.append(ev)
                if isinstance(ev, HandshakeDue):
                    self.handshake(side)
                elif isinstance(ev, TerminateDue) and self.other(side).up:
                    self.post(side, "n32f-terminate", hs.terminate_request(ev.context))
                elif isinstance(ev, ReleaseDue) and self.other(side).up:
                    self.post(side, "exchange-capability", hs.release_request(side.local))
        raise AssertionError("the lifecycles keep asking for work")

    def advance(self, seconds: float, step: float = 0.25) -> None:
        end = self.clock.now + seconds
        while self.clock.now < end:
            self.clock.now = min(end, self.clock.now + step)
            for s in (self.a, self.b):
                t = s.relations.get_timer()
                if s.up and t is not None and t <= self.clock.now:
                    s.relations.handle_timer(self.clock.now)
            self.pump()

    # ------------------------------------------------------------------ N32-f
    def request(self, frm: Side, supi: str = "imsi-001010000000001", retry: bool = True) -> int:
        """One NF request from ``frm``'s side through both SEPPs and back; the HTTP status the NF gets.
        A CONTEXT_NOT_FOUND from the peer kills the context and the request is retried once on the
        new one (it was never delivered)."""
        to, now = self.other(frm), self.clock.now
        ctx = frm.store.by_peer(to.fqdn)
        if ctx is None:
            frm.rel.want(now)
            self.pump()
            ctx = frm.store.by_peer(to.fqdn)
            if ctx is None:
                return 503
        mid = prins.new_message_id()
        req = HttpRequest("GET", "https", "nudm.example", f"/nudm-sdm/v2/{supi}/am-data")
        try:
            body, _ = prins.protect_request(ctx, req, SUPI_SEL, mid)
        except KeyExhausted:        # the engine answers 503 and asks for the rekey (its _seal)
            frm.rel.sent_on(ctx, now)
            self.pump()
            return 503
        frm.rel.sent_on(ctx, now)
        if not to.up:
            return 504
        rctx = to.store.by_local_id(prins.peek_metadata(body)["n32fContextId"])
        if rctx is None or rctx.peer_fqdn != frm.fqdn:
            frm.rel.context_dead(now, ctx.local_context_id)
            self.pump()
            return self.request(frm, supi, retry=False) if retry else 403
        opened = prins.open_request(rctx, body)
        assert supi in opened.message.path
        to.rel.received_on(rctx, now)
        rsp, _ = prins.protect_response(rctx, HttpResponse(200, [("content-type", "application/json")], b"{}"),
                                        IeSelection(), mid)
        to.rel.sent_on(rctx, now)
        back = frm.store.by_local_id(ctx.local_context_id)
        if back is None:
            return 502
        assert prins.open_response(back, rsp, mid).message.status == 200
        self.pump()
        return 200


def contexts(side: Side) -> list[N32fContext]:
    return side.store.for_peer(side.peer.fqdn)
