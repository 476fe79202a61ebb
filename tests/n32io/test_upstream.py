"""n32io.upstream against real servers on loopback: nghttpd (h2c and TLS), the lab's h2 server
(HTTP/1.1, mutual TLS), a server that never answers, one that resets mid-body, a closed port."""
from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import pytest

from lab import h2server
from n32 import upstream_errors as ue
from n32.message import HttpRequest
from n32io import tls
from n32io.transport import UpstreamError
from n32io.upstream import Hop, Upstream

HOME_FQDN = "sepp.5gc.mnc070.mcc999.3gppnetwork.org"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from certs.pki import ensure_lab_pki

    d = tmp_path_factory.mktemp("pki")
    ensure_lab_pki(d)
    return d


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def req(method: str = "GET", path: str = "/hello", body: bytes = b"", authority: str = "nf.example",
        scheme: str = "http") -> HttpRequest:
    return HttpRequest(method, scheme, authority, path, "", [("content-type", "application/json")] if body else [],
                       body)


async def echo(method, path, query, headers, body):
    return 200, [("content-type", "application/json")], b'{"method":"%s","len":%d}' % (method.encode(), len(body))


def run(coro):
    return asyncio.run(coro)


async def _with_server(handler, fn, ssl_context=None):
    server = await h2server.serve(handler, "127.0.0.1", 0, ssl_context)
    up = Upstream(idle_timeout=30)
    try:
        return await fn(up, h2server.bound_port(server))
    finally:
        await up.close()
        await h2server.stop(server)


# ------------------------------------------------------------------ nghttpd, a C server
@pytest.fixture
def nghttpd(tmp_path: Path, pki: Path):
    if not shutil.which("nghttpd"):
        pytest.skip("nghttpd (Debian nghttp2-server) not installed")
    (tmp_path / "hello").write_text('{"hello":"world"}')
    procs = []

    def start(tls_on: bool) -> int:
        port = free_port()
        d = pki / "plmn-999-70"
        args = ["nghttpd", "-a", "127.0.0.1", "-d", str(tmp_path), "--echo-upload", str(port)]
        args += [str(d / "sepp.key"), str(d / "sepp.crt")] if tls_on else ["--no-tls"]
        p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(p)
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return port
            time.sleep(0.05)
        raise RuntimeError("nghttpd did not start")

    yield start
    for p in procs:
        p.terminate()
        p.wait(5)


def test_h2c_prior_knowledge_to_nghttpd_multiplexes_on_one_connection(nghttpd):
    port = nghttpd(False)

    async def go():
        up = Upstream()
        hop = Hop("127.0.0.1", port, "h2c")
        rsps = await asyncio.gather(*(up.send(hop, req(), 5) for _ in range(40)))
        post = await up.send(hop, req("POST", "/hello", b'{"a":1}'), 5)
        n = up.connections()
        await up.close()
        return rsps, post, n

    rsps, post, n = run(go())
    assert {r.status for r in rsps} == {200} and rsps[0].body == b'{"hello":"world"}'
    assert post.status == 200 and post.body == b'{"a":1}'   # --echo-upload
    assert n == 1


def test_h2_over_tls_to_nghttpd_checks_the_server_name(nghttpd, pki):
    port = nghttpd(True)
    ctx = tls.client_context(certificate=None, private_key=None, anchors=[pki / "plmn-999-70" / "ca.crt"])

    async def go(name):
        up = Upstream()
        try:
            return await up.send(Hop("127.0.0.1", port, "h2", ctx, name), req(scheme="https"), 5)
        finally:
            await up.close()

    assert run(go(HOME_FQDN)).status == 200
    with pytest.raises(UpstreamError) as e:
        run(go("sepp.other.example"))
    assert e.value.kind == ue.TLS
    # a name OpenSSL refuses to check (the absolute form's dot): an UpstreamError, not the
    # OpenSSL.SSL.Error that became a 500 SYSTEM_FAILURE; never sent
    with pytest.raises(UpstreamError) as e:
        run(go(HOME_FQDN + "."))
    assert e.value.kind == ue.TLS and e.value.sent is False


# ------------------------------------------------------------------ the lab's server: h1, mutual TLS
def test_h1_when_asked_keeps_the_connection_alive():
    async def fn(up, port):
        hop = Hop("127.0.0.1", port, "h1")
        a = await up.send(hop, req("POST", "/x", b"{}"), 5)
        b = await up.send(hop, req(), 5)
        return a, b, up.connections()

    a, b, n = run(_with_server(echo, fn))
    assert (a.status, a.body, b.body, n) == (200, b'{"method":"POST","len":2}', b'{"method":"GET","len":0}', 1)


