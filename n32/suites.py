"""The cipher-suite registry: every JWE and JWS suite the SEPP knows, in one place.

Config (which names an operator may list), the N32-KDF (how long a session key is) and the JWE
code (which AEAD seals and opens) all read this registry; adding a suite is one
:func:`register_jwe` call and nothing else. TS 33.501 §13.2.4.9 and our profile (point 10-11):

* JWE ``enc`` (RFC 7518 §5.1) with ``alg: dir``: an AEAD taking a 96-bit nonce (8-octet IV salt
  || 32-bit SEQ, TS 33.501 §13.2.4.4.1) and producing a 128-bit tag;
* JWS ``alg``: ES256 only on N32 (TS 33.501 §13.2.4.9; SCAS TS 33.517 4.2.2.7).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_LENGTH = 12  # 96-bit nonce = 8-octet salt || 32-bit SEQ (TS 33.501 §13.2.4.4.1)
TAG_LENGTH = 16    # RFC 7518 §5.3: full 128-bit tag


class Aead(Protocol):
    """What cryptography's AEAD classes offer (``AESGCM``, ``ChaCha20Poly1305``): ciphertext || tag."""

    def encrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes: ...

    def decrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes: ...


@dataclass(frozen=True)
class JweSuite:
    name: str                          # the JWE "enc" value, as on the wire and in the config
    key_length: int                    # session key octets the N32-KDF derives (TS 33.501 §13.2.4.4.1)
    aead: Callable[[bytes], Aead]      # key -> AEAD object (nonce 12 octets, tag 16 octets appended)


@dataclass(frozen=True)
class JwsSuite:
    name: str                          # the JWS "alg" value
    curve: str                         # JWK "crv" of the signing key


_JWE: dict[str, JweSuite] = {}
_JWS: dict[str, JwsSuite] = {}


def register_jwe(suite: JweSuite) -> JweSuite:
    """Make ``suite`` known to config, KDF and JWE. Registering a name twice is an error."""
    if suite.name in _JWE:
        raise ValueError(f"JWE suite {suite.name} is already registered")
    _JWE[suite.name] = suite
    return suite


def unregister_jwe(name: str) -> None:
    _JWE.pop(name, None)


def register_jws(suite: JwsSuite) -> JwsSuite:
    if suite.name in _JWS:
        raise ValueError(f"JWS suite {suite.name} is already registered")
    _JWS[suite.name] = suite
    return suite


def jwe(name: object) -> JweSuite:
    """The registered JWE suite ``name``; ``ValueError`` otherwise."""
    suite = _JWE.get(name) if isinstance(name, str) else None
    if suite is None:
        raise ValueError(f"unsupported JWE enc {name!r} (supported: {', '.join(_JWE)})")
    return suite


def jwe_names() -> tuple[str, ...]:
    return tuple(_JWE)


def jws_names() -> tuple[str, ...]:
    return tuple(_JWS)


# The suites of TS 33.501 §13.2.4.9 (RFC 7518 §5.3).
A128GCM = register_jwe(JweSuite("A128GCM", 16, AESGCM))
A256GCM = register_jwe(JweSuite("A256GCM", 32, AESGCM))
ES256 = register_jws(JwsSuite("ES256", "P-256"))
