"""N32-c against peers we did not write: the round order the tables enforce, open5gs's wire shapes
(captured from open5gs v2.7.7, see the fixtures below), a spec-only PRINS peer (standard
isModifiableByIpx, no extensions), PLMN IDs a peer may announce, several contexts per peer."""
from __future__ import annotations

import time
import os
from pathlib import Path

import pytest

from n32 import handshake as hs
from n32 import policy_exchange
from n32.config import PeerOptions
from n32.context import ContextStore
from n32.errors import N32Error
from n32.events import HandshakeCompleted, PolicyMismatch, RelationReleased
from n32.peer import EXTENSIONS
from n32.plmn import PlmnId
from n32.policy import PolicySet, pointer_matches

ROOT = Path(__file__).resolve().parents[2]
V, H = "sepp.5gc.mnc001.mcc001.3gppnetwork.org", "sepp.5gc.mnc070.mcc999.3gppnetwork.org"

# open5gs v2.7.7 as the visited SEPP (PLMN 001-01), TLS mode only, captured on loopback.
OPEN5GS_CAPABILITY_REQUEST = {"sender": V, "supportedSecCapabilityList": ["TLS"], "3GppSbiTargetApiRootSupported": True,
                              "plmnIdList": [{"mcc": "001", "mnc": "01"}], "supportedFeatures": "1"}
OPEN5GS_RELEASE = {"sender": V, "supportedSecCapabilityList": ["NONE"]}
# open5gs as the home SEPP (PLMN 999-70) answering our exchange-capability.
OPEN5GS_CAPABILITY_RESPONSE = {"sender": H, "selectedSecCapability": "TLS", "3GppSbiTargetApiRootSupported": True,
                               "plmnIdList": [{"mcc": "999", "mnc": "70"}], "supportedFeatures": "1"}


@pytest.fixture(scope="module")
def policy():
    return PolicySet.load(ROOT / "policies/data-type-encryption.yaml", sorted((ROOT / "policies/placement").glob("*.yaml")),
                          ROOT / "policies/modification.yaml")


def responder(policy, caps=("PRINS", "TLS"), ext=()):
    store = ContextStore(time.time)
    lh = hs.LocalSepp(H, ["999-70"], ("PRINS", "TLS"), ("A128GCM",), ("ES256",), policy, n32f_fqdn=H, n32f_port=7443)
    return hs.Responder(lh, [hs.Peer(V, ["001-01"], caps, PeerOptions(extensions=tuple(ext)))], store), store


def conn(resp, cert_plmns=None):
    master = os.urandom(64)
    return hs.ConnectionState(resp.peers[V], lambda: master, cert_plmns=cert_plmns)


def initiator(policy, ext=(), ipx=(), caps=("PRINS", "TLS")):
    lv = hs.LocalSepp(V, ["001-01"], caps, ("A128GCM",), ("ES256",), policy, ipx_sec_info=list(ipx))
    return hs.Initiator(lv, hs.Peer(H, ["999-70"], ("PRINS", "TLS"), PeerOptions(extensions=tuple(ext))))


def drive(init, resp, c):
    sent = []
    while (step := init.next_request()) is not None:
        sent.append(step)
        out = resp.handle(c, *step)
        init.receive(out.status, out.body)
    resp.connection_closed(c)
    return sent


# ------------------------------------------------------------------------- round order
def test_round_order_is_the_table_not_the_body(policy):
    resp, _ = responder(policy)
    c = conn(resp)
    params = {"n32fContextId": "0123456789abcdef", "sender": V}
    with pytest.raises(N32Error) as ei:        # exchange-params before any capability
        resp.handle(c, "exchange-params", {**params, "jweCipherSuiteList": ["A128GCM"], "jwsCipherSuiteList": ["ES256"]})
    assert (ei.value.status, ei.value.cause) == (400, "MANDATORY_IE_INCORRECT") and "before PRINS" in ei.value.detail
    resp.handle(c, "exchange-capability", {"sender": V, "supportedSecCapabilityList": ["PRINS"]})
    assert c.state is hs.ResponderState.AWAIT_ROUND1
    with pytest.raises(N32Error) as ei:        # round 2 before round 1
        resp.handle(c, "exchange-params", {**params, "protectionPolicyInfo": policy.to_wire(V)})
    assert ei.value.status == 400 and "expected round 1" in ei.value.detail
    with pytest.raises(N32Error):              # a second capability on the same connection
        resp.handle(c, "exchange-capability", {"sender": V, "supportedSecCapabilityList": ["PRINS"]})
    resp.handle(c, "exchange-params", {**params, "jweCipherSuiteList": ["A128GCM"], "jwsCipherSuiteList": ["ES256"]})
    with pytest.raises(N32Error) as ei:        # round 1 again
        resp.handle(c, "exchange-params", {**params, "jweCipherSuiteList": ["A128GCM"], "jwsCipherSuiteList": ["ES256"]})
    assert "out of order" in ei.value.detail
    # a round 2 with nothing in it is still round 2 (no securityProfile "none" needed), then round 3
    assert resp.handle(c, "exchange-params", params).status == 200 and c.state is hs.ResponderState.AWAIT_ROUND3
    out = resp.handle(c, "exchange-params", params)
    assert c.state is hs.ResponderState.DONE and any(isinstance(e, HandshakeCompleted) for e in out.events)
    with pytest.raises(N32Error) as ei:
        resp.handle(c, "exchange-params", params)
    assert "all rounds done" in ei.value.detail


