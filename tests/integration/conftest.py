"""Real processes on loopback: mitmdump SEPPs, lab NFs, real TLS. Ports are picked at run time."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from lab import procs as P
from lab.run import start_lab
from lab.topology import HOME, VISITED, Lab, sepp_fqdn
from n32io import tls
from n32io.h2client import H2TlsClient


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from certs.pki import ensure_lab_pki

    d = tmp_path_factory.mktemp("pki")
    ensure_lab_pki(d)
    return d


@pytest.fixture(scope="module")
def prins_lab(pki: Path, tmp_path_factory: pytest.TempPathFactory):
    """A running visited/home SEPP pair that negotiated PRINS, with the home NFs behind it."""
    lab = Lab(out=tmp_path_factory.mktemp("lab"), pki=pki, mode="prins")
    with P.Procs(lab.out) as procs:
        info = start_lab(lab, procs)
        yield lab, info


def peer_client_ctx(pki: Path, me: dict, peer: dict, cert_dir: Path | None = None):
    """A TLS client context presenting ``me``'s SEPP certificate and trusting ``peer``'s anchor."""
    d = cert_dir or (pki / f"plmn-{me['plmn']}")
    return tls.client_context(certificate=d / "sepp.crt", private_key=d / "sepp.key",
                              anchors=[pki / f"plmn-{peer['plmn']}" / "ca.crt"])


async def n32c_post(lab: Lab, target: dict, operation: str, body, *, raw: bytes | None = None,
                    content_type: str = "application/json", ctx=None, method: str = "POST"):
    """One request to ``target``'s N32-c server, as its configured peer (or with ``ctx``)."""
    me = VISITED if target is HOME else HOME
    ctx = ctx or peer_client_ctx(lab.pki, me, target)
    port = lab.port(f"{target['name']}.n32")
    async with await H2TlsClient.connect("127.0.0.1", port, ctx, server_name=sepp_fqdn(target)) as c:
        payload = raw if raw is not None else (b"" if body is None else __import__("json").dumps(body).encode())
        rsp = await c.request(method, f"/n32c-handshake/v1/{operation}", body=payload,
                              headers=[("content-type", content_type)])
        return rsp


def run(coro):
    return asyncio.run(coro)
