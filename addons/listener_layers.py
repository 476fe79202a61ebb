"""The mitmproxy layer stack of a connection to one of our listeners (addons/listeners.py).

mitmproxy's own choice for a reverse-mode listener would serve cleartext HTTP on a TLS port, speak
HTTP/1 to an HTTP/2 prior-knowledge client and buffer an HTTP/1 head without limit (its source:
"FIXME: protect against header size DoS"). For our listeners the stack is chosen here, from
``n32io.admission``'s verdict on the first octets, with mitmproxy's public layers:

* TLS: ClientTLSLayer, then HTTP (HTTP/2 or HTTP/1.1 by ALPN);
* cleartext: HTTP, HTTP/2 when the client opened with the preface (mitmproxy's HTTP layer picks
  HTTP/2 for a client whose ALPN is h2), else HTTP/1.1;
* refused: a layer that closes the connection; too few octets to tell: a layer that waits.

Its HTTP/1 server answers 431 ProblemDetails and closes as soon as more than the header limit has
arrived without the head being complete. That subclasses mitmproxy's ``Http1Server`` (its
``read_headers`` and ``buf``), pinned by the version in pyproject.toml and covered by
tests/integration/test_listeners.py.

A request mitmproxy itself refuses (a malformed HTTP/1.1 head, CONNECT, a scheme other than
http(s), ``transfer-encoding`` with ``content-length``, ...) would get its HTML error page; both
servers here answer ``n32.wellformed.refused_by_http_layer``'s ProblemDetails instead (covered by
tests/integration/test_hostile_input.py).
"""
from __future__ import annotations

import html
import logging
import re
from typing import Callable

from h2.connection import _decode_headers
from h2.errors import ErrorCodes as H2ErrorCodes
from h2 import events as h2events
from h2.events import Event as H2Event
from h2.exceptions import InvalidBodyLengthError, TooManyStreamsError
from h2.exceptions import ProtocolError as H2ProtocolError
from h2.stream import StreamClosedBy
from hyperframe.frame import DataFrame, Frame, HeadersFrame, RstStreamFrame
from mitmproxy import http, version
from mitmproxy.connection import ConnectionState
from mitmproxy.net.http import http1
from mitmproxy.proxy import commands, events, layer
from mitmproxy.proxy.context import Context
from mitmproxy.proxy.layers import ClientTLSLayer, HttpLayer
from mitmproxy.proxy.layers.http import HTTPMode, ResponseData, ResponseEndOfMessage, ResponseHeaders
from mitmproxy.proxy.layers.http import ErrorCode, HttpEvent, RequestProtocolError, ResponseProtocolError
from mitmproxy.proxy.layers.http._base import ReceiveHttp
from mitmproxy.proxy.layers.http._http1 import Http1Server
from mitmproxy.proxy.layers.http._http2 import Http2Server
from mitmproxy.proxy.layers.http._http_h2 import BufferedH2Connection
from mitmproxy.utils import human

from addons import flowconv
from n32 import header_limits, wellformed
from n32.errors import N32Error
from n32io import admission

log = logging.getLogger("listeners")


class _Refused(layer.Layer):
    """Closes the client connection and ignores whatever else arrives."""

    _closed = False

    def _handle_event(self, event: events.Event) -> layer.CommandGenerator[None]:
        if not self._closed:
            self._closed = True
            yield commands.CloseConnection(self.context.client)


class _Pending(layer.Layer):
    """Keeps the first octets until the verdict is known (e.g. a preface split over segments),
    then hands every event to the chosen stack."""

    def __init__(self, context: Context, choose: Callable[[bytes], layer.Layer | None]) -> None:
        super().__init__(context)
        self.context.layers.remove(self)   # a placeholder, as mitmproxy's NextLayer is
        self._choose, self._events, self._child = choose, [], None
        self._data = b""

    def _handle_event(self, event: events.Event) -> layer.CommandGenerator[None]:
        if self._child is not None:
            yield from self._child.handle_event(event)
            return
        self._events.append(event)
        if isinstance(event, events.ConnectionClosed) and event.connection == self.context.client:
            yield commands.CloseConnection(self.context.client)
            return
        if isinstance(event, events.DataReceived) and event.connection == self.context.client:
            self._data += event.data
            self._child = self._choose(self._data)
            if self._child is not None:
                for e in self._events:
                    yield from self._child.handle_event(e)
                self._events.clear()


