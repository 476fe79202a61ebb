"""The SEPP's and IPX's listeners: what each accepts on the wire, and the TLS key log.

* ``next_layer``: applies ``n32io.admission`` to the first octets of each connection: closes a
  TLS listener's connection that does not open with a ClientHello (mitmproxy's reverse mode would
  serve cleartext HTTP on it too) and speaks HTTP/2 to a cleartext client that opens with the
  HTTP/2 preface (mitmproxy picks HTTP/2 for a client whose ALPN is h2).
* ``requestheaders``: a request whose header section exceeds the listener's limit is answered
  431 at once (``n32.header_limits``); over HTTP/2, mitmproxy's decoder limit (which it advertises
  as SETTINGS_MAX_HEADER_LIST_SIZE, 64 KiB, and enforces by ending the connection) is raised to
  ``limits.h2_header_block`` so that oversized requests up to it get their 431 on the stream.
* option ``tls_keylog``: the file the TLS secrets of every connection go to (NSS key log format,
  for Wireshark/tshark); ``SSLKEYLOGFILE`` otherwise.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

import mitmproxy.net.tls
from mitmproxy import ctx, http
from mitmproxy.proxy import commands, events, layer
from mitmproxy.proxy.layers.http._http_h2 import BufferedH2Connection

from addons import flowconv
from n32 import header_limits
from n32.errors import N32Error
from n32io import admission, tls

log = logging.getLogger("listeners")

# full mode spec of a listener -> what it accepts; None: not one of ours
ListenerLookup = Callable[[str], "admission.Listener | None"]


class _Refused(layer.Layer):
    """Closes the client connection and ignores whatever else arrives."""

    _closed = False

    def _handle_event(self, event: events.Event) -> layer.CommandGenerator[None]:
        if not self._closed:
            self._closed = True
            yield commands.CloseConnection(self.context.client)


class Listeners:
    def __init__(self, lookup: ListenerLookup) -> None:
        self._lookup = lookup

    def load(self, loader: Any) -> None:
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
            return  # not one of ours, or the layer inside TLS (already admitted)
        decision = admission.admit(nextlayer.data_client(), tls=listener.tls)
        match decision.verdict:
            case admission.Verdict.MORE:
                nextlayer.layer = None  # wait for more octets (mitmproxy's own choice is premature)
            case admission.Verdict.REFUSE:
                log.warning("%s: connection from %s refused: %s", listener.name, _addr(client.peername),
                            decision.reason)
                nextlayer.layer = _Refused(nextlayer.context)
            case admission.Verdict.H2C:
                client.alpn = b"h2"  # HTTP/2 with prior knowledge, RFC 9113 §3.3
            case _:
                pass
        # mitmproxy has no option for it: the class default is read when the connection's HTTP/2
        # state is made, after this hook. One limits: section per process, so one value.
        BufferedH2Connection.DEFAULT_MAX_HEADER_LIST_SIZE = listener.headers.h2_block

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
            log.warning("%s: request from %s refused: %s", listener.name, _addr(flow.client_conn.peername), e.detail)
            flow.response = flowconv.problem_response(e)
            flow.metadata["n32"] = {"role": "local", "answered": True,
                                    "error": {"status": e.status, "cause": e.cause, "detail": e.detail}}


def _addr(peername: Any) -> str:
    return f"{peername[0]}:{peername[1]}" if peername else "?"
