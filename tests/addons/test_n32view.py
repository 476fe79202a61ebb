"""The "N32-f PRINS" mitmweb content view on real N32-f messages (no crypto mocked)."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from mitmproxy import contentviews
from mitmproxy.contentviews import Metadata
from mitmproxy.test import taddons, tflow

from addons import decode, n32view
from n32 import keylog, reformat
from n32.message import HttpRequest
from tests.addons.test_decode import (INITIATOR, IPX, LABELS, RESPONDER, SNN, SUPI, Lab, json_body, make_lab,
                               receiving_flow, seal, sending_flow)

MARK = "\U0001f512"
MARKED_SUPI = f'"supiOrSuci": "{MARK}{SUPI}"'        # in the NF message rebuilt from N32-f
CARRIED_SUPI = f'payload /supiOrSuci [BODY] = "{MARK}#0"'   # in the N32-f form: encrypted value 0


@pytest.fixture
def lab(tmp_path: Path) -> Lab:
    return make_lab(tmp_path)


def squash(text: str) -> str:
    """The view wraps long lines (also inside long tokens): compare without whitespace."""
    return re.sub(r"\s+", "", text)


def meta(flow=None, message=None) -> Metadata:
    return Metadata(flow=flow, http_message=message, content_type="application/json")


@pytest.mark.parametrize("kind,receiver", list(LABELS))
def test_decrypts_with_each_of_the_four_keys(lab, kind, receiver):
    view = n32view.N32fView(str(lab.keylog))
    data = json_body(seal(lab, kind, receiver))
    assert view.render_priority(data, meta()) == 2
    text = view.prettify(data, meta())
    assert f"N32-f {kind}  messageId=" in text and f"n32fContextId={receiver}" in text
    assert f"key: {LABELS[kind, receiver]}  decrypted" in text
    ie = "supiOrSuci" if kind == "request" else "supi"
    assert f'"{ie}": "{MARK}{SUPI}"' in text and f'payload /{ie} [BODY] = "{MARK}#0"' in text
    assert f'{MARK}#0 = "{SUPI}"' in text
    assert "integrity (JWE AEAD, TS 33.501 §13.2.4.4): ok" in text
    assert f"written by {lab.record['sepp']}" in text and lab.record["masterKey"] not in text


def test_without_key_log_clear_part_and_no_key(lab):
    data = json_body(seal(lab, "request", RESPONDER))
    text = n32view.N32fView().prettify(data, meta())
    assert SUPI not in text
    assert json.dumps(SNN) in text and "authorizedIpxId=" + IPX in text
    assert CARRIED_SUPI in text and "(not rebuilt: no key for this context)" in text
    assert "NOT decrypted (no key-log entry" in text
    assert "key log: none (set n32view_keylog)" in text


def test_encrypted_uri_segment_revealed_in_request_line(lab):
    """Profile 16a/22: the SUPI path segment travels as a literal {encBlockIndex:n} in requestLine.path
    (block built by the real reformatter, n32/reformat.py)."""
    req = HttpRequest("GET", "https", "udm.example.org", f"/nudm-sdm/v2/{SUPI}/am-data", "plmn-id=00101")
    block, data_to_encrypt = reformat.reformat_request(
        req, reformat.IeSelection(path_segments=(2,), query=("plmn-id",)),
        {"n32fContextId": RESPONDER, "messageId": "1", "authorizedIpxId": "NULL"})
    assert block["requestLine"]["path"] == "/nudm-sdm/v2/{encBlockIndex:0}/am-data"
    assert data_to_encrypt == [SUPI, "00101"]
    data = json_body(seal(lab, "request", RESPONDER, message=(block, data_to_encrypt)))
    text = n32view.N32fView(str(lab.keylog)).prettify(data, meta())
    assert squash(f"GET https://udm.example.org/nudm-sdm/v2/{MARK}{SUPI}/am-data?plmn-id={MARK}00101") in squash(text)
    assert squash(f"requestLine: GET https://udm.example.org/nudm-sdm/v2/{{{MARK}#0}}/am-data") in squash(text)
    assert f'payload /requestLine/path/2 [URI_PARAM] = "{MARK}#0"' in text
    text = n32view.N32fView().prettify(data, meta())
    assert f"/nudm-sdm/v2/{{{MARK}#0}}/am-data" in text and SUPI not in text


def test_malformed_message_and_damaged_key_log(tmp_path, lab):
    view = n32view.N32fView(str(lab.keylog), [str(tmp_path / "missing.pem")])
    text = view.prettify(b'{"reformattedData": {"aad": "!!"}}', meta())
    assert squash(text).startswith(squash("malformed N32-f message: reformattedData JWE: member 'aad' missing or "
                                          "not base64url"))
    assert "IPX keys: " in text and "missing.pem" in text
    # A damaged key-log record (however it got past read_keylog) makes the message unverifiable, not a crash.
    ex = decode.examine(seal(lab, "request", RESPONDER), [dict(lab.record, masterKey="zz")])
    assert ex.integrity.startswith(f"not verified: key-log entry for context {RESPONDER} unusable")
    assert not ex.failed and ex.decoded.data_to_encrypt is None


def test_flow_metadata_shown(lab):
    flow = sending_flow(lab)
    text = n32view.N32fView(str(lab.keylog)).prettify(flow.request.content, meta(flow, flow.request))
    text = text.replace("\n    ", "")          # the view wraps long lines
    line = next(ln for ln in text.splitlines() if ln.startswith("flow N32 metadata: "))
    shown = json.loads(line.removeprefix("flow N32 metadata: "))
    assert shown == {"role": "sending", "peer": lab.record["peer"], "context": INITIATOR,
                     "peerContextId": RESPONDER, "messageId": shown["messageId"], "encrypted": 1}
    assert "responseJwe" not in line


def test_counterpart_as_carried_on_n32f(lab):
    """Plain NF messages of rewritten flows show the N32-f form the SEPP addon kept."""
    view = n32view.N32fView(str(lab.keylog))
    rx = receiving_flow(lab)        # request restored to plain, N32-f request in metadata
    m = meta(rx, rx.request)
    assert view.render_priority(rx.request.content, m) == 1.5
    text = view.prettify(rx.request.content, m)
    nf, _, carried = text.partition(n32view.N32F_HEADING)
    assert n32view.NF_HEADING in nf and MARKED_SUPI in nf and json.dumps(SNN) in nf
    assert "key: reverse_request  decrypted" in nf and CARRIED_SUPI in carried

    tx = sending_flow(lab)          # response restored to plain, N32-f response in metadata
    text = view.prettify(tx.response.content, meta(tx, tx.response))
    assert "key: parallel_response  decrypted" in text and n32view.N32F_HEADING in text

    # The N32-f body of the same flow is shown directly; a plain flow is not for this view.
    assert view.render_priority(rx.response.content, meta(rx, rx.response)) == 2
    plain_flow = tflow.tflow(resp=True)
    assert view.render_priority(plain_flow.request.content, meta(plain_flow, plain_flow.request)) < 0
    with pytest.raises(ValueError):
        view.prettify(plain_flow.request.content, meta(plain_flow, plain_flow.request))


def test_ipx_modification_signer_and_verification(lab):
    data = json_body(seal(lab, "request", RESPONDER, modify=True))
    text = n32view.N32fView(str(lab.keylog), [str(lab.ipx_public)]).prettify(data, meta())
    assert f"IPX modification 1: signer {IPX}: ok" in text
    assert 'patch:[{"op":"replace","path":"/headers/0/value","value":"application/json"}]' in squash(text)
    text = n32view.N32fView(str(lab.keylog)).prettify(data, meta())
    assert f"IPX modification 1: signer {IPX}: not verified: no key" in text


def test_key_log_reread_when_it_changes(tmp_path, lab):
    path = tmp_path / "growing.jsonl"
    path.write_text("")
    view = n32view.N32fView(str(path))
    data = json_body(seal(lab, "response", INITIATOR))
    assert "NOT decrypted" in view.prettify(data, meta())
    keylog.append_keylog(path, lab.record)       # the SEPP logs the context while mitmweb runs
    os.utime(path, ns=(1, os.stat(path).st_mtime_ns + 10**9))
    text = view.prettify(data, meta())
    assert "key: parallel_response  decrypted" in text and "(1 context(s))" in text
    path.unlink()
    assert "No such file" in view.prettify(data, meta())


def test_addon_options_and_auto_selection(lab):
    view = n32view.view
    assert contentviews.registry[n32view.VIEW_NAME] is view
    with taddons.context(n32view.N32ViewOptions(view)) as tctx:
        tctx.configure(tctx.master.addons.get("n32viewoptions"), n32view_keylog=str(lab.keylog),
                       n32view_ipx_keys=[str(lab.ipx_public)])
        assert view.keylog_path == str(lab.keylog) and view.ipx_key_paths == [str(lab.ipx_public)]
        tctx.options.set("n32view_ipx_keys=a.pem", "n32view_ipx_keys=b.pem")   # as repeated --set
        assert view.ipx_key_paths == ["a.pem", "b.pem"]
        tctx.options.set(f"n32view_ipx_keys={lab.ipx_public}")
        flow = sending_flow(lab, modify=True)
        res = contentviews.prettify_message(flow.request, flow)          # "auto" picks this view
        assert res.view_name == n32view.VIEW_NAME
        assert MARKED_SUPI in res.text and f"signer {IPX}: ok" in res.text
        res = contentviews.prettify_message(flow.response, flow)
        assert res.view_name == n32view.VIEW_NAME and n32view.N32F_HEADING in res.text


def test_defaults_to_sepp_keylog_option(lab):
    """Loaded together with addons/sepp.py the view uses its n32_keylog unless told otherwise."""
    from addons.sepp import Sepp

    view = n32view.N32fView()
    with taddons.context(Sepp(), n32view.N32ViewOptions(view)) as tctx:
        tctx.options.update(n32_keylog=str(lab.keylog))
        assert view.keylog_path == str(lab.keylog)
        tctx.options.update(n32view_keylog="/elsewhere.jsonl")
        assert view.keylog_path == "/elsewhere.jsonl"
