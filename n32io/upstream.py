"""The SEPP's own client for every next hop (N32-f to the peer SEPP or IPX, delivery to the home NF).

Why the SEPP dials itself instead of letting mitmproxy open the server connection: mitmproxy 12
answers an upstream failure with its own HTML page, built in its HTTP/1 and HTTP/2 layers after
the ``error`` hook, and no hook can replace it; it has no upstream timeout; and it speaks HTTP/1.1
to ``http://`` servers while open5gs NFs speak only HTTP/2 with prior knowledge. The request hook
hands the prepared message to :meth:`Upstream.send` and sets ``flow.response`` from the answer, so
mitmproxy never opens a server connection for these flows (docs/architecture.md).

* One pool per (host, port, protocol, TLS name, TLS context); HTTP/2 connections carry many
  streams at once, a new connection is opened only when the server's SETTINGS_MAX_CONCURRENT_STREAMS
  is reached; idle connections are closed after ``idle_timeout`` seconds.
* Protocols: ``h2`` (TLS, ALPN h2), ``h2c`` (cleartext, prior knowledge, RFC 9113 §3.3),
  ``h1`` (HTTP/1.1, TLS or not).
* A connection that received nothing during a request that hit its deadline gets a PING
  (RFC 9113 §6.7) and is closed if it stays silent ``PROBE_TIMEOUT`` s (a peer gone without FIN
  or RST would otherwise be reused for ever).
* Every exchange has a deadline; failures are :class:`UpstreamError` with a kind that
  ``n32.upstream_errors`` turns into ProblemDetails. A request that certainly never reached the
  server (GOAWAY below its stream, REFUSED_STREAM, a pooled connection found dead) is retried
  once on a new connection.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from n32 import upstream_errors as ue
from n32.message import HttpRequest, HttpResponse
from OpenSSL import SSL

from .h1client import H1Client
from .h2client import H2Client
from .transport import UpstreamError

log = logging.getLogger("sepp.upstream")

PROTOCOLS = ("h2", "h2c", "h1")
PROBE_TIMEOUT = 1.0   # seconds a connection silent through a whole deadline gets to answer a PING


@dataclass(frozen=True)
class Hop:
    """Where and how to connect. ``tls`` is required for h2, optional for h1 (https)."""

    host: str
    port: int
    protocol: str = "h2"
    tls: SSL.Context | None = None
    server_name: str = ""       # SNI and the name the server certificate must carry

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, got {self.protocol!r}")
        if self.protocol == "h2" and self.tls is None:
            raise ValueError("protocol h2 needs a TLS context (use h2c for cleartext)")
        if self.protocol == "h2c" and self.tls is not None:
            raise ValueError("protocol h2c is cleartext: no TLS context")

    @property
    def key(self) -> tuple:
        return (self.host, self.port, self.protocol, self.server_name, id(self.tls))


Client = H2Client | H1Client


class Upstream:
    def __init__(self, idle_timeout: float = 60.0) -> None:
        self.idle_timeout = idle_timeout
        self._probes: set[asyncio.Task] = set()
        self._pools: dict[tuple, list[Client]] = {}
        self._connecting: dict[tuple, asyncio.Future] = {}
        self._reaper: asyncio.Task | None = None

    async def send(self, hop: Hop, req: HttpRequest, deadline: float) -> HttpResponse:
        """One request to ``hop``, answered or failed (UpstreamError) within ``deadline`` seconds."""
        try:
            async with asyncio.timeout(deadline):
                return await self._send(hop, req)
        except TimeoutError:
            raise UpstreamError(ue.TIMEOUT, f"{hop.host}:{hop.port} did not answer within {deadline:g} s") from None

    async def _send(self, hop: Hop, req: HttpRequest) -> HttpResponse:
        self._start_reaper()
        for attempt in (1, 2):
            client, fresh = await self._acquire(hop)
            heard = getattr(client, "received", None)
            try:
                rsp = await client.request(req.method, req.target, body=req.body, headers=req.headers,
                                           authority=req.authority, scheme=req.scheme)
            except asyncio.CancelledError:
                # the deadline ran out and not one byte came back on this connection meanwhile: it
                # may be dead without a FIN or RST; probe it so that it is not reused for ever
                if isinstance(client, H2Client) and client.received == heard:
                    self._spawn(client.probe(PROBE_TIMEOUT))
                raise
            except UpstreamError as e:
                if e.sent or fresh or attempt == 2:
                    raise
                log.debug("retrying on a new connection to %s:%s: %s", hop.host, hop.port, e)
                continue
            return HttpResponse(rsp.status, rsp.headers, rsp.body)
        raise AssertionError("unreachable")

    async def _acquire(self, hop: Hop) -> tuple[Client, bool]:
        """A connection with a free stream, and whether it was opened for this request."""
        key = hop.key
        while True:
            pool = self._pools.setdefault(key, [])
            pool[:] = [c for c in pool if not c.closed]
            for c in pool:
                if c.free_streams > 0:
                    return c, False
            pending = self._connecting.get(key)
            if pending is not None and hop.protocol != "h1":
                await asyncio.shield(pending)   # HTTP/2: share the connection being opened
                continue
            fut: asyncio.Future = asyncio.get_running_loop().create_future()
            self._connecting[key] = fut
            try:
                client = await self._open(hop)
            except BaseException as e:
                fut.set_result(None)
                if isinstance(e, UpstreamError):
                    log.debug("connection to %s:%s failed: %s", hop.host, hop.port, e)
                raise
            finally:
                if self._connecting.get(key) is fut:
                    del self._connecting[key]
            pool.append(client)
            fut.set_result(None)
            return client, True

    async def _open(self, hop: Hop) -> Client:
        # the caller's deadline bounds the connect too: no separate timeout here
        if hop.protocol == "h1":
            return await H1Client.connect(hop.host, hop.port, hop.tls, hop.server_name, timeout=None)
        return await H2Client.connect(hop.host, hop.port, hop.tls, hop.server_name, timeout=None)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._probes.add(task)
        task.add_done_callback(self._probes.discard)

    # ------------------------------------------------------------------ idle connections
    def _start_reaper(self) -> None:
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.get_running_loop().create_task(self._reap_loop())

    async def _reap_loop(self) -> None:
        while self._pools:
            await asyncio.sleep(max(self.idle_timeout / 4, 0.05))
            await self.reap()

    async def reap(self) -> int:
        """Close connections idle for ``idle_timeout`` seconds; returns how many were closed."""
        now = asyncio.get_running_loop().time()
        stale: list[Client] = []
        for key, pool in list(self._pools.items()):
            keep = []
            for c in pool:
                (stale if c.closed or (c.idle and now - c.last_used >= self.idle_timeout) else keep).append(c)
            if keep:
                self._pools[key] = keep
            else:
                del self._pools[key]
        for c in stale:
            await c.close()
        return len(stale)

    def connections(self) -> int:
        return sum(len([c for c in pool if not c.closed]) for pool in self._pools.values())

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        pools, self._pools = self._pools, {}
        for pool in pools.values():
            for c in pool:
                await c.close()
