"""HTTP message <-> DataToIntegrityProtectBlock + dataToEncrypt (TS 29.573 §6.2.5, Annex B;
TS 33.501 §13.2.4.2-13.2.4.3; profile 13-16a, 21-23).

* Every value selected for encryption moves to ``dataToEncrypt`` and is replaced in place by
  ``{"encBlockIndex": n}``; a header's clear value is a plain string.
* JSON body: one HttpPayload per top-level member (``iePath`` = JSON pointer of the member).
* URI path segments and query values: the literal text ``{encBlockIndex:n}`` replaces them in
  ``requestLine.path`` / ``queryFragment`` and a ``URI_PARAM`` payload entry records it.
* multipart/related: the JSON root part as above; every part (root included) gets a
  ``MULTIPART_BINARY`` entry ``/multipart/<i>`` with its raw header text and its bytes (base64,
  or an index when binary parts are encrypted); ``/multipart/framing`` keeps preamble and epilogue,
  so binary parts and framing are restored byte for byte.
* Other bodies: one ``BODY`` entry with iePath ``""`` and value ``{"contentBase64": ...}``.
"""
from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Any, Iterator

from . import errors
from .errors import N32Error
from .message import HttpRequest, HttpResponse

_URI_INDEX = re.compile(r"^\{encBlockIndex:(\d+)\}$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9a-z]+$")


@dataclass(frozen=True)
class IeSelection:
    body: tuple[str, ...] = ()
    headers: tuple[str, ...] = ()
    path_segments: tuple[int, ...] = ()
    query: tuple[str, ...] = ()
    binary_parts: bool = False


def contains_enc_block_index(obj: Any) -> bool:
    if isinstance(obj, dict):
        return "encBlockIndex" in obj or any(contains_enc_block_index(v) for v in obj.values())
    if isinstance(obj, list):
        return any(contains_enc_block_index(v) for v in obj)
    return isinstance(obj, str) and "encBlockIndex" in obj


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _media(ctype: str | None) -> tuple[str, dict[str, str]]:
    if not ctype:
        return "", {}
    main, *params = ctype.split(";")
    out = {}
    for p in params:
        k, _, v = p.strip().partition("=")
        out[k.lower()] = v.strip().strip('"')
    return main.strip().lower(), out


def _is_json(media: str) -> bool:
    return media == "application/json" or media.endswith("+json")


class _Encryptor:
    def __init__(self) -> None:
        self.data: list = []

    def put(self, value: Any) -> dict:
        self.data.append(value)
        return {"encBlockIndex": len(self.data) - 1}

    def select(self, value: Any, patterns: list[list[str]], prefix: list[str]) -> Any:
        """``value`` with every node matching a pattern (relative to ``prefix``) encrypted."""
        for p in patterns:
            if len(p) == len(prefix) and all(a == "*" or a == b for a, b in zip(p, prefix)):
                return self.put(value)
        if not any(len(p) > len(prefix) and all(a == "*" or a == b for a, b in zip(p, prefix)) for p in patterns):
            return value
        if isinstance(value, dict):
            return {k: self.select(v, patterns, prefix + [k]) for k, v in value.items()}
        if isinstance(value, list):
            return [self.select(v, patterns, prefix + [str(i)]) for i, v in enumerate(value)]
        return value


def _split_pattern(pointer: str) -> list[str]:
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:]] if pointer else []


def _reject_index(where: str, obj: Any) -> None:
    # TS 33.501 §5.9.3.2 / profile 16: the sending SEPP rejects NF messages containing encBlockIndex.
    if contains_enc_block_index(obj):
        raise errors.bad_request(f"NF message already contains encBlockIndex in {where}", cause="INVALID_MSG_FORMAT")


def _headers(enc: _Encryptor, headers: list[tuple[str, str]], sel: IeSelection) -> list[dict]:
    out = []
    wanted = {h.lower() for h in sel.headers}
    for name, value in headers:
        _reject_index(f"header {name}", value)
        out.append({"header": name, "value": enc.put(value) if name.lower() in wanted else value})
    return out


