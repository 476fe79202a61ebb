"""N32 key log: one JSON line per established N32-f context, like SSLKEYLOGFILE for TLS.

Lab and interop use only: it contains the N32-f master key. Tools (the content view, the
offline decoder) and tests re-derive the session keys from it with the same N32-KDF.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from . import kdf


def keylog_record(ctx: Any, sepp_name: str) -> dict:
    return {
        "sepp": sepp_name,
        "peer": ctx.peer_fqdn,
        "role": ctx.role,
        "initiatorContextId": ctx.initiator_context_id,
        "responderContextId": ctx.responder_context_id,
        "masterKey": ctx.master_key.hex(),
        "jweCipherSuite": ctx.jwe_suite,
        "jwsCipherSuite": ctx.jws_suite,
        "kdfContext": ctx.kdf_context,
        "kdfHash": ctx.kdf_hash,
    }


def append_keylog(path: Path, record: dict) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as f:
        f.write(json.dumps(record, separators=(",", ":")) + "\n")


def read_keylog(path: Path) -> list[dict]:
    out = []
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if line:
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


def keys_from_keylog(record: dict) -> kdf.SessionKeys:
    return kdf.derive_session_keys(bytes.fromhex(record["masterKey"]), record["initiatorContextId"],
                                   record["responderContextId"], record["jweCipherSuite"],
                                   record.get("kdfContext", "default"), record.get("kdfHash", "sha256"))
