"""The visited PLMN's traffic source: an AMF / V-SMF running lab/scenario.py for many UEs.

Every request goes to ``base_url`` (the cSEPP's NF-facing listener) with ``:authority`` = the
SEPP's host:port and the producer named by ``3gpp-Sbi-Target-apiRoot`` (TS 29.500 §5.2.3.2.4,
§6.1 indirect communication via the SEPP, TS 29.573 §5.2). HTTP/2 (RFC 9113) on one connection
with many concurrent streams, over TLS (ALPN h2) or cleartext with prior knowledge; HTTP/1.1
(one keep-alive connection per worker) for comparison.

    python -m lab.traffic --target https://127.0.0.1:8443 --ues 3 --cafile ca.crt
"""
from __future__ import annotations

import argparse
import asyncio
import ssl
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Callable

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions

from lab.h2server import H2Endpoint, Headers
from lab.scenario import Request, Response, ue_steps


@dataclass
class StepResult:
    ue: int
    step: str
    api: str
    method: str
    path: str
    status: int                 # 0 if no response
    expected_status: int
    ok: bool
    latency_ms: float
    error: str | None = None
    response_headers: list[tuple[str, str]] = field(default_factory=list)
    response_body: bytes = b""


# --------------------------------------------------------------------------- clients
class H2Client:
    """One HTTP/2 connection (TLS with ALPN h2, or cleartext prior knowledge), many streams."""

    def __init__(self, ep: H2Endpoint, scheme: str, authority: str) -> None:
        self.ep, self.scheme, self.authority = ep, scheme, authority
        self._streams: dict[int, tuple[asyncio.Future, list, bytearray]] = {}
        self._slots = asyncio.Event()
        self._reader = asyncio.create_task(self._read_loop())

    @classmethod
    async def connect(cls, host: str, port: int, ssl_context: ssl.SSLContext | None,
                      server_name: str | None = None, timeout: float = 10.0) -> "H2Client":
        if ssl_context is not None:
            ssl_context.set_alpn_protocols(["h2"])
        reader, writer = await asyncio.wait_for(asyncio.open_connection(
            host, port, ssl=ssl_context, server_hostname=(server_name or host) if ssl_context else None), timeout)
        if ssl_context is not None and writer.get_extra_info("ssl_object").selected_alpn_protocol() != "h2":
            writer.close()
            raise ConnectionError(f"{host}:{port} did not select ALPN h2")
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        conn.initiate_connection()
        ep = H2Endpoint(conn, reader, writer)
        await ep.flush()
        authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        return cls(ep, "https" if ssl_context else "http", authority)

    @property
    def closed(self) -> bool:
        return self.ep.closed

    def _fail_all(self, exc: Exception) -> None:
        self.ep.closed = True
        self.ep.window_changed()
        self._slots.set()
        for fut, _, _ in self._streams.values():
            if not fut.done():
                fut.set_exception(exc)

    async def _read_loop(self) -> None:
        conn = self.ep.conn
        try:
            while data := await self.ep.reader.read(65536):
                for ev in conn.receive_data(data):
                    st = self._streams.get(getattr(ev, "stream_id", 0) or 0)
                    if isinstance(ev, h2.events.ResponseReceived) and st:
                        st[1].extend(ev.headers)
                    elif isinstance(ev, h2.events.DataReceived):
                        conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                        if st:
                            st[2].extend(ev.data)
                    elif isinstance(ev, h2.events.StreamEnded) and st and not st[0].done():
                        st[0].set_result(None)
                    elif isinstance(ev, h2.events.StreamReset) and st and not st[0].done():
                        st[0].set_exception(ConnectionError(f"stream reset by peer ({ev.error_code!r})"))
                    elif isinstance(ev, (h2.events.WindowUpdated, h2.events.RemoteSettingsChanged)):
                        self.ep.window_changed()
                        self._slots.set()
                    elif isinstance(ev, h2.events.ConnectionTerminated):
                        self._fail_all(ConnectionError(f"GOAWAY from server ({ev.error_code!r})"))
                await self.ep.flush()
            self._fail_all(ConnectionError("connection closed by server"))
        except Exception as e:  # noqa: BLE001 - any failure ends every pending request
            self._fail_all(e if isinstance(e, ConnectionError) else ConnectionError(repr(e)))

    async def request(self, method: str, path: str, headers: Headers, body: bytes,
                      timeout: float = 30.0) -> Response:
        conn = self.ep.conn
        while not self.closed and conn.open_outbound_streams >= conn.remote_settings.max_concurrent_streams:
            self._slots.clear()
            await self._slots.wait()
        if self.closed:
            raise ConnectionError("connection closed")
        sid = conn.get_next_available_stream_id()
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self._streams[sid] = (fut, [], bytearray())
        try:
            hdrs = [(":method", method), (":scheme", self.scheme), (":authority", self.authority),
                    (":path", path)] + [(k.lower(), v) for k, v in headers]
            if body:
                hdrs.append(("content-length", str(len(body))))
            conn.send_headers(sid, hdrs, end_stream=not body)
            await self.ep.flush()
            if body:
                await self.ep.send_body(sid, body)
            await asyncio.wait_for(fut, timeout)
            _, rsp_headers, rsp_body = self._streams[sid]
            status = int(next(v for k, v in rsp_headers if k == ":status"))
            return Response(status, [(k, v) for k, v in rsp_headers if not k.startswith(":")], bytes(rsp_body))
        finally:
            self._streams.pop(sid, None)
            self._slots.set()
            if not fut.done() and not self.closed:  # timed out or cancelled: tell the server
                fut.cancel()
                try:
                    conn.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
                    await self.ep.flush()
                except Exception:  # noqa: BLE001 - the stream may be closed already
                    pass

    async def close(self) -> None:
        if not self.ep.closed:
            self.ep.closed = True
            try:
                self.ep.conn.close_connection()
                await self.ep.flush()
            except Exception:  # noqa: BLE001
                pass
        self._reader.cancel()
        self.ep.writer.close()
        try:
            await self.ep.writer.wait_closed()
        except Exception:  # noqa: BLE001
            pass


