"""Next-hop failures through real SEPP processes: every answer is ProblemDetails naming where it
failed, within the hop's deadline, never mitmproxy's HTML page and never an internal address.

Home NFs in these labs speak only cleartext HTTP/2 (as open5gs NFs: HTTP/1.1 refused), reached
through ``http://`` routes. Extra home NF routes point at a listener that never accepts (stall),
a server that resets mid-body and a closed port.
"""
from __future__ import annotations

import asyncio
import json
import socket
import threading
import time

import pytest

from lab import procs as P
from lab.run import client_ssl, start_lab
from lab.topology import HOME, Lab, free_port
from lab.traffic import H2Client

from .conftest import run

DOMAIN = "5gc.mnc070.mcc999.3gppnetwork.org"
HOME_NF_DEADLINE = 1.5
N32F_DEADLINE = 4.0


class _Loop:
    """An asyncio loop in a thread for the misbehaving servers of this module."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def _blackhole() -> socket.socket:
    """Listens (the kernel completes TCP handshakes) but never accepts nor answers."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    return s


async def _resetting_server() -> asyncio.Server:
    from tests.n32io.test_upstream import _resetting_server as make
    return await make(100)


def _problem(rsp) -> dict:
    assert dict(rsp.headers).get("content-type") == "application/problem+json", (rsp.status, rsp.body[:200])
    pd = json.loads(rsp.body)
    assert pd["status"] == rsp.status
    assert "127.0.0.1" not in rsp.body.decode() and "Errno" not in pd.get("detail", "")
    return pd


async def _nf_request(lab: Lab, host: str, timeout: float = 30.0):
    c = await H2Client.connect("127.0.0.1", lab.port("sepp-v.sbi"), client_ssl(lab))
    try:
        return await c.request("GET", "/nudm-sdm/v2/imsi-999700000000001/nssai",
                               [("3gpp-sbi-target-apiroot", f"https://{host}")], b"", timeout=timeout)
    finally:
        await c.close()


def _lab(pki, out, mode: str, routes: dict[str, str], peer: dict | None = None) -> Lab:
    lab = Lab(out=out, pki=pki, mode=mode, nf="h2c")
    nf = f"http://127.0.0.1:{lab.port('sepp-h.nf')}"
    lab.overrides["sepp-h"] = {"home_nfs": {"default": nf, "routes": routes},
                               "timeouts": {"home_nf": HOME_NF_DEADLINE, "n32f": N32F_DEADLINE},
                               "topology_hiding": {"enabled": False}}
    lab.overrides["sepp-v"] = {"timeouts": {"n32f": N32F_DEADLINE}, "topology_hiding": {"enabled": False}}
    if peer:
        lab.peer_overrides["sepp-v"] = peer
    return lab


@pytest.fixture(scope="module", params=["prins", "tls"])
def faulty(request, pki, tmp_path_factory):
    loop = _Loop()
    hole = _blackhole()
    resetter = loop.call(_resetting_server())
    routes = {f"stall.{DOMAIN}": f"http://127.0.0.1:{hole.getsockname()[1]}",
              f"reset.{DOMAIN}": f"http://127.0.0.1:{resetter.sockets[0].getsockname()[1]}",
              f"gone.{DOMAIN}": f"http://127.0.0.1:{free_port()}"}
    lab = _lab(pki, tmp_path_factory.mktemp(f"up-{request.param}"), request.param, routes)
    try:
        with P.Procs(lab.out) as procs:
            info = start_lab(lab, procs)
            yield lab, info
    finally:
        resetter.close()
        hole.close()
        loop.stop()


def test_http_home_nf_that_speaks_only_h2c_is_reached(faulty):
    lab, _ = faulty
    rsp = run(_nf_request(lab, f"udm.{DOMAIN}"))
    assert rsp.status == 200, rsp.body[:300]


def test_home_nf_that_stalls_gets_504_within_the_deadline(faulty):
    lab, _ = faulty
    t0 = time.monotonic()
    rsp = run(_nf_request(lab, f"stall.{DOMAIN}"))
    elapsed = time.monotonic() - t0
    pd = _problem(rsp)
    assert (rsp.status, pd["cause"]) == (504, "TIMED_OUT_REQUEST") and "home NF" in pd["detail"]
    assert HOME_NF_DEADLINE - 0.1 <= elapsed < N32F_DEADLINE


@pytest.mark.parametrize("host", ["reset", "gone"])
def test_home_nf_reset_or_down_reaches_the_visited_nf_as_target_nf_not_reachable(faulty, host):
    lab, _ = faulty
    rsp = run(_nf_request(lab, f"{host}.{DOMAIN}"))
    pd = _problem(rsp)
    assert (rsp.status, pd["cause"]) == (504, "TARGET_NF_NOT_REACHABLE"), pd
    assert "home NF" in pd["detail"]


def test_peer_sepp_down_is_problem_details_not_html(faulty):
    """Last in the module: the home SEPP is killed."""
    lab, info = faulty
    home = next(p for p in info["procs"] if p.name == HOME["name"])
    home.popen.kill()
    home.popen.wait(5)
    t0 = time.monotonic()
    rsp = run(_nf_request(lab, f"udm.{DOMAIN}"))
    pd = _problem(rsp)
    assert rsp.status in (502, 503) and pd["cause"] in ("N32_PEER_NOT_REACHABLE", "N32_NOT_ESTABLISHED"), pd
    assert time.monotonic() - t0 < N32F_DEADLINE


