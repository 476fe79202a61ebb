"""Prometheus metrics of a SEPP (``--set metrics_port=N``; names and labels in docs/metrics.md).

Counted from what the SEPP already records: the typed exchange each flow carries (n32.exchange:
role, peer, mode, counts, error cause) and the relation observers of addons/relations.py
(handshake outcomes, rekeys); the number of N32-f contexts is read from the relations at scrape
time. Served by prometheus_client's own HTTP server on ``metrics_host:metrics_port`` (default
127.0.0.1, off unless a port is set), one registry per SEPP process.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Iterator

from mitmproxy import ctx, exceptions, http
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily

from n32.exchange import of_metadata

log = logging.getLogger("sepp")
UNKNOWN = "unknown"     # peer label of a message refused before its peer was known
# buckets for loopback labs and real links alike (seconds)
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _Contexts:
    """``sepp_n32f_contexts{peer}``: the N32-f contexts held per peer, read when scraped."""

    def __init__(self, describe: Callable[[], dict | None]) -> None:
        self._describe = describe

    def collect(self) -> Iterator[GaugeMetricFamily]:
        g = GaugeMetricFamily("sepp_n32f_contexts", "N32-f contexts held (current and, after a rekey, "
                              "the old one until retired)", labels=["peer"])
        for peer, state in ((self._describe() or {}).get("peers") or {}).items():
            g.add_metric([peer], len(state.get("contexts") or []))
        yield g


class SeppMetrics:
    def __init__(self, runtime: Callable[[], Any]) -> None:
        self._runtime = runtime
        self._server: Any = None
        self._observed: Any = None
        r = self.registry = CollectorRegistry()
        self.handshakes = Counter("sepp_n32c_handshakes", "N32-c handshakes by outcome (ok or the cause)",
                                  ["peer", "role", "outcome"], registry=r)
        self.rekeys = Counter("sepp_n32c_rekeys", "Rekeys this SEPP initiated that completed", ["peer"], registry=r)
        self.messages = Counter("sepp_n32f_messages", "N32-f requests sent to / received from a peer",
                                ["peer", "direction", "mode"], registry=r)
        self.protected = Counter("sepp_n32f_protected", "N32-f messages this SEPP protected (PRINS JWE)",
                                 ["peer", "kind"], registry=r)
        self.verified = Counter("sepp_n32f_verified", "N32-f messages this SEPP verified and restored (PRINS)",
                                ["peer", "kind"], registry=r)
        self.rejected = Counter("sepp_n32f_rejected", "Exchanges refused with a ProblemDetails, by cause",
                                ["peer", "role", "cause"], registry=r)
        self.encrypted = Counter("sepp_n32f_encrypted_ies", "IEs encrypted in protected N32-f messages",
                                 ["peer"], registry=r)
        self.ipx = Counter("sepp_n32f_ipx_modifications", "IPX modifications verified, per IPX",
                           ["peer", "ipx"], registry=r)
        self.latency = Histogram("sepp_hop_latency_seconds", "Time from the message entering the SEPP to its "
                                 "answer, by the hop it waited for (peer: the N32-f path and the peer's home "
                                 "NF; nf: our home NF)", ["peer", "hop"], buckets=BUCKETS, registry=r)
        r.register(_Contexts(lambda: self._rt_describe()))
        # labels() validates and locks on every call: the children are kept here (no more of them
        # than the registry holds anyway: label values come from configured peers and known causes)
        self._children: dict[tuple, Any] = {}

    def _child(self, metric: Any, *values: str) -> Any:
        key = (id(metric), *values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    def _rt_describe(self) -> dict | None:
        rt = self._runtime()
        return rt.relations.describe() if rt else None

    # ------------------------------------------------------------------ options, lifecycle
    def load(self, loader: Any) -> None:
        loader.add_option("metrics_port", int, 0, "Serve Prometheus metrics on this port (0: off). docs/metrics.md")
        loader.add_option("metrics_host", str, "127.0.0.1", "Address of the Prometheus metrics listener.")

    def configure(self, updated: set[str]) -> None:
        rt = self._runtime()
        if rt is not None and rt is not self._observed:     # a new sepp_config: observe its relations
            rt.relations.observers.append(self.relation_event)
            self._observed = rt
        if {"metrics_port", "metrics_host"} & updated and ctx.options.metrics_port:
            self._stop()
            try:
                self._server = start_http_server(ctx.options.metrics_port, ctx.options.metrics_host,
                                                 registry=self.registry)
            except OSError as e:
                raise exceptions.OptionsError(f"metrics_port: {ctx.options.metrics_host}:"
                                              f"{ctx.options.metrics_port}: {e.strerror or e}") from None
            log.info("Prometheus metrics on http://%s:%d/metrics", ctx.options.metrics_host, ctx.options.metrics_port)

    def done(self) -> None:
        self._stop()

    def _stop(self) -> None:
        if self._server is not None:
            server, _thread = self._server
            server.shutdown()
            server.server_close()
            self._server = None

    # ------------------------------------------------------------------ what is counted
    def relation_event(self, kind: str, peer: str, role: str, outcome: str) -> None:
        if kind == "handshake":
            self.handshakes.labels(peer, role, outcome).inc()
        elif kind == "rekey":
            self.rekeys.labels(peer).inc()

    def observe(self, flow: http.HTTPFlow) -> None:
        ex = of_metadata(flow.metadata)
        if ex is None or ex.role in ("n32c", "local"):      # N32-c outcomes: sepp_n32c_handshakes
            return
        peer = ex.peer or UNKNOWN
        if ex.error:   # refused before a role was known: by the listener it arrived on
            where = ex.role or (ex.listener.value if ex.listener else UNKNOWN)
            self._child(self.rejected, peer, where, str(ex.error.get("cause") or ex.error.get("status"))).inc()
        if ex.role not in ("sending", "receiving", "tls-receiving"):
            return
        sending = ex.role == "sending"
        mode = ex.mode or ("TLS" if ex.role == "tls-receiving" else "PRINS")
        if ex.peer:
            self._child(self.messages, peer, "sent" if sending else "received", mode).inc()
        prins = mode == "PRINS" and ex.role != "tls-receiving"
        if prins and ex.peer and not ex.error:
            # sending: we protected the request, verified the peer's response; receiving: the reverse
            self._child(self.protected, peer, "request" if sending else "response").inc()
            self._child(self.verified, peer, "response" if sending else "request").inc()
            self._child(self.encrypted, peer).inc(ex.encrypted if sending else ex.encrypted_response)
            for ipx in ex.ipx_modified_by:
                self._child(self.ipx, peer, ipx).inc()
        end = (flow.response.timestamp_end if flow.response else None) or (flow.error.timestamp if flow.error else None)
        if ex.peer and end and flow.request.timestamp_start:
            self._child(self.latency, peer, "peer" if sending else "nf").observe(max(0.0, end - flow.request.timestamp_start))

    response = error = observe
