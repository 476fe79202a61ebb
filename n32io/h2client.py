"""A small asyncio HTTP/2 client (RFC 9113) over ``n32io.transport``: TLS with ALPN ``h2`` or
cleartext with prior knowledge (RFC 9113 §3.3, how open5gs NFs speak the SBI, TS 29.500 §5.2).

Used for N32-c (the initiator needs the TLS exporter of *its* connection), for out-of-band
reports such as ``n32f-error`` and, through ``n32io.upstream``, for every forwarded request.
Many requests share one connection (one stream each). Everything is non-blocking, so it runs
inside mitmproxy's event loop.
"""
from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import hpack
import hpack.hpack
import hpack.table
from n32 import upstream_errors as ue
from OpenSSL import SSL

from .transport import Transport, UpstreamError

H2Error = UpstreamError  # the name callers have used since N32-c

# h2 remembers how each closed stream of a connection ended, so that a frame the peer sent before
# it saw our RST_STREAM is ignored rather than a connection error (RFC 9113 §5.1, §5.4.2). It keeps
# 2**16 such records per connection, about 8 MB once an N32-f or NF connection has carried 65 536
# requests (the soak's RSS growth, docs/soak.md). Such frames arrive within a round trip of the
# reset, and §5.1 lets an endpoint limit how long it ignores them: the last 1 024 streams (ten
# times the 100 concurrent streams h2 allows by default; ~120 KB) are plenty. Also applied to
# mitmproxy's HTTP/2 connections on our listeners (addons/listeners.py).
CLOSED_STREAMS_KEPT = 2**10


class _Connection(h2.connection.H2Connection):
    MAX_CLOSED_STREAMS = CLOSED_STREAMS_KEPT


# RFC 9113 §8.2.2: connection-specific fields are not sent over HTTP/2; "te" only as "trailers".
_CONNECTION_SPECIFIC = frozenset({b"connection", b"proxy-connection", b"keep-alive", b"transfer-encoding",
                                  b"upgrade"})
_NEVER_INDEXED = frozenset({b"authorization", b"proxy-authorization"})


def _octets(text: str) -> bytes:
    """A field as sent: octets that are not UTF-8 (obs-text, RFC 9110 §5.5) were read with
    surrogateescape (addons/flowconv.py) and go out as they came; a lone surrogate cannot be sent."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise h2.exceptions.ProtocolError(f"field {text[:40]!r} cannot be written as octets") from None


def request_fields(method: str, scheme: str, authority: str, path: str, headers: list[tuple[str, str]],
                   length: int | None) -> list[tuple[bytes, bytes]]:
    """The header block of one request, normalised and checked in one pass as h2 does when its
    ``normalize_outbound_headers`` and ``validate_outbound_headers`` are on (they are off on our
    connections: h2 runs ten generators per field, ~14 µs per request, the largest cost of sending
    one). As h2: names lower case, names and values stripped of surrounding whitespace,
    connection-specific fields dropped (RFC 9113 §8.2.2), ``authorization`` and short cookies
    never indexed (RFC 7541 §7.1.3); ProtocolError for an empty ``:path``, a pseudo-header among
    the fields, ``te`` other than ``trailers``, a second ``host`` or one that contradicts
    ``:authority`` (§8.3.1). tests/n32io/test_h2client.py compares the result with h2's."""
    out = [(b":method", _octets(method).strip()), (b":scheme", _octets(scheme).strip()),
           (b":authority", _octets(authority).strip()), (b":path", _octets(path).strip())]
    if not out[3][1]:
        raise h2.exceptions.ProtocolError("An empty :path header is forbidden")
    hosts = False
    for k, v in headers:
        name, value = _octets(k).strip().lower(), _octets(v).strip()
        if name[:1] == b":":
            raise h2.exceptions.ProtocolError(f"Received pseudo-header {name!r} after regular headers")
        if name in _CONNECTION_SPECIFIC:
            continue
        if name == b"te" and value.lower() != b"trailers":
            raise h2.exceptions.ProtocolError(f"Invalid value for TE header: {value!r}")
        if name == b"host":
            if value != out[2][1] or hosts:
                raise h2.exceptions.ProtocolError(f"Request header block has a second Host or one that does "
                                                  f"not match :authority: {authority!r}, {value!r}")
            hosts = True
        out.append(hpack.NeverIndexedHeaderTuple(name, value)
                   if name in _NEVER_INDEXED or (name == b"cookie" and len(value) < 20) else (name, value))
    if length is not None:
        out.append((b"content-length", str(length).encode()))
    return out


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k == name), None)


