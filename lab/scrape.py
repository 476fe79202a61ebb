"""The lab's per-peer summary from the SEPPs' Prometheus metrics (docs/metrics.md).

Each lab SEPP serves its metrics on ``lab.port("<sepp>.metrics")``; this scrapes them with
prometheus_client's own text parser and sums them per peer.
"""
from __future__ import annotations

import urllib.request
from collections import defaultdict

from prometheus_client.parser import text_string_to_metric_families


def scrape(port: int, timeout: float = 5.0) -> dict[str, list[tuple[dict[str, str], float]]]:
    """``{sample name: [(labels, value), ...]}`` of one SEPP's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout) as rsp:
        text = rsp.read().decode()
    samples: dict[str, list[tuple[dict[str, str], float]]] = defaultdict(list)
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[s.name].append((dict(s.labels), s.value))
    return samples


def per_peer(samples: dict[str, list[tuple[dict[str, str], float]]]) -> dict[str, dict[str, float]]:
    """Per peer: handshakes ok/failed, messages sent/received, protected, verified, rejected,
    IEs encrypted, contexts and the mean time waited for the peer's or our NF's answer (ms)."""
    out: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))

    def add(name: str, key: str, keep=lambda labels: True) -> None:
        for labels, value in samples.get(name, []):
            if keep(labels):
                out[labels.get("peer", "?")][key] += value

    add("sepp_n32c_handshakes_total", "handshakes ok", lambda lb: lb.get("outcome") == "ok")
    add("sepp_n32c_handshakes_total", "handshakes failed", lambda lb: lb.get("outcome") != "ok")
    add("sepp_n32c_rekeys_total", "rekeys")
    add("sepp_n32f_messages_total", "sent", lambda lb: lb.get("direction") == "sent")
    add("sepp_n32f_messages_total", "received", lambda lb: lb.get("direction") == "received")
    add("sepp_n32f_protected_total", "protected")
    add("sepp_n32f_verified_total", "verified")
    add("sepp_n32f_rejected_total", "rejected")
    add("sepp_n32f_encrypted_ies_total", "IEs encrypted")
    add("sepp_n32f_contexts", "contexts")
    add("sepp_hop_latency_seconds_sum", "_sum")
    add("sepp_hop_latency_seconds_count", "_count")
    for values in out.values():
        count, total = values.pop("_count", 0.0), values.pop("_sum", 0.0)
        values["mean ms"] = round(1000 * total / count, 2) if count else 0.0
    return {peer: dict(v) for peer, v in out.items()}


def summary_lines(name: str, port: int) -> list[str]:
    lines = []
    for peer, v in sorted(per_peer(scrape(port)).items()):
        lines.append(f"{name} -> {peer}: " + ", ".join(f"{k} {int(x) if float(x).is_integer() else x}"
                                                     for k, x in v.items()))
    return lines
