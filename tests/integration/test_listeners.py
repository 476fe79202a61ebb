"""What each real SEPP listener accepts on the wire, and the TLS key log (issues 13.1, 17.1, 15).

One lab: the visited SEPP has a cleartext NF-facing listener (``tls: false``) and a separate
N32-f listener; the home SEPP keeps its TLS NF-facing listener. Both write their TLS secrets to a
key log file of their own (option ``tls_keylog``). The loopback traffic of the whole lab is
captured with dumpcap from before the first handshake, and tshark decrypts it afterwards.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from lab import procs as P
from lab.run import start_lab
from lab.scenario import supi
from lab.topology import HOME, Lab
from lab.traffic import H1Client, H2Client, run_scenario

from .conftest import run

UDM = "https://udm.5gc.mnc070.mcc999.3gppnetwork.org"
AM_DATA = f"/nudm-sdm/v2/{supi(1)}/am-data"
HEADER_LIMIT = 16384   # limits.header_section of the visited SEPP
TLS_PORTS = ("sepp-h.sbi", "sepp-h.n32", "sepp-v.n32", "sepp-v.n32f")
TOOLS = all(shutil.which(t) for t in ("dumpcap", "tshark", "nghttp", "h2load"))
pytestmark = pytest.mark.skipif(not TOOLS, reason="needs dumpcap, tshark, nghttp, h2load (make system-deps)")


@pytest.fixture(scope="module")
def lab(pki: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("listeners")
    lab = Lab(out=out, pki=pki, mode="prins")
    lab.overrides["sepp-v"] = {"listeners": {
        "n32": {"host": "127.0.0.1", "port": lab.port("sepp-v.n32")},
        "n32f": {"host": "127.0.0.1", "port": lab.port("sepp-v.n32f")},
        "sbi": {"host": "127.0.0.1", "port": lab.port("sepp-v.sbi"), "tls": False},
    }, "limits": {"header_section": HEADER_LIMIT}}
    for name in ("sepp-v", "sepp-h"):
        lab.options[name] = {"tls_keylog": out / f"{name}.tls-keys"}
    ports = [lab.port(n) for n in (*TLS_PORTS, "sepp-v.sbi", "sepp-h.nf", "sepp-v.nf")]
    pcap = out / "lab.pcapng"
    cap = subprocess.Popen(["dumpcap", "-q", "-i", "lo", "-f", " or ".join(f"tcp port {p}" for p in ports),
                            "-w", str(pcap)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           start_new_session=True)
    try:
        P.wait_for(lambda: pcap.exists() and pcap.stat().st_size > 0, 15, "dumpcap to start")
        with P.Procs(out) as procs:
            start_lab(lab, procs)
            yield lab, cap
    finally:
        if cap.poll() is None:
            os.killpg(cap.pid, signal.SIGINT)
            cap.wait(10)


def _raw_exchange(port: int, data: bytes) -> bytes:
    """Send ``data`` on a fresh connection; what comes back before the server closes (3 s max)."""
    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        s.sendall(data)
        got = b""
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            got += chunk
        else:
            pytest.fail(f"port {port}: connection still open after 3 s")
        return got


HTTP1 = (f"GET {AM_DATA} HTTP/1.1\r\nhost: 127.0.0.1\r\n3gpp-sbi-target-apiroot: {UDM}\r\n\r\n").encode()
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"


@pytest.mark.parametrize("listener", TLS_PORTS)
@pytest.mark.parametrize("hello", [HTTP1, H2_PREFACE], ids=["http1", "h2-preface"])
def test_tls_listener_refuses_cleartext(lab, listener: str, hello: bytes) -> None:
    lab, _ = lab
    assert _raw_exchange(lab.port(listener), hello) == b""  # closed, nothing served
    role = listener.split(".")[1]
    log = (lab.out / f"{listener.split('.')[0]}.log").read_text()
    assert f"listeners.{role}: connection from 127.0.0.1:" in log


def test_curl_cleartext_on_tls_sbi_gets_nothing(lab) -> None:
    """The reported case: curl --http1.1 to the TLS NF-facing listener got subscriber data."""
    lab, _ = lab
    r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5", "--http1.1",
                        "-H", f"3gpp-Sbi-Target-apiRoot: {UDM}", f"http://127.0.0.1:{lab.port('sepp-h.sbi')}{AM_DATA}"],
                       capture_output=True, text=True, timeout=15)
    assert r.stdout == "000" and r.returncode == 52, (r.returncode, r.stdout)  # 52: empty reply


def test_cleartext_listener_refuses_tls(lab) -> None:
    lab, _ = lab
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", lab.port("sepp-v.sbi")), timeout=3) as s:
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            ctx.wrap_socket(s).do_handshake()
    assert "listeners.sbi: connection from 127.0.0.1:" in (lab.out / "sepp-v.log").read_text()


def test_h2c_prior_knowledge_python_h2(lab) -> None:
    """The roaming scenario over cleartext HTTP/2 (python h2, prior knowledge) and over HTTP/1.1."""
    lab, _ = lab
    base = f"http://127.0.0.1:{lab.port('sepp-v.sbi')}"
    for http in ("h2", "http/1.1"):
        results = run(run_scenario(base, 1, 1, None, http=http))
        assert results and all(r.ok for r in results), [(r.step, r.status, r.error) for r in results if not r.ok]


def test_h2c_preface_split_over_segments(lab) -> None:
    """The verdict waits for enough octets: a preface arriving in two segments is still HTTP/2."""
    lab, _ = lab
    with socket.create_connection(("127.0.0.1", lab.port("sepp-v.sbi")), timeout=5) as s:
        s.sendall(H2_PREFACE[:8])
        time.sleep(0.2)
        s.sendall(H2_PREFACE[8:])
        head = s.recv(9)
    assert len(head) == 9 and head[3] == 0x04   # the server's SETTINGS frame (RFC 9113 §3.4)


def test_h2c_nghttp_and_h2load(lab) -> None:
    lab, _ = lab
    url = f"http://127.0.0.1:{lab.port('sepp-v.sbi')}{AM_DATA}"
    r = subprocess.run(["nghttp", "-s", "-H", f"3gpp-sbi-target-apiroot: {UDM}", "-t", "10", url],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run(["nghttp", "-v", "-H", f"3gpp-sbi-target-apiroot: {UDM}", "-t", "10", url],
                       capture_output=True, text=True, timeout=30)
    assert ":status: 200" in r.stdout and '"subscribedUeAmbr"' in r.stdout, r.stdout[-2000:]
    r = subprocess.run(["h2load", "-n", "40", "-c", "2", "-m", "4", "-H", f"3gpp-sbi-target-apiroot: {UDM}", url],
                       capture_output=True, text=True, timeout=60)
    assert "40 succeeded, 0 failed, 0 errored" in r.stdout and "status codes: 40 2xx" in r.stdout, r.stdout


def test_http1_curl_on_cleartext_listener(lab) -> None:
    lab, _ = lab
    r = subprocess.run(["curl", "-s", "--max-time", "10", "--http1.1", "-H", f"3gpp-Sbi-Target-apiRoot: {UDM}",
                        "-w", "\n%{http_code}", f"http://127.0.0.1:{lab.port('sepp-v.sbi')}{AM_DATA}"],
                       capture_output=True, text=True, timeout=20)
    assert r.stdout.endswith("\n200"), r.stdout


def _s_client(port: int, pki: Path, *args: str, until: Path | None = None) -> str:
    """openssl s_client as our peer; stays connected until ``until`` exists (the session file,
    written when the server's ticket arrives after the handshake) or 1 s."""
    me, peer = pki / f"plmn-{HOME['plmn']}", pki / "plmn-001-01"
    p = subprocess.Popen(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-cert", str(me / "sepp.crt"),
                          "-key", str(me / "sepp.key"), "-CAfile", str(peer / "ca.crt"), "-alpn", "h2", *args],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + (10 if until else 1)
        while time.monotonic() < deadline and not (until and until.exists()) and p.poll() is None:
            time.sleep(0.05)
        out, _ = p.communicate(b"", timeout=10)   # EOF on stdin: s_client closes
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    return out.decode(errors="replace")


@pytest.mark.parametrize("listener", ["sepp-v.n32", "sepp-v.n32f"])
def test_resumption_attempt_gets_a_full_handshake_openssl(lab, listener: str, tmp_path: Path) -> None:
    """openssl s_client -sess_out, then -sess_in (what open5gs's libcurl does): the second
    connection is a new, fully verified handshake, not a drop (issue 17.3)."""
    lab, _ = lab
    sess = tmp_path / "session"
    first = _s_client(lab.port(listener), lab.pki, "-sess_out", str(sess), until=sess)
    assert sess.exists(), first
    second = _s_client(lab.port(listener), lab.pki, "-sess_in", str(sess))
    assert "New, TLSv1.3" in second and "Reused" not in second and "ALPN protocol: h2" in second, second
    assert "session id context uninitialized" not in (lab.out / "sepp-v.log").read_text()


def _h2_get(sock: ssl.SSLSocket, path: str) -> int:
    import h2.connection
    import h2.events

    conn = h2.connection.H2Connection()
    conn.initiate_connection()
    conn.send_headers(1, [(":method", "GET"), (":scheme", "https"), (":authority", "sepp.5gc.mnc001.mcc001"
                                                                      ".3gppnetwork.org"), (":path", path)],
                      end_stream=True)
    sock.sendall(conn.data_to_send())
    for _ in range(50):
        data = sock.recv(65536)
        if not data:
            break
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.ResponseReceived):
                return int(dict(ev.headers)[b":status"])
        sock.sendall(conn.data_to_send())
    pytest.fail("no HTTP/2 response")


