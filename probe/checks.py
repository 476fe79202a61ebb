"""Building blocks the case definitions share: a valid message, what counts as refused, what
reached the NF, what the target reported on N32-c, forged JWS entries."""
from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwcrypto import jwk
from jwcrypto import jws as jjws

from n32 import jwe
from n32io import tls
from n32io.h2client import H2TlsClient, Response

from .runner import CONNECTION_ERRORS, Env, Failed, NotApplicable, Refused, Trace


def supi(env: Env, n: int = 1) -> str:
    mcc, mnc = env.cfg.target.plmn_ids[0].split("-")
    return f"imsi-{mcc}{mnc}{n:0{15 - len(mcc) - len(mnc)}d}"


def peer_snn(env: Env) -> str:
    mcc, mnc = env.cfg.peer.plmn_ids[0].split("-")
    return f"5G:mnc{mnc.zfill(3)}.mcc{mcc}.3gppnetwork.org"


def nssai_request(env: Env, n: int = 1, **kw: Any):
    return env.peer.request(f"/nudm-sdm/v2/{supi(env, n)}/nssai", **kw)


def refused(rsp: Response | Refused) -> bool:
    """Discarded: the connection refused it or a 4xx answer. 2xx forwards; 5xx is no way to treat
    hostile input (issue 13) and is reported as such."""
    if isinstance(rsp, Refused):
        return True
    return 400 <= rsp.status < 500


def require_refused(rsp: Response | Refused, what: str) -> None:
    if isinstance(rsp, Response) and rsp.status >= 500:
        raise Failed(f"{what}: answered {rsp.status} (a server error, not a 4xx refusal)")
    if not refused(rsp):
        raise Failed(f"{what}: accepted ({getattr(rsp, 'status', '?')})")


def require_problem(rsp: Response | Refused, what: str) -> None:
    """A 4xx TS 29.571 ProblemDetails answer."""
    require_refused(rsp, what)
    if isinstance(rsp, Response) and rsp.header("content-type") != "application/problem+json":
        raise Failed(f"{what}: answered {rsp.status} without application/problem+json")


async def require_not_delivered(env: Env, t: Trace, mark: int, what: str) -> None:
    got = await env.delivered(mark)
    if got:
        t.got("at the NF behind the target", {"requests": [r.brief() for r in got]})
        raise Failed(f"{what}: the NF behind the target received it")


async def refusal_defect(env: Env, t: Trace, rsp: Response | Refused, mark: int, what: str,
                         problem: bool = True) -> str | None:
    """None when ``rsp`` refused the message (a 4xx ProblemDetails, or any refusal with
    ``problem=False``) and the NF behind the target got nothing since ``mark``; else what failed.
    For cases that try several variants and report every one that got through."""
    try:
        (require_problem if problem else require_refused)(rsp, what)
        await require_not_delivered(env, t, mark, what)
    except Failed as e:
        return str(e)
    return None


async def valid_message(env: Env, t: Trace, what: str = "control: a correctly protected request",
                        n: int = 9) -> Response:
    """The control of a case: the same kind of message, unaltered, is accepted and delivered."""
    s = await env.session()
    mark = env.nf.mark()
    if s.context is not None:
        body, mid = env.peer.protect(s, nssai_request(env, n))
        rsp = await env.send(t, what, body)
    else:
        rsp = await tls_mode(env, t, what, nssai_request(env, n))
    if not isinstance(rsp, Response) or rsp.status != 200 or not env.nf.since(mark):
        raise RuntimeError(f"{what} was not served (status {getattr(rsp, 'status', rsp)}): the case cannot conclude")
    return rsp


async def tls_mode(env: Env, t: Trace, what: str, req: Any, target_api_root: str | None = None) -> Response | Refused:
    t.sent(what, {"method": req.method, "path": req.target, "headers": req.headers})
    try:
        rsp = await env.peer.send_tls_mode(env._session, req, target_api_root=target_api_root)
    except CONNECTION_ERRORS as e:
        t.got("answer", e)
        return Refused(e)
    t.got("answer", rsp)
    return rsp


