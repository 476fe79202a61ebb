"""N32-f JWE: flattened JWE JSON with ``dir`` + a registered suite (A128GCM/A256GCM, TS 33.501 §13.2.4.4, TS 29.573
Annex B.2, RFC 7516 §7.2.2; N32-SPEC §3.4; profile points 11, 12, 23, 26).

The object is built by hand because the IV must be the nonce salt || SEQ (TS 33.501
§13.2.4.4.1), which JOSE libraries do not let the caller choose::

    protected  = BASE64URL(UTF8({"alg":"dir","enc":ENC}))
    aad        = BASE64URL(UTF8(JSON(DataToIntegrityProtectBlock)))
    iv         = BASE64URL(salt || SEQ)                       (12 octets)
    ciphertext = BASE64URL(AEAD(UTF8(JSON({"dataToEncrypt": [...]}))))  (without the tag)
    tag        = BASE64URL(16-octet GCM tag)
    AEAD additional data = ASCII(protected || "." || aad)     (RFC 7516 §5.1 step 14)

On receipt the suite is the negotiated one (never chosen by the header), the AEAD check runs
over the members exactly as transmitted, and only then are the authenticated header and the
decoded JSON interpreted. Structural problems are 400 ``INVALID_MSG_FORMAT``; anything that fails
or contradicts the authenticated content is 403 ``INTEGRITY_CHECK_FAILED``; an IV outside the
expected salt is 403 ``DECIPHERING_FAILED`` (profile 26).
"""
from __future__ import annotations

import functools
import json
from typing import Any

import pybase64
from cryptography.exceptions import InvalidTag

from . import errors, suites
from . import body as body_json
from .body import check as check_json_limits
from .errors import N32Error
from .kdf import SALT_LENGTH
from .suites import NONCE_LENGTH, TAG_LENGTH

_SEQ_SPACE = 2**32
_PROTECTED_PARAMS = {"alg", "enc", "kid", "typ", "cty"}  # anything else (zip, crit, ...) is refused


class KeyExhausted(Exception):
    """The SEQ space of a salt is used up: the sender must rekey (new context) before wrapping."""


# --- encoding helpers shared with jws.py -----------------------------------------------------

_TO_URL = bytes.maketrans(b"+/", b"-_")


def b64url_encode(data: bytes) -> str:
    """BASE64URL without padding (RFC 7515 §2)."""
    return pybase64.b64encode(data).translate(_TO_URL).rstrip(b"=").decode("ascii")


def b64url_decode(text: Any) -> bytes:
    """Decode BASE64URL with or without padding; ``ValueError`` if ``text`` is not one."""
    if not isinstance(text, str):
        raise ValueError("not a base64url string")
    pad = -len(text) % 4
    if pad:
        if text[-1:] == "=":
            raise ValueError("not a base64url string or bad padding")
        text += _PADDING[pad]
    if "+" in text or "/" in text:      # the standard alphabet's, not base64url's
        raise ValueError("not a base64url string")
    try:    # strict: only the alphabet (a non-ASCII character too is refused), padding only at the end
        return pybase64.b64decode(text, b"-_", True)     # altchars, validate (keywords cost 0.4 µs)
    except ValueError as exc:           # binascii.Error, which pybase64 raises, is one
        raise ValueError(f"bad base64url: {exc}") from None


_PADDING = ("", "=", "==", "===")


def _three(iv: Any, ciphertext: Any, tag: Any) -> tuple[bytes, bytes, bytes]:
    """:func:`b64url_decode` of the three, in one call (per message): unpadded base64url strings
    (ours, RFC 7516 §7.2.1) decoded here, anything else by :func:`b64url_decode`."""
    if type(iv) is str and type(ciphertext) is str and type(tag) is str:
        whole = iv + ciphertext + tag
        if "+" not in whole and "/" not in whole and "=" not in whole:
            try:
                return (pybase64.b64decode(iv + _PADDING[-len(iv) % 4], b"-_", True),
                        pybase64.b64decode(ciphertext + _PADDING[-len(ciphertext) % 4], b"-_", True),
                        pybase64.b64decode(tag + _PADDING[-len(tag) % 4], b"-_", True))
            except ValueError:
                pass
    return b64url_decode(iv), b64url_decode(ciphertext), b64url_decode(tag)


# JSON: n32/body.py (orjson with the standard library's results).
json_dumps = body_json.dumps
json_loads = body_json.fast_loads


