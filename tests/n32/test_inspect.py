"""n32.inspect: the offline view of N32-f messages with an N32 key log, on messages sealed by the
real PRINS path (what the content view and ``python -m addons.decode`` show)."""
from __future__ import annotations

import json

from n32 import inspect, keylog, prins
from n32.message import HttpResponse
from n32.reformat import IeSelection
from tests.n32.test_prins import REQ, SEL, SUPI, pair


def test_request_and_response_decode_with_the_key_log_only():
    init, resp = pair()
    records = [keylog.keylog_record(init, "sepp-v")]
    body, _ = prins.protect_request(init, REQ, SEL, "5")
    d = inspect.decode(body, records)
    assert d.kind == "request" and d.decrypted and d.data_to_encrypt == [SUPI]
    assert d.key_label is not None and d.record is records[0]
    revealed = inspect.reveal(d.block, d.data_to_encrypt)
    assert SUPI in json.dumps(revealed) and "encBlockIndex" not in json.dumps(revealed)
    rsp, _ = prins.protect_response(resp, HttpResponse(200, [], b""), IeSelection(), "5")
    assert inspect.decode(rsp, records).kind == "response" and inspect.decode(rsp, records).decrypted


def test_without_a_record_or_with_another_master_nothing_is_revealed():
    init, _ = pair()
    other, _ = pair()
    body, _ = prins.protect_request(init, REQ, SEL, "6")
    d = inspect.decode(body, [])
    assert not d.decrypted and "no key-log entry" in (d.error or "")
    assert "no key" in json.dumps(inspect.reveal(d.block, None), ensure_ascii=False)
    d = inspect.decode(body, [keylog.keylog_record(other, "x")])    # same context IDs, other handshake
    assert not d.decrypted and d.error
    damaged = {**keylog.keylog_record(init, "x"), "masterKey": "zz"}
    assert "unusable" in (inspect.decode(body, [damaged]).error or "")


def test_reveal_uri_marks_each_index():
    assert inspect.reveal_uri("/nudm-sdm/v2/{encBlockIndex:0}/am-data", ["imsi-1"]) == \
        "/nudm-sdm/v2/{\U0001f512encrypted:imsi-1}/am-data"
    assert "no key" in inspect.reveal_uri("/x/{encBlockIndex:3}", None)
    assert inspect.reveal_uri(None, None) is None
