"""N32-KDF (TS 33.501 §13.2.4.4.1): known answers computed independently with HKDF-Expand."""
from __future__ import annotations

import dataclasses

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from n32 import kdf

MASTER = bytes(range(64))
INI = "0123456789abcdef"
RSP = "fedcba9876543210"
KEY_LABELS = ["parallel_request_key", "parallel_response_key", "reverse_request_key", "reverse_response_key"]
SALT_LABELS = ["parallel_request_iv_salt", "parallel_response_iv_salt",
               "reverse_request_iv_salt", "reverse_response_iv_salt"]


def expand(info: bytes, length: int, algorithm: hashes.HashAlgorithm | None = None) -> bytes:
    return HKDFExpand(algorithm or hashes.SHA256(), length, info).derive(MASTER)


def test_labels_match_dataclass():
    assert list(kdf.LABELS) == KEY_LABELS and list(kdf.SALT_LABELS) == SALT_LABELS
    assert [f.name for f in dataclasses.fields(kdf.SessionKeys)] == KEY_LABELS + SALT_LABELS


def test_n32_kdf_known_answer():
    got = kdf.n32_kdf(MASTER, INI, "parallel_request_key", 16)
    assert got == expand(b"N32" + b"0123456789abcdef" + b"parallel_request_key", 16)
    # The info string is the plain concatenation, not a hash-then-expand or an Extract step.
    assert got != HKDFExpand(hashes.SHA256(), 16, b"N32parallel_request_key").derive(MASTER)


def test_default_context_uses_responder_for_parallel_and_initiator_for_reverse():
    keys = kdf.derive_session_keys(MASTER, INI, RSP, "A128GCM")
    for label in KEY_LABELS + SALT_LABELS:
        cid = RSP if label.startswith("parallel_") else INI
        length = 16 if label.endswith("_key") else 8
        assert getattr(keys, label) == expand(f"N32{cid}{label}".encode(), length), label


@pytest.mark.parametrize("kdf_context,cid", [
    ("initiator", INI), ("responder", RSP), ("joined", f"{INI}-{RSP}"),
])
def test_alternative_kdf_contexts(kdf_context, cid):
    keys = kdf.derive_session_keys(MASTER, INI, RSP, "A128GCM", kdf_context=kdf_context)
    for label in KEY_LABELS + SALT_LABELS:
        length = 16 if label.endswith("_key") else 8
        assert getattr(keys, label) == expand(f"N32{cid}{label}".encode(), length), label


def test_kdf_contexts_give_different_keys():
    variants = {c: kdf.derive_session_keys(MASTER, INI, RSP, "A128GCM", kdf_context=c)
                for c in kdf.KDF_CONTEXTS}
    assert len({v.parallel_request_key for v in variants.values()}) == 3  # default == responder here
    assert variants["default"].parallel_request_key == variants["responder"].parallel_request_key
    assert variants["default"].reverse_request_key == variants["initiator"].reverse_request_key


def test_a256gcm_lengths_and_salts():
    keys = kdf.derive_session_keys(MASTER, INI, RSP, "A256GCM")
    for label in KEY_LABELS:
        assert len(getattr(keys, label)) == 32
    for label in SALT_LABELS:
        assert len(getattr(keys, label)) == 8
    assert keys.reverse_response_key == expand(f"N32{INI}reverse_response_key".encode(), 32)
    # HKDF-Expand output is a prefix-stable stream: the 16-octet key is the prefix of the 32.
    assert keys.reverse_response_key[:16] == kdf.derive_session_keys(
        MASTER, INI, RSP, "A128GCM").reverse_response_key


@pytest.mark.parametrize("kdf_context", kdf.KDF_CONTEXTS)
def test_all_eight_outputs_distinct(kdf_context):
    keys = kdf.derive_session_keys(MASTER, INI, RSP, "A128GCM", kdf_context=kdf_context)
    values = [getattr(keys, f.name) for f in dataclasses.fields(keys)]
    # Salts are 8 octets: compare them against key prefixes too.
    assert len({v[:8] for v in values}) == 8


@pytest.mark.parametrize("name,algorithm", [("sha384", hashes.SHA384()), ("sha512", hashes.SHA512())])
def test_hash_option(name, algorithm):
    keys = kdf.derive_session_keys(MASTER, INI, RSP, "A128GCM", hash_name=name)
    assert keys.parallel_response_key == expand(f"N32{RSP}parallel_response_key".encode(), 16, algorithm)
    assert keys.parallel_response_key != kdf.derive_session_keys(
        MASTER, INI, RSP, "A128GCM").parallel_response_key


def test_context_id_used_as_on_the_wire():
    upper = kdf.derive_session_keys(MASTER, INI.upper(), RSP, "A128GCM")
    lower = kdf.derive_session_keys(MASTER, INI, RSP, "A128GCM")
    assert upper.reverse_request_key != lower.reverse_request_key
    assert upper.reverse_request_key == expand(f"N32{INI.upper()}reverse_request_key".encode(), 16)


def test_repr_hides_key_material():
    keys = kdf.derive_session_keys(MASTER, INI, RSP, "A128GCM")
    text = repr(keys) + str(keys)
    for f in dataclasses.fields(keys):
        value = getattr(keys, f.name)
        assert value.hex() not in text and repr(value) not in text
        assert f.name in text
    assert "16 octets" in text and "8 octets" in text


def test_session_keys_frozen():
    keys = kdf.derive_session_keys(MASTER, INI, RSP, "A128GCM")
    with pytest.raises(dataclasses.FrozenInstanceError):
        keys.parallel_request_key = b"x" * 16  # type: ignore[misc]


def test_key_length():
    assert kdf.key_length("A128GCM") == 16 and kdf.key_length("A256GCM") == 32
    with pytest.raises(ValueError):
        kdf.key_length("A192GCM")


@pytest.mark.parametrize("kwargs", [
    {"enc": "A128CBC-HS256"},
    {"initiator_context_id": "0123"},
    {"responder_context_id": "zzzzzzzzzzzzzzzz"},
    {"responder_context_id": "0123456789abcdef0"},
    {"kdf_context": "both"},
    {"hash_name": "md5"},
    {"master": b""},
])
def test_invalid_inputs(kwargs):
    args = {"master": MASTER, "initiator_context_id": INI, "responder_context_id": RSP, "enc": "A128GCM"}
    args.update(kwargs)
    with pytest.raises(ValueError):
        kdf.derive_session_keys(**args)


def test_non_ascii_label_rejected():
    with pytest.raises(ValueError):
        kdf.n32_kdf(MASTER, INI, "parallel_request_kéy", 16)
