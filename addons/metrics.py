"""Prometheus metrics of a SEPP (``--set metrics_port=N``; names and labels in docs/metrics.md).

Counted from what the SEPP already records: the typed exchange each flow carries (n32.exchange:
role, peer, mode, counts, error cause) and the relation observers of addons/relations.py
(handshake outcomes, rekeys); the number of N32-f contexts is read from the relations at scrape
time. Served by prometheus_client's own HTTP server on ``metrics_host:metrics_port`` (default
127.0.0.1, off unless a port is set), one registry per SEPP process.
"""
from __future__ import annotations

import bisect
import logging
from typing import Any, Callable, Iterator

from mitmproxy import ctx, exceptions, http
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.utils import floatToGoString

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


class _Tally:
    """A counter family (``<name>_total{labels}``) counted in plain numbers per label values and
    made into samples when scraped. prometheus_client's Counter takes a lock and checks its
    argument on every increment, and its Histogram walks its buckets: 4.7 µs for the counts of
    one exchange, on every request of both SEPPs (docs/benchmarks.md). The SEPP counts from its
    event loop only; the scraping thread reads copies (made under the GIL: never a torn count)."""

    def __init__(self, name: str, doc: str, labels: list[str], registry: CollectorRegistry) -> None:
        self.name, self.doc, self.labels = name, doc, labels
        self.counts: dict[tuple[str, ...], float] = {}
        registry.register(self)

    def inc(self, *values: str, amount: float = 1) -> None:
        self.counts[values] = self.counts.get(values, 0) + amount

    def describe(self) -> list[CounterMetricFamily]:
        return [CounterMetricFamily(self.name, self.doc, labels=self.labels)]

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(self.name, self.doc, labels=self.labels)
        for values, n in self.counts.copy().items():
            family.add_metric(list(values), n)
        yield family


class _Latencies:
    """A histogram family (``<name>_bucket/_sum/_count``), kept as :class:`_Tally` keeps counts:
    per label values, the number of observations in each bucket and their sum."""

    def __init__(self, name: str, doc: str, labels: list[str], buckets: tuple[float, ...],
                 registry: CollectorRegistry) -> None:
        self.name, self.doc, self.labels, self.bounds = name, doc, labels, buckets
        self.data: dict[tuple[str, ...], list[float]] = {}   # values -> [per bucket ..., +Inf, sum]
        registry.register(self)

    def observe(self, seconds: float, *values: str) -> None:
        d = self.data.get(values)
        if d is None:
            d = self.data[values] = [0] * (len(self.bounds) + 1) + [0.0]
        d[bisect.bisect_left(self.bounds, seconds)] += 1     # the first bucket with le >= seconds
        d[-1] += seconds

    def describe(self) -> list[HistogramMetricFamily]:
        return [HistogramMetricFamily(self.name, self.doc, labels=self.labels)]

    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = HistogramMetricFamily(self.name, self.doc, labels=self.labels)
        for values, d in list(self.data.items()):
            d = list(d)
            total, buckets = 0.0, []
            for bound, n in zip((*map(floatToGoString, self.bounds), "+Inf"), d[:-1]):
                total += n
                buckets.append((bound, total))
            family.add_metric(list(values), buckets, d[-1])
        yield family


class SeppMetrics:
    def __init__(self, runtime: Callable[[], Any]) -> None:
        self._runtime = runtime
        self._server: Any = None
        self._observed: Any = None
        r = self.registry = CollectorRegistry()
        self.handshakes = _Tally("sepp_n32c_handshakes", "N32-c handshakes by outcome (ok or the cause)",
                                 ["peer", "role", "outcome"], r)
        self.rekeys = _Tally("sepp_n32c_rekeys", "Rekeys this SEPP initiated that completed", ["peer"], r)
        self.messages = _Tally("sepp_n32f_messages", "N32-f requests sent to / received from a peer",
                               ["peer", "direction", "mode"], r)
        self.protected = _Tally("sepp_n32f_protected", "N32-f messages this SEPP protected (PRINS JWE)",
                                ["peer", "kind"], r)
        self.verified = _Tally("sepp_n32f_verified", "N32-f messages this SEPP verified and restored (PRINS)",
                               ["peer", "kind"], r)
        self.rejected = _Tally("sepp_n32f_rejected", "Exchanges refused with a ProblemDetails, by cause",
                               ["peer", "role", "cause"], r)
        self.encrypted = _Tally("sepp_n32f_encrypted_ies", "IEs encrypted in protected N32-f messages", ["peer"], r)
        self.ipx = _Tally("sepp_n32f_ipx_modifications", "IPX modifications verified, per IPX", ["peer", "ipx"], r)
        self.latency = _Latencies("sepp_hop_latency_seconds", "Time from the message entering the SEPP to its "
                                  "answer, by the hop it waited for (peer: the N32-f path and the peer's home "
                                  "NF; nf: our home NF)", ["peer", "hop"], BUCKETS, r)
        r.register(_Contexts(lambda: self._rt_describe()))

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
            self.handshakes.inc(peer, role, outcome)
        elif kind == "rekey":
            self.rekeys.inc(peer)

    def observe(self, flow: http.HTTPFlow) -> None:
        ex = of_metadata(flow.metadata)
        if ex is None or ex.role in ("n32c", "local"):      # N32-c outcomes: sepp_n32c_handshakes
            return
        peer = ex.peer or UNKNOWN
        if ex.error:   # refused before a role was known: by the listener it arrived on
            where = ex.role or (ex.listener.value if ex.listener else UNKNOWN)
            self.rejected.inc(peer, where, str(ex.error.get("cause") or ex.error.get("status")))
        if ex.role not in ("sending", "receiving", "tls-receiving"):
            return
        sending = ex.role == "sending"
        mode = ex.mode or ("TLS" if ex.role == "tls-receiving" else "PRINS")
        if ex.peer:
            self.messages.inc(peer, "sent" if sending else "received", mode)
        prins = mode == "PRINS" and ex.role != "tls-receiving"
        if prins and ex.peer and not ex.error:
            # sending: we protected the request, verified the peer's response; receiving: the reverse
            self.protected.inc(peer, "request" if sending else "response")
            self.verified.inc(peer, "response" if sending else "request")
            self.encrypted.inc(peer, amount=ex.encrypted if sending else ex.encrypted_response)
            for ipx in ex.ipx_modified_by:
                self.ipx.inc(peer, ipx)
        end = (flow.response.timestamp_end if flow.response else None) or (flow.error.timestamp if flow.error else None)
        if ex.peer and end and flow.request.timestamp_start:
            self.latency.observe(max(0.0, end - flow.request.timestamp_start), peer, "peer" if sending else "nf")

    response = error = observe
