"""mitm-sepp: the SEPP as a mitmproxy addon.

    mitmdump -s addons/sepp.py --set sepp_config=lab/sepp-v.yaml [--set n32_keylog=FILE]

Listeners come from the config (N32 with mutual TLS; NF-facing SBI). This module only adapts
mitmproxy hooks to the sans-I/O core in ``n32/``: TLS contexts (n32io.tls), N32-c requests to
``n32.handshake.Responder``, N32-f flows to ``n32.prins`` and ``n32.routing``.
"""
from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from mitmproxy import command, ctx, exceptions, http, tls
from mitmproxy.connection import Client

from addons import flowconv, listeners
from addons.runtime import SeppRuntime
from n32 import errors
from n32.errors import N32Error

log = logging.getLogger("sepp")

N32C_PREFIX = "/n32c-handshake/v1/"
N32F_PROCESS = "/n32f-forward/v1/n32f-process"
MAX_N32C_BODY = 64 * 1024


class Sepp:
    def __init__(self) -> None:
        self.rt: SeppRuntime | None = None
        self._tasks: set[asyncio.Task] = set()

    # ------------------------------------------------------------------ options, lifecycle
    def load(self, loader: Any) -> None:
        loader.add_option("sepp_config", str | None, None, "SEPP configuration YAML (see docs/configuration.md).")
        loader.add_option("n32_keylog", str | None, None,
                          "Append one JSON line per established N32-f context (master key!) to this file. Lab use only.")
        loader.add_option("sepp_status", str | None, None,
                          "Write the N32 relations and contexts (no keys) as JSON to this file whenever they change.")
        loader.add_option("sepp_handshake_wait", int, 5,
                          "Seconds an NF request waits for an N32 handshake in progress before 503.")

    def configure(self, updated: set[str]) -> None:
        if "sepp_config" in updated and ctx.options.sepp_config:
            try:
                self.rt = SeppRuntime.from_file(ctx.options.sepp_config, keylog=lambda: ctx.options.n32_keylog,
                                                 status=lambda: ctx.options.sepp_status)
            except Exception as e:  # ConfigError carries "<file>: <key>: <problem>"
                raise exceptions.OptionsError(str(e)) from None
            # keep_host_header: mitmproxy's reverse mode would otherwise replace :authority by the
            # placeholder upstream, and the SEPP routes on it (telescopic FQDNs, TS 29.500 §6.1).
            ctx.options.update(mode=self.rt.modes(), connection_strategy="lazy", keep_host_header=True)
            log.info("SEPP %s (%s) configured: PLMN %s, %d peer(s)", self.rt.cfg.name, self.rt.cfg.fqdn,
                     ",".join(map(str, self.rt.cfg.plmn_ids)), len(self.rt.cfg.peers))

    async def running(self) -> None:
        if self.rt:
            # mitmproxy loads -s scripts in a deferred task that races the first setup_servers(),
            # which may therefore have started the default listener: bring up ours now.
            await ctx.master.addons.get("proxyserver").setup_servers()
            self.rt.start_background(self._spawn)

    def done(self) -> None:
        for t in list(self._tasks):
            t.cancel()

    def _spawn(self, coro: Any) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ------------------------------------------------------------------ commands
    @command.command("sepp.handshake")
    def cmd_handshake(self, peer: str) -> None:
        """Run the N32-c handshake towards PEER (name or FQDN) now."""
        rt = self._need_rt()
        self._spawn(rt.handshake(self._peer(rt, peer)))

    @command.command("sepp.rekey")
    def cmd_rekey(self, peer: str) -> None:
        """New N32-c handshake towards PEER: new context IDs and keys; the old context is terminated
        after contexts.rekey_grace seconds."""
        rt = self._need_rt()
        self._spawn(rt.handshake(self._peer(rt, peer), rekey=True))

    @command.command("sepp.terminate")
    def cmd_terminate(self, peer: str) -> None:
        """Terminate the N32-f context (PRINS) or release the TLS relation with PEER."""
        rt = self._need_rt()
        self._spawn(rt.terminate(self._peer(rt, peer)))

    @command.command("sepp.contexts")
    def cmd_contexts(self) -> str:
        """The N32 relations and N32-f contexts this SEPP holds (no key material)."""
        return json.dumps(self._need_rt().describe(), indent=2)

    @staticmethod
    def _peer(rt: SeppRuntime, name: str) -> Any:
        try:
            return rt.peer(name)
        except ValueError as e:
            raise exceptions.CommandError(f"{e}; configured: {', '.join(p.fqdn for p in rt.cfg.peers)}") from None

    def _need_rt(self) -> SeppRuntime:
        if not self.rt:
            raise exceptions.CommandError("sepp_config is not set")
        return self.rt

    # ------------------------------------------------------------------ TLS
    def tls_start_client(self, data: tls.TlsData) -> None:
        if self.rt:
            conn = self.rt.server_tls(data.context.client.proxy_mode.full_spec)
            if conn is not None:
                data.ssl_conn = conn

    def tls_established_client(self, data: tls.TlsData) -> None:
        if self.rt and data.ssl_conn is not None:
            self.rt.client_tls_established(data.conn.id, data.context.client.proxy_mode.full_spec, data.ssl_conn)

    def tls_failed_client(self, data: tls.TlsData) -> None:
        if self.rt:
            info = data.ssl_conn.get_app_data() if data.ssl_conn is not None else None
            reason = getattr(info, "error", None) or data.conn.error
            log.warning("TLS handshake from %s refused on %s: %s", data.conn.peername,
                        self.rt.listener_role(data.context.client.proxy_mode.full_spec), reason)

    def tls_start_server(self, data: tls.TlsData) -> None:
        if self.rt:
            conn = self.rt.upstream_tls(data.conn.address)
            if conn is not None:
                data.ssl_conn = conn

    def client_disconnected(self, client: Client) -> None:
        if self.rt:
            self.rt.forget_client(client.id)

    # ------------------------------------------------------------------ HTTP
    async def request(self, flow: http.HTTPFlow) -> None:
        if not self.rt or flow.response is not None:
            return
        role = self.rt.listener_role(flow.client_conn.proxy_mode.full_spec)
        try:
            if role in ("n32", "n32f"):
                await self._n32_request(flow, n32c_allowed=role == "n32")
            elif role == "sbi":
                await self._sbi_request(flow)
        except N32Error as e:
            self._fail(flow, e)
        except Exception as e:  # fail closed: never forward what we could not process
            log.exception("internal error on %s %s", flow.request.method, flow.request.path)
            self._fail(flow, N32Error(500, "SYSTEM_FAILURE", f"internal error: {type(e).__name__}: {e}"))

    def response(self, flow: http.HTTPFlow) -> None:
        state = flow.metadata.get("n32")
        if not self.rt or not state or state.get("answered"):
            return
        try:
            if state["role"] == "sending" and state.get("mode") == "PRINS":
                self.rt.restore_response(flow)
            elif state["role"] == "receiving":
                self.rt.protect_response(flow)
            elif state["role"] in ("sending", "tls-receiving") and state.get("method"):
                self.rt.tls_mode_response(flow)
        except N32Error as e:
            self._fail(flow, e)

    def error(self, flow: http.HTTPFlow) -> None:
        state = flow.metadata.get("n32")
        if self.rt and state and flow.response is None and flow.error:
            # Upstream unreachable: answer instead of dropping the stream (TS 29.500 §5.2.7.2).
            err = N32Error(504 if "timed out" in flow.error.msg.lower() else 502,
                           "TARGET_NF_NOT_REACHABLE" if state["role"] == "receiving" else "N32_PEER_NOT_REACHABLE",
                           f"upstream failed: {flow.error.msg}")
            self.rt.log_failure(state, err)

    # ------------------------------------------------------------------ N32 listener
    async def _n32_request(self, flow: http.HTTPFlow, n32c_allowed: bool = True) -> None:
        rt = self.rt
        assert rt is not None
        peer = rt.peer_of_client(flow.client_conn.id)
        ipx = rt.ipx_of_client(flow.client_conn.id)
        path = flow.request.path.split("?", 1)[0]
        if ipx is not None and path == N32F_PROCESS and flow.request.method == "POST":
            # N32-f relayed by a roaming intermediary we contract (PRINS only; never N32-c)
            await rt.open_n32f_request(flow, None, _json_body(flow.request, rt.max_body), via_ipx=ipx)
            return
        if peer is None:
            raise N32Error(403, "PEER_NOT_AUTHENTICATED",
                           "N32 requires mutual TLS with a certificate of a configured roaming partner")
        if path.startswith(N32C_PREFIX) and not n32c_allowed:
            raise N32Error(404, "RESOURCE_URI_STRUCTURE_NOT_FOUND",
                           f"{path}: N32-c is served on listeners.n32, this is the N32-f listener")
        if path.startswith(N32C_PREFIX):
            operation = path[len(N32C_PREFIX):]
            body = _json_body(flow.request, MAX_N32C_BODY)
            status, rsp_body = await rt.n32c_handle(flow.client_conn.id, peer, flow.request.method, operation, body)
            flow.response = flowconv.json_response(status, rsp_body)
            flow.metadata["n32"] = {"role": "n32c", "answered": True, "peer": peer.fqdn, "operation": operation}
        elif path == N32F_PROCESS and flow.request.method == "POST":
            await rt.open_n32f_request(flow, peer, _json_body(flow.request, rt.max_body))
        elif path.startswith(("/n32c-handshake/", "/n32f-forward/")):
            raise N32Error(404, "RESOURCE_URI_STRUCTURE_NOT_FOUND", f"no such N32 resource: {flow.request.method} {path}")
        else:
            await rt.tls_mode_inbound(flow, peer)

    # ------------------------------------------------------------------ SBI listener (our NFs)
    async def _sbi_request(self, flow: http.HTTPFlow) -> None:
        rt = self.rt
        assert rt is not None
        if rt.answer_mapping(flow):
            return
        await rt.send_outbound(flow, wait=ctx.options.sepp_handshake_wait)

    def _fail(self, flow: http.HTTPFlow, err: N32Error) -> None:
        state = flow.metadata.setdefault("n32", {"role": "local"})
        state["answered"] = True
        state["error"] = {"status": err.status, "cause": err.cause, "detail": err.detail}
        flow.response = flowconv.problem_response(err)
        if self.rt:
            self.rt.log_failure(state, err, peer_hint=state.get("peer"))
            if err.n32f_error_type and state.get("report_to"):
                self._spawn(self.rt.report_n32f_error(state["report_to"], err, state.get("messageId"),
                                                      state.get("peerContextId")))


def _json_body(req: http.Request, limit: int) -> Any:
    if req.method != "POST":
        raise N32Error(405, "METHOD_NOT_ALLOWED", f"{req.method} is not allowed here; use POST")
    raw = req.raw_content or b""
    if len(raw) > limit:
        raise N32Error(413, "PAYLOAD_TOO_LARGE", f"body of {len(raw)} octets exceeds {limit}")
    ctype = (req.headers.get("content-type") or "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise N32Error(415, "UNSUPPORTED_MEDIA_TYPE", f"content-type must be application/json, got {ctype or 'none'!r}")
    try:
        return json.loads(req.get_content(strict=False) or b"")
    except (ValueError, UnicodeDecodeError) as e:
        raise errors.bad_request(f"body is not valid JSON: {e}", cause="INVALID_MSG_FORMAT") from None


addons = [_sepp := Sepp(), listeners.Listeners(lambda spec: _sepp.rt.listener_transport(spec) if _sepp.rt else None)]
