"""Offline N32-f decoder: re-verify recorded N32-f flows against a key log (tamper detection).

    python -m addons.decode FLOWFILE [--keylog FILE ...] [--json] [--ipx-key PEM ...]
    python -m addons.decode CAPTURE.pcapng --tls-keylog TLSKEYS --keylog FILE ...

Reads a mitmproxy flow file, finds every N32-f message (N32fReformattedReqMsg/RspMsg) in the
request and response bodies and in the flow's exchange (n32.exchange: ``requestJwe``/``responseJwe``,
where the SEPP keeps the N32-f form of a message it rewrote in place), and for each one

* decrypts the JWE with the session key chosen from the key log (n32.inspect, TS 33.501
  §13.2.4.4.1: receiver's context ID + direction -> parallel/reverse request/response key),
  which also verifies the AEAD tag over the clear block, the header and the ciphertext;
* verifies the IPX modifications with the receiving SEPP's verifier (n32.modifications,
  TS 33.501 §13.2.4.7: ES256 JWS by the given IPX public keys, this JWE's tag, the first signer
  authorizedIpxId, no metaData change, nothing encrypted touched); only the signer's
  modification policy, which lives in the SEPPs, is not checked here.

Exit status: 0; 1 if any check that could run (a key was available) failed; 2 on bad usage or
an unreadable input. The functions here are shared with the mitmweb view (addons/n32view.py).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from n32 import exchange, inspect, jws, keylog, modifications
from n32.errors import N32Error

NO_IPX_KEY = "not verified: no key"
_PEM_BLOCK = re.compile(r"-----BEGIN [A-Z0-9 ]+-----.+?-----END [A-Z0-9 ]+-----", re.S)


@dataclass
class Modification:
    """One ``modificationsBlock`` entry and the result of verifying it."""

    index: int
    signer: str | None          # claimed identity (authenticated only when verification is "ok")
    verification: str           # "ok" | "FAILED: ..." | "not verified: no key"
    operations: Any             # the RFC 6902 patch against the clear block

    @property
    def failed(self) -> bool:
        return self.verification.startswith("FAILED")

    def to_json(self) -> dict:
        return {"index": self.index, "signer": self.signer, "verification": self.verification,
                "operations": self.operations}


@dataclass
class Examined:
    """An N32-f message decoded, decrypted where a key was known, and verified."""

    decoded: inspect.Decoded
    integrity: str              # "ok" | "FAILED: ..." | "not verified: ..."
    modifications: list[Modification]

    @property
    def failed(self) -> bool:
        return self.integrity.startswith("FAILED") or any(m.failed for m in self.modifications)


def is_n32f(body: Any) -> bool:
    """True for a parsed N32fReformattedReqMsg/RspMsg (a JSON object with a reformattedData object)."""
    return isinstance(body, dict) and isinstance(body.get("reformattedData"), dict)


def parse_n32f(data: bytes | None) -> dict | None:
    """``data`` parsed as an N32-f message body, or None if it is not one."""
    if not data or b"reformattedData" not in data:
        return None
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    return body if is_n32f(body) else None


def load_ipx_keys(paths: Iterable[str | Path]) -> list:
    """IPX verification keys from PEM files (EC P-256 public keys or certificates, any number per file)."""
    keys = []
    for path in paths:
        blocks = _PEM_BLOCK.findall(Path(path).read_text())
        try:
            if not blocks:
                raise ValueError("no PEM block")
            keys += jws.load_public_keys(blocks)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None
    return keys


def _check_modifications(body: dict, d: inspect.Decoded, ipx_keys: Sequence) -> list[Modification]:
    """Each IPX modification verified as the receiving SEPP verifies it (n32.modifications):
    keys, tag, first signer, order, no metaData, nothing encrypted touched or inserted. Only the
    signer's modification policy is not known here: any path is accepted."""
    entries = body.get("modificationsBlock") or []
    if not isinstance(entries, list):
        return [Modification(0, None, "FAILED: modificationsBlock is not an array", None)]
    claimed = [(m.get("identity"), m.get("operations")) for m in d.modifications]
    claimed += [(None, None)] * (len(entries) - len(claimed))
    if not ipx_keys or not entries:
        return [Modification(i, who, NO_IPX_KEY, ops) for i, (who, ops) in enumerate(claimed)]
    keys = tuple(ipx_keys)
    signers = {who: modifications.Signer(who, keys, ()) for who, _ in claimed if isinstance(who, str)}
    out: list[Modification] = []
    try:
        for step in modifications.verify_steps(d.block, entries, body["reformattedData"].get("tag", ""), signers,
                                               policy=False):
            out.append(Modification(step.index, step.identity, "ok", step.payload.get("operations")))
    except N32Error as e:
        who, ops = claimed[len(out)]
        out.append(Modification(len(out), who, f"FAILED: {e.detail}", ops))
        out += [Modification(i, w, "not verified: an earlier modification failed", o)
                for i, (w, o) in enumerate(claimed) if i >= len(out)]
    return out


def examine(body: dict, records: Iterable[dict], ipx_keys: Sequence = ()) -> Examined:
    """Decode, decrypt (key from ``records``) and verify one N32-f message body."""
    d = inspect.decode(body, list(records))
    if d.decrypted:
        integrity = "ok"
    elif d.record is None:
        integrity = f"not verified: {d.error}"
    else:
        integrity = f"FAILED: {d.error}"
    return Examined(d, integrity, _check_modifications(body, d, ipx_keys))


