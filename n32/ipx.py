"""What a roaming intermediary does to an N32-f message (TS 33.501 §13.2.4.5-13.2.4.6).

It reads the clear part (the JWE ``aad``), computes an RFC 6902 patch against the block as the
previous intermediary left it, signs ``{"identity","operations","tag"}`` with ES256 and appends
the JWS to ``modificationsBlock``, even when it changes nothing (operations null), so that its
entry cannot be dropped unnoticed. It never holds a SEPP key and never touches the JWE.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any

import jsonpatch

from . import jwe, jws
from .errors import N32Error, bad_request


@dataclass(frozen=True)
class Rule:
    """One modification rule of the IPX configuration."""

    direction: str = "request"                  # request | response
    method: str | None = None                   # request line method (requests only)
    path: str | None = None                     # regular expression on the request line path
    peer: str | None = None                     # receiving/sending SEPP context ID is opaque: match authority instead
    patch: tuple[dict, ...] = ()                # RFC 6902 operations on the clear block
    set_headers: tuple[tuple[str, str], ...] = ()  # convenience: replace or add a clear header value

    def matches(self, direction: str, block: dict) -> bool:
        if direction != self.direction:
            return False
        line = block.get("requestLine") or {}
        if self.method and direction == "request" and line.get("method") != self.method:
            return False
        if self.path and direction == "request" and not re.search(self.path, str(line.get("path", ""))):
            return False
        if self.peer and direction == "request" and self.peer not in str(line.get("authority", "")):
            return False
        return True


@dataclass
class Result:
    body: dict
    operations: list[dict] | None
    block: dict = field(repr=False, default_factory=dict)


def current_block(body: dict) -> dict:
    """The clear block as the previous intermediaries left it (their patches applied in order)."""
    reformatted = body.get("reformattedData") if isinstance(body, dict) else None
    if not isinstance(reformatted, dict):
        raise bad_request("not an N32fReformattedReqMsg/RspMsg", cause="INVALID_MSG_FORMAT")
    doc = jwe.peek_aad(reformatted)
    for entry in body.get("modificationsBlock") or []:
        try:
            ops = jwe.json_object(jwe.b64url_decode(entry["payload"])).get("operations")
        except (KeyError, TypeError, N32Error) as e:
            raise bad_request(f"unreadable modificationsBlock entry: {e}", cause="INVALID_MSG_FORMAT") from None
        if ops:
            doc = jsonpatch.apply_patch(doc, ops)
    return doc


def _header_ops(doc: dict, headers: tuple[tuple[str, str], ...]) -> list[dict]:
    ops: list[dict] = []
    current = doc.get("headers") or []
    for name, value in headers:
        idx = next((i for i, h in enumerate(current) if str(h.get("header", "")).lower() == name.lower()), None)
        if idx is None:
            ops.append({"op": "add", "path": "/headers/-", "value": {"header": name.lower(), "value": value}})
        else:
            ops.append({"op": "replace", "path": f"/headers/{idx}/value", "value": value})
    return ops


def modify(body: dict, identity: str, private_key_pem: bytes, rules: list[Rule], direction: str) -> Result:
    """Append this intermediary's signed modification to ``body`` (a new dict is returned)."""
    doc = current_block(body)
    ops: list[dict] = []
    for rule in rules:
        if rule.matches(direction, doc):
            rule_ops = list(rule.patch) + _header_ops(jsonpatch.apply_patch(doc, ops) if ops else doc,
                                                      rule.set_headers)
            ops += rule_ops
    if ops:
        doc = jsonpatch.apply_patch(doc, ops)  # fails here, not at the SEPP, if a rule does not apply
    tag = body["reformattedData"].get("tag", "")
    signed = jws.sign_modifications(private_key_pem, identity, ops or None, tag)
    out = copy.copy(body)
    out["modificationsBlock"] = list(body.get("modificationsBlock") or []) + [signed]
    return Result(out, ops or None, doc)
