"""n32.exchange: what the engine is given and records, as saved with a flow and read back."""
from __future__ import annotations

import copy

from n32.exchange import METADATA_KEY, Exchange, Listener, of_metadata


def test_saved_form_uses_the_wire_names_and_leaves_defaults_out():
    ex = Exchange(listener=Listener.N32, peer_identity="sepp.v.example", now=12.5, role="receiving",
                  peer="sepp.v.example", context="00112233aabbccdd", message_id="m-1", encrypted=3,
                  ipx_modified_by=["ipx.example"])
    saved = ex.to_dict()
    assert saved == {"role": "receiving", "peer": "sepp.v.example", "context": "00112233aabbccdd",
                     "messageId": "m-1", "encrypted": 3, "ipxModifiedBy": ["ipx.example"]}
    # what the connection told the engine (listener, identity, clock) is not part of the record
    assert not {"listener", "peer_identity", "now"} & saved.keys()


def test_saved_form_round_trips_and_is_a_copy():
    ex = Exchange(role="sending", mode="PRINS", error={"status": 403, "cause": "CONTEXT_NOT_FOUND"},
                  request_jwe={"reformattedData": {"aad": "x"}})
    saved = ex.to_dict()
    saved["error"]["status"] = 500
    assert ex.error == {"status": 403, "cause": "CONTEXT_NOT_FOUND"}
    back = Exchange.from_dict(ex.to_dict())
    assert back.to_dict() == ex.to_dict() and back.mode == "PRINS"


def test_held_context_is_never_saved():
    ex = Exchange(role="sending", context="c" * 16)
    ex.held_context = object()       # type: ignore[assignment]   # a live context must not leak into a file
    assert "heldContext" not in ex.to_dict() and "held_context" not in ex.to_dict()


def test_flow_metadata_copy_is_the_plain_saved_form():
    # mitmproxy deep-copies flow.metadata to save a flow (tnetstring knows plain types only)
    ex = Exchange(role="n32c", operation="exchange-params")
    meta = {METADATA_KEY: ex}
    copied = copy.deepcopy(meta)
    assert copied[METADATA_KEY] == {"role": "n32c", "operation": "exchange-params"}
    assert of_metadata(copied).operation == "exchange-params"
    assert of_metadata(meta) is ex


def test_older_saved_dicts_load_and_unknown_keys_are_ignored():
    old = {"role": "sending", "peer": "sepp.h.example", "messageId": "m-9", "someFutureKey": 1}
    ex = of_metadata({METADATA_KEY: old})
    assert ex is not None and (ex.role, ex.peer, ex.message_id) == ("sending", "sepp.h.example", "m-9")
    assert of_metadata({}) is None and of_metadata(None) is None
    assert of_metadata({METADATA_KEY: "not an exchange"}) is None
