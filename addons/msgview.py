"""Text rendering for the "N32-f PRINS" view (addons/n32view.py): the NF's message and its N32-f
form one above the other, with the IEs carried encrypted marked 🔒 in both; binary parts (the NAS
part of a multipart body, TS 29.500 §6.1.2.4) as hex with their content type; long lines wrapped.
"""
from __future__ import annotations

import base64
import binascii
import json
import re
import textwrap
from typing import Any

from n32 import multipart, reformat
from n32.inspect import Decoded
from n32.message import HttpRequest, HttpResponse

MARK = "\U0001f512"
WIDTH = 78   # mitmweb's detail pane shows about 80 columns beside the flow list


def heading(text: str) -> str:
    return f"━━ {text} " + "━" * max(2, WIDTH - len(text) - 4)


def wrap(text: str, width: int = WIDTH) -> str:
    """Each line longer than ``width`` broken, continuation lines indented under their start."""
    out: list[str] = []
    for line in text.split("\n"):
        if len(line) <= width:
            out.append(line)
            continue
        indent = " " * (len(line) - len(line.lstrip(" ")) + 4)
        parts = textwrap.wrap(line, width, subsequent_indent=indent, break_on_hyphens=False,
                              replace_whitespace=False, drop_whitespace=False) or [line]
        if len(parts[0]) < width // 2:   # a long token (URL, token): cut it, not the line before it
            parts = [line[:width]] + [indent + line[i:i + width - len(indent)]
                                      for i in range(width, len(line), width - len(indent))]
        out += parts
    return "\n".join(out)


def hexdump(data: bytes, indent: str = "  ", limit: int = 512) -> list[str]:
    lines = []
    for off in range(0, min(len(data), limit), 16):
        chunk = data[off:off + 16]
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{indent}{off:04x}  {chunk.hex(' '):<47}  |{text}|")
    if len(data) > limit:
        lines.append(f"{indent}… {len(data) - limit} more byte(s)")
    return lines


def _header(headers: list[tuple[str, str]], name: str) -> str:
    return next((v for k, v in headers if k.lower() == name), "")


def body_lines(ctype: str, body: bytes, encrypted_parts: frozenset[str] = frozenset(), indent: str = "") -> list[str]:
    """A body by its content type: JSON pretty-printed, multipart part by part, binary as hex."""
    if not body:
        return []
    bnd = multipart.boundary(ctype) if ctype.lower().startswith("multipart/") else None
    if bnd:
        try:
            parts = multipart.parse(bnd, body)
        except Exception:  # a malformed multipart body is shown as bytes
            return [f"{indent}(multipart body that does not parse, {len(body)} bytes)"] + hexdump(body, indent + "  ")
        out: list[str] = []
        for i, (headers, content) in enumerate(parts):
            pt, cid = _header(headers, "content-type") or "text/plain", _header(headers, "content-id")
            lock = f"  {MARK} encrypted on N32-f" if cid and cid.strip("<>") in encrypted_parts else ""
            out += ["", f"{indent}── part {i + 1}: {pt}" + (f", Content-ID {cid}" if cid else "")
                    + f", {len(content)} bytes{lock}"]
            out += body_lines(pt, content, encrypted_parts, indent + "  ")
        return out
    if "json" in ctype.lower():
        try:
            text = _unquote_marked(json.dumps(json.loads(body), indent=2, ensure_ascii=False))
            return [indent + line for line in text.split("\n")]
        except (ValueError, UnicodeDecodeError):
            pass
    try:
        text = body.decode("utf-8")
        if all(c.isprintable() or c in "\r\n\t" for c in text):
            return [indent + line for line in text.split("\n")]
    except UnicodeDecodeError:
        pass
    return [f"{indent}({ctype or 'no content type'}, {len(body)} bytes, hex)"] + hexdump(body, indent + "  ")


def message_lines(msg: HttpRequest | HttpResponse, encrypted_parts: frozenset[str] = frozenset()) -> list[str]:
    if isinstance(msg, HttpRequest):
        start = f"{msg.method} {msg.scheme}://{msg.authority}{msg.target}"
    else:
        start = f"status {msg.status}"
    lines = [start] + [f"{k}: {v}" for k, v in msg.headers] + [""]
    return lines + body_lines(_header(msg.headers, "content-type"), msg.body, encrypted_parts)


# ---------------------------------------------------------------------- the NF's message, restored
def _binary_blocks(block: dict) -> dict[int, str]:
    """encBlockIndex -> Content-ID of each multipart binary part carried encrypted."""
    out = {}
    for p in block.get("payload") or []:
        v = p.get("value") if isinstance(p, dict) else None
        if isinstance(v, dict) and p.get("ieValueLocation") == reformat.MULTIPART_BINARY:
            d = v.get("data")
            if isinstance(d, dict) and isinstance(d.get("encBlockIndex"), int):
                out[d["encBlockIndex"]] = str(v.get("contentId") or "")
    return out


