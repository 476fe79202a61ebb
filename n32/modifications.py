"""Verification of roaming-intermediary modifications at the receiving SEPP.

TS 33.501 §13.2.4.7 (steps 5-9 of N32-SPEC §3.6), §13.2.4.5-13.2.4.6; profile 17, 18, 25;
SCAS TS 33.517 4.2.2.7 (ES256 only) and 4.2.2.8 (no misplacement of encrypted IEs).

Each entry of ``modificationsBlock`` is a flattened JWS over ``{"identity","operations","tag"}``.
The first must be signed by ``metaData.authorizedIpxId``; each must carry this JWE's ``tag``;
each patch may only touch paths the signer's modification policy allows and never anything that
is, contains or leads through an ``{"encBlockIndex": n}`` object, nor ``/metaData``. The patches
are applied in order (RFC 6902, via jsonpatch), the second against the result of the first.
"""
from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

import jsonpatch
import jsonpointer

from . import errors, jws
from .errors import N32Error
from .jwe import json_object
from .policy import pointer_matches

MAX_INTERMEDIARIES = 2  # cIPX and pIPX (TS 33.501 §13.2.4.5)
NULL_IDS = (None, "NULL", "null", "")


@dataclass(frozen=True)
class Signer:
    """What the receiver knows of one roaming intermediary: its keys and its policy."""

    fqdn: str
    public_keys: tuple[str, ...]          # PEM public keys or certificates
    patterns: tuple[str, ...]             # JSON-pointer patterns into the clear block


def _fail(kind: str, ipx: str, detail: str) -> N32Error:
    return N32Error(403, kind, detail, n32f_error_type=kind,
                    failed_modifications=[{"ipxId": ipx, "n32fErrorType": kind}])


