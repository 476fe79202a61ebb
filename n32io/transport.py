"""One client byte stream to the next hop: plain TCP or TLS through pyOpenSSL memory BIOs.

pyOpenSSL rather than the stdlib ``ssl`` module because N32 needs what ``ssl`` does not give:
the TLS exporter of *this* connection (TS 33.501 §13.2.4.4.1) and the trust rules of
``n32io.tls`` (hostname check, peer anchors only, client certificates for mutual TLS).

Failures are raised as :class:`UpstreamError` with a kind from ``n32.upstream_errors`` so the core
can answer the NF with the right ProblemDetails; the message (with addresses) is for logs only.
"""
from __future__ import annotations

import asyncio
import socket

from n32 import upstream_errors as ue
from OpenSSL import SSL

from . import tls

READ_SIZE = 256 * 1024


class UpstreamError(Exception):
    """A failure towards the next hop; ``kind`` is one of ``n32.upstream_errors.KINDS``.

    ``sent`` is False when the request certainly never reached the server application (connect
    failed, refused stream, GOAWAY below our stream id): such a request may be retried.
    """

    def __init__(self, kind: str, message: str, sent: bool = True) -> None:
        super().__init__(message)
        self.kind, self.sent = kind, sent


class Transport:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 conn: SSL.Connection | None) -> None:
        self._reader, self._writer, self.tls = reader, writer, conn
        self._closing: asyncio.Task | None = None

    @classmethod
    async def open(cls, host: str, port: int, ctx: SSL.Context | None = None, server_name: str = "",
                   alpn: tuple[bytes, ...] = (b"h2",)) -> "Transport":
        """Connect (and handshake when ``ctx`` is given). The caller bounds the time."""
        try:
            reader, writer = await asyncio.open_connection(host, port, limit=READ_SIZE)
        except OSError as e:  # refused, no route, DNS (socket.gaierror is an OSError)
            raise UpstreamError(ue.UNREACHABLE, f"connect to {host}:{port} failed: {e}", sent=False) from None
        sock = writer.get_extra_info("socket")
        if sock is not None:  # small request/response exchanges: no Nagle delay
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            conn = tls.client_connection(ctx, server_name, alpn) if ctx is not None else None
        except SSL.Error as e:   # a name OpenSSL will not check against a certificate
            writer.close()
            raise UpstreamError(ue.TLS, f"TLS to {server_name!r} not set up: {e}", sent=False) from None
        t = cls(reader, writer, conn)
        if t.tls is not None:
            try:
                await t._handshake()
            except BaseException:
                t.abort()
                raise
        return t

    async def _handshake(self) -> None:
        assert self.tls is not None
        while True:
            try:
                self.tls.do_handshake()
                break
            except SSL.WantReadError:
                self._pump_out()
                await self._writer.drain()
                try:
                    data = await self._reader.read(READ_SIZE)
                except OSError as e:
                    raise UpstreamError(ue.TLS, f"TLS handshake failed: {e}", sent=False) from None
                if not data:
                    info = self.tls.get_app_data()
                    reason = f" ({info.error})" if info is not None and info.error else ""
                    raise UpstreamError(ue.TLS, f"TLS handshake failed: connection closed by peer{reason}",
                                        sent=False)
                self.tls.bio_write(data)
            except SSL.Error as e:
                raise UpstreamError(ue.TLS, f"TLS handshake failed: {e}", sent=False) from None
        self._pump_out()

    @property
    def alpn(self) -> bytes | None:
        return self.tls.get_alpn_proto_negotiated() if self.tls is not None else None

    def _pump_out(self) -> None:
        assert self.tls is not None
        while True:  # every pending TLS record
            try:
                chunk = self.tls.bio_read(READ_SIZE)
            except SSL.WantReadError:
                return
            if not chunk:
                return
            self._writer.write(chunk)

    def write(self, data: bytes) -> None:
        """Queue ``data`` (encrypted when TLS); ``drain`` to apply back-pressure."""
        if not data:
            return
        if self.tls is None:
            self._writer.write(data)
            return
        try:
            self.tls.sendall(data)
        except SSL.Error as e:
            raise UpstreamError(ue.TLS, f"TLS failure while sending: {e}") from None
        self._pump_out()

    async def drain(self) -> None:
        try:
            await self._writer.drain()
        except OSError as e:
            raise UpstreamError(ue.RESET, f"connection failed while sending: {e}") from None

    async def read(self) -> bytes:
        """Plaintext from the server; ``b""`` on orderly close."""
        while True:
            if self.tls is not None and self.tls.get_shutdown() & SSL.RECEIVED_SHUTDOWN:
                return b""  # close_notify came with the last data: do not wait for more
            try:
                data = await self._reader.read(READ_SIZE)
            except OSError as e:
                raise UpstreamError(ue.RESET, f"connection reset: {e}") from None
            if self.tls is None or not data:
                return data
            self.tls.bio_write(data)
            out = []
            while True:
                try:
                    out.append(self.tls.recv(READ_SIZE))
                except SSL.WantReadError:
                    break
                except SSL.ZeroReturnError:
                    break
                except SSL.Error as e:
                    # TLS 1.3: a server that refuses our certificate says so after our handshake ended
                    raise UpstreamError(ue.TLS, f"TLS failure: {e}") from None
            self._pump_out()  # e.g. key update answers
            plain = b"".join(out)
            if plain:
                return plain

    def export_n32_master(self) -> bytes:
        assert self.tls is not None
        return tls.export_n32_master(self.tls)

    def abort(self) -> None:
        self._writer.close()

    async def close(self) -> None:
        """close_notify when TLS, then the socket. Idempotent and safe to call from several tasks:
        one closing task; a caller that is cancelled does not cancel it for the others."""
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self._close())
        await asyncio.shield(self._closing)

    async def _close(self) -> None:
        if self.tls is not None and not self._writer.is_closing():
            try:
                self.tls.shutdown()
                self._pump_out()
            except SSL.Error:
                pass
        self._writer.close()
        try:  # a peer that reads nothing more must not hold us: then drop what is unsent
            await asyncio.wait_for(self._writer.wait_closed(), 1.0)
        except (OSError, asyncio.TimeoutError):
            self._writer.transport.abort()
