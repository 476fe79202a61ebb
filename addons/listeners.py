"""The SEPP's and IPX's listeners: what each accepts on the wire, and the TLS key log.

* ``next_layer``: applies ``n32io.admission`` to the first octets of each connection: closes a
  TLS listener's connection that does not open with a ClientHello (mitmproxy's reverse mode would
  serve cleartext HTTP on it too) and speaks HTTP/2 to a cleartext client that opens with the
  HTTP/2 preface (mitmproxy picks HTTP/2 for a client whose ALPN is h2).
* option ``tls_keylog``: the file the TLS secrets of every connection go to (NSS key log format,
  for Wireshark/tshark); ``SSLKEYLOGFILE`` otherwise.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

import mitmproxy.net.tls
from mitmproxy import ctx
from mitmproxy.proxy import commands, events, layer

from n32io import admission, tls

log = logging.getLogger("listeners")

# full mode spec of a listener -> (its name in the config, TLS required); None: not ours
ListenerLookup = Callable[[str], "tuple[str, bool] | None"]


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
        name, tls_required = listener
        decision = admission.admit(nextlayer.data_client(), tls=tls_required)
        match decision.verdict:
            case admission.Verdict.MORE:
                nextlayer.layer = None  # wait for more octets (mitmproxy's own choice is premature)
            case admission.Verdict.REFUSE:
                log.warning("%s: connection from %s refused: %s", name, _addr(client.peername), decision.reason)
                nextlayer.layer = _Refused(nextlayer.context)
            case admission.Verdict.H2C:
                client.alpn = b"h2"  # HTTP/2 with prior knowledge, RFC 9113 §3.3
            case _:
                pass


def _addr(peername: Any) -> str:
    return f"{peername[0]}:{peername[1]}" if peername else "?"
