"""addons/metrics.py counts in plain numbers and makes the samples when scraped: the exposition
is what prometheus_client's own Counter and Histogram give for the same observations."""
from __future__ import annotations

import random

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.exposition import generate_latest

from addons.metrics import BUCKETS, _Latencies, _Tally


def samples(registry: CollectorRegistry) -> set[tuple]:
    text = generate_latest(registry).decode()
    return {(s.name, tuple(sorted(s.labels.items())), s.value)
            for fam in text_string_to_metric_families(text) for s in fam.samples if not s.name.endswith("_created")}


def test_counts_and_latencies_expose_what_prometheus_client_would() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    tally = _Tally("sepp_test_messages", "doc", ["peer", "mode"], ours)
    counter = Counter("sepp_test_messages", "doc", ["peer", "mode"], registry=theirs)
    lat = _Latencies("sepp_test_latency_seconds", "doc", ["peer"], BUCKETS, ours)
    hist = Histogram("sepp_test_latency_seconds", "doc", ["peer"], buckets=BUCKETS, registry=theirs)
    rng = random.Random(7)
    for _ in range(500):
        peer, mode, n = rng.choice("ab"), rng.choice(["PRINS", "TLS"]), rng.choice([1, 3])
        tally.inc(peer, mode, amount=n)
        counter.labels(peer, mode).inc(n)
        seconds = rng.choice([0.0, 0.001, 0.0011, 0.5, 10.0, 11.0, rng.random()])   # edges: le is inclusive
        lat.observe(seconds, peer)
        hist.labels(peer).observe(seconds)
    assert samples(ours) == samples(theirs) and len(samples(ours)) > 30
    assert tally.counts[("a", "PRINS")] == counter.labels("a", "PRINS")._value.get()
