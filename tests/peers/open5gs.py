"""A peer SEPP that behaves on the wire as open5gs v2.7.7 ``open5gs-seppd`` in TLS mode does
(captured shapes: the project's open5gs fixture notes; issue 17). A test stand-in, not a SEPP:

* N32-c server (mutual TLS, h2) on its ``n32c`` port: ``exchange-capability`` answered with
  exactly open5gs's response members; ``["NONE"]`` ends the relation. Anything else on that port
  (N32-f) is dropped as open5gs does: ``[DROP] Peer SEPP is using the wrong interface[sepp]``,
  answered 500 (open5gs's server answers a failed request handler so).
* N32-f server (mutual TLS, h2) on its dedicated ``n32f`` port, configured, never announced:
  takes TLS-mode N32-f only while it believes the relation established, removes
  ``3gpp-Sbi-Target-apiRoot`` (no SCP) and answers in place of its NF (records what it got).
* Its NF side: cleartext HTTP/2 with prior knowledge only (HTTP/1.1 refused). A request there
  for the peer's PLMN goes out as N32-f with open5gs's request headers (``:authority`` = the
  peer SEPP FQDN with the configured port, ``user-agent``, ``accept``, ``accept-encoding``,
  ``3gpp-sbi-target-apiroot`` as the NF sent it) to the configured ``peer.n32f`` address, on
  new connections that offer the TLS session (ticket) of an earlier one, as libcurl does.
* As N32-c initiator it sends open5gs's request body (``["TLS"]`` only, never exchange-params,
  no ``senderN32fFqdn``), at start and then every ``retry`` seconds until established, and never
  again while it believes the relation established. On SIGTERM it sends ``["NONE"]`` on a new
  connection unless ``release: lost`` (the release open5gs often loses); SIGKILL sends nothing.

    python -m tests.peers.open5gs CONFIG.json

CONFIG: ``sender``, ``mcc``, ``mnc``, ``certificate``, ``private_key``, ``ca`` (the peer's anchor),
``listen: {n32c, n32f, sbi}`` (ports on 127.0.0.1), ``peer: {fqdn, n32c, n32f, authority_port}``
(``n32c``/``n32f`` = ``host:port``), ``initiate`` (bool), ``retry`` (s), ``release``
(``send``|``lost``), ``state`` (JSON file rewritten on every change), ``log``.
"""
from __future__ import annotations

import asyncio
import json
import signal
import socket
import ssl
import sys
import threading
from pathlib import Path
from typing import Any

import h2.config
import h2.connection
import h2.events

from lab import h2server

Headers = list[tuple[str, str]]
HANDSHAKE = "/n32c-handshake/v1/exchange-capability"


