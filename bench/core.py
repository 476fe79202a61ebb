"""Core micro-benchmarks of the sans-I/O N32-f path (issue 14 goals 1 and 4).

Each row times one step of one message as the SEPP runs it, in process, on a context pair made
by a real N32-c handshake (real N32-KDF, random exporter value):

* ``protect``: policy selection + reformatting + JWE sealing + JSON serialisation of the
  N32fReformattedReqMsg/RspMsg (what the sending SEPP does per message);
* ``open``: JSON parse + metaData lookup + JWE opening + replay checks + modification check +
  restoring the HTTP message (what the receiving SEPP does per message);
* ``selection``: :meth:`PolicySet.selection` alone;
* ``aes-gcm``: raw AES-GCM encrypt + decrypt of the same plaintext and additional data as the
  message's JWE: the floor the core is compared against (``x aes``).

Figures are the best of several repeats of process CPU time (the machine is shared, wall time
would count other processes), in microseconds per message.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from n32 import handshake as hs
from n32 import body as jbody
from n32 import jwe, modifications, prins
from n32.context import ContextStore, N32fContext
from n32.message import HttpRequest, HttpResponse
from n32.peer import Peer
from n32.policy import PolicySet
from n32.reformat import IeSelection

ROOT = Path(__file__).resolve().parent.parent
V, H = "sepp.5gc.mnc001.mcc001.3gppnetwork.org", "sepp.5gc.mnc070.mcc999.3gppnetwork.org"
AUSF = "ausf.5gc.mnc070.mcc999.3gppnetwork.org"
UDM = "udm.5gc.mnc070.mcc999.3gppnetwork.org"
SUPI = "imsi-999700000000001"
TOKEN = "Bearer " + "eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9." + "x" * 300 + "." + "y" * 86


def load_policy() -> PolicySet:
    return PolicySet.load(ROOT / "policies/data-type-encryption.yaml",
                          sorted((ROOT / "policies/placement").glob("*.yaml")), ROOT / "policies/modification.yaml")


def context_pair(policy: PolicySet, peers: int = 1) -> tuple[N32fContext, N32fContext, ContextStore, ContextStore]:
    """(visited-side context, home-side context, home store, visited store) from in-process N32-c
    handshakes. ``peers`` > 1: each store holds that many live contexts (the O(1) row)."""
    store = ContextStore(time.time)
    lh = hs.LocalSepp(H, ["999-70"], ("PRINS",), ("A128GCM",), ("ES256",), policy)
    others = [f"sepp.5gc.mnc{n:03d}.mcc{200 + n}.3gppnetwork.org" for n in range(1, peers)]
    plmn = {V: "001-01", **{f: f"{200 + n}-{n:02d}" for n, f in enumerate(others, 1)}}
    resp = hs.Responder(lh, [Peer(f, [plmn[f]], ("PRINS",)) for f in [V] + others], store)
    ctx_v = None
    for fqdn in others + [V]:
        master = os.urandom(64)
        local = hs.LocalSepp(fqdn, [plmn[fqdn]], ("PRINS",), ("A128GCM",), ("ES256",), policy)
        conn = hs.ConnectionState(resp.peers[fqdn], lambda m=master: m)
        init = hs.Initiator(local, Peer(H, ["999-70"], ("PRINS",)), exporter=conn.exporter, now=time.time())
        while (step := init.next_request()) is not None:
            out = resp.handle(conn, *step)
            init.receive(out.status, out.body)
        ctx_v = init.context
    assert ctx_v is not None
    ctx_h = store.by_peer(V)
    assert ctx_h is not None
    store_v = ContextStore(time.time)
    for n, fqdn in enumerate(others, 1):   # the visited SEPP's contexts with other peers
        store_v.add(dataclasses.replace(ctx_v, local_context_id=f"{n:016x}", peer_fqdn=fqdn))
    store_v.add(ctx_v)
    return ctx_v, ctx_h, store, store_v


def many_peers(policy: PolicySet, n: int) -> PolicySet:
    """``policy`` with ``n`` configured peers, each with its own data-type policy entry."""
    peers = {f"sepp.5gc.mnc{k:03d}.mcc{200 + k}.3gppnetwork.org": policy.data_type_policy(None) for k in range(1, n)}
    peers[H] = policy.data_type_policy(None)
    return PolicySet(policy.data_type_policy(None), peers, policy._mappings, policy._generic_ies,
                     policy._modification)


def _headers(ctype: str | None = "application/json") -> list[tuple[str, str]]:
    out = [("authorization", TOKEN), ("user-agent", "AMF"), ("accept", "application/json, application/problem+json")]
    return out + ([("content-type", ctype)] if ctype else [])


def lab_messages() -> dict[str, tuple[HttpRequest, HttpResponse]]:
    """The lab's Nausf 5G-AKA authentication and Nudm am-data exchanges (lab/scenario.py, lab/nf.py)."""
    auth_req = json.dumps({"supiOrSuci": "suci-0-999-70-0000-0-0-0000000001",
                           "servingNetworkName": "5G:mnc001.mcc001.3gppnetwork.org"}).encode()
    ctx_id = "0b8d4f0e-7e1c-5d4a-9c57-0f6b2b1a3c11"
    loc = f"https://{AUSF}/nausf-auth/v1/ue-authentications/{ctx_id}"
    auth_rsp = json.dumps({"authType": "5G_AKA", "servingNetworkName": "5G:mnc001.mcc001.3gppnetwork.org",
                           "5gAuthData": {"rand": "a1" * 16, "autn": "b2" * 16, "hxresStar": "c3" * 16},
                           "_links": {"5g-aka": {"href": f"{loc}/5g-aka-confirmation"}}}).encode()
    am_data = json.dumps({"gpsis": ["msisdn-99970700000001"],
                          "subscribedUeAmbr": {"uplink": "1 Gbps", "downlink": "2 Gbps"},
                          "nssai": {"defaultSingleNssais": [{"sst": 1, "sd": "000001"}],
                                    "singleNssais": [{"sst": 1, "sd": "000001"}, {"sst": 2}]},
                          "ratRestrictions": [], "routingIndicator": "0", "subscribedDnnList": ["internet", "ims"],
                          "micoAllowed": False, "rfspIndex": 1, "subsRegTimer": 3240}).encode()
    rsp_headers = [("content-type", "application/json")]
    return {
        "Nausf POST ue-authentications": (
            HttpRequest("POST", "https", AUSF, "/nausf-auth/v1/ue-authentications", "", _headers(), auth_req),
            HttpResponse(201, [("content-type", "application/3gppHal+json"), ("location", loc)], auth_rsp)),
        "Nudm GET am-data": (
            HttpRequest("GET", "https", UDM, f"/nudm-sdm/v2/{SUPI}/am-data",
                        "plmn-id=%7B%22mcc%22%3A%22001%22%2C%22mnc%22%3A%2201%22%7D", _headers(None)),
            HttpResponse(200, rsp_headers, am_data)),
    }