# mitmproxy's error page (mitmproxy.proxy.layers.http._http1.make_error_response): status line,
# its Server header, the reason in a <p>
_PAGE = re.compile(rb"HTTP/1\.1 ([0-9]{3}) [^\r]*\r\nServer: " + re.escape(version.MITMPROXY.encode()) + rb"\r\n")
_PAGE_REASON = re.compile(rb"<p>(.*)</p>", re.S)


def _reason(text: str) -> str:
    """mitmproxy's words without its advice ("Disable the ... option") or its name."""
    if text.startswith("mitmproxy received an HTTP CONNECT"):
        return "CONNECT is not served here (no proxy)"
    return text.split(", refusing", 1)[0].split(". ", 1)[0].replace("mitmproxy's ", "")


def _problem(status: int | None, reason: str) -> http.Response:
    return flowconv.problem_response(wellformed.refused_by_http_layer(status, _reason(reason)))


class _BoundedHttp1Server(Http1Server):
    limits: header_limits.HeaderLimits = header_limits.DEFAULT
    listener: str = ""

    def send(self, event: HttpEvent) -> layer.CommandGenerator[None]:
        if isinstance(event, ResponseProtocolError) and not self.response and \
                self.conn.state & ConnectionState.CAN_WRITE and (status := event.code.http_status_code()):
            yield from self._refuse(status, event.message)
            return
        yield from super().send(event)

    def read_headers(self, event: events.ConnectionEvent) -> layer.CommandGenerator[None]:
        if isinstance(event, events.DataReceived) and len(self.buf) > self.limits.section:
            head = bytes(self.buf)   # copied only once over the limit
            end = head.find(b"\r\n\r\n")
            try:
                header_limits.check_unfinished(len(head) if end < 0 else end, self.limits)
            except N32Error as e:
                log.warning("%s: request from %s refused: %s", self.listener,
                            human.format_address(self.conn.peername), e.detail)
                rsp = flowconv.problem_response(e)
                rsp.headers["connection"] = "close"
                yield commands.SendData(self.conn, http1.assemble_response(rsp))
                yield commands.CloseConnection(self.conn)
                self.state = self.done
                return
        # mitmproxy answers a head it cannot parse with its error page: replaced on the way out
        inner, reply = super().read_headers(event), None
        while True:
            try:
                cmd = inner.send(reply)
            except StopIteration:
                return
            if isinstance(cmd, commands.SendData) and (page := _PAGE.match(cmd.data)):
                found = _PAGE_REASON.search(cmd.data)
                rsp = _problem(int(page[1]), html.unescape(found[1].decode(errors="replace")) if found else "")
                rsp.headers["connection"] = "close"
                cmd = commands.SendData(cmd.connection, http1.assemble_response(rsp))
            reply = yield cmd

    def read_body(self, event: events.Event) -> layer.CommandGenerator[None]:
        # mitmproxy closes on a malformed chunked body without a word, and raises on trailers
        # (NotImplementedError: the connection's task crashed, logged as "mitmproxy has crashed!")
        inner, reply = super().read_body(event), None
        while True:
            try:
                cmd = inner.send(reply)
            except StopIteration:
                return
            except NotImplementedError as e:
                yield from self._refuse(400, "trailers after a chunked body are not supported")
                yield ReceiveHttp(RequestProtocolError(self.stream_id, str(e), ErrorCode.GENERIC_CLIENT_ERROR))
                return
            if isinstance(cmd, commands.CloseConnection) and self.response is None:
                yield from self._refuse(400, "malformed chunked body (RFC 9112 §7.1)")
                continue
            reply = yield cmd

    def _refuse(self, status: int, reason: str) -> layer.CommandGenerator[None]:
        """ProblemDetails and close (an unread body cannot be skipped: where the next request
        starts is unknown)."""
        if self.conn.state & ConnectionState.CAN_WRITE:
            rsp = _problem(status, reason)
            rsp.headers["connection"] = "close"
            yield commands.SendData(self.conn, http1.assemble_response(rsp))
        yield commands.CloseConnection(self.conn)
        self.state = self.done


