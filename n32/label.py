"""One line a person can read for each exchange: API and operation, UE, peer, context, hop, verdict.

Pure: the adapters (addons/sepp.py, addons/ipx.py) put the text in mitmproxy's own places
(``flow.comment``, the flow list's comment column, a mark on rejected messages). The API names
come from the placement files (``api`` + the first segment of their paths, TS 29.501 §4.4.1:
``{apiRoot}/{apiName}/{apiVersion}/...``); an API no file names shows as its path segment.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import yaml

from . import body as body_mod
from .errors import N32Error
from .exchange import Exchange

SEP = " · "
# SUPI / SUCI / GPSI forms (TS 29.571 §5.3.2: Supi, Gpsi; TS 29.509: SuciOrSupi)
_UE = re.compile(r"^(imsi-\d{5,15}|nai-.+|suci-[\w.-]+|msisdn-\d{5,15}|extid-.+|gci-.+|gli-.+|5g-guti-[0-9a-f]+)$")
_UE_KEYS = ("supi", "supiOrSuci", "ueId", "gpsi")
_VERSION = re.compile(r"^v\d+$")


def load_api_names(placement_files: Iterable[Path]) -> dict[str, str]:
    """``{"nausf-auth": "Nausf_UEAuthentication", ...}`` from placement files (loader: file I/O)."""
    names: dict[str, str] = {}
    for f in placement_files:
        for p in sorted(Path(f).glob("*.yaml")) if Path(f).is_dir() else [Path(f)]:
            try:
                doc = yaml.safe_load(p.read_text()) or {}
            except (OSError, yaml.YAMLError):
                continue
            for e in doc.get("entries") or []:
                seg = str(e.get("path", "")).split("/")[1:2]
                if seg and doc.get("api"):
                    names.setdefault(seg[0], str(doc["api"]))
    return names


def api_operation(method: str, path: str, apis: Mapping[str, str]) -> str:
    """``Nausf_UEAuthentication POST ue-authentications/5g-aka-confirmation``: identifiers left out."""
    segs = [s for s in path.split("?")[0].split("/") if s]
    if not segs:
        return f"{method} /"
    api = apis.get(segs[0], segs[0])
    rest = segs[2:] if len(segs) > 1 and _VERSION.match(segs[1]) else segs[1:]
    words = [s for s in rest if not _is_identifier(s)]
    return f"{api} {method} {'/'.join(words) or '/'}"


def _is_identifier(seg: str) -> bool:
    """A resource identifier (UE ID, UUID, number, opaque token), not an operation word."""
    return bool(_UE.match(seg)) or not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", seg) \
        or bool(re.fullmatch(r"\d+|(?=.*\d)[0-9a-f-]{6,}", seg))


def ue_of(path: str, *bodies: bytes | None) -> str | None:
    """The UE the message is about: an identifier in the path, else ``supi``/``supiOrSuci``/... in a body."""
    for seg in (path or "").split("?")[0].split("/"):
        if _UE.match(seg):
            return seg
    for body in bodies:
        if not body or len(body) > 1 << 20 or not body.lstrip().startswith(b"{"):
            continue
        try:    # under the body limits (depth first): hostile bodies reach this label too (issue 13 item 2)
            doc = body_mod.loads(body)
        except N32Error:
            continue
        for k in _UE_KEYS:
            v = doc.get(k) if isinstance(doc, dict) else None
            if isinstance(v, str) and _UE.match(v):
                return v
    return None


def short_ue(ue: str) -> str:
    """A SUCI is long: its scheme output's last 10 characters identify it in a list."""
    if len(ue) <= 24:
        return ue
    kind = re.match(r"^(5g-guti-|[a-z]+-)", ue)
    return f"{kind.group(1) if kind else ''}…{ue[-10:]}"


def verdict(ex: Exchange, status: int | None) -> str:
    if ex.error:
        return f"REJECTED {ex.error.get('status')} {ex.error.get('cause') or ''}".rstrip()
    if ex.rh_error:
        return f"REJECTED by {ex.rh_error.get('hub')} {ex.status or ''} {ex.rh_error.get('cause') or ''}".rstrip()
    return str(status if status is not None else ex.status) if (status or ex.status) else "pending"


