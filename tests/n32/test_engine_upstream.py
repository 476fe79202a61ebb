"""The engine's side of next hops: deadline and protocol in Forward, answers for failed hops."""
from __future__ import annotations

import time
import json

from n32 import edge, upstream_errors as ue
from n32.config import load_sepp_config
from n32.context import ContextStore, PeerRelation
from n32.engine import Engine
from n32.exchange import Answer, Exchange, Forward, HopKind, Listener, Log
from n32.message import HttpRequest
from n32.policy import PolicySet
from tests.n32.test_config import pki, write  # noqa: F401 (pki is a fixture)

HOME_FQDN = "sepp.5gc.mnc070.mcc999.3gppnetwork.org"
UDM = "udm.5gc.mnc001.mcc001.3gppnetwork.org"


def engine(tmp_path, pki, edit=None) -> Engine:
    cfg = load_sepp_config(write(tmp_path, pki, edit))
    policy = PolicySet.load(cfg.policies.encryption, list(cfg.policies.placement), cfg.policies.modification)
    store = ContextStore(time.time)
    store.set_relation(HOME_FQDN, PeerRelation("TLS", sender=HOME_FQDN))
    return Engine(cfg, policy, store, edge.build(telescopic_domain=None, hiding=False, plmn=cfg.plmn_ids[0]))


def tls_mode_inbound(eng: Engine) -> tuple[Exchange, list]:
    ex = Exchange(listener=Listener.N32, peer_identity=HOME_FQDN, now=1000.0)
    req = HttpRequest("GET", "https", HOME_FQDN, "/nudm-sdm/v2/imsi-001010000000001/nssai", "",
                      [("3gpp-sbi-target-apiroot", f"https://{UDM}"),
                       ("3gpp-sbi-originating-network-id", "999-70")])
    return ex, eng.on_request(ex, req)


def test_delivery_carries_the_home_nf_deadline_and_protocol(tmp_path, pki):
    def edit(c):
        c["home_nfs"] = {"default": "http://127.0.0.1:7003", "routes": {UDM: {"uri": "http://127.0.0.1:7004",
                                                                              "protocol": "h1"}}}
        c["timeouts"] = {"home_nf": 2.5, "n32f": 4}
    ex, actions = tls_mode_inbound(engine(tmp_path, pki, edit))
    fwd = next(a for a in actions if isinstance(a, Forward))
    assert (fwd.uri, fwd.protocol, fwd.hop, fwd.deadline) == ("http://127.0.0.1:7004", "h1", HopKind.NF, 1002.5)
    assert fwd.request.scheme == "http" and fwd.request.authority == UDM


def test_http_home_nf_is_h2c_by_default(tmp_path, pki):
    def edit(c):
        c["home_nfs"] = {"default": "http://127.0.0.1:7003"}
    _, actions = tls_mode_inbound(engine(tmp_path, pki, edit))
    assert next(a for a in actions if isinstance(a, Forward)).protocol == "h2c"


def test_failed_home_nf_is_answered_as_the_nf_answer_not_as_a_refusal(tmp_path, pki):
    eng = engine(tmp_path, pki, lambda c: c["home_nfs"].update(default="http://127.0.0.1:7003"))
    ex, _ = tls_mode_inbound(eng)
    actions = eng.on_upstream_error(ex, HopKind.NF, ue.RESET)
    answer = next(a for a in actions if isinstance(a, Answer)).response
    assert any(isinstance(a, Log) for a in actions)
    assert not ex.answered   # the response step still runs: the peer gets it like any NF answer
    assert answer.status == 504 and answer.header("content-type") == "application/problem+json"
    assert json.loads(answer.body)["cause"] == "TARGET_NF_NOT_REACHABLE"


def test_failed_n32f_hop_answers_our_nf(tmp_path, pki):
    eng = engine(tmp_path, pki)
    ex = Exchange(listener=Listener.SBI, now=1000.0)
    actions = eng.on_upstream_error(ex, HopKind.PEER, ue.TIMEOUT)
    answer = next(a for a in actions if isinstance(a, Answer)).response
    pd = json.loads(answer.body)
    assert ex.answered and (answer.status, pd["cause"]) == (504, "TIMED_OUT_REQUEST")
    assert pd["detail"] == "the peer SEPP did not answer within 10 s"
