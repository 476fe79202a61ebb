"""N32-f session keys and IV salts (TS 33.501 §13.2.4.4.1; N32-SPEC §4; profile points 8-11).

``N32-KDF(label, L) = HKDF-Expand(PRK = N32-f master key, info = "N32" || context ID || label, L)``
(RFC 5869 §2.3; HKDF-Extract is *not* used). The master key is the 64-octet TLS exporter value
(label ``EXPORTER_3GPP_N32_MASTER``, empty context) of the N32-c connection.

Points TS 33.501 leaves open are per-peer options here (profile 9): the hash (``hash_name``)
and which N32-f context ID enters ``info`` (``kdf_context``). Context IDs enter ``info`` as the
ASCII text they had on the wire, without case folding (profile 6).

Invalid arguments are configuration or programming errors, not protocol failures, so they
raise ``ValueError``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, fields

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from . import suites

LABELS = ("parallel_request_key", "parallel_response_key", "reverse_request_key", "reverse_response_key")
SALT_LABELS = ("parallel_request_iv_salt", "parallel_response_iv_salt",
               "reverse_request_iv_salt", "reverse_response_iv_salt")
SALT_LENGTH = 8  # profile 10; with the 32-bit SEQ it makes the 96-bit GCM nonce (NIST SP 800-38D §8.2.1)
MASTER_KEY_LENGTH = 64  # TS 33.501 §13.2.2.2 step 4 / profile 8
KDF_CONTEXTS = ("default", "initiator", "responder", "joined")

_HASHES = {"sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}
_CONTEXT_ID = re.compile(r"[0-9A-Fa-f]{16}")


# Which key each side sends and receives with (profile 9): the N32-c initiator is the HTTP client
# of the "parallel" session, the responder the client of the "reverse" one. (role, kind) -> label.
SEND_LABELS = {("initiator", "request"): "parallel_request", ("initiator", "response"): "reverse_response",
               ("responder", "request"): "reverse_request", ("responder", "response"): "parallel_response"}
RECEIVE_LABELS = {("initiator", "request"): "reverse_request", ("initiator", "response"): "parallel_response",
                  ("responder", "request"): "parallel_request", ("responder", "response"): "reverse_response"}


def key_length(enc: str) -> int:
    """Session key length in octets for a JWE ``enc`` value (the suite registry, n32/suites.py)."""
    return suites.jwe(enc).key_length


def n32_kdf(master: bytes, context_id: str, label: str, length: int, hash_name: str = "sha256") -> bytes:
    """One N32-KDF run: HKDF-Expand(master, b"N32" + ascii(context_id) + ascii(label), length).

    ``context_id`` is any ASCII string (a context ID, or the joined ``"<i>-<r>"`` form). Any
    non-empty ``master`` is accepted; the protocol uses the 64-octet exporter value.
    """
    if not master:
        raise ValueError("N32-f master key is empty")
    try:
        algorithm = _HASHES[hash_name]()
    except KeyError:
        raise ValueError(f"unsupported N32-KDF hash {hash_name!r} "
                         f"(supported: {', '.join(_HASHES)})") from None
    try:
        info = b"N32" + context_id.encode("ascii") + label.encode("ascii")
    except UnicodeEncodeError:
        raise ValueError("N32-KDF context ID and label must be ASCII") from None
    return HKDFExpand(algorithm, length, info).derive(master)


@dataclass(frozen=True, repr=False)
class SessionKeys:
    """The four session keys and four IV salts of one N32-f context (attribute names = labels)."""

    parallel_request_key: bytes
    parallel_response_key: bytes
    reverse_request_key: bytes
    reverse_response_key: bytes
    parallel_request_iv_salt: bytes
    parallel_response_iv_salt: bytes
    reverse_request_iv_salt: bytes
    reverse_response_iv_salt: bytes

    def __repr__(self) -> str:
        """Names and lengths only: key material must never reach a log."""
        return "SessionKeys(" + ", ".join(f"{f.name}=<{len(getattr(self, f.name))} octets>"
                                          for f in fields(self)) + ")"


def _context_for(label: str, initiator: str, responder: str, kdf_context: str) -> str:
    """Which context ID string enters ``info`` for ``label`` (profile 9)."""
    if kdf_context == "default":
        # Each HTTP session is bound to the ID of the SEPP acting as its server: in the parallel
        # session the N32-c responder is the HTTP server, in the reverse session the initiator.
        return responder if label.startswith("parallel_") else initiator
    if kdf_context == "initiator":
        return initiator
    if kdf_context == "responder":
        return responder
    if kdf_context == "joined":
        return f"{initiator}-{responder}"
    raise ValueError(f"unknown kdf_context {kdf_context!r} (supported: {', '.join(KDF_CONTEXTS)})")


def derive_session_keys(master: bytes, initiator_context_id: str, responder_context_id: str,
                        enc: str, kdf_context: str = "default", hash_name: str = "sha256") -> SessionKeys:
    """Derive all keys and salts of a context (TS 33.501 §13.2.4.4.1, profile 9-10).

    ``initiator_context_id``/``responder_context_id`` are the N32-f context IDs chosen by the
    N32-c initiator and responder (16 hex digits each, profile 6).
    """
    for name, cid in (("initiator", initiator_context_id), ("responder", responder_context_id)):
        if not isinstance(cid, str) or not _CONTEXT_ID.fullmatch(cid):
            raise ValueError(f"{name} N32-f context ID must be 16 hex digits, got {cid!r}")
    length = key_length(enc)
    out = {}
    for label in LABELS + SALT_LABELS:
        cid = _context_for(label, initiator_context_id, responder_context_id, kdf_context)
        out[label] = n32_kdf(master, cid, label, length if label in LABELS else SALT_LENGTH, hash_name)
    return SessionKeys(**out)
