"""What the probe listens on: the NF behind the target (so it sees what the target forwarded)
and the peer SEPP's N32-c server (so it sees the target's ``n32f-error`` reports, TS 33.501
§13.2.2.3, and which server certificates the target accepts as a client, TS 33.517 4.2.5)."""
from __future__ import annotations

import asyncio
import json
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Awaitable, Callable

from lab import h2server

from .config import Address, KeyPair

Reply = tuple[int, list[tuple[str, str]], bytes]


@dataclass
class Received:
    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes
    at: float = field(default_factory=time.monotonic)

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k == name), None)

    def json(self) -> object:
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def brief(self) -> dict:
        return {"method": self.method, "path": self.path + (f"?{self.query}" if self.query else ""),
                "headers": self.headers, "body": self.body[:2000].decode(errors="replace")}


class Recorder:
    """A TLS HTTP/2 server that records every request and answers with ``reply``."""

    def __init__(self, listen: Address, keys: KeyPair | None, client_ca: Path | None,
                 reply: Callable[[Received], Awaitable[Reply]] | None = None) -> None:
        self.listen, self.keys, self.client_ca = listen, keys, client_ca
        self.received: list[Received] = []
        self.reply = reply
        self.default_reply = reply
        self._server: asyncio.Server | None = None
        self.tls_failures = 0

    def _context(self) -> ssl.SSLContext | None:
        if self.keys is None:
            return None  # cleartext HTTP/2 with prior knowledge (an open5gs-style NF)
        ctx = h2server.server_ssl_context(str(self.keys.certificate), str(self.keys.private_key))
        if self.client_ca is not None:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(str(self.client_ca))
        return ctx

    async def _handle(self, method: str, path: str, query: str, headers: list, body: bytes) -> Reply:
        got = Received(method, path, query, list(headers), body)
        self.received.append(got)
        if self.reply is not None:
            return await self.reply(got)
        return 200, [("content-type", "application/json")], b'{"probe":"nf"}'

    async def start(self, keys: KeyPair | None = None) -> None:
        if keys is not None:
            self.keys = keys
        self._server = await h2server.serve(self._handle, self.listen.host, self.listen.port, self._context())

    async def stop(self) -> None:
        if self._server is not None:
            await h2server.stop(self._server)
            self._server = None

    async def restart(self, keys: KeyPair) -> None:
        """Serve with another certificate (the client-role trust cases)."""
        await self.stop()
        await self.start(keys)

    def since(self, mark: int) -> list[Received]:
        return self.received[mark:]

    def mark(self) -> int:
        return len(self.received)

    async def wait(self, mark: int, predicate: Callable[[Received], bool], timeout: float) -> Received | None:
        deadline = time.monotonic() + timeout
        while True:
            for r in self.received[mark:]:
                if predicate(r):
                    return r
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(0.05)


async def n32c_reply(got: Received) -> Reply:
    """The peer's N32-c server: takes n32f-error reports (204); anything else is not offered."""
    if got.method == "POST" and got.path.endswith("/n32f-error"):
        return 204, [], b""
    return h2server.problem(403, "NEGOTIATION_NOT_ALLOWED", "the probe does not take N32-c handshakes")