def _mtls_server_ctx(pki: Path) -> ssl.SSLContext:
    d = pki / "plmn-999-70"
    ctx = h2server.server_ssl_context(str(d / "nf.crt"), str(d / "nf.key"))
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(str(pki / "plmn-001-01" / "ca.crt"))
    return ctx


@pytest.mark.parametrize("with_cert", [True, False])
def test_mutual_tls_presents_the_client_certificate(pki, with_cert):
    d = pki / "plmn-001-01"
    ctx = tls.client_context(certificate=d / "sepp.crt" if with_cert else None,
                             private_key=d / "sepp.key" if with_cert else None,
                             anchors=[pki / "plmn-999-70" / "ca.crt"])

    async def fn(up, port):
        return await up.send(Hop("127.0.0.1", port, "h2", ctx, "udm.5gc.mnc070.mcc999.3gppnetwork.org"),
                             req(scheme="https"), 5)

    if with_cert:
        assert run(_with_server(echo, fn, _mtls_server_ctx(pki))).status == 200
    else:
        with pytest.raises(UpstreamError) as e:
            run(_with_server(echo, fn, _mtls_server_ctx(pki)))
        assert e.value.kind in (ue.TLS, ue.RESET)


# ------------------------------------------------------------------ failures
def test_closed_port_is_unreachable():
    async def go():
        up = Upstream()
        try:
            await up.send(Hop("127.0.0.1", free_port(), "h2c"), req(), 5)
        finally:
            await up.close()

    with pytest.raises(UpstreamError) as e:
        run(go())
    assert e.value.kind == ue.UNREACHABLE and not e.value.sent


def test_server_that_never_answers_hits_the_deadline_and_the_stream_is_cancelled():
    seen = []

    async def stall(method, path, query, headers, body):
        seen.append(path)
        await asyncio.sleep(60)
        return 200, [], b""

    async def fn(up, port):
        t0 = time.monotonic()
        with pytest.raises(UpstreamError) as e:
            await up.send(Hop("127.0.0.1", port, "h2c"), req(), 0.5)
        elapsed = time.monotonic() - t0
        # the connection stays usable for the next request
        return e.value.kind, elapsed, up.connections()

    kind, elapsed, n = run(_with_server(stall, fn))
    assert kind == ue.TIMEOUT and 0.45 <= elapsed < 2 and seen == ["/hello"] and n == 1


def test_a_silent_tcp_server_hits_the_deadline_too():
    """Accepts the connection, never speaks HTTP/2 (no SETTINGS)."""
    async def go():
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        up = Upstream()
        try:
            await up.send(Hop("127.0.0.1", port, "h2c"), req(), 0.3)
        finally:
            await up.close()
            server.close()

    with pytest.raises(UpstreamError) as e:
        run(go())
    assert e.value.kind == ue.TIMEOUT


async def _resetting_server(after_bytes: int) -> asyncio.Server:
    """Answers HEADERS and part of the body, then resets the TCP connection (SO_LINGER 0)."""
    async def on_conn(reader, writer):
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        conn.initiate_connection()
        writer.write(conn.data_to_send())
        while data := await reader.read(65536):
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.RequestReceived):
                    conn.send_headers(ev.stream_id, [(":status", "200"), ("content-length", "1000")])
                    conn.send_data(ev.stream_id, b"x" * after_bytes)
                    writer.write(conn.data_to_send())
                    await writer.drain()
                    sock = writer.get_extra_info("socket")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    writer.transport.abort()
                    return
            writer.write(conn.data_to_send())

    return await asyncio.start_server(on_conn, "127.0.0.1", 0)


async def _send_h2c_once(server: asyncio.Server) -> None:
    """One request over h2c to ``server`` through a fresh client, which is closed after it."""
    up = Upstream()
    try:
        await up.send(Hop("127.0.0.1", server.sockets[0].getsockname()[1], "h2c"), req(), 5)
    finally:
        await up.close()
        server.close()


def test_reset_mid_body_is_a_reset():
    async def go():
        await _send_h2c_once(await _resetting_server(100))

    with pytest.raises(UpstreamError) as e:
        run(go())
    assert e.value.kind == ue.RESET and e.value.sent


