"""TS 33.517 4.2.5: trust anchoring by PLMN ID, as N32 server and as N32 client."""
from __future__ import annotations

from typing import Any

from n32io.h2client import Response

from ..checks import capability, supi
from ..config import KeyPair
from ..runner import Env, Failed, NotApplicable, Trace
from . import case


async def _trigger_report(env: Env, t: Trace, recorder: Any, keys: KeyPair, what: str, n: int) -> bool:
    """Serve the peer's N32-c with ``keys``, provoke an n32f-error report, tell whether it arrived."""
    await recorder.restart(keys)
    try:
        s = await env.session()
        mark = recorder.mark()
        req = env.peer.request(f"/nudm-ueau/v1/{supi(env, 40 + n)}/security-information/generate-auth-data",
                               method="POST", body={"servingNetworkName": "5G:mnc098.mcc998.3gppnetwork.org",
                                                    "ausfInstanceId": "7e5b3c2a-4c4f-4d1e-9f7a-000000000003"})
        body, mid = env.peer.protect(s, req)
        await env.send(t, f"a message the target reports (PLMN mismatch); the probe's N32-c server presents {what}",
                       body)
        got = await recorder.wait(mark, lambda r: r.path.endswith("/n32f-error"), 2.0 if n else 5.0)
        t.got(f"n32f-error at the probe's N32-c server ({what})", {"arrived": got is not None})
        return got is not None
    finally:
        await recorder.restart(env.cfg.peer.tls)


@case("4.2.5", "trust anchoring by PLMN ID (C1/C2 accepted, C3/C4 refused; server and client roles)",
      "TS 33.517 4.2.5, TS 33.501 §13.1: a certificate is accepted only under the trust anchor configured for the "
      "PLMN it names: C3 (peer PLMN, other root) and C4 (two PLMNs) are refused as client and as server")
async def trust_anchoring(env: Env, t: Trace) -> None:
    tr = env.cfg.trust
    if not all(k in tr for k in ("other_peer", "other_root", "two_plmns")):
        raise NotApplicable("trust.other_peer (C2), trust.other_root (C3) and trust.two_plmns (C4) are needed")
    me, other = env.cfg.peer, tr["other_peer"]
    bad = []
    for what, keys, sender, accept in (("C1 (peer PLMN, its root)", me.tls, me.fqdn, True),
                                       ("C2 (second peer PLMN, its root)", other.tls, other.fqdn, True),
                                       ("C3 (peer PLMN, issued by the other root)", tr["other_root"], me.fqdn, False),
                                       ("C4 (names both PLMNs)", tr["two_plmns"], me.fqdn, False)):
        rsp = await capability(env, t, what, keys, sender)
        ok = isinstance(rsp, Response) and rsp.status == 200
        if ok != accept:
            bad.append(f"server role: {what} {'refused' if accept else 'accepted'}")
    if env.n32c is None or env.mode != "PRINS":
        t.note("client role not checked: needs peer.n32c_listen and a PRINS target (an n32f-error report "
               "makes the target connect to the probe)")
    else:
        if not await _trigger_report(env, t, env.n32c, me.tls, "C1", 0):
            raise RuntimeError("control: the target sent no n32f-error to the probe presenting C1; "
                               "the client role cannot be checked")
        for n, (what, keys) in enumerate((("C3", tr["other_root"]), ("C4", tr["two_plmns"])), 1):
            if await _trigger_report(env, t, env.n32c, keys, what, n):
                bad.append(f"client role: the target accepted the server certificate {what}")
    if bad:
        raise Failed("; ".join(bad))


