"""A bounded mutation campaign on N32-f through the target's real listener (issue 13's fuzzing
property, against any SEPP): valid messages from the probe's real context, mutated by a peer
holding the keys (clear block edited, then sealed) or by anybody on the path (JSON edited)."""
from __future__ import annotations

import copy
import json
import random
import secrets
from typing import Any

from n32 import jwe
from n32io.h2client import Response

from ..checks import nssai_request
from ..runner import Env, Failed, Refused, Trace
from . import case

KEYED, WIRE = 40, 20
_ODD = [None, True, -1, 0, 2 ** 64, 1.5, "", "x" * 3000, [], {}, [[[]]], {"encBlockIndex": [0]},
        {"encBlockIndex": "0"}, {"encBlockIndex": -1}, {"encBlockIndex": 99}, "{encBlockIndex:0}", "\u0000", "%2e%2e"]


def _paths(doc: Any, here: tuple = ()) -> list[tuple]:
    out = [here]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, here + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, here + (i,))
    return out


def _mutate(rng: random.Random, doc: Any) -> tuple[Any, str]:
    doc = copy.deepcopy(doc)
    path = rng.choice([p for p in _paths(doc) if p]) if isinstance(doc, (dict, list)) else ()
    parent = doc
    for k in path[:-1]:
        parent = parent[k]
    key = path[-1]
    how = rng.choice(("replace", "delete", "wrap", "duplicate"))
    if how == "delete" and isinstance(parent, dict):
        del parent[key]
    elif how == "wrap":
        parent[key] = [parent[key]] if rng.random() < 0.5 else {"v": parent[key]}
    elif how == "duplicate" and isinstance(parent, list):
        parent.append(copy.deepcopy(parent[key]))
    else:
        how = "replace"
        parent[key] = rng.choice(_ODD)
    return doc, f"{how} /{'/'.join(map(str, path))}"


@case("fuzz.n32f", f"{KEYED + WIRE} mutated N32-f messages: never 5xx, never delivered unless authentic",
      "TS 29.500 §5.2.7.2, TS 33.501 §13.2.4.7; issue 13: every answer to hostile input is a 4xx ProblemDetails "
      "or a correct 2xx, and nothing reaches the home NF unless the message verified", ("PRINS",))
async def fuzz(env: Env, t: Trace) -> None:
    s = await env.session()
    seed = secrets.randbits(32)
    rng = random.Random(seed)
    t.note(f"seed {seed} ({KEYED} keyed mutations of the clear block, {WIRE} wire mutations of the JSON)")
    bad: list[str] = []
    refused = 0
    for n in range(KEYED + WIRE):
        req = nssai_request(env, 100 + n)
        body, _ = env.peer.protect(s, req)
        keyed = n < KEYED
        if keyed:
            block = json.loads(jwe.b64url_decode(body["reformattedData"]["aad"]))
            block["metaData"]["messageId"] = str(secrets.randbits(63))
            block, what = _mutate(rng, block)
            data: Any = [req.path.split("/")[3]]
            if rng.random() < 0.2:
                data, more = _mutate(rng, data)
                what += f", dataToEncrypt {more}"
            try:
                msg = env.peer.seal(s, block, data)
            except (TypeError, ValueError):
                continue  # not even JSON: nothing to send
            what = f"keyed: {what}"
        else:
            msg, what = _mutate(rng, body)
            what = f"wire: {what}"
        mark, one = env.nf.mark(), Trace()
        rsp = await env.send(one, what, msg)
        got = await env.delivered(mark, 0.0)
        status = rsp.status if isinstance(rsp, Response) else None
        refused += isinstance(rsp, Refused)
        fault = f"{status}" if status is not None and status >= 500 else \
            ("delivered" if got else f"{status}") if not keyed and (got or (status is not None and status < 400)) \
            else None
        if fault:
            bad.append(f"{what}: {fault}")
            if len(t.evidence) < 30:
                t.evidence += one.evidence
    t.note(f"{KEYED + WIRE} messages sent, {refused} answered by a reset")
    if bad:
        raise Failed(f"{len(bad)} of {KEYED + WIRE}: " + "; ".join(bad[:8]))
