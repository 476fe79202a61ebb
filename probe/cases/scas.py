"""The TS 33.517 SEPP cases, one definition each, shared by ``python -m probe`` and
``tests/scas/``. A definition raises ``Failed`` with what the target did,
``NotApplicable`` when the target's mode or the configuration does not allow it, and returns
when the target behaved as the clause requires; ``Trace`` keeps what was sent and received."""
from __future__ import annotations

import json
import re
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from n32 import jwe
from n32io.h2client import Response

from ..checks import (clear_block, count_index, fresh_ec_pem, jws_entry, n32c_report, need_ipx, need_prins,
                     nssai_request, peer_snn, public_pem, refused, require_not_delivered, require_problem,
                     require_refused, sbi_request, supi, with_entries)
from ..peer import ROOT, default_policy
from ..runner import CONNECTION_ERRORS, Env, Failed, NotApplicable, Refused, Trace
from . import case

PRINS = ("PRINS",)


# ---------------------------------------------------------------------- 4.2.2.2
@case("4.2.2.2", "IPX and peer SEPP key material kept apart",
      "TS 33.517 4.2.2.2, TS 33.501 §13.2.4.6: an IPX's certificate does not authenticate a peer SEPP on N32-c, "
      "and a peer SEPP's key does not validate an IPX's modifications", PRINS)
async def ipx_vs_peer_keys(env: Env, t: Trace) -> None:
    ipx = need_ipx(env)
    need_prins(env)
    if ipx.tls is not None:
        t.sent("N32-c exchange-capability over TLS with the IPX's certificate")
        try:
            rsp: Any = await env.peer.n32c_post("exchange-capability", {
                "sender": env.cfg.peer.fqdn, "supportedSecCapabilityList": list(env.cfg.capabilities)}, keys=ipx.tls)
        except CONNECTION_ERRORS as e:
            rsp = Refused(e)
        t.got("answer", rsp)
        if not refused(rsp):
            raise Failed("N32-c with the IPX's TLS certificate was accepted as the peer SEPP")
    else:
        t.note("ipx.certificate not configured: the N32-c half is skipped")
    s = await env.session()
    mark = env.nf.mark()
    body, mid = env.peer.protect(s, nssai_request(env, 2), authorized_ipx=ipx.fqdn)
    forged = env.peer.ipx_patch(body, [{"op": "add", "path": "/headers/-", "value": {"header": "via", "value": "ipx"}}],
                                key_pem=env.cfg.peer.tls.private_key.read_bytes())
    rsp = await env.send(t, f"a patch in {ipx.fqdn}'s name signed with the peer SEPP's key", forged)
    require_refused(rsp, "a patch signed with the peer SEPP's key")
    await require_not_delivered(env, t, mark, "a patch signed with the peer SEPP's key")
    body, _ = env.peer.protect(s, nssai_request(env, 3), authorized_ipx=ipx.fqdn)
    ok = await env.send(t, "control: the same patch signed with the IPX's key", env.peer.ipx_patch(
        body, [{"op": "add", "path": "/headers/-", "value": {"header": "via", "value": "ipx"}}]))
    if not isinstance(ok, Response) or ok.status != 200:
        raise RuntimeError("control: the IPX-signed patch was not accepted; the case cannot conclude")


# ---------------------------------------------------------------------- 4.2.2.3
@case("4.2.2.3", "an IPX key learnt on another N32 connection does not validate patches here",
      "TS 33.517 4.2.2.3, TS 33.501 §13.2.4.6: IPX security information exchanged on one N32-c connection applies "
      "to the N32-f context of that connection only", PRINS)
