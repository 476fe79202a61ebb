"""n32io.transport + n32io.h2client over real loopback connections: mutual TLS 1.3 with ALPN h2
against the lab's HTTP/2 server (a different TLS stack: Python's ssl), cleartext HTTP/2 with
prior knowledge, and the failures a next hop produces (closed port, silent server, wrong root)."""
from __future__ import annotations

import asyncio
import json
import socket
import ssl
from pathlib import Path

import h2.connection
import h2.exceptions
import hpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lab import h2server
from n32 import upstream_errors as ue
from n32io import tls
from n32io.h2client import H2Client, request_fields
from n32io.transport import UpstreamError

HOME = "sepp.5gc.mnc070.mcc999.3gppnetwork.org"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from certs.pki import ensure_lab_pki

    d = tmp_path_factory.mktemp("pki-h2")
    ensure_lab_pki(d)
    return d


def mtls_server_ctx(pki: Path) -> ssl.SSLContext:
    home = pki / "plmn-999-70"
    ctx = h2server.server_ssl_context(str(home / "sepp.crt"), str(home / "sepp.key"))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.verify_mode = ssl.CERT_REQUIRED                       # mutual TLS as on N32 (TS 33.501 §13.1)
    ctx.load_verify_locations(str(pki / "plmn-001-01" / "ca.crt"))
    return ctx


def client_ctx(pki: Path, anchor: str = "plmn-999-70"):
    me = pki / "plmn-001-01"
    return tls.client_context(certificate=me / "sepp.crt", private_key=me / "sepp.key",
                              anchors=[pki / anchor / "ca.crt"])


async def echo(method, path, query, headers, body):
    doc = {"method": method, "path": path, "query": query, "len": len(body),
           "authority": dict(headers).get(":authority")}
    return 200, [("content-type", "application/json")], json.dumps(doc).encode()


async def with_server(fn, ssl_context=None):
    server = await h2server.serve(echo, "127.0.0.1", 0, ssl_context)
    try:
        return await asyncio.wait_for(fn(h2server.bound_port(server)), 20)
    finally:
        await h2server.stop(server)


def test_mutual_tls_h2_requests_in_parallel(pki: Path) -> None:
    async def go(port: int):
        async with await H2Client.connect("127.0.0.1", port, client_ctx(pki), server_name=HOME) as c:
            assert c.scheme == "https" and c.transport.alpn == b"h2"
            assert len(c.export_n32_master()) == 64
            rsps = await asyncio.gather(*(c.request("POST", f"/x/{i}", body=b"a" * (i * 10_000), timeout=10)
                                          for i in range(8)))
            assert [r.json()["len"] for r in rsps] == [i * 10_000 for i in range(8)]   # flow control beyond 64 KB
            assert [r.json()["path"] for r in rsps] == [f"/x/{i}" for i in range(8)]
            posted = await c.post_json("/n32c-handshake/v1/exchange-capability", {"a": 1})
            assert posted.status == 200 and posted.header("content-type") == "application/json"
            assert c.idle and c.free_streams > 0
        assert c.closed
        with pytest.raises(UpstreamError) as ei:
            await c.request("GET", "/after-close")
        assert ei.value.kind == ue.RESET and not ei.value.sent

    asyncio.run(with_server(go, mtls_server_ctx(pki)))


def test_cleartext_h2_prior_knowledge() -> None:
    async def go(port: int):
        async with await H2Client.connect("127.0.0.1", port, authority="nf.example") as c:
            r = await c.request("GET", "/nudm-sdm/v2/x?a=1", timeout=10)
            assert c.scheme == "http" and r.status == 200 and r.json()["query"] == "a=1"

    asyncio.run(with_server(go))


def test_closed_stream_records_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """h2 keeps 2**16 records of closed streams per connection by default (~8 MB on a pooled N32-f
    or NF connection, the soak's RSS growth); ours keeps the last CLOSED_STREAMS_KEPT (8 here)."""
    from n32io import h2client

    assert h2client.CLOSED_STREAMS_KEPT < h2.connection.H2Connection.MAX_CLOSED_STREAMS
    monkeypatch.setattr(h2client._Connection, "MAX_CLOSED_STREAMS", 8)

    async def go(port: int):
        async with await H2Client.connect("127.0.0.1", port, authority="nf.example") as c:
            for batch in range(5):
                rsps = await asyncio.gather(*(c.request("GET", f"/x/{batch}/{i}", timeout=10) for i in range(8)))
                assert [r.status for r in rsps] == [200] * 8
            assert c._h2.highest_outbound_stream_id == 79          # 40 streams on this one connection
            assert len(c._h2._closed_streams) == 8

    asyncio.run(with_server(go))


