"""IPX modification JWS (TS 33.501 §13.2.4.5-13.2.4.9): ES256 sign/verify and profile attacks."""
from __future__ import annotations

import base64
import datetime
import hashlib
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import NameOID
from jwcrypto import jwk
from jwcrypto import jws as jjws

from n32 import errors, jws
from n32.errors import N32Error

OPS = [{"op": "replace", "path": "/metaData/authorizedIpxId", "value": "ipx2.example.org"}]
TAG = "q2CIb8xRvNDmVbsYHLPL0g"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_key(curve: ec.EllipticCurve = ec.SECP256R1()) -> tuple[ec.EllipticCurvePrivateKey, bytes, bytes]:
    private = ec.generate_private_key(curve)
    private_pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
    public_pem = private.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, private_pem, public_pem


def certificate_pem(private: ec.EllipticCurvePrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ipx1.example.org")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(private.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1)).sign(private, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


PRIVATE, PRIVATE_PEM, PUBLIC_PEM = new_key()
_, OTHER_PRIVATE_PEM, OTHER_PUBLIC_PEM = new_key()


def assert_rejected(token, keys=(PUBLIC_PEM,)) -> N32Error:
    with pytest.raises(N32Error) as e:
        jws.verify_modifications(token, list(keys))
    err = e.value
    assert (err.status, err.cause, err.n32f_error_type) == (
        403, errors.INTEGRITY_CHECK_ON_MODIFICATIONS_FAILED, errors.INTEGRITY_CHECK_ON_MODIFICATIONS_FAILED)
    return err


def test_sign_format():
    token = jws.sign_modifications(PRIVATE_PEM, "ipx1.example.org", OPS, TAG)
    assert set(token) == {"protected", "payload", "signature"}
    assert json.loads(unb64(token["protected"])) == {"alg": "ES256", "kid": jws.kid_of(PUBLIC_PEM)}
    assert unb64(token["payload"]) == json.dumps(
        {"identity": "ipx1.example.org", "operations": OPS, "tag": TAG}, separators=(",", ":")).encode()
    assert len(unb64(token["signature"])) == 64  # RFC 7518 §3.4: R || S, 32 octets each


def test_signature_verifies_with_plain_ecdsa():
    """Independent check of RFC 7515 §5.1: ECDSA P-256/SHA-256 over ASCII(protected.payload)."""
    token = jws.sign_modifications(PRIVATE_PEM, "ipx1.example.org", None, TAG)
    raw = unb64(token["signature"])
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    PRIVATE.public_key().verify(der, f"{token['protected']}.{token['payload']}".encode(),
                                ec.ECDSA(hashes.SHA256()))


def test_sign_verify_round_trip():
    token = jws.sign_modifications(PRIVATE_PEM, "ipx1.example.org", OPS, TAG)
    assert jws.verify_modifications(token, [OTHER_PUBLIC_PEM, PUBLIC_PEM]) == \
        {"identity": "ipx1.example.org", "operations": OPS, "tag": TAG}
    assert jws.verify_modifications(token, [PUBLIC_PEM.decode()])["identity"] == "ipx1.example.org"
    assert jws.verify_modifications(token, jws.load_public_keys([PUBLIC_PEM.decode()]))["tag"] == TAG


def test_verify_with_certificate():
    cert = certificate_pem(PRIVATE)
    token = jws.sign_modifications(PRIVATE_PEM, "ipx1.example.org", OPS, TAG)
    assert jws.verify_modifications(token, [cert.decode()])["operations"] == OPS
    assert jws.kid_of(cert) == jws.kid_of(PUBLIC_PEM)


@pytest.mark.parametrize("operations", [None, []])
def test_no_operations_become_empty_list(operations):
    token = jws.sign_modifications(PRIVATE_PEM, "ipx1.example.org", operations, TAG)
    assert json.loads(unb64(token["payload"]))["operations"] == operations  # sent as given (null)
    assert jws.verify_modifications(token, [PUBLIC_PEM])["operations"] == []


def test_kid_is_rfc7638_thumbprint():
    numbers = PRIVATE.public_key().public_numbers()
    canonical = json.dumps({"crv": "P-256", "kty": "EC", "x": b64(numbers.x.to_bytes(32, "big")),
                            "y": b64(numbers.y.to_bytes(32, "big"))}, separators=(",", ":"), sort_keys=True)
    expected = b64(hashlib.sha256(canonical.encode()).digest())
    assert jws.kid_of(PUBLIC_PEM) == expected
    assert jws.kid_of(PUBLIC_PEM) == jwk.JWK.from_pem(PUBLIC_PEM).thumbprint()
    assert jws.kid_of(PRIVATE_PEM) == expected


def test_wrong_key():
    token = jws.sign_modifications(PRIVATE_PEM, "ipx1.example.org", OPS, TAG)
    assert "any of the 1 key" in assert_rejected(token, [OTHER_PUBLIC_PEM]).detail
    assert_rejected(token, [])


def test_unusable_key_entries_skipped():
    token = jws.sign_modifications(PRIVATE_PEM, "ipx1.example.org", OPS, TAG)
    garbage = ["not pem", _rsa_public_pem(), PRIVATE_PEM]
    assert jws.verify_modifications(token, [*garbage, PUBLIC_PEM])["tag"] == TAG
    assert "3 unusable" in assert_rejected(token, garbage).detail


def test_tampered_payload_and_signature():
    token = jws.sign_modifications(PRIVATE_PEM, "ipx1.example.org", OPS, TAG)
    evil = json.loads(unb64(token["payload"]))
    evil["operations"][0]["value"] = "evil.example.org"
    assert_rejected({**token, "payload": b64(json.dumps(evil).encode())})
    raw = bytearray(unb64(token["signature"]))
    raw[10] ^= 1
    assert_rejected({**token, "signature": b64(bytes(raw))})
    other = jws.sign_modifications(OTHER_PRIVATE_PEM, "ipx1.example.org", OPS, TAG)
    assert_rejected({**token, "protected": other["protected"]})  # kid swapped: protected is signed


def test_hs256_key_confusion_rejected():
    """Classic attack: HMAC with the verifier's public PEM as secret."""
    secret = jwk.JWK(kty="oct", k=b64(PUBLIC_PEM))
    payload = json.dumps({"identity": "ipx1.example.org", "operations": OPS, "tag": TAG})
    token = jjws.JWS(payload)
    token.add_signature(secret, alg="HS256", protected=json.dumps({"alg": "HS256"}))
    forged = json.loads(token.serialize(compact=False))
    assert "ES256" in assert_rejected(forged).detail


@pytest.mark.parametrize("header", [{"alg": "none"}, {"alg": "NONE"}, {"alg": "ES384"}, {"alg": "es256"},
                                    {}, {"alg": ["ES256"]}])
def test_other_alg_rejected(header):
    payload = b64(json.dumps({"identity": "ipx1.example.org", "operations": None, "tag": TAG}).encode())
    assert_rejected({"protected": b64(json.dumps(header).encode()), "payload": payload, "signature": ""})


def test_alg_in_unprotected_header_rejected():
    token = jws.sign_modifications(PRIVATE_PEM, "ipx1.example.org", OPS, TAG)
    assert_rejected({**token, "header": {"alg": "ES256"}})


def test_embedded_jwk_rejected():
    """A token signed with the attacker's key that carries that key in its header."""
    _, attacker_pem, _ = new_key()
    attacker = jwk.JWK.from_pem(attacker_pem)
    token = jjws.JWS(json.dumps({"identity": "ipx1.example.org", "operations": OPS, "tag": TAG}))
    token.add_signature(attacker, alg="ES256",
                        protected=json.dumps({"alg": "ES256", "jwk": json.loads(attacker.export_public())}))
    forged = json.loads(token.serialize(compact=False))
    assert "jwk" in assert_rejected(forged).detail


@pytest.mark.parametrize("name,value", [
    ("jwk", {"kty": "EC"}), ("jku", "https://evil.example/keys"), ("x5u", "https://evil.example/c.pem"),
    ("x5c", ["MIIB"]),
])
def test_key_bearing_unprotected_header_rejected_even_if_signature_valid(name, value):
    token = jws.sign_modifications(PRIVATE_PEM, "ipx1.example.org", OPS, TAG)
    assert name in assert_rejected({**token, "header": {name: value}}).detail


@pytest.mark.parametrize("extra", [{"crit": ["b64"], "b64": False}, {"zip": "DEF"}, {"kid": "x", "foo": 1}])
def test_unsupported_protected_parameters_rejected(extra):
    key = jwk.JWK.from_pem(PRIVATE_PEM)
    token = jjws.JWS(json.dumps({"identity": "ipx1.example.org", "operations": OPS, "tag": TAG}))
    token.add_signature(key, alg="ES256", protected=json.dumps({"alg": "ES256", **extra}))
    assert_rejected(json.loads(token.serialize(compact=False)))


def test_kid_in_unprotected_header_is_informational():
    token = jws.sign_modifications(PRIVATE_PEM, "ipx1.example.org", OPS, TAG)
    protected = b64(json.dumps({"alg": "ES256"}).encode())
    key = jwk.JWK.from_pem(PRIVATE_PEM)
    signed = jjws.JWS(unb64(token["payload"]))
    signed.add_signature(key, alg="ES256", protected=unb64(protected).decode(), header=json.dumps({"kid": "k"}))
    obj = json.loads(signed.serialize(compact=False))
    assert obj["header"] == {"kid": "k"}
    assert jws.verify_modifications(obj, [PUBLIC_PEM])["identity"] == "ipx1.example.org"


@pytest.mark.parametrize("payload", [
    b"[1]", b"not json", b'{"operations":null,"tag":"t"}', b'{"identity":"","tag":"t"}',
    b'{"identity":"i"}', b'{"identity":"i","tag":5}', b'{"identity":"i","tag":"t","operations":{}}',
    b'{"identity":"i","tag":"t","operations":"replace"}', b'{"identity":"i","identity":"j","tag":"t"}',
])
def test_signed_but_bad_payload_rejected(payload):
    key = jwk.JWK.from_pem(PRIVATE_PEM)
    token = jjws.JWS(payload)
    token.add_signature(key, alg="ES256", protected=json.dumps({"alg": "ES256"}))
    assert_rejected(json.loads(token.serialize(compact=False)))


def test_missing_operations_accepted():
    key = jwk.JWK.from_pem(PRIVATE_PEM)
    token = jjws.JWS(b'{"identity":"i","tag":"t"}')
    token.add_signature(key, alg="ES256", protected=json.dumps({"alg": "ES256"}))
    assert jws.verify_modifications(json.loads(token.serialize(compact=False)), [PUBLIC_PEM]) == \
        {"identity": "i", "tag": "t", "operations": []}


_GOOD = jws.sign_modifications(PRIVATE_PEM, "ipx1.example.org", OPS, TAG)


@pytest.mark.parametrize("token", [
    None, "x", [], {}, {**_GOOD, "signature": None}, {k: v for k, v in _GOOD.items() if k != "protected"},
    {**_GOOD, "protected": "!!"}, {**_GOOD, "protected": b64(b"[]")}, {**_GOOD, "header": "x"},
    {**_GOOD, "signatures": []}, {**_GOOD, "payload": "@@"}, {**_GOOD, "signature": "AAAA"},
    {**_GOOD, "protected": b64(b'{"alg":"ES256","alg":"none"}')},
], ids=lambda t: str(t)[:30])
def test_structural_garbage_rejected(token):
    assert_rejected(token)


def test_general_serialisation_compact_rejected():
    compact = jjws.JWS(b"{}")
    compact.add_signature(jwk.JWK.from_pem(PRIVATE_PEM), alg="ES256", protected=json.dumps({"alg": "ES256"}))
    assert_rejected(compact.serialize(compact=True))


def test_load_public_keys():
    keys = jws.load_public_keys([PUBLIC_PEM.decode(), certificate_pem(PRIVATE).decode(), OTHER_PUBLIC_PEM])
    assert [k.thumbprint() for k in keys] == [jws.kid_of(PUBLIC_PEM)] * 2 + [jws.kid_of(OTHER_PUBLIC_PEM)]
    assert not any(k.has_private for k in keys)


def _rsa_public_pem() -> bytes:
    return rsa.generate_private_key(65537, 2048).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.mark.parametrize("entry", [
    "not pem", b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
    PRIVATE_PEM, new_key(ec.SECP384R1())[2], _rsa_public_pem(),
], ids=["garbage", "bad-pem", "private", "p384", "rsa"])
def test_load_public_keys_rejects(entry):
    with pytest.raises(ValueError):
        jws.load_public_keys([entry])


def test_sign_needs_p256_private_key():
    with pytest.raises(ValueError):
        jws.sign_modifications(PUBLIC_PEM, "i", None, TAG)
    with pytest.raises(ValueError):
        jws.sign_modifications(new_key(ec.SECP384R1())[1], "i", None, TAG)
