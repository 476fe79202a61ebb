"""Prometheus metrics of both lab SEPPs, scraped and parsed with prometheus_client's own parser:
handshake outcomes, N32-f messages protected/verified per peer, IEs encrypted, contexts,
latency histograms per hop, and a refused N32-f message counted by its cause."""
from __future__ import annotations

import json

from lab.run import client_ssl, run_traffic
from lab.scrape import per_peer, scrape
from lab.topology import HOME, VISITED, sepp_fqdn
from n32io.h2client import H2TlsClient
from tests.integration.conftest import peer_client_ctx, run

V, H = sepp_fqdn(VISITED), sepp_fqdn(HOME)


def value(samples: dict, name: str, **labels: str) -> float:
    return sum(v for lb, v in samples.get(name, []) if all(lb.get(k) == x for k, x in labels.items()))


async def _post_n32f(lab, raw: bytes):
    ctx = peer_client_ctx(lab.pki, VISITED, HOME)
    async with await H2TlsClient.connect("127.0.0.1", lab.port("sepp-h.n32"), ctx, server_name=H) as c:
        return await c.request("POST", "/n32f-forward/v1/n32f-process", body=raw,
                               headers=[("content-type", "application/json")])


def test_metrics_count_what_the_lab_did(prins_lab):
    lab, _ = prins_lab
    before_v, before_h = scrape(lab.port("sepp-v.metrics")), scrape(lab.port("sepp-h.metrics"))
    results = run_traffic(lab, 2)
    assert all(r.ok for r in results)
    n = len(results)
    v, h = scrape(lab.port("sepp-v.metrics")), scrape(lab.port("sepp-h.metrics"))

    def delta(now, then, name, **labels):
        return value(now, name, **labels) - value(then, name, **labels)

    # the handshake, once per side (the visited SEPP initiated it)
    assert value(v, "sepp_n32c_handshakes_total", peer=H, role="initiator", outcome="ok") == 1
    assert value(h, "sepp_n32c_handshakes_total", peer=V, role="responder", outcome="ok") == 1
    assert value(v, "sepp_n32f_contexts", peer=H) == 1 and value(h, "sepp_n32f_contexts", peer=V) == 1
    # every NF request: sent and protected by the cSEPP, received and verified by the pSEPP, and back
    assert delta(v, before_v, "sepp_n32f_messages_total", peer=H, direction="sent", mode="PRINS") == n
    assert delta(h, before_h, "sepp_n32f_messages_total", peer=V, direction="received", mode="PRINS") == n
    assert delta(v, before_v, "sepp_n32f_protected_total", peer=H, kind="request") == n
    assert delta(h, before_h, "sepp_n32f_verified_total", peer=V, kind="request") == n
    assert delta(h, before_h, "sepp_n32f_protected_total", peer=V, kind="response") == n
    assert delta(v, before_v, "sepp_n32f_verified_total", peer=H, kind="response") == n
    assert delta(v, before_v, "sepp_n32f_encrypted_ies_total", peer=H) > n      # SUPI, AVs, keys, ...
    assert delta(h, before_h, "sepp_n32f_encrypted_ies_total", peer=V) > 0
    # latency per hop: one observation per message; the peer hop includes the home NF hop
    assert delta(v, before_v, "sepp_hop_latency_seconds_count", peer=H, hop="peer") == n
    assert delta(h, before_h, "sepp_hop_latency_seconds_count", peer=V, hop="nf") == n
    mean_peer = delta(v, before_v, "sepp_hop_latency_seconds_sum", peer=H, hop="peer") / n
    mean_nf = delta(h, before_h, "sepp_hop_latency_seconds_sum", peer=V, hop="nf") / n
    assert 0 < mean_nf < mean_peer < 10
    assert value(v, "sepp_hop_latency_seconds_bucket", peer=H, hop="peer", le="+Inf") == \
        value(v, "sepp_hop_latency_seconds_count", peer=H, hop="peer")
    # the lab's summary reads the same numbers
    summary = per_peer(v)[H]
    assert summary["handshakes ok"] == 1 and summary["sent"] >= n and summary["contexts"] == 1


def test_a_refused_n32f_message_is_counted_by_cause(prins_lab):
    lab, _ = prins_lab
    before = value(scrape(lab.port("sepp-h.metrics")), "sepp_n32f_rejected_total", cause="CONTEXT_NOT_FOUND")
    from n32 import jwe

    block = {"metaData": {"n32fContextId": "0123456789abcdef", "messageId": "1", "authorizedIpxId": "NULL"},
             "requestLine": {"method": "GET", "scheme": "https", "authority": "x", "path": "/",
                             "protocolVersion": "HTTP/2"}}
    body = {"reformattedData": {"protected": jwe.b64url_encode(b'{"alg":"dir","enc":"A128GCM"}'),
                                "aad": jwe.b64url_encode(jwe.json_dumps(block)), "iv": "AAAAAAAAAAAAAAAA",
                                "ciphertext": "", "tag": "AAAAAAAAAAAAAAAAAAAAAA"}}
    rsp = run(_post_n32f(lab, json.dumps(body).encode()))
    assert 400 <= rsp.status < 500, rsp.status
    assert json.loads(rsp.body)["cause"] == "CONTEXT_NOT_FOUND"
    after = scrape(lab.port("sepp-h.metrics"))
    assert value(after, "sepp_n32f_rejected_total", cause="CONTEXT_NOT_FOUND") == before + 1
    # the client certificate named the peer, so the refusal is booked to it
    assert value(after, "sepp_n32f_rejected_total", peer=V, cause="CONTEXT_NOT_FOUND") >= 1
