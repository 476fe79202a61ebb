"""N32-f JWE (TS 33.501 §13.2.4.4, RFC 7516): round trip, jwcrypto interop, tampering, nonces."""
from __future__ import annotations

import base64
import binascii
import json

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st
from jwcrypto import jwe as jjwe
from jwcrypto import jwk

from n32 import errors, jwe
from n32.errors import N32Error

KEY = bytes(range(16))
KEY256 = bytes(range(32))
SALT = bytes.fromhex("a1a2a3a4a5a6a7a8")
BLOCK = {
    "metaData": {"n32fContextId": "0123456789abcdef", "messageId": "42", "authorizedIpxId": "NULL"},
    "requestLine": {"method": "GET", "scheme": "https", "authority": "udm.5gc.mnc001.mcc001.3gppnetwork.org",
                    "path": "/nudm-sdm/v2/{encBlockIndex:0}/am-data", "protocolVersion": "HTTP/2"},
    "headers": [{"header": "user-agent", "value": "AMF-ü"}],
}
DATA = ["imsi-001010000000001", {"nested": [1, 2.5, None, True]}]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def seal() -> dict:
    return jwe.encrypt(KEY, SALT + (7).to_bytes(4, "big"), "A128GCM", BLOCK, DATA)


def seal_raw(key: bytes, nonce: bytes, protected: bytes, aad: bytes, plaintext: bytes, pad: bool = False) -> dict:
    """A JWE built member by member, for authentic but unusual content."""
    enc = (lambda b: base64.urlsafe_b64encode(b).decode()) if pad else b64
    p, a = enc(protected), enc(aad)
    out = AESGCM(key).encrypt(nonce, plaintext, f"{p}.{a}".encode())
    return {"protected": p, "aad": a, "iv": enc(nonce), "ciphertext": enc(out[:-16]), "tag": enc(out[-16:])}


def flip(obj: dict, member: str, bit: int) -> dict:
    raw = bytearray(unb64(obj[member]))
    raw[bit // 8] ^= 0x80 >> (bit % 8)
    return {**obj, member: b64(bytes(raw))}


# --- format ------------------------------------------------------------------------------------

def test_output_format():
    obj = seal()
    assert set(obj) == {"protected", "aad", "iv", "ciphertext", "tag"}
    assert all("=" not in v for v in obj.values())
    assert unb64(obj["protected"]) == b'{"alg":"dir","enc":"A128GCM"}'
    assert unb64(obj["aad"]) == json.dumps(BLOCK, separators=(",", ":"), ensure_ascii=False).encode()
    assert "AMF-ü".encode() in unb64(obj["aad"])
    assert unb64(obj["iv"]) == SALT + b"\x00\x00\x00\x07"
    assert len(unb64(obj["tag"])) == 16
    plaintext = AESGCM(KEY).decrypt(unb64(obj["iv"]), unb64(obj["ciphertext"]) + unb64(obj["tag"]),
                                    f"{obj['protected']}.{obj['aad']}".encode())
    assert plaintext == json.dumps({"dataToEncrypt": DATA}, separators=(",", ":")).encode()


@pytest.mark.parametrize("key,enc", [(KEY, "A128GCM"), (KEY256, "A256GCM")])
def test_round_trip(key, enc):
    nonce = SALT + b"\x00\x00\x01\x00"
    obj = jwe.encrypt(key, nonce, enc, BLOCK, DATA)
    assert jwe.decrypt(key, obj, expected_salt=SALT, expected_enc=enc) == (BLOCK, DATA, nonce)
    assert jwe.decrypt(key, obj) == (BLOCK, DATA, nonce)
    assert jwe.peek_aad(obj) == BLOCK


def test_empty_data_to_encrypt():
    obj = jwe.encrypt(KEY, SALT + bytes(4), "A128GCM", BLOCK, [])
    assert jwe.decrypt(KEY, obj)[1] == []


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**53, 2**53) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20)


@settings(max_examples=60, deadline=None)
@given(block=st.dictionaries(st.text(max_size=8), json_values, max_size=5),
       data=st.lists(json_values, max_size=5), seq=st.integers(0, 2**32 - 1))
def test_round_trip_any_json(block, data, seq):
    nonce = SALT + seq.to_bytes(4, "big")
    assert jwe.decrypt(KEY, jwe.encrypt(KEY, nonce, "A128GCM", block, data), expected_salt=SALT) == \
        (block, data, nonce)


