"""TS 33.517 4.2.5: trust anchoring by PLMN ID, as N32 server and as N32 client."""
from __future__ import annotations

from n32io.h2client import Response

from ..checks import capability, sbi_request, supi
from ..config import KeyPair
from ..runner import CONNECTION_ERRORS, Env, Failed, NotApplicable, Trace
from . import case


async def _provoke(env: Env, t: Trace, keys: KeyPair, what: str, n: int) -> bool:
    """Serve the peer's N32-c with ``keys`` and make the target dial it (client role); tell whether
    a request arrived. PRINS: a message the target must report in an n32f-error; TLS mode: one of
    its own NFs sends a request for the peer's PLMN through its NF-facing listener."""
    recorder = env.n32c
    await recorder.restart(keys)
    try:
        mark = recorder.mark()
        if env.mode == "PRINS":
            s = await env.session()
            req = env.peer.request(f"/nudm-ueau/v1/{supi(env, 40 + n)}/security-information/generate-auth-data",
                                   method="POST", body={"servingNetworkName": "5G:mnc098.mcc998.3gppnetwork.org",
                                                        "ausfInstanceId": "7e5b3c2a-4c4f-4d1e-9f7a-000000000003"})
            body, _ = env.peer.protect(s, req)
            await env.send(t, f"a message the target reports (PLMN mismatch); the probe's N32-c server presents "
                           f"{what}", body)
        else:
            mcc, mnc = env.cfg.peer.plmn_ids[0].split("-")
            root = f"https://amf.5gc.mnc{mnc.zfill(3)}.mcc{mcc}.3gppnetwork.org"
            t.sent(f"as the target's own NF: a request for {root} (the peer's PLMN); the probe's N32 server "
                   f"presents {what}")
            try:
                await sbi_request(env, "GET", "/namf-comm/v1/ue-contexts/probe", env.cfg.target.fqdn,
                                  [("3gpp-sbi-target-apiroot", root)])
            except CONNECTION_ERRORS:
                pass
        got = await recorder.wait(mark, lambda r: True, 2.0 if n else 5.0)
        t.got(f"at the probe's N32 server ({what})", {"arrived": got.brief() if got else None})
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
    if env.n32c is None or (env.mode != "PRINS" and not env.cfg.target.sbi):
        t.note("client role not checked: needs peer.n32c_listen, and for a TLS-mode target its NF-facing "
               "listener (target.sbi) with its N32-f for this peer pointing at peer.n32c_listen")
    else:
        if not await _provoke(env, t, me.tls, "C1", 0):
            raise RuntimeError("control: the target did not connect to the probe presenting C1; "
                               "the client role cannot be checked")
        for n, (what, keys) in enumerate((("C3", tr["other_root"]), ("C4", tr["two_plmns"])), 1):
            if await _provoke(env, t, keys, what, n):
                bad.append(f"client role: the target accepted the server certificate {what}")
    if bad:
        raise Failed("; ".join(bad))


