"""n32.keylog: one line per context, private to its owner, and the same session keys re-derived
from it (what the content view and the offline decoder rely on)."""
from __future__ import annotations

import secrets
from pathlib import Path

from n32 import kdf, keylog
from n32.context import N32fContext


def test_record_rederives_the_session_keys(tmp_path: Path):
    master = secrets.token_bytes(64)
    init_id, resp_id = "a" * 16, "b" * 16
    keys = kdf.derive_session_keys(master, init_id, resp_id, "A128GCM")
    ctx = N32fContext(resp_id, init_id, "responder", "sepp.v.example", (), "A128GCM", "ES256", keys, master,
                      created=0.0)
    path = tmp_path / "n32.keylog.jsonl"
    keylog.append_keylog(path, keylog.keylog_record(ctx, "sepp-h"))
    with path.open("a") as f:
        f.write("not json\n\n")                      # a torn or foreign line is skipped
    keylog.append_keylog(path, {"sepp": "other"})
    records = keylog.read_keylog(path)
    assert [r["sepp"] for r in records] == ["sepp-h", "other"]
    r = records[0]
    assert (r["initiatorContextId"], r["responderContextId"], r["role"]) == (init_id, resp_id, "responder")
    assert keylog.keys_from_keylog(r) == keys
    assert path.stat().st_mode & 0o777 == 0o600       # it holds master keys
