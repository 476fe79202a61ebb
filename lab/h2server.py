"""A small asyncio HTTP server for the lab NFs: HTTP/2 (RFC 9113, TS 29.500 §5.2) and HTTP/1.1.

* TLS: ALPN ``h2`` selects HTTP/2, anything else (``http/1.1`` or no ALPN) HTTP/1.1.
* Cleartext: HTTP/2 with prior knowledge is recognised by its connection preface
  (RFC 9113 §3.4); anything else is served as HTTP/1.1.

The handler sees one complete request and returns one complete response::

    async def handler(method, path, query, headers, body) -> (status, headers, body)

``path`` and ``query`` are the two halves of the request target as sent (still
percent-encoded). ``headers`` are ``(lower-case name, value)`` pairs in arrival order; for HTTP/2
the pseudo-header fields (``:method``, ``:scheme``, ``:authority``, ``:path``) come first, as on
the wire. Many streams per connection run concurrently; received DATA is acknowledged as it
arrives and response bodies are sent as the peer's flow-control window allows.

Also here, because the NFs, the scenario and the tests share them: ``multipart/related``
(RFC 2387, TS 29.500 §6.1.2) encode/decode and the HTTP/2 send-side helper used by the client.
"""
from __future__ import annotations

import asyncio
import json
import logging
import ssl
from typing import Awaitable, Callable

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from n32 import multipart

log = logging.getLogger("lab.h2server")

Headers = list[tuple[str, str]]
Handler = Callable[[str, str, str, Headers, bytes], Awaitable[tuple[int, Headers, bytes]]]

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te",
              "content-length"}
MAX_HEAD = 64 * 1024
MAX_BODY = 64 * 1024 * 1024
REASONS = {200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request", 403: "Forbidden",
           404: "Not Found", 405: "Method Not Allowed", 411: "Length Required",
           413: "Content Too Large", 415: "Unsupported Media Type", 431: "Request Header Fields Too Large",
           500: "Internal Server Error"}


