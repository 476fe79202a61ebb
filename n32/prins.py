"""N32-f PRINS message protection (TS 33.501 §13.2.4, TS 29.573 §5.3/§6.2; profile 12-16, 23-26).

The sending SEPP reformats an HTTP message into DataToIntegrityProtectBlock + dataToEncrypt and
seals it as a flattened JWE with the session key of its role and direction. The receiving SEPP
looks up the context by the ID in metaData (its own ID), decrypts, checks replay, checks the
roaming intermediaries' modifications and restores the message.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Iterator

import orjson

from . import errors, jwe, reformat
from .errors import N32Error
from .message import HttpRequest, HttpResponse

NULL_IPX = "NULL"  # profile 15: authorizedIpxId when no RI may modify
# TS 33.501 §13.2.2.2 step 7: N32-c parameters relevant to the RIs travel in clear with integrity
# protection over N32-f. Carrier (our profile): this top-level member of DataToIntegrityProtectBlock
# in the first request a SEPP sends on a context, answered in the response to it.
RI_PARAMETERS = "n32cParameters"


def new_message_id() -> str:
    """Profile 15: decimal string of an unsigned 64-bit random integer. The integers come from
    the OS CSPRNG 256 at a time: one getrandom call per message was an eighth of a protect."""
    global _ids
    try:
        return str(next(_ids))
    except StopIteration:
        _ids = iter(memoryview(os.urandom(8 * _IDS_PER_DRAW)).cast("Q"))
        return str(next(_ids))


_IDS_PER_DRAW = 256
_ids: Iterator[int] = iter(())


def _forget_ids() -> None:
    """A forked child (a worker) must not issue the integers its parent drew."""
    global _ids
    _ids = iter(())


os.register_at_fork(after_in_child=_forget_ids)


def metadata(ctx: Any, message_id: str, authorized_ipx: str | None, null_form: str = "string") -> dict:
    """metaData of an outgoing message: the *receiver's* context ID (profile 6, 24)."""
    ipx: Any = authorized_ipx if authorized_ipx else (None if null_form == "json-null" else NULL_IPX)
    return {"n32fContextId": ctx.peer_context_id, "messageId": message_id, "authorizedIpxId": ipx}


def dumps(body: dict) -> bytes:
    """An N32fReformattedReqMsg/RspMsg from :func:`protect_request`/:func:`protect_response` as
    sent. It holds only the JWE's base64url strings, so orjson writes the octets the standard
    library would (no number, no non-ASCII text): the checks of n32/body.py's writer, three scans
    of the whole message, are not needed."""
    return orjson.dumps(body)


def _seal(ctx: Any, kind: str, block: dict, data: list) -> dict:
    key, counter, enc, aead = ctx.sending(kind)
    return jwe.encrypt(key, counter.next(), enc, block, data, aead)


def protect_request(ctx: Any, req: HttpRequest, sel: reformat.IeSelection, message_id: str,
                    authorized_ipx: str | None = None, null_form: str = "string",
                    extra: dict | None = None) -> tuple[dict, int]:
    """N32fReformattedReqMsg for ``req`` (TS 29.573 §6.2.5.2.2) and the number of encrypted IEs.

    ``extra`` adds top-level members to the clear block (integrity protected, readable by IPXs),
    e.g. ``n32cParameters`` (TS 33.501 §13.2.2.2 step 7; our interop profile)."""
    block, data = reformat.reformat_request(req, sel, metadata(ctx, message_id, authorized_ipx, null_form))
    block.update(extra or {})
    return {"reformattedData": _seal(ctx, "request", block, data)}, len(data)


def protect_response(ctx: Any, rsp: HttpResponse, sel: reformat.IeSelection, message_id: str,
                     authorized_ipx: str | None = None, null_form: str = "string",
                     extra: dict | None = None) -> tuple[dict, int]:
    """N32fReformattedRspMsg; the response reuses the request's messageId (TS 33.501 §13.2.4.3.1.2)."""
    block, data = reformat.reformat_response(rsp, sel, metadata(ctx, message_id, authorized_ipx, null_form))
    block.update(extra or {})
    return {"reformattedData": _seal(ctx, "response", block, data)}, len(data)


class Opened:
    """A verified N32-f message: the context, the (patched) clear block and the message. A plain
    class (one per message opened: the dataclass's constructor cost 0.6 µs)."""

    __slots__ = ("ctx", "message_id", "block", "message", "modifications")

    def __init__(self, ctx: Any, message_id: str, block: dict, message: HttpRequest | HttpResponse,
                 modifications: list[dict] | None = None) -> None:
        self.ctx = ctx
        self.message_id = message_id
        self.block = block
        self.message = message
        self.modifications = [] if modifications is None else modifications  # verified JWS payloads, in order

    def __repr__(self) -> str:
        return f"Opened(message_id={self.message_id!r}, message={self.message!r})"


# check_modifications(ctx, body, aad_block, tag) -> (patched_block, payloads); set by the IPX
# verification module (n32/modifications.py) so that this module stays about the JWE.
ModificationCheck = Callable[[Any, dict, dict, str], tuple[dict, list[dict]]]


def _reformatted(body: Any) -> dict:
    if not isinstance(body, dict) or not isinstance(body.get("reformattedData"), dict):
        raise errors.bad_request("body is not an N32fReformattedReqMsg/RspMsg: reformattedData missing",
                                 cause="INVALID_MSG_FORMAT")
    return body["reformattedData"]