def _body(enc: _Encryptor, body: bytes, ctype: str | None, sel: IeSelection) -> list[dict]:
    if not body:
        return []
    media, params = _media(ctype)
    patterns = [_split_pattern(p) for p in sel.body]
    if _is_json(media):
        try:
            doc = json.loads(body)
        except ValueError as e:
            raise errors.bad_request(f"JSON body does not parse: {e}", cause="INVALID_MSG_FORMAT") from None
        return _json_entries(enc, doc, patterns)
    if media == "multipart/related" and params.get("boundary"):
        return _multipart_entries(enc, body, params["boundary"], patterns, sel)
    return [{"iePath": "", "ieValueLocation": "BODY", "value": {"contentBase64": base64.b64encode(body).decode()}}]


def _json_entries(enc: _Encryptor, doc: Any, patterns: list[list[str]]) -> list[dict]:
    _reject_index("the JSON body", doc)
    if isinstance(doc, dict):
        return [{"iePath": "/" + _escape(k), "ieValueLocation": "BODY", "value": enc.select(v, patterns, [k])}
                for k, v in doc.items()]
    return [{"iePath": "", "ieValueLocation": "BODY", "value": enc.select(doc, patterns, [])}]


def _multipart_entries(enc: _Encryptor, body: bytes, boundary: str, patterns: list[list[str]],
                       sel: IeSelection) -> list[dict]:
    delim = b"--" + boundary.encode()
    pieces = body.split(delim)
    if len(pieces) < 3 or not pieces[-1].startswith(b"--"):
        raise errors.bad_request("multipart body without closing delimiter", cause="INVALID_MSG_FORMAT")
    entries: list[dict] = []
    json_done = False
    for i, piece in enumerate(pieces[1:-1]):
        head, sep, content = piece.partition(b"\r\n\r\n")
        if not sep or not content.endswith(b"\r\n"):
            raise errors.bad_request(f"multipart part {i} is malformed", cause="INVALID_MSG_FORMAT")
        content = content[:-2]
        head_text = head.decode("latin-1")
        ctype = next((ln.split(":", 1)[1].strip() for ln in head_text.split("\r\n")
                      if ln.lower().startswith("content-type:")), "")
        if not json_done and _is_json(_media(ctype)[0]):
            json_done = True
            try:
                entries += _json_entries(enc, json.loads(content), patterns)
            except ValueError as e:
                raise errors.bad_request(f"JSON part does not parse: {e}", cause="INVALID_MSG_FORMAT") from None
            data: Any = None
        else:
            raw = base64.b64encode(content).decode()
            data = enc.put(raw) if sel.binary_parts else raw
        entries.append({"iePath": f"/multipart/{i}", "ieValueLocation": "MULTIPART_BINARY",
                        "value": {"headers": head_text, "data": data}})
    entries.append({"iePath": "/multipart/framing", "ieValueLocation": "MULTIPART_BINARY",
                    "value": {"boundary": boundary, "preamble": base64.b64encode(pieces[0]).decode(),
                              "epilogue": base64.b64encode(pieces[-1]).decode()}})
    return entries


def _uri(enc: _Encryptor, path: str, query: str, sel: IeSelection) -> tuple[str, str, list[dict]]:
    entries = []
    segs = path.split("/")[1:] if path.startswith("/") else path.split("/")
    for i in sorted(set(sel.path_segments)):
        if i < len(segs) and segs[i]:
            idx = enc.put(segs[i])["encBlockIndex"]
            segs[i] = f"{{encBlockIndex:{idx}}}"
            entries.append({"iePath": f"/requestLine/path/{i}", "ieValueLocation": "URI_PARAM",
                            "value": {"encBlockIndex": idx}})
    params = query.split("&") if query else []
    wanted = set(sel.query)
    for j, p in enumerate(params):
        name, eq, value = p.partition("=")
        if eq and name in wanted and value:
            idx = enc.put(value)["encBlockIndex"]
            params[j] = f"{name}={{encBlockIndex:{idx}}}"
            entries.append({"iePath": f"/requestLine/query/{_escape(name)}", "ieValueLocation": "URI_PARAM",
                            "value": {"encBlockIndex": idx}})
    return "/" + "/".join(segs), "&".join(params), entries