async def n32c_report(env: Env, t: Trace, mark: int, message_id: str, timeout: float = 5.0) -> dict | None:
    """The n32f-error the target sent on N32-c for ``message_id`` (TS 29.573 §6.1.5.2.6)."""
    if env.n32c is None:
        raise NotApplicable("peer.n32c_listen is not configured: the probe cannot see the target's N32-c reports")

    def match(r: Any) -> bool:
        body = r.json()
        return r.path.endswith("/n32f-error") and isinstance(body, dict) and body.get("n32fMessageId") == message_id

    got = await env.n32c.wait(mark, match, timeout)
    t.got("on the probe's N32-c", {"n32f-error": got.json() if got else None})
    return got.json() if got else None  # type: ignore[return-value]


def need_ipx(env: Env) -> Any:
    if env.cfg.ipx is None:
        raise NotApplicable("no IPX configured (ipx: fqdn, private_key, public_key)")
    return env.cfg.ipx


def need_prins(env: Env) -> None:
    if env._session is None or env._session.context is None:
        raise NotApplicable("the target did not negotiate PRINS")


def fresh_ec_pem() -> bytes:
    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def public_pem(private_pem: bytes) -> str:
    key = serialization.load_pem_private_key(private_pem, None)
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def _payload(identity: str, ops: list | None, body: dict) -> bytes:
    return json.dumps({"identity": identity, "operations": ops, "tag": body["reformattedData"]["tag"]}).encode()


def jws_entry(body: dict, identity: str, alg: str, ops: list | None = None, key_material: bytes | None = None) -> dict:
    """A modificationsBlock entry signed with ``alg`` (anything but ES256 must be discarded)."""
    payload = _payload(identity, ops, body)
    if alg == "none":  # RFC 7515 §A.5: unsecured, empty signature
        return {"protected": jwe.b64url_encode(b'{"alg":"none"}'), "payload": jwe.b64url_encode(payload),
                "signature": ""}
    if alg.startswith("HS"):  # the IPX's public key used as an HMAC secret (algorithm confusion)
        key = jwk.JWK(kty="oct", k=jwe.b64url_encode(key_material or b"secret"))
    elif alg.startswith("RS") or alg.startswith("PS"):
        key = jwk.JWK.from_pem(rsa.generate_private_key(65537, 2048).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    elif alg == "ES256+jwk":
        key = jwk.JWK.from_pem(fresh_ec_pem())
        s = jjws.JWS(payload)
        s.add_signature(key, alg="ES256", protected=json.dumps({"alg": "ES256", "jwk": json.loads(key.export_public())}))
        return json.loads(s.serialize())
    elif alg == "ES384":
        key = jwk.JWK.from_pem(ec.generate_private_key(ec.SECP384R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    else:
        key = jwk.JWK.from_pem(key_material or fresh_ec_pem())
    s = jjws.JWS(payload)
    s.add_signature(key, alg=alg, protected=json.dumps({"alg": alg}))
    return json.loads(s.serialize())


def with_entries(body: dict, entries: list[dict]) -> dict:
    return {**body, "modificationsBlock": list(body.get("modificationsBlock") or []) + entries}


def clear_block(body: dict) -> dict:
    return jwe.peek_aad(body["reformattedData"])


def count_index(obj: Any) -> int:
    if isinstance(obj, dict):
        return (1 if "encBlockIndex" in obj else 0) + sum(count_index(v) for v in obj.values())
    if isinstance(obj, list):
        return sum(count_index(v) for v in obj)
    return 0


async def capability(env: Env, t: Trace, what: str, keys: Any, sender: str | None = None) -> Any:
    """One N32-c exchange-capability presenting ``keys``; the answer, or Refused."""
    t.sent(f"N32-c exchange-capability presenting {what}")
    try:
        rsp: Any = await env.peer.n32c_post("exchange-capability", {
            "sender": sender or env.cfg.peer.fqdn, "supportedSecCapabilityList": [env.mode or "TLS"]}, keys=keys)
    except CONNECTION_ERRORS as e:
        rsp = Refused(e)
    t.got("answer", rsp)
    return rsp


async def sbi_request(env: Env, method: str, path: str, authority: str, headers: list | None = None) -> Response:
    """A request to the target's NF-facing listener (``target.sbi``), as one of its own NFs."""
    u = urlsplit(env.cfg.target.sbi or "")
    ctx = tls.client_context(certificate=None, private_key=None, anchors=[env.cfg.target.sbi_ca or env.cfg.target.ca])
    async with await H2TlsClient.connect(u.hostname or "127.0.0.1", u.port or 443, ctx,
                                         server_name=authority.split(":")[0], timeout=env.cfg.timeout,
                                         authority=authority) as c:
        return await c.request(method, path, headers=headers or [], timeout=env.cfg.timeout)