# --------------------------------------------------------------------------- HTTP/2 plumbing
class H2Endpoint:
    """One h2 connection on an asyncio stream pair; shared by the server and the lab client."""

    def __init__(self, conn: h2.connection.H2Connection, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.conn, self.reader, self.writer = conn, reader, writer
        self.closed = False
        self._window = asyncio.Event()

    async def flush(self) -> None:
        data = self.conn.data_to_send()
        if data and not self.writer.is_closing():
            self.writer.write(data)
            await self.writer.drain()

    def window_changed(self) -> None:
        """Call on WindowUpdated / RemoteSettingsChanged / connection loss: wakes blocked senders."""
        self._window.set()

    async def send_body(self, stream_id: int, body: bytes) -> None:
        """Send ``body`` on ``stream_id`` within the peer's flow-control windows, then END_STREAM."""
        view, off = memoryview(body), 0
        while off < len(view):
            if self.closed:
                raise ConnectionError("connection closed while sending")
            n = min(self.conn.local_flow_control_window(stream_id), self.conn.max_outbound_frame_size,
                    len(view) - off)
            if n <= 0:
                self._window.clear()
                await self._window.wait()
                continue
            self.conn.send_data(stream_id, bytes(view[off:off + n]))
            off += n
            await self.flush()
        self.conn.end_stream(stream_id)
        await self.flush()

    def abort(self) -> None:
        """Best-effort GOAWAY and close, without awaiting."""
        self.closed = True
        self.window_changed()
        try:
            self.conn.close_connection()
            if not self.writer.is_closing():
                self.writer.write(self.conn.data_to_send())
        except Exception:  # noqa: BLE001 - the connection may already be unusable
            pass
        self.writer.close()


def response_headers(status: int, headers: Headers, body: bytes) -> Headers:
    """HTTP/2 response header block: ``:status``, lower-case names, no hop-by-hop fields."""
    out = [(":status", str(status))]
    out += [(k.lower(), v) for k, v in headers if k.lower() not in HOP_BY_HOP]
    out.append(("content-length", str(len(body))))
    return out


def problem(status: int, cause: str, detail: str, **extra: object) -> tuple[int, Headers, bytes]:
    """A ProblemDetails response (TS 29.571 §5.2.4.1, TS 29.500 §5.2.7.2)."""
    body = {"status": status, "cause": cause, "detail": detail, **extra}
    return status, [("content-type", "application/problem+json")], json.dumps(body).encode()


async def _call(handler: Handler, method: str, target: str, headers: Headers,
                body: bytes) -> tuple[int, Headers, bytes]:
    path, _, query = target.partition("?")
    try:
        return await handler(method, path, query, headers, body)
    except Exception as e:  # noqa: BLE001 - a handler bug must not kill the connection
        log.exception("handler failed for %s %s", method, target)
        return problem(500, "SYSTEM_FAILURE", f"{type(e).__name__}: {e}")


async def _serve_h2(handler: Handler, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    prefix: bytes) -> None:
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
    ep = H2Endpoint(conn, reader, writer)
    conn.initiate_connection()
    conn.update_settings({h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 1000})
    await ep.flush()
    pending: dict[int, tuple[Headers, bytearray]] = {}
    tasks: dict[int, asyncio.Task] = {}

    async def respond(sid: int, headers: Headers, body: bytes) -> None:
        pseudo = dict(h for h in headers if h[0].startswith(":"))
        status, rsp_headers, rsp_body = await _call(handler, pseudo.get(":method", ""),
                                                    pseudo.get(":path", ""), headers, body)
        head = response_headers(status, rsp_headers, rsp_body)
        if pseudo.get(":method") == "HEAD":
            rsp_body = b""      # RFC 9110 §9.3.2: the GET answer's header fields, no content
        try:
            conn.send_headers(sid, head, end_stream=not rsp_body)
            await ep.flush()
            if rsp_body:
                await ep.send_body(sid, rsp_body)
        except (h2.exceptions.StreamClosedError, ConnectionError):
            pass  # the client reset the stream or went away

    try:
        data, open_ = prefix, True
        while open_:
            try:
                events = conn.receive_data(data) if data else []
            except h2.exceptions.ProtocolError:
                await ep.flush()  # h2 queued a GOAWAY
                return
            for ev in events:
                if isinstance(ev, h2.events.RequestReceived):
                    pending[ev.stream_id] = (list(ev.headers), bytearray())
                elif isinstance(ev, h2.events.DataReceived):
                    conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    if ev.stream_id in pending:
                        buf = pending[ev.stream_id][1]
                        buf += ev.data
                        if len(buf) > MAX_BODY:
                            del pending[ev.stream_id]
                            conn.reset_stream(ev.stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
                elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id in pending:
                    hdrs, body = pending.pop(ev.stream_id)
                    t = asyncio.create_task(respond(ev.stream_id, hdrs, bytes(body)))
                    tasks[ev.stream_id] = t
                    t.add_done_callback(lambda _t, s=ev.stream_id: tasks.pop(s, None))
                elif isinstance(ev, h2.events.StreamReset):
                    pending.pop(ev.stream_id, None)
                    if ev.stream_id in tasks:
                        tasks[ev.stream_id].cancel()
                    ep.window_changed()
                elif isinstance(ev, (h2.events.WindowUpdated, h2.events.RemoteSettingsChanged)):
                    ep.window_changed()
                elif isinstance(ev, h2.events.ConnectionTerminated):
                    open_ = False  # GOAWAY: no new streams, but finish the ones in progress
            await ep.flush()
            if open_:
                data = await reader.read(65536)
                open_ = bool(data)
        if tasks:
            await asyncio.wait(list(tasks.values()), timeout=5)
    finally:
        for t in list(tasks.values()):
            t.cancel()
        ep.abort()


# --------------------------------------------------------------------------- HTTP/1.1
class _Buffered:
    """A StreamReader with some bytes already read (the sniffed preface) put back in front."""

    def __init__(self, reader: asyncio.StreamReader, prefix: bytes) -> None:
        self.reader, self.buf = reader, bytearray(prefix)

    async def _fill(self) -> None:
        chunk = await self.reader.read(65536)
        if not chunk:
            raise EOFError
        self.buf += chunk

    async def readuntil(self, sep: bytes, limit: int) -> bytes:
        while (i := self.buf.find(sep)) < 0:
            if len(self.buf) > limit:
                raise ValueError("line too long")
            await self._fill()
        out = bytes(self.buf[:i + len(sep)])
        del self.buf[:i + len(sep)]
        return out

    async def readexactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            await self._fill()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out


async def _read_h1_body(rd: _Buffered, headers: Headers) -> bytes:
    h = {k: v for k, v in headers}
    if "chunked" in h.get("transfer-encoding", "").lower():
        body = bytearray()
        while True:
            size = int((await rd.readuntil(b"\r\n", 1024)).split(b";")[0].strip(), 16)
            if size == 0:
                while await rd.readuntil(b"\r\n", MAX_HEAD) != b"\r\n":
                    pass  # trailer fields are dropped
                return bytes(body)
            if len(body) + size > MAX_BODY:
                raise ValueError("body too large")
            body += await rd.readexactly(size)
            await rd.readexactly(2)
    n = int(h.get("content-length", "0"))
    if n > MAX_BODY:
        raise ValueError("body too large")
    return await rd.readexactly(n)


async def _serve_h1(handler: Handler, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    prefix: bytes) -> None:
    rd = _Buffered(reader, prefix)
    while True:
        try:
            head = (await rd.readuntil(b"\r\n\r\n", MAX_HEAD)).decode("latin-1")
        except EOFError:
            return
        keep, method = True, ""
        try:
            lines = head[:-4].split("\r\n")
            method, target, version = lines[0].split(" ", 2)
            headers = [(k.strip().lower(), v.strip()) for k, v in (ln.split(":", 1) for ln in lines[1:])]
            body = await _read_h1_body(rd, headers)
            conn_hdr = ",".join(v for k, v in headers if k == "connection").lower()
            keep = "close" not in conn_hdr and (version == "HTTP/1.1" or "keep-alive" in conn_hdr)
            status, rsp_headers, rsp_body = await _call(handler, method, target, headers, body)
        except (ValueError, UnicodeError) as e:
            keep = False
            status, rsp_headers, rsp_body = problem(400, "INVALID_MSG_FORMAT", f"bad HTTP/1.1 request: {e}")
        out = [f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}"]
        out += [f"{k}: {v}" for k, v in rsp_headers if k.lower() not in HOP_BY_HOP]
        out += [f"content-length: {len(rsp_body)}", f"connection: {'keep-alive' if keep else 'close'}"]
        writer.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + (b"" if method == "HEAD" else rsp_body))
        await writer.drain()
        if not keep:
            return


# --------------------------------------------------------------------------- server
async def _refuse_h1(writer: asyncio.StreamWriter) -> None:
    """What an h2c-only server (nghttp2, as in open5gs NFs) does with anything but the HTTP/2
    preface: GOAWAY PROTOCOL_ERROR "Received bad client magic byte string", then close."""
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    conn.initiate_connection()
    conn.close_connection(h2.errors.ErrorCodes.PROTOCOL_ERROR, b"Received bad client magic byte string")
    writer.write(conn.data_to_send())
    await writer.drain()


async def _connection(handler: Handler, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      h2c_only: bool = False) -> None:
    sslobj = writer.get_extra_info("ssl_object")
    if sslobj is not None:
        h2_mode, prefix = sslobj.selected_alpn_protocol() == "h2", b""
    else:  # sniff the HTTP/2 connection preface
        prefix = b""
        while len(prefix) < len(PREFACE) and PREFACE.startswith(prefix):
            chunk = await reader.read(len(PREFACE) - len(prefix))
            if not chunk:
                return
            prefix += chunk
        h2_mode = prefix == PREFACE
        if not h2_mode and h2c_only:
            await _refuse_h1(writer)
            return
    await (_serve_h2 if h2_mode else _serve_h1)(handler, reader, writer, prefix)


def server_ssl_context(certfile: str, keyfile: str) -> ssl.SSLContext:
    """A TLS server context offering ALPN ``h2`` and ``http/1.1`` (TS 33.210 profile is the SEPP's job)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(certfile, keyfile)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    return ctx


async def serve(handler: Handler, host: str, port: int, ssl_context: ssl.SSLContext | None = None,
                h2c_only: bool = False) -> asyncio.Server:
    """Listen on ``host:port`` (0 = any free port). With ``ssl_context`` the server speaks TLS and
    sets that context's ALPN list to ``h2, http/1.1``; without, ``h2c_only`` refuses HTTP/1.1 as
    open5gs NFs do. Stop it with :func:`stop`."""
    if ssl_context is not None:
        ssl_context.set_alpn_protocols(["h2", "http/1.1"])
    conns: set[asyncio.Task] = set()

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        conns.add(task)
        try:
            await _connection(handler, reader, writer, h2c_only)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, EOFError):
            pass
        except asyncio.CancelledError:
            pass  # stop(): the connection is the task's whole job, so end it quietly
        except Exception:  # noqa: BLE001
            log.exception("connection failed")
        finally:
            conns.discard(task)
            if not writer.is_closing():
                writer.close()

    server = await asyncio.start_server(on_connection, host, port, ssl=ssl_context)
    server.lab_connections = conns  # type: ignore[attr-defined]
    return server


async def stop(server: asyncio.Server) -> None:
    """Stop listening, end open connections (GOAWAY for HTTP/2) and wait until all are closed."""
    server.close()
    conns: set[asyncio.Task] = getattr(server, "lab_connections", set())
    for t in list(conns):
        t.cancel()
    if conns:
        await asyncio.wait(list(conns), timeout=5)
    await asyncio.wait_for(server.wait_closed(), 5)


def bound_port(server: asyncio.Server) -> int:
    """The TCP port a server bound (useful with port 0)."""
    return server.sockets[0].getsockname()[1]


# --------------------------------------------------------------------------- multipart/related
# The lab's NFs read and write multipart bodies with the SEPP's own parser (n32/multipart.py):
# one reading of RFC 2046 §5.1 in the project.
Part = multipart.Part
media_type = multipart.media_type


def multipart_encode(parts: list[Part], boundary: str) -> tuple[str, bytes]:
    """Encode ``multipart/related`` (RFC 2387; the first part is the root JSON, TS 29.500 §6.1.2.4).
    Returns ``(content_type, body)``; the boundary must not occur in any part."""
    return f'multipart/related; boundary={boundary}; type="application/json"', multipart.serialize(boundary, parts)


def multipart_decode(content_type: str, body: bytes) -> list[Part]:
    """Decode a ``multipart/*`` body byte-exactly into ``[(headers, content)]``; ValueError if malformed."""
    bnd = multipart.boundary(content_type)
    if bnd is None:
        raise ValueError(f"not a multipart content type: {content_type!r}")
    return multipart.parse(bnd, body)