@pytest.mark.parametrize("listener", ["sepp-v.n32", "sepp-v.n32f"])
def test_resuming_python_client_is_still_identified(lab, listener: str) -> None:
    """A Python client offers the session of its first connection on the second; the SEPP does
    a full handshake and still knows the peer (405 for GET, not 403 PEER_NOT_AUTHENTICATED)."""
    lab, _ = lab
    me = lab.pki / f"plmn-{HOME['plmn']}"
    ctx = ssl.create_default_context(cafile=str(lab.pki / "plmn-001-01" / "ca.crt"))
    ctx.load_cert_chain(me / "sepp.crt", me / "sepp.key")
    ctx.set_alpn_protocols(["h2"])
    name = "sepp.5gc.mnc001.mcc001.3gppnetwork.org"
    session = None
    statuses = []
    for attempt in range(2):
        with socket.create_connection(("127.0.0.1", lab.port(listener)), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname=name, session=session) as s:
                statuses.append(_h2_get(s, "/n32c-handshake/v1/exchange-capability"))
                if attempt == 0:
                    session = s.session   # TLS 1.3: known once the ticket arrived with the response
                    assert session is not None and session.has_ticket
                else:
                    assert not s.session_reused
    expected = 405 if listener.endswith("n32") else 404   # N32-c is not served on the N32-f listener
    assert statuses == [expected, expected]


