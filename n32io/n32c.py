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


class ReportChannel:
    """One N32-c connection per peer for ``n32f-error`` reports, kept open ``idle`` seconds after
    its last use (issue 13: a burst of N32-f errors must not open a connection per report; TS
    33.501 §13.2.2.3 says nothing of connections, TS 29.573 §5.2 allows several requests on one).
    Concurrent reports to one peer share it as HTTP/2 streams."""

    def __init__(self, idle: float = 10.0) -> None:
        self.idle = idle
        self.opened = 0                    # connections opened, for tests and the log
        self._conns: dict[str, tuple[H2TlsClient, str]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._closing: set[asyncio.Task] = set()

    async def _connection(self, peer: Any, ctx: SSL.Context, timeout: float) -> tuple[H2TlsClient, str, bool]:
        async with self._locks.setdefault(peer.fqdn, asyncio.Lock()):
            conn = self._conns.get(peer.fqdn)
            if conn is not None and not conn[0].closed and conn[0].free_streams > 0:
                return conn[0], conn[1], True
            if conn is not None:
                self._drop(peer.fqdn)
            client, prefix = await open_n32c(peer, ctx, timeout)
            self.opened += 1
            self._conns[peer.fqdn] = (client, prefix)
            return client, prefix, False

    async def post(self, peer: Any, ctx: SSL.Context, operation: str, body: dict, timeout: float,
                   on_sent: Callable[[Sent], None] | None = None) -> tuple[int, Any]:
        for attempt in (1, 2):
            client, prefix, reused = await self._connection(peer, ctx, timeout)
            self._cancel_timer(peer.fqdn)
            try:
                rsp = await _post(client, peer, operation, f"{prefix}{API}{operation}", body, timeout, on_sent)
            except H2Error as e:
                self._drop(peer.fqdn, client)
                # the peer may have closed an idle connection under us: once more on a new one
                if reused and not e.sent and attempt == 1:
                    continue
                raise
            except BaseException:
                self._drop(peer.fqdn, client)
                raise
            self._arm_timer(peer.fqdn, client)
            try:
                return rsp.status, rsp.json()
            except ValueError:
                return rsp.status, None
        raise AssertionError("unreachable")

    def _cancel_timer(self, fqdn: str) -> None:
        timer = self._timers.pop(fqdn, None)
        if timer is not None:
            timer.cancel()

    def _arm_timer(self, fqdn: str, client: H2TlsClient) -> None:
        self._cancel_timer(fqdn)
        loop = asyncio.get_running_loop()
        self._timers[fqdn] = loop.call_later(self.idle, self._expire, fqdn, client)

    def _expire(self, fqdn: str, client: H2TlsClient) -> None:
        self._timers.pop(fqdn, None)
        if not client.idle:                # a report in flight re-arms the timer when it ends
            return
        self._drop(fqdn, client)

    def _drop(self, fqdn: str, client: H2TlsClient | None = None) -> None:
        conn = self._conns.get(fqdn)
        if conn is None or (client is not None and conn[0] is not client):
            if client is not None:
                self._close(client)
            return
        del self._conns[fqdn]
        self._cancel_timer(fqdn)
        self._close(conn[0])

    def _close(self, client: H2TlsClient) -> None:
        task = asyncio.get_running_loop().create_task(client.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def aclose(self) -> None:
        for fqdn in list(self._conns):
            self._drop(fqdn)
        if self._closing:
            await asyncio.wait(list(self._closing), timeout=SHUTDOWN_CLOSE)


SHUTDOWN_CLOSE = 2.0   # seconds to close the report connections at shutdown


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