class Peeked:
    """The clear block of an N32-f message read without any key (nothing authenticated yet).
    A plain class: a frozen dataclass's constructor cost a microsecond per message."""

    __slots__ = ("aad", "block", "text", "meta", "jwe")

    def __init__(self, aad: str, block: dict, text: bytes | None = None, jwe_obj: dict | None = None) -> None:
        self.aad = aad              # the aad text it was decoded from
        self.block = block
        self.text = text            # the JSON text it was parsed from (aad decoded)
        self.meta: dict = block["metaData"]
        self.jwe = jwe_obj          # the reformattedData object it was read from


def peek(body: Any) -> Peeked:
    """Read metaData without any key (to find the context); hand the result to :func:`open_request`
    so that the block is decoded once per hop."""
    jwe_obj = body.get("reformattedData") if type(body) is dict else None
    if type(jwe_obj) is not dict:
        jwe_obj = _reformatted(body)        # refuses it
    block, aad = jwe.peek_aad_text(jwe_obj)
    meta = block.get("metaData")
    if not isinstance(meta, dict) or not isinstance(meta.get("n32fContextId"), str) \
            or not isinstance(meta.get("messageId"), str):
        raise errors.bad_request("metaData with n32fContextId and messageId is required",
                                 cause="INVALID_MSG_FORMAT")
    return Peeked(jwe_obj["aad"], block, aad, jwe_obj)


def peek_metadata(body: Any) -> dict:
    """The metaData of an N32-f message, read without any key (to find the context)."""
    return peek(body).meta


def _open(ctx: Any, kind: str, body: Any, check_mods: ModificationCheck | None,
          peeked: Peeked | None = None) -> tuple[dict, list, str, list, bytes | None]:
    """(block, dataToEncrypt, messageId, verified modifications, the block's JSON text if not patched)."""
    # the object peek() read (and checked) for this very body, else checked here
    jwe_obj = peeked.jwe if peeked is not None and type(body) is dict and body.get("reformattedData") is peeked.jwe \
        and peeked.jwe is not None else _reformatted(body)
    key, salt, window, enc, aead = ctx.receiving(kind)
    known = peeked.block if peeked is not None and peeked.aad is jwe_obj.get("aad") else None
    block, data, nonce, aad = jwe.decrypt_with_aad(key, jwe_obj, salt, enc, known, aead)
    text = aad if aad is not None else peeked.text if known is not None else None
    seq = int.from_bytes(nonce[8:], "big")
    if not window.admit(seq):
        raise N32Error(403, "REPLAY_DETECTED", f"nonce sequence {seq} already used or too old")
    # the peer sent on this context, so it holds it: we may send on it too (make before break,
    # docs/interop-profile.md "Rekey")
    ctx.send_ready = True
    meta = block.get("metaData")
    if type(meta) is not dict or type(meta.get("messageId")) is not str:
        raise N32Error(403, errors.MESSAGE_RECONSTRUCTION_FAILED, "metaData with a messageId string is required",
                       n32f_error_type=errors.MESSAGE_RECONSTRUCTION_FAILED,
                       error_details=[{"attribute": "/metaData", "msgReconstructFailReason": errors.INVALID_JSON_POINTER}])
    mods: list[dict] = []
    if body.get("modificationsBlock") is not None or check_mods is not None:
        if check_mods is None:
            raise N32Error(403, errors.INTEGRITY_CHECK_ON_MODIFICATIONS_FAILED,
                           "modificationsBlock present but no roaming intermediary may modify",
                           n32f_error_type=errors.INTEGRITY_CHECK_ON_MODIFICATIONS_FAILED)
        block, mods = check_mods(ctx, body, block, jwe_obj.get("tag", ""))
        if mods:    # patched: the bound of the transmitted text is not that of the block
            text = None
    return block, data, str(block["metaData"]["messageId"]), mods, text


def open_request(ctx: Any, body: Any, check_mods: ModificationCheck | None = None,
                 peeked: Peeked | None = None, now: float | None = None) -> Opened:
    """Verify and restore an N32fReformattedReqMsg addressed to ``ctx`` (TS 33.501 §13.2.4.7);
    ``peeked``: what :func:`peek` gave for ``body``; ``now``: the caller's clock, for the age of
    the messageIds remembered against replays (the core reads no clock)."""
    block, data, message_id, mods, text = _open(ctx, "request", body, check_mods, peeked)
    if ctx.message_ids.seen(message_id, now):
        raise N32Error(403, "REPLAY_DETECTED", f"messageId {message_id} already received")
    req = reformat.restore_request(block, data, text)
    ctx.message_ids.add(message_id, now)
    return Opened(ctx, message_id, block, req, mods)


def open_response(ctx: Any, body: Any, expected_message_id: str,
                  check_mods: ModificationCheck | None = None) -> Opened:
    """Verify and restore an N32fReformattedRspMsg for the request ``expected_message_id``."""
    block, data, message_id, mods, text = _open(ctx, "response", body, check_mods)
    if message_id != expected_message_id:
        raise N32Error(403, errors.INTEGRITY_CHECK_FAILED,
                       f"response messageId {message_id} does not match request {expected_message_id}",
                       n32f_error_type=errors.INTEGRITY_CHECK_FAILED)
    return Opened(ctx, message_id, block, reformat.restore_response(block, data, text), mods)
