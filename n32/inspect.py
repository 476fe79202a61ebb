"""Offline inspection of N32-f messages: decode, decrypt with a key log, verify, explain.

Used by the mitmweb content view and by ``python -m addons.decode``. Given a key-log record
(n32.keylog) the session keys are re-derived; which of the four keys protects a message follows
from the receiver's context ID in metaData and the direction (TS 33.501 §13.2.4.4.1):

    request  to the N32-c responder -> parallel_request_*   (the initiator is the HTTP client)
    request  to the N32-c initiator -> reverse_request_*
    response to the N32-c initiator -> parallel_response_*
    response to the N32-c responder -> reverse_response_*
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable

from . import jwe, keylog
from .kdf import RECEIVE_LABELS
from .errors import N32Error


@dataclass
class Decoded:
    kind: str                         # "request" | "response"
    block: dict                       # DataToIntegrityProtectBlock (clear part)
    data_to_encrypt: list | None      # None when no key was available
    key_label: str | None = None
    record: dict | None = None
    error: str | None = None
    modifications: list[dict] = field(default_factory=list)

    @property
    def decrypted(self) -> bool:
        return self.data_to_encrypt is not None


def key_label(record: dict, receiver_context_id: str, kind: str) -> str:
    receiver = "responder" if receiver_context_id == record["responderContextId"] else "initiator"
    return RECEIVE_LABELS[(receiver, kind)]


def find_record(records: Iterable[dict], context_id: str) -> dict | None:
    for r in records:
        if context_id in (r.get("initiatorContextId"), r.get("responderContextId")):
            return r
    return None


def kind_of(body: dict, block: dict) -> str:
    return "response" if "statusLine" in block else "request"


def decode(body: Any, records: Iterable[dict]) -> Decoded:
    """Decode an N32fReformattedReqMsg/RspMsg; decrypt if a key-log record matches."""
    reformatted = body.get("reformattedData") if isinstance(body, dict) else None
    block = jwe.peek_aad(reformatted)
    kind = kind_of(body, block)
    mods = [_payload_of(m) for m in (body.get("modificationsBlock") or [])]
    ctx_id = str(block.get("metaData", {}).get("n32fContextId", ""))
    record = find_record(records, ctx_id)
    if record is None:
        return Decoded(kind, block, None, error=f"no key-log entry for context {ctx_id}", modifications=mods)
    label = key_label(record, ctx_id, kind)
    try:
        keys = keylog.keys_from_keylog(record)
    except (KeyError, TypeError, ValueError) as e:  # a damaged key-log line must not stop the decoder
        return Decoded(kind, block, None, label, error=f"key-log entry for context {ctx_id} unusable: {e!r}",
                       modifications=mods)
    key, salt = getattr(keys, f"{label}_key"), getattr(keys, f"{label}_iv_salt")
    try:
        block, data, _nonce = jwe.decrypt(key, reformatted, expected_salt=salt,
                                          expected_enc=record.get("jweCipherSuite"))
    except N32Error as e:
        return Decoded(kind, block, None, label, record, error=f"{e.cause}: {e.detail}", modifications=mods)
    return Decoded(kind, block, data, label, record, modifications=mods)


def _payload_of(entry: Any) -> dict:
    try:
        return jwe.json_object(jwe.b64url_decode(entry["payload"]))
    except Exception:
        return {"error": "not a flattened JWS"}


def reveal(value: Any, data: list | None) -> Any:
    """``value`` with every {"encBlockIndex": n} replaced by {"encrypted": <clear value>}."""
    if isinstance(value, dict):
        if "encBlockIndex" in value and len(value) == 1:
            n = value["encBlockIndex"]
            if data is not None and isinstance(n, int) and 0 <= n < len(data):
                return {"\U0001f512encrypted": data[n]}
            return {"\U0001f512encrypted": f"<block {n}: no key>"}
        return {k: reveal(v, data) for k, v in value.items()}
    if isinstance(value, list):
        return [reveal(v, data) for v in value]
    return value


_URI_INDEX = re.compile(r'\{\s*"?encBlockIndex"?\s*:\s*(\d+)\s*\}')


def reveal_uri(text: str | None, data: list | None) -> str | None:
    """``text`` (requestLine path or queryFragment) with each literal ``{encBlockIndex:n}`` (profile
    16a, 22) replaced by the marked clear value."""
    def sub(m: re.Match) -> str:
        n = int(m.group(1))
        value = data[n] if data is not None and n < len(data) else f"<block {n}: no key>"
        return f"{{\U0001f512encrypted:{value}}}"
    return _URI_INDEX.sub(sub, text) if isinstance(text, str) else text


def render_text(d: Decoded) -> str:
    """A human view: start line, headers, payload, encrypted values marked, modifications."""
    import json

    b, data = d.block, d.data_to_encrypt
    meta = b.get("metaData", {})
    out = [f"N32-f {d.kind}  messageId={meta.get('messageId')}  n32fContextId={meta.get('n32fContextId')}"
           f"  authorizedIpxId={meta.get('authorizedIpxId')}",
           f"key: {d.key_label or '-'}  " + ("decrypted" if d.decrypted else f"NOT decrypted ({d.error})"), ""]
    if "requestLine" in b:
        rl = b["requestLine"]
        path = reveal_uri(rl.get("path", ""), data)
        q = reveal_uri(rl.get("queryFragment"), data)
        out.append(f"{rl.get('method')} {rl.get('scheme')}://{rl.get('authority')}{path}"
                   + (f"?{q}" if q else "") + f" {rl.get('protocolVersion', '')}")
    else:
        out.append(f"status {b.get('statusLine')}")
    for h in b.get("headers") or []:
        out.append(f"{h.get('header')}: {json.dumps(reveal(h.get('value'), data), ensure_ascii=False)}")
    out.append("")
    for p in b.get("payload") or []:
        out.append(f"{p.get('iePath')} [{p.get('ieValueLocation')}] = "
                   f"{json.dumps(reveal(p.get('value'), data), ensure_ascii=False)}")
    for i, m in enumerate(d.modifications):
        out.append("")
        out.append(f"modification {i + 1} by {m.get('identity')}: {json.dumps(m.get('operations'))}")
    return "\n".join(out)