def reformat_request(req: HttpRequest, sel: IeSelection, meta: dict) -> tuple[dict, list]:
    enc = _Encryptor()
    _reject_index("the request URI", req.path + "?" + req.query)
    path, query, uri_entries = _uri(enc, req.path, req.query, sel)
    line = {"method": req.method, "scheme": req.scheme, "authority": req.authority, "path": path,
            "protocolVersion": "HTTP/2"}
    if query:
        line["queryFragment"] = query
    block: dict[str, Any] = {"metaData": meta, "requestLine": line}
    headers = _headers(enc, req.headers, sel)
    if headers:
        block["headers"] = headers
    payload = uri_entries + _body(enc, req.body, req.header("content-type"), sel)
    if payload:
        block["payload"] = payload
    return block, enc.data


def reformat_response(rsp: HttpResponse, sel: IeSelection, meta: dict) -> tuple[dict, list]:
    enc = _Encryptor()
    block: dict[str, Any] = {"metaData": meta, "statusLine": str(rsp.status)}
    headers = _headers(enc, rsp.headers, sel)
    if headers:
        block["headers"] = headers
    payload = _body(enc, rsp.body, rsp.header("content-type"), sel)
    if payload:
        block["payload"] = payload
    return block, enc.data


# ------------------------------------------------------------------------------ restore
def _fail(reason: str, attribute: str, detail: str) -> N32Error:
    return N32Error(400, errors.MESSAGE_RECONSTRUCTION_FAILED, detail,
                    n32f_error_type=errors.MESSAGE_RECONSTRUCTION_FAILED,
                    error_details=[{"attribute": attribute, "msgReconstructFailReason": reason}])


class _Resolver:
    def __init__(self, data: list) -> None:
        if not isinstance(data, list):
            raise _fail(errors.INVALID_INDEX_TO_ENCRYPTED_BLOCK, "dataToEncrypt", "dataToEncrypt is not an array")
        self.data, self.used = data, [False] * len(data)

    def index(self, n: Any, where: str) -> Any:
        if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n < len(self.data):
            raise _fail(errors.INVALID_INDEX_TO_ENCRYPTED_BLOCK, where, f"encBlockIndex {n!r} at {where} is out of range")
        if self.used[n]:
            raise _fail(errors.INVALID_INDEX_TO_ENCRYPTED_BLOCK, where, f"encBlockIndex {n} is referenced twice")
        self.used[n] = True
        return self.data[n]

    def resolve(self, value: Any, where: str) -> Any:
        if isinstance(value, dict):
            if "encBlockIndex" in value:
                if len(value) != 1:
                    raise _fail(errors.INVALID_INDEX_TO_ENCRYPTED_BLOCK, where, f"malformed index object at {where}")
                return self.index(value["encBlockIndex"], where)
            return {k: self.resolve(v, f"{where}/{_escape(k)}") for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v, f"{where}/{i}") for i, v in enumerate(value)]
        return value

    def finish(self) -> None:
        unused = [i for i, u in enumerate(self.used) if not u]
        if unused:
            raise _fail(errors.INVALID_INDEX_TO_ENCRYPTED_BLOCK, "dataToEncrypt",
                        f"dataToEncrypt entries {unused} are not referenced")