class StaticEncoder(hpack.Encoder):
    """HPACK with the static table only (RFC 7541 §2.3.1): a field the static table holds is
    indexed, any other is a literal without indexing (§6.2.2; never indexed, §6.2.3, for the
    fields h2 marks sensitive, such as ``authorization``), values not Huffman-coded (§5.2, H = 0).
    Nothing enters the dynamic table, so a field always encodes the same way and its encoding is
    computed once. hpack's own encoder (pure Python) searched the dynamic table linearly and
    Huffman-coded every literal: it was the largest cost of sending a request. Any decoder reads
    these; a header block is larger than with dynamic indexing, which costs nothing measurable
    on a SEPP's links (and the receiver decodes no Huffman)."""

    # distinct fields kept; values that change per request (an NF's :path) pass through and empty it
    # now and then. 2048 per connection made a 10-minute soak's home SEPP swing by ~50 000 Python
    # objects over its 4 NF connections and grow by 4 allocator arenas (docs/soak.md); the repeated
    # fields of a request are a handful, re-encoded once per emptying.
    MEMO = 256

    def __init__(self) -> None:
        super().__init__()
        self._memo: dict[tuple[bytes, bytes, bool], bytes] = {}

    def encode(self, headers: Any, huffman: bool = False) -> bytes:
        return super().encode(headers, huffman=False)

    def add(self, to_add: tuple[bytes, bytes], sensitive: bool, huffman: bool = False) -> bytes:
        key = (to_add[0], to_add[1], bool(sensitive))
        out = self._memo.get(key)
        if out is None:
            if len(self._memo) >= self.MEMO:
                self._memo.clear()
            out = self._memo[key] = self._field(*key)
        return out

    def _field(self, name: bytes, value: bytes, sensitive: bool) -> bytes:
        mode = hpack.hpack.INDEX_NEVER if sensitive else hpack.hpack.INDEX_NONE
        hit = hpack.table.HeaderTable.STATIC_TABLE_MAPPING.get(name)
        if hit is None:
            return self._encode_literal(name, value, mode)
        index = hit[1].get(value)
        if index is not None:
            return self._encode_indexed(index)
        return self._encode_indexed_literal(hit[0], value, mode)


class _Stream:
    __slots__ = ("headers", "body", "done")

    def __init__(self, done: asyncio.Future) -> None:
        self.headers: list[tuple[str, str]] = []
        self.body = bytearray()
        self.done = done


