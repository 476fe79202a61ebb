"""Hostile N32-f messages through the real verification path (issue 13 item 2).

Valid messages come from a real context pair (in-process N32-c handshake, real N32-KDF), then
are mutated at three levels before they reach the receiving SEPP's steps (JSON parse under the
body limits, metaData peek, context lookup, JWE opening, replay checks, modification checks,
restoring the HTTP message):

* **keyed**: a peer holding the keys edits the clear block or dataToEncrypt (members, types,
  encBlockIndex values, pointers, nesting, sizes) and seals it properly;
* **wire**: anybody on the path edits the JSON (members, types, base64 text);
* **IPX**: an authorized intermediary adds modificationsBlock entries: garbage, or JWS it
  signs with its real key over random JSON Patch operations.

Property: every outcome is a correct open or an N32Error with a 4xx status; nothing else.
"""
from __future__ import annotations

import copy
import itertools
import json
import os
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from n32 import body as jbody
from n32 import jwe, jws, modifications, multipart, prins, reformat
from n32.context import ContextStore
from n32.errors import N32Error
from n32.message import HttpRequest, HttpResponse
from n32.policy import PolicySet
from tests.n32.sim import H, V, Clock, Net, Side

ROOT = Path(__file__).resolve().parents[2]

IPX = "ipx1.ipx.lab"
SUPI = "imsi-999700000000001"
EXAMPLES = int(os.environ.get("N32F_FUZZ_EXAMPLES", "300"))


def _requests() -> list[HttpRequest]:
    auth = [("authorization", "Bearer abc.def.ghi"), ("user-agent", "AMF"), ("content-type", "application/json")]
    boundary = "b-1"
    multipart = (f"--{boundary}\r\ncontent-type: application/json\r\n\r\n" + json.dumps({"supi": SUPI, "x": [1, 2]})
                 + f"\r\n--{boundary}\r\ncontent-type: application/vnd.3gpp.5gnas\r\ncontent-id: n1\r\n\r\n"
                 + "\x7e\x00\x41" + f"\r\n--{boundary}--\r\n").encode("latin-1")
    return [
        HttpRequest("POST", "https", "ausf.5gc.mnc070.mcc999.3gppnetwork.org", "/nausf-auth/v1/ue-authentications",
                    "", auth, json.dumps({"supiOrSuci": "suci-0-999-70-0000-0-0-0000000001",
                                          "servingNetworkName": "5G:mnc001.mcc001.3gppnetwork.org"}).encode()),
        HttpRequest("GET", "https", "udm.5gc.mnc070.mcc999.3gppnetwork.org", f"/nudm-sdm/v2/{SUPI}/am-data",
                    "plmn-id=%7B%22mcc%22%3A%22001%22%7D&supported-features=1", auth[:2]),
        HttpRequest("POST", "https", "amf.5gc.mnc070.mcc999.3gppnetwork.org", "/namf-comm/v1/ue-contexts/x/transfer",
                    "", auth[:2] + [("content-type", f"multipart/related; boundary={boundary}")], multipart),
    ]


def _response() -> HttpResponse:
    return HttpResponse(201, [("content-type", "application/json"), ("location", f"https://x/{SUPI}")],
                        json.dumps({"5gAuthData": {"rand": "a1", "autn": "b2"}, "supi": SUPI, "n": [1, {"a": None}]})
                        .encode())


@pytest.fixture(scope="module")
def world() -> dict[str, Any]:
    policy = PolicySet.load(ROOT / "policies/data-type-encryption.yaml",
                            sorted((ROOT / "policies/placement").glob("*.yaml")), ROOT / "policies/modification.yaml")
    clock = Clock()
    net = Net(Side(V, H, clock, policy), Side(H, V, clock, policy), clock)
    net.handshake(net.a)
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    pub = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    signers = {IPX: modifications.Signer(IPX, (pub,), policy.modification_patterns(IPX))}
    return {"policy": policy, "ctx_v": net.a.store.by_peer(H), "ctx_h": net.b.store.by_peer(V),
            "store": net.b.store, "ipx_key": pem, "signers": signers, "ids": itertools.count(10**18),
            "requests": _requests(), "response": _response()}


def _check(ctx: Any, body: dict, block: dict, tag: str, signers: dict) -> tuple[dict, list[dict]]:
    return modifications.verify_and_apply(block, body.get("modificationsBlock"), tag, signers)