# --- RFC 7516 conformance: an independent implementation opens our object, and we open its ----

@pytest.mark.parametrize("key,enc", [(KEY, "A128GCM"), (KEY256, "A256GCM")])
def test_jwcrypto_decrypts_ours(key, enc):
    obj = jwe.encrypt(key, SALT + b"\x00\x00\x00\x03", enc, BLOCK, DATA)
    token = jjwe.JWE()
    token.deserialize(json.dumps(obj), key=jwk.JWK(kty="oct", k=b64(key)))
    assert json.loads(token.plaintext) == {"dataToEncrypt": DATA}
    assert token.plaintext == json.dumps({"dataToEncrypt": DATA}, separators=(",", ":")).encode()
    assert token.objects["aad"] == unb64(obj["aad"])
    assert json.loads(token.objects["aad"]) == BLOCK
    assert token.jose_header == {"alg": "dir", "enc": enc}


def test_jwcrypto_rejects_tampered_aad_of_ours():
    obj = flip(seal(), "aad", 20)
    token = jjwe.JWE()
    with pytest.raises(jjwe.InvalidJWEData):
        token.deserialize(json.dumps(obj), key=jwk.JWK(kty="oct", k=b64(KEY)))


def test_we_decrypt_jwcrypto_output():
    aad = json.dumps(BLOCK).encode()
    plaintext = json.dumps({"dataToEncrypt": DATA}).encode()
    token = jjwe.JWE(plaintext, protected=json.dumps({"alg": "dir", "enc": "A128GCM"}), aad=aad)
    token.add_recipient(jwk.JWK(kty="oct", k=b64(KEY)))
    obj = json.loads(token.serialize(compact=False))
    block, data, nonce = jwe.decrypt(KEY, obj, expected_enc="A128GCM")
    assert (block, data, len(nonce)) == (BLOCK, DATA, 12)


def test_padded_members_accepted_and_aad_is_transmitted_text():
    nonce = SALT + bytes(4)
    obj = seal_raw(KEY, nonce, b'{"alg":"dir","enc":"A128GCM"}', b'{"metaData":{}}',
                   b'{"dataToEncrypt":["x"]}', pad=True)
    assert obj["protected"].endswith("=") or obj["aad"].endswith("=")
    assert jwe.decrypt(KEY, obj, expected_salt=SALT) == ({"metaData": {}}, ["x"], nonce)
    # Same octets, different transmitted text: RFC 7516 authenticates the text, so this fails.
    stripped = {k: v.rstrip("=") for k, v in obj.items()}
    with pytest.raises(N32Error) as e:
        jwe.decrypt(KEY, stripped)
    assert e.value.cause == errors.INTEGRITY_CHECK_FAILED


# --- tampering -----------------------------------------------------------------------------------

def _integrity_failure(obj: dict, **kw) -> N32Error:
    with pytest.raises(N32Error) as e:
        jwe.decrypt(KEY, obj, **kw)
    err = e.value
    assert (err.status, err.cause, err.n32f_error_type) == \
        (403, errors.INTEGRITY_CHECK_FAILED, errors.INTEGRITY_CHECK_FAILED), err
    return err


@pytest.mark.parametrize("member", ["protected", "aad", "ciphertext", "tag"])
def test_every_bit_flip_detected(member):
    obj = seal()
    for bit in range(len(unb64(obj[member])) * 8):
        _integrity_failure(flip(obj, member, bit), expected_salt=SALT, expected_enc="A128GCM")


def test_iv_bit_flip_outside_salt_is_integrity_failure():
    obj = seal()
    for bit in range(64, 96):
        _integrity_failure(flip(obj, "iv", bit), expected_salt=SALT)


def test_iv_salt_flip_is_integrity_failure_without_expected_salt():
    _integrity_failure(flip(seal(), "iv", 3))


@pytest.mark.parametrize("obj,salt", [(flip(seal(), "iv", 0), SALT), (seal(), bytes(8))])
def test_wrong_salt_is_deciphering_failure(obj, salt):
    with pytest.raises(N32Error) as e:
        jwe.decrypt(KEY, obj, expected_salt=salt)
    assert (e.value.status, e.value.cause, e.value.n32f_error_type) == \
        (403, errors.DECIPHERING_FAILED, errors.DECIPHERING_FAILED)


