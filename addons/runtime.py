"""State of one running SEPP and the glue between mitmproxy flows and the N32 core.

Protocol decisions are made by ``n32`` (handshake, prins, routing, policy); this class owns the
per-process state (context store, TLS contexts, per-connection peer identities) and performs the
I/O those decisions call for (N32-c connections, n32f-error reports, key log lines).
"""
from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

from mitmproxy import http
from OpenSSL import SSL

from addons import flowconv
from n32 import config, edge, events, handshake, jwe, keylog, modifications, origin, prins, rh_error, routing, trust
from n32.context import ContextStore
from n32.errors import N32Error
from n32.peer import EXT_RI_PARAMETERS
from n32.policy import PolicySet
from n32io import admission, n32c, tls

log = logging.getLogger("sepp")

TARGET_HEADER = routing.TARGET_API_ROOT
ORIGINATING_NETWORK_ID = "3gpp-sbi-originating-network-id"


class SeppRuntime:
    def __init__(self, cfg: Any, keylog_path: Callable[[], str | None],
                 status_path: Callable[[], str | None] = lambda: None) -> None:
        self.cfg = cfg
        self._keylog_path = keylog_path
        self._status_path = status_path
        self.max_body = 4 * 1024 * 1024
        self.policy = PolicySet.load(cfg.policies.encryption, list(cfg.policies.placement),
                                     cfg.policies.modification)
        self.store = ContextStore()
        self.local = handshake.LocalSepp.from_config(cfg, self.policy)
        self.peer_settings = {p.fqdn: handshake.PeerSettings.from_config(p) for p in cfg.peers}
        self.responder = handshake.Responder(self.local, list(self.peer_settings.values()), self.store)
        self._peer_trust = [trust.PeerTrust(p.fqdn, list(p.plmn_ids), [p.trust_anchor]) for p in cfg.peers]
        # Roaming intermediaries we contract (cfg.ipx_keys) relay N32-f to us; their anchors are kept
        # apart from the peer SEPPs' (SCAS TS 33.517 4.2.2.2).
        self._ipx_trust = [trust.IpxTrust(k.fqdn, [k.trust_anchor]) for k in cfg.ipx_keys if k.trust_anchor]
        self._conns: dict[str, dict[str, Any]] = {}      # client connection id -> {peer, master, state}
        self._upstreams: dict[tuple[str, int], tuple[str, SSL.Context, str]] = {}
        self._handshakes: dict[str, asyncio.Task] = {}
        self._spawn: Callable[[Any], asyncio.Task] | None = None
        th = cfg.topology_hiding
        self.edge = edge.build(telescopic_domain=cfg.telescopic.domain, hiding=th.enabled, plmn=cfg.plmn_ids[0],
                               pseudonym_domain=th.pseudonym_domain,
                               secret=th.secret_file.read_bytes() if th.secret_file else None,
                               home_networks=th.home_networks, exclude=[cfg.fqdn])
        if self.edge.hider is not None:   # configured routes get their pseudonyms before any traffic
            for host in cfg.home_nfs.routes:
                self.edge.hider.register(host)
        self._build_tls()

    @classmethod
    def from_file(cls, path: str, keylog: Callable[[], str | None],
                  status: Callable[[], str | None] = lambda: None) -> "SeppRuntime":
        return cls(config.load_sepp_config(Path(path)), keylog, status)

    # ------------------------------------------------------------------ listeners and TLS
    def _build_tls(self) -> None:
        cfg = self.cfg
        allow12 = any(p.options.tls12 for p in cfg.peers)
        self._n32_server = tls.server_context(
            cfg.certificate, cfg.private_key,
            client_anchors=[p.trust_anchor for p in cfg.peers] + [a for i in self._ipx_trust for a in i.anchors],
            identify=lambda chain: trust.identify_client(chain, self._peer_trust, self._ipx_trust), allow_tls12=allow12)
        sbi = cfg.listeners.sbi
        self._sbi_server = tls.server_context(sbi.certificate or cfg.certificate, sbi.private_key or cfg.private_key,
                                              allow_tls12=True) if sbi and sbi.tls else None
        self._peer_client = {p.fqdn: tls.client_context(certificate=cfg.certificate, private_key=cfg.private_key,
                                                        anchors=[p.trust_anchor], allow_tls12=p.options.tls12,
                                                        peer_plmns=list(p.plmn_ids))
                             for p in cfg.peers}
        self._ipx_client = {i.fqdn: tls.client_context(certificate=cfg.certificate, private_key=cfg.private_key,
                                                       anchors=i.anchors) for i in self._ipx_trust}
        anchors = [cfg.home_nfs.trust_anchor] if cfg.home_nfs.trust_anchor else []
        self._nf_client = tls.client_context(certificate=cfg.certificate, private_key=cfg.private_key,
                                             anchors=anchors) if anchors else None
        self._mode_roles: dict[str, str] = {}
        placeholder = "reverse:http://127.0.0.1:9"  # never dialled: connection_strategy=lazy
        # A separate N32-f listener (listeners.n32f) serves N32-f only; N32-c stays on listeners.n32.
        for role, lst in (("n32", cfg.listeners.n32), ("n32f", cfg.listeners.n32f), ("sbi", cfg.listeners.sbi)):
            if lst is not None:
                self._mode_roles.setdefault(f"{placeholder}@{lst.host}:{lst.port}", role)

    def modes(self) -> list[str]:
        return list(self._mode_roles)

    def listener_role(self, full_spec: str) -> str | None:
        return self._mode_roles.get(full_spec)

    def listener_transport(self, full_spec: str) -> admission.Listener | None:
        """What one of our listeners accepts (addons/listeners.py)."""
        role = self._mode_roles.get(full_spec)
        if role is None:
            return None
        return admission.Listener(f"listeners.{role}", role != "sbi" or self._sbi_server is not None,
                                  self.cfg.header_limits)

    def server_tls(self, full_spec: str) -> SSL.Connection | None:
        role = self.listener_role(full_spec)
        if role in ("n32", "n32f"):
            return tls.server_connection(self._n32_server, alpn=(b"h2",))
        if role == "sbi" and self._sbi_server is not None:
            return tls.server_connection(self._sbi_server, alpn=(b"h2", b"http/1.1"))
        return None

    def client_tls_established(self, client_id: str, full_spec: str, conn: SSL.Connection) -> None:
        if self.listener_role(full_spec) not in ("n32", "n32f"):
            return
        info = conn.get_app_data()
        peer_fqdn = getattr(info.peer, "fqdn", None)
        ipx = info.peer if isinstance(info.peer, trust.IpxTrust) else None
        cert = conn.get_peer_certificate()
        self._conns[client_id] = {"peer": None if ipx else self.peer_settings.get(peer_fqdn), "ipx": ipx,
                                  "master": tls.export_n32_master(conn), "state": None,
                                  "plmns": trust.cert_plmn_ids(cert.to_cryptography()) if cert else None}
        log.info("N32 TLS from %s%s established (%s)", "IPX " if ipx else "", peer_fqdn,
                 conn.get_protocol_version_name())

    def peer_of_client(self, client_id: str) -> Any:
        c = self._conns.get(client_id)
        return c["peer"] if c else None

    def ipx_of_client(self, client_id: str) -> Any:
        c = self._conns.get(client_id)
        return c["ipx"] if c else None

    def forget_client(self, client_id: str) -> None:
        self._conns.pop(client_id, None)

    def upstream_tls(self, address: tuple[str, int] | None) -> SSL.Connection | None:
        entry = self._upstreams.get(tuple(address)) if address else None
        if entry is None:
            return None
        name, ctx, _kind = entry
        return tls.client_connection(ctx, name, alpn=(b"h2",) if _kind == "peer" else (b"h2", b"http/1.1"))

    def _route_upstream(self, uri: str, name: str, ctx: SSL.Context | None, kind: str) -> tuple[str, str, int]:
        parts = urlsplit(uri)
        host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
        if parts.scheme == "https" and ctx is not None:
            self._upstreams[(host, port)] = (name, ctx, kind)
        return parts.scheme, host, port

    # ------------------------------------------------------------------ peers and handshakes
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
                    self._start_handshake(p)

    def _start_handshake(self, peer: Any, rekey: bool = False) -> asyncio.Task:
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
        relation = init.peer_relation()
        self.store.set_relation(peer.fqdn, relation)
        if init.selected_capability == "PRINS":
            ctx = init.finish(master)
            self.store.add(ctx)
            self._keylog(ctx)
            log.info("N32 with %s: PRINS, context %s (ours) / %s (peer), %s/%s", peer.fqdn,
                     ctx.local_context_id, ctx.peer_context_id, ctx.jwe_suite, ctx.jws_suite)
            for ev in init.events:
                self._on_event(ev)
            if rekey and old is not None and old is not ctx:
                self._spawn(self._retire(peer, old))
        else:
            log.info("N32 with %s: %s selected", peer.fqdn, init.selected_capability)
        self.write_status()

    async def _retire(self, peer: Any, old: Any) -> None:
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

    async def report_n32f_error(self, peer_fqdn: str, err: N32Error, message_id: str | None,
                                context_id: str | None) -> None:
        """``POST n32f-error`` on a new N32-c connection (TS 33.501 §13.2.2.3; seed step 5)."""
        peer = self.peer(peer_fqdn)
        await self._post(peer, "n32f-error", err.n32f_error_info(message_id or "0", context_id))

    async def _expiry_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            for ctx in self.store.expire():
                log.info("N32-f context %s with %s expired", ctx.local_context_id, ctx.peer_fqdn)
                self.write_status()

    def _keylog(self, ctx: Any) -> None:
        path = self._keylog_path()
        if path:
            keylog.append_keylog(Path(path), keylog.keylog_record(ctx, self.cfg.name))

    def _on_event(self, ev: events.N32Event) -> None:
        match ev:
            case events.ContextEstablished(context=ctx):
                self._keylog(ctx)
                log.info("N32-f context %s established with %s (%s)", ctx.local_context_id, ctx.peer_fqdn, ctx.role)
            case events.PolicyMismatch():
                log.warning("protection policy mismatch with %s (context %s): %s", ev.peer,
                            getattr(ev.context, "local_context_id", "-"), json.dumps(ev.invalid_params))
                if ev.report and self._spawn:
                    self._spawn(self.report_n32f_error(ev.peer, ev.error(), "0",
                                                       getattr(ev.context, "peer_context_id", None)))
            case events.N32fErrorReceived():
                log.warning("n32f-error from %s: %s", ev.peer, json.dumps(ev.info))
            case _:
                log.info("N32 event %s", ev)
        self.write_status()

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

    # ------------------------------------------------------------------ N32-c server
    async def n32c_handle(self, client_id: str, peer: Any, method: str, operation: str, body: Any) -> tuple[int, Any]:
        conn = self._conns[client_id]
        if conn["state"] is None:
            master = conn["master"]
            conn["state"] = handshake.ConnectionState(peer=peer, exporter=lambda: master, cert_plmns=conn["plmns"])
        outcome = self.responder.handle(conn["state"], operation, body)
        for ev in outcome.events:
            self._on_event(ev)
        log.info("N32-c %s from %s: %s", operation, peer.fqdn, outcome.status)
        return outcome.status, outcome.body

    # ------------------------------------------------------------------ N32-f: sending SEPP
    async def _relation_for(self, peer: Any, wait: float) -> tuple[Any, Any]:
        relation = self.store.relation(peer.fqdn)
        ctx = self.store.by_peer(peer.fqdn)
        if relation is None or (relation.capability == "PRINS" and ctx is None):
            task = self._start_handshake(peer)
            try:
                await asyncio.wait_for(asyncio.shield(task), wait)
            except asyncio.TimeoutError:
                pass
            relation, ctx = self.store.relation(peer.fqdn), self.store.by_peer(peer.fqdn)
        if relation is None or relation.capability not in ("PRINS", "TLS") or \
                (relation.capability == "PRINS" and ctx is None):
            raise N32Error(503, "N32_NOT_ESTABLISHED",
                           f"no N32 security context with {peer.fqdn} yet; handshake pending or failed")
        return relation, ctx

    def answer_mapping(self, flow: http.HTTPFlow) -> bool:
        """Nsepp_Telescopic_FQDN_Mapping for our NFs (TS 29.573); True if ``flow`` was that."""
        req = flowconv.to_http_request(flow.request)
        if not self.edge.is_mapping_request(req):
            return False
        flow.metadata["n32"] = {"role": "local", "answered": True, "operation": "telescopic-mapping"}
        status, body = self.edge.mapping(req, parse_qs(req.query, keep_blank_values=True))
        flow.response = flowconv.json_response(status, body)
        return True

    async def send_outbound(self, flow: http.HTTPFlow, wait: float) -> None:
        req = self.edge.from_own_nf(flowconv.to_http_request(flow.request))
        target = routing.outbound_target(req)
        peer = routing.select_peer(target, self.cfg.peers, self.cfg.plmn_ids)
        state = {"role": "sending", "peer": peer.fqdn, "report_to": None}
        flow.metadata["n32"] = state
        relation, ctx = await self._relation_for(peer, wait)
        state["mode"] = relation.capability
        if relation.capability == "TLS":
            self._send_tls_mode(flow, req, target, peer, relation, state)
            return
        # PRINS: the request URI inside the protected message is built from the target apiRoot,
        # and the header is removed (TS 33.501 §13.1.1.2; SCAS TS 33.517 4.2.2.10).
        req.headers = [(k, v) for k, v in req.headers if k != TARGET_HEADER]
        req.scheme, req.authority, req.path = target.scheme, target.authority, target.prefix + req.path
        req = origin.outbound(req, self.cfg.plmn_ids, self.cfg.fqdn)
        sel = self.policy.selection(peer.fqdn, req.method, req.path, "request")
        message_id = prins.new_message_id()
        ipx = peer.first_hop_ipx.fqdn if peer.first_hop_ipx else None
        if ctx.needs_rekey:  # new context IDs and keys before any counter could wrap (profile 11)
            self._start_handshake(peer, rekey=True)
        extra = None
        if not ctx.ri_parameters_sent and EXT_RI_PARAMETERS in peer.options.extensions:
            extra = {prins.RI_PARAMETERS: self.ri_parameters(ctx)}
            ctx.ri_parameters_sent = True
        try:
            body, n_enc = prins.protect_request(ctx, req, sel, message_id, ipx, peer.options.authorized_ipx_null,
                                                extra)
        except jwe.KeyExhausted:
            self._start_handshake(peer, rekey=True)
            raise N32Error(503, "N32_REKEY_IN_PROGRESS", f"N32-f keys with {peer.fqdn} exhausted; rekeying") from None
        state.update(requestTag=body["reformattedData"].get("tag", ""), messageId=message_id, encrypted=n_enc, context=ctx.local_context_id, peerContextId=ctx.peer_context_id,
                     report_to=peer.fqdn, method=req.method, path=req.path,
                     original={"method": req.method, "authority": req.authority, "path": req.target})
        dest = peer.first_hop_ipx.uri if peer.first_hop_ipx else n32f_dest(peer, relation)
        hop = peer.first_hop_ipx
        tls_ctx = self._ipx_client.get(hop.fqdn) if hop else self._peer_client[peer.fqdn]
        if tls_ctx is None:
            raise N32Error(500, "SYSTEM_FAILURE", f"no trust anchor configured for IPX {hop.fqdn} (ipx_keys)")
        scheme, host, port = self._route_upstream(dest, hop.fqdn if hop else peer.fqdn, tls_ctx, "peer")
        headers = [("content-type", "application/json")]
        if hop:  # the IPX routes on the receiving SEPP (interop profile: IPX routing)
            headers.append((TARGET_HEADER, f"https://{peer.fqdn}"))
        flowconv.set_request(flow, "POST", scheme, host, port, dest_path(dest),
                             authority=hop.fqdn if hop else peer.fqdn,
                             body=json.dumps(body, separators=(",", ":")).encode(), headers=headers)
        log.debug("N32-f request %s to %s (context %s)", message_id, peer.fqdn, ctx.peer_context_id)

    def restore_response(self, flow: http.HTTPFlow) -> None:
        state = flow.metadata["n32"]
        ctx = self.store.by_local_id(state["context"])
        rsp = flow.response
        assert rsp is not None
        if ctx is None:
            raise N32Error(502, "CONTEXT_NOT_FOUND", "N32-f context ended before the response arrived")
        if rsp.status_code != 200:
            raise forwarded_failure(rsp, state)
        body = json.loads(rsp.get_content(strict=False) or b"null")
        state["responseJwe"] = body  # kept for inspection: the flow now shows the restored response
        if rh_error.is_rh_error(body):
            self._answer_rh_error(flow, state, body)
            return
        opened = prins.open_response(ctx, body, state["messageId"], self.modification_check(ctx, "response"))
        state["ipxModifications"] = sum(1 for m in opened.modifications if m.get("operations"))
        state["ipxModifiedBy"] = [m["identity"] for m in opened.modifications if m.get("operations")]
        if isinstance(opened.block.get(prins.RI_PARAMETERS), dict):
            ctx.peer_ri_parameters = opened.block[prins.RI_PARAMETERS]
            self.write_status()
        msg = self.edge.to_own_nf(state["method"], state["path"], opened.message)
        flow.response = flowconv.response_from(msg)
        state["answered"] = True
        state["status"] = opened.message.status

    def _answer_rh_error(self, flow: http.HTTPFlow, state: dict, body: dict) -> None:
        """Our first-hop roaming hub refused the request (TS 33.501 §13.2.4.5.2a)."""
        peer = self.peer(state["peer"])
        hub = peer.first_hop_ipx.fqdn if peer.first_hop_ipx else None
        keys = [k for i in self.cfg.ipx_keys if i.fqdn == hub for k in i.public_keys + i.certificates]
        if hub is None:
            raise N32Error(502, "INVALID_RH_ERROR", "hub error received although no roaming hub is on the path")
        status, problem = rh_error.open_error(body, state["messageId"], state.get("requestTag", ""), hub, keys)
        log.warning("N32-f sending: peer=%s context=%s messageId=%s: roaming hub %s refused it: %s %s",
                    state["peer"], state.get("context"), state["messageId"], hub, status, problem.get("cause"))
        state.update(answered=True, status=status, rhError={"hub": hub, **problem})
        flow.response = flowconv.json_response(status, problem, "application/problem+json")

    # ------------------------------------------------------------------ N32-f: receiving SEPP
    async def open_n32f_request(self, flow: http.HTTPFlow, peer: Any, body: Any, via_ipx: Any = None) -> None:
        peeked = prins.peek(body)
        meta = peeked.meta
        if peer is None:  # relayed by a roaming intermediary: the context names the sending SEPP
            ctx0 = self.store.by_local_id(meta["n32fContextId"])
            peer = self.peer_settings.get(ctx0.peer_fqdn) if ctx0 else None
            if peer is None:
                raise N32Error(403, "CONTEXT_NOT_FOUND", f"no N32-f context {meta['n32fContextId']}",
                               n32f_error_type="CONTEXT_NOT_FOUND", context_id=meta["n32fContextId"])
        state = {"role": "receiving", "peer": peer.fqdn, "messageId": meta["messageId"],
                 "report_to": peer.fqdn, "peerContextId": None, "viaIpx": getattr(via_ipx, "fqdn", None)}
        flow.metadata["n32"] = state
        state["requestJwe"] = body  # kept for inspection: the flow now shows the restored request
        ctx = self.store.by_local_id(meta["n32fContextId"])
        if ctx is None or ctx.peer_fqdn != peer.fqdn:
            raise N32Error(403, "CONTEXT_NOT_FOUND", f"no N32-f context {meta['n32fContextId']} with {peer.fqdn}",
                           n32f_error_type="CONTEXT_NOT_FOUND", context_id=meta["n32fContextId"])
        state.update(context=ctx.local_context_id, peerContextId=ctx.peer_context_id)
        opened = prins.open_request(ctx, body, self.modification_check(ctx, "request"), peeked)
        state["ipxModifications"] = sum(1 for m in opened.modifications if m.get("operations"))
        state["ipxModifiedBy"] = [m["identity"] for m in opened.modifications if m.get("operations")]
        if isinstance(opened.block.get(prins.RI_PARAMETERS), dict):
            ctx.peer_ri_parameters = opened.block[prins.RI_PARAMETERS]
            state["answerRiParameters"] = True
            self.write_status()
        req = self._deliver_to_home_nf(flow, opened.message, ctx.peer_plmn_ids)
        state.update(method=req.method, path=req.path, original={"method": req.method, "authority": req.authority,
                                                                  "path": req.target})

    def _deliver_to_home_nf(self, flow: http.HTTPFlow, req: Any, peer_plmns: Any) -> Any:
        """Checks shared by both N32-f modes, then ``flow`` goes to the home NF the target names.
        The target header, if any, is consumed here: delivery is direct (open5gs does the same)."""
        origin.inbound(req, peer_plmns)
        origin.check_plmn_consistency(req, peer_plmns)
        req = self.edge.from_peer(req)
        target = routing.outbound_target(req)
        routing.check_inbound_target(target, self.cfg.plmn_ids)
        uri = self.cfg.home_nfs.routes.get(target.host) or self.cfg.home_nfs.default
        if not uri:
            raise N32Error(504, "TARGET_NF_NOT_REACHABLE", f"no route to home NF {target.host}")
        scheme, host, port = self._route_upstream(uri, target.host, self._nf_client, "nf")
        if req.header(TARGET_HEADER):
            req.authority, req.path = target.authority, target.prefix + req.path
        req.headers = [(k, v) for k, v in req.headers if k != TARGET_HEADER]
        flowconv.apply_request(flow, req, scheme=scheme, host=host, port=port)
        return req

    def protect_response(self, flow: http.HTTPFlow) -> None:
        state = flow.metadata["n32"]
        ctx = self.store.by_local_id(state["context"])
        assert flow.response is not None
        if ctx is None:
            raise N32Error(503, "CONTEXT_NOT_FOUND", "N32-f context ended before the response")
        rsp = self.edge.to_peer(flowconv.to_response(flow.response))
        sel = self.policy.selection(ctx.peer_fqdn, state["method"], state["path"], "response")
        peer = self.peer(ctx.peer_fqdn)
        ipx = peer.first_hop_ipx.fqdn if peer.first_hop_ipx and state.get("viaIpx") else None
        extra = {prins.RI_PARAMETERS: self.ri_parameters(ctx)} if state.get("answerRiParameters") else None
        if ctx.needs_rekey:  # our response counter runs low: this side rekeys (profile 11)
            self._start_handshake(peer, rekey=True)
        try:
            body, n_enc = prins.protect_response(ctx, rsp, sel, state["messageId"], ipx,
                                                 peer.options.authorized_ipx_null, extra)
        except jwe.KeyExhausted:
            self._start_handshake(peer, rekey=True)
            raise N32Error(503, "N32_REKEY_IN_PROGRESS", f"N32-f keys with {peer.fqdn} exhausted; rekeying") from None
        state.update(status=rsp.status, encryptedResponse=n_enc)
        flow.response = flowconv.json_response(200, body)
        state["answered"] = True

    # ------------------------------------------------------------------ N32-f in TLS mode
    def _send_tls_mode(self, flow: http.HTTPFlow, req: Any, target: routing.ApiRoot, peer: Any,
                       relation: Any, state: dict) -> None:
        """TS 33.501 §13.1.1.2: :authority becomes the receiving SEPP, the target header stays."""
        if not req.header(TARGET_HEADER):
            req.headers.append((TARGET_HEADER, str(target)))
        req = origin.outbound(req, self.cfg.plmn_ids, self.cfg.fqdn)
        dest = n32f_dest(peer, relation)
        scheme, host, port = self._route_upstream(dest, peer.fqdn, self._peer_client[peer.fqdn], "peer")
        req.authority = peer.fqdn if port == 443 else f"{peer.fqdn}:{port}"
        req.scheme = "https"
        flowconv.apply_request(flow, req, scheme=scheme, host=host, port=port)
        state.update(method=req.method, path=req.path, original={"method": req.method, "path": req.target,
                                                                  "authority": str(target)})

    def tls_mode_response(self, flow: http.HTTPFlow) -> None:
        """Responses of TLS-mode N32-f: the edge steps only (TLS protects the hop)."""
        state = flow.metadata["n32"]
        assert flow.response is not None
        rsp = flowconv.to_response(flow.response)
        if state["role"] == "sending":
            rsp = self.edge.to_own_nf(state["method"], state["path"], rsp)
        else:
            rsp = self.edge.to_peer(rsp)
        flow.response = flowconv.response_from(rsp, flow.response.http_version)
        state["status"] = rsp.status

    async def tls_mode_inbound(self, flow: http.HTTPFlow, peer: Any) -> None:
        """N32-f in TLS mode from ``peer`` (already authenticated by its certificate)."""
        relation = self.store.relation(peer.fqdn)
        state = {"role": "tls-receiving", "peer": peer.fqdn}
        flow.metadata["n32"] = state
        if relation is None or relation.capability != "TLS":
            raise N32Error(403, "N32_NOT_ESTABLISHED",
                           f"no TLS-mode N32 relation with {peer.fqdn}; run N32-c exchange-capability first")
        req = self._deliver_to_home_nf(flow, flowconv.to_http_request(flow.request), self.peer(peer.fqdn).plmn_ids)
        state.update(method=req.method, path=req.path)

    def ri_parameters(self, ctx: Any) -> dict:
        """The N32-c parameters relevant to roaming intermediaries (TS 33.501 §13.2.2.2 step 7)."""
        return {"sender": self.cfg.fqdn, "jweCipherSuite": ctx.jwe_suite, "jwsCipherSuite": ctx.jws_suite,
                "ipxProviderIds": [k.fqdn for k in self.cfg.ipx_keys],
                "modificationPolicy": self.policy.modification_policy_wire(ctx.peer_fqdn)}

    def modification_check(self, ctx: Any, kind: str) -> Any:
        """Verifier of modificationsBlock (TS 33.501 §13.2.4.7): the peer's IPXs with the keys and
        policy learnt on N32-c for this context, ours with configured keys and our local policy."""
        signers = modifications.signers_from(ctx.peer_ipx_sec_info, ctx.peer_modification_policy or {})
        for k in self.cfg.ipx_keys:
            signers[k.fqdn] = modifications.Signer(k.fqdn, k.public_keys + k.certificates,
                                                   self.policy.modification_patterns(k.fqdn, ctx.peer_fqdn))

        def check(ctx: Any, body: dict, block: dict, tag: str) -> tuple[dict, list[dict]]:
            return modifications.verify_and_apply(block, body.get("modificationsBlock"), tag, signers)
        return check

    def log_failure(self, state: dict, err: N32Error, peer_hint: str | None = None) -> None:
        log.warning("%s %s: peer=%s context=%s messageId=%s: %s %s: %s", "N32-f" if state.get("role") in
                    ("sending", "receiving") else "N32", state.get("role"), state.get("peer") or peer_hint or "-",
                    state.get("context") or "-", state.get("messageId") or "-", err.status, err.cause, err.detail)


