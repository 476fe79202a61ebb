"""Trust, inter-PLMN routing refusals, listeners and TLS-mode forwarding (issue 16): what the
target accepts from the peer's side of N32, in both N32-f modes where the case allows."""
from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

from n32io.h2client import Response

from ..checks import capability, require_not_delivered, require_problem, supi, tls_mode
from ..runner import CONNECTION_ERRORS, Env, Failed, NotApplicable, Refused, Trace
from . import case


@case("trust.certificates", "N32 refuses certificates from an unknown CA, expired ones and an IPX's",
      "TS 33.501 §13.1, TS 33.210 §6.2: N32 TLS is mutually authenticated with the peer SEPP's certificate "
      "under the anchor configured for its PLMN")
async def certificates(env: Env, t: Trace) -> None:
    tr = env.cfg.trust
    options = [(name, tr[key]) for name, key in (("an unknown CA's certificate", "untrusted"),
                                                 ("an expired certificate", "expired")) if key in tr]
    if env.cfg.ipx and env.cfg.ipx.tls:
        options.append(("the IPX's certificate", env.cfg.ipx.tls))
    if not options:
        raise NotApplicable("no trust.untrusted, trust.expired or ipx.certificate configured")
    accepted = []
    for what, keys in options:
        rsp = await capability(env, t, what, keys)
        if isinstance(rsp, Response) and rsp.status < 400:
            accepted.append(f"N32-c accepted {what}")
        if env.mode == "PRINS":
            body, _ = env.peer.protect(await env.session(), env.peer.request(f"/nudm-sdm/v2/{supi(env, 70)}/nssai"))
            rsp = await env.send(t, f"N32-f presenting {what}", body, keys=keys)
            if isinstance(rsp, Response) and rsp.status < 400:
                accepted.append(f"N32-f accepted {what}")
    if accepted:
        raise Failed("; ".join(accepted))


@case("trust.sender", "N32-c sender must be the authenticated peer",
      "TS 29.573 §6.1.5.2.2 (sender), TS 33.501 §13.2.2.2: the sender FQDN in N32-c is the one the TLS "
      "certificate authenticated")
async def sender(env: Env, t: Trace) -> None:
    other = env.cfg.trust.get("other_peer")
    name = other.fqdn if other else "sepp.5gc.mnc098.mcc998.3gppnetwork.org"
    rsp = await capability(env, t, f"the peer's certificate with sender {name}", env.cfg.peer.tls, sender=name)
    require_problem(rsp, "a sender other than the authenticated peer")


# ---------------------------------------------------------------------- routing
async def _deliver(env: Env, t: Trace, what: str, path: str, authority: str | None = None,
                   api_root: str | None = None) -> tuple[Any, list]:
    s = await env.session()
    req = env.peer.request(path, authority=authority)
    mark = env.nf.mark()
    if s.context is not None:
        if api_root:
            req.headers.append(("3gpp-sbi-target-apiroot", api_root))
        body, _ = env.peer.protect(s, req, sel=env.peer.policy.selection(None, "GET", "/", "request"))
        rsp = await env.send(t, what, body)
    else:
        rsp = await tls_mode(env, t, what, req, api_root)
    return rsp, await env.delivered(mark)


@case("routing.dot-segments", "dot segments are refused or removed before routing, never forwarded",
      "RFC 3986 §5.2.4, TS 29.500 §5.2.2: a path is routed and its policy selected after normalisation; "
      "/nudm-sdm/v2/../../admin must not reach an NF as such (issue 13 item 3)")
