"""n32.policy_exchange: the ProtectionPolicy we send in N32-c (TS 29.573 §6.1.5.2.4), the comparison
with the peer's (SCAS TS 33.517 4.2.2.6) and the IPX modification policy read from it
(``IeInfo.isModifiableByIpx``, TS 33.501 §13.2.3.4)."""
from __future__ import annotations

import copy

from n32 import policy_exchange as px
from tests.n32.test_policy import load

PEER = "sepp.5gc.mnc001.mcc001.3gppnetwork.org"


def test_spec_only_form_drops_wildcards_and_compares_like_with_like():
    policy = load()
    full = px.policy_wire(policy, PEER, wildcards=True)
    spec = px.policy_wire(policy, PEER, wildcards=False)
    assert full is not None and spec is not None and px.policy_wire(None, PEER, True) is None
    assert not any(px.is_wildcard(m) for m in spec["apiIeMappingList"])
    assert len(spec["apiIeMappingList"]) <= len(full["apiIeMappingList"])
    assert px.mismatches(policy, PEER, full) == []
    assert px.mismatches(policy, PEER, spec) == []             # a spec-only peer is not a mismatch
    changed = copy.deepcopy(spec)
    changed["apiIeMappingList"].pop(0)
    assert px.mismatches(policy, PEER, changed) != []


def test_modification_policy_from_is_modifiable_by_ipx():
    received = {"apiIeMappingList": [{"apiSignature": {"uri": "/nudm-sdm/v2/{supi}/nssai"}, "apiMethod": "GET",
                                      "IeList": [
        # a body IE is one payload entry (iePath = its first token): deeper tokens follow the value
        {"ieLoc": "BODY", "ieType": "OTHER", "rspIe": "/defaultSingleNssais/0",
         "isModifiable": True, "isModifiableByIpx": {"ipx1.example": True, "ipx2.example": False}},
        {"ieLoc": "HEADER", "ieType": "OTHER", "reqIe": "user-agent", "isModifiableByIpx": {"ipx1.example": True}},
        {"ieLoc": "URI_PARAM", "ieType": "UEID", "reqIe": "{supi}", "isModifiableByIpx": {"ipx1.example": True}},
        {"ieLoc": "BODY", "ieType": "OTHER", "rspIe": "not-a-pointer", "isModifiableByIpx": {"ipx1.example": True}},
        {"ieLoc": "NOWHERE", "reqIe": "x", "isModifiableByIpx": {"ipx1.example": True}},
        "garbage"]}]}
    got = px.modification_policy(received, {"ipx3.example": ["/payload/*/value/x", 5], "ipx1.example": "no"})
    assert got == {"ipx1.example": ["/payload/*/value/0", "/headers/*/value", "/requestLine/path"],
                   "ipx3.example": ["/payload/*/value/x"]}          # ipx2: nothing allowed, left out
    assert px.modification_policy("not a policy") == {}