async def ipx_key_scope(env: Env, t: Trace) -> None:
    ipx = need_ipx(env)
    other = fresh_ec_pem()
    t.sent(f"N32-c handshake A announcing {ipx.fqdn} with key K (ipxProviderSecInfoList)")
    a = await env.peer.handshake(ipx_keys=[{"ipxProviderId": ipx.fqdn, "rawPublicKeyList": [public_pem(other)]}])
    t.sent(f"N32-c handshake B announcing {ipx.fqdn} with its real key")
    b = await env.session(fresh=True)
    ops = [{"op": "add", "path": "/headers/-", "value": {"header": "via", "value": "ipx"}}]
    mark = env.nf.mark()
    body, _ = env.peer.protect(b, nssai_request(env, 4), authorized_ipx=ipx.fqdn)
    rsp = await env.send(t, "on context B: a patch signed with key K (learnt on connection A)",
                         env.peer.ipx_patch(body, ops, key_pem=other))
    require_refused(rsp, "a patch signed with a key learnt on another N32 connection")
    await require_not_delivered(env, t, mark, "a patch signed with a key learnt on another N32 connection")
    body, _ = env.peer.protect(a, nssai_request(env, 5), authorized_ipx=ipx.fqdn)
    ctl = await env.send(t, "control, on context A: the same patch signed with key K", env.peer.ipx_patch(body, ops,
                                                                                                         key_pem=other))
    if not isinstance(ctl, Response) or ctl.status != 200:
        t.note("context A no longer accepts messages (the target retired it after B): the control is inconclusive")
    await env.peer.release(a)


# ---------------------------------------------------------------------- 4.2.2.4
@case("4.2.2.4", "serving PLMN ID mismatch detected, reported on N32-c with the message ID",
      "TS 33.517 4.2.2.4, TS 33.501 §5.9.3.2: the PLMN ID of the serving network in a message from the peer must be "
      "the peer's (remote PLMN of the N32-f context); a mismatch is refused and reported to the peer", PRINS)
async def serving_plmn(env: Env, t: Trace) -> None:
    s = await env.session()
    mcc = "998" if not env.cfg.peer.plmn_ids[0].startswith("998") else "997"
    foreign = f"5G:mnc098.mcc{mcc}.3gppnetwork.org"
    req = env.peer.request(f"/nudm-ueau/v1/{supi(env, 6)}/security-information/generate-auth-data", method="POST",
                           body={"servingNetworkName": foreign, "ausfInstanceId": "7e5b3c2a-4c4f-4d1e-9f7a-000000000001"})
    mark, nmark = env.nf.mark(), env.n32c.mark() if env.n32c else 0
    body, mid = env.peer.protect(s, req)
    rsp = await env.send(t, f"generate-auth-data with servingNetworkName {foreign} (not the peer's PLMN)", body)
    require_problem(rsp, "a request naming another serving PLMN")
    await require_not_delivered(env, t, mark, "a request naming another serving PLMN")
    if await n32c_report(env, t, nmark, mid) is None:
        raise Failed(f"no n32f-error naming messageId {mid} arrived on N32-c")


def _access_token(consumer_plmn: dict, producer_plmn: dict) -> str:
    """An OAuth 2.0 access token (TS 29.510 AccessTokenClaims) naming ``consumer_plmn``; a SEPP
    cannot verify the NRF's signature, it reads the claims (TS 33.501 §13.4.1.2, §5.9.3.2)."""
    claims = {"iss": "2b5f6c0e-0e0c-4a73-9c2e-000000000001", "sub": "2b5f6c0e-0e0c-4a73-9c2e-000000000002",
              "aud": "UDM", "scope": "nudm-sdm", "exp": int(time.time()) + 600,
              "consumerPlmnId": consumer_plmn, "producerPlmnId": producer_plmn}
    head = jwe.b64url_encode(b'{"alg":"ES256","typ":"JWT"}')
    return f"{head}.{jwe.b64url_encode(json.dumps(claims).encode())}.{jwe.b64url_encode(secrets.token_bytes(64))}"


@case("4.2.2.4-token", "serving PLMN ID in the access token mismatching the N32-f context: refused and reported",
      "TS 33.517 4.2.2.4, TS 33.501 §5.9.3.2 / §13.4.1.2: the consumer (serving) PLMN ID in the access token "
      "of a request from the peer must be the remote PLMN of the N32-f context; a mismatch is refused and "
      "reported on N32-c with the N32-f message ID", PRINS)
async def serving_plmn_token(env: Env, t: Trace) -> None:
    # a context of its own: a SEPP may coalesce reports of one type per context (issue 13 item 4),
    # and 4.2.2.4 just had one of this type reported on the shared context
    s = await env.session(fresh=True)
    mcc, mnc = env.cfg.target.plmn_ids[0].split("-")
    token = _access_token({"mcc": "998", "mnc": "98"}, {"mcc": mcc, "mnc": mnc})
    req = env.peer.request(f"/nudm-sdm/v2/{supi(env, 8)}/nssai", headers=[("authorization", f"Bearer {token}")])
    mark, nmark = env.nf.mark(), env.n32c.mark() if env.n32c else 0
    body, mid = env.peer.protect(s, req)
    rsp = await env.send(t, "a request whose access token names consumer PLMN 998-98 (not the peer's)", body)
    require_problem(rsp, "an access token naming another serving PLMN")
    await require_not_delivered(env, t, mark, "an access token naming another serving PLMN")
    if await n32c_report(env, t, nmark, mid) is None:
        raise Failed(f"no n32f-error naming messageId {mid} arrived on N32-c")


