"""The probe as the target's peer SEPP, built from our own core: N32-c initiator
(``n32.handshake.Initiator`` over ``n32io.n32c``), N32-f sender in PRINS mode (``n32.prins``)
or TLS mode, and the peer's roaming intermediary (``n32.ipx``) where a case needs one."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from OpenSSL import SSL

from n32 import handshake, ipx, jwe, prins, reformat
from n32.config import PeerOptions
from n32.context import N32fContext
from n32.message import HttpRequest
from n32.peer import EXTENSIONS
from n32.plmn import PlmnId
from n32.policy import PolicySet
from n32io import n32c, tls
from n32io.h2client import H2TlsClient, Response

from .config import Identity, KeyPair, ProbeConfig

ROOT = Path(__file__).resolve().parent.parent
N32F_PATH = "/n32f-forward/v1/n32f-process"
TARGET_HEADER = "3gpp-sbi-target-apiroot"


@dataclass
class _Peer:
    """What ``n32io.n32c`` needs to reach the target."""

    fqdn: str
    n32c_uri: str


@dataclass
class Session:
    """One N32-c handshake with the target and what it yielded."""

    capability: str
    context: N32fContext | None
    initiator: handshake.Initiator
    exchanges: list[dict] = field(default_factory=list)

    @property
    def capability_response(self) -> dict:
        return self.initiator.capability_response


def _files(paths: list[Path]) -> list[Path]:
    return [f for p in paths for f in (sorted(Path(p).glob("*.yaml")) if Path(p).is_dir() else [Path(p)])]


def default_policy(cfg: ProbeConfig, encryption: Path | None = None) -> PolicySet:
    """The policies the probe announces on N32-c (default: the ones shipped with mitm-sepp)."""
    p = cfg.policies
    return PolicySet.load(encryption or p.get("encryption") or ROOT / "policies/data-type-encryption.yaml",
                          _files(list(p.get("placement") or [ROOT / "policies/placement"])),
                          p.get("modification") or ROOT / "policies/modification.yaml")


class PeerSepp:
    def __init__(self, cfg: ProbeConfig) -> None:
        self.cfg = cfg
        self.policy = default_policy(cfg)
        self.target = _Peer(cfg.target.fqdn, cfg.target.n32c)

    # ------------------------------------------------------------------ TLS
    def client_ctx(self, keys: KeyPair | None = None) -> SSL.Context:
        k = keys or self.cfg.peer.tls
        return tls.client_context(certificate=k.certificate, private_key=k.private_key, anchors=[self.cfg.target.ca])

    async def connect(self, uri: str, keys: KeyPair | None = None,
                      authority: str | None = None) -> tuple[H2TlsClient, str]:
        u = urlsplit(uri)
        port = u.port or 443
        client = await H2TlsClient.connect(u.hostname or "127.0.0.1", port, self.client_ctx(keys),
                                           server_name=self.cfg.target.fqdn, timeout=self.cfg.timeout,
                                           authority=authority or f"{self.cfg.target.fqdn}:{port}")
        return client, u.path.rstrip("/")

    # ------------------------------------------------------------------ N32-c
    def local(self, identity: Identity | None = None, *, capabilities: tuple[str, ...] | None = None,
              policy: PolicySet | None = None, ipx_keys: list[dict] | None = None) -> handshake.LocalSepp:
        me = identity or self.cfg.peer
        if ipx_keys is None:
            ipx_keys = [self.ipx_sec_info()] if self.cfg.ipx else []
        return handshake.LocalSepp(me.fqdn, [PlmnId.parse(p) for p in me.plmn_ids],
                                   tuple(capabilities or self.cfg.capabilities), tuple(self.cfg.jwe_suites),
                                   ("ES256",), policy or self.policy, ipx_keys)

    def ipx_sec_info(self, fqdn: str | None = None, public_key: Path | None = None) -> dict:
        assert self.cfg.ipx is not None
        return {"ipxProviderId": fqdn or self.cfg.ipx.fqdn,
                "rawPublicKeyList": [(public_key or self.cfg.ipx.public_key).read_text()]}

    async def handshake(self, *, identity: Identity | None = None, capabilities: tuple[str, ...] | None = None,
                        policy: PolicySet | None = None, ipx_keys: list[dict] | None = None) -> Session:
        """A complete N32-c handshake (capability, and for PRINS the three parameter rounds)."""
        local = self.local(identity, capabilities=capabilities, policy=policy, ipx_keys=ipx_keys)
        # the target is a mitm-sepp: it accepts all our wire extensions (docs/interop-profile.md)
        settings = handshake.Peer(self.cfg.target.fqdn, [PlmnId.parse(p) for p in self.cfg.target.plmn_ids],
                                  tuple(local.capabilities), PeerOptions(extensions=EXTENSIONS))
        init = handshake.Initiator(local, settings, now=time.time())
        keys = (identity or self.cfg.peer).tls
        init, master = await n32c.run_initiator(init, self.target, self.client_ctx(keys), self.cfg.timeout)
        ctx = init.finish(master) if init.selected_capability == "PRINS" else None
        return Session(init.selected_capability or "", ctx, init)

    async def n32c_post(self, operation: str, body: Any, keys: KeyPair | None = None) -> Response:
        client, prefix = await self.connect(self.cfg.target.n32c, keys)
        try:
            return await client.post_json(f"{prefix}/n32c-handshake/v1/{operation}", body, timeout=self.cfg.timeout)
        finally:
            await client.close()

    async def release(self, session: Session) -> None:
        """Ends what a session set up (terminate the context / release the TLS relation)."""
        try:
            if session.context is not None:
                await self.n32c_post("n32f-terminate", handshake.terminate_request(session.context))
        except Exception:  # noqa: BLE001 - best effort: the target may already have dropped it
            pass

    # ------------------------------------------------------------------ N32-f
    def n32f_uri(self, session: Session | None = None) -> str:
        if self.cfg.target.n32f:
            return self.cfg.target.n32f
        rsp = session.capability_response if session else {}
        ports = rsp.get("senderN32fPortList") or []
        if ports:
            host = urlsplit(self.cfg.target.n32c).hostname
            return f"https://{host}:{ports[0]}"
        return self.cfg.target.n32c

    def request(self, path: str, *, method: str = "GET", query: str = "", headers: list[tuple[str, str]] | None = None,
                body: Any = None, authority: str | None = None) -> HttpRequest:
        """An SBI request of an NF of the peer's PLMN towards a home NF of the target."""
        raw = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        hdrs = list(headers or [])
        if not any(k == "user-agent" for k, _ in hdrs):  # TS 29.500 §5.2.2.2: the NF type
            hdrs.insert(0, ("user-agent", "AMF"))
        if body is not None and not any(k == "content-type" for k, _ in hdrs):
            hdrs.append(("content-type", "application/json"))
        return HttpRequest(method, "https", authority or self.cfg.target.home_nf, path, query, hdrs, raw)

    def protect(self, session: Session, req: HttpRequest, *, message_id: str | None = None,
                sel: reformat.IeSelection | None = None, authorized_ipx: str | None = None) -> tuple[dict, str]:
        """N32fReformattedReqMsg for ``req`` on ``session``'s context; returns (body, messageId)."""
        assert session.context is not None
        mid = message_id or prins.new_message_id()
        if sel is None:
            sel = self.policy.selection(self.cfg.target.fqdn, req.method, req.path, "request")
        body, _ = prins.protect_request(session.context, req, sel, mid, authorized_ipx)
        return body, mid

    def seal(self, session: Session, block: dict, data: list) -> dict:
        """An N32fReformattedReqMsg sealed from a clear block and dataToEncrypt as given (for
        crafted messages that a correct sender would never build)."""
        assert session.context is not None
        key, counter, enc = session.context.send_params("request")
        return {"reformattedData": jwe.encrypt(key, counter.next(), enc, block, data)}

    def ipx_patch(self, body: dict, ops: list[dict] | None = None, *, identity: str | None = None,
                  key_pem: bytes | None = None) -> dict:
        """``body`` as the peer's IPX forwards it: one signed modificationsBlock entry (TS 33.501 §13.2.4.5)."""
        assert self.cfg.ipx is not None
        rules = [ipx.Rule(patch=tuple(ops))] if ops else []
        return ipx.modify(body, identity or self.cfg.ipx.fqdn, key_pem or self.cfg.ipx.private_key.read_bytes(),
                          rules, "request").body

    async def post_n32f(self, session: Session | None, body: Any, *, raw: bytes | None = None,
                        keys: KeyPair | None = None) -> Response:
        client, prefix = await self.connect(self.n32f_uri(session), keys)
        try:
            payload = raw if raw is not None else json.dumps(body).encode()
            return await client.request("POST", prefix + N32F_PATH, body=payload,
                                        headers=[("content-type", "application/json")], timeout=self.cfg.timeout)
        finally:
            await client.close()

    def open_response(self, session: Session, rsp: Response, message_id: str) -> Any:
        assert session.context is not None
        return prins.open_response(session.context, rsp.json(), message_id)

    async def send_tls_mode(self, session: Session | None, req: HttpRequest, *, target_api_root: str | None = None,
                            keys: KeyPair | None = None) -> Response:
        """N32-f in TLS mode: the request as a sending SEPP forwards it (TS 33.501 §13.1.1.2, TS 29.500
        §6.10.2.4): ``:authority`` the target SEPP, the NF's apiRoot in ``3gpp-Sbi-Target-apiRoot``
        (from ``req.authority`` unless given, or already among ``req.headers``)."""
        hdrs = list(req.headers)
        if not any(k == TARGET_HEADER for k, _ in hdrs):
            hdrs.append((TARGET_HEADER, target_api_root or self.cfg.target.api_root(req.authority)))
        port = urlsplit(self.n32f_uri(session)).port or 443
        client, _ = await self.connect(self.n32f_uri(session), keys, authority=f"{self.cfg.target.fqdn}:{port}")
        try:
            return await client.request(req.method, req.target, body=req.body, headers=hdrs, timeout=self.cfg.timeout)
        finally:
            await client.close()
