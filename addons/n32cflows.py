"""The N32-c requests this SEPP makes as initiator (n32io/n32c.py, not mitmproxy) shown as flows.

Each request and its answer becomes an HTTP/2 flow with its real scheme, host, port and
:authority, labelled (n32/label.py), and goes through mitmproxy's hooks as a loaded flow does:
mitmweb's view lists it, ``save_stream_file`` keeps it. Reverse mode's rewrite of loaded flows
to the placeholder upstream (``Master.load_flow``) is skipped: the flow shows where it went.
"""
from __future__ import annotations

from typing import Any

from mitmproxy import connection, eventsequence, http
from mitmproxy.flow import Error

from addons import flowlabel
from n32 import label
from n32io.n32c import Sent


def sent_flow(sent: Sent) -> http.HTTPFlow:
    client = connection.Client(peername=("0.0.0.0", 0), sockname=("0.0.0.0", 0), timestamp_start=sent.started)
    server = connection.Server(address=(sent.host, sent.port), sni=sent.peer, alpn=b"h2", tls=True)
    flow = http.HTTPFlow(client, server)
    req = http.Request(sent.host, sent.port, b"POST", b"https", sent.authority.encode(), sent.path.encode(),
                       b"HTTP/2.0", http.Headers([(b"content-type", b"application/json")]), sent.body, None,
                       sent.started, sent.started)
    flow.request = req
    if sent.status is not None:
        headers = [(b"content-type", sent.response_type.encode())] if sent.response_type else []
        flow.response = http.Response(b"HTTP/2.0", sent.status, b"", http.Headers(headers), sent.response, None,
                                      sent.started, sent.ended)
    else:
        flow.error = Error(sent.error or "no answer")
    ok = sent.status is not None and sent.status < 400
    flowlabel.apply(flow, label.n32c_label(sent.operation, sent.peer, "initiator", sent.status), not ok)
    return flow


async def show(sent: Sent, master: Any) -> None:
    flow = sent_flow(sent)
    for event in eventsequence.iterate(flow):
        await master.addons.handle_lifecycle(event)
