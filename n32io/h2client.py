"""A small asyncio HTTP/2 client over pyOpenSSL (memory BIOs).

Used for N32-c (the initiator needs the TLS exporter of *its* connection, which neither the
stdlib ssl module nor httpx exposes) and for out-of-band reports such as ``n32f-error``.
Everything is non-blocking, so it runs inside mitmproxy's event loop.
"""
from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions
from OpenSSL import SSL

from . import tls


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k == name), None)


class H2Error(Exception):
    pass


class H2TlsClient:
    """One mutually authenticated TLS connection with HTTP/2 on top."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 conn: SSL.Connection, authority: str) -> None:
        self._reader, self._writer, self.tls, self.authority = reader, writer, conn, authority
        self._h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self._streams: dict[int, dict[str, Any]] = {}
        self._reader_task: asyncio.Task | None = None
        self._closed = False

    @classmethod
    async def connect(cls, host: str, port: int, ctx: SSL.Context, server_name: str,
                      timeout: float = 10.0, authority: str | None = None) -> "H2TlsClient":
        async def _open() -> "H2TlsClient":
            reader, writer = await asyncio.open_connection(host, port)
            conn = tls.client_connection(ctx, server_name)
            client = cls(reader, writer, conn, authority or f"{server_name}:{port}")
            try:
                await client._handshake()
            except BaseException:
                writer.close()
                raise
            return client

        client = await asyncio.wait_for(_open(), timeout)
        if client.tls.get_alpn_proto_negotiated() != b"h2":
            await client.close()
            raise H2Error("peer did not negotiate HTTP/2 (ALPN h2)")
        client._h2.initiate_connection()
        await client._flush()
        client._reader_task = asyncio.create_task(client._read_loop())
        return client

    async def _flush(self) -> None:
        data = self._h2.data_to_send()
        if data:
            self.tls.sendall(data)
        out = b""
        while True:
            try:
                chunk = self.tls.bio_read(65536)
            except SSL.WantReadError:
                break
            if not chunk:
                break
            out += chunk
        if out:
            self._writer.write(out)
            await self._writer.drain()

    async def _handshake(self) -> None:
        while True:
            try:
                self.tls.do_handshake()
                break
            except SSL.WantReadError:
                await self._flush()
                data = await self._reader.read(65536)
                if not data:
                    info = self.tls.get_app_data()
                    raise H2Error("TLS handshake failed: connection closed by peer"
                                  + (f" ({info.error})" if info and info.error else ""))
                self.tls.bio_write(data)
            except SSL.Error as e:
                raise H2Error(f"TLS handshake failed: {e}") from e
        await self._flush()

    def export_n32_master(self) -> bytes:
        return tls.export_n32_master(self.tls)

    async def _read_loop(self) -> None:
        try:
            while True:
                data = await self._reader.read(65536)
                if not data:
                    break
                self.tls.bio_write(data)
                while True:
                    try:
                        plain = self.tls.recv(65536)
                    except SSL.WantReadError:
                        break
                    except SSL.ZeroReturnError:
                        plain = b""
                    if not plain:
                        break
                    for event in self._h2.receive_data(plain):
                        self._on_event(event)
                await self._flush()
        except (SSL.Error, ConnectionError, h2.exceptions.ProtocolError) as e:
            self._fail_all(H2Error(f"connection failed: {e}"))
            return
        self._fail_all(H2Error("connection closed by peer"))

    def _on_event(self, event: h2.events.Event) -> None:
        sid = getattr(event, "stream_id", None)
        st = self._streams.get(sid) if sid else None
        if isinstance(event, h2.events.ResponseReceived) and st is not None:
            st["headers"] = [(k.decode() if isinstance(k, bytes) else k,
                              v.decode() if isinstance(v, bytes) else v) for k, v in event.headers]
        elif isinstance(event, h2.events.DataReceived) and st is not None:
            st["body"] += event.data
            self._h2.acknowledge_received_data(event.flow_controlled_length, sid)
        elif isinstance(event, h2.events.StreamEnded) and st is not None:
            if not st["done"].done():
                st["done"].set_result(None)
        elif isinstance(event, h2.events.StreamReset) and st is not None:
            if not st["done"].done():
                st["done"].set_exception(H2Error(f"stream reset by peer (error {event.error_code})"))
        elif isinstance(event, h2.events.ConnectionTerminated):
            self._fail_all(H2Error(f"peer sent GOAWAY (error {event.error_code})"))

    def _fail_all(self, exc: Exception) -> None:
        self._closed = True
        for st in self._streams.values():
            if not st["done"].done():
                st["done"].set_exception(exc)

    async def request(self, method: str, path: str, *, body: bytes = b"",
                      headers: list[tuple[str, str]] | None = None,
                      timeout: float = 10.0) -> Response:
        if self._closed:
            raise H2Error("connection is closed")
        sid = self._h2.get_next_available_stream_id()
        hdrs = [(":method", method), (":scheme", "https"), (":authority", self.authority),
                (":path", path)] + list(headers or [])
        if body:
            hdrs.append(("content-length", str(len(body))))
        st = {"headers": [], "body": b"", "done": asyncio.get_running_loop().create_future()}
        self._streams[sid] = st
        try:
            self._h2.send_headers(sid, hdrs, end_stream=not body)
            if body:
                await self._send_body(sid, body)
            await self._flush()
            await asyncio.wait_for(st["done"], timeout)
        except (ConnectionError, OSError, SSL.Error) as e:
            # TLS 1.3: a server that rejects our certificate does so after our handshake completed
            raise H2Error(f"connection failed: {e or type(e).__name__}") from e
        finally:
            self._streams.pop(sid, None)
        status = next((int(v) for k, v in st["headers"] if k == ":status"), 0)
        return Response(status, [(k, v) for k, v in st["headers"] if not k.startswith(":")], st["body"])

    async def _send_body(self, sid: int, body: bytes) -> None:
        view = memoryview(body)
        while view:
            window = min(self._h2.local_flow_control_window(sid), self._h2.max_outbound_frame_size)
            if window <= 0:
                await self._flush()
                await asyncio.sleep(0.01)
                continue
            chunk, view = view[:window], view[window:]
            self._h2.send_data(sid, bytes(chunk), end_stream=not view)
        await self._flush()

    async def post_json(self, path: str, obj: Any, timeout: float = 10.0,
                        extra_headers: list[tuple[str, str]] | None = None) -> Response:
        body = json.dumps(obj, separators=(",", ":")).encode()
        # user-agent: open5gs' SEPP sends and expects "SEPP" on N32-c (TS 29.500 §5.2.2.2: NF type)
        hdrs = [("content-type", "application/json"), ("accept", "application/json, application/problem+json"),
                ("user-agent", "SEPP")]
        return await self.request("POST", path, body=body, headers=hdrs + list(extra_headers or []),
                                  timeout=timeout)

    async def close(self) -> None:
        if self._reader_task:
            self._reader_task.cancel()
        try:
            if not self._closed:
                self._h2.close_connection()
                await self._flush()
                self.tls.shutdown()
                await self._flush()
        except Exception:
            pass
        self._closed = True
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except Exception:
            pass

    async def __aenter__(self) -> "H2TlsClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