class H2Client:
    """One HTTP/2 connection; ``request`` may be called concurrently (one stream per call)."""

    def __init__(self, transport: Transport, authority: str, scheme: str) -> None:
        self.transport, self.authority, self.scheme = transport, authority, scheme
        # Outbound fields are normalised and checked by request_fields (one pass), inbound ones are
        # validated by h2 (as mitmproxy configures its own connections) and decoded in _on_event.
        self._h2 = _Connection(h2.config.H2Configuration(client_side=True, header_encoding=False,
                                                         normalize_inbound_headers=False,
                                                         normalize_outbound_headers=False,
                                                         validate_outbound_headers=False))
        self._h2.encoder = StaticEncoder()
        self._streams: dict[int, _Stream] = {}
        self._window = asyncio.Event()
        self._reader_task: asyncio.Task | None = None
        self.closed = False        # no new streams (closed, failed or GOAWAY received)
        self.last_used = asyncio.get_running_loop().time()
        self.received = 0          # bytes read from the server: a request's deadline tells a dead link
        self._rx = asyncio.Event()
        self._flush_pending = False

    @property
    def tls(self) -> SSL.Connection | None:
        return self.transport.tls

    @classmethod
    async def connect(cls, host: str, port: int, ctx: SSL.Context | None = None, server_name: str = "",
                      timeout: float | None = 10.0, authority: str | None = None) -> "H2Client":
        """TLS with ALPN h2 when ``ctx`` is given, else cleartext HTTP/2 with prior knowledge."""
        async def _open() -> Transport:
            return await Transport.open(host, port, ctx, server_name or host, alpn=(b"h2",))

        try:
            transport = await (_open() if timeout is None else asyncio.wait_for(_open(), timeout))
        except asyncio.TimeoutError:
            raise UpstreamError(ue.TIMEOUT, f"no connection to {host}:{port} within {timeout:g} s",
                                sent=False) from None
        if ctx is not None and transport.alpn != b"h2":
            await transport.close()
            raise UpstreamError(ue.PROTOCOL, "server did not negotiate HTTP/2 (ALPN h2)", sent=False)
        client = cls(transport, authority or f"{server_name or host}:{port}", "https" if ctx else "http")
        client._h2.initiate_connection()
        client._flush()
        client._reader_task = asyncio.get_running_loop().create_task(client._read_loop())
        return client

    def export_n32_master(self) -> bytes:
        return self.transport.export_n32_master()

    # ------------------------------------------------------------------ streams
    @property
    def free_streams(self) -> int:
        if self.closed:
            return 0
        return self._h2.remote_settings.max_concurrent_streams - len(self._streams)

    @property
    def idle(self) -> bool:
        return not self._streams

    async def probe(self, timeout: float) -> bool:
        """PING (RFC 9113 §6.7) and wait up to ``timeout`` s for any byte back; a connection that
        stays silent (a peer gone without FIN or RST, a middlebox holding our side open) is closed,
        failing its streams, so that the next request dials a new one. True if it answered."""
        if self.closed:
            return False
        self._rx.clear()
        try:
            self._h2.ping(b"n32alive")
            self._flush()
            await asyncio.wait_for(self._rx.wait(), timeout)
            return True
        except (asyncio.TimeoutError, h2.exceptions.ProtocolError, UpstreamError, OSError):
            await self.close()
            return False

    async def request(self, method: str, path: str, *, body: bytes = b"",
                      headers: list[tuple[str, str]] | None = None, timeout: float | None = None,
                      authority: str | None = None, scheme: str | None = None) -> Response:
        """One exchange. ``headers`` exclude pseudo-headers; connection-specific ones are the
        caller's to leave out (RFC 9113 §8.2.2)."""
        if self.closed:
            raise UpstreamError(ue.RESET, "connection is closed", sent=False)
        loop = asyncio.get_running_loop()
        sid = self._h2.get_next_available_stream_id()
        st = self._streams[sid] = _Stream(loop.create_future())
        self.last_used = loop.time()
        try:
            try:
                hdrs = request_fields(method, scheme or self.scheme, authority or self.authority, path,
                                      headers or [], len(body) if body else None)
                self._h2.send_headers(sid, hdrs, end_stream=not body)
            except h2.exceptions.ProtocolError as e:
                raise UpstreamError(ue.PROTOCOL, f"cannot send request: {e}", sent=False) from None
            if body:
                await self._send_body(sid, body)
            self._flush_soon()
            await self.transport.drain()
            if timeout is None:
                await st.done
            else:
                await asyncio.wait_for(st.done, timeout)
        except asyncio.CancelledError:
            self._reset(sid)
            raise
        except asyncio.TimeoutError:
            self._reset(sid)
            raise UpstreamError(ue.TIMEOUT, f"no answer within {timeout:g} s") from None
        finally:
            self._streams.pop(sid, None)
            self.last_used = loop.time()
        status = next((int(v) for k, v in st.headers if k == ":status"), 0)
        return Response(status, [(k, v) for k, v in st.headers if not k.startswith(":")], bytes(st.body))

    def _reset(self, sid: int) -> None:
        """Our caller gave up: tell the server (RST_STREAM CANCEL) so it frees the stream."""
        if self.closed:
            return
        try:
            self._h2.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
            self._flush()
        except (h2.exceptions.ProtocolError, UpstreamError):
            pass

    async def _send_body(self, sid: int, body: bytes) -> None:
        view = memoryview(body)
        while view:
            window = min(self._h2.local_flow_control_window(sid), self._h2.max_outbound_frame_size)
            if window <= 0:
                self._window.clear()
                self._flush()
                await self.transport.drain()
                await self._window.wait()
                if self.closed:
                    raise UpstreamError(ue.RESET, "connection closed while sending the body")
                continue
            chunk, view = view[:window], view[window:]
            self._h2.send_data(sid, bytes(chunk), end_stream=not view)

    def _flush(self) -> None:
        data = self._h2.data_to_send()
        if data:
            self.transport.write(data)

    def _flush_soon(self) -> None:
        """Write what is pending at the end of this loop iteration: requests started together
        (mitmproxy runs the hooks of the requests read from one segment one after the other) go
        out in one TLS record and one send, not one each."""
        if not self._flush_pending:
            self._flush_pending = True
            asyncio.get_running_loop().call_soon(self._flush_now)

    def _flush_now(self) -> None:
        self._flush_pending = False
        if self.closed and not self._streams:
            return
        try:
            self._flush()
        except UpstreamError as e:   # the streams waiting for this write learn it
            self._fail_all(e)

    # ------------------------------------------------------------------ receiving
    async def _read_loop(self) -> None:
        try:
            await self._read_frames()
        finally:
            # the server closed or broke the connection: answer its close_notify and release the
            # socket now (a TLS server waits for our close_notify before it can finish closing)
            await self.transport.close()

    async def _read_frames(self) -> None:
        try:
            while True:
                data = await self.transport.read()
                if not data:
                    break
                self.received += len(data)
                self._rx.set()
                for event in self._h2.receive_data(data):
                    self._on_event(event)
                self._flush()
        except UpstreamError as e:
            self._fail_all(e)
            return
        except (h2.exceptions.ProtocolError, ValueError) as e:  # ValueError: e.g. non-UTF-8 header bytes
            self._fail_all(UpstreamError(ue.PROTOCOL, f"HTTP/2 protocol error from server: {e}"))
            return
        except asyncio.CancelledError:
            self._fail_all(UpstreamError(ue.RESET, "connection closed"))
            raise
        self._fail_all(UpstreamError(ue.RESET, "connection closed by server"))

    def _on_event(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.DataReceived):
            if event.flow_controlled_length:
                self._h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            st = self._streams.get(event.stream_id)
            if st is not None:
                st.body += event.data
        elif isinstance(event, h2.events.ResponseReceived):
            st = self._streams.get(event.stream_id)
            if st is not None:
                # strict, as h2's header_encoding decoded them: a field that is not UTF-8 is a
                # protocol failure of the hop (ValueError, below), never a hang
                st.headers = [(k.decode(), v.decode()) for k, v in event.headers]
        elif isinstance(event, h2.events.StreamEnded):
            st = self._streams.get(event.stream_id)
            if st is not None and not st.done.done():
                st.done.set_result(None)
        elif isinstance(event, h2.events.StreamReset):
            st = self._streams.get(event.stream_id)
            if st is not None and not st.done.done():
                refused = event.error_code == h2.errors.ErrorCodes.REFUSED_STREAM  # RFC 9113 §8.7
                st.done.set_exception(UpstreamError(ue.RESET, f"stream reset by server ({event.error_code!s})",
                                                    sent=not refused))
        elif isinstance(event, h2.events.WindowUpdated):
            self._window.set()
        elif isinstance(event, h2.events.ConnectionTerminated):
            # GOAWAY: streams above last_stream_id were never processed (RFC 9113 §6.8)
            self.closed = True
            last = event.last_stream_id or 0
            for sid, st in self._streams.items():
                if sid > last and not st.done.done():
                    st.done.set_exception(UpstreamError(ue.RESET, f"server sent GOAWAY ({event.error_code!s})",
                                                        sent=False))

    def _fail_all(self, exc: UpstreamError) -> None:
        self.closed = True
        self._window.set()
        for st in self._streams.values():
            if not st.done.done():
                st.done.set_exception(UpstreamError(exc.kind, str(exc), exc.sent))

    # ------------------------------------------------------------------ convenience and closing
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
        if not self.closed:
            self.closed = True
            try:
                self._h2.close_connection()
                self._flush()
            except (h2.exceptions.ProtocolError, UpstreamError):
                pass
        await self.transport.close()

    async def __aenter__(self) -> "H2Client":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


H2TlsClient = H2Client  # N32-c and the tests open it with a TLS context
