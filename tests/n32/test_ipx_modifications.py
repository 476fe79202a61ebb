"""IPX patch-and-sign (n32.ipx) against the receiving SEPP's checks (n32.modifications).

TS 33.501 §13.2.4.5-13.2.4.7; SCAS TS 33.517 4.2.2.7/4.2.2.8; profile 17, 18, 25. Real ES256
keys, real JWE; every forbidden case of issue 5 is exercised at the core level here and end to
end in tests/integration.
"""
from __future__ import annotations

import copy
import json
import os

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwcrypto import jwk, jws as jjws

from n32 import errors, ipx, jwe
from n32.errors import N32Error
from n32.modifications import Signer, verify_and_apply

C_IPX, P_IPX = "ipx1.ipx.lab", "ipx2.ipx.lab"


def keypair() -> tuple[bytes, str]:
    k = ec.generate_private_key(ec.SECP256R1())
    priv = k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    pub = k.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return priv, pub.decode()


@pytest.fixture(scope="module")
def keys():
    return {C_IPX: keypair(), P_IPX: keypair(), "rogue": keypair()}


def message(authorized: str | None = C_IPX) -> dict:
    block = {
        "metaData": {"n32fContextId": "0123456789abcdef", "messageId": "42", "authorizedIpxId": authorized or "NULL"},
        "requestLine": {"method": "POST", "scheme": "https", "authority": "ausf.5gc.mnc070.mcc999.3gppnetwork.org",
                        "path": "/nausf-auth/v1/ue-authentications", "protocolVersion": "HTTP/2"},
        "headers": [{"header": "content-type", "value": "application/json"},
                    {"header": "authorization", "value": {"encBlockIndex": 1}}],
        "payload": [{"iePath": "/supiOrSuci", "ieValueLocation": "BODY", "value": {"encBlockIndex": 0}},
                    {"iePath": "/servingNetworkName", "ieValueLocation": "BODY", "value": "5G:mnc001.mcc001.3gppnetwork.org"}],
    }
    key = os.urandom(16)
    return {"reformattedData": jwe.encrypt(key, os.urandom(12), "A128GCM", block,
                                           ["imsi-999700000000001", "Bearer x"])}


POLICY = ("/payload/*/value", "/headers/*/value", "/requestLine/authority")


def signers(keys, c_patterns=POLICY, p_patterns=POLICY) -> dict[str, Signer]:
    return {C_IPX: Signer(C_IPX, (keys[C_IPX][1],), tuple(c_patterns)),
            P_IPX: Signer(P_IPX, (keys[P_IPX][1],), tuple(p_patterns))}


def both(keys, body, c_rules=(), p_rules=(), direction="request"):
    first = ipx.modify(body, C_IPX, keys[C_IPX][0], list(c_rules), direction).body
    return ipx.modify(first, P_IPX, keys[P_IPX][0], list(p_rules), direction).body


def check(body, keys, **kw):
    block = jwe.peek_aad(body["reformattedData"])
    return verify_and_apply(block, body.get("modificationsBlock"), body["reformattedData"]["tag"], signers(keys, **kw))


def test_allowed_modifications_by_both_ipxs_are_applied_in_order(keys):
    c = ipx.Rule(patch=({"op": "replace", "path": "/payload/1/value", "value": "5G:mnc001.mcc001.3gppnetwork.org:ipx1"},))
    p = ipx.Rule(set_headers=(("content-type", "application/json; charset=utf-8"),))
    body = both(keys, message(), [c], [p])
    block, payloads = check(body, keys)
    assert [pl["identity"] for pl in payloads] == [C_IPX, P_IPX]
    assert block["payload"][1]["value"].endswith(":ipx1")
    assert block["headers"][0]["value"] == "application/json; charset=utf-8"
    assert block["payload"][0]["value"] == {"encBlockIndex": 0}


def test_no_change_still_signs_with_null_operations(keys):
    body = both(keys, message())
    raw = body["modificationsBlock"][0]["payload"]
    assert json.loads(jwe.b64url_decode(raw))["operations"] is None
    block, payloads = check(body, keys)
    assert block == jwe.peek_aad(body["reformattedData"]) and len(payloads) == 2


def _expect(kind, body, keys, ipx_id=None, **kw):
    with pytest.raises(N32Error) as ei:
        check(body, keys, **kw)
    assert ei.value.n32f_error_type == kind, ei.value
    if ipx_id:
        assert ei.value.failed_modifications[0]["ipxId"] == ipx_id
    return ei.value


def test_patch_outside_policy_is_rejected(keys):
    c = ipx.Rule(patch=({"op": "replace", "path": "/requestLine/path", "value": "/nudm-sdm/v2/x"},))
    _expect(errors.MODIFICATIONS_INSTRUCTIONS_FAILED, both(keys, message(), [c]), keys, C_IPX)


