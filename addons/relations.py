"""N32 relations of a running SEPP: the N32-c handshakes, rekeys, terminations and reports.

The I/O side of the relation lifecycle (TS 33.501 §13.2.2, TS 29.573 §5.2): it runs
``n32.handshake`` (initiator over ``n32io.n32c``, responder for N32-c requests the engine hands
over), keeps the context store, writes the key log and the status file. Per-message decisions
are ``n32.engine``'s; this module only acts on the handshakes and reports the engine asks for.
"""
from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any, Callable

from OpenSSL import SSL

from n32 import events, handshake, keylog
from n32.context import ContextStore, N32fContext
from n32.errors import N32Error
from n32io import n32c

log = logging.getLogger("sepp")


class Relations:
    def __init__(self, cfg: Any, store: ContextStore, local: handshake.LocalSepp,
                 peer_client: dict[str, SSL.Context], keylog_path: Callable[[], str | None],
                 status_path: Callable[[], str | None]) -> None:
        self.cfg, self.store, self.local = cfg, store, local
        self.peer_settings = {p.fqdn: handshake.PeerSettings.from_config(p) for p in cfg.peers}
        self.responder = handshake.Responder(local, list(self.peer_settings.values()), store)
        self._peer_client = peer_client
        self._keylog_path, self._status_path = keylog_path, status_path
        self._handshakes: dict[str, asyncio.Task] = {}
        self._spawn: Callable[[Any], asyncio.Task] | None = None

    def peer(self, name: str) -> Any:
        for p in self.cfg.peers:
            if name in (p.name, p.fqdn):
                return p
        raise ValueError(f"unknown peer {name!r}")

    def start_background(self, spawn: Callable[[Any], asyncio.Task]) -> None:
        self._spawn = spawn
        self.write_status()
        spawn(self._expiry_loop())
        if self.cfg.handshake.at_start:
            for p in self.cfg.peers:
                if p.initiate:
                    self.start_handshake(p)

    def start_handshake(self, peer: Any, rekey: bool = False) -> asyncio.Task:
        """One handshake per peer at a time; callers may wait on the task."""
        task = self._handshakes.get(peer.fqdn)
        if task is None or task.done():
            assert self._spawn is not None
            task = self._spawn(self.handshake(peer, rekey=rekey))
            self._handshakes[peer.fqdn] = task
        return task

    async def handshake(self, peer: Any, rekey: bool = False) -> None:
        """Initiator side of TS 33.501 §13.5 + §13.2.2.2 on one connection (seed steps 1-6)."""
        hs = self.cfg.handshake
        settings = self.peer_settings[peer.fqdn]
        old = self.store.by_peer(peer.fqdn)

        async def attempt() -> tuple[Any, bytes]:
            return await n32c.run_initiator(handshake.Initiator(self.local, settings), peer,
                                            self._peer_client[peer.fqdn], hs.timeout)

        try:
            init, master = await n32c.with_backoff(attempt, what=f"N32-c handshake with {peer.fqdn}",
                                                   initial=hs.retry_initial, maximum=hs.retry_max,
                                                   attempts=hs.attempts)
        except N32Error as e:
            log.error("N32-c handshake with %s refused: %s %s: %s", peer.fqdn, e.status, e.cause, e.detail)
            return
        except Exception as e:
            log.error("N32-c handshake with %s failed: %s", peer.fqdn, e or type(e).__name__)
            return
        self.store.set_relation(peer.fqdn, init.peer_relation())
        if init.selected_capability == "PRINS":
            ctx = init.finish(master)
            self.store.add(ctx)
            self._keylog(ctx)
            log.info("N32 with %s: PRINS, context %s (ours) / %s (peer), %s/%s", peer.fqdn,
                     ctx.local_context_id, ctx.peer_context_id, ctx.jwe_suite, ctx.jws_suite)
            for ev in init.events:
                self.on_event(ev)
            if rekey and old is not None and old is not ctx and self._spawn:
                self._spawn(self._retire(peer, old))
        else:
            log.info("N32 with %s: %s selected", peer.fqdn, init.selected_capability)
        self.write_status()

    async def _retire(self, peer: Any, old: N32fContext) -> None:
        """After a rekey: the new context carries all new messages (``by_peer`` picks the newest);
        the old one still accepts messages in flight for ``contexts.rekey_grace`` seconds, then
        both sides drop it (n32f-terminate, TS 29.573 §5.2.2.4)."""
        await asyncio.sleep(self.cfg.contexts.rekey_grace)
        if self.store.by_local_id(old.local_context_id) is None:
            return  # expired or terminated by the peer meanwhile
        await self._post(peer, "n32f-terminate", handshake.terminate_request(old))
        self.store.remove(old)
        log.info("N32-f context %s with %s retired after rekey", old.local_context_id, peer.fqdn)
        self.write_status()

    async def terminate(self, peer: Any) -> None:
        ctx = self.store.by_peer(peer.fqdn)
        if ctx is not None:
            await self._post(peer, "n32f-terminate", handshake.terminate_request(ctx))
            self.store.remove(ctx)
            log.info("N32-f context %s with %s terminated", ctx.local_context_id, peer.fqdn)
        else:
            await self._post(peer, "exchange-capability", handshake.release_request(self.local))
            self.store.set_relation(peer.fqdn, None)
            log.info("N32 TLS relation with %s released", peer.fqdn)
        self.write_status()

    async def _post(self, peer: Any, operation: str, body: dict) -> tuple[int, Any] | None:
        try:
            status, rsp = await n32c.post_once(peer, self._peer_client[peer.fqdn], operation, body,
                                               self.cfg.handshake.timeout)
            log.info("N32-c %s to %s: %s", operation, peer.fqdn, status)
            return status, rsp
        except Exception as e:
            log.warning("N32-c %s to %s failed: %s", operation, peer.fqdn, e or type(e).__name__)
            return None

    async def report_n32f_error(self, peer_fqdn: str, info: dict) -> None:
        """``POST n32f-error`` on a new N32-c connection (TS 33.501 §13.2.2.3; seed step 5)."""
        await self._post(self.peer(peer_fqdn), "n32f-error", info)

    async def _expiry_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            for ctx in self.store.expire():
                log.info("N32-f context %s with %s expired", ctx.local_context_id, ctx.peer_fqdn)
                self.write_status()

    def _keylog(self, ctx: N32fContext) -> None:
        path = self._keylog_path()
        if path:
            keylog.append_keylog(Path(path), keylog.keylog_record(ctx, self.cfg.name))

    def on_event(self, ev: events.N32Event) -> None:
        match ev:
            case events.ContextEstablished(context=ctx):
                self._keylog(ctx)
                log.info("N32-f context %s established with %s (%s)", ctx.local_context_id, ctx.peer_fqdn, ctx.role)
            case events.PolicyMismatch():
                log.warning("protection policy mismatch with %s (context %s): %s", ev.peer,
                            getattr(ev.context, "local_context_id", "-"), json.dumps(ev.invalid_params))
                if ev.report and self._spawn:
                    context_id = getattr(ev.context, "peer_context_id", None)
                    self._spawn(self.report_n32f_error(ev.peer, ev.error().n32f_error_info("0", context_id)))
            case events.N32fErrorReceived():
                log.warning("n32f-error from %s: %s", ev.peer, json.dumps(ev.info))
            case _:  # the event's name and peer: its repr holds the whole context
                log.info("N32 event %s with %s", type(ev).__name__, getattr(ev, "peer", "-"))
        self.write_status()

    def n32c_handle(self, conn_state: handshake.ConnectionState, operation: str, body: Any) -> tuple[int, Any]:
        outcome = self.responder.handle(conn_state, operation, body)
        for ev in outcome.events:
            self.on_event(ev)
        log.info("N32-c %s from %s: %s", operation, conn_state.peer.fqdn, outcome.status)
        return outcome.status, outcome.body

    def describe(self) -> dict:
        """Relations and contexts for humans and the lab (never key material)."""
        relations = {}
        for p in self.cfg.peers:
            rel = self.store.relation(p.fqdn)
            ctx = self.store.by_peer(p.fqdn)
            relations[p.fqdn] = {
                "capability": getattr(rel, "capability", None),
                "context": None if ctx is None else {
                    "role": ctx.role, "localContextId": ctx.local_context_id,
                    "peerContextId": ctx.peer_context_id, "jweCipherSuite": ctx.jwe_suite,
                    "jwsCipherSuite": ctx.jws_suite,
                    "peerRiParameters": getattr(ctx, "peer_ri_parameters", None),
                    "messagesLeft": min(c.remaining for c in ctx.counters.values())},
                # the newest context above carries new messages; older ones only await retirement
                "contexts": sorted((c.local_context_id for c in self.store.all() if c.peer_fqdn == p.fqdn)),
            }
        return {"sepp": self.cfg.name, "fqdn": self.cfg.fqdn, "peers": relations}

    def write_status(self) -> None:
        path = self._status_path()
        if path:
            tmp = Path(path + ".tmp")
            tmp.write_text(json.dumps(self.describe(), indent=2))
            tmp.replace(path)