class _Malformed(H2Event):
    """A request refused on its own stream (h2 found it malformed)."""

    def __init__(self, stream_id: int, reason: str) -> None:
        self.stream_id, self.reason = stream_id, reason


class _H2Connection(BufferedH2Connection):
    """h2 treats a malformed request (RFC 9113 §8.1.1: an uppercase or connection-specific field,
    a pseudo-header missing, repeated or out of place, DATA other than its content-length) and a
    stream beyond our SETTINGS_MAX_CONCURRENT_STREAMS (§5.1.2) as connection errors; mitmproxy then
    ended the connection (GOAWAY PROTOCOL_ERROR) with every request in flight on it. Both are
    stream errors: the malformed request gets its 400 on its stream (_Malformed, answered by
    _Http2Server), the stream over the limit REFUSED_STREAM (safe to retry, §8.7; also for a client
    that opened streams before our SETTINGS arrived, §6.5.2), and the connection goes on."""

    def _receive_headers_frame(self, frame: HeadersFrame) -> tuple[list[Frame], list[H2Event]]:
        new = frame.stream_id not in self.streams
        try:
            return super()._receive_headers_frame(frame)
        except TooManyStreamsError:
            if frame.stream_id % 2 == 0 or frame.stream_id <= self.highest_inbound_stream_id:
                raise                                       # not a new client stream: h2's verdict
            _decode_headers(self.decoder, frame.data)      # the HPACK state as if accepted (§4.3)
            self.highest_inbound_stream_id = frame.stream_id
            self._closed_streams[frame.stream_id] = StreamClosedBy.SEND_RST_STREAM   # its frames ignored
            refused = RstStreamFrame(frame.stream_id)
            refused.error_code = H2ErrorCodes.REFUSED_STREAM
            return [refused], []
        except H2ProtocolError as e:
            if not new or frame.stream_id not in self.streams:
                raise          # before the stream existed (HPACK, stream ID, state): the connection's
            return [], [_Malformed(frame.stream_id, str(e))]

    def _receive_data_frame(self, frame: DataFrame) -> tuple[list[Frame], list[H2Event]]:
        try:
            return super()._receive_data_frame(frame)
        except InvalidBodyLengthError as e:
            self.acknowledge_received_data(frame.flow_controlled_length, frame.stream_id)
            return [], [_Malformed(frame.stream_id, str(e))]