def rejected(ex: Exchange) -> bool:
    return bool(ex.error or ex.rh_error)


def sepp_label(ex: Exchange, apis: Mapping[str, str], *, ue: str | None = None, next_hop: str | None = None,
               status: int | None = None) -> str:
    """The label of one SEPP exchange (``next_hop``: where we sent it, when not the peer itself)."""
    if ex.role == "n32c":
        what = f"N32-c {ex.operation}"
    elif ex.role == "local":
        what = f"local {ex.operation}"
    elif ex.method and ex.path:
        what = api_operation(ex.method, ex.path, apis)
    else:
        what = "N32-f" if ex.listener and ex.listener.value != "sbi" else "SBI"
    parts = [what]
    if ue:
        parts.append(f"UE {short_ue(ue)}")
    if ex.peer:
        parts.append(f"{'from' if ex.role in ('receiving', 'tls-receiving', 'n32c') else 'to'} {ex.peer}")
    if ex.context:
        parts.append(f"ctx {ex.context[:8]}")
    hop = _hop(ex, next_hop)
    if hop:
        parts.append(hop)
    if ex.mode and ex.role == "sending":
        parts.append(ex.mode)
    if ex.encrypted or ex.encrypted_response:
        parts.append(f"🔒{ex.encrypted}/{ex.encrypted_response}")
    if ex.ipx_modified_by:
        parts.append("patched by " + ",".join(ex.ipx_modified_by))
    parts.append(verdict(ex, status))
    return SEP.join(parts)


def _hop(ex: Exchange, next_hop: str | None) -> str | None:
    if ex.via_ipx:
        return f"via {ex.via_ipx}"
    if ex.role == "sending" and next_hop and next_hop != ex.peer:
        return f"via {next_hop}"
    return None


def n32c_label(operation: str, peer: str, role: str, status: int | None) -> str:
    """A handshake request of the N32-c initiator (made by the SEPP itself, TS 29.573 §5.2)."""
    return SEP.join([f"N32-c {operation}", f"{'to' if role == 'initiator' else 'from'} {peer}", role,
                     str(status) if status is not None else "failed"])


def ipx_label(identity: str, meta: Mapping, apis: Mapping[str, str], status: int | None,
              block: Mapping | None = None) -> str:
    """The label of one message relayed by a roaming intermediary (flow.metadata["ipx"]); ``block``:
    the clear part of the N32-f request (its requestLine and metaData are readable by an IPX)."""
    parts = [f"IPX {identity}"]
    line = (block or {}).get("requestLine")
    if isinstance(line, Mapping) and isinstance(line.get("method"), str) and isinstance(line.get("path"), str):
        parts.append(api_operation(line["method"], line["path"], apis))
    md = (block or {}).get("metaData")
    if isinstance(md, Mapping) and isinstance(md.get("n32fContextId"), str):
        parts.append(f"ctx {md['n32fContextId'][:8]}")
    if meta.get("nextHopName") or meta.get("nextHop"):
        parts.append(f"→ {meta.get('nextHopName') or _host(str(meta['nextHop']))}")
    ops = [len(meta.get("requestOperations") or []), len(meta.get("responseOperations") or [])]
    if any(ops):
        parts.append(f"patched {ops[0]}/{ops[1]} op(s)")
    rej = meta.get("rejected")
    if rej:
        parts.append(f"REJECTED {rej.get('cause') or json.dumps(dict(rej), separators=(',', ':'))}"
                     if isinstance(rej, Mapping) else f"REJECTED {rej}")
    elif meta.get("failed"):
        parts.append(f"next hop {meta['failed']}")
    else:
        parts.append(str(status) if status is not None else "pending")
    return SEP.join(parts)


def _host(uri: str) -> str:
    return re.sub(r"^\w+://", "", uri).split("/")[0]
