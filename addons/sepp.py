"""mitm-sepp: the SEPP as a mitmproxy addon.

    mitmdump -s addons/sepp.py --set sepp_config=lab/sepp-v.yaml [--set n32_keylog=FILE]

Listeners come from the config (N32 with mutual TLS; NF-facing SBI). This module only adapts
mitmproxy hooks to the sans-I/O core in ``n32/``: TLS contexts (n32io.tls), N32-c requests to
the handshake responder (addons/relations.py), every HTTP flow to the engine (``n32.engine``)
through ``addons/runtime.py``.
"""
from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from mitmproxy import command, ctx, exceptions, http, tls
from mitmproxy.connection import Client

from addons import flowlabel, listeners, metrics, n32cflows
from addons.runtime import SeppRuntime
from n32io import heap, tls as n32tls

log = logging.getLogger("sepp")


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
            # body_size_limit: mitmproxy buffers a request body whole before any hook, without
            # bound by default (a 200 MB body grew the SEPP by 200 MB); over limits.body it is
            # refused anyway, so mitmproxy refuses it as it arrives: 413 PAYLOAD_TOO_LARGE
            # (addons/listener_layers.py), at once when a content-length says so.
            ctx.options.update(mode=self.rt.modes(), connection_strategy="lazy", keep_host_header=True,
                               body_size_limit=str(self.rt.cfg.limits.body))
            log.info("SEPP %s (%s) configured: PLMN %s, %d peer(s)", self.rt.cfg.name, self.rt.cfg.fqdn,
                     ",".join(map(str, self.rt.cfg.plmn_ids)), len(self.rt.cfg.peers))
            # identity disagreements are accepted (lab setups) but peers may refuse them: say so
            for warning in self.rt.cfg.warnings:
                log.warning("%s", warning)

    async def running(self) -> None:
        if self.rt:
            # mitmproxy loads -s scripts in a deferred task that races the first setup_servers(),
            # which may therefore have started the default listener: bring up ours now.
            await ctx.master.addons.get("proxyserver").setup_servers()
            # our own N32-c requests (as initiator) are listed with the flows mitmproxy saw
            self.rt.relations.sent_observers.append(lambda sent: self._spawn(n32cflows.show(sent, ctx.master)))
            self.rt.start_background(self._spawn)
            # flows are kept (and shown) through mitmproxy's Save addon and the views of masters
            # that have it; the slim runner has none of them
            self.rt.display = ctx.master.addons.get("save") is not None
            heap.freeze_startup_objects()    # configured and listening: what exists now lives on

    async def done(self) -> None:
        # SIGTERM/SIGINT: end every relation (n32f-terminate / ["NONE"]) within a few seconds,
        # then stop our tasks and wait for them, so that nothing is left to print a traceback.
        if self.rt:
            try:
                await self.rt.relations.shutdown()
                # a peer stopping at the same time may be releasing towards us: let its N32-c
                # connections end rather than cut them (their handler tasks would print tracebacks)
                await self.rt.n32_clients_gone(1.0)
            except Exception as e:  # shutting down: report, never raise
                log.warning("ending the N32 relations failed: %s", e)
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self.rt:
            await self.rt.close()

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
        self._spawn(rt.relations.handshake(self._peer(rt, peer)))

    @command.command("sepp.rekey")
    def cmd_rekey(self, peer: str) -> None:
        """New N32-c handshake towards PEER: new context IDs and keys; the old context is terminated
        after contexts.rekey_grace seconds."""
        rt = self._need_rt()
        self._spawn(rt.relations.handshake(self._peer(rt, peer), rekey=True))

    @command.command("sepp.terminate")
    def cmd_terminate(self, peer: str) -> None:
        """Terminate the N32-f context (PRINS) or release the TLS relation with PEER."""
        rt = self._need_rt()
        self._spawn(rt.relations.terminate(self._peer(rt, peer)))

    @command.command("sepp.contexts")
    def cmd_contexts(self) -> str:
        """The N32 relations and N32-f contexts this SEPP holds (no key material)."""
        return json.dumps(self._need_rt().relations.describe(), indent=2)

    @staticmethod
    def _peer(rt: SeppRuntime, name: str) -> Any:
        try:
            return rt.relations.peer(name)
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
            reason = getattr(info, "error", None) or n32tls.handshake_failure(data.conn.error)
            log.warning("TLS handshake from %s refused on %s: %s", data.conn.peername,
                        self.rt.listener_role(data.context.client.proxy_mode.full_spec), reason)

    def client_disconnected(self, client: Client) -> None:
        if self.rt:
            self.rt.forget_client(client.id)

    # ------------------------------------------------------------------ HTTP
    async def request(self, flow: http.HTTPFlow) -> None:
        if self.rt and flow.response is None:
            await self.rt.request(flow, wait=ctx.options.sepp_handshake_wait)

    def response(self, flow: http.HTTPFlow) -> None:
        # the answer was made in the request hook (SeppRuntime.request): only the label is left
        if self.rt:
            self.rt.label_safely(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        if self.rt:
            self.rt.error(flow)
            self.rt.label_safely(flow)


# metrics after the SEPP: its hooks see each exchange as the SEPP finished it
addons = [_sepp := Sepp(), listeners.Listeners(lambda spec: _sepp.rt.listener_transport(spec) if _sepp.rt else None),
          metrics.SeppMetrics(lambda: _sepp.rt), flowlabel.WebColumns("sepp-web-columns")]
