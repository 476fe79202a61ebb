"""``multipart/related`` bodies (RFC 2046 §5.1, RFC 2387) as the SBI uses them (TS 29.500 §6.1.2.4).

Only what reformatting needs: split a body into parts byte-exactly and write parts back in the
canonical form the lab NFs produce (CRLF line endings, ``name: value`` part headers, no
preamble, ``--boundary--`` CRLF at the end). A body in that form round-trips byte for byte;
any other well-formed body comes back with the same parts (preamble and epilogue dropped, part
header names in lower case).
"""
from __future__ import annotations

import email.message

Part = tuple[list[tuple[str, str]], bytes]   # (part headers, lower-case names; content)


def media_type(content_type: str) -> tuple[str, dict[str, str]]:
    """``'multipart/related; boundary=x'`` -> ``('multipart/related', {'boundary': 'x'})``."""
    m = email.message.Message()
    m["content-type"] = content_type
    params = m.get_params() or []
    return m.get_content_type(), {k.lower(): v for k, v in params[1:]}


def boundary(content_type: str) -> str | None:
    """The boundary of a ``multipart/*`` content type, else None."""
    mtype, params = media_type(content_type)
    return (params.get("boundary") or None) if mtype.startswith("multipart/") else None


def parse(bnd: str, body: bytes) -> list[Part]:
    """Split ``body`` at ``bnd`` into parts; ValueError if it is not a well-formed multipart body."""
    delim = b"\r\n--" + bnd.encode("latin-1")
    segments = (b"\r\n" + body).split(delim)
    if len(segments) < 3 or not segments[-1].startswith(b"--"):
        raise ValueError("multipart body without parts or close delimiter")
    parts: list[Part] = []
    for seg in segments[1:-1]:
        line_end = seg.find(b"\r\n")
        if line_end < 0 or seg[:line_end].strip(b" \t"):
            raise ValueError("malformed multipart delimiter line")
        seg = seg[line_end:]                      # starts with the CRLF that ends the delimiter line
        if seg.startswith(b"\r\n\r\n"):           # a part without headers
            parts.append(([], seg[4:]))
            continue
        head_end = seg.find(b"\r\n\r\n")
        if head_end < 0:
            raise ValueError("multipart part without header section")
        headers: list[tuple[str, str]] = []
        for line in seg[2:head_end].decode("latin-1").split("\r\n"):
            name, sep, value = line.partition(":")
            if not sep or not name.strip():
                raise ValueError(f"malformed multipart part header {line!r}")
            headers.append((name.strip().lower(), value.strip()))
        parts.append((headers, seg[head_end + 4:]))
    return parts


def serialize(bnd: str, parts: list[Part]) -> bytes:
    """Write ``parts`` in canonical form; ValueError if the boundary occurs in a part."""
    b = bnd.encode("latin-1")
    out = bytearray()
    for headers, content in parts:
        if b"\r\n--" + b in b"\r\n" + content:
            raise ValueError("the boundary occurs in a part")
        out += b"--" + b + b"\r\n"
        for name, value in headers:
            out += f"{name}: {value}\r\n".encode("latin-1")
        out += b"\r\n" + content + b"\r\n"
    return bytes(out + b"--" + b + b"--\r\n")