# The encrypted block is read by the two SEPPs only, so duplicate names there cannot make two
# readers disagree (what RFC 7515 §5.2 guards against in the clear parts): plain dict semantics.
def json_object(data: bytes, duplicates: bool = False) -> dict:
    """Strict decode of UTF-8 JSON that must be an object; ``ValueError`` otherwise (also on a
    duplicate member name unless ``duplicates``, and when it exceeds the JSON limits of
    n32/body.py, with their verdict before the parser's)."""
    try:
        if duplicates:          # limits checked first unless the parse shows a small object of strings
            value = body_json.parse_within(data, where="JSON")
        else:
            check_json_limits(data, where="JSON")
            value = body_json.unique_loads(data)
    except N32Error as e:
        raise ValueError(e.detail) from None
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


# --- nonce -------------------------------------------------------------------------------------

class NonceCounter:
    """Nonces salt || SEQ (big-endian uint32) for one key/salt; SEQ starts at 0 (profile 11).

    ``next()`` raises :class:`KeyExhausted` instead of issuing SEQ == ``limit``; a smaller
    ``limit`` lets a sender rekey early (and tests reach exhaustion quickly).
    """

    def __init__(self, salt: bytes, limit: int = _SEQ_SPACE) -> None:
        if len(salt) != SALT_LENGTH:
            raise ValueError(f"IV salt must be {SALT_LENGTH} octets")
        if not 0 < limit <= _SEQ_SPACE:
            raise ValueError("limit must be in 1..2**32")
        self._salt = bytes(salt)
        self._limit = limit
        self.issued = 0         # SEQ of the next nonce; read (never written) by the rekey test

    @property
    def remaining(self) -> int:
        """How many more nonces ``next()`` will issue."""
        return self._limit - self.issued

    def next(self) -> bytes:
        seq = self.issued
        if seq >= self._limit:
            raise KeyExhausted(f"all {self._limit} nonces of this salt used; rekey")
        self.issued = seq + 1
        return self._salt + seq.to_bytes(4, "big")


# --- JWE ---------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=16)
def _protected(enc: str) -> str:
    """The protected header we send with suite ``enc`` (RFC 7516 §7.2.1), encoded once."""
    return b64url_encode(json_dumps({"alg": "dir", "enc": enc}))


@functools.lru_cache(maxsize=16)
def _protected_dot(enc: str) -> bytes:
    """``ASCII(protected) || "."``: the constant start of the AEAD additional data (RFC 7516 §5.1 step 14)."""
    return _protected(enc).encode("ascii") + b"."


def _suite(key: bytes, enc: str) -> suites.JweSuite:
    """The registered suite ``enc`` (n32/suites.py); ``ValueError`` if unknown or ``key`` does not fit."""
    suite = suites.jwe(enc)
    if len(key) != suite.key_length:
        raise ValueError(f"{len(key)}-octet key does not fit enc {enc} ({suite.key_length} octets)")
    return suite


@functools.lru_cache(maxsize=32)
def _fitting(key_length: int, enc: str) -> suites.JweSuite:
    """:func:`_suite` for a key of ``key_length`` octets and a str ``enc`` (the negotiated suite:
    asked per message, answered once; a ValueError is not remembered)."""
    return _suite(bytes(key_length), enc)


def encrypt(key: bytes, nonce: bytes, enc: str, aad_block: dict, data_to_encrypt: list,
            aead: suites.Aead | None = None) -> dict:
    """Seal one N32-f message as a flattened JWE JSON object (TS 29.573 ``FlatJweJson``).

    ``aad_block`` is the DataToIntegrityProtectBlock, ``data_to_encrypt`` the values of the
    DataToIntegrityProtectAndCipherBlock. Each ``nonce`` must be used once (take it from a
    :class:`NonceCounter`). ``aead``: the suite's AEAD object for ``key``, if the caller keeps
    one per key (a context does); else it is made here.
    """
    suite = _suite(key, enc)
    if len(nonce) != NONCE_LENGTH:
        raise ValueError(f"nonce must be {NONCE_LENGTH} octets")
    if not isinstance(aad_block, dict) or not isinstance(data_to_encrypt, list):
        raise TypeError("aad_block must be a dict and data_to_encrypt a list")
    aad = pybase64.b64encode(json_dumps(aad_block)).translate(_TO_URL).rstrip(b"=")
    sealed = (aead or suite.aead(key)).encrypt(nonce, json_dumps({"dataToEncrypt": data_to_encrypt}),
                                               _protected_dot(enc) + aad)
    return {"protected": _protected(enc), "aad": aad.decode("ascii"), "iv": b64url_encode(nonce),
            "ciphertext": b64url_encode(sealed[:-TAG_LENGTH]), "tag": b64url_encode(sealed[-TAG_LENGTH:])}