def test_metadata_is_never_modifiable(keys):
    c = ipx.Rule(patch=({"op": "replace", "path": "/metaData/messageId", "value": "43"},))
    _expect(errors.MODIFICATIONS_INSTRUCTIONS_FAILED, both(keys, message(), [c]), keys, C_IPX,
            c_patterns=("/metaData/*",) + POLICY)


def test_signature_by_unknown_key_is_rejected(keys):
    body = ipx.modify(message(), C_IPX, keys["rogue"][0], [], "request").body
    _expect(errors.INTEGRITY_CHECK_ON_MODIFICATIONS_FAILED, body, keys, C_IPX)


def test_right_key_wrong_identity_is_rejected(keys):
    # ipx2 signs with its own (valid) key but claims to be ipx1, the authorized first hop
    body = ipx.modify(message(), C_IPX, keys[P_IPX][0], [], "request").body
    _expect(errors.INTEGRITY_CHECK_ON_MODIFICATIONS_FAILED, body, keys, C_IPX)


@pytest.mark.parametrize("alg", ["HS256", "none"])
def test_hs256_and_none_are_rejected(keys, alg):
    body = message()
    payload = json.dumps({"identity": C_IPX, "operations": None, "tag": body["reformattedData"]["tag"]})
    if alg == "HS256":
        k = jwk.JWK(kty="oct", k=jwe.b64url_encode(keys[C_IPX][1].encode()))
        s = jjws.JWS(payload.encode())
        s.add_signature(k, alg="HS256", protected=json.dumps({"alg": "HS256"}))
        entry = json.loads(s.serialize())
    else:
        entry = {"protected": jwe.b64url_encode(b'{"alg":"none"}'),
                 "payload": jwe.b64url_encode(payload.encode()), "signature": ""}
    body["modificationsBlock"] = [entry]
    _expect(errors.INTEGRITY_CHECK_ON_MODIFICATIONS_FAILED, body, keys, C_IPX)


def test_reordered_jws_is_rejected(keys):
    body = both(keys, message())
    body["modificationsBlock"].reverse()
    _expect(errors.INTEGRITY_CHECK_ON_MODIFICATIONS_FAILED, body, keys, P_IPX)


def test_dropped_jws_is_rejected(keys):
    body = both(keys, message())
    body["modificationsBlock"] = []
    _expect(errors.INTEGRITY_CHECK_ON_MODIFICATIONS_FAILED, body, keys, C_IPX)


def test_jws_copied_from_another_message_is_rejected(keys):
    other = both(keys, message())
    body = message()
    body["modificationsBlock"] = copy.deepcopy(other["modificationsBlock"])
    _expect(errors.INTEGRITY_CHECK_ON_MODIFICATIONS_FAILED, body, keys, C_IPX)


@pytest.mark.parametrize("op", [
    {"op": "move", "from": "/payload/0/value", "path": "/payload/1/value"},
    {"op": "copy", "from": "/headers/1/value", "path": "/headers/0/value"},
    {"op": "replace", "path": "/payload/0/value", "value": "imsi-999700000000009"},
    {"op": "remove", "path": "/payload/0"},
    {"op": "add", "path": "/payload/1/value", "value": {"encBlockIndex": 0}},
])
def test_patches_touching_encrypted_ies_are_rejected(keys, op):
    c = ipx.Rule(patch=(op,))
    # the IPX applies its own rule first, so build the JWS by hand when the patch cannot apply
    body = both(keys, message(), [c])
    _expect(errors.MODIFICATIONS_INSTRUCTIONS_FAILED, body, keys, C_IPX, c_patterns=("/payload/*", "/payload/*/value",
                                                                                        "/headers/*/value"))


def test_ipx_that_is_not_authorized_acting_first_is_rejected(keys):
    body = ipx.modify(message(), P_IPX, keys[P_IPX][0], [], "request").body
    _expect(errors.INTEGRITY_CHECK_ON_MODIFICATIONS_FAILED, body, keys, P_IPX)


def test_modifications_with_null_authorized_ipx_are_rejected(keys):
    body = ipx.modify(message(authorized=None), C_IPX, keys[C_IPX][0], [], "request").body
    _expect(errors.INTEGRITY_CHECK_ON_MODIFICATIONS_FAILED, body, keys, C_IPX)


def test_ipx_never_changes_the_jwe(keys):
    body = message()
    out = both(keys, body, [ipx.Rule(set_headers=(("x-ipx", "1"),))])
    assert out["reformattedData"] == body["reformattedData"]
