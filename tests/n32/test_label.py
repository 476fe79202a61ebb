"""Flow labels (n32/label.py): API and operation from the placement files, the UE, peer, context,
hop and verdict of an exchange."""
from pathlib import Path

from n32 import label
from n32.exchange import Exchange, Listener

ROOT = Path(__file__).resolve().parents[2]
APIS = label.load_api_names([ROOT / "policies/placement"])
SEPP_H = "sepp.5gc.mnc070.mcc999.3gppnetwork.org"


def test_api_names_come_from_the_placement_files():
    assert APIS["nausf-auth"] == "Nausf_UEAuthentication" and APIS["nudm-sdm"] == "Nudm_SDM"


def test_operation_leaves_identifiers_out():
    op = label.api_operation
    assert op("POST", "/nausf-auth/v1/ue-authentications", APIS) == "Nausf_UEAuthentication POST ue-authentications"
    assert op("PUT", "/nausf-auth/v1/ue-authentications/79f5c3a0-11/5g-aka-confirmation", APIS) \
        == "Nausf_UEAuthentication PUT ue-authentications/5g-aka-confirmation"
    assert op("GET", "/nudm-sdm/v2/imsi-999700000000001/am-data?plmn-id=x", APIS) == "Nudm_SDM GET am-data"
    assert op("GET", "/nfoo-bar/v1/things/42", APIS) == "nfoo-bar GET things"   # unknown API: its path segment


def test_ue_from_path_then_body():
    assert label.ue_of("/nudm-sdm/v2/imsi-999700000000001/am-data") == "imsi-999700000000001"
    assert label.ue_of("/nausf-auth/v1/ue-authentications", b'{"supiOrSuci": "suci-0-999-70-0-0-0-0000000001"}') \
        == "suci-0-999-70-0-0-0-0000000001"
    assert label.ue_of("/x", b"not json", b'{"supi": "imsi-001010000000001"}') == "imsi-001010000000001"
    assert label.ue_of("/x", b'{"supi": "not-a-supi"}') is None
    assert label.ue_of("/x", b'{"a":' * 10_000 + b"1" + b"}" * 10_000) is None   # hostile depth: no UE, no error
    assert label.short_ue("suci-0-999-70-0000-0-0-0000000001") == "suci-…0000000001"


def test_sending_label_names_api_ue_peer_context_hop_and_status():
    ex = Exchange(listener=Listener.SBI, role="sending", mode="PRINS", peer=SEPP_H, context="fac70397aa",
                  method="POST", path="/nausf-auth/v1/ue-authentications", encrypted=2)
    text = label.sepp_label(ex, APIS, ue="imsi-999700000000001", next_hop="ipx1.ipx.lab", status=201)
    assert text == ("Nausf_UEAuthentication POST ue-authentications · UE imsi-999700000000001 · to " + SEPP_H
                    + " · ctx fac70397 · via ipx1.ipx.lab · PRINS · 🔒2/0 · 201")
    assert not label.rejected(ex)
    direct = label.sepp_label(ex, APIS, next_hop=SEPP_H, status=201)
    assert "via" not in direct


def test_rejected_label_and_mark():
    ex = Exchange(listener=Listener.N32, role="receiving", peer="sepp-v", via_ipx="ipx2.ipx.lab",
                  error={"status": 403, "cause": "CONTEXT_NOT_FOUND", "detail": "x"})
    text = label.sepp_label(ex, APIS, status=403)
    assert text.endswith("from sepp-v · via ipx2.ipx.lab · REJECTED 403 CONTEXT_NOT_FOUND") and label.rejected(ex)


def test_n32c_and_ipx_labels():
    assert label.n32c_label("exchange-capability", SEPP_H, "initiator", 200) \
        == f"N32-c exchange-capability · to {SEPP_H} · initiator · 200"
    assert label.n32c_label("exchange-params", SEPP_H, "initiator", None).endswith("failed")
    block = {"requestLine": {"method": "GET", "path": "/nudm-sdm/v2/{encBlockIndex:1}/am-data"},
             "metaData": {"n32fContextId": "d74cfc6512345678"}}
    meta = {"nextHop": "https://127.0.0.1:1/", "nextHopName": "ipx2.ipx.lab", "requestOperations": [{}]}
    assert label.ipx_label("ipx1.ipx.lab", meta, APIS, 200, block) \
        == "IPX ipx1.ipx.lab · Nudm_SDM GET am-data · ctx d74cfc65 · → ipx2.ipx.lab · patched 1/0 op(s) · 200"
    assert "REJECTED" in label.ipx_label("ipx1.ipx.lab", {"rejected": {"cause": "X"}}, APIS, 200)


def test_ue_of_a_hostile_body_is_none_not_a_crash():
    """A body nested 10,000 deep reached this label before any check (issue 13 item 2: a 502 HTML page)."""
    deep = b'{"a":' * 10_000 + b"1" + b"}" * 10_000
    assert label.ue_of("/n32c-handshake/v1/exchange-capability", deep) is None
    assert label.ue_of("/x", b'{"supi": "imsi-999700000000001"}') == "imsi-999700000000001"
