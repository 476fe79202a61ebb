"""Roaming intermediary (IPX) modifications: ES256 flattened JWS (TS 33.501 §13.2.4.5-13.2.4.7,
§13.2.4.9; TS 33.210 JOSE profile; N32-SPEC §3.5, §3.7; profile points 7, 17, 18, 25).

Each IPX appends ``{"protected", "payload", "signature"}`` with protected header
``{"alg":"ES256","kid":<RFC 7638 thumbprint>}`` and payload
``{"identity": <IPX FQDN>, "operations": <RFC 6902 patch> | null, "tag": <JWE tag>}``.

The verifier never lets the token choose how it is verified: the ``alg`` is checked here to be
exactly ``ES256`` before jwcrypto sees the token (which is then also restricted to ES256), keys
come only from the caller (never from ``jwk``/``jku``/``x5u``/``x5c`` headers, which are refused),
and header parameters outside a small informational set (``crit``, ``b64``, ...) are refused.
Every failure is 403 ``INTEGRITY_CHECK_ON_MODIFICATIONS_FAILED``. Checking the payload ``tag``
against the JWE, the signer against ``authorizedIpxId`` and the patch against policy is the
caller's part (TS 33.501 §13.2.4.7).
"""
from __future__ import annotations

import json
from typing import Any, Sequence

from jwcrypto import jwk
from jwcrypto import jws as jjws
from jwcrypto.common import JWException

from . import errors, suites
from .errors import N32Error
from .jwe import b64url_decode, json_dumps, json_object

ALG = suites.ES256.name  # the only JWS algorithm on N32 (TS 33.501 §13.2.4.9)
_KEY_BEARING = ("jwk", "jku", "x5u", "x5c")  # would let the token bring its own key
_INFORMATIONAL = {"kid", "typ", "cty", "x5t", "x5t#S256"}


def _to_jwk(entry: bytes | str) -> jwk.JWK:
    data = entry.encode("ascii") if isinstance(entry, str) else entry
    try:
        key = jwk.JWK.from_pem(data)
    except (ValueError, TypeError, JWException) as exc:
        raise ValueError(f"not a PEM public key, certificate or private key: {exc}") from None
    if key.get("kty") != "EC" or key.get("crv") != "P-256":
        raise ValueError(f"ES256 needs an EC P-256 key, got kty {key.get('kty')} crv {key.get('crv')}")
    return key


def load_public_keys(entries: Sequence[bytes | str]) -> list[jwk.JWK]:
    """IPX verification keys from PEM public keys and/or PEM certificates (profile 7:
    ``rawPublicKeyList`` / ``certificateList`` entries). ``ValueError`` for anything that is not
    an EC P-256 public key or certificate (the certificate's validity is not checked here)."""
    keys = []
    for entry in entries:
        key = _to_jwk(entry)
        if key.has_private:
            raise ValueError("a private key was given where a public key or certificate is expected")
        keys.append(key)
    return keys


def kid_of(public_key_pem: bytes | str) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url) of a P-256 key given as PEM key or certificate."""
    return _to_jwk(public_key_pem).thumbprint()


def sign_modifications(private_key_pem: bytes, identity: str, operations: list | None, tag: str) -> dict:
    """The flattened JWS an IPX appends to ``modificationsBlock`` (TS 33.501 §13.2.4.5).

    ``operations`` is the RFC 6902 patch against the decoded ``aad`` (None when the IPX changes
    nothing; profile 25), ``tag`` the ``tag`` member of the JWE it applies to.
    """
    key = _to_jwk(private_key_pem)
    if not key.has_private:
        raise ValueError("signing needs the IPX's private key")
    token = jjws.JWS(json_dumps({"identity": identity, "operations": operations, "tag": tag}))
    token.add_signature(key, alg=ALG, protected=json_dumps({"alg": ALG, "kid": key.thumbprint()}).decode())
    return json.loads(token.serialize(compact=False))


def _rejected(detail: str) -> N32Error:
    return N32Error(403, errors.INTEGRITY_CHECK_ON_MODIFICATIONS_FAILED, f"modifications JWS: {detail}",
                    n32f_error_type=errors.INTEGRITY_CHECK_ON_MODIFICATIONS_FAILED)


def _check_headers(token: Any) -> None:
    """Profile checks before any crypto: shape, alg, key-bearing and unknown header parameters."""
    if not isinstance(token, dict) or not all(isinstance(token.get(m), str) for m in ("protected", "payload",
                                                                                        "signature")):
        raise _rejected("not a flattened JWS JSON object with protected, payload and signature")
    unprotected = token.get("header", {})
    if not isinstance(unprotected, dict) or "signatures" in token:
        raise _rejected("only the flattened JWS JSON serialisation, with an object as header, is accepted")
    try:
        protected = json_object(b64url_decode(token["protected"]))
        b64url_decode(token["payload"])
        b64url_decode(token["signature"])
    except ValueError as exc:
        raise _rejected(f"protected header, payload or signature malformed: {exc}") from None
    if protected.get("alg") != ALG or "alg" in unprotected:
        raise _rejected(f"alg must be {ALG} in the protected header, got {protected.get('alg')!r}")
    for name in list(protected) + list(unprotected):
        if name in _KEY_BEARING:
            raise _rejected(f"header parameter {name!r} is not accepted: "
                            "keys come from N32-c or configuration")
        if name != "alg" and name not in _INFORMATIONAL:
            raise _rejected(f"unsupported header parameter {name!r}")
    if protected.keys() & unprotected.keys():
        raise _rejected("protected and unprotected headers overlap")  # RFC 7515 §7.2.1


def verify_modifications(jws: Any, public_keys_pem: Sequence[bytes | str | jwk.JWK]) -> dict:
    """Verify one ``modificationsBlock`` entry against the keys of the IPXs (TS 33.501
    §13.2.4.7 step 5) and return its payload.

    ``public_keys_pem``: PEM public keys / certificates (or keys from :func:`load_public_keys`);
    entries that are no EC P-256 public key (they may come from the peer, profile 7) cannot
    verify anything and are skipped. The result always has ``identity`` (str), ``tag`` (str) and
    ``operations`` (a list; null, missing and ``[]`` all become ``[]``, profile 25).
    """
    _check_headers(jws)
    keys, unusable = [], 0
    for entry in public_keys_pem:
        try:
            keys.append(entry if isinstance(entry, jwk.JWK) else load_public_keys([entry])[0])
        except ValueError:
            unusable += 1
    try:
        token = jjws.JWS()
        token.allowed_algs = [ALG]
        token.deserialize(json.dumps(jws))
    except (JWException, ValueError, TypeError) as exc:
        raise _rejected(f"malformed ({exc})") from None
    for key in keys:
        try:
            token.verify(key, alg=ALG)
            break
        except (JWException, ValueError, TypeError):
            continue
    else:
        raise _rejected(f"signature does not verify with any of the {len(keys)} key(s) of the roaming "
                        f"intermediaries ({unusable} unusable key entries skipped)")
    try:
        payload = json_object(token.payload)
    except ValueError as exc:
        raise _rejected(f"payload: {exc}") from None
    operations = [] if payload.get("operations") is None else payload["operations"]
    if not isinstance(payload.get("identity"), str) or not payload["identity"] \
            or not isinstance(payload.get("tag"), str) or not isinstance(operations, list):
        raise _rejected("payload needs identity and tag strings and operations null or an array")
    return {**payload, "operations": operations}
