"""N32-c (TS 29.573 §5.2, §6.1): the negotiation matrix and the schema conformance of the
target's answers. Each exchange runs on one connection, as N32-c requires."""
from __future__ import annotations

from typing import Any

from n32 import schema
from n32io.h2client import Response

from ..runner import CONNECTION_ERRORS, Env, Failed, Refused, Trace
from . import case

API = "/n32c-handshake/v1/"


def _problem_errors(rsp: Response) -> list[str]:
    """A 4xx must be TS 29.571 ProblemDetails whose status is the HTTP status."""
    if rsp.header("content-type") != "application/problem+json":
        return [f"{rsp.status} without application/problem+json"]
    try:
        body = rsp.json()
    except ValueError:
        return [f"{rsp.status}: body is not JSON"]
    out = [f"ProblemDetails: {e}" for e in schema.errors("ProblemDetails", body, api="TS29571_CommonData.yaml")[0]]
    if isinstance(body, dict) and body.get("status") not in (None, rsp.status):
        out.append(f"ProblemDetails status {body.get('status')} on an HTTP {rsp.status}")
    return out


async def _exchange(env: Env, t: Trace, steps: list[tuple[str, Any]]) -> list[Any]:
    """``steps`` ((operation, body), ...) on one N32-c connection; the answers (Refused when cut)."""
    out: list[Any] = []
    try:
        client, prefix = await env.peer.connect(env.cfg.target.n32c)
    except CONNECTION_ERRORS as e:
        return [Refused(e)]
    try:
        for op, body in steps:
            t.sent(f"N32-c {op}", body)
            try:
                rsp: Any = await client.post_json(prefix + API + op, body, timeout=env.cfg.timeout)
            except CONNECTION_ERRORS as e:
                rsp = Refused(e)
            t.got("answer", rsp)
            out.append(rsp)
            if isinstance(rsp, Refused):
                break
    finally:
        await client.close()
    return out


@case("n32c.negotiation", "N32-c negotiation matrix: no overlap, empty and unknown offers, out-of-order rounds",
      "TS 29.573 §5.2.2-§5.2.3, §6.1.5.2.2-3 (SecNegotiateReqData, SecParamExchReqData), TS 33.501 §13.2.2.2: "
      "a negotiation without a common choice or out of order is refused with a 4xx ProblemDetails")
async def negotiation(env: Env, t: Trace) -> None:
    me = env.cfg.peer.fqdn
    bad: list[str] = []

    def expect_4xx(rsp: Any, what: str) -> None:
        if isinstance(rsp, Refused):
            bad.append(f"{what}: the connection was cut instead of a 4xx")
        elif not 400 <= rsp.status < 500:
            bad.append(f"{what}: answered {rsp.status}")
        else:
            bad.extend(f"{what}: {e}" for e in _problem_errors(rsp))

    for what, offer in (("an empty capability list", []), ("an unknown capability only", ["PRINS_FOO"])):
        (rsp,) = await _exchange(env, t, [("exchange-capability", {"sender": me, "supportedSecCapabilityList": offer})])
        expect_4xx(rsp, what)
    (rsp,) = await _exchange(env, t, [("exchange-params", {"sender": me, "n32fContextId": "0123456789abcdef",
                                                           "jweCipherSuiteList": ["A128GCM"],
                                                           "jwsCipherSuiteList": ["ES256"]})])
    expect_4xx(rsp, "exchange-params before exchange-capability on the connection")
    if env.mode == "PRINS":
        cap = {"sender": me, "supportedSecCapabilityList": ["PRINS"]}
        answers = await _exchange(env, t, [("exchange-capability", cap), ("exchange-params", {
            "sender": me, "n32fContextId": "0123456789abcdef", "jweCipherSuiteList": ["A512GCM"],
            "jwsCipherSuiteList": ["ES256"]})])
        if len(answers) == 2:
            expect_4xx(answers[1], "no JWE cipher suite in common")
        answers = await _exchange(env, t, [("exchange-capability", cap), ("exchange-params", {
            "sender": me, "n32fContextId": "0123456789abcdef", "securityProfile": "none"})])
        if len(answers) == 2:
            expect_4xx(answers[1], "exchange-params round 2 before round 1")
    if bad:
        raise Failed("; ".join(bad))


@case("n32c.schema", "the target's N32-c answers conform to TS 29.573",
      "TS 29.573 §6.1.5 (SecNegotiateRspData, SecParamExchRspData), TS 29.571 §5.2.4.1 (ProblemDetails)")
async def answers(env: Env, t: Trace) -> None:
    me = env.cfg.peer.fqdn
    steps: list[tuple[str, Any]] = [("exchange-capability", {"sender": me, "supportedSecCapabilityList": [env.mode],
                                                             "3GppSbiTargetApiRootSupported": True})]
    if env.mode == "PRINS":
        steps.append(("exchange-params", {"sender": me, "n32fContextId": "0123456789abcdef",
                                          "jweCipherSuiteList": list(env.cfg.jwe_suites), "jwsCipherSuiteList": ["ES256"]}))
    got = await _exchange(env, t, steps)
    bad = []
    for (op, _), rsp, name in zip(steps, got, ("SecNegotiateRspData", "SecParamExchRspData")):
        if not isinstance(rsp, Response) or rsp.status != 200:
            bad.append(f"{op}: no 200 ({getattr(rsp, 'status', rsp)})")
            continue
        bad.extend(f"{op}: {e}" for e in schema.errors(name, rsp.json())[0])
    if env.mode == "PRINS" and len(got) == 2 and isinstance(got[1], Response) and got[1].status == 200:
        ctx = got[1].json().get("n32fContextId", "")
        if not (isinstance(ctx, str) and len(ctx) == 16 and all(c in "0123456789abcdef" for c in ctx.lower())):
            bad.append(f"n32fContextId {ctx!r} is not 16 hexadecimal digits (TS 29.573 §6.1.6.3.2)")
    if bad:
        raise Failed("; ".join(bad))