# ---------------------------------------------------------------------- 4.2.2.5
SECRETS = {"rand": "4a1b" * 8, "autn": "b7c3" * 8, "xresStar": "5e9d" * 8, "kausf": "c0de" * 16}


@case("4.2.2.5", "IEs the policy encrypts travel as encBlockIndex",
      "TS 33.517 4.2.2.5, TS 33.501 §13.2.4.2-3: each IE to encrypt is moved into dataToEncrypt and replaced by "
      "{\"encBlockIndex\": n} in the clear block; authentication vectors are always encrypted (§13.2.3.2)", PRINS)
async def enc_block_index(env: Env, t: Trace) -> None:
    s = await env.session()

    async def reply(got: Any) -> tuple[int, list, bytes]:
        av = {"avType": "5G_HE_AKA", **SECRETS}
        return 200, [("content-type", "application/json")], json.dumps(
            {"authType": "5G_AKA", "authenticationVector": av, "supi": supi(env, 7)}).encode()

    env.nf.reply = reply
    try:
        req = env.peer.request(f"/nudm-ueau/v1/{supi(env, 7)}/security-information/generate-auth-data", method="POST",
                               body={"servingNetworkName": peer_snn(env),
                                     "ausfInstanceId": "7e5b3c2a-4c4f-4d1e-9f7a-000000000002"})
        body, mid = env.peer.protect(s, req)
        rsp = await env.send(t, "generate-auth-data; the NF behind the target answers with a 5G HE AV", body)
    finally:
        env.nf.reply = env.nf.default_reply
    if not isinstance(rsp, Response) or rsp.status != 200:
        raise RuntimeError(f"the request was not served ({getattr(rsp, 'status', rsp)}): the case cannot conclude")
    answer = rsp.json()
    block = clear_block(answer)
    t.got("clear block of the target's N32-f response", block)
    text = str(block)
    leaked = [k for k, v in SECRETS.items() if v in text]
    if leaked:
        raise Failed(f"authentication material in clear on N32-f: {', '.join(leaked)}")
    if count_index(block) < len(SECRETS):
        raise Failed(f"{count_index(block)} encBlockIndex references in the clear block, {len(SECRETS)} IEs to encrypt")
    opened = env.peer.open_response(s, rsp, mid)
    restored = opened.message.body.decode(errors="replace")
    if not all(v in restored for v in SECRETS.values()):
        raise Failed("the encrypted IEs do not restore to the values the NF sent")


# ---------------------------------------------------------------------- 4.2.2.6
@case("4.2.2.6", "protection policy mismatch answered with an error or reported",
      "TS 33.517 4.2.2.6, TS 33.501 §13.2.3.6: a SEPP receiving a protection policy that differs from its own "
      "answers with an error on N32-c or reports/logs it", PRINS)
async def policy_mismatch(env: Env, t: Trace) -> None:
    enc = Path(env.cfg.policies.get("encryption") or ROOT / "policies/data-type-encryption.yaml")
    raw = yaml.safe_load(enc.read_text())
    raw["generic"]["encrypt"] = [x for x in raw["generic"]["encrypt"] if x != "UEID"]
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "enc.yaml"
        p.write_text(yaml.safe_dump(raw))
        mismatched = default_policy(env.cfg, encryption=p)
    mark = env.n32c.mark() if env.n32c else 0
    log = env.cfg.target.log
    offset = log.stat().st_size if log and log.exists() else 0
    t.sent("N32-c handshake whose protectionPolicyInfo leaves UEID out of dataTypeEncPolicy")
    try:
        s = await env.peer.handshake(policy=mismatched)
    except Exception as e:  # noqa: BLE001 - an error answer is a passing outcome
        t.got("error on N32-c", {"error": str(e)})
        await env.session(fresh=True)
        return
    t.got("selProtectionPolicyInfo", s.initiator.peer_policy)
    got = None
    if env.n32c is not None:
        got = await env.n32c.wait(mark, lambda r: r.path.endswith("/n32f-error") and
                                  "POLICY_MISMATCH" in r.body.decode(errors="replace"), 3.0 if log else 5.0)
        t.got("on the probe's N32-c", {"n32f-error": got.json() if got else None})
    await env.peer.release(s)
    await env.session(fresh=True)
    if got is not None:
        return
    if log is not None:
        with open(log, "rb") as f:
            f.seek(offset)
            lines = [ln.decode(errors="replace").strip() for ln in f.read().splitlines()]
        hits = [ln for ln in lines if re.search(r"polic(y|ies)\b.{0,40}mismatch|mismatch.{0,40}polic", ln, re.I)]
        t.got(f"in the target's log ({log.name})", {"lines": hits[:3]})
        if hits:
            return
    raise Failed("the mismatching policy was accepted: no error on N32-c, no POLICY_MISMATCH report"
                 + (" and no log entry" if log else " (set target.log so the probe can look for the log entry "
                                                    "the clause also allows)"))