class H1Client:
    """One HTTP/1.1 keep-alive connection; one request at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, authority: str) -> None:
        self.reader, self.writer, self.authority = reader, writer, authority
        self.closed = False

    @classmethod
    async def connect(cls, host: str, port: int, ssl_context: ssl.SSLContext | None,
                      server_name: str | None = None, timeout: float = 10.0) -> "H1Client":
        if ssl_context is not None:
            ssl_context.set_alpn_protocols(["http/1.1"])
        reader, writer = await asyncio.wait_for(asyncio.open_connection(
            host, port, ssl=ssl_context, server_hostname=(server_name or host) if ssl_context else None), timeout)
        return cls(reader, writer, f"{host}:{port}")

    async def request(self, method: str, path: str, headers: Headers, body: bytes,
                      timeout: float = 30.0) -> Response:
        lines = [f"{method} {path} HTTP/1.1", f"host: {self.authority}"]
        lines += [f"{k}: {v}" for k, v in headers] + [f"content-length: {len(body)}"]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        await self.writer.drain()
        try:
            return await asyncio.wait_for(self._read_response(), timeout)
        except BaseException:
            self.closed = True
            raise

    async def _read_response(self) -> Response:
        head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(head[0].split(" ", 2)[1])
        headers = [(k.strip().lower(), v.strip()) for k, v in (ln.split(":", 1) for ln in head[1:] if ln)]
        h = dict(headers)
        if "chunked" in h.get("transfer-encoding", ""):
            body = bytearray()
            while size := int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16):
                body += await self.reader.readexactly(size)
                await self.reader.readexactly(2)
            while await self.reader.readuntil(b"\r\n") != b"\r\n":
                pass
        elif "content-length" in h:
            body = bytearray(await self.reader.readexactly(int(h["content-length"])))
        else:
            body, self.closed = bytearray(await self.reader.read()), True
        if "close" in h.get("connection", "").lower():
            self.closed = True
        return Response(status, headers, bytes(body))

    async def close(self) -> None:
        self.closed = True
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except Exception:  # noqa: BLE001
            pass


# --------------------------------------------------------------------------- runner
async def run_scenario(base_url: str, ues: int, concurrency: int, ssl_context: ssl.SSLContext | None,
                       progress: Callable[[StepResult], None] | None = None, *, http: str = "h2",
                       server_name: str | None = None, first_ue: int = 1,
                       timeout: float = 30.0) -> list[StepResult]:
    """Run the scenario for UEs ``first_ue .. first_ue+ues-1`` with ``concurrency`` UEs in flight.

    ``http="h2"``: all workers share one HTTP/2 connection (re-dialled if it breaks);
    ``http="http/1.1"``: one connection per worker. ``ssl_context`` None with an ``https`` URL uses
    the system trust store; its ALPN list is set to the chosen protocol. After a failed step the
    UE's remaining steps are reported as failed (status 0) without being sent.
    Returns the results ordered by UE, then step."""
    u = urllib.parse.urlsplit(base_url)
    if u.scheme == "https" and ssl_context is None:
        ssl_context = ssl.create_default_context()
    tls = ssl_context if u.scheme == "https" else None
    host, port = u.hostname or "127.0.0.1", u.port or (443 if u.scheme == "https" else 80)
    prefix = u.path.rstrip("/")
    client_cls = H2Client if http == "h2" else H1Client
    shared: list[H2Client | H1Client] = []
    lock = asyncio.Lock()
    results: list[StepResult] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(first_ue, first_ue + ues):
        queue.put_nowait(i)

    async def client(mine: list) -> H2Client | H1Client:
        pool = shared if http == "h2" else mine
        async with lock if http == "h2" else _nolock():
            if not pool or pool[0].closed:
                if pool:
                    await pool[0].close()
                    pool.clear()
                pool.append(await client_cls.connect(host, port, tls, server_name))
        return pool[0]

    def report(r: StepResult) -> None:
        results.append(r)
        if progress:
            progress(r)

    async def run_ue(ue: int, mine: list) -> None:
        prev: list[Response] = []
        failed: str | None = None
        for step in ue_steps(ue):
            if failed:
                report(StepResult(ue, step.name, step.api, "", "", 0, step.expected_status, False, 0.0,
                                  f"not sent: {failed}"))
                continue
            t0 = time.perf_counter()
            req: Request | None = None
            try:
                req = step.build(prev)
                target = prefix + req.path + (f"?{req.query}" if req.query else "")
                rsp = await (await client(mine)).request(req.method, target, list(req.headers), req.body, timeout)
            except Exception as e:  # noqa: BLE001 - reported per step
                ms = (time.perf_counter() - t0) * 1000
                failed = f"{step.name} failed"
                report(StepResult(ue, step.name, step.api, req.method if req else "", req.path if req else "",
                                  0, step.expected_status, False, ms, f"{type(e).__name__}: {e}"))
                continue
            ms = (time.perf_counter() - t0) * 1000
            ok = step.ok(rsp.status)
            prev.append(rsp)
            error = None if ok else f"unexpected status {rsp.status}: {rsp.body[:200]!r}"
            if not ok:
                failed = f"{step.name} failed"
            report(StepResult(ue, step.name, step.api, req.method, req.path, rsp.status, step.expected_status,
                              ok, ms, error, rsp.headers, rsp.body))

    async def worker() -> None:
        mine: list = []
        try:
            while not queue.empty():
                await run_ue(queue.get_nowait(), mine)
        finally:
            for c in mine:
                await c.close()

    try:
        await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    finally:
        for c in shared:
            await c.close()
    order = {s.name: n for n, s in enumerate(ue_steps(0))}
    return sorted(results, key=lambda r: (r.ue, order[r.step]))


class _nolock:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", required=True, help="the cSEPP's SBI listener, e.g. https://127.0.0.1:8443")
    ap.add_argument("--ues", type=int, default=3)
    ap.add_argument("--first-ue", type=int, default=1)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--cafile", help="trust anchor of the SEPP's SBI certificate")
    ap.add_argument("--insecure", action="store_true", help="do not verify the server certificate")
    ap.add_argument("--server-name", help="TLS SNI / name to verify (default: the target host)")
    ap.add_argument("--http1", action="store_true", help="HTTP/1.1 instead of HTTP/2")
    ap.add_argument("--quiet", action="store_true", help="summary only")
    args = ap.parse_args(argv)
    ctx = None
    if args.target.startswith("https"):
        ctx = ssl.create_default_context(cafile=args.cafile)
        if args.insecure:
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE

    def line(r: StepResult) -> None:
        if not args.quiet:
            print(f"ue={r.ue:<4} {r.api:24} {r.step:20} {r.method:4} {r.path[:70]:70} {r.status} "
                  f"{'ok' if r.ok else 'FAIL'} {r.latency_ms:8.2f} ms{'  ' + r.error if r.error else ''}",
                  flush=True)

    t0 = time.perf_counter()
    results = asyncio.run(run_scenario(args.target, args.ues, args.concurrency, ctx, line,
                                       http="http/1.1" if args.http1 else "h2",
                                       server_name=args.server_name, first_ue=args.first_ue))
    secs = time.perf_counter() - t0
    per: dict[str, list[StepResult]] = {}
    for r in results:
        per.setdefault(r.api, []).append(r)
    print(f"{'API':24} {'messages':>8} {'ok':>6} {'failed':>6} {'mean ms':>9} {'max ms':>9}")
    for api, rs in per.items():
        lat = [r.latency_ms for r in rs]
        print(f"{api:24} {len(rs):8} {sum(r.ok for r in rs):6} {sum(not r.ok for r in rs):6} "
              f"{sum(lat) / len(lat):9.2f} {max(lat):9.2f}")
    failed = sum(not r.ok for r in results)
    print(f"total: {len(results)} steps, {failed} failed, {secs:.2f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