def _mark(value: Any) -> Any:
    """A marked value; a non-string one travels as ``🔒§<JSON>§`` and is shown as 🔒<JSON> (unquoted)."""
    return f"{MARK}{value}" if isinstance(value, str) else f"{MARK}§{json.dumps(value, ensure_ascii=False)}§"


_MARKED_JSON = re.compile('"' + MARK + r'§((?:[^"\\]|\\.)*)§"')


def _unquote_marked(text: str) -> str:
    return _MARKED_JSON.sub(lambda m: MARK + json.loads('"' + m.group(1) + '"'), text)


def restored_lines(d: Decoded) -> list[str] | None:
    """The NF's message rebuilt from the decrypted block, each IE that was encrypted marked; None
    without a key (nothing to rebuild it from)."""
    if d.data_to_encrypt is None:
        return None
    binary = _binary_blocks(d.block)
    marked = [v if i in binary else _mark(v) for i, v in enumerate(d.data_to_encrypt)]
    restore = reformat.restore_request if d.kind == "request" else reformat.restore_response
    for data in (marked, d.data_to_encrypt):   # marks may not fit a place (e.g. a typed value)
        try:
            return message_lines(restore(d.block, data), frozenset(binary.values()))
        except Exception:  # shown, not enforced: the SEPP checks the message itself
            continue
    return None


# ---------------------------------------------------------------------- the N32-f form
def _as_carried(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"encBlockIndex"}:
            return f"{MARK}#{value['encBlockIndex']}"
        return {k: _as_carried(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_carried(v) for v in value]
    return value


def n32f_form_lines(d: Decoded) -> list[str]:
    """The clear part as carried: each encrypted IE is 🔒#n (its index in dataToEncrypt), binary
    data as hex with its content type."""
    b = d.block
    lines: list[str] = []
    if isinstance(b.get("requestLine"), dict):
        rl = b["requestLine"]
        path = reformat_uri(rl.get("path", ""))
        q = reformat_uri(rl.get("queryFragment") or "")
        lines.append(f"requestLine: {rl.get('method')} {rl.get('scheme')}://{rl.get('authority')}{path}"
                     + (f"?{q}" if q else ""))
    else:
        lines.append(f"statusLine: {b.get('statusLine')}")
    for h in b.get("headers") or []:
        if isinstance(h, dict):
            lines.append(f"header {h.get('header')}: {json.dumps(_as_carried(h.get('value')), ensure_ascii=False)}")
    for p in b.get("payload") or []:
        if not isinstance(p, dict):
            continue
        v = p.get("value")
        where = f"payload {p.get('iePath') or '(root)'} [{p.get('ieValueLocation')}]"
        if p.get("ieValueLocation") == reformat.MULTIPART_BINARY and isinstance(v, dict) and "data" in v:
            meta = {k: x for k, x in v.items() if k != "data"}
            lines.append(f"{where} {json.dumps(meta, ensure_ascii=False)}")
            data = v["data"]
            if isinstance(data, dict) and isinstance(data.get("encBlockIndex"), int):
                n = data["encBlockIndex"]
                raw = _b64(d.data_to_encrypt[n]) if d.data_to_encrypt and n < len(d.data_to_encrypt) else None
                lines.append(f"  data: {MARK}#{n} ({v.get('contentType')}, carried encrypted)"
                             + ("" if raw is None else f", clear {len(raw)} bytes:"))
                lines += hexdump(raw, "    ") if raw is not None else []
            else:
                raw = _b64(data)
                lines.append(f"  data ({v.get('contentType')}, {len(raw) if raw is not None else '?'} bytes):")
                lines += hexdump(raw, "    ") if raw is not None else [f"    {data!r}"]
        else:
            lines.append(f"{where} = {json.dumps(_as_carried(v), ensure_ascii=False)}")
    if d.data_to_encrypt is not None:
        lines += ["", f"dataToEncrypt (in the JWE ciphertext, {len(d.data_to_encrypt)} value(s)):"]
        binary = _binary_blocks(b)
        for i, v in enumerate(d.data_to_encrypt):
            shown = f"{v[:24]}… (base64, part {binary[i]})" if i in binary and isinstance(v, str) and len(v) > 24 \
                else json.dumps(v, ensure_ascii=False)
            lines.append(f"  {MARK}#{i} = {shown}")
    return lines


def reformat_uri(text: str) -> str:
    return re.sub(r'\{\s*"?encBlockIndex"?\s*:\s*(\d+)\s*\}', lambda m: f"{{{MARK}#{m.group(1)}}}", text or "")


def _b64(value: Any) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value + "=" * (-len(value) % 4), altchars=b"-_" if "-" in value or "_" in value
                                else None)
    except (binascii.Error, ValueError):
        return None
