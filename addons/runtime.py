"""The I/O owner of one running SEPP: listeners, TLS contexts, connection identities, and the
glue between mitmproxy flows and the engine.

Every per-message decision is ``n32.engine``'s: this module converts a flow to core messages
(``addons/flowconv.py``), builds the :class:`~n32.exchange.Exchange`, calls the engine and
performs the actions it returns (rewrite the flow towards a next hop, answer, report, start a
handshake, log). The N32 relations (handshakes, rekeys, reports) are ``addons/relations.py``.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import time
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

from mitmproxy import http
from OpenSSL import SSL

from addons import flowconv, flowlabel
from addons.relations import Relations
from n32 import config, engine, handshake, label, trust
from n32.context import ContextStore
from n32.exchange import (METADATA_KEY, Action, Answer, Exchange, Forward, HandleN32c, HopKind, Listener, Log,
                          ReportError, StartHandshake, StatusChanged, of_metadata)
from n32.message import HttpRequest, HttpResponse
from n32.peer import Peer
from n32io import admission, tls
from n32io.transport import UpstreamError
from n32io.upstream import Hop, Upstream

log = logging.getLogger("sepp")


class SeppRuntime:
    def __init__(self, cfg: Any, keylog_path: Callable[[], str | None],
                 status_path: Callable[[], str | None] = lambda: None) -> None:
        self.cfg = cfg
        self.store = ContextStore(time.time)   # the clock of every Exchange.now below
        th = cfg.topology_hiding
        self.engine = engine.build(cfg, self.store, th.secret_file.read_bytes() if th.secret_file else None)
        self.policy, self.edge = self.engine.policy, self.engine.edge
        self.apis = label.load_api_names(cfg.policies.placement)
        self._peer_trust = [Peer.from_config(p).trust for p in cfg.peers]
        # Roaming intermediaries we contract (cfg.ipx_keys) relay N32-f to us; their anchors are kept
        # apart from the peer SEPPs' (SCAS TS 33.517 4.2.2.2).
        self._ipx_trust = [trust.IpxTrust(k.fqdn, [k.trust_anchor]) for k in cfg.ipx_keys if k.trust_anchor]
        self._conns: dict[str, dict[str, Any]] = {}      # client connection id -> {peer, ipx, master, state}
        # every next hop is dialled here, not by mitmproxy (docs/architecture.md, "Next hops")
        self.upstream = Upstream(idle_timeout=cfg.timeouts.idle)
        self._build_tls()
        self.relations = Relations(cfg, self.store, handshake.LocalSepp.from_config(cfg, self.policy),
                                   self._peer_client, keylog_path, status_path)
        self._spawn: Callable[[Any], asyncio.Task] | None = None
        # Whether anything shows or keeps flows (mitmdump, mitmweb): what is only there to be seen
        # (labels, the forwarded request written into the flow, the UE) is skipped without (the
        # slim runner, addons/slim.py, which keeps no flow).
        self.display = True

    @classmethod
    def from_file(cls, path: str, keylog: Callable[[], str | None],
                  status: Callable[[], str | None] = lambda: None) -> "SeppRuntime":
        return cls(config.load_sepp_config(Path(path)), keylog, status)

    def start_background(self, spawn: Callable[[Any], asyncio.Task]) -> None:
        self._spawn = spawn
        self.relations.start_background(spawn)

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
        # https:// home NF without home_nfs.trust_anchor: nothing is trusted, the handshake fails
        self._no_anchor = tls.client_context(certificate=None, private_key=None, anchors=[])
        self._mode_roles: dict[str, Listener] = {}
        placeholder = "reverse:http://127.0.0.1:9"  # never dialled: connection_strategy=lazy
        # A separate N32-f listener (listeners.n32f) serves N32-f only; N32-c stays on listeners.n32.
        for role, lst in ((Listener.N32, cfg.listeners.n32), (Listener.N32F, cfg.listeners.n32f),
                          (Listener.SBI, cfg.listeners.sbi)):
            if lst is not None:
                self._mode_roles.setdefault(f"{placeholder}@{lst.host}:{lst.port}", role)
        # read for every request (addons/listeners.py): made once
        self._transports = {spec: admission.Listener(f"listeners.{role.value}",
                                                     role is not Listener.SBI or self._sbi_server is not None,
                                                     self.cfg.header_limits)
                            for spec, role in self._mode_roles.items()}

    def modes(self) -> list[str]:
        return list(self._mode_roles)

    def listener_role(self, full_spec: str) -> Listener | None:
        return self._mode_roles.get(full_spec)

    def listener_transport(self, full_spec: str) -> admission.Listener | None:
        """What one of our listeners accepts (addons/listeners.py)."""
        return self._transports.get(full_spec)

    def server_tls(self, full_spec: str) -> SSL.Connection | None:
        role = self.listener_role(full_spec)
        if role in (Listener.N32, Listener.N32F):
            return tls.server_connection(self._n32_server, alpn=(b"h2",))
        if role is Listener.SBI and self._sbi_server is not None:
            return tls.server_connection(self._sbi_server, alpn=(b"h2", b"http/1.1"))
        return None

    def client_tls_established(self, client_id: str, full_spec: str, conn: SSL.Connection) -> None:
        if self.listener_role(full_spec) not in (Listener.N32, Listener.N32F):
            return
        info = conn.get_app_data()
        fqdn = getattr(info.peer, "fqdn", None)
        is_ipx = isinstance(info.peer, trust.IpxTrust)
        cert = conn.get_peer_certificate()
        self._conns[client_id] = {"peer": None if is_ipx else fqdn, "ipx": fqdn if is_ipx else None,
                                  "master": tls.export_n32_master(conn), "state": None,
                                  "plmns": trust.cert_plmn_ids(cert.to_cryptography()) if cert else None}
        log.info("N32 TLS from %s%s established (%s)", "IPX " if is_ipx else "", fqdn,
                 conn.get_protocol_version_name())

    def forget_client(self, client_id: str) -> None:
        conn = self._conns.pop(client_id, None)
        if conn is not None:
            self.relations.connection_closed(conn["state"])

    def _tls_client(self, fwd: Forward) -> SSL.Context | None:
        if fwd.hop is HopKind.PEER:
            return self._peer_client[fwd.tls_name]
        if fwd.hop is HopKind.IPX:
            return self._ipx_client.get(fwd.tls_name)
        return self._nf_client

    # ------------------------------------------------------------------ flows
    async def request(self, flow: http.HTTPFlow, wait: float) -> None:
        """A request on one of our listeners: ask the engine, wait for a handshake it asks for, send
        the forward and answer the flow with the engine's answer to what came back, all in this
        hook (one conversion each way; mitmproxy only carries the answer to the client)."""
        role = self.listener_role(flow.client_conn.proxy_mode.full_spec)
        if role is None:
            return
        conn = self._conns.get(flow.client_conn.id) or {}
        ex = Exchange(listener=role, peer_identity=conn.get("peer"), ipx_identity=conn.get("ipx"), now=time.time())
        flow.metadata[METADATA_KEY] = ex
        try:
            source = flowconv.to_http_request(flow.request)
            if self.display:
                flow.metadata["ue"] = label.ue_of(source.path, source.body)
                self._show_listener(flow)
            rsp = await self._run(flow, ex, source, wait)
            lost = self.engine.context_lost(ex, rsp) if role is Listener.SBI else None
            if lost is not None:
                # The peer restarted: it could not read the message, so nothing was delivered. Rebuild
                # the relation (one handshake per peer, with backoff) and send the request once more.
                await self._wait_for(self.relations.context_dead(lost.peer, lost.context_id) if lost.dead else
                                     self.relations.start_handshake(self.relations.peer(lost.peer)), wait)
                ex = Exchange(listener=role, now=time.time(), handshake_waited=True, handshake_retried=True)
                flow.metadata[METADATA_KEY] = ex
                flow.response = None
                rsp = await self._run(flow, ex, source, wait)
            if rsp is not None:
                ex.now = time.time()
                self._perform(flow, ex, self.engine.on_response(ex, rsp))
                if flow.response is None:
                    flow.response = flowconv.response_from(rsp)
        except Exception as e:  # fail closed: never forward what we could not process
            log.exception("internal error on %s %s", flow.request.method, flow.request.path)
            self._perform(flow, ex, self.engine.internal_error(ex, e))
        if flow.response is None:
            # Every flow on our listeners is answered here (next hops are dialled by n32io.upstream):
            # a flow left unanswered would make mitmproxy dial its placeholder upstream and answer
            # with its HTML error page. Fail closed with ProblemDetails instead.
            log.error("no answer for %s %s on %s; answering 500", flow.request.method, flow.request.path[:200],
                      role.value if hasattr(role, "value") else role)
            self._perform(flow, ex, self.engine.internal_error(ex, RuntimeError("request left unanswered")))

    @staticmethod
    def _show_listener(flow: http.HTTPFlow) -> None:
        """Reverse mode names its placeholder upstream (http://127.0.0.1:9) as the request's target;
        a flow we answer ourselves (N32-c, errors) shows what the client addressed instead: our
        listener's scheme and port, the host it named. A forwarded flow shows its next hop."""
        r, client = flow.request, flow.client_conn
        r.data.scheme = b"https" if client.tls_established else b"http"   # bytes, as RequestData keeps it
        r.data.host = (r.host_header or "").rsplit(":", 1)[0].strip("[]") or (client.sockname or ("",))[0]
        if client.sockname:
            r.data.port = client.sockname[1]

    def label(self, flow: http.HTTPFlow) -> None:
        """The exchange's label on the flow (n32/label.py; addons/flowlabel.py puts it in place)."""
        ex = of_metadata(flow.metadata)
        if ex is None:
            return
        rsp = flow.response
        ue = flow.metadata.get("ue") or label.ue_of(ex.path or "", None if ex.request_jwe is None else
                                                    flow.request.get_content(strict=False),
                                                    rsp.get_content(strict=False) if rsp else None)
        hop = (flow.request.host_header or "").rsplit(":", 1)[0] if ex.role == "sending" else None
        text = label.sepp_label(ex, self.apis, ue=ue, next_hop=hop, status=rsp.status_code if rsp else None)
        flowlabel.apply(flow, text, label.rejected(ex) or (rsp is None and flow.error is not None))

    def label_safely(self, flow: http.HTTPFlow) -> None:
        if not self.display:
            return
        try:  # a label is for people: it never changes what happens to the exchange
            self.label(flow)
        except Exception:
            log.exception("labelling %s %s failed", flow.request.method, flow.request.path)

    async def _run(self, flow: http.HTTPFlow, ex: Exchange, source: HttpRequest, wait: float) -> HttpResponse | None:
        """The engine's decision on ``source`` (after a handshake it asks to wait for), then the
        forward: the next hop's answer, or None when the flow is answered already. The engine
        rewrites the request it is given: it gets a copy, ``source`` stays as received."""
        actions = self.engine.on_request(ex, source.evolve(headers=list(source.headers)))
        pending = next((a for a in actions if isinstance(a, StartHandshake) and a.wait), None)
        if pending is not None:
            await self._wait_for(self.relations.start_handshake(self.relations.peer(pending.peer), pending.rekey),
                                 wait)
            ex.handshake_waited, ex.now = True, time.time()
            actions = self.engine.on_request(ex, source.evolve(headers=list(source.headers)))
        self._perform(flow, ex, actions)
        fwd = next((a for a in actions if isinstance(a, Forward)), None)
        if fwd is not None and flow.response is None:
            return await self._forward(flow, ex, fwd)
        return None

    @staticmethod
    async def _wait_for(task: asyncio.Future, wait: float) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(task), wait)
        except asyncio.TimeoutError:
            pass

    async def _forward(self, flow: http.HTTPFlow, ex: Exchange, fwd: Forward) -> HttpResponse | None:
        """Send ``fwd`` ourselves: the answer (for a home NF that failed, the engine's answer in its
        place), or None when the flow is answered with the engine's error. Mitmproxy opens no server connection for a flow answered in the
        request hook."""
        scheme, host, port = _where(fwd.uri)
        ctx = (self._tls_client(fwd) or self._no_anchor) if scheme == "https" else None
        hop = Hop(host, port, fwd.protocol, ctx, fwd.tls_name)
        seconds = max(fwd.deadline - time.time(), 0.001) if fwd.deadline else self.cfg.timeouts.n32f
        try:
            return await self.upstream.send(hop, fwd.request, seconds)
        except UpstreamError as e:  # the address stays in our log, never in the answer
            log.warning("%s %s at %s:%d failed (%s): %s", fwd.hop.value, fwd.tls_name, host, port, e.kind, e)
            ex.now = time.time()
            actions = self.engine.on_upstream_error(ex, fwd.hop, e.kind, e.sent)
            answer = next((a for a in actions if isinstance(a, Answer)), None)
            if ex.answered or answer is None:
                self._perform(flow, ex, actions)
                return None
            # a failed delivery to the home NF is answered like an NF answer: it goes on as the
            # next hop's answer (protected towards the peer in PRINS)
            self._perform(flow, ex, [a for a in actions if a is not answer])
            return answer.response

    def error(self, flow: http.HTTPFlow) -> None:
        # Next hops are ours (_forward): a flow error here is the NF or peer side going away.
        if flow.error and of_metadata(flow.metadata) is not None:
            log.debug("flow ended without an answer: %s", flow.error.msg)

    async def n32_clients_gone(self, timeout: float) -> None:
        """Wait (at most ``timeout`` s) until no N32 client connection is open."""
        deadline = time.monotonic() + timeout
        while self._conns and time.monotonic() < deadline:
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        await self.upstream.close()

    def _perform(self, flow: http.HTTPFlow, ex: Exchange, actions: list[Action]) -> None:
        for a in actions:
            if isinstance(a, Forward):  # the flow shows what _forward sends
                if not self.display:
                    continue
                scheme, host, port = _where(a.uri)
                flowconv.apply_request(flow, a.request, scheme=scheme, host=host, port=port)
            elif isinstance(a, Answer):
                flow.response = flowconv.response_from(a.response)
            elif isinstance(a, HandleN32c):
                conn = self._conns[flow.client_conn.id]
                if conn["state"] is None:
                    master = conn["master"]
                    conn["state"] = handshake.ConnectionState(peer=self.relations.peer_settings[a.peer],
                                                              exporter=lambda: master, cert_plmns=conn["plmns"])
                state = conn["state"]
                self._perform(flow, ex, self.engine.on_n32c(
                    ex, lambda: self.relations.n32c_handle(state, a.operation, a.body)))
            elif isinstance(a, ReportError):
                if self._spawn:
                    self._spawn(self.relations.report_n32f_error(a.peer, a.info))
            elif isinstance(a, StartHandshake) and a.dead:
                self.relations.context_dead(a.peer, a.context_id)
            elif isinstance(a, StartHandshake):
                self.relations.start_handshake(self.relations.peer(a.peer), rekey=a.rekey)
            elif isinstance(a, Log):
                log.log(logging.getLevelName(a.level.upper()), "%s", a.line)
            elif isinstance(a, StatusChanged):
                self.relations.write_status()


@functools.lru_cache(maxsize=256)
def _where(uri: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a next hop's URI (the same few on every request)."""
    parts = urlsplit(uri)
    return parts.scheme, parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