# ---------------------------------------------------------------------- 4.2.2.7
@case("4.2.2.7", "JWS other than ES256 discarded",
      "TS 33.517 4.2.2.7, TS 33.501 §13.2.4.9, TS 33.210: IPX modifications are signed with ES256 only; "
      "a modificationsBlock entry with any other algorithm is discarded", PRINS)
async def es256_only(env: Env, t: Trace) -> None:
    ipx = need_ipx(env)
    s = await env.session()
    ops = [{"op": "add", "path": "/headers/-", "value": {"header": "via", "value": "ipx"}}]
    accepted = []
    # ES256+jwk: ES256 by an attacker's key that the JWS header itself carries (a key never learnt on N32-c)
    for n, alg in enumerate(("none", "HS256", "ES384", "RS256", "PS256", "ES256+jwk")):
        mark = env.nf.mark()
        body, _ = env.peer.protect(s, nssai_request(env, 10 + n), authorized_ipx=ipx.fqdn)
        entry = jws_entry(body, ipx.fqdn, alg, ops, ipx.public_key.read_bytes() if alg == "HS256" else None)
        rsp = await env.send(t, f"a patch by {ipx.fqdn} signed with alg {alg}", with_entries(body, [entry]))
        if not refused(rsp) or env.nf.since(mark):
            accepted.append(f"{alg} (answered {getattr(rsp, 'status', rsp)})")
    if accepted:
        raise Failed(f"JWS with alg {', '.join(accepted)} not discarded")
    body, _ = env.peer.protect(s, nssai_request(env, 16), authorized_ipx=ipx.fqdn)
    ctl = await env.send(t, "control: the same patch signed with ES256 by the IPX", env.peer.ipx_patch(body, ops))
    if not isinstance(ctl, Response) or ctl.status != 200:
        raise RuntimeError("control: the ES256 patch was not accepted; the case cannot conclude")


# ---------------------------------------------------------------------- 4.2.2.8
@case("4.2.2.8", "an IPX placing encBlockIndex into a clear IE: discarded and reported",
      "TS 33.517 4.2.2.8, TS 33.501 §13.2.4.1, §5.9.3.2; TS 29.573 §6.1.5.3.7 (FailedModificationInfo): "
      "no encBlockIndex may be inserted or moved by an intermediary; the message is discarded and the "
      "n32f-error names the IPX", PRINS)
async def misplaced_index(env: Env, t: Trace) -> None:
    ipx = need_ipx(env)
    s = await env.session()
    mark, nmark = env.nf.mark(), env.n32c.mark() if env.n32c else 0
    body, mid = env.peer.protect(s, nssai_request(env, 20), authorized_ipx=ipx.fqdn)
    ops = [{"op": "add", "path": "/headers/-", "value": {"header": "x-probe", "value": {"encBlockIndex": 0}}}]
    patched = env.peer.ipx_patch(body, ops)
    rsp = await env.send(t, f"{ipx.fqdn} adds a header whose value is {{\"encBlockIndex\": 0}}", patched)
    require_problem(rsp, "an encBlockIndex placed into a clear IE")
    await require_not_delivered(env, t, mark, "an encBlockIndex placed into a clear IE")
    info = await n32c_report(env, t, nmark, mid)
    if info is None:
        raise Failed(f"no n32f-error naming messageId {mid} arrived on N32-c")
    failed = info.get("failedModificationList") or []
    if not any(isinstance(f, dict) and f.get("ipxId") == ipx.fqdn for f in failed):
        raise Failed(f"the n32f-error has no failedModificationList entry naming {ipx.fqdn}")