class Open5gsPeer:
    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg = cfg
        self.established = False
        self.state: dict[str, Any] = {"established": False, "n32c_received": [], "n32c_responses": [],
                                      "n32f_received": [], "dropped": 0, "n32f_sent": [], "handshakes_sent": 0,
                                      "handshake_errors": []}
        self.sessions: dict[str, ssl.SSLSession] = {}   # per destination, as libcurl's cache
        self._client_ctx: ssl.SSLContext | None = None
        self.session_lock = threading.Lock()
        self.log = open(cfg["log"], "a", buffering=1) if cfg.get("log") else sys.stderr

    # ------------------------------------------------------------------ bookkeeping
    def say(self, msg: str) -> None:
        self.log.write(msg + "\n")

    def save(self) -> None:
        self.state["established"] = self.established
        tmp = Path(self.cfg["state"] + ".tmp")
        tmp.write_text(json.dumps(self.state))
        tmp.replace(self.cfg["state"])

    def body(self, capabilities: list[str] | None = None, selected: str | None = None) -> dict:
        """open5gs's SecNegotiateReqData / SecNegotiateRspData, members in its order."""
        doc: dict[str, Any] = {"sender": self.cfg["sender"]}
        if selected is None:
            doc["supportedSecCapabilityList"] = capabilities or ["TLS"]
        else:
            doc["selectedSecCapability"] = selected
        if selected != "NONE" and capabilities != ["NONE"]:
            doc["3GppSbiTargetApiRootSupported"] = True
        doc["plmnIdList"] = [{"mcc": self.cfg["mcc"], "mnc": self.cfg["mnc"]}]
        doc["supportedFeatures"] = "1"
        return doc

    # ------------------------------------------------------------------ TLS
    def server_ctx(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.cfg["certificate"], self.cfg["private_key"])
        ctx.load_verify_locations(self.cfg["ca"])
        ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx

    def client_ctx(self) -> ssl.SSLContext:
        if self._client_ctx is not None:   # one context: a session belongs to the context that made it
            return self._client_ctx
        ctx = self._client_ctx = ssl.create_default_context(cafile=self.cfg["ca"])
        ctx.load_cert_chain(self.cfg["certificate"], self.cfg["private_key"])
        ctx.set_alpn_protocols(["h2"])
        return ctx

    def _exchange(self, where: str, method: str, path: str, headers: Headers, body: bytes,
                  resume: bool) -> tuple[int, Headers, bytes, dict]:
        """One request on a new TLS connection (blocking; run in a thread, as libcurl's own)."""
        host, _, port = where.rpartition(":")
        offered = None
        if resume:
            with self.session_lock:
                offered = self.sessions.get(where)
        info = {"offered": offered is not None}
        with socket.create_connection((host, int(port)), timeout=10) as raw:
            with self.client_ctx().wrap_socket(raw, server_hostname=self.cfg["peer"]["fqdn"],
                                               session=offered) as s:
                info["reused"] = s.session_reused
                conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True,
                                                                           header_encoding="utf-8"))
                conn.initiate_connection()
                hdrs = [(":method", method), (":scheme", "https"), *headers]
                if body:
                    hdrs.append(("content-length", str(len(body))))
                conn.send_headers(1, [h for h in hdrs if h[0].startswith(":")] +
                                  [h for h in hdrs if not h[0].startswith(":")], end_stream=not body)
                if body:
                    conn.send_data(1, body, end_stream=True)
                s.sendall(conn.data_to_send())
                status, rsp_headers, rsp_body = 0, [], bytearray()
                for _ in range(1000):
                    data = s.recv(65536)
                    if not data:
                        raise ConnectionError("EOF")
                    done = False
                    for ev in conn.receive_data(data):
                        if isinstance(ev, h2.events.ResponseReceived):
                            status = int(dict(ev.headers)[":status"])
                            rsp_headers = [(k, v) for k, v in ev.headers if not k.startswith(":")]
                        elif isinstance(ev, h2.events.DataReceived):
                            rsp_body += ev.data
                            conn.acknowledge_received_data(ev.flow_controlled_length, 1)
                        elif isinstance(ev, (h2.events.StreamEnded, h2.events.StreamReset)):
                            done = True
                    s.sendall(conn.data_to_send())
                    if done:
                        break
                if s.session is not None:   # the session (ticket) it offers on its next connection
                    with self.session_lock:
                        self.sessions[where] = s.session
        return status, rsp_headers, bytes(rsp_body), info

    # ------------------------------------------------------------------ N32-c initiator
    async def handshake(self, capabilities: list[str]) -> bool:
        peer = self.cfg["peer"]
        body = json.dumps(self.body(capabilities), separators=(",", ":")).encode()
        headers = [(":authority", peer["fqdn"]), (":path", HANDSHAKE), ("content-type", "application/json"),
                   ("user-agent", "SEPP"), ("accept", "application/json,application/problem+json")]
        self.state["handshakes_sent"] += 1
        try:
            status, _, rsp, _ = await asyncio.to_thread(self._exchange, peer["n32c"], "POST", HANDSHAKE,
                                                        headers, body, False)
        except (OSError, ssl.SSLError, ConnectionError) as e:
            self.say(f"exchange-capability to {peer['fqdn']} failed: {e}")   # open5gs: "EOF"
            self.state["handshake_errors"].append(str(e))
            self.save()
            return False
        doc = json.loads(rsp or b"null")
        self.state["n32c_responses"].append({"status": status, "body": doc})
        ok = status == 200 and isinstance(doc, dict) and doc.get("selectedSecCapability") == "TLS"
        if capabilities != ["NONE"]:
            self.established = ok
        self.say(f"exchange-capability {capabilities} -> {status} {doc}")
        self.save()
        return ok

    async def initiate(self) -> None:
        while not self.established:   # never again while it believes the relation established
            if await self.handshake(["TLS"]):
                return
            await asyncio.sleep(float(self.cfg.get("retry", 0.5)))

    # ------------------------------------------------------------------ servers
    async def on_n32c(self, method: str, path: str, query: str, headers: Headers, body: bytes):
        if method == "POST" and path == HANDSHAKE:
            req = json.loads(body)
            self.state["n32c_received"].append(req)
            offered = req.get("supportedSecCapabilityList") or []
            if offered == ["NONE"]:
                self.established = False
                self.save()
                return 200, [("content-type", "application/json")], json.dumps(self.body(selected="NONE")).encode()
            if "TLS" not in offered:
                self.save()
                return h2server.problem(400, "NEGOTIATION_NOT_ALLOWED", "TLS only")
            self.established = True
            self.save()
            return 200, [("content-type", "application/json")], json.dumps(self.body(selected="TLS")).encode()
        # N32-f (or anything else) on its N32-c interface
        self.say("[DROP] Peer SEPP is using the wrong interface[sepp]")
        self.state["dropped"] += 1
        self.save()
        return 500, [("content-type", "application/problem+json")], json.dumps(
            {"status": 500, "detail": "server callback error"}).encode()

    async def on_n32f(self, method: str, path: str, query: str, headers: Headers, body: bytes):
        if not self.established:
            return h2server.problem(403, "N32_NOT_ESTABLISHED", "no N32-c relation")
        # no SCP: the target apiRoot header is removed before delivery to the NF
        kept = [(k, v) for k, v in headers if k != "3gpp-sbi-target-apiroot"]
        self.state["n32f_received"].append({"method": method, "path": path, "query": query,
                                            "headers": headers, "delivered": kept,
                                            "body": body.decode(errors="replace")})
        self.save()
        return 200, [("content-type", "application/json")], json.dumps({"servedBy": "open5gs NF"}).encode()

    async def on_sbi(self, method: str, path: str, query: str, headers: Headers, body: bytes):
        h = dict(headers)
        target = h.get("3gpp-sbi-target-apiroot")
        if not target:
            return h2server.problem(400, "MANDATORY_IE_MISSING", "no 3gpp-sbi-target-apiroot")
        if not self.established:
            return h2server.problem(504, "NF_FAILOVER", "no relation with the peer SEPP")   # open5gs: no answer
        peer = self.cfg["peer"]
        fwd = [(":authority", f"{peer['fqdn']}:{peer.get('authority_port', 7777)}"),
               (":path", path + (f"?{query}" if query else ""))]
        fwd += [(k, v) for k, v in headers if not k.startswith(":") and k != "content-length"]
        for name, value in (("user-agent", "AMF"), ("accept", "*/*"), ("accept-encoding", "gzip, deflate")):
            if name not in h:
                fwd.append((name, value))
        try:
            status, rsp_headers, rsp, info = await asyncio.to_thread(self._exchange, peer["n32f"], method,
                                                                     path, fwd, body, True)
        except (OSError, ssl.SSLError, ConnectionError) as e:
            self.state["n32f_sent"].append({"error": str(e)})
            self.save()
            return 500, [], b""
        self.state["n32f_sent"].append({"status": status, **info})
        self.save()
        return status, [(k, v) for k, v in rsp_headers if k != "content-length"], rsp


async def main_async(cfg: dict[str, Any]) -> None:
    peer = Open5gsPeer(cfg)
    listen = cfg["listen"]
    servers = [await h2server.serve(peer.on_n32c, "127.0.0.1", listen["n32c"], peer.server_ctx()),
               await h2server.serve(peer.on_n32f, "127.0.0.1", listen["n32f"], peer.server_ctx()),
               await h2server.serve(peer.on_sbi, "127.0.0.1", listen["sbi"], None, h2c_only=True)]
    peer.save()
    peer.say("open5gs-shaped peer listening")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    task = loop.create_task(peer.initiate()) if cfg.get("initiate") else None
    await stop.wait()
    if task:
        task.cancel()
    if peer.established and cfg.get("release", "send") == "send":
        await peer.handshake(["NONE"])    # on a new connection, as open5gs at shutdown
    for s in servers:
        await h2server.stop(s)


def main(argv: list[str] | None = None) -> None:
    args = argv if argv is not None else sys.argv[1:]
    asyncio.run(main_async(json.loads(Path(args[0]).read_text())))


if __name__ == "__main__":
    main()