def n32f_dest(peer: Any, relation: Any) -> str:
    """Where N32-f for ``peer`` goes: configured ``n32f_uri``; else the port the peer announced on
    N32-c (senderN32fPortList) at the address configured for its N32-c; else its N32-c apiRoot."""
    if peer.n32f_uri:
        return peer.n32f_uri
    learnt = getattr(relation, "n32f_uri", None)
    if learnt:
        lp, cp = urlsplit(learnt), urlsplit(peer.n32c_uri)
        if lp.hostname == peer.fqdn and lp.port:
            return f"https://{cp.hostname}:{lp.port}"
    return peer.n32c_uri


def dest_path(uri: str) -> str:
    return urlsplit(uri).path.rstrip("/") + "/n32f-forward/v1/n32f-process"


def forwarded_failure(rsp: http.Response, state: dict) -> N32Error:
    """The peer refused our N32-f message: relay its suggestion to the NF (profile 20)."""
    try:
        pd = json.loads(rsp.get_content(strict=False) or b"{}")
    except ValueError:
        pd = {}
    status = pd.get("suggestedStatusCode") if isinstance(pd, dict) else None
    detail = f"peer SEPP answered {rsp.status_code} {pd.get('cause', '') if isinstance(pd, dict) else ''}".strip()
    return N32Error(int(status) if isinstance(status, int) and 400 <= status < 600 else 502,
                    (pd.get("cause") if isinstance(pd, dict) else None) or "N32F_FORWARDING_FAILED", detail)