def _unverified_identity(entry: Any) -> str:
    """The signer's claimed identity, read only to pick the key that must verify it."""
    try:
        raw = entry["payload"]
        payload = json_object(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        identity = payload["identity"]
        if isinstance(identity, str):
            return identity
    except (KeyError, TypeError, ValueError):
        pass
    raise _fail(errors.INTEGRITY_CHECK_ON_MODIFICATIONS_FAILED, "unknown",
                "modificationsBlock entry is not a flattened JWS with an identity")


def _is_index(obj: Any) -> bool:
    return isinstance(obj, dict) and "encBlockIndex" in obj


def _contains_index(obj: Any) -> bool:
    if _is_index(obj):
        return True
    if isinstance(obj, dict):
        return any(_contains_index(v) for v in obj.values())
    if isinstance(obj, list):
        return any(_contains_index(v) for v in obj)
    return False


def _touches_encrypted(doc: Any, path: str) -> bool:
    """True if ``path`` is, contains or passes through an encBlockIndex object in ``doc``."""
    node = doc
    for token in jsonpointer.JsonPointer(path).parts:
        if _is_index(node):
            return True
        try:
            node = node[int(token)] if isinstance(node, list) and token.isdigit() else node[token]
        except (KeyError, IndexError, TypeError):
            return False  # a new member: nothing encrypted lives there
    return _contains_index(node)


def check_operations(doc: dict, ops: list[dict], signer: Signer, policy: bool = True) -> None:
    """Policy checks of one patch against the document it applies to (profile 18, 25);
    ``policy=False`` (offline inspection, the policy unknown) leaves out only the signer's paths."""
    kind = errors.MODIFICATIONS_INSTRUCTIONS_FAILED
    if not isinstance(ops, list):
        raise _fail(kind, signer.fqdn, "operations must be a JSON Patch array or null")
    for i, op in enumerate(ops):
        if not isinstance(op, dict) or not isinstance(op.get("path"), str) or "op" not in op:
            raise _fail(kind, signer.fqdn, f"operation {i} is not an RFC 6902 operation")
        paths = [op["path"]] + ([op["from"]] if isinstance(op.get("from"), str) else [])
        for path in paths:
            if path == "/metaData" or path.startswith("/metaData/") or path == "":
                raise _fail(kind, signer.fqdn, f"operation {i} touches {path or '/'}: metaData is not modifiable")
            if policy and not any(pointer_matches(p, path) for p in signer.patterns):
                raise _fail(kind, signer.fqdn, f"operation {i} ({op['op']} {path}) is outside the "
                            f"modification policy of {signer.fqdn}")
        if op["op"] in ("remove", "replace", "move", "copy") and any(_touches_encrypted(doc, p) for p in paths):
            raise _fail(kind, signer.fqdn, f"operation {i} ({op['op']} {op['path']}) touches an encrypted IE "
                        "(SCAS TS 33.517 4.2.2.8)")
        if op["op"] in ("add", "replace", "test") and _contains_index(op.get("value")):
            raise _fail(kind, signer.fqdn, f"operation {i} inserts an encBlockIndex reference")
        if op["op"] == "add" and any(_touches_encrypted(doc, p) for p in paths[:1]):
            raise _fail(kind, signer.fqdn, f"operation {i} adds inside an encrypted IE")


@dataclass(frozen=True)
class Step:
    """One verified ``modificationsBlock`` entry and the clear block after its patch."""

    index: int
    identity: str
    payload: dict
    block: dict


def verify_and_apply(block: dict, entries: Any, tag: str, signers: dict[str, Signer]) -> tuple[dict, list[dict]]:
    """Verify ``modificationsBlock`` and return (patched block, verified payloads in order)."""
    if not entries and block.get("metaData", {}).get("authorizedIpxId") in NULL_IDS:
        return block, []        # the usual case, without the generator below: nothing to verify
    doc, payloads = block, []
    for step in verify_steps(block, entries, tag, signers):
        doc = step.block
        payloads.append(step.payload)
    return doc, payloads


def verify_steps(block: dict, entries: Any, tag: str, signers: dict[str, Signer], *,
                 policy: bool = True) -> Iterator[Step]:
    """The verification of :func:`verify_and_apply`, one entry at a time: yields each verified
    entry, raises N32Error at the first failure. The SEPP, the content view and the offline
    decoder all verify with this (SCAS TS 33.517 4.2.2.7/4.2.2.8 hold for each)."""
    authorized = block.get("metaData", {}).get("authorizedIpxId")
    entries = entries or []
    integrity = errors.INTEGRITY_CHECK_ON_MODIFICATIONS_FAILED
    if not isinstance(entries, list):
        raise _fail(integrity, "unknown", "modificationsBlock must be an array")
    if authorized in NULL_IDS:
        if entries:
            raise _fail(integrity, _unverified_identity(entries[0]),
                        "authorizedIpxId is NULL, yet the message carries modifications")
        return
    if not entries:
        raise _fail(integrity, str(authorized), f"{authorized} is authorized but its JWS is missing (dropped?)")
    if len(entries) > MAX_INTERMEDIARIES:
        raise _fail(integrity, _unverified_identity(entries[-1]), "more than two roaming intermediaries signed")
    # The patches apply in place: ``block`` was decoded for this message alone and nothing reads
    # the unpatched form afterwards (no deep copy on the per-message path, issue 14).
    doc = block
    payloads: list[dict] = []
    for n, entry in enumerate(entries):
        identity = _unverified_identity(entry)
        if n == 0 and identity != authorized:
            raise _fail(integrity, identity, f"first modification is by {identity}, not by the authorized {authorized}")
        if any(p["identity"] == identity for p in payloads):
            raise _fail(integrity, identity, f"{identity} signed twice")
        signer = signers.get(identity)
        if signer is None or not signer.public_keys:
            raise _fail(integrity, identity, f"no keys known for roaming intermediary {identity}")
        try:
            payload = jws.verify_modifications(entry, list(signer.public_keys))
        except N32Error as e:
            raise _fail(integrity, identity, f"JWS of {identity}: {e.detail}") from None
        if payload.get("identity") != identity:
            raise _fail(integrity, identity, "JWS identity changed after verification")
        if payload.get("tag") != tag:
            raise _fail(integrity, identity, f"JWS of {identity} belongs to another message (tag mismatch)")
        ops = payload.get("operations")
        if ops not in (None, []):
            check_operations(doc, ops, signer, policy)
            try:
                doc = jsonpatch.apply_patch(doc, ops, in_place=True)
            # whatever the library cannot carry out on this document (e.g. "add" below a string
            # raises TypeError inside jsonpatch) is a failed modification, never a 500
            except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException, TypeError, ValueError,
                    KeyError, IndexError, AttributeError) as e:
                raise N32Error(403, errors.MODIFICATIONS_INSTRUCTIONS_FAILED, f"patch of {identity} failed: {e}",
                               n32f_error_type=errors.MESSAGE_RECONSTRUCTION_FAILED,
                               failed_modifications=[{"ipxId": identity,
                                                      "n32fErrorType": errors.MODIFICATIONS_INSTRUCTIONS_FAILED}],
                               error_details=[{"attribute": str(ops), "msgReconstructFailReason":
                                               errors.INVALID_JSON_POINTER}]) from None
        payloads.append(payload)
        yield Step(n, identity, payload, doc)


def signers_from(ipx_sec_info: Iterable[dict], patterns: dict[str, Iterable[str]]) -> dict[str, Signer]:
    """Signers from ``ipxProviderSecInfoList`` entries (PEM strings, profile 7) and policies."""
    out: dict[str, Signer] = {}
    for info in ipx_sec_info or []:
        fqdn = info.get("ipxProviderId")
        if not fqdn:
            continue
        keys = tuple(info.get("rawPublicKeyList") or ()) + tuple(info.get("certificateList") or ())
        out[fqdn] = Signer(fqdn, keys, tuple(patterns.get(fqdn, ())))
    return out
