"""The SEPP's and IPX's listeners: what each accepts on the wire, and the TLS key log.

* ``next_layer``: the layer stack of each connection from ``n32io.admission``'s verdict on its
  first octets (addons/listener_layers.py): a TLS listener's connection that does not open with a
  ClientHello is closed, a cleartext client opening with the HTTP/2 preface gets HTTP/2, an HTTP/1
  head longer than the limit gets 431 before it ends.
* ``requestheaders``: a request whose header section exceeds the listener's limit is answered
  431 at once (``n32.header_limits``); over HTTP/2, mitmproxy's decoder limit (which it advertises
  as SETTINGS_MAX_HEADER_LIST_SIZE, 64 KiB, and enforces by ending the connection) is raised to
  ``limits.h2_header_block`` so that oversized requests up to it get their 431 on the stream.
* ``load``: mitmproxy's HTTP/2 connections keep at most ``n32io.h2client.CLOSED_STREAMS_KEPT``
  records of closed streams (h2's default, 2**16, is ~8 MB on a long-lived connection).
* option ``tls_keylog``: the file the TLS secrets of every connection go to (NSS key log format,
  for Wireshark/tshark); ``SSLKEYLOGFILE`` otherwise.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

import mitmproxy.net.tls
from mitmproxy import connection, ctx, http
from mitmproxy.proxy import layer
from mitmproxy.utils import human
from mitmproxy.proxy.layers.http._http_h2 import BufferedH2Connection

from addons import flowconv, listener_layers
from n32 import header_limits
from n32.errors import N32Error
from n32.exchange import METADATA_KEY, Exchange
from n32io import admission, h2client, tls

log = logging.getLogger("listeners")

# full mode spec of a listener -> what it accepts; None: not one of ours
ListenerLookup = Callable[[str], "admission.Listener | None"]


class Listeners:
    def __init__(self, lookup: ListenerLookup) -> None:
        self._lookup = lookup

    def load(self, loader: Any) -> None:
        # h2's record of closed streams, bounded as on our own connections (n32io/h2client.py): a
        # long-lived N32-f or NF connection would otherwise hold 2**16 of them (~8 MB)
        BufferedH2Connection.MAX_CLOSED_STREAMS = h2client.CLOSED_STREAMS_KEPT
        loader.add_option("tls_keylog", str | None, None,
                          "Append the TLS secrets of every connection (N32-c, N32-f, NF side, both directions) "
                          "to this file, NSS key log format, for Wireshark. Default: $SSLKEYLOGFILE. Lab use only.")

    def configure(self, updated: set[str]) -> None:
        if "tls_keylog" in updated:
            tls.set_keylog(ctx.options.tls_keylog)
            # the TLS contexts mitmproxy makes itself (an upstream without a configured anchor)
            mitmproxy.net.tls.log_master_secret = tls.keylog_callback if tls.keylog_target() else None

    def next_layer(self, nextlayer: layer.NextLayer) -> None:
        client = nextlayer.context.client
        listener = self._lookup(client.proxy_mode.full_spec) if client.proxy_mode else None
        if listener is None or client.tls_established:
            return  # not ours, or inside TLS (already admitted)
        # mitmproxy's own next_layer addon keeps a layer set before it runs (mitmdump: script
        # addons come first); after it (a Master listing NextLayer first), its choice is replaced
        listener_layers.discard(nextlayer.context, nextlayer.layer)
        nextlayer.layer = listener_layers.choose(nextlayer.context, nextlayer.data_client(), listener)
        # mitmproxy has no option for it: the class default is read when the connection's HTTP/2
        # state is made, after this hook. One limits: section per process, so one value.
        BufferedH2Connection.DEFAULT_MAX_HEADER_LIST_SIZE = listener.headers.h2_block

    def client_disconnected(self, client: connection.Client) -> None:
        """Close the socket of a connection mitmproxy 12 forgot to close. Its connection task is
        cancelled when a layer closes the connection; if that comes from a hook's task (any
        refusal after the requestheaders hook: a body over body_size_limit, CONNECT, ...) while
        the connection's task waits to hand over more octets the client kept sending, the
        cancellation ends the task before it closes the socket
        (mitmproxy/proxy/server.py, handle_connection). The client got its answer, the SEPP
        stopped reading, and kept a descriptor and megabytes of kernel buffers for good."""
        handler = ctx.master.addons.get("proxyserver").connections.get(client.id)
        io = handler.transports.get(client) if handler is not None else None
        writer = getattr(io, "writer", None)
        if writer is not None and not writer.is_closing():
            writer.close()

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        mode = flow.client_conn.proxy_mode
        listener = self._lookup(mode.full_spec) if mode else None
        if listener is None or flow.response is not None:
            return
        r = flow.request
        pseudo = [(":method", r.method), (":scheme", r.scheme), (":authority", r.authority), (":path", r.path)]
        try:
            header_limits.check([*pseudo, *r.headers.fields], listener.headers)
        except N32Error as e:
            log.warning("%s: request from %s refused: %s", listener.name,
                        human.format_address(flow.client_conn.peername), e.detail)
            flow.response = flowconv.problem_response(e)
            flow.metadata[METADATA_KEY] = Exchange(role="local", answered=True,
                                                   error={"status": e.status, "cause": e.cause, "detail": e.detail})

