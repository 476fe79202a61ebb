"""n32io.n32c: N32-c requests over a real mutually authenticated TLS 1.3 + HTTP/2 connection on
loopback (the lab's HTTP/2 server as the peer), URI splitting and the reconnect backoff."""
from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from lab import h2server
from n32 import wire
from n32.errors import N32Error
from n32io import n32c
from n32io.transport import UpstreamError
from tests.n32io.test_h2client import HOME, client_ctx, mtls_server_ctx


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from certs.pki import ensure_lab_pki

    d = tmp_path_factory.mktemp("pki-n32c")
    ensure_lab_pki(d)
    return d


@dataclass
class Peer:
    fqdn: str
    n32c_uri: str


@pytest.mark.parametrize("uri,expected", [
    ("https://sepp.example:8443", ("sepp.example", 8443, "")),
    ("https://sepp.example/prefix/", ("sepp.example", 443, "/prefix")),
    ("https://127.0.0.1:1234/a/b", ("127.0.0.1", 1234, "/a/b")),
])
def test_split_uri(uri, expected):
    assert n32c.split_uri(uri) == expected


def test_post_once_sends_the_operation_on_a_new_mutual_tls_connection(pki: Path) -> None:
    seen: list[tuple[str, str, dict, str]] = []

    async def peer_sepp(method, path, query, headers, body):
        seen.append((method, path, json.loads(body), dict(headers).get("user-agent", "")))
        return 204, [], b""

    async def go():
        server = await h2server.serve(peer_sepp, "127.0.0.1", 0, mtls_server_ctx(pki))
        try:
            peer = Peer(HOME, f"https://127.0.0.1:{h2server.bound_port(server)}/pre")
            info = {"n32fContextId": "a1b2c3d4e5f60718", "n32fMessageId": "42", "n32fErrorType": "POLICY_MISMATCH"}
            status, payload = await n32c.post_once(peer, client_ctx(pki), "n32f-error", info, timeout=10)
            assert (status, payload) == (204, None)
            assert seen == [("POST", "/pre" + wire.n32c_path("n32f-error"), info, "SEPP")]
        finally:
            await h2server.stop(server)

    asyncio.run(asyncio.wait_for(go(), 30))


def test_with_backoff_retries_connection_failures_then_gives_up():
    calls: list[int] = []

    async def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise UpstreamError("unreachable", "refused", sent=False)
        return "ok"

    assert asyncio.run(n32c.with_backoff(flaky, what="t", initial=0.001, maximum=0.002, attempts=5)) == "ok"
    assert len(calls) == 3

    async def down():
        calls.append(1)
        raise OSError("refused")

    calls.clear()
    with pytest.raises(OSError):
        asyncio.run(n32c.with_backoff(down, what="t", initial=0.001, maximum=0.002, attempts=4))
    assert len(calls) == 4


def test_with_backoff_does_not_retry_a_protocol_error():
    calls: list[int] = []

    async def refused():
        calls.append(1)
        raise N32Error(403, "PLMN_NOT_ALLOWED", "no")

    with pytest.raises(N32Error):
        asyncio.run(n32c.with_backoff(refused, what="t", initial=0.001, maximum=0.002, attempts=None))
    assert calls == [1]


def _counting_server_ctx(pki: Path, accepted: list[str]):
    """The peer's mutual-TLS context, counting TLS handshakes (one per accepted connection: our
    client always sends the peer's FQDN as SNI)."""
    ctx = mtls_server_ctx(pki)
    ctx.sni_callback = lambda sock, name, c: accepted.append(name)
    return ctx


def test_report_channel_sends_a_burst_of_reports_on_one_connection(pki: Path) -> None:
    """Issue 13 item 4: N reports to one peer, sequential and concurrent, cost one N32-c connection."""
    accepted: list[str] = []
    seen: list[str] = []

    async def peer_sepp(method, path, query, headers, body):
        seen.append(json.loads(body)["n32fMessageId"])
        return 204, [], b""

    async def go():
        server = await h2server.serve(peer_sepp, "127.0.0.1", 0, _counting_server_ctx(pki, accepted))
        channel = n32c.ReportChannel(idle=30)
        try:
            peer = Peer(HOME, f"https://127.0.0.1:{h2server.bound_port(server)}")
            ctx = client_ctx(pki)
            info = {"n32fContextId": "a1b2c3d4e5f60718", "n32fErrorType": "POLICY_MISMATCH"}
            for i in range(10):
                assert await channel.post(peer, ctx, "n32f-error", {**info, "n32fMessageId": str(i)}, 10) == (204, None)
            answers = await asyncio.gather(*(channel.post(peer, ctx, "n32f-error", {**info, "n32fMessageId": str(i)}, 10)
                                             for i in range(10, 40)))
            assert answers == [(204, None)] * 30
        finally:
            await channel.aclose()
            await h2server.stop(server)
        assert sorted(seen, key=int) == [str(i) for i in range(40)]
        assert accepted == [HOME] and channel.opened == 1

    asyncio.run(asyncio.wait_for(go(), 30))


def test_report_channel_closes_an_idle_connection_and_opens_a_new_one_when_needed(pki: Path) -> None:
    accepted: list[str] = []

    async def peer_sepp(method, path, query, headers, body):
        return 204, [], b""

    async def go():
        server = await h2server.serve(peer_sepp, "127.0.0.1", 0, _counting_server_ctx(pki, accepted))
        channel = n32c.ReportChannel(idle=0.2)
        try:
            peer = Peer(HOME, f"https://127.0.0.1:{h2server.bound_port(server)}")
            info = {"n32fContextId": "a1b2c3d4e5f60718", "n32fMessageId": "1", "n32fErrorType": "POLICY_MISMATCH"}
            assert (await channel.post(peer, client_ctx(pki), "n32f-error", info, 10))[0] == 204
            first = channel._conns[HOME][0]
            for _ in range(50):                      # bounded: the idle timer closes it after 0.2 s
                if first.closed:
                    break
                await asyncio.sleep(0.05)
            assert first.closed and HOME not in channel._conns
            assert (await channel.post(peer, client_ctx(pki), "n32f-error", info, 10))[0] == 204
        finally:
            await channel.aclose()
            await h2server.stop(server)
        assert len(accepted) == 2 and channel.opened == 2

    asyncio.run(asyncio.wait_for(go(), 30))