def _restore_headers(res: _Resolver, block: dict) -> list[tuple[str, str]]:
    out = []
    for i, h in enumerate(block.get("headers") or []):
        where = f"/headers/{i}"
        if not isinstance(h, dict) or not isinstance(h.get("header"), str):
            raise _fail(errors.INVALID_HTTP_HEADER, where, f"header entry {i} is malformed")
        name = h["header"].lower()
        value = h.get("value")
        if isinstance(value, dict) and set(value) == {"headerval"}:
            value = value["headerval"]  # TS 29.573 Annex B form
        value = res.resolve(value, where + "/value")
        if not _HEADER_NAME.match(name) or not isinstance(value, str) or "\r" in value or "\n" in value:
            raise _fail(errors.INVALID_HTTP_HEADER, where, f"header {name!r} is not a valid HTTP header")
        out.append((name, value))
    return out


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _restore_body(res: _Resolver, block: dict) -> bytes:
    entries = block.get("payload") or []
    doc: Any = None
    have_json = False
    parts: dict[int, dict] = {}
    framing: dict | None = None
    raw: bytes | None = None
    for i, e in enumerate(entries):
        where = f"/payload/{i}"
        if not isinstance(e, dict) or not isinstance(e.get("iePath"), str):
            raise _fail(errors.INVALID_JSON_POINTER, where, f"payload entry {i} is malformed")
        loc, path, value = e.get("ieValueLocation"), e["iePath"], e.get("value")
        if loc == "URI_PARAM":
            continue
        if loc == "MULTIPART_BINARY":
            if path == "/multipart/framing" and isinstance(value, dict):
                framing = value
            elif path.startswith("/multipart/") and path[11:].isdigit() and isinstance(value, dict):
                parts[int(path[11:])] = {"headers": value.get("headers", ""),
                                         "data": res.resolve(value.get("data"), where + "/value/data")}
            else:
                raise _fail(errors.INVALID_JSON_POINTER, where, f"unknown multipart entry {path!r}")
            continue
        if loc != "BODY":
            raise _fail(errors.INVALID_JSON_POINTER, where, f"unknown ieValueLocation {loc!r}")
        value = res.resolve(value, where + "/value")
        if path == "":
            if isinstance(value, dict) and set(value) == {"contentBase64"}:
                raw = base64.b64decode(value["contentBase64"])
            else:
                doc, have_json = value, True
        else:
            tokens = path.split("/")
            if tokens[0] != "" or len(tokens) != 2:
                raise _fail(errors.INVALID_JSON_POINTER, where, f"iePath {path!r} is not a top-level JSON pointer")
            if doc is None:
                doc = {}
            if not isinstance(doc, dict):
                raise _fail(errors.INVALID_JSON_POINTER, where, "member entries after a whole-body entry")
            doc[_unescape(tokens[1])] = value
            have_json = True
    json_bytes = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode() if have_json else b""
    if framing is not None:
        delim = b"--" + str(framing.get("boundary", "")).encode()
        out = base64.b64decode(framing.get("preamble", ""))
        for n in sorted(parts):
            p = parts[n]
            content = json_bytes if p["data"] is None else base64.b64decode(p["data"])
            out += delim + p["headers"].encode("latin-1") + b"\r\n\r\n" + content + b"\r\n"
        return out + delim + base64.b64decode(framing.get("epilogue", ""))
    return raw if raw is not None else json_bytes


def _restore_uri(res: _Resolver, text: str, sep: str, where: str) -> str:
    out = []
    for tok in text.split(sep):
        if sep == "&":
            name, eq, value = tok.partition("=")
            m = _URI_INDEX.match(value)
            out.append(f"{name}={res.index(int(m.group(1)), where)}" if eq and m else tok)
        else:
            m = _URI_INDEX.match(tok)
            out.append(str(res.index(int(m.group(1)), where)) if m else tok)
    return sep.join(out)


def restore_request(block: dict, data_to_encrypt: list) -> HttpRequest:
    res = _Resolver(data_to_encrypt)
    line = block.get("requestLine")
    if not isinstance(line, dict) or not all(isinstance(line.get(k), str) for k in ("method", "path", "authority")):
        raise _fail(errors.INVALID_JSON_POINTER, "/requestLine", "requestLine is missing or malformed")
    path = _restore_uri(res, line["path"], "/", "/requestLine/path")
    query = _restore_uri(res, line.get("queryFragment") or "", "&", "/requestLine/queryFragment")
    req = HttpRequest(line["method"], line.get("scheme", "https"), line["authority"], path, query,
                      _restore_headers(res, block), _restore_body(res, block))
    res.finish()
    return req


def restore_response(block: dict, data_to_encrypt: list) -> HttpResponse:
    res = _Resolver(data_to_encrypt)
    m = re.search(r"\d{3}", str(block.get("statusLine", "")))
    if not m:
        raise _fail(errors.INVALID_JSON_POINTER, "/statusLine", "statusLine is missing or malformed")
    rsp = HttpResponse(int(m.group(0)), _restore_headers(res, block), _restore_body(res, block))
    res.finish()
    return rsp


def iter_index_objects(obj: Any) -> Iterator[int]:
    if isinstance(obj, dict):
        if "encBlockIndex" in obj:
            yield obj["encBlockIndex"]
        for v in obj.values():
            yield from iter_index_objects(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from iter_index_objects(v)
