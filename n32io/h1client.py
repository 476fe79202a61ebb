"""HTTP/1.1 to a next hop that asks for it (``home_nfs`` route ``protocol: h1``): one request at
a time per connection, kept alive for the next (RFC 9112 §9.3). The SBI is HTTP/2
(TS 29.500 §5.2); this exists for lab tools and NFs that only speak HTTP/1.1."""
from __future__ import annotations

import asyncio

import h11
from n32 import upstream_errors as ue
from OpenSSL import SSL

from .h2client import Response
from .transport import Transport, UpstreamError


class H1Client:
    def __init__(self, transport: Transport, authority: str) -> None:
        self.transport, self.authority = transport, authority
        self._h11 = h11.Connection(h11.CLIENT)
        self._busy = False
        self.closed = False
        self.last_used = asyncio.get_running_loop().time()

    @classmethod
    async def connect(cls, host: str, port: int, ctx: SSL.Context | None = None, server_name: str = "",
                      timeout: float | None = 10.0, authority: str | None = None) -> "H1Client":
        try:
            opening = Transport.open(host, port, ctx, server_name or host, alpn=(b"http/1.1",))
            transport = await (opening if timeout is None else asyncio.wait_for(opening, timeout))
        except asyncio.TimeoutError:
            raise UpstreamError(ue.TIMEOUT, f"no connection to {host}:{port} within {timeout:g} s",
                                sent=False) from None
        return cls(transport, authority or f"{server_name or host}:{port}")

    @property
    def free_streams(self) -> int:
        return 0 if self.closed or self._busy else 1

    @property
    def idle(self) -> bool:
        return not self._busy

    async def request(self, method: str, path: str, *, body: bytes = b"",
                      headers: list[tuple[str, str]] | None = None, timeout: float | None = None,
                      authority: str | None = None, scheme: str | None = None) -> Response:
        if self.closed or self._busy:
            raise UpstreamError(ue.RESET, "connection is not available", sent=False)
        self._busy = True
        try:
            coro = self._exchange(method, path, body, headers or [], authority or self.authority)
            return await (coro if timeout is None else asyncio.wait_for(coro, timeout))
        except asyncio.TimeoutError:
            await self.close()
            raise UpstreamError(ue.TIMEOUT, f"no answer within {timeout:g} s") from None
        except BaseException:
            await asyncio.shield(self.close())
            raise
        finally:
            self._busy = False
            self.last_used = asyncio.get_running_loop().time()

    async def _exchange(self, method: str, path: str, body: bytes, headers: list[tuple[str, str]],
                        authority: str) -> Response:
        hdrs = [("host", authority), *headers, ("content-length", str(len(body)))]
        try:
            self.transport.write(self._h11.send(h11.Request(method=method, target=path, headers=hdrs)))
            if body:
                self.transport.write(self._h11.send(h11.Data(data=body)))
            self.transport.write(self._h11.send(h11.EndOfMessage()))
        except h11.LocalProtocolError as e:
            raise UpstreamError(ue.PROTOCOL, f"cannot send request: {e}", sent=False) from None
        await self.transport.drain()
        status, rsp_headers, out = 0, [], bytearray()
        while True:
            try:
                event = self._h11.next_event()
            except h11.RemoteProtocolError as e:
                raise UpstreamError(ue.PROTOCOL, f"invalid HTTP/1.1 response: {e}") from None
            if event is h11.NEED_DATA:
                self._h11.receive_data(await self.transport.read())
            elif isinstance(event, h11.InformationalResponse):
                continue
            elif isinstance(event, h11.Response):
                status = event.status_code
                rsp_headers = [(k.decode().lower(), v.decode()) for k, v in event.headers]
            elif isinstance(event, h11.Data):
                out += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise UpstreamError(ue.RESET, "connection closed by server before the whole answer")
        if self._h11.our_state is h11.DONE and self._h11.their_state is h11.DONE:
            self._h11.start_next_cycle()
        else:  # the server closes after this answer (Connection: close, RFC 9112 §9.6)
            await self.close()
        return Response(status, rsp_headers, bytes(out))

    async def close(self) -> None:
        self.closed = True
        await self.transport.close()