def _malformed(detail: str) -> N32Error:
    return N32Error(400, "INVALID_MSG_FORMAT", f"reformattedData JWE: {detail}")


def _unreadable(attribute: str, detail: str) -> N32Error:
    return N32Error(403, errors.MESSAGE_RECONSTRUCTION_FAILED, f"reformattedData JWE: {detail}",
                    n32f_error_type=errors.MESSAGE_RECONSTRUCTION_FAILED,
                    error_details=[{"attribute": attribute, "msgReconstructFailReason": errors.INVALID_JSON_POINTER}])


def _integrity(detail: str) -> N32Error:
    return N32Error(403, errors.INTEGRITY_CHECK_FAILED, f"reformattedData JWE: {detail}",
                    n32f_error_type=errors.INTEGRITY_CHECK_FAILED)


def _member(jwe: Any, name: str) -> tuple[str, bytes]:
    """A required base64url member: (transmitted text, decoded octets)."""
    if not isinstance(jwe, dict):
        raise _malformed("not a JSON object")
    text = jwe.get(name)
    try:
        return text, b64url_decode(text)
    except ValueError:
        raise _malformed(f"member {name!r} missing or not base64url") from None


def peek_aad(jwe: Any) -> dict:
    """The DataToIntegrityProtectBlock in the ``aad`` member, decoded without any key.

    Used to find the context (metaData.n32fContextId) before decryption; nothing in it is
    authenticated until :func:`decrypt` succeeds.
    """
    return peek_aad_text(jwe)[0]


def _aad(jwe: Any) -> tuple[str, bytes]:
    """``_member(jwe, "aad")``, with our unpadded form decoded here (one call per message, not three)."""
    text = jwe.get("aad") if type(jwe) is dict else None
    if type(text) is str and "+" not in text and "/" not in text and "=" not in text:
        try:
            return text, pybase64.b64decode(text + _PADDING[-len(text) % 4], b"-_", True)
        except ValueError:
            pass
    return _member(jwe, "aad")


def peek_aad_text(jwe: Any) -> tuple[dict, bytes]:
    """:func:`peek_aad` and the JSON text the block was read from."""
    _, aad = _aad(jwe)
    try:        # json_object(aad), without the call (per message)
        check_json_limits(aad, where="JSON")
        block = body_json.unique_loads(aad)
    except N32Error as e:
        raise _malformed(f"aad is not a UTF-8 JSON object ({e.detail})") from None
    except RecursionError:
        raise _malformed("aad is not a UTF-8 JSON object (JSON nested too deeply)") from None
    except ValueError as exc:
        raise _malformed(f"aad is not a UTF-8 JSON object ({exc})") from None
    if type(block) is not dict:
        raise _malformed("aad is not a UTF-8 JSON object (not a JSON object)")
    return block, aad


def decrypt(key: bytes, jwe: Any, expected_salt: bytes | None = None,
            expected_enc: str | None = None, aad_block: dict | None = None,
            aead: suites.Aead | None = None) -> tuple[dict, list, bytes]:
    """Verify and open an N32-f JWE: ``(aad_block, data_to_encrypt, nonce)`` (see :func:`decrypt_with_aad`)."""
    block, data, nonce, _ = decrypt_with_aad(key, jwe, expected_salt, expected_enc, aad_block, aead)
    return block, data, nonce


