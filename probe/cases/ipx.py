"""IPX patch rules (TS 33.501 §13.2.4.7): what a receiving SEPP must not accept from the
peer's roaming intermediary (ES256 only and misplaced encBlockIndex are 4.2.2.7 and 4.2.2.8)."""
from __future__ import annotations

from ..checks import fresh_ec_pem, need_ipx, nssai_request, refusal_defect
from ..runner import Env, Failed, Trace
from . import case

PRINS = ("PRINS",)


@case("ipx.rules", "IPX modifications outside the rules are discarded",
      "TS 33.501 §13.2.4.7 steps 5-9, §13.2.3.4 (modification policy): each modificationsBlock entry must verify "
      "with the key of the IPX it names, that IPX must be the authorized one, its patch must stay within the "
      "policy the peer announced and belong to this message; otherwise the message is discarded", PRINS)
async def ipx_rules(env: Env, t: Trace) -> None:
    ipx = need_ipx(env)
    s = await env.session()
    via = [{"op": "add", "path": "/headers/-", "value": {"header": "via", "value": "ipx"}}]

    def msg(n: int) -> dict:
        return env.peer.protect(s, nssai_request(env, 80 + n), authorized_ipx=ipx.fqdn)[0]

    variants = {
        "a patch outside the announced modification policy (the request path)":
            lambda b: env.peer.ipx_patch(b, [{"op": "replace", "path": "/requestLine/path",
                                              "value": "/nudm-sdm/v2/{encBlockIndex:0}/am-data"}]),
        "a signature by a key the target never learnt": lambda b: env.peer.ipx_patch(b, via, key_pem=fresh_ec_pem()),
        "authorized IPX named, its entry dropped": lambda b: b,
        "an entry copied from another message": lambda b: {**b, "modificationsBlock":
                                                          env.peer.ipx_patch(msg(9), via)["modificationsBlock"]},
        "an encrypted IE moved into a clear header": lambda b: env.peer.ipx_patch(b, [
            {"op": "move", "from": "/payload/0/value", "path": "/headers/0/value"}]),
        "a first entry by another IPX than the authorized one":
            lambda b: env.peer.ipx_patch(b, via, identity="ipx9.probe.invalid", key_pem=fresh_ec_pem()),
        "the authorized IPX signing twice": lambda b: env.peer.ipx_patch(env.peer.ipx_patch(b, via), via),
    }
    bad = []
    for n, (what, make) in enumerate(variants.items()):
        mark = env.nf.mark()
        rsp = await env.send(t, what, make(msg(n)))
        if (defect := await refusal_defect(env, t, rsp, mark, what, problem=False)):
            bad.append(defect)
    if bad:
        raise Failed("; ".join(bad))
