"""A roaming intermediary (IPX / roaming hub) on the N32-f path, as a mitmproxy addon.

    mitmdump -s addons/ipx.py --set ipx_config=lab/out/ipx1.yaml

It accepts N32-f (``POST /n32f-forward/v1/n32f-process``) over mutual TLS from a SEPP or the
previous intermediary, appends its signed modification (``n32.ipx.modify``) and forwards the
message to its next hop; the response comes back through the same flow and is treated the same
way (TS 33.501 §13.2.4.5: pIPX first on responses). The next hop is chosen by the receiving
SEPP named in ``3gpp-Sbi-Target-apiRoot`` of the N32-f request (our interop profile).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mitmproxy import ctx, exceptions, http, tls

from addons import flowconv, listeners
from n32 import config, ipx, rh_error, wire
from n32.errors import N32Error
from n32io import admission, tls as n32tls

log = logging.getLogger("ipx")
N32F_PROCESS = wire.N32F_PROCESS
TARGET = wire.TARGET_API_ROOT


class Ipx:
    def __init__(self) -> None:
        self.cfg: Any = None
        self.rules: list[ipx.Rule] = []
        self.counts = {"request": 0, "response": 0}

    def load(self, loader: Any) -> None:
        loader.add_option("ipx_config", str | None, None, "IPX configuration YAML (see docs/configuration.md).")

    def configure(self, updated: set[str]) -> None:
        if "ipx_config" in updated and ctx.options.ipx_config:
            try:
                self.cfg = config.load_ipx_config(Path(ctx.options.ipx_config))
            except Exception as e:
                raise exceptions.OptionsError(str(e)) from None
            self.key = Path(self.cfg.private_key).read_bytes()
            self.rules = [ipx.Rule(direction=m.direction, method=m.method, path=m.path, peer=m.peer,
                                   patch=tuple(m.patch), set_headers=tuple(m.set_headers.items()))
                          for m in self.cfg.modifications if not m.reject]
            self.rejects = [(ipx.Rule(direction="request", method=m.method, path=m.path, peer=m.peer), m.reject)
                            for m in self.cfg.modifications if m.reject]
            self._server = n32tls.server_context(self.cfg.certificate, self.cfg.private_key,
                                                 client_anchors=list(self.cfg.trust_anchors))
            self._client = n32tls.client_context(certificate=self.cfg.certificate, private_key=self.cfg.private_key,
                                                 anchors=list(self.cfg.trust_anchors))
            self._upstreams: dict[tuple[str, int], str] = {}
            lst = self.cfg.listeners.n32f
            self._mode = f"reverse:http://127.0.0.1:9@{lst.host}:{lst.port}"
            ctx.options.update(mode=[self._mode], connection_strategy="lazy")
            log.info("IPX %s listening on %s:%s with %d rule(s)", self.cfg.fqdn, lst.host, lst.port, len(self.rules))

    async def running(self) -> None:
        if self.cfg:  # see addons/sepp.py: our listener replaces mitmproxy's default one
            await ctx.master.addons.get("proxyserver").setup_servers()

    def tls_start_client(self, data: tls.TlsData) -> None:
        if self.cfg:
            data.ssl_conn = n32tls.server_connection(self._server, alpn=(b"h2",))

    def tls_start_server(self, data: tls.TlsData) -> None:
        name = self._upstreams.get(tuple(data.conn.address)) if self.cfg and data.conn.address else None
        if name:
            data.ssl_conn = n32tls.client_connection(self._client, name, alpn=(b"h2",))

    def request(self, flow: http.HTTPFlow) -> None:
        if not self.cfg or flow.response is not None:
            return
        try:
            if flow.request.path != N32F_PROCESS or flow.request.method != "POST":
                raise N32Error(404, "RESOURCE_URI_STRUCTURE_NOT_FOUND", "an IPX only relays n32f-process")
            target = flow.request.headers.get(TARGET, "")
            hop = self._next_hop(urlsplit(target).hostname or "")
            body = json.loads(flow.request.get_content(strict=False) or b"null")
            block = ipx.current_block(body)
            for rule, reject in self.rejects:
                if rule.matches("request", block):  # refuse delivery: a roaming hub error (§13.2.4.5.2a)
                    answer = rh_error.make(body, self.cfg.fqdn, self.key, int(reject.get("status", 403)),
                                           str(reject.get("cause", "CONTRACTUAL_REASONS")),
                                           str(reject.get("detail", "message not delivered for contractual reasons")))
                    flow.response = flowconv.json_response(200, answer)
                    flow.metadata["ipx"] = {"identity": self.cfg.fqdn, "rejected": reject}
                    return
            res = ipx.modify(body, self.cfg.fqdn, self.key, self.rules, "request")
            parts = urlsplit(hop.uri)
            self._upstreams[(parts.hostname, parts.port or 443)] = hop.server_name
            flow.request.scheme, flow.request.host, flow.request.port = "https", parts.hostname, parts.port or 443
            flow.request.content = json.dumps(res.body, separators=(",", ":")).encode()
            flow.metadata["ipx"] = {"identity": self.cfg.fqdn, "requestOperations": res.operations,
                                    "nextHop": hop.uri}
            self.counts["request"] += 1
        except N32Error as e:
            flow.response = flowconv.problem_response(e)
        except (ValueError, KeyError) as e:
            flow.response = flowconv.problem_response(N32Error(400, "INVALID_MSG_FORMAT", str(e)))

    def response(self, flow: http.HTTPFlow) -> None:
        if not self.cfg or "ipx" not in flow.metadata or flow.response is None or flow.response.status_code != 200 \
                or flow.metadata["ipx"].get("rejected"):
            return
        try:
            body = json.loads(flow.response.get_content(strict=False) or b"null")
            res = ipx.modify(body, self.cfg.fqdn, self.key, self.rules, "response")
        except (N32Error, ValueError, KeyError) as e:
            log.warning("IPX %s: response not modifiable: %s", self.cfg.fqdn, e)
            return
        flow.response.content = json.dumps(res.body, separators=(",", ":")).encode()
        flow.metadata["ipx"]["responseOperations"] = res.operations
        self.counts["response"] += 1

    def _next_hop(self, target_host: str) -> Any:
        for hop in self.cfg.next_hops:
            if not hop.peer or hop.peer == target_host:
                return hop
        raise N32Error(404, "NEXT_HOP_NOT_FOUND", f"no next hop towards {target_host or 'an unnamed SEPP'}")


_IPX_LISTENER = admission.Listener("listeners.n32f", tls=True)
addons = [_ipx := Ipx(), listeners.Listeners(lambda spec: _IPX_LISTENER if _ipx.cfg and spec == _ipx._mode else None)]