def _h2_exchange(sock: socket.socket, requests: list[list[tuple[str, str]]]) -> list:
    """Send each header list as one GET on its own stream, in turn; per request the response
    (status, body) or the h2 event that ended the connection. Also returns the server's settings."""
    import h2.config
    import h2.connection
    import h2.events

    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    enc = conn.encoder.encode
    conn.encoder.encode = lambda headers, huffman=True: enc(headers, huffman=False)  # test speed: no Huffman
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    out: list = []
    settings: dict = {}
    while not settings:  # the server's SETTINGS first: its frame size and header list size
        for ev in conn.receive_data(sock.recv(65536)):
            if isinstance(ev, h2.events.RemoteSettingsChanged):
                settings.update({k: v.new_value for k, v in ev.changed_settings.items()})
        sock.sendall(conn.data_to_send())
    for i, extra in enumerate(requests):
        sid = 1 + 2 * i
        conn.send_headers(sid, [(":method", "GET"), (":scheme", "http"), (":authority", "127.0.0.1"),
                                (":path", AM_DATA), ("3gpp-sbi-target-apiroot", UDM), *extra], end_stream=True)
        sock.sendall(conn.data_to_send())
        status, body, result = None, b"", None
        while result is None:
            data = sock.recv(65536)
            if not data:
                result = "EOF"
                break
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.RemoteSettingsChanged):
                    settings.update({k: v.new_value for k, v in ev.changed_settings.items()})
                elif isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == sid:
                    status = int(dict(ev.headers)[b":status"])
                elif isinstance(ev, h2.events.DataReceived) and ev.stream_id == sid:
                    body += ev.data
                    conn.acknowledge_received_data(ev.flow_controlled_length, sid)
                elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id == sid:
                    result = (status, body)
                elif isinstance(ev, (h2.events.ConnectionTerminated, h2.events.StreamReset)):
                    result = ev
                    break
            sock.sendall(conn.data_to_send())
        out.append(result)
        if not isinstance(result, tuple):
            break
    return [out, settings]