class _Http2Server(Http2Server):
    """mitmproxy's HTTP/2 server; a request mitmproxy or h2 refuses gets a ProblemDetails on its
    stream, and only that stream ends (_H2Connection)."""

    _opening: int | None = None
    _answered = False

    def __init__(self, context: Context) -> None:
        super().__init__(context)
        self.h2_conn = _H2Connection(self.h2_conf)

    def _handle_event(self, event: events.Event) -> layer.CommandGenerator[None]:
        if isinstance(event, ResponseProtocolError) and (status := event.code.http_status_code()) and \
                self.is_open_for_us(event.stream_id) and \
                not self.h2_conn.streams[event.stream_id].state_machine.headers_sent:
            rsp, sid = _problem(status, event.message), event.stream_id
            for answer in (ResponseHeaders(sid, rsp, False), ResponseData(sid, rsp.content or b""),
                           ResponseEndOfMessage(sid)):
                yield from super()._handle_event(answer)
            return
        yield from super()._handle_event(event)

    def handle_h2_event(self, event: H2Event) -> layer.CommandGenerator[bool]:
        if isinstance(event, _Malformed):
            yield from self._refuse_stream(event.stream_id, event.reason)
            return False
        if not isinstance(event, h2events.RequestReceived):
            return (yield from super().handle_h2_event(event))
        self._opening = event.stream_id    # mitmproxy's own check of the request's fields follows
        try:
            stop = yield from super().handle_h2_event(event)
        finally:
            self._opening = None
        if self._answered:
            self._answered = False
            return False
        return stop

    def protocol_error(self, message: str, error_code: int = H2ErrorCodes.PROTOCOL_ERROR) \
            -> layer.CommandGenerator[None]:
        if self._opening is not None:      # refusing the request's fields: that stream only (§8.1.1)
            yield from self._refuse_stream(self._opening, message)
            self._answered = True
            return
        yield from super().protocol_error(message, error_code)

    def _refuse_stream(self, sid: int, reason: str) -> layer.CommandGenerator[None]:
        """400 ProblemDetails on the stream if nothing was answered on it yet, then the stream
        ends (RST_STREAM NO_ERROR if the client is still sending, RFC 9113 §8.1)."""
        stream = self.h2_conn.streams.get(sid)
        if stream is not None and self.is_open_for_us(sid) and not stream.state_machine.headers_sent:
            rsp = _problem(400, reason)
            self.h2_conn.send_headers(sid, [(b":status", b"400"), *rsp.headers.fields])
            self.h2_conn.send_data(sid, rsp.content or b"", end_stream=True)
        if not self.is_closed(sid):
            self.h2_conn.reset_stream(sid, H2ErrorCodes.NO_ERROR)
        if self.streams.pop(sid, None) is not None:   # mitmproxy's stream for it ends too
            yield ReceiveHttp(RequestProtocolError(sid, reason, ErrorCode.GENERIC_CLIENT_ERROR))
        yield commands.SendData(self.conn, self.h2_conn.data_to_send())


class _HttpLayer(HttpLayer):
    """mitmproxy's HTTP layer (reverse mode: transparent) with the bounded HTTP/1 server."""

    def __init__(self, context: Context, listener: admission.Listener) -> None:
        super().__init__(context, HTTPMode.transparent)
        self._listener = listener

    def _handle_event(self, event: events.Event) -> layer.CommandGenerator[None]:
        # The protocol is known at Start (after TLS and ALPN); HttpLayer keeps a preset server.
        if isinstance(event, events.Start) and self.context.client.alpn != b"h2":
            server = _BoundedHttp1Server(self.context.fork())
            server.limits, server.listener = self._listener.headers, self._listener.name
            self.connections.setdefault(self.context.client, server)
        elif isinstance(event, events.Start):
            self.connections.setdefault(self.context.client, _Http2Server(self.context.fork()))
        yield from super()._handle_event(event)


def choose(context: Context, data: bytes, listener: admission.Listener) -> layer.Layer:
    """The stack for a connection whose client sent ``data`` so far."""

    def decide(first: bytes) -> layer.Layer | None:
        verdict = admission.admit(first, tls=listener.tls)
        match verdict.verdict:
            case admission.Verdict.MORE:
                return None
            case admission.Verdict.REFUSE:
                log.warning("%s: connection from %s refused: %s", listener.name,
                            human.format_address(context.client.peername), verdict.reason)
                return _Refused(context)
            case admission.Verdict.TLS:
                tls_layer = ClientTLSLayer(context)
                tls_layer.child_layer = _HttpLayer(context, listener)
                return tls_layer
            case admission.Verdict.H2C:
                context.client.alpn = b"h2"   # HTTP/2 with prior knowledge, RFC 9113 §3.3
        return _HttpLayer(context, listener)

    return decide(data) or _Pending(context, decide)


def discard(context: Context, top: layer.Layer | None) -> None:
    """Forget a stack chosen before ours (its layers registered themselves in the context)."""
    while top is not None:
        if top in context.layers:
            context.layers.remove(top)
        top = getattr(top, "child_layer", None)
