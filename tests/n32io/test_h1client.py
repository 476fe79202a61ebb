"""n32io.h1client: HTTP/1.1 to home NFs that do not speak HTTP/2, over real loopback connections
(cleartext and mutual TLS with ALPN http/1.1) against the lab's server, and a server that breaks
HTTP/1.1 or goes silent."""
from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from lab import h2server
from n32 import upstream_errors as ue
from n32io.h1client import H1Client
from n32io.transport import UpstreamError
from tests.n32io.test_h2client import HOME, client_ctx, echo, mtls_server_ctx


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from certs.pki import ensure_lab_pki

    d = tmp_path_factory.mktemp("pki-h1")
    ensure_lab_pki(d)
    return d


async def with_server(fn, ssl_context=None):
    server = await h2server.serve(echo, "127.0.0.1", 0, ssl_context)
    try:
        return await asyncio.wait_for(fn(h2server.bound_port(server)), 20)
    finally:
        await h2server.stop(server)


def test_keep_alive_requests_in_sequence() -> None:
    async def go(port: int):
        c = await H1Client.connect("127.0.0.1", port, authority="udm.example")
        try:
            for i in range(3):                       # one connection, one exchange at a time
                r = await c.request("POST", f"/nudm-ueau/v1/{i}", body=b"x" * (i * 70_000),
                                    headers=[("content-type", "application/json")], timeout=10)
                assert r.status == 200 and r.json() == {"method": "POST", "path": f"/nudm-ueau/v1/{i}", "query": "",
                                                        "len": i * 70_000, "authority": r.json()["authority"]}
                assert c.idle and c.free_streams == 1
        finally:
            await c.close()
        assert c.free_streams == 0
        with pytest.raises(UpstreamError) as ei:
            await c.request("GET", "/")
        assert ei.value.kind == ue.RESET and not ei.value.sent

    asyncio.run(with_server(go))


def test_mutual_tls_with_alpn_http11(pki: Path) -> None:
    async def go(port: int):
        c = await H1Client.connect("127.0.0.1", port, client_ctx(pki), server_name=HOME)
        try:
            assert c.transport.alpn == b"http/1.1"
            r = await c.request("GET", "/nudm-sdm/v2/x?dataset-names=AM", timeout=10)
            assert r.status == 200 and json.loads(r.body)["query"] == "dataset-names=AM"
        finally:
            await c.close()

    asyncio.run(with_server(go, mtls_server_ctx(pki)))


@pytest.mark.parametrize("answer,kind", [
    # a body cut short: h11 calls it a protocol error; towards the home NF both kinds give the
    # same answer (504 TARGET_NF_NOT_REACHABLE, n32/upstream_errors.py)
    (b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort", ue.PROTOCOL),
    (b"SSH-2.0-OpenSSH_9.6\r\n", ue.PROTOCOL),                                # not HTTP at all
    (None, ue.TIMEOUT),                                                        # never answers
])
def test_broken_servers(answer: bytes | None, kind: str) -> None:
    async def go():
        held: list[asyncio.StreamWriter] = []

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
            await reader.readuntil(b"\r\n\r\n")
            if answer is None:
                held.append(writer)
                return
            writer.write(answer)
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        try:
            c = await H1Client.connect("127.0.0.1", server.sockets[0].getsockname()[1])
            with pytest.raises(UpstreamError) as ei:
                await c.request("GET", "/", timeout=1)
            assert ei.value.kind == kind and c.closed
        finally:
            for w in held:
                w.close()
            server.close()
            await server.wait_closed()

    asyncio.run(asyncio.wait_for(go(), 20))