def test_wrong_key_is_integrity_failure():
    with pytest.raises(N32Error) as e:
        jwe.decrypt(bytes(16), seal(), expected_salt=SALT)
    assert e.value.cause == errors.INTEGRITY_CHECK_FAILED


def test_a256gcm_object_with_a128gcm_key_fails():
    obj = jwe.encrypt(KEY256, SALT + bytes(4), "A256GCM", BLOCK, DATA)
    _integrity_failure(obj)  # AES variant comes from our key, never from the header
    with pytest.raises(ValueError):
        jwe.decrypt(KEY, obj, expected_enc="A256GCM")  # our key does not fit our own suite


@pytest.mark.parametrize("protected", [
    b'{"alg":"A128KW","enc":"A128GCM"}',
    b'{"alg":"dir","enc":"A256GCM"}',  # authentic, but not the suite of this key
    b'{"alg":"dir","enc":"A128GCM","zip":"DEF"}',
    b'{"alg":"dir","enc":"A128GCM","crit":["exp"],"exp":1}',
    b'{"alg":"dir","alg":"dir","enc":"A128GCM"}',
    b'["dir","A128GCM"]',
    b'not json',
])
def test_authentic_but_unacceptable_protected_header(protected):
    obj = seal_raw(KEY, SALT + bytes(4), protected, b"{}", b'{"dataToEncrypt":[]}')
    _integrity_failure(obj, expected_enc="A128GCM")


def test_extra_informational_header_members_accepted():
    obj = seal_raw(KEY, SALT + bytes(4), b'{"alg":"dir","enc":"A128GCM","kid":"k1","cty":"json"}', b"{}",
                   b'{"dataToEncrypt":[1]}')
    assert jwe.decrypt(KEY, obj)[1] == [1]


# --- plaintext -----------------------------------------------------------------------------------

def test_missing_data_to_encrypt_means_empty():
    obj = seal_raw(KEY, SALT + bytes(4), b'{"alg":"dir","enc":"A128GCM"}', b'{"a":1}', b"{}")
    assert jwe.decrypt(KEY, obj) == ({"a": 1}, [], SALT + bytes(4))


@pytest.mark.parametrize("plaintext", [b'{"dataToEncrypt":{}}', b"[]", b"\xff\xfe", b'{"dataToEncrypt":[NaN]}',
                                       b'{"dataToEncrypt":' + b"[" * 65 + b"]" * 65 + b"}"])
def test_authentic_but_unreadable_plaintext_is_a_reconstruction_failure(plaintext):
    obj = seal_raw(KEY, SALT + bytes(4), b'{"alg":"dir","enc":"A128GCM"}', b"{}", plaintext)
    with pytest.raises(N32Error) as e:
        jwe.decrypt(KEY, obj)
    assert (e.value.status, e.value.cause, e.value.n32f_error_type) == \
        (403, "MESSAGE_RECONSTRUCTION_FAILED", "MESSAGE_RECONSTRUCTION_FAILED")


# --- structure -----------------------------------------------------------------------------------

def _shorten(member: str) -> dict:
    obj = seal()
    return {**obj, member: b64(unb64(obj[member])[:-1])}


@pytest.mark.parametrize("obj", [
    "not an object", None, [],
    {k: v for k, v in seal().items() if k != "aad"},
    {k: v for k, v in seal().items() if k != "tag"},
    {k: v for k, v in seal().items() if k != "protected"},
    {**seal(), "ciphertext": 5},
    {**seal(), "iv": "abc+/"},
    {**seal(), "iv": "a"},
    {**seal(), "aad": "YQ="},
    _shorten("iv"), _shorten("tag"),
    {**seal(), "encrypted_key": "AAAA"},
    {**seal(), "header": {"zip": "DEF"}},
    {**seal(), "unprotected": {"enc": "A256GCM"}},
], ids=lambda o: str(o)[:40])
def test_structural_problems_are_400(obj):
    with pytest.raises(N32Error) as e:
        jwe.decrypt(KEY, obj, expected_salt=SALT)
    assert (e.value.status, e.value.cause, e.value.n32f_error_type) == (400, "INVALID_MSG_FORMAT", None)


def test_empty_encrypted_key_accepted():
    assert jwe.decrypt(KEY, {**seal(), "encrypted_key": ""})[1] == DATA


# --- peek_aad ------------------------------------------------------------------------------------