async def dot_segments(env: Env, t: Trace) -> None:
    bad = []
    for path in ("/nudm-sdm/v2/../../admin", "/nudm-sdm/v2/%2e%2e/%2E%2E/admin", "/nudm-sdm/v2/./x/../../../admin"):
        rsp, got = await _deliver(env, t, f"GET {path}", path)
        for r in got:
            t.got("at the NF behind the target", r.brief())
            if any(seg in (".", "..") or seg.lower() in ("%2e", "%2e%2e") for seg in r.path.split("/")) \
                    or r.path.startswith("/admin"):
                bad.append(f"{path} reached the NF as {r.path}")
        if isinstance(rsp, Response) and rsp.status >= 500:
            bad.append(f"{path} answered {rsp.status}")
    if bad:
        raise Failed("; ".join(bad))


@case("routing.foreign", "requests for foreign PLMNs and internal addresses are refused",
      "TS 33.501 §13.1.1 / §5.9.3.2, TS 29.500 §6.10: a receiving SEPP forwards only to NFs of its own PLMN; an "
      "apiRoot naming another PLMN, an IP address or localhost (SSRF) is refused")
async def foreign(env: Env, t: Trace) -> None:
    bad = []
    path = f"/nudm-sdm/v2/{supi(env, 71)}/nssai"
    for what, authority, root in (("another PLMN's NF", "udm.5gc.mnc098.mcc998.3gppnetwork.org", None),
                                  ("the peer PLMN's own NF", f"udm.5gc.mnc{env.cfg.peer.plmn_ids[0].split('-')[1].zfill(3)}"
                                   f".mcc{env.cfg.peer.plmn_ids[0].split('-')[0]}.3gppnetwork.org", None),
                                  ("apiRoot 127.0.0.1:22", env.cfg.target.fqdn, "https://127.0.0.1:22"),
                                  ("apiRoot localhost", env.cfg.target.fqdn, "https://localhost"),
                                  ("apiRoot 169.254.169.254", env.cfg.target.fqdn, "http://169.254.169.254")):
        rsp, got = await _deliver(env, t, f"GET {path} for {what}", path, authority, root)
        if got:
            t.got("at the NF behind the target", {"requests": [r.brief() for r in got]})
            bad.append(f"{what}: delivered")
        elif isinstance(rsp, Response) and not 400 <= rsp.status < 500:
            bad.append(f"{what}: answered {rsp.status}")
    if bad:
        raise Failed("; ".join(bad))


# ---------------------------------------------------------------------- listeners
async def _raw(host: str, port: int, data: bytes, timeout: float) -> bytes:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        writer.write(data)
        await writer.drain()
        out = b""
        try:
            while len(out) < 4096:
                chunk = await asyncio.wait_for(reader.read(4096), timeout)
                if not chunk:
                    break
                out += chunk
        except (asyncio.TimeoutError, ConnectionError):
            pass
        return out
    finally:
        writer.close()


@case("listener.cleartext", "N32 and NF-facing TLS listeners refuse cleartext HTTP",
      "TS 33.501 §13.1 (N32 over TLS), TS 33.210 §6.2; issue 13 item 1: a TLS listener serves nothing in clear")
async def cleartext(env: Env, t: Trace) -> None:
    bad = []
    tg = env.cfg.target
    targets = [("N32", tg.n32c)] + ([("N32-f", tg.n32f)] if tg.n32f and tg.n32f != tg.n32c else []) + \
        ([("SBI", tg.sbi)] if tg.sbi else [])
    root = env.cfg.target.api_root()
    h1 = (f"GET /nudm-sdm/v2/{supi(env, 72)}/nssai HTTP/1.1\r\nHost: {env.cfg.target.fqdn}\r\n"
          f"3gpp-Sbi-Target-apiRoot: {root}\r\nConnection: close\r\n\r\n").encode()
    h2c = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes.fromhex("000000040000000000")
    for name, uri in targets:
        u = urlsplit(uri)
        for what, data in (("HTTP/1.1", h1), ("HTTP/2 prior knowledge", h2c)):
            t.sent(f"cleartext {what} to the {name} listener {u.hostname}:{u.port}")
            try:
                out = await _raw(u.hostname or "127.0.0.1", u.port or 443, data, 2.0)
            except (OSError, asyncio.TimeoutError) as e:
                out = f"<{type(e).__name__}>".encode()
            t.got("answer", {"bytes": out[:200].decode(errors="replace")})
            # any HTTP answer at all means the TLS listener speaks cleartext (a status line, or an
            # HTTP/2 frame: SETTINGS is type 4 at octet 3); a TLS alert (0x15) or a close is right
            if out.startswith(b"HTTP/") or (what.startswith("HTTP/2") and len(out) >= 9 and out[3] == 4):
                bad.append(f"the {name} listener answered cleartext {what} ({out[:12]!r})")
    if bad:
        raise Failed("; ".join(bad))


