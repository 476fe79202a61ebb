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