def sized_messages() -> dict[str, tuple[HttpRequest, HttpResponse]]:
    """Growth in size (goal 4): an AMF registration PUT with a JSON body of about 1 KB / 16 KB / 256 KB."""
    out = {}
    for label, size in (("1 KB", 1024), ("16 KB", 16 * 1024), ("256 KB", 256 * 1024)):
        items = [{"dnn": f"dnn-{i:06d}", "note": "z" * 40} for i in range(size // 64)]
        body = json.dumps({"supi": SUPI, "pei": "imeisv-3500000000000101", "items": items}).encode()
        req = HttpRequest("PUT", "https", UDM, f"/nudm-uecm/v1/{SUPI}/registrations/amf-3gpp-access", "",
                          _headers(), body)
        out[f"body {label} ({len(body)} B)"] = (req, HttpResponse(200, [("content-type", "application/json")], body))
    return out


def ie_messages(counts: tuple[int, ...] = (1, 10, 100)) -> dict[int, tuple[HttpRequest, HttpResponse]]:
    """Growth in encrypted IEs (goal 4): ``n`` UE identities, each one encrypted value."""
    out = {}
    for n in counts:
        body = json.dumps({"items": [{"supi": f"imsi-99970{k:010d}", "dnn": "internet"} for k in range(n)]}).encode()
        req = HttpRequest("PUT", "https", UDM, "/nudm-uecm/v1/bench", "", [("content-type", "application/json")], body)
        out[n] = (req, HttpResponse(200, [("content-type", "application/json")], body))
    return out


@dataclass
class Row:
    name: str
    us: float                 # microseconds per call, best of repeats
    aes_us: float | None = None

    @property
    def x_aes(self) -> float | None:
        return self.us / self.aes_us if self.aes_us else None


BUDGET = 0.4          # seconds per row


def best_us(fn: Callable[[], Any], budget: float | None = None, repeats: int = 5) -> float:
    """Best-of-``repeats`` mean time of ``fn`` in µs, each repeat about ``budget``/``repeats`` seconds."""
    budget = budget or BUDGET
    t0 = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t0, 1e-7)
    n = max(1, int(budget / repeats / one))
    best = float("inf")
    for _ in range(repeats):
        t0 = time.process_time_ns()
        for _ in range(n):
            fn()
        best = min(best, (time.process_time_ns() - t0) / n / 1000)
    return best


def best_batch_us(make: Callable[[], Any], fn: Callable[[Any], Any], budget: float | None = None,
                  repeats: int = 5) -> float:
    """Like :func:`best_us` for a ``fn`` that consumes its input: inputs from ``make`` built beforehand."""
    budget = budget or BUDGET * 0.75
    t0 = time.perf_counter()
    fn(make())
    n = min(3000, max(20, int(budget / repeats / max(time.perf_counter() - t0, 1e-7))))
    best = float("inf")
    for _ in range(repeats):
        batch = [make() for _ in range(n)]
        t0 = time.process_time_ns()
        for x in batch:
            fn(x)
        best = min(best, (time.process_time_ns() - t0) / n / 1000)
    return best


class Pipeline:
    """One sending and one receiving SEPP core over a context pair, as the addons drive them."""

    def __init__(self, policy: PolicySet, ctx_v: N32fContext, ctx_h: N32fContext, store: ContextStore,
                 store_v: ContextStore, selection: IeSelection | None = None) -> None:
        self.policy, self.ctx_v, self.ctx_h, self.store, self.store_v = policy, ctx_v, ctx_h, store, store_v
        self.fixed = selection           # instead of the policy's (the encrypted-IE count rows)
        self.check = self._mod_check(ctx_h)
        self.check_v = self._mod_check(ctx_v)

    def _mod_check(self, ctx: N32fContext) -> Callable[..., Any]:
        signers = modifications.signers_from(ctx.peer_ipx_sec_info, ctx.peer_modification_policy or {})

        def check(ctx: Any, body: dict, block: dict, tag: str) -> tuple[dict, list[dict]]:
            return modifications.verify_and_apply(block, body.get("modificationsBlock"), tag, signers)
        return check

    def _sel(self, peer: str, req: HttpRequest, direction: str) -> IeSelection:
        return self.fixed or self.policy.selection(peer, req.method, req.path, direction)

    def protect_request(self, req: HttpRequest) -> tuple[bytes, str]:
        ctx = self.store_v.by_peer(H)           # as the sending SEPP finds its context
        sel = self._sel(H, req, "request")
        mid = prins.new_message_id()
        body, _ = prins.protect_request(ctx, req, sel, mid, None)
        return prins.dumps(body), mid               # as n32/engine.py writes the N32-f request

    def open_request(self, wire: bytes) -> Any:
        body = jbody.loads(wire)                    # as n32/engine.py reads an N32-f body
        peeked = prins.peek(body)
        ctx = self.store.by_local_id(peeked.meta["n32fContextId"])
        return prins.open_request(ctx, body, self.check, peeked)

    def protect_response(self, rsp: HttpResponse, req: HttpRequest, mid: str) -> bytes:
        ctx = self.store.by_local_id(self.ctx_h.local_context_id)
        sel = self._sel(V, req, "response")
        body, _ = prins.protect_response(ctx, rsp, sel, mid, None)
        return prins.dumps(body)                    # as n32/engine.py writes the N32-f response

    def open_response(self, wire: bytes, mid: str) -> Any:
        ctx = self.store_v.by_local_id(self.ctx_v.local_context_id)
        return prins.open_response(ctx, jbody.loads(wire), mid, self.check_v)


def _aes_floor(wire: bytes) -> float:
    """Raw AES-GCM encrypt+decrypt of the plaintext and additional data inside ``wire``'s JWE."""
    j = json.loads(wire)["reformattedData"]
    key, nonce = os.urandom(16), os.urandom(12)
    pt = jwe.b64url_decode(j["ciphertext"])
    ad = f"{j['protected']}.{j['aad']}".encode()

    def run() -> None:
        a = AESGCM(key)
        a.decrypt(nonce, a.encrypt(nonce, pt, ad), ad)
    return best_us(run)


def measure(messages: dict[str, tuple[HttpRequest, HttpResponse]], pipe: Pipeline,
            with_selection: bool = True, brief: bool = False) -> list[Row]:
    """Rows per message: selection, protect/open of request and response, raw AES-GCM; ``brief``:
    protect and open of the request only, and the AES-GCM row."""
    rows: list[Row] = []
    for name, (req, rsp) in messages.items():
        wire, mid = pipe.protect_request(req)
        opened = pipe.open_request(wire)
        assert opened.message.method == req.method
        wire_r = pipe.protect_response(rsp, req, mid)
        assert pipe.open_response(wire_r, mid).message.status == rsp.status
        aes_q, aes_r = _aes_floor(wire), _aes_floor(wire_r)
        if with_selection:
            rows.append(Row(f"{name}: selection (request)",
                            best_us(lambda: pipe.policy.selection(H, req.method, req.path, "request"))))
        rows.append(Row(f"{name}: protect request", best_us(lambda: pipe.protect_request(req)), aes_q))
        # each open needs a fresh message (replay protection): timed over pre-built batches
        rows.append(Row(f"{name}: open request", best_batch_us(lambda: pipe.protect_request(req)[0],
                                                               pipe.open_request), aes_q))
        if not brief:
            rows.append(Row(f"{name}: protect response", best_us(lambda: pipe.protect_response(rsp, req, mid)),
                            aes_r))
            rows.append(Row(f"{name}: open response", best_batch_us(lambda: pipe.protect_response(rsp, req, mid),
                                                                    lambda w: pipe.open_response(w, mid)), aes_r))
        rows.append(Row(f"{name}: raw AES-GCM enc+dec (request bytes)", aes_q))
    return rows


def print_rows(rows: list[Row]) -> None:
    print(f"{'core step':62} {'µs':>9} {'x aes':>7}")
    for r in rows:
        x = f"{r.x_aes:7.1f}" if r.x_aes else ""
        print(f"{r.name:62} {r.us:9.1f} {x}")


def run_all(sizes: bool = True, quick: bool = False) -> list[Row]:
    """Every core row of ``make bench``."""
    global BUDGET
    BUDGET = 0.15 if quick else 0.4
    policy = load_policy()
    pipe = Pipeline(policy, *context_pair(policy))
    rows = measure(lab_messages(), pipe)
    if sizes:
        rows += measure(sized_messages(), pipe, with_selection=False, brief=True)
        for n, msg in ie_messages().items():
            fixed = Pipeline(policy, pipe.ctx_v, pipe.ctx_h, pipe.store, pipe.store_v,
                             IeSelection(body=("/items/*/supi",)))
            rows += measure({f"{n} encrypted IEs": msg}, fixed, with_selection=False, brief=True)
        big = many_peers(policy, 50)
        pipe50 = Pipeline(big, *context_pair(big, peers=50))
        rows += measure({"50 peers, 50 contexts: Nausf": lab_messages()["Nausf POST ue-authentications"]}, pipe50,
                        brief=True)
    return rows


STEPS = ("protect_request", "open_request", "protect_response", "open_response")


def loop(step: str, seconds: float) -> int:
    """Run one step of both lab messages for ``seconds`` of wall time, for a sampling profiler
    outside the process (``py-spy record -r 997 -- python -m bench.core --loop open_request 15``).
    Opens consume messages sealed just before, in batches the replay window accepts. Returns
    the number of steps run."""
    policy = load_policy()
    pipe = Pipeline(policy, *context_pair(policy))
    end, done = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        for req, rsp in lab_messages().values():
            wire, mid = pipe.protect_request(req)
            pipe.open_request(wire)
            if step == "protect_request":
                for _ in range(200):
                    pipe.protect_request(req)
            elif step == "protect_response":
                for _ in range(200):
                    pipe.protect_response(rsp, req, mid)
            elif step == "open_request":
                for w in [pipe.protect_request(req)[0] for _ in range(200)]:
                    pipe.open_request(w)
            else:
                for w in [pipe.protect_response(rsp, req, mid) for _ in range(200)]:
                    pipe.open_response(w, mid)
            done += 200
    return done


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", action="store_true", help="also the size, IE-count and 50-peer rows")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--loop", nargs=2, metavar=("STEP", "SECONDS"),
                    help=f"only run STEP ({', '.join(STEPS)}) for SECONDS, for a profiler")
    args = ap.parse_args(argv)
    if args.loop:
        step, seconds = args.loop
        if step not in STEPS:
            ap.error(f"STEP must be one of {', '.join(STEPS)}")
        print(f"{step}: {loop(step, float(seconds))} steps")
        return 0
    print_rows(run_all(args.sizes, args.quick))
    return 0


if __name__ == "__main__":
    sys.exit(main())