def record_summary(record: dict) -> str:
    """Where the key came from, without the master key."""
    return (f"key log: written by {record.get('sepp')} ({record.get('role')}, peer {record.get('peer')}), "
            f"contexts initiator {record.get('initiatorContextId')} / responder {record.get('responderContextId')}, "
            f"{record.get('jweCipherSuite')}, N32-KDF {record.get('kdfHash', 'sha256')} "
            f"context {record.get('kdfContext', 'default')}")


def render(ex: Examined) -> str:
    """Text form: the decoded message with encrypted IEs revealed and marked, integrity, IPX modifications."""
    d = ex.decoded
    out = [inspect.render_text(replace(d, modifications=[])), "",
           f"integrity (JWE AEAD, TS 33.501 §13.2.4.4): {ex.integrity}"]
    if d.record is not None:
        out.append(record_summary(d.record))
    if ex.modifications:
        out += ["", "IPX modifications (RFC 6902 patches of the clear part above, applied in order on receipt):"]
    for m in ex.modifications:
        out += ["", f"IPX modification {m.index + 1}: signer {m.signer}: {m.verification}",
                f"  patch: {json.dumps(m.operations, ensure_ascii=False)}"]
    return "\n".join(out)


def to_json(ex: Examined, flow_id: str, source: str) -> dict:
    """One JSON line of ``--json`` output."""
    d = ex.decoded
    meta = d.block.get("metaData", {}) if isinstance(d.block.get("metaData"), dict) else {}
    return {"flow": flow_id, "source": source, "direction": d.kind, "messageId": meta.get("messageId"),
            "contextId": meta.get("n32fContextId"), "keyLabel": d.key_label, "decrypted": d.decrypted,
            "integrity": ex.integrity, "dataToEncrypt": d.data_to_encrypt,
            "clear": inspect.reveal(d.block, d.data_to_encrypt),
            "modifications": [m.to_json() for m in ex.modifications]}


def _json_content(message: Any) -> dict | None:
    if message is None:
        return None
    return parse_n32f(message.get_content(strict=False))


def n32f_messages(flow: Any) -> Iterator[tuple[str, dict]]:
    """``(source, body)`` for every distinct N32-f message an HTTP flow carries."""
    ex = exchange.of_metadata(flow.metadata)
    candidates = [("request", _json_content(flow.request)), ("response", _json_content(flow.response))]
    if ex is not None:
        candidates += [("metadata.requestJwe", ex.request_jwe), ("metadata.responseJwe", ex.response_jwe)]
    seen: list[dict] = []
    for source, body in candidates:
        if is_n32f(body) and body not in seen:
            seen.append(body)
            yield source, body


def read_flows(path: str | Path) -> Iterator[Any]:
    from mitmproxy import http, io

    with open(path, "rb") as f:
        for flow in io.FlowReader(f).stream():
            if isinstance(flow, http.HTTPFlow):
                yield flow


def _messages(path: str, tls_keylog: str | None) -> Iterator[tuple[str, str, dict]]:
    """``(flow id, source, body)`` of each N32-f message in a flow file or a packet capture."""
    from addons import pcapread

    if pcapread.is_capture(path):
        if not tls_keylog:
            raise ValueError(f"{path} is a packet capture: give the TLS secrets with --tls-keylog FILE")
        for where, data in pcapread.http2_bodies(path, tls_keylog):
            if body := parse_n32f(data):
                yield "capture", where, body
        return
    for flow in read_flows(path):
        for source, body in n32f_messages(flow):
            yield flow.id, source, body


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m addons.decode",
                                 description="Decrypt and re-verify the N32-f messages of a mitmproxy flow file.")
    ap.add_argument("flowfile")
    ap.add_argument("--keylog", action="extend", nargs="+", default=[], metavar="FILE",
                    help="N32 key log (JSON lines written with n32_keylog); repeatable")
    ap.add_argument("--ipx-key", action="extend", nargs="+", default=[], metavar="PEM",
                    help="IPX public key or certificate (PEM) to verify modifications; repeatable")
    ap.add_argument("--json", action="store_true", help="one JSON object per message")
    ap.add_argument("--tls-keylog", metavar="FILE",
                    help="for a pcap/pcapng input: the TLS secrets (SSLKEYLOGFILE) to open it with tshark")
    args = ap.parse_args(argv)
    try:
        records = [r for p in args.keylog for r in keylog.read_keylog(Path(p))]
        ipx_keys = load_ipx_keys(args.ipx_key)
        messages = list(_messages(args.flowfile, args.tls_keylog))
    except (OSError, ValueError) as e:
        print(f"decode: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # FlowReadException and friends: not a flow file
        print(f"decode: {args.flowfile}: {e}", file=sys.stderr)
        return 2
    counts = {"ok": 0, "failed": 0, "unverified": 0}
    for flow_id, source, body in messages:
        try:
            ex = examine(body, records, ipx_keys)
        except N32Error as e:  # not even the clear block decodes: the capture is damaged
            counts["failed"] += 1
            err = f"FAILED: malformed N32-f message: {e.detail}"
            print(json.dumps({"flow": flow_id, "source": source, "integrity": err}) if args.json
                  else f"=== flow {flow_id} {source}\n{err}\n")
            continue
        counts["failed" if ex.failed else "ok" if ex.decoded.decrypted else "unverified"] += 1
        print(json.dumps(to_json(ex, flow_id, source), ensure_ascii=False) if args.json
              else f"=== flow {flow_id} {source} (N32-f {ex.decoded.kind})\n{render(ex)}\n")
    if not args.json:
        total = sum(counts.values())
        print(f"{total} N32-f message(s): {counts['ok']} verified, {counts['failed']} FAILED, "
              f"{counts['unverified']} not verifiable (no key)")
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