def test_h2c_to_an_h1_only_server_is_a_protocol_failure_not_a_hang():
    async def go():
        async def h1_only(reader, writer):
            await reader.read(65536)
            writer.write(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
            await writer.drain()
            writer.close()

        await _send_h2c_once(await asyncio.start_server(h1_only, "127.0.0.1", 0))

    with pytest.raises(UpstreamError) as e:
        run(go())
    assert e.value.kind in (ue.PROTOCOL, ue.RESET)


def test_idle_connections_are_closed():
    async def fn(up, port):
        up.idle_timeout = 0.2
        await up.send(Hop("127.0.0.1", port, "h2c"), req(), 5)
        before = up.connections()
        for _ in range(40):
            await asyncio.sleep(0.05)
            if up.connections() == 0:
                break
        return before, up.connections()

    assert run(_with_server(echo, fn)) == (1, 0)


def test_a_pooled_connection_the_server_closed_is_replaced():
    """The server closed our idle connection (restart, idle timeout): the next request opens a new
    one instead of failing."""
    async def go():
        server = await h2server.serve(echo, "127.0.0.1", 0)
        port = h2server.bound_port(server)
        up = Upstream()
        hop = Hop("127.0.0.1", port, "h2c")
        try:
            assert (await up.send(hop, req(), 5)).status == 200
            await h2server.stop(server)
            server = await h2server.serve(echo, "127.0.0.1", port)
            await asyncio.sleep(0.1)
            return (await up.send(hop, req(), 5)).status
        finally:
            await up.close()
            await h2server.stop(server)

    assert run(go()) == 200


# ------------------------------------------------------------------ the core mapping
@pytest.mark.parametrize("hop,kind,status,cause", [
    (ue.NF, ue.UNREACHABLE, 504, "TARGET_NF_NOT_REACHABLE"),
    (ue.NF, ue.TLS, 504, "TARGET_NF_NOT_REACHABLE"),
    (ue.NF, ue.RESET, 504, "TARGET_NF_NOT_REACHABLE"),
    (ue.NF, ue.PROTOCOL, 504, "TARGET_NF_NOT_REACHABLE"),
    (ue.NF, ue.TIMEOUT, 504, "TIMED_OUT_REQUEST"),
    (ue.PEER, ue.UNREACHABLE, 502, "N32_PEER_NOT_REACHABLE"),
    (ue.PEER, ue.TLS, 502, "N32_PEER_NOT_REACHABLE"),
    (ue.IPX, ue.UNREACHABLE, 502, "N32_PEER_NOT_REACHABLE"),
    (ue.PEER, ue.RESET, 502, "N32F_FORWARDING_FAILED"),
    (ue.IPX, ue.PROTOCOL, 502, "N32F_FORWARDING_FAILED"),
    (ue.PEER, ue.TIMEOUT, 504, "TIMED_OUT_REQUEST"),
    (ue.NEXT, ue.UNREACHABLE, 502, "N32_PEER_NOT_REACHABLE"),
    (ue.NEXT, ue.RESET, 502, "N32F_FORWARDING_FAILED"),
])
def test_failure_mapping(hop, kind, status, cause):
    err = ue.upstream_failure(hop, kind, deadline=2.5)
    pd = err.problem_details()
    assert (pd["status"], pd["cause"]) == (status, cause)
    assert "127.0.0.1" not in pd["detail"] and ":" not in pd["detail"]
    if kind == ue.TIMEOUT:
        assert "2.5 s" in pd["detail"]


def test_unknown_hop_or_kind_is_a_programming_error():
    with pytest.raises(ValueError):
        ue.upstream_failure("nrf", ue.RESET)
    with pytest.raises(ValueError):
        ue.upstream_failure(ue.NF, "weird")


def test_h2c_only_server_like_open5gs_refuses_http11_and_serves_prior_knowledge():
    """The lab NF in h2c-only mode answers HTTP/1.1 as nghttp2 does (GOAWAY "bad client magic")."""
    async def go():
        server = await h2server.serve(echo, "127.0.0.1", 0, h2c_only=True)
        port = h2server.bound_port(server)
        up = Upstream()
        try:
            ok = await up.send(Hop("127.0.0.1", port, "h2c"), req(), 5)
            try:
                await up.send(Hop("127.0.0.1", port, "h1"), req(), 5)
                h1 = None
            except UpstreamError as e:
                h1 = e.kind
            return ok.status, h1
        finally:
            await up.close()
            await h2server.stop(server)

    assert run(go()) == (200, ue.PROTOCOL)


def test_a_tls_server_that_closes_gets_our_close_notify_and_the_socket_back(pki):
    """asyncio's TLS server waits for the client's close_notify before its connection ends: a
    pooled client must answer it at once, or the server's shutdown stalls (up to 30 s)."""
    d = pki / "plmn-001-01"
    ctx = tls.client_context(certificate=d / "sepp.crt", private_key=d / "sepp.key",
                             anchors=[pki / "plmn-999-70" / "ca.crt"])

    async def go():
        server = await h2server.serve(echo, "127.0.0.1", 0, _mtls_server_ctx(pki))
        up = Upstream()
        try:
            hop = Hop("127.0.0.1", h2server.bound_port(server), "h2", ctx, "udm.5gc.mnc070.mcc999.3gppnetwork.org")
            assert (await up.send(hop, req(scheme="https"), 5)).status == 200
            t0 = time.monotonic()
            await h2server.stop(server)
            return time.monotonic() - t0
        finally:
            await up.close()

    assert run(go()) < 3


@pytest.mark.parametrize("tls_on", [False, True])
def test_large_bodies_both_ways_respect_flow_control(nghttpd, pki, tls_on):
    """1 MB up and 1 MB back (nghttpd --echo-upload): far beyond the 64 KB initial windows."""
    port = nghttpd(tls_on)
    ctx = tls.client_context(certificate=None, private_key=None, anchors=[pki / "plmn-999-70" / "ca.crt"])
    hop = Hop("127.0.0.1", port, "h2", ctx, HOME_FQDN) if tls_on else Hop("127.0.0.1", port, "h2c")
    body = bytes(range(256)) * 4096

    async def go():
        up = Upstream()
        try:
            return await asyncio.gather(*(up.send(hop, req("POST", "/hello", body, scheme="https" if tls_on else "http"),
                                                  10) for _ in range(3)))
        finally:
            await up.close()

    for rsp in run(go()):
        assert rsp.status == 200 and rsp.body == body


def test_a_response_header_that_is_not_utf8_is_a_protocol_failure_not_a_hang():
    async def on_conn(reader, writer):
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, validate_outbound_headers=False))
        conn.initiate_connection()
        writer.write(conn.data_to_send())
        while data := await reader.read(65536):
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.RequestReceived):
                    conn.send_headers(ev.stream_id, [(b":status", b"200"), (b"x-bad", b"\xff\xfe")], end_stream=True)
            writer.write(conn.data_to_send())
            await writer.drain()

    async def go():
        server = await asyncio.start_server(on_conn, "127.0.0.1", 0)
        up = Upstream()
        try:
            t0 = time.monotonic()
            with pytest.raises(UpstreamError) as e:
                await up.send(Hop("127.0.0.1", server.sockets[0].getsockname()[1], "h2c"), req(), 5)
            return e.value.kind, time.monotonic() - t0
        finally:
            await up.close()
            server.close()

    kind, elapsed = run(go())
    assert kind == ue.PROTOCOL and elapsed < 2