@pytest.mark.parametrize("obj", [
    None, "x", {}, {"aad": 1}, {"aad": "!!"}, {"aad": b64(b"[1]")}, {"aad": b64(b"{")},
    {"aad": b64(b"\xc3\x28")}, {"aad": b64(b'{"a":1,"a":2}')}, {"aad": b64(b"[" * 100000 + b"]" * 100000)},
])
def test_peek_aad_malformed(obj):
    with pytest.raises(N32Error) as e:
        jwe.peek_aad(obj)
    assert (e.value.status, e.value.cause) == (400, "INVALID_MSG_FORMAT")


def test_peek_aad_needs_no_key():
    assert jwe.peek_aad({"aad": seal()["aad"]}) == BLOCK


# --- encrypt arguments ---------------------------------------------------------------------------

@pytest.mark.parametrize("key,nonce,enc", [
    (KEY, SALT + bytes(4), "A256GCM"), (KEY256, SALT + bytes(4), "A128GCM"),
    (bytes(24), SALT + bytes(4), "A192GCM"), (KEY, SALT, "A128GCM"),
])
def test_encrypt_rejects_bad_arguments(key, nonce, enc):
    with pytest.raises(ValueError):
        jwe.encrypt(key, nonce, enc, BLOCK, DATA)


def test_encrypt_rejects_nan():
    with pytest.raises(ValueError):
        jwe.encrypt(KEY, SALT + bytes(4), "A128GCM", BLOCK, [float("nan")])


# --- nonces --------------------------------------------------------------------------------------

def test_nonce_counter_sequence_and_exhaustion():
    counter = jwe.NonceCounter(SALT, limit=3)
    assert counter.remaining == 3
    assert [counter.next() for _ in range(3)] == [SALT + i.to_bytes(4, "big") for i in range(3)]
    assert counter.remaining == 0
    with pytest.raises(jwe.KeyExhausted):
        counter.next()
    with pytest.raises(jwe.KeyExhausted):
        counter.next()  # stays exhausted, never wraps


def test_nonce_counter_default_space():
    counter = jwe.NonceCounter(SALT)
    assert counter.remaining == 2**32
    assert counter.next() == SALT + b"\x00\x00\x00\x00"
    assert counter.next() == SALT + b"\x00\x00\x00\x01"
    assert counter.remaining == 2**32 - 2
    assert not issubclass(jwe.KeyExhausted, N32Error)


@pytest.mark.parametrize("salt,limit", [(bytes(7), 10), (bytes(9), 10), (SALT, 0), (SALT, 2**32 + 1)])
def test_nonce_counter_arguments(salt, limit):
    with pytest.raises(ValueError):
        jwe.NonceCounter(salt, limit=limit)


def test_b64url_helpers():
    assert jwe.b64url_encode(b"\xfb\xff") == "-_8"
    assert jwe.b64url_decode("-_8") == jwe.b64url_decode("-_8=") == b"\xfb\xff"
    for bad in ("+/8", "-_8==", "a", "ab=c", " ab", 3):
        with pytest.raises(ValueError):
            jwe.b64url_decode(bad)


def _reference_b64url_decode(text: str) -> bytes:
    """RFC 4648 §5 read by the standard library after checking the alphabet and padding by hand."""
    body = text.rstrip("=")
    if any(c not in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" for c in body) \
            or (len(body) != len(text) and len(text) % 4) or len(body) % 4 == 1 or len(text) - len(body) > 2:
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="AQgw-_+/=*é \n", max_size=10) | st.binary(max_size=9).map(b64))
def test_b64url_decode_accepts_exactly_base64url(text):
    try:
        expected = _reference_b64url_decode(text)
    except (ValueError, binascii.Error):
        with pytest.raises(ValueError):
            jwe.b64url_decode(text)
        return
    assert jwe.b64url_decode(text) == expected


# --- the JSON codec of the per-message path (orjson with the standard library's results) ---------

@pytest.mark.parametrize("text", [b'{"a":123456789012345678901234567890}', b'{"a":-12345678901234567}',
                                  b'{"a":0.1234567890123456789}', b'\xef\xbb\xbf{"a":1}',
                                  b'{"a":1,"a":2}', b'{"a": [1.5, {"b": null}], "c": "\xc3\xa9"}',
                                  b'{"messageId":"12345678901234567890"}'])
def test_fast_json_reads_what_the_standard_library_reads(text):
    assert jwe.json_loads(text) == json.loads(text)


@pytest.mark.parametrize("text", [b'{"a":NaN}', b'{"a":Infinity}', b'{"a":1e400}', b"{", b'{"a":1}x',
                                  b'{"a":"\\ud800"}'])