def test_peer_sepp_that_stalls_gets_504_within_the_n32f_deadline(pki, tmp_path_factory):
    """N32-f goes to a listener that never completes TLS (n32f_uri): 504 after timeouts.n32f."""
    hole = _blackhole()
    lab = _lab(pki, tmp_path_factory.mktemp("up-stall"), "prins", {},
               peer={"n32f_uri": f"https://127.0.0.1:{hole.getsockname()[1]}"})
    try:
        with P.Procs(lab.out) as procs:
            start_lab(lab, procs)
            t0 = time.monotonic()
            rsp = run(_nf_request(lab, f"udm.{DOMAIN}"))
            elapsed = time.monotonic() - t0
    finally:
        hole.close()
    pd = _problem(rsp)
    assert (rsp.status, pd["cause"]) == (504, "TIMED_OUT_REQUEST") and "peer SEPP" in pd["detail"]
    assert N32F_DEADLINE - 0.1 <= elapsed < N32F_DEADLINE + 3


class _Relay:
    """A TCP relay in front of the peer SEPP's N32 port; ``cut`` resets the next answer mid-body:
    half of the next chunk from the server is passed on, then both sides get a TCP RST."""

    def __init__(self, loop: _Loop, target_port: int) -> None:
        self.loop, self.target_port, self.cut, self.resets = loop, target_port, False, 0
        self.server = loop.call(asyncio.start_server(self._conn, "127.0.0.1", 0))
        self.port = self.server.sockets[0].getsockname()[1]

    async def _conn(self, cr, cw) -> None:
        sr, sw = await asyncio.open_connection("127.0.0.1", self.target_port)

        def rst(w) -> None:
            w.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                                  b"\x01\x00\x00\x00\x00\x00\x00\x00")
            w.transport.abort()

        async def pump(r, w, from_server: bool) -> None:
            while data := await r.read(65536):
                if from_server and self.cut:
                    self.cut, self.resets = False, self.resets + 1
                    w.write(data[: len(data) // 2])
                    await w.drain()
                    rst(cw)
                    rst(sw)
                    return
                w.write(data)
                await w.drain()
            w.close()

        await asyncio.gather(pump(cr, sw, False), pump(sr, cw, True), return_exceptions=True)


@pytest.mark.parametrize("mode", ["prins", "tls"])
def test_n32f_connection_reset_mid_answer_is_problem_details_and_the_next_request_works(pki, tmp_path_factory,
                                                                                       mode):
    loop = _Loop()
    lab = Lab(out=tmp_path_factory.mktemp(f"up-relay-{mode}"), pki=pki, mode=mode, nf="h2c")
    relay = _Relay(loop, lab.port("sepp-h.n32"))
    lab.peer_overrides["sepp-v"] = {"n32f_uri": f"https://127.0.0.1:{relay.port}"}
    try:
        with P.Procs(lab.out) as procs:
            start_lab(lab, procs)
            assert run(_nf_request(lab, f"udm.{DOMAIN}")).status == 200     # pooled N32-f connection
            relay.cut = True
            t0 = time.monotonic()
            rsp = run(_nf_request(lab, f"udm.{DOMAIN}"))
            elapsed = time.monotonic() - t0
            after = run(_nf_request(lab, f"udm.{DOMAIN}"))
    finally:
        relay.server.close()
        loop.stop()
    assert relay.resets == 1
    pd = _problem(rsp)
    assert (rsp.status, pd["cause"]) == (502, "N32F_FORWARDING_FAILED") and "peer SEPP" in pd["detail"], pd
    assert elapsed < 3
    assert after.status == 200   # a new connection, no operator action


def test_receiving_sepp_down_behind_two_ipxs_is_problem_details(pki, tmp_path_factory):
    """sepp-v -> ipx1 -> ipx2 -> sepp-h (killed): ipx2 answers ProblemDetails (it dials its next
    hop itself too), ipx1 and sepp-v relay the cause to the NF."""
    lab = Lab(out=tmp_path_factory.mktemp("up-ipx"), pki=pki, mode="prins", ipx=True, nf="h2c")
    with P.Procs(lab.out) as procs:
        info = start_lab(lab, procs)
        assert run(_nf_request(lab, f"udm.{DOMAIN}")).status == 200
        home = next(p for p in info["procs"] if p.name == HOME["name"])
        home.popen.kill()
        home.popen.wait(5)
        t0 = time.monotonic()
        rsp = run(_nf_request(lab, f"udm.{DOMAIN}"))
        elapsed = time.monotonic() - t0
        ipx2_log = next(p for p in info["procs"] if p.name == "ipx2").log_text()
    pd = _problem(rsp)
    assert rsp.status == 502 and pd["cause"] == "N32_PEER_NOT_REACHABLE", pd
    assert elapsed < 3
    assert "next hop" in ipx2_log and "(unreachable)" in ipx2_log