def test_server_of_another_root_fails_the_handshake(pki: Path) -> None:
    async def go(port: int):
        with pytest.raises(UpstreamError) as ei:
            await H2Client.connect("127.0.0.1", port, client_ctx(pki, anchor="plmn-001-01"), server_name=HOME)
        assert ei.value.kind == ue.TLS and not ei.value.sent

    asyncio.run(with_server(go, mtls_server_ctx(pki)))


def test_closed_port_is_unreachable_and_not_sent() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]         # bound, not listening: connections are refused

        async def go():
            with pytest.raises(UpstreamError) as ei:
                await H2Client.connect("127.0.0.1", port, timeout=5)
            assert ei.value.kind == ue.UNREACHABLE and not ei.value.sent

        asyncio.run(go())


def test_silent_server_times_out(pki: Path) -> None:
    async def go():
        accepted: list[asyncio.StreamWriter] = []

        async def hold(reader, writer):      # accepts TCP, never answers the TLS ClientHello
            accepted.append(writer)

        server = await asyncio.start_server(hold, "127.0.0.1", 0)
        try:
            port = server.sockets[0].getsockname()[1]
            with pytest.raises(UpstreamError) as ei:
                await H2Client.connect("127.0.0.1", port, client_ctx(pki), server_name=HOME, timeout=0.5)
            assert ei.value.kind == ue.TIMEOUT and not ei.value.sent
        finally:
            for w in accepted:
                w.close()
            server.close()
            await server.wait_closed()

    asyncio.run(go())


# ---------------------------------------------------------------------- request header block
_FIELD_NAMES = st.sampled_from(["content-type", "Accept", " user-agent", "authorization", "Proxy-Authorization",
                                "cookie", "te", "host", "connection", "Keep-Alive", "transfer-encoding", "upgrade",
                                "x-b3-traceid", ":path", "3gpp-sbi-target-apiroot", "via "])
_VALUES = st.sampled_from(["application/json", " trailers", "TRAILERS", "gzip", "a=1", "a" * 30, "",
                           "Bearer eyJ.x.y ", "\tx\t", "ausf.example.org", "ausf.example.org:443", "v\xa0"])


def _h2s_block(fields: list[tuple[str, str]]) -> list[tuple[bytes, bytes]] | str:
    """What h2 itself sends for ``fields`` with its normalisation and validation on (or the error)."""
    from h2.utilities import HeaderValidationFlags, normalize_outbound_headers, validate_outbound_headers
    flags = HeaderValidationFlags(is_client=True, is_trailer=False, is_response_header=False, is_push_promise=False)
    try:
        encoded = [(k.encode(), v.encode()) for k, v in fields]
        return [(type(h), tuple(h)) for h in validate_outbound_headers(normalize_outbound_headers(encoded, flags),
                                                                        flags)]  # type: ignore[misc]
    except h2.exceptions.ProtocolError:
        return "refused"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_FIELD_NAMES, _VALUES), max_size=6), st.sampled_from(["/x", " /x ", "", " "]),
       st.sampled_from(["ausf.example.org", " ausf.example.org:443"]), st.sampled_from([None, 12]))
def test_request_fields_are_what_h2_would_send(fields, path, authority, length) -> None:
    """request_fields replaces h2's outbound normalisation and validation (off on our connections
    for speed): the same fields in the same order, the same never-indexed ones, the same refusals."""
    pseudo = [(":method", "POST"), (":scheme", "https"), (":authority", authority), (":path", path)]
    expected = _h2s_block(pseudo + fields + ([("content-length", str(length))] if length is not None else []))
    try:
        block = request_fields("POST", "https", authority, path, fields, length)
        got: list | str = [(type(h), tuple(h)) for h in block]
    except h2.exceptions.ProtocolError:
        got = "refused"
    if expected != "refused" and got != "refused":
        # h2 turns plain tuples into its HeaderTuple only where it marks them: compare the marking
        never = hpack.NeverIndexedHeaderTuple
        expected = [(t is never, f) for t, f in expected]   # type: ignore[union-attr]
        got = [(t is never, f) for t, f in got]             # type: ignore[union-attr]
    assert got == expected