class _FreezingProxy:
    """A TCP proxy; ``freeze()`` makes the connections open now silent both ways, without FIN or
    RST (a peer host gone, a middlebox holding our side open); new connections pass."""

    def __init__(self, target: int) -> None:
        self.target, self.accepted, self.frozen = target, 0, set()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._conn, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    def freeze(self) -> None:
        self.frozen |= set(range(1, self.accepted + 1))

    async def _conn(self, cr, cw) -> None:
        self.accepted += 1
        n = self.accepted
        sr, sw = await asyncio.open_connection("127.0.0.1", self.target)

        async def pump(r, w) -> None:
            while data := await r.read(65536):
                if n not in self.frozen:
                    w.write(data)
                    await w.drain()

        await asyncio.gather(pump(cr, sw), pump(sr, cw), return_exceptions=True)


def test_a_pooled_connection_silent_through_a_deadline_is_probed_and_replaced():
    """Without the probe every later request reused the dead pooled connection and timed out."""
    async def fn(up, port):
        proxy = _FreezingProxy(port)
        hop = Hop("127.0.0.1", await proxy.start(), "h2c")
        first = await up.send(hop, req(), 2.0)
        proxy.freeze()
        with pytest.raises(UpstreamError) as e:
            await up.send(hop, req(), 0.3)
        await asyncio.sleep(1.5)          # the PING goes unanswered: the connection is closed
        last = await up.send(hop, req(), 2.0)
        proxy.server.close()
        return first.status, e.value.kind, last.status, proxy.accepted

    assert run(_with_server(echo, fn)) == (200, ue.TIMEOUT, 200, 2)


def test_a_pooled_connection_to_a_live_server_survives_one_stalled_stream():
    """The PING is answered: one slow stream does not cost the others their connection."""
    calls = []

    async def handler(method, path, query, headers, body):
        calls.append(path)
        if path == "/slow":
            await asyncio.sleep(5)
        return await echo(method, path, query, headers, body)

    async def fn(up, port):
        hop = Hop("127.0.0.1", port, "h2c")
        await up.send(hop, req(), 2.0)
        with pytest.raises(UpstreamError):
            await up.send(hop, req(path="/slow"), 0.3)
        await asyncio.sleep(1.5)
        await up.send(hop, req(), 2.0)
        return up.connections()

    assert run(_with_server(handler, fn)) == 1