def test_fast_json_refuses_what_is_not_json(text):
    """Also a lone surrogate (RFC 8259 §8.2): no UTF-8 text can carry it on."""
    with pytest.raises(ValueError):
        jwe.json_loads(text)


@pytest.mark.parametrize("text,dup", [(b'{"a":1,"a":2}', True), (b'{"a":{"b":1, "b":1}}', True),
                                      (b'{"a":1,"b":{"a":2}}', False), (b'{"a" : 1}', False),
                                      (b'{"n":123456789012345678901234567890}', False)])
def test_duplicate_names_are_found_in_any_formatting(text, dup):
    if dup:
        with pytest.raises(ValueError):
            jwe.json_object(text)
    else:
        assert jwe.json_object(text) == json.loads(text)


def _writes_like_the_standard_library(value) -> None:
    expected = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    try:
        assert jwe.json_dumps(value) == expected.encode("utf-8")
    except UnicodeEncodeError:      # a lone surrogate cannot be UTF-8 either way
        with pytest.raises(ValueError):
            expected.encode("utf-8")


@pytest.mark.parametrize("value", [{"a": 2**70}, {"a": "\ud800"}, {"a": 1e16, "b": [0.1, -0.0]}, {"é": "ü"},
                                   {"a": [5.29932991412271e-07, 1e-05, 1.5e-5, 0.0001, 1e-300, -7.1e-9]}])
def test_fast_json_writes_what_the_standard_library_writes(value):
    _writes_like_the_standard_library(value)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([1e-05, 2.5e-07, 1e-4, 1e16, 0.00001234]) | st.text(max_size=12)
    | st.sampled_from(["ue-authentications", "5e-3", "0.00001", "-_e-", "0b8d4f0e-7e1c", ":1e-5", "[2.5e-7"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(_JSON)
def test_fast_json_writes_what_the_standard_library_writes_any_value(value):
    """Also "e-" and "0.0000" inside strings, which take the fast path (they are no numbers)."""
    _writes_like_the_standard_library(value)


@settings(max_examples=300, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers(-2**80, 2**80) | st.floats(allow_nan=False, allow_infinity=False)
                    | st.text(max_size=8), lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=5), inner, max_size=4), max_leaves=20),
       st.sampled_from([(",", ":"), (", ", ": ")]))
def test_fast_json_reads_what_the_standard_library_reads_any_value(value, separators):
    """Integers beyond 64 bits (orjson reads them as floats) in compact and in spaced text."""
    text = json.dumps(value, separators=separators, ensure_ascii=False).encode("utf-8", "surrogatepass")
    try:
        expected = json.loads(text)
    except ValueError:
        return
    try:
        got = jwe.json_loads(text)
    except ValueError:      # a lone surrogate: refused on purpose (RFC 8259 §8.2)
        assert "\\ud" in json.dumps(value) or "\\udc" in json.dumps(value)
        return
    assert got == expected and json.dumps(got) == json.dumps(expected)


_B64ISH = st.text(alphabet="ABCxyz019-_+/=é\x00 ", max_size=24)


def _decoded_or_error(fn, *args):
    try:
        return fn(*args)
    except ValueError:
        return ValueError


@settings(max_examples=400, deadline=None)
@given(_B64ISH, _B64ISH, _B64ISH, st.sampled_from([None, 5, b"AAAA"]))
def test_one_call_decoders_say_what_b64url_decode_says(iv, ciphertext, tag, other):
    """The one-call decoders of iv/ciphertext/tag and of aad (opening, per message) give the octets
    b64url_decode gives, or a ValueError where it raises one, on any text (padding, the standard
    alphabet, non-ASCII, a wrong length) and on non-strings."""
    expected = tuple(_decoded_or_error(jwe.b64url_decode, x) for x in (iv, ciphertext, tag))
    got = _decoded_or_error(jwe._three, iv, ciphertext, tag)
    assert got == (ValueError if ValueError in expected else expected)
    assert _decoded_or_error(jwe._three, other, ciphertext, tag) is ValueError
    try:
        aad = jwe._aad({"aad": ciphertext})[1]
    except N32Error as e:       # what _member says for it
        assert (e.status, e.cause) == (400, "INVALID_MSG_FORMAT") and "'aad'" in e.detail
        aad = ValueError
    assert aad == expected[1]