# ---------------------------------------------------------------------- 4.2.2.9
@case("4.2.2.9", "telescopic FQDN and 3gpp-Sbi-Target-apiRoot must agree",
      "TS 33.517 4.2.2.9, TS 33.501 §13.1.1.1/§13.2.2: a request whose telescopic :authority and "
      "3gpp-Sbi-Target-apiRoot name different NFs (same PLMN, or another PLMN) is not forwarded")
async def telescopic_consistency(env: Env, t: Trace) -> None:
    if not env.cfg.target.sbi:
        raise NotApplicable("target.sbi (the target's NF-facing listener) is not configured")
    mcc, mnc = env.cfg.peer.plmn_ids[0].split("-")
    domain = f"5gc.mnc{mnc.zfill(3)}.mcc{mcc}.3gppnetwork.org"
    foreign = f"udm.{domain}"
    t.sent(f"Nsepp_Telescopic_FQDN_Mapping GET ?foreign-fqdn={foreign} on the target's SBI listener")
    m = await sbi_request(env, "GET", f"/nsepp-telescopic/v1/mapping?foreign-fqdn={foreign}", env.cfg.target.fqdn)
    t.got("mapping", m)
    doc = m.json() if m.status == 200 else None
    if not isinstance(doc, dict) or not doc.get("telescopicLabel") or not doc.get("seppDomain"):
        raise NotApplicable("the target offers no Nsepp_Telescopic_FQDN_Mapping for the peer's NFs")
    tele = f"{doc['telescopicLabel']}.{doc['seppDomain']}"
    path = f"/nudm-sdm/v2/imsi-{mcc}{mnc}0000000001/nssai"
    for what, root in (("another NF of the same PLMN", f"https://ausf.{domain}"),
                       ("an NF of another PLMN", "https://udm.5gc.mnc098.mcc998.3gppnetwork.org")):
        hdrs = [("3gpp-sbi-target-apiroot", root)]
        t.sent(f":authority {tele} (telescopic for {foreign}) with 3gpp-Sbi-Target-apiRoot {root} ({what})",
               {"path": path})
        try:
            rsp: Any = await sbi_request(env, "GET", path, tele, hdrs)
        except CONNECTION_ERRORS as e:
            rsp = Refused(e)
        t.got("answer", rsp)
        require_problem(rsp, f"telescopic FQDN vs target apiRoot naming {what}")


# ---------------------------------------------------------------------- 4.2.2.10
@case("4.2.2.10", "under PRINS the NF receives the rewritten apiRoot and no 3gpp-Sbi-Target-apiRoot",
      "TS 33.517 4.2.2.10, TS 33.501 §13.2.4.x, TS 29.500 §6.1: the receiving SEPP replaces the apiRoot with the "
      "one in 3gpp-Sbi-Target-apiRoot and removes the header before forwarding", PRINS)
async def target_header_prins(env: Env, t: Trace) -> None:
    s = await env.session()
    nf = env.cfg.target.home_nf
    root = env.cfg.target.api_root(suffix=":8443/probe-root")
    req = env.peer.request(f"/nudm-sdm/v2/{supi(env, 30)}/nssai", authority=env.cfg.target.fqdn,
                           headers=[("3gpp-sbi-target-apiroot", root)])
    mark = env.nf.mark()
    body, _ = env.peer.protect(s, req)
    rsp = await env.send(t, f":authority {env.cfg.target.fqdn} with 3gpp-Sbi-Target-apiRoot {root}", body)
    got = await env.delivered(mark, 0.2)
    if not got:
        raise Failed(f"not delivered to the NF ({getattr(rsp, 'status', rsp)})")
    r = got[0]
    t.got("at the NF behind the target", r.brief())
    if r.header("3gpp-sbi-target-apiroot") is not None:
        raise Failed("the NF received 3gpp-Sbi-Target-apiRoot")
    if (r.header(":authority") or "").split(":")[0] != nf:
        raise Failed(f":authority at the NF is {r.header(':authority')}, not {nf} from the apiRoot")
    if not r.path.startswith("/probe-root/nudm-sdm/"):
        raise Failed(f"the path at the NF is {r.path}: the apiRoot prefix /probe-root was not applied")
