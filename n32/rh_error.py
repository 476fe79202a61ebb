"""Error messages originated by a roaming hub (TS 33.501 §13.2.4.5.2a, Rel-18).

A roaming hub that refuses to deliver an N32-f request answers it itself. Having no SEPP key, it
sends an N32fReformattedRspMsg whose ``reformattedData`` carries only metadata (the request's
N32-f message ID and context ID) in ``aad`` with an empty ``ciphertext`` and no ``iv``/``tag``, and
its signed patch (JWS, ES256) adds the error: ``/statusLine`` and a ProblemDetails ``payload``.
Its JWS ``tag`` is the tag of the request's JWE, binding the error to that request (our profile).

The receiving SEPP recognises such a message by its reformattedData, accepts it only if the
single signer is the adjacent hub (our first-hop IPX, with our configured key), matches it to the
pending request by messageId and tag, and only lets the patch set the status and the payload.
"""
from __future__ import annotations

from typing import Any

import jsonpatch

from . import jwe, jws
from .errors import N32Error

_ALLOWED_PATHS = ("/statusLine", "/payload")


def make(request_body: dict, identity: str, private_key_pem: bytes, status: int, cause: str,
         detail: str) -> dict:
    """The hub's error answer to ``request_body`` (an N32fReformattedReqMsg)."""
    reformatted = request_body["reformattedData"]
    meta = jwe.peek_aad(reformatted)["metaData"]
    block = {"metaData": {"n32fContextId": meta["n32fContextId"], "messageId": meta["messageId"],
                          "authorizedIpxId": identity}}
    problem = {"title": "Roaming hub error", "status": status, "cause": cause, "detail": detail}
    ops = [{"op": "add", "path": "/statusLine", "value": str(status)},
           {"op": "add", "path": "/payload", "value": [{"iePath": "", "ieValueLocation": "BODY", "value": problem}]}]
    return {"reformattedData": {"aad": jwe.b64url_encode(jwe.json_dumps(block)), "ciphertext": ""},
            "modificationsBlock": [jws.sign_modifications(private_key_pem, identity, ops, reformatted.get("tag", ""))]}


def is_rh_error(body: Any) -> bool:
    r = body.get("reformattedData") if isinstance(body, dict) else None
    return isinstance(r, dict) and "iv" not in r and "tag" not in r and not r.get("ciphertext")


def open_error(body: dict, message_id: str, request_tag: str, adjacent_hub: str,
               hub_keys: list[str]) -> tuple[int, dict]:
    """Verify a hub error for the pending request; returns (status, ProblemDetails)."""
    def bad(detail: str) -> N32Error:
        return N32Error(502, "INVALID_RH_ERROR", f"roaming hub error rejected: {detail}")

    block = jwe.peek_aad(body["reformattedData"])
    if set(block) != {"metaData"} or block["metaData"].get("messageId") != message_id:
        raise bad("it must carry only the metadata of the pending request")
    entries = body.get("modificationsBlock") or []
    if len(entries) != 1:
        raise bad("exactly one JWS, by the adjacent hub, is expected")
    try:
        payload = jws.verify_modifications(entries[0], hub_keys)
    except N32Error as e:
        raise bad(f"JWS not verified with the key of {adjacent_hub}: {e.detail}") from None
    if payload.get("identity") != adjacent_hub:
        raise bad(f"signed by {payload.get('identity')}, not by the adjacent hub {adjacent_hub}")
    if payload.get("tag") != request_tag:
        raise bad("it belongs to another request (tag mismatch)")
    ops = payload.get("operations") or []
    if any(op.get("op") != "add" or op.get("path") not in _ALLOWED_PATHS for op in ops):
        raise bad("its patch may only add /statusLine and /payload")
    result = jsonpatch.apply_patch(block, ops)
    try:
        status = int(str(result["statusLine"])[:3])
        problem = result["payload"][0]["value"]
    except (KeyError, IndexError, TypeError, ValueError):
        raise bad("no status or ProblemDetails in the patch") from None
    if not 400 <= status < 600 or not isinstance(problem, dict):
        raise bad(f"status {status} is not an error")
    return status, problem
