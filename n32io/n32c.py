"""Runs N32-c exchanges over a real mutually authenticated TLS 1.3 + HTTP/2 connection.

The protocol decisions are the sans-I/O ``n32.handshake.Initiator``'s; this module only moves
its requests over one connection (TS 33.501 §13.2.2.2: capability and all parameter rounds on
the *same* connection, master key exported from it), then closes the connection (step 6).
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import urlsplit

from n32 import handshake, trust, wire
from n32.errors import N32Error
from OpenSSL import SSL

from .h2client import H2Error, H2TlsClient

log = logging.getLogger("sepp.n32c")
API = wire.N32C_API


@dataclass(frozen=True, slots=True)
class Sent:
    """One N32-c request this SEPP made and what came back, for the flow list (these requests are
    ours, not mitmproxy's: addons/sepp.py shows them as flows)."""

    peer: str
    operation: str
    host: str
    port: int
    authority: str
    path: str
    body: bytes
    status: int | None                 # None: no answer (error)
    response: bytes
    response_type: str
    started: float
    ended: float
    error: str | None = None


def split_uri(uri: str) -> tuple[str, int, str]:
    parts = urlsplit(uri)
    return parts.hostname or "", parts.port or 443, parts.path.rstrip("/")


async def open_n32c(peer: Any, ctx: SSL.Context, timeout: float) -> tuple[H2TlsClient, str]:
    host, port, prefix = split_uri(peer.n32c_uri)
    client = await H2TlsClient.connect(host, port, ctx, server_name=peer.fqdn, timeout=timeout,
                                       authority=f"{peer.fqdn}:{port}")
    return client, prefix


async def _post(client: H2TlsClient, peer: Any, operation: str, path: str, body: Any, timeout: float,
                on_sent: Callable[[Sent], None] | None) -> Any:
    data, t0 = json.dumps(body, separators=(",", ":")).encode(), time.time()
    try:
        rsp = await client.post_json(path, body, timeout=timeout)
    except Exception as e:
        if on_sent is not None:
            host, port, _ = split_uri(peer.n32c_uri)
            on_sent(Sent(peer.fqdn, operation, host, port, f"{peer.fqdn}:{port}", path, data, None, b"", "",
                         t0, time.time(), str(e) or type(e).__name__))
        raise
    if on_sent is not None:
        host, port, _ = split_uri(peer.n32c_uri)
        ctype = next((v for k, v in rsp.headers if k == "content-type"), "")
        on_sent(Sent(peer.fqdn, operation, host, port, f"{peer.fqdn}:{port}", path, data, rsp.status, rsp.body,
                     ctype, t0, time.time()))
    return rsp


async def run_initiator(initiator: "handshake.Initiator", peer: Any, ctx: SSL.Context,
                        timeout: float, on_events: Callable[[list], None] | None = None,
                        on_sent: Callable[[Sent], None] | None = None) -> tuple[Any, bytes]:
    """Drive ``initiator`` to completion; returns (initiator, exported master key).

    With ``on_events`` the initiator gets the connection's exporter up front, so the context
    exists from round 1 on, and its events are handed over after every answer (the I/O owner
    stores the context for receiving before the responder can use it: make before break)."""
    client, prefix = await open_n32c(peer, ctx, timeout)
    try:
        if on_events is not None and initiator.exporter is None:
            initiator.exporter = client.export_n32_master
        cert = client.tls.get_peer_certificate() if client.tls is not None else None
        if cert is not None and initiator.cert_plmns is None:
            # the PLMNs the peer announces must be named by this certificate (SCAS TS 33.517 4.2.5)
            initiator.cert_plmns = trust.cert_plmn_ids(cert.to_cryptography())
        while (step := initiator.next_request()) is not None:
            operation, body = step
            rsp = await _post(client, peer, operation, f"{prefix}{API}{operation}", body, timeout, on_sent)
            try:
                payload = rsp.json()
            except ValueError:
                payload = None
            log.debug("N32-c %s -> %s: %s", operation, peer.fqdn, rsp.status)
            try:
                initiator.receive(rsp.status, payload)
            finally:
                if on_events is not None:
                    on_events(initiator.take_events())
        return initiator, client.export_n32_master()
    finally:
        await client.close()


async def post_once(peer: Any, ctx: SSL.Context, operation: str, body: dict,
                    timeout: float, on_sent: Callable[[Sent], None] | None = None) -> tuple[int, Any]:
    """One N32-c request on a new connection (e.g. ``n32f-error`` from the responder, seed step 5)."""
    client, prefix = await open_n32c(peer, ctx, timeout)
    try:
        rsp = await _post(client, peer, operation, f"{prefix}{API}{operation}", body, timeout, on_sent)
        try:
            return rsp.status, rsp.json()
        except ValueError:
            return rsp.status, None
    finally:
        await client.close()


async def with_backoff(fn, *, what: str, initial: float, maximum: float, attempts: int | None):
    """Retry ``fn`` on connection failures with exponential backoff (protocol errors are final)."""
    delay, n = initial, 0
    while True:
        n += 1
        try:
            return await fn()
        except (H2Error, OSError, asyncio.TimeoutError) as e:
            if attempts is not None and n >= attempts:
                raise
            log.warning("%s failed (%s); retrying in %.1fs", what, e or type(e).__name__, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, maximum)
        except N32Error:
            raise
