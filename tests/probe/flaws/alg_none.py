"""FLAW (test process only): a modificationsBlock entry with ``alg: none`` is taken as verified."""
import json

from n32 import jwe, jws

_orig = jws.verify_modifications


def _flawed(entry, keys):
    try:
        header = json.loads(jwe.b64url_decode(entry["protected"]))
    except Exception:  # noqa: BLE001
        header = {}
    if header.get("alg") == "none":
        payload = json.loads(jwe.b64url_decode(entry["payload"]))
        return {**payload, "operations": payload.get("operations") or []}
    return _orig(entry, keys)


jws.verify_modifications = _flawed