def test_params_on_a_tls_connection_are_refused(policy):
    resp, _ = responder(policy)
    c = conn(resp)
    resp.handle(c, "exchange-capability", {"sender": V, "supportedSecCapabilityList": ["TLS"]})
    with pytest.raises(N32Error) as ei:
        resp.handle(c, "exchange-params", {"n32fContextId": "0123456789abcdef", "jweCipherSuiteList": ["A128GCM"]})
    assert ei.value.status == 400


def test_round2_may_be_skipped_by_a_peer_with_nothing_to_say(policy):
    resp, store = responder(policy)
    c = conn(resp)
    resp.handle(c, "exchange-capability", {"sender": V, "supportedSecCapabilityList": ["PRINS"]})
    r1 = resp.handle(c, "exchange-params", {"n32fContextId": "0123456789abcdef", "jweCipherSuiteList": ["A128GCM"],
                                            "jwsCipherSuiteList": ["ES256"]})
    ipx = [{"ipxProviderId": "ipx.example.org", "rawPublicKeyList": ["-----BEGIN PUBLIC KEY-----x"]}]
    out = resp.handle(c, "exchange-params", {"n32fContextId": "0123456789abcdef", "ipxProviderSecInfoList": ipx})
    assert c.state is hs.ResponderState.DONE and store.by_local_id(r1.body["n32fContextId"]).peer_ipx_sec_info == ipx
    assert any(isinstance(e, HandshakeCompleted) for e in out.events)


def test_initiator_misuse_is_a_local_error(policy):
    init = initiator(policy)
    init.next_request()
    with pytest.raises(hs.LocalProtocolError):
        init.next_request()          # the capability answer is awaited


# ------------------------------------------------------------------------- extensions vs spec-only
def test_spec_only_peer_gets_no_extension_and_no_empty_round3(policy):
    resp, store = responder(policy, ext=())
    init = initiator(policy, ext=())
    sent = drive(init, resp, conn(resp))
    assert [op for op, _ in sent] == ["exchange-capability", "exchange-params", "exchange-params"]   # no round 3
    r2 = sent[2][1]
    assert "modificationPolicy" not in r2 and "securityProfile" not in r2
    assert not any(policy_exchange.is_wildcard(m) for m in r2["protectionPolicyInfo"]["apiIeMappingList"])
    assert not any(isinstance(e, PolicyMismatch) for e in init.events)   # like compared with like
    assert init.state is hs.InitiatorState.DONE and init.finish(os.urandom(64)).send_ready
    assert len(store.all()) == 1


def test_our_own_peers_get_every_extension(policy):
    resp, _ = responder(policy, ext=EXTENSIONS)
    init = initiator(policy, ext=EXTENSIONS)
    sent = drive(init, resp, conn(resp))
    assert len(sent) == 4 and sent[3][1].keys() == {"n32fContextId", "sender"}   # round 3 without the list
    r2 = sent[2][1]
    assert "modificationPolicy" in r2
    assert any(policy_exchange.is_wildcard(m) for m in r2["protectionPolicyInfo"]["apiIeMappingList"])
    assert not any(isinstance(e, PolicyMismatch) for e in init.events)