# ---------------------------------------------------------------------------- strategies
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=8)
odd_values = st.one_of(
    json_values,
    st.sampled_from([{"encBlockIndex": [0]}, {"encBlockIndex": "0"}, {"encBlockIndex": -1}, {"encBlockIndex": 7},
                     {"encBlockIndex": 0}, {"encBlockIndex": 1, "x": 2}, {"encBlockIndex": True},
                     {"encBlockIndex": 2**64}, {"headerval": {"encBlockIndex": 0}}, {"contentBase64": "!!"},
                     "{encBlockIndex:0}", "/requestLine/path/0", "/requestLine/query/plmn-id", "~2", "", "/",
                     "URI_PARAM", "BODY", "MULTIPART_BINARY", "a\r\nb", "x" * 70_000]),
    st.integers(1, 70).map(lambda n: json.loads("[" * n + "]" * n)),
)


def _locations(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _locations(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _locations(v, prefix + (i,))
    return out


def _mutate(data: st.DataObject, doc: Any, rounds: int) -> Any:
    """``doc`` after ``rounds`` random edits (replace, delete, insert, wrap deep) at random places."""
    for _ in range(rounds):
        where = data.draw(st.sampled_from(_locations(doc)))
        op = data.draw(st.sampled_from(["replace", "delete", "insert", "wrap"]))
        value = copy.deepcopy(data.draw(odd_values))     # drawn constants are shared: never edit them
        if not where:
            doc = value if op == "replace" else doc
            continue
        parent = doc
        for token in where[:-1]:
            parent = parent[token]
        last = where[-1]
        if op == "replace":
            parent[last] = value
        elif op == "delete":
            del parent[last]
        elif op == "insert" and isinstance(parent, dict):
            parent[data.draw(st.sampled_from(["encBlockIndex", "value", "iePath", "headerval", "x"]))] = value
        elif op == "insert":
            parent.insert(last, value)
        else:
            depth = data.draw(st.sampled_from([2, 40, 63, 64, 65, 250]))    # three rounds stay below Python's stack
            wrapped = parent[last]
            for _ in range(depth):
                wrapped = [wrapped]
            parent[last] = wrapped
    return doc


def _b64_mutation(data: st.DataObject, text: Any) -> Any:
    text = text if isinstance(text, str) else ""      # an earlier round may have replaced it
    how = data.draw(st.sampled_from(["flip", "truncate", "pad", "bad char", "non-ascii", "type", "empty"]))
    if how == "flip" and text:
        i = data.draw(st.integers(0, len(text) - 1))
        return text[:i] + ("A" if text[i] != "A" else "B") + text[i + 1:]
    if how == "truncate":
        return text[:data.draw(st.integers(0, max(0, len(text) - 1)))]
    return {"pad": text + "=", "bad char": text + "+/", "non-ascii": text + "é", "empty": "",
            "type": data.draw(json_values)}.get(how, text)


def _seal(ctx: Any, kind: str, block: Any, values: Any) -> dict:
    key, counter, enc = ctx.send_params(kind)
    return jwe.encrypt(key, counter.next(), enc, block, values) if isinstance(block, dict) \
        and isinstance(values, list) else _raw_seal(key, counter.next(), block, values)


def _raw_seal(key: bytes, nonce: bytes, block: Any, values: Any) -> dict:
    """A JWE over any JSON (a keyed peer is not bound to send objects)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    protected = jwe.b64url_encode(b'{"alg":"dir","enc":"A128GCM"}')
    aad = jwe.b64url_encode(json.dumps(block).encode())
    sealed = AESGCM(key).encrypt(nonce, json.dumps({"dataToEncrypt": values}).encode(), f"{protected}.{aad}".encode())
    return {"protected": protected, "aad": aad, "iv": jwe.b64url_encode(nonce),
            "ciphertext": jwe.b64url_encode(sealed[:-16]), "tag": jwe.b64url_encode(sealed[-16:])}


# ---------------------------------------------------------------------------- the property
def _one_case(world: dict, data: st.DataObject) -> str:
    ctx_v, ctx_h, policy = world["ctx_v"], world["ctx_h"], world["policy"]
    kind = data.draw(st.sampled_from(["request", "response"]))
    level = data.draw(st.sampled_from(["none", "keyed", "keyed", "wire", "ipx"]))
    req = data.draw(st.sampled_from(world["requests"]))
    mid = f"{next(world['ids']):019d}"        # fixed length: the draws below must not depend on chance
    ipx = IPX if level == "ipx" else None
    if kind == "request":
        sender, receiver = ctx_v, ctx_h
        sel = policy.selection(H, req.method, req.path, "request")
        block, values = reformat.reformat_request(req, sel, prins.metadata(ctx_v, mid, ipx))
    else:
        sender, receiver = ctx_h, ctx_v
        sel = policy.selection(V, req.method, req.path, "response")
        block, values = reformat.reformat_response(world["response"], sel, prins.metadata(ctx_h, mid, ipx))
    if level == "keyed":
        target = data.draw(st.sampled_from(["block", "values", "both"]))
        rounds = data.draw(st.integers(1, 3))
        if target in ("block", "both"):
            block = _mutate(data, block, rounds)
        if target in ("values", "both"):
            values = _mutate(data, values, rounds)
    outer: dict[str, Any] = {"reformattedData": _seal(sender, kind, block, values)}
    if level == "wire":
        for _ in range(data.draw(st.integers(1, 3))):
            member = data.draw(st.sampled_from(["protected", "aad", "iv", "ciphertext", "tag", "encrypted_key",
                                                "header", "reformattedData", "modificationsBlock", "extra"]))
            if member in ("reformattedData", "modificationsBlock", "extra"):
                outer[member] = data.draw(json_values)
            elif isinstance(outer.get("reformattedData"), dict):
                jwe_obj = outer["reformattedData"]
                jwe_obj[member] = _b64_mutation(data, jwe_obj.get(member) or "")
    if level == "ipx":
        tag = outer["reformattedData"]["tag"]
        entries: list[Any] = []
        for _ in range(data.draw(st.integers(0, 3))):
            if data.draw(st.booleans()):
                entries.append(data.draw(json_values))
                continue
            paths = [jbody_pointer(p) for p in _locations(block)] + ["/headers/-", "/metaData/x", "", "nope", "/~2"]
            ops = data.draw(st.lists(st.fixed_dictionaries({
                "op": st.sampled_from(["add", "replace", "remove", "move", "copy", "test", "bogus"]),
                "path": st.sampled_from(paths), "from": st.sampled_from(paths), "value": odd_values}), max_size=3))
            ops = copy.deepcopy(ops)
            who = data.draw(st.sampled_from([IPX, IPX, "ipx2.ipx.lab"]))
            entries.append(jws.sign_modifications(world["ipx_key"], who, ops or None,
                                                  tag if data.draw(st.booleans()) else "x"))
        outer["modificationsBlock"] = entries
    wire = json.dumps(outer).encode()
    try:
        got = _receive(world, kind, wire, receiver, mid)
    except N32Error as e:
        assert level != "none", f"an unmodified message was refused: {e}"
        assert 400 <= e.status < 500, (e.status, e.cause, e.detail)
        assert e.problem_details()["status"] == e.status
        return f"{level}: {e.status} {e.cause}"
    if level == "none":
        expected = req if kind == "request" else world["response"]
        assert _normal(got.message) == _normal(expected)
    assert isinstance(got.message, HttpRequest if kind == "request" else HttpResponse)
    return f"{level}: opened"


def _normal(msg: Any) -> Any:
    """Body as data: JSON restored compact, multipart parts with the JSON root part parsed."""
    ctype = msg.header("content-type") or ""
    if ctype.startswith("multipart/"):
        parts = multipart.parse(multipart.boundary(ctype), msg.body)
        return [(h, json.loads(c) if n == 0 else c) for n, (h, c) in enumerate(parts)]
    return json.loads(msg.body) if msg.body else b""


def jbody_pointer(tokens: tuple) -> str:
    return "".join("/" + str(t).replace("~", "~0").replace("/", "~1") for t in tokens)


def _receive(world: dict, kind: str, wire: bytes, receiver: Any, mid: str) -> prins.Opened:
    """What the receiving SEPP does with an N32-f body (addons/runtime.py, without I/O)."""
    doc = jbody.loads(wire, where="N32-f body")
    check = lambda ctx, body, block, tag: _check(ctx, body, block, tag, world["signers"])  # noqa: E731
    if kind == "response":
        return prins.open_response(receiver, doc, mid, check)
    peeked = prins.peek(doc)
    ctx = world["store"].by_local_id(peeked.meta["n32fContextId"])
    if ctx is None:
        raise N32Error(403, "CONTEXT_NOT_FOUND", "no such context")
    return prins.open_request(ctx, doc, check, peeked)


def test_mutated_n32f_messages_give_a_clean_4xx_or_a_correct_open(world, capsys):
    outcomes: dict[str, int] = {}

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])
    @given(st.data())
    def case(data: st.DataObject) -> None:
        outcome = _one_case(world, data)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1

    case()
    total = sum(outcomes.values())
    with capsys.disabled():
        print(f"\nN32-f fuzz: {total} cases, outcomes {dict(sorted(outcomes.items(), key=lambda kv: -kv[1]))}")
    assert total >= EXAMPLES // 2 and "none: opened" in outcomes and len(outcomes) > 5