def decrypt_with_aad(key: bytes, jwe: Any, expected_salt: bytes | None = None,
                     expected_enc: str | None = None, aad_block: dict | None = None,
                     aead: suites.Aead | None = None) -> tuple[dict, list, bytes, bytes | None]:
    """Verify and open an N32-f JWE: ``(aad_block, data_to_encrypt, nonce, aad)``, ``aad`` the
    JSON text of the block (None when ``aad_block`` was given).

    TS 33.501 §13.2.4.7: the AEAD tag covers the protected header, the clear block (``aad``) and
    the ciphertext. ``expected_salt`` is the IV salt of ``key`` (profile 26), ``expected_enc``
    the negotiated JWE suite. The caller checks the SEQ (``nonce[8:]``) for replay afterwards.
    ``aad_block`` is what :func:`peek_aad` gave for this very ``aad`` text: it is not decoded twice.
    ``aead``: the AEAD object of ``key`` if the caller keeps one (see :func:`encrypt`).
    """
    ours = expected_enc is not None and type(jwe) is dict and jwe.get("protected") == _protected(expected_enc)
    if ours:                # the form we send: valid base64url, decoded only if it must be parsed
        protected_text, protected = jwe["protected"], b""
    else:
        protected_text, protected = _member(jwe, "protected")
    if ours:
        suite = _fitting(len(key), expected_enc)    # type: ignore[arg-type]  # a str: ours
    elif expected_enc is not None:
        suite = _suite(key, expected_enc)
    else:
        # No negotiated suite at hand (offline inspection): the protected header names it. The
        # header is AEAD additional data, so a false name only makes the check below fail.
        try:
            suite = _suite(key, json_object(protected).get("enc"))
        except ValueError as exc:
            raise _integrity(f"protected header names no suite usable with this key ({exc})") from None
    enc = suite.name
    if aad_block is None:
        aad_text, aad = _aad(jwe)
    else:                   # decoded by peek_aad already: only the transmitted text is needed
        aad_text, aad = jwe["aad"], b""
    try:        # jwe is a dict here (ours, or _member read "protected"); _member names a bad one
        nonce, ciphertext, tag = _three(jwe.get("iv"), jwe.get("ciphertext"), jwe.get("tag"))
    except ValueError:
        for name in ("iv", "ciphertext", "tag"):
            _member(jwe, name)
        raise
    if len(nonce) != NONCE_LENGTH:
        raise _malformed(f"iv is {len(nonce)} octets, not {NONCE_LENGTH}")
    if len(tag) != TAG_LENGTH:
        raise _malformed(f"tag is {len(tag)} octets, not {TAG_LENGTH}")
    if len(jwe) > 5:        # protected, aad, iv, ciphertext and tag were all read above: anything else?
        if jwe.get("encrypted_key") not in (None, ""):
            raise _malformed("encrypted_key must be empty with alg dir")
        if jwe.get("unprotected") or jwe.get("header"):
            raise _malformed("unprotected header parameters are not accepted; use the protected header")
    if expected_salt is not None and nonce[:SALT_LENGTH] != expected_salt:
        raise N32Error(403, errors.DECIPHERING_FAILED,
                       "reformattedData JWE: iv does not start with the IV salt of the session key "
                       "(N32-KDF parameters or key direction differ)",
                       n32f_error_type=errors.DECIPHERING_FAILED)
    try:
        additional_data = f"{protected_text}.{aad_text}".encode("ascii")
        plaintext = (aead or suite.aead(key)).decrypt(nonce, ciphertext + tag, additional_data)
    except InvalidTag:
        raise _integrity("AEAD verification failed (protected header, aad, iv, ciphertext or tag altered, "
                         "or different session key)") from None
    if not (ours or protected_text == _protected(enc)):   # not the form we send (verified above)
        try:
            header = json_object(protected)
        except ValueError as exc:
            raise _integrity(f"protected header is not a JSON object ({exc})") from None
        if header.get("alg") != "dir" or header.get("enc") != enc or not header.keys() <= _PROTECTED_PARAMS:
            raise _integrity(f"protected header must be alg dir, enc {enc} (plus optional kid, typ, cty); got "
                             f"alg {header.get('alg')!r}, enc {header.get('enc')!r}, members {sorted(header)}")
    # From here on the content is authentic: what cannot be read is a reconstruction failure
    # (403, like every N32-f error type; docs/interop-profile.md "N32-f failure classes").
    try:
        block = json_object(aad) if aad_block is None else aad_block
    except ValueError as exc:
        raise _unreadable("/", f"aad is not a UTF-8 JSON object ({exc})") from None
    try:        # json_object(plaintext, duplicates=True), without the call
        body = body_json.parse_within(plaintext, where="JSON")
    except N32Error as e:
        raise _unreadable("/dataToEncrypt", f"plaintext is not a UTF-8 JSON object ({e.detail})") from None
    except RecursionError:
        raise _unreadable("/dataToEncrypt", "plaintext is not a UTF-8 JSON object (JSON nested too deeply)") from None
    except ValueError as exc:
        raise _unreadable("/dataToEncrypt", f"plaintext is not a UTF-8 JSON object ({exc})") from None
    if type(body) is not dict:
        raise _unreadable("/dataToEncrypt", "plaintext is not a UTF-8 JSON object (not a JSON object)")
    data = body.get("dataToEncrypt", [])  # profile 23: a missing member means nothing was encrypted
    if not isinstance(data, list):
        raise _unreadable("/dataToEncrypt", "dataToEncrypt is not an array")
    return block, data, nonce, (aad if aad_block is None else None)