def test_standard_is_modifiable_by_ipx_is_the_peer_ipx_modification_policy(policy):
    """TS 29.573 IeInfo.isModifiableByIpx (TS 33.501 §13.2.3.4), without our modificationPolicy
    member: the IEs it marks become the patterns the peer's IPX may patch."""
    spec = {"apiIeMappingList": [{"apiSignature": "/nudm-sdm/v2/{supi}/am-data", "apiMethod": "GET", "IeList": [
        {"ieLoc": "HEADER", "ieType": "NONSENSITIVE", "reqIe": "user-agent", "isModifiable": True,
         "isModifiableByIpx": {"ipx-a.example.org": True, "ipx-b.example.org": False}},
        {"ieLoc": "BODY", "ieType": "NONSENSITIVE", "rspIe": "/plmnId/mcc", "isModifiable": True,
         "isModifiableByIpx": {"ipx-a.example.org": True}},
        {"ieLoc": "URI_PARAM", "ieType": "UEID", "reqIe": "{supi}", "isModifiable": False}]}],
        "dataTypeEncPolicy": ["UEID"]}
    got = policy_exchange.modification_policy(spec)
    assert got == {"ipx-a.example.org": ["/headers/*/value", "/payload/*/value/mcc"]}   # false gives nothing
    assert any(pointer_matches(p, "/headers/3/value") for p in got["ipx-a.example.org"])
    # our extension member only widens it
    assert policy_exchange.modification_policy(spec, {"ipx-b.example.org": ["/headers/-"]})["ipx-b.example.org"] == \
        ["/headers/-"]


def test_spec_peer_round2_sets_the_context_modification_policy(policy):
    resp, store = responder(policy)
    c = conn(resp)
    resp.handle(c, "exchange-capability", {"sender": V, "supportedSecCapabilityList": ["PRINS"]})
    r1 = resp.handle(c, "exchange-params", {"n32fContextId": "0123456789abcdef", "jweCipherSuiteList": ["A128GCM"],
                                            "jwsCipherSuiteList": ["ES256"]})
    spec = {"apiIeMappingList": [{"apiSignature": "/nudm-sdm/v2/{supi}/am-data", "apiMethod": "GET", "IeList": [
        {"ieLoc": "HEADER", "ieType": "NONSENSITIVE", "reqIe": "user-agent", "isModifiable": True,
         "isModifiableByIpx": {"ipx1.ipx.lab": True}}]}], "dataTypeEncPolicy": ["UEID"]}
    resp.handle(c, "exchange-params", {"n32fContextId": "0123456789abcdef", "protectionPolicyInfo": spec})
    ctx = store.by_local_id(r1.body["n32fContextId"])
    assert ctx.peer_modification_policy == {"ipx1.ipx.lab": ["/headers/*/value"]}


# ------------------------------------------------------------------------- PLMN IDs (item 7)
def test_a_peer_may_not_announce_a_plmn_its_anchor_does_not_cover(policy):
    resp, store = responder(policy)
    body = {**OPEN5GS_CAPABILITY_REQUEST, "plmnIdList": [{"mcc": "001", "mnc": "01"}, {"mcc": "002", "mnc": "02"}]}
    with pytest.raises(N32Error) as ei:
        resp.handle(conn(resp), "exchange-capability", body)
    e = ei.value
    assert (e.status, e.cause) == (403, "PLMN_NOT_ALLOWED") and e.invalid_params[0]["param"] == "/plmnIdList/1"
    assert store.relation(V) is None


def test_a_peer_may_not_announce_a_plmn_its_certificate_does_not_name(policy):
    resp = responder(policy)[0]
    resp.peers[V] = hs.Peer(V, ["001-01", "001-02"], ("TLS",))
    body = {**OPEN5GS_CAPABILITY_REQUEST, "plmnIdList": [{"mcc": "001", "mnc": "02"}]}
    with pytest.raises(N32Error) as ei:
        resp.handle(conn(resp, cert_plmns=frozenset({PlmnId("001", "01")})), "exchange-capability", body)
    assert ei.value.cause == "PLMN_NOT_ALLOWED" and "certificate" in ei.value.invalid_params[0]["reason"]
    assert resp.handle(conn(resp, cert_plmns=frozenset({PlmnId("001", "001")})), "exchange-capability",
                       OPEN5GS_CAPABILITY_REQUEST).status == 200


def test_initiator_refuses_a_responder_announcing_foreign_plmns(policy):
    init = initiator(policy, caps=("TLS",))
    init.next_request()
    with pytest.raises(N32Error) as ei:
        init.receive(200, {**OPEN5GS_CAPABILITY_RESPONSE, "plmnIdList": [{"mcc": "002", "mnc": "02"}]})
    assert ei.value.cause == "PLMN_NOT_ALLOWED" and init.state is hs.InitiatorState.FAILED