def _big(n: int, size: int) -> list[tuple[str, str]]:
    return [(f"x-big-{i}", "a" * size) for i in range(n)]


def _is_431(result) -> bool:
    import json

    status, body = result
    pd = json.loads(body)
    return status == 431 and pd["status"] == 431 and pd["cause"] == "REQUEST_HEADER_FIELDS_TOO_LARGE"


def test_oversized_headers_h2c_get_431_on_the_stream(lab) -> None:
    """64 KB and 100 x 8 KB of headers over HTTP/2 (issue 13.5): 431 ProblemDetails on the stream,
    the connection stays usable; beyond the decoded maximum (advertised in SETTINGS), GOAWAY."""
    import h2.errors
    import h2.events
    from h2.settings import SettingCodes

    lab, _ = lab
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", lab.port("sepp-v.sbi")), timeout=20) as s:
        (r64, r800, ok), settings = _h2_exchange(s, [_big(8, 8192), _big(100, 8192), []])
    assert _is_431(r64) and _is_431(r800) and ok[0] == 200, (r64, r800, ok)
    assert time.monotonic() - t0 < 15
    cap = settings[SettingCodes.MAX_HEADER_LIST_SIZE]
    assert cap >= 100 * (8192 + 32)
    with socket.create_connection(("127.0.0.1", lab.port("sepp-v.sbi")), timeout=20) as s:
        (over,), _ = _h2_exchange(s, [_big(cap // 8192 + 2, 8192)])
    assert isinstance(over, h2.events.ConnectionTerminated)
    assert over.error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM


def test_oversized_headers_on_n32_tls_get_431(lab) -> None:
    """The same on the N32 listener (mutual TLS, the peer's certificate)."""
    lab, _ = lab
    me = lab.pki / f"plmn-{HOME['plmn']}"
    ctx = ssl.create_default_context(cafile=str(lab.pki / "plmn-001-01" / "ca.crt"))
    ctx.load_cert_chain(me / "sepp.crt", me / "sepp.key")
    ctx.set_alpn_protocols(["h2"])
    with socket.create_connection(("127.0.0.1", lab.port("sepp-v.n32")), timeout=20) as raw:
        with ctx.wrap_socket(raw, server_hostname="sepp.5gc.mnc001.mcc001.3gppnetwork.org") as s:
            (r64,), _ = _h2_exchange(s, [_big(8, 8192)])
    assert _is_431(r64), r64


def test_oversized_headers_http1_get_431_at_once(lab) -> None:
    """800 KB of headers over HTTP/1.1 once took 15-20 s without an answer: now 431 at once."""
    lab, _ = lab
    big = "".join(f"x-big-{i}: {'a' * 8192}\r\n" for i in range(100)).encode()
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", lab.port("sepp-v.sbi")), timeout=5) as s:
        s.sendall(HTTP1[:-2] + big + b"\r\n")
        got = b""
        while b"}" not in got:   # the ProblemDetails body ends the answer
            chunk = s.recv(65536)
            assert chunk, got
            got += chunk
    assert time.monotonic() - t0 < 5
    assert got.startswith(b"HTTP/1.1 431 "), got[:200]
    assert b"application/problem+json" in got and b"REQUEST_HEADER_FIELDS_TOO_LARGE" in got
    assert f"limit of {HEADER_LIMIT} octets".encode() in got


def test_many_small_http1_headers_measured_as_http2_does(lab) -> None:
    """500 short fields: 5 KB on the wire, but 32 octets each of RFC 9113 §6.5.2 overhead make the
    section larger than the limit: 431, as over HTTP/2; 300 of them pass."""
    lab, _ = lab

    def ask(n: int) -> bytes:
        head = HTTP1[:-2] + "".join(f"h{i}: v\r\n" for i in range(n)).encode() + b"\r\n"
        with socket.create_connection(("127.0.0.1", lab.port("sepp-v.sbi")), timeout=10) as s:
            s.sendall(head)
            return s.recv(65536)

    assert ask(500).startswith(b"HTTP/1.1 431 ") and len(HTTP1) + 500 * 9 < HEADER_LIMIT
    assert ask(300).startswith(b"HTTP/1.1 200 ")


def test_endless_http1_header_section_is_cut_short(lab) -> None:
    """A client that never ends its header section gets 431 and a closed connection once the
    limit has arrived, not a server buffering megabytes."""
    import select

    lab, _ = lab
    sent, got = 0, b""
    with socket.create_connection(("127.0.0.1", lab.port("sepp-v.sbi")), timeout=5) as s:
        s.sendall(HTTP1[:-2])
        for i in range(256):   # at most 4 MB
            line = f"x-endless-{i}: {'a' * 16000}\r\n".encode()
            s.sendall(line)
            sent += len(line)
            if select.select([s], [], [], 0.02)[0]:
                break
        while chunk := s.recv(65536):
            got += chunk
    assert got.startswith(b"HTTP/1.1 431 ") and b"REQUEST_HEADER_FIELDS_TOO_LARGE" in got, got[:300]
    assert sent < 256 * 1024, sent


def test_tshark_decrypts_with_the_key_logs(lab) -> None:
    """Wireshark workflow: the capture plus each SEPP's key log show N32-c, N32-f and the NF side
    in clear HTTP/2; each key log alone decrypts the connections its SEPP took part in."""
    lab, cap = lab
    # one request to the home SEPP's TLS NF-facing listener (server side of the NF-facing TLS)
    ctx = ssl.create_default_context(cafile=str(lab.pki / f"plmn-{HOME['plmn']}" / "ca.crt"))

    async def one() -> int:
        c = await H2Client.connect("127.0.0.1", lab.port("sepp-h.sbi"), ctx, server_name="127.0.0.1")
        try:
            return (await c.request("GET", "/nausf-auth/v1/keylog-probe", [], b"")).status
        finally:
            await c.close()

    assert run(one()) >= 200
    run(run_scenario(f"http://127.0.0.1:{lab.port('sepp-v.sbi')}", 1, 1, None))  # N32-f and the home NF side
    time.sleep(0.5)  # let dumpcap write the last segments
    os.killpg(cap.pid, signal.SIGINT)
    cap.wait(10)
    pcap = lab.out / "lab.pcapng"
    for name in ("sepp-v", "sepp-h"):
        keys = lab.out / f"{name}.tls-keys"
        assert keys.stat().st_mode & 0o077 == 0
        assert b"CLIENT_TRAFFIC_SECRET_0 " in keys.read_bytes()

    def paths(keys: str) -> set[tuple[int, str]]:
        decode = [a for n in TLS_PORTS + ("sepp-h.nf",) for a in ("-d", f"tcp.port=={lab.port(n)},tls")]
        r = subprocess.run(["tshark", "-n", "-r", str(pcap), "-o", f"tls.keylog_file:{keys}", *decode,
                            "-Y", "http2.headers.path", "-T", "fields", "-e", "tcp.dstport", "-e", "http2.headers.path"],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        found = set()
        for line in r.stdout.splitlines():
            port, _, ps = line.partition("\t")
            found |= {(int(port), p) for p in ps.split(",") if p}
        return found

    hn32, hnf, hsbi = lab.port("sepp-h.n32"), lab.port("sepp-h.nf"), lab.port("sepp-h.sbi")
    exchange = "/n32c-handshake/v1/exchange-capability"
    process = "/n32f-forward/v1/n32f-process"
    by_v = paths(str(lab.out / "sepp-v.tls-keys"))   # the visited SEPP's client contexts
    assert (hn32, exchange) in by_v and (hn32, process) in by_v
    by_h = paths(str(lab.out / "sepp-h.tls-keys"))   # the home SEPP's server and NF-side contexts
    assert (hn32, exchange) in by_h and (hn32, process) in by_h
    assert (hsbi, "/nausf-auth/v1/keylog-probe") in by_h
    assert any(port == hnf and p.startswith("/nausf-auth/") for port, p in by_h)
    assert not any(port == hn32 for port, _ in paths("/dev/null"))  # without keys: nothing in clear
