"""N32-f integrity and replay (TS 33.501 §13.2.4.4, §13.2.4.7; TS 29.573 §6.2): every JWE member
tampered, replays, message-ID reuse, unknown and terminated contexts, crafted blocks."""
from __future__ import annotations

import copy
import json
import secrets
from typing import Any

from n32 import jwe

from ..checks import nssai_request, refusal_defect, require_not_delivered, require_problem, supi, valid_message
from n32io.h2client import Response

from ..runner import CONNECTION_ERRORS, Env, Failed, Refused, Trace
from . import case

PRINS = ("PRINS",)


def _flip(text: str) -> str:
    """The base64url text with its first character changed (a different octet string)."""
    return ("B" if text[0] != "B" else "C") + text[1:]


def _edit_aad(member: str, text: str) -> str:
    block = json.loads(jwe.b64url_decode(text))
    block["requestLine"]["method"] = "DELETE"
    return jwe.b64url_encode(jwe.json_dumps(block))


@case("n32f.tampered", "every JWE member tampered: refused, nothing delivered",
      "TS 33.501 §13.2.4.4/§13.2.4.7, RFC 7516: the receiving SEPP verifies the JWE (AES-GCM over protected, aad, "
      "iv, ciphertext, tag) and discards a message that does not verify", PRINS)
async def tampered(env: Env, t: Trace) -> None:
    s = await env.session()
    accepted = []
    for n, member in enumerate(("protected", "aad", "iv", "ciphertext", "tag")):
        body, _ = env.peer.protect(s, nssai_request(env, 50 + n))
        jw = dict(body["reformattedData"])
        jw[member] = _edit_aad(member, jw[member]) if member == "aad" else \
            jwe.b64url_encode(b'{"alg":"dir","enc":"A256GCM"}') if member == "protected" else _flip(jw[member])
        mark = env.nf.mark()
        rsp = await env.send(t, f"a valid message with its {member} altered", {**body, "reformattedData": jw})
        if (defect := await refusal_defect(env, t, rsp, mark, member)):
            accepted.append(defect)
    if accepted:
        raise Failed("; ".join(accepted))
    await valid_message(env, t)


@case("n32f.replay", "a replayed message and a reused messageId are refused",
      "TS 33.501 §13.2.4.4.1 (replay protection by the IV sequence), TS 29.573 §6.2 (messageId unique per "
      "context): a message received twice, or a new one reusing a messageId, is discarded", PRINS)
async def replay(env: Env, t: Trace) -> None:
    s = await env.session()
    body, mid = env.peer.protect(s, nssai_request(env, 60))
    first = await env.send(t, "a valid message", body)
    if getattr(first, "status", None) != 200:
        raise RuntimeError(f"the valid message was not served ({first}): the case cannot conclude")
    mark = env.nf.mark()
    rsp = await env.send(t, "the same message again (replay)", body)
    require_problem(rsp, "a replayed message")
    await require_not_delivered(env, t, mark, "a replayed message")
    again, _ = env.peer.protect(s, nssai_request(env, 61), message_id=mid)
    rsp = await env.send(t, f"a new message (fresh IV) reusing messageId {mid}", again)
    require_problem(rsp, "a reused messageId")
    await require_not_delivered(env, t, mark, "a reused messageId")


@case("n32f.context", "unknown and terminated N32-f contexts are refused",
      "TS 33.501 §13.2.2.4, TS 29.573 §5.3.2: N32-f messages are accepted only on an established context; after "
      "n32f-terminate the context is gone", PRINS)
async def contexts(env: Env, t: Trace) -> None:
    s = await env.session()
    body, _ = env.peer.protect(s, nssai_request(env, 62))
    block = json.loads(jwe.b64url_decode(body["reformattedData"]["aad"]))
    block["metaData"]["n32fContextId"] = secrets.token_hex(8)
    mark = env.nf.mark()
    rsp = await env.send(t, "a message naming an n32fContextId the target never issued",
                         env.peer.seal(s, block, [supi(env, 62)]))
    require_problem(rsp, "an unknown context")
    await require_not_delivered(env, t, mark, "an unknown context")
    old = await env.peer.handshake()
    t.sent("N32-c handshake (context A), then n32f-terminate of A")
    await env.peer.n32c_post("n32f-terminate", {"n32fContextId": old.context.peer_context_id})
    body, _ = env.peer.protect(old, nssai_request(env, 63))
    rsp = await env.send(t, "a message on the terminated context A", body)
    require_problem(rsp, "a terminated context")
    await require_not_delivered(env, t, mark, "a terminated context")
    await env.session(fresh=True)