# ---------------------------------------------------------------------- TLS mode
@case("tls.target-apiroot", "TLS mode: the NF receives the apiRoot of 3gpp-Sbi-Target-apiRoot, not the header",
      "TS 29.500 §6.10.2.4 / TS 33.501 §13.1.1.2: the receiving SEPP routes on 3gpp-Sbi-Target-apiRoot and "
      "forwards to that apiRoot", ("TLS",))
async def tls_target(env: Env, t: Trace) -> None:
    nf = env.cfg.target.home_nf
    root = env.cfg.target.api_root(suffix=":8443/probe-root")
    mark = env.nf.mark()
    rsp = await tls_mode(env, t, f":authority {env.cfg.target.fqdn}, 3gpp-Sbi-Target-apiRoot {root}",
                         env.peer.request(f"/nudm-sdm/v2/{supi(env, 73)}/nssai", authority=env.cfg.target.fqdn), root)
    got = await env.delivered(mark, 0.2)
    if not got:
        raise Failed(f"not delivered to the NF ({getattr(rsp, 'status', rsp)})")
    r = got[0]
    t.got("at the NF behind the target", r.brief())
    if (r.header(":authority") or "").split(":")[0] != nf or not r.path.startswith("/probe-root/"):
        raise Failed(f"the NF got :authority {r.header(':authority')} path {r.path}, not the apiRoot {root}")


@case("tls.relation", "TLS mode: N32-f only from a peer with an N32-c relation",
      "TS 33.501 §13.1.1.2, TS 29.573 §5.2.2: N32-f in TLS mode follows a completed N32-c capability "
      "negotiation with that peer; the certificate on N32-f must be of the negotiating peer", ("TLS",))
async def tls_relation(env: Env, t: Trace) -> None:
    other = env.cfg.trust.get("other_peer")
    if other is None:
        raise NotApplicable("trust.other_peer (a second peer the target trusts) is needed")
    t.sent(f"N32-c exchange-capability [\"NONE\"] as {other.fqdn} (no relation left for it)")
    try:
        await env.peer.n32c_post("exchange-capability", {"sender": other.fqdn, "supportedSecCapabilityList": ["NONE"]},
                                 keys=other.tls)
    except CONNECTION_ERRORS:
        pass
    mark = env.nf.mark()
    req = env.peer.request(f"/nudm-sdm/v2/{supi(env, 74)}/nssai", authority=env.cfg.target.fqdn)
    t.sent(f"N32-f (TLS mode) presenting {other.fqdn}'s certificate")
    try:
        rsp: Any = await env.peer.send_tls_mode(None, req, keys=other.tls)
    except CONNECTION_ERRORS as e:
        rsp = Refused(e)
    t.got("answer", rsp)
    # 503 with Retry-After is a correct answer too: the target re-establishes the relation with an
    # authenticated peer that lost it (a restart); what must never happen is delivery.
    if isinstance(rsp, Response) and rsp.status == 503 and rsp.header("retry-after"):
        if rsp.header("content-type") != "application/problem+json":
            raise Failed("N32-f from a peer without an N32-c relation: 503 without application/problem+json")
    else:
        require_problem(rsp, "N32-f from a peer without an N32-c relation")
    await require_not_delivered(env, t, mark, "N32-f from a peer without an N32-c relation")

