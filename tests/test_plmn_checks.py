"""PLMN-ID anti-spoofing (n32.plmn_checks; TS 33.501 §5.9.3.2, SCAS TS 33.517 4.2.2.4)."""
from __future__ import annotations

import json

import pytest

from n32 import plmn_checks as pc
from n32.errors import N32Error
from n32.message import HttpRequest

OWN, PEER = ["001-01"], ["999-70"]


def req(headers=(), body=None):
    hdrs = list(headers) + ([("content-type", "application/json")] if body is not None else [])
    return HttpRequest("POST", "https", "udm.x", "/p", "", hdrs, json.dumps(body).encode() if body else b"")


def test_outbound_inserts_our_plmn_and_sepp():
    r = req()
    pc.outbound(r, OWN, "sepp.5gc.mnc001.mcc001.3gppnetwork.org")
    assert r.header(pc.ORIGINATING_NETWORK_ID) == "001-01;src:SEPP-sepp.5gc.mnc001.mcc001.3gppnetwork.org"


def test_outbound_keeps_a_matching_value_and_refuses_a_foreign_one():
    r = req([(pc.ORIGINATING_NETWORK_ID, "001-001;src:SCP-scp.x")])
    pc.outbound(r, OWN, "s")
    assert len(r.headers) == 1
    with pytest.raises(N32Error) as ei:
        pc.outbound(req([(pc.ORIGINATING_NETWORK_ID, "002-02")]), OWN, "s")
    assert ei.value.cause == "PLMN_ID_MISMATCH" and ei.value.n32f_error_type == "POLICY_MISMATCH"


def test_malformed_origin_is_400():
    with pytest.raises(N32Error) as ei:
        pc.outbound(req([(pc.ORIGINATING_NETWORK_ID, "x-y")]), OWN, "s")
    assert ei.value.status == 400


@pytest.mark.parametrize("body,ok", [
    ({"servingNetworkName": "5G:mnc070.mcc999.3gppnetwork.org"}, True),
    ({"servingNetworkName": "5G:mnc002.mcc002.3gppnetwork.org"}, False),
    ({"guami": {"plmnId": {"mcc": "999", "mnc": "70"}, "amfId": "1"}}, True),
    ({"guami": {"plmnId": {"mcc": "999", "mnc": "71"}, "amfId": "1"}}, False),
    ({"list": [{"servingNetwork": {"mcc": "001", "mnc": "01"}}]}, False),
])
def test_inbound_serving_network_must_be_the_peers(body, ok):
    if ok:
        pc.inbound(req(body=body), PEER)
    else:
        with pytest.raises(N32Error) as ei:
            pc.inbound(req(body=body), PEER)
        assert ei.value.invalid_params[0]["param"].startswith("/")