# ------------------------------------------------------------------------- open5gs
def test_open5gs_capability_release_and_reestablishment(policy):
    resp, store = responder(policy, caps=("TLS",))
    out = resp.handle(conn(resp), "exchange-capability", OPEN5GS_CAPABILITY_REQUEST)
    assert out.status == 200 and out.body["selectedSecCapability"] == "TLS"
    assert out.body["senderN32fPortList"] == [7443]
    rel = store.relation(V)
    assert rel.capability == "TLS" and rel.n32f_uri is None     # open5gs announces no N32-f endpoint
    out = resp.handle(conn(resp), "exchange-capability", OPEN5GS_RELEASE)
    assert out.body["selectedSecCapability"] == "NONE" and store.relation(V) is None
    assert any(isinstance(e, RelationReleased) for e in out.events)
    # it initiates again (after its restart): a new relation
    assert resp.handle(conn(resp), "exchange-capability", OPEN5GS_CAPABILITY_REQUEST).status == 200
    assert store.relation(V).capability == "TLS"


def test_open5gs_restart_without_release_reestablishes(policy):
    """open5gs's release is often lost: its next exchange-capability simply replaces the relation."""
    resp, store = responder(policy, caps=("TLS",))
    for _ in range(2):
        assert resp.handle(conn(resp), "exchange-capability", OPEN5GS_CAPABILITY_REQUEST).status == 200
    assert store.relation(V).capability == "TLS"


def test_our_initiator_against_open5gs_as_responder(policy):
    init = initiator(policy, caps=("PRINS", "TLS"))
    op, body = init.next_request()
    assert op == "exchange-capability" and body["supportedSecCapabilityList"] == ["PRINS", "TLS"]
    init.receive(200, OPEN5GS_CAPABILITY_RESPONSE)
    assert init.state is hs.InitiatorState.DONE and init.next_request() is None
    assert init.peer_relation().capability == "TLS" and init.peer_relation().n32f_uri is None


def test_announced_n32f_endpoints_are_learnt_both_ways(policy):
    resp, store = responder(policy, caps=("TLS",))
    resp.handle(conn(resp), "exchange-capability", {**OPEN5GS_CAPABILITY_REQUEST, "senderN32fFqdn": "n32f.sepp.example.org",
                                                    "senderN32fPort": 8443})
    assert store.relation(V).n32f_uri == "https://n32f.sepp.example.org:8443"
    init = initiator(policy, caps=("TLS",))
    init.next_request()
    init.receive(200, {**OPEN5GS_CAPABILITY_RESPONSE, "senderN32fFqdn": H, "senderN32fPortList": [7443, 7444]})
    assert init.peer_relation().n32f_uri == f"https://{H}:7443"


# ------------------------------------------------------------------------- several contexts per peer
def test_several_contexts_from_one_peer_fqdn_coexist(policy):
    """TS 29.573: a SEPP accepts several N32-f contexts from one peer (e.g. one per worker)."""
    resp, store = responder(policy)
    inits = [initiator(policy) for _ in range(3)]
    conns = [conn(resp) for _ in inits]
    # interleaved: every initiator sends its capability, then its round 1, ...
    while any(i.state is not hs.InitiatorState.DONE for i in inits):
        for i, c in zip(inits, conns):
            if (step := i.next_request()) is not None:
                out = resp.handle(c, *step)
                i.receive(out.status, out.body)
    ctxs = [i.finish(c.exporter()) for i, c in zip(inits, conns)]
    held = store.for_peer(V)
    assert len(held) == 3 and {c.local_context_id for c in held} == {c.peer_context_id for c in ctxs}
    for mine, theirs in zip(ctxs, conns):
        assert theirs.context.keys == mine.keys
    resp.handle(conn(resp), "n32f-terminate", hs.terminate_request(ctxs[0]))
    assert len(store.for_peer(V)) == 2 and store.relation(V) is not None


def test_initiator_refuses_plmns_the_responder_certificate_does_not_name(policy):
    lv = hs.LocalSepp(V, ["001-01"], ("TLS",), ("A128GCM",), ("ES256",), policy)
    peer = hs.Peer(H, ["999-70", "999-71"], ("TLS",))
    init = hs.Initiator(lv, peer, cert_plmns=frozenset({PlmnId("999", "70")}))
    init.next_request()
    with pytest.raises(N32Error) as ei:
        init.receive(200, {**OPEN5GS_CAPABILITY_RESPONSE, "plmnIdList": [{"mcc": "999", "mnc": "71"}]})
    assert ei.value.cause == "PLMN_NOT_ALLOWED" and "certificate" in ei.value.invalid_params[0]["reason"]
