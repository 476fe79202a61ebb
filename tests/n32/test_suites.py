"""The cipher-suite registry: a second 256-bit JWE suite needs one registration and nothing else
(issue 11). ChaCha20-Poly1305 (RFC 8439: 32-octet key, 96-bit nonce, 128-bit tag) stands in for
it; config, N32-KDF, JWE and a whole N32-f request round trip use it unchanged."""
from __future__ import annotations

import os

import pytest
import yaml
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from n32 import jwe, kdf, prins, suites
from n32.config import ConfigError, load_sepp_config
from n32.context import N32fContext
from n32.errors import N32Error
from n32.message import HttpRequest
from n32.reformat import IeSelection
from tests.n32.test_config import lab_dict, pki  # noqa: F401 (fixture)

MASTER = os.urandom(64)
INIT_ID, RESP_ID = "00112233445566aa", "8899aabbccddeeff"


@pytest.fixture
def c20p():
    suite = suites.register_jwe(suites.JweSuite("C20P", 32, ChaCha20Poly1305))
    yield suite
    suites.unregister_jwe("C20P")


def test_builtin_suites():
    assert suites.jwe_names() == ("A128GCM", "A256GCM") and suites.jws_names() == ("ES256",)
    assert kdf.key_length("A128GCM") == 16 and kdf.key_length("A256GCM") == 32
    with pytest.raises(ValueError, match="unsupported JWE enc 'C20P'"):
        kdf.key_length("C20P")
    with pytest.raises(ValueError, match="already registered"):
        suites.register_jwe(suites.JweSuite("A128GCM", 16, ChaCha20Poly1305))


def test_config_accepts_a_registered_suite_only(tmp_path, pki, c20p):  # noqa: F811
    cfg = lab_dict(tmp_path, pki)
    cfg["jwe_cipher_suites"] = ["C20P", "A256GCM"]
    path = tmp_path / "sepp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert load_sepp_config(path).jwe_cipher_suites == ("C20P", "A256GCM")
    suites.unregister_jwe("C20P")
    with pytest.raises(ConfigError, match=r"jwe_cipher_suites\[0\]: must be one of A128GCM, A256GCM"):
        load_sepp_config(path)


def test_kdf_and_jwe_with_a_second_256_bit_suite(c20p):
    keys = kdf.derive_session_keys(MASTER, INIT_ID, RESP_ID, "C20P")
    assert len(keys.parallel_request_key) == 32 and len(keys.parallel_request_iv_salt) == kdf.SALT_LENGTH
    key, salt = keys.parallel_request_key, keys.parallel_request_iv_salt
    nonce = salt + (3).to_bytes(4, "big")
    sealed = jwe.encrypt(key, nonce, "C20P", {"metaData": {"n32fContextId": RESP_ID}}, ["secret"])
    assert jwe.json_object(jwe.b64url_decode(sealed["protected"])) == {"alg": "dir", "enc": "C20P"}
    # the real AEAD did the work: ChaCha20-Poly1305 opens it, AES-GCM with the same key does not
    ct = jwe.b64url_decode(sealed["ciphertext"]) + jwe.b64url_decode(sealed["tag"])
    ChaCha20Poly1305(key).decrypt(nonce, ct, f"{sealed['protected']}.{sealed['aad']}".encode())
    for expected in ("C20P", None):   # negotiated suite, or (offline) the authenticated header
        block, data, _ = jwe.decrypt(key, sealed, expected_salt=salt, expected_enc=expected)
        assert data == ["secret"] and block["metaData"]["n32fContextId"] == RESP_ID
    # same key length, other suite: refused, never opened with the wrong AEAD
    with pytest.raises(N32Error) as e:
        jwe.decrypt(key, sealed, expected_salt=salt, expected_enc="A256GCM")
    assert e.value.status == 403 and e.value.cause == "INTEGRITY_CHECK_FAILED"


def _context(role: str, suite: str) -> N32fContext:
    local, peer = (INIT_ID, RESP_ID) if role == "initiator" else (RESP_ID, INIT_ID)
    return N32fContext(local, peer, role, "peer.example", (), suite, "ES256",
                       kdf.derive_session_keys(MASTER, INIT_ID, RESP_ID, suite), MASTER, created=0.0)


def test_n32f_round_trip_with_a_second_256_bit_suite(c20p):
    sender, receiver = _context("initiator", "C20P"), _context("responder", "C20P")
    req = HttpRequest("POST", "https", "udm.5gc.mnc070.mcc999.3gppnetwork.org", "/nudm-ueau/v1/x/auth",
                      headers=[("content-type", "application/json")], body=b'{"supi":"imsi-001010000000001"}')
    body, n = prins.protect_request(sender, req, IeSelection(body=("/supi",)), prins.new_message_id())
    assert n == 1 and "imsi" not in str(body)
    opened = prins.open_request(receiver, body)
    assert opened.message.body == req.body and opened.message.path == req.path
