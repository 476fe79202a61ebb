"""addons/listeners.py: mitmproxy's HTTP/2 connections on our listeners keep a bounded record of
closed streams (h2's default, 2**16 per connection, grew the soak's SEPP by ~8 MB per long-lived
connection; docs/soak.md)."""
from __future__ import annotations

import h2.config
import h2.connection
import pytest
from mitmproxy.proxy.layers.http._http_h2 import BufferedH2Connection
from mitmproxy.test import taddons

from addons import listeners
from n32io import h2client


def _exchange(client: h2.connection.H2Connection, server: h2.connection.H2Connection, streams: int) -> None:
    """``streams`` requests and their answers, one after the other, in memory."""
    def pump() -> None:
        while data := client.data_to_send():
            for ev in server.receive_data(data):
                if type(ev).__name__ == "RequestReceived":
                    server.send_headers(ev.stream_id, [(":status", "204")], end_stream=True)
            if data := server.data_to_send():
                client.receive_data(data)

    client.initiate_connection()
    server.initiate_connection()
    client.receive_data(server.data_to_send())
    for _ in range(streams):
        sid = client.get_next_available_stream_id()
        client.send_headers(sid, [(":method", "GET"), (":scheme", "https"), (":authority", "sepp.example"),
                                  (":path", f"/n32f-forward/v1/{sid}")], end_stream=True)
        pump()


def test_listener_h2_connections_keep_few_closed_stream_records(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(BufferedH2Connection, "MAX_CLOSED_STREAMS", BufferedH2Connection.MAX_CLOSED_STREAMS)
    monkeypatch.setattr(h2client, "CLOSED_STREAMS_KEPT", 8)
    with taddons.context(listeners.Listeners(lambda spec: None)):
        pass   # load() bounds the record of every connection made afterwards
    server = BufferedH2Connection(h2.config.H2Configuration(client_side=False))
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    _exchange(client, server, 40)
    assert server.highest_inbound_stream_id == 79
    assert len(server._closed_streams) == 8
    # h2's default bound (2**16) elsewhere (h2 moves a stream to the record lazily: 39 of 40)
    assert len(client._closed_streams) >= 39


def test_a_stream_over_the_limit_is_refused_alone_and_hpack_stays_in_step() -> None:
    """RFC 9113 §5.1.2: REFUSED_STREAM for the stream, not GOAWAY; its header block is still
    decoded (§4.3), so a later block that refers to what it added to the table decodes right."""
    import h2.errors
    import h2.events

    from addons.listener_layers import _H2Connection

    server = _H2Connection(h2.config.H2Configuration(client_side=False))
    server.local_settings.max_concurrent_streams = 2
    server.local_settings.acknowledge()
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    server.initiate_connection()

    def req(sid: int, extra: str, end: bool = False) -> None:
        client.send_headers(sid, [(":method", "POST"), (":scheme", "https"), (":authority", "sepp.example"),
                                  (":path", "/x"), ("x-new", extra)], end_stream=end)

    for sid in (1, 3):
        req(sid, "a")
    req(5, "only-in-the-refused-block")           # over the limit, adds to the HPACK table
    events = server.receive_data(client.data_to_send())
    assert [type(e).__name__ for e in events].count("RequestReceived") == 2
    client_events = client.receive_data(server.data_to_send())
    resets = [e for e in client_events if isinstance(e, h2.events.StreamReset)]
    assert [(e.stream_id, e.error_code) for e in resets] == [(5, h2.errors.ErrorCodes.REFUSED_STREAM)]
    server.send_headers(1, [(":status", "204")], end_stream=True)
    client.end_stream(1)
    client.receive_data(server.data_to_send())
    req(7, "only-in-the-refused-block", end=True)  # encoded as a reference to the table entry
    events = server.receive_data(client.data_to_send())
    got = [e for e in events if isinstance(e, h2.events.RequestReceived)]
    assert got and dict(got[0].headers)[b"x-new"] == b"only-in-the-refused-block"
    assert not any(isinstance(e, h2.events.ConnectionTerminated) for e in events)
