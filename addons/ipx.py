"""A roaming intermediary (IPX / roaming hub) on the N32-f path, as a mitmproxy addon.

    mitmdump -s addons/ipx.py --set ipx_config=lab/out/ipx1.yaml

It accepts N32-f (``POST /n32f-forward/v1/n32f-process``) over mutual TLS from a SEPP or the
previous intermediary; ``n32.ipx_relay`` decides (refuse, or append its signed modification and
forward to the next hop towards the receiving SEPP named in ``3gpp-Sbi-Target-apiRoot``); the
response comes back through the same flow and is treated the same way (TS 33.501 §13.2.4.5:
pIPX first on responses). This module performs those decisions.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mitmproxy import ctx, exceptions, http, tls

import policies
from addons import flowconv, flowlabel, listeners
from n32 import config, ipx_relay, label, prins
from n32.body import DEFAULT as BODY_LIMITS
from n32.errors import N32Error
from n32io import admission, heap, tls as n32tls
from n32io.transport import UpstreamError
from n32io.upstream import Hop, Upstream

log = logging.getLogger("ipx")


class Ipx:
    def __init__(self) -> None:
        self.cfg: Any = None
        self.relay: ipx_relay.Relay | None = None
        self.counts = {"request": 0, "response": 0}
        # an IPX has no placement files of its own: API names from the shipped ones
        self.apis = label.load_api_names([Path(policies.DIR) / "placement"])

    def load(self, loader: Any) -> None:
        loader.add_option("ipx_config", str | None, None, "IPX configuration YAML (see docs/configuration.md).")

    def configure(self, updated: set[str]) -> None:
        if "ipx_config" in updated and ctx.options.ipx_config:
            try:
                self.cfg = config.load_ipx_config(Path(ctx.options.ipx_config))
                self.relay = ipx_relay.Relay(self.cfg, Path(self.cfg.private_key).read_bytes())
            except Exception as e:  # ConfigError carries "<file>: <key>: <problem>"
                raise exceptions.OptionsError(str(e)) from None
            self._server = n32tls.server_context(self.cfg.certificate, self.cfg.private_key,
                                                 client_anchors=list(self.cfg.trust_anchors))
            self._client = n32tls.client_context(certificate=self.cfg.certificate, private_key=self.cfg.private_key,
                                                 anchors=list(self.cfg.trust_anchors))
            # the next hop is dialled here, as the SEPP does (docs/architecture.md, "Next hops")
            self.upstream = Upstream(idle_timeout=self.relay.idle)
            lst = self.cfg.listeners.n32f
            self._mode = f"reverse:http://127.0.0.1:9@{lst.host}:{lst.port}"
            # a body over the JSON limit the relay parses with is refused as it arrives, not buffered
            # whole (addons/sepp.py)
            ctx.options.update(mode=[self._mode], connection_strategy="lazy", body_size_limit=str(BODY_LIMITS.body))
            log.info("IPX %s listening on %s:%s with %d rule(s)", self.cfg.fqdn, lst.host, lst.port,
                     len(self.relay.rules))

    async def running(self) -> None:
        if self.cfg:  # see addons/sepp.py: our listener replaces mitmproxy's default one
            await ctx.master.addons.get("proxyserver").setup_servers()
            heap.freeze_startup_objects()

    def tls_start_client(self, data: tls.TlsData) -> None:
        if self.cfg:
            data.ssl_conn = n32tls.server_connection(self._server, alpn=(b"h2",))

    async def done(self) -> None:
        if self.relay:
            await self.upstream.close()

    async def request(self, flow: http.HTTPFlow) -> None:
        if not self.relay or flow.response is not None:
            return
        flow.metadata["ipx_clear"] = _clear_line(flow.request.get_content(strict=False))
        out = self.relay.request(flowconv.to_http_request(flow.request))
        if isinstance(out, ipx_relay.Answer):
            flow.response = flowconv.response_from(out.response)
            flow.metadata["ipx"] = {"identity": self.cfg.fqdn}
            if out.rejected is not None:
                flow.metadata["ipx"]["rejected"] = out.rejected
            self._label(flow)
            return
        parts = urlsplit(out.uri)
        flow.request.scheme, flow.request.host, flow.request.port = "https", parts.hostname, parts.port or 443
        flow.request.content = out.body
        flow.metadata["ipx"] = meta = {"identity": self.cfg.fqdn, "requestOperations": out.operations,
                                       "nextHop": out.uri, "nextHopName": out.server_name}
        self.counts["request"] += 1
        hop = Hop(parts.hostname or "", parts.port or 443, "h2", self._client, out.server_name)
        try:
            rsp = await self.upstream.send(hop, flowconv.to_http_request(flow.request), self.relay.deadline)
        except UpstreamError as e:  # the address stays in our log, never in the answer
            log.warning("IPX %s: next hop %s at %s:%d failed (%s): %s", self.cfg.fqdn, out.server_name, hop.host,
                        hop.port, e.kind, e)
            meta["failed"] = e.kind
            flow.response = flowconv.response_from(self.relay.next_hop_failed(e.kind))
            return
        flow.response = flowconv.response_from(rsp)

    def _label(self, flow: http.HTTPFlow) -> None:
        meta = flow.metadata.get("ipx") or {}
        rsp = flow.response
        try:  # a label is for people: it never changes what happens to the message
            self._apply_label(flow, meta, rsp)
        except Exception:
            log.exception("labelling an IPX flow failed")

    def _apply_label(self, flow: http.HTTPFlow, meta: dict, rsp: http.Response | None) -> None:
        flowlabel.apply(flow, label.ipx_label(self.cfg.fqdn, meta, self.apis, rsp.status_code if rsp else None,
                                              flow.metadata.get("ipx_clear")),
                        bool(meta.get("rejected")) or (rsp is not None and rsp.status_code >= 400))

    def error(self, flow: http.HTTPFlow) -> None:
        if self.relay and "ipx" in flow.metadata:
            self._label(flow)

    def response(self, flow: http.HTTPFlow) -> None:
        meta = flow.metadata.get("ipx")
        if self.relay and meta:
            self._response(flow, meta)
            self._label(flow)

    def _response(self, flow: http.HTTPFlow, meta: dict) -> None:
        if meta.get("rejected") or meta.get("failed") or flow.response is None or flow.response.status_code != 200:
            return
        out = self.relay.response(flow.response.get_content(strict=False) or b"")
        if isinstance(out, str):
            log.warning("IPX %s: %s", self.cfg.fqdn, out)
            return
        flow.response.content, meta["responseOperations"] = out
        self.counts["response"] += 1


def _clear_line(body: bytes | None) -> dict | None:
    """The request line and context of the clear part of N32-f, readable by an IPX (TS 33.501
    §13.2.4.1), kept on the flow for its label."""
    try:
        block = prins.peek(json.loads(body or b"")).block
    except (N32Error, ValueError, TypeError, AttributeError, RecursionError):  # hostile bodies too
        return None
    line, md = block.get("requestLine"), block.get("metaData")
    return {"requestLine": {k: line.get(k) for k in ("method", "path")} if isinstance(line, dict) else None,
            "metaData": {"n32fContextId": md.get("n32fContextId")} if isinstance(md, dict) else None}


_IPX_LISTENER = admission.Listener("listeners.n32f", tls=True)
addons = [_ipx := Ipx(), listeners.Listeners(lambda spec: _IPX_LISTENER if _ipx.cfg and spec == _ipx._mode else None),
          flowlabel.WebColumns("ipx-web-columns")]