@case("n32f.crafted", "crafted clear blocks from a keyed peer: 4xx, never 5xx, nothing delivered",
      "TS 29.573 §6.2.5 (DataToIntegrityProtectBlock), TS 29.500 §5.2.7: a malformed block is a client error "
      "(issue 13: encBlockIndex of the wrong type, dangling index, encBlockIndex in a clear header)", PRINS)
async def crafted(env: Env, t: Trace) -> None:
    s = await env.session()
    good, _ = env.peer.protect(s, nssai_request(env, 64))
    base = json.loads(jwe.b64url_decode(good["reformattedData"]["aad"]))
    variants = {
        "encBlockIndex as a list in a URI_PARAM entry": lambda b: b["payload"][0]["value"].update(encBlockIndex=[0]),
        "encBlockIndex pointing past dataToEncrypt": lambda b: b["payload"][0]["value"].update(encBlockIndex=7),
        "encBlockIndex as a string": lambda b: b["payload"][0]["value"].update(encBlockIndex="0"),
        "payload is an object": lambda b: b.update(payload={"iePath": "/x"}),
        "headers entry without a value": lambda b: b.update(headers=[{"header": "user-agent"}]),
    }
    bad = []
    for what, edit in variants.items():
        block = copy.deepcopy(base)
        block["metaData"]["messageId"] = str(secrets.randbits(63))
        edit(block)
        mark = env.nf.mark()
        rsp = await env.send(t, what, env.peer.seal(s, block, [supi(env, 64)]))
        if (defect := await refusal_defect(env, t, rsp, mark, what)):
            bad.append(defect)
    if bad:
        raise Failed("; ".join(bad))


def _deep(n: int) -> bytes:
    return b'{"a":' * n + b"1" + b"}" * n


@case("hostile.depth", "JSON nested 10,000 deep on N32-c and N32-f: 4xx, never 5xx",
      "TS 29.500 §5.2.7.2 (client errors are 4xx ProblemDetails); issue 13: parse with explicit limits")
async def deep_json(env: Env, t: Trace) -> None:
    bad = []
    client, prefix = await env.peer.connect(env.cfg.target.n32c)
    try:
        for path in ("/n32c-handshake/v1/exchange-capability",):
            t.sent(f"POST {path} with a body nested 10,000 deep")
            rsp = await client.request("POST", prefix + path, body=_deep(10000),
                                       headers=[("content-type", "application/json")], timeout=env.cfg.timeout)
            t.got("answer", rsp)
            if not 400 <= rsp.status < 500:
                bad.append(f"N32-c answered {rsp.status}")
    finally:
        await client.close()
    if env.mode == "PRINS":
        rsp = await env.send(t, "N32-f body nested 10,000 deep", None, raw=_deep(10000))
        if getattr(rsp, "status", 400) >= 500 or getattr(rsp, "status", 400) < 400:
            bad.append(f"N32-f answered {rsp.status}")
    if bad:
        raise Failed("; ".join(bad))


@case("hostile.size", "oversized bodies on N32-c and N32-f: refused (4xx or reset), never 5xx, service goes on",
      "TS 29.500 §5.2.7.2 (413 Content Too Large as ProblemDetails); issue 13: limits enforced before any work")
async def oversized(env: Env, t: Trace) -> None:
    bad = []
    pad = b'{"sender":"' + b"a" * (2 * 1024 * 1024) + b'"}'
    client, prefix = await env.peer.connect(env.cfg.target.n32c)
    try:
        t.sent("POST exchange-capability with a 2 MB body")
        try:
            rsp: Any = await client.request("POST", prefix + "/n32c-handshake/v1/exchange-capability", body=pad,
                                            headers=[("content-type", "application/json")], timeout=env.cfg.timeout)
        except CONNECTION_ERRORS as e:
            rsp = Refused(e)
        t.got("answer", rsp)
        if isinstance(rsp, Response) and not 400 <= rsp.status < 500:
            bad.append(f"N32-c answered {rsp.status} to 2 MB")
    finally:
        await client.close()
    if env.mode == "PRINS":
        big = b'{"reformattedData":{"aad":"' + b"A" * (8 * 1024 * 1024) + b'"}}'
        rsp = await env.send(t, "N32-f with an 8 MB body", None, raw=big)
        if isinstance(rsp, Response) and not 400 <= rsp.status < 500:
            bad.append(f"N32-f answered {rsp.status} to 8 MB")
        await valid_message(env, t, "control: a valid message afterwards")
    if bad:
        raise Failed("; ".join(bad))

