"""HTTP message <-> DataToIntegrityProtectBlock + dataToEncrypt (TS 29.573 §6.2.5, Annex B).

The sending SEPP (TS 33.501 §13.2.4.2-13.2.4.3) keeps the whole message in the clear block and
moves each value its protection policy selects into ``dataToEncrypt``, leaving
``{"encBlockIndex": n}`` in its place (profile 13). The receiving SEPP puts the values back.
Representation (profile 14, 16a, 21-23; docs/policies.md "Reformatting"):

* ``requestLine`` / ``statusLine``; an encrypted path segment or query value is written as the
  literal ``{encBlockIndex:n}`` there and recorded by a ``URI_PARAM`` payload entry;
* ``headers``: one HttpHeader per header line, lower-case names, in order;
* ``payload``: a JSON object body gives one ``BODY`` entry per top-level member; any other JSON
  body one entry with ``iePath`` ``""``; a non-JSON body ``{"contentBase64": ...}`` at ``""``;
  a ``multipart/*`` body one ``MULTIPART_BINARY`` entry per part, the JSON root part's content
  as ``BODY`` entries.

JSON bodies are restored as compact UTF-8 JSON (equal as data, not as bytes); everything else,
multipart framing and binary parts included, byte for byte.
"""
from __future__ import annotations

import base64
import binascii
import functools
import re
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import unquote_plus

import jsonpointer

from . import errors, jwe, multipart, wire
from .body import check as check_json_limits
from .errors import N32Error
from .message import HttpRequest, HttpResponse

INDEX = "encBlockIndex"
PROTOCOL_VERSION = "HTTP/2"
BODY, URI_PARAM, MULTIPART_BINARY = "BODY", "URI_PARAM", "MULTIPART_BINARY"
OPAQUE = "contentBase64"        # member of the single payload value of a non-JSON body
_PLACEHOLDER = re.compile(r"\{encBlockIndex:([0-9]+)\}")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")        # RFC 9110 §5.6.2
MAX_DEPTH = 100                 # nesting the restorer walks (far beyond any SBI body; Python's stack is not)
_CONTAINERS = (dict, list)
_STATUS = re.compile(r"(?<![0-9])([1-5][0-9]{2})(?![0-9])")
_BAD_PSEUDO = re.compile(r"[ \t\r\n\0]")
_BAD_SEGMENT = re.compile(r"[/?# \t\r\n\0]")
_BAD_QUERY_VALUE = re.compile(r"[&# \t\r\n\0]")
_BAD_HEADER_VALUE = re.compile(r"[\r\n\0]")
_BAD_TILDE = re.compile(r"~(?![01])")
_CONNECTION_HEADERS = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"}


def _has_bad_pseudo_char(text: str) -> bool:
    """``_BAD_PSEUDO.search(text)``, by substring tests in C (a character class makes the
    regular expression engine step through every character: 2 µs for a 400-character token)."""
    return " " in text or "\t" in text or "\r" in text or "\n" in text or "\0" in text


@dataclass(frozen=True)
class IeSelection:
    """What to encrypt in one message (built by :mod:`n32.policy`)."""

    body: tuple[str, ...] = ()          # JSON pointer patterns into the JSON body; "*" = any one token
    headers: tuple[str, ...] = ()       # lower-case header names
    path_segments: tuple[int, ...] = ()  # 0-based segment indices after the leading "/"
    query: tuple[str, ...] = ()         # query parameter names
    binary_parts: bool = False          # encrypt multipart binary parts (and non-JSON bodies)

    @functools.cached_property
    def body_parts(self) -> tuple[tuple[str, ...], ...]:
        """``body`` as token lists, parsed once per selection (selections are cached by the policy)."""
        return tuple(tuple(jsonpointer.JsonPointer(p).parts) for p in self.body)

    @functools.cached_property
    def body_tree(self) -> _Patterns | None:
        """``body_parts`` compiled for the walk over a body (None: nothing selected in bodies)."""
        return _Patterns(self.body_parts) if self.body_parts else None


class _Patterns:
    """A non-empty set of pointer patterns (token tuples) at one place of a document, with the
    sets for the places below it computed once and remembered (for a bounded number of names:
    the names come from the documents, so from peers and NFs)."""

    __slots__ = ("patterns", "whole", "star", "heads", "_below")
    REMEMBERED = 256

    def __init__(self, patterns: tuple[tuple[str, ...], ...]) -> None:
        self.patterns = patterns
        self.whole = any(not p for p in patterns)           # a pattern ends here: this value is selected
        self.star = any(p[0] == "*" for p in patterns if p)
        self.heads = tuple(dict.fromkeys(p[0] for p in patterns if p))
        self._below: dict[str, _Patterns | None] = {}

    def below(self, token: str) -> _Patterns | None:
        """The patterns for member or index ``token``, None if none reaches it."""
        try:
            return self._below[token]
        except KeyError:
            rest = tuple(p[1:] for p in self.patterns if p and p[0] in ("*", token))
            out = _Patterns(rest) if rest else None
            if len(self._below) < self.REMEMBERED:
                self._below[token] = out
            return out


def contains_enc_block_index(obj: Any) -> bool:
    """True if parsed JSON ``obj`` has a member named ``encBlockIndex`` at any depth (profile 16)."""
    if isinstance(obj, dict):
        return INDEX in obj or any(contains_enc_block_index(v) for v in obj.values())
    if isinstance(obj, list):
        return any(contains_enc_block_index(v) for v in obj)
    return False


# ----------------------------------------------------------------------------- sending side
class _Encrypted:
    """The dataToEncrypt array under construction; indices in order of appearance."""

    def __init__(self) -> None:
        self.data: list[Any] = []

    def put(self, value: Any) -> dict:
        self.data.append(value)
        return {INDEX: len(self.data) - 1}


def _rejected(where: str) -> N32Error:
    return N32Error(400, "INVALID_MSG_FORMAT",
                    f"{where} already contains encBlockIndex (TS 33.501 §5.9.3.2, §13.2.4.1)")


def reformat_request(req: HttpRequest, sel: IeSelection, meta: dict) -> tuple[dict, list]:
    """(DataToIntegrityProtectBlock, dataToEncrypt) of a request from a local NF."""
    for where, text in (("the request path", req.path), ("the query", req.query)):
        if INDEX in text:
            raise _rejected(where)
    enc = _Encrypted()
    payload: list[dict] = []
    line = {"method": req.method, "scheme": req.scheme, "authority": req.authority,
            "path": _protect_path(req.path, sel.path_segments, enc, payload),
            "protocolVersion": PROTOCOL_VERSION}
    if req.query:
        line["queryFragment"] = _protect_query(req.query, sel.query, enc, payload)
    return _with_headers_and_body({"metaData": meta, "requestLine": line}, req.headers, req.body, sel, enc,
                                  payload)


def reformat_response(rsp: HttpResponse, sel: IeSelection, meta: dict) -> tuple[dict, list]:
    """(DataToIntegrityProtectBlock, dataToEncrypt) of a response from a local NF."""
    block = {"metaData": meta, "statusLine": str(rsp.status)}
    return _with_headers_and_body(block, rsp.headers, rsp.body, sel, _Encrypted(), [])


def _with_headers_and_body(block: dict, headers: list[tuple[str, str]], body: bytes, sel: IeSelection,
                           enc: _Encrypted, payload: list[dict]) -> tuple[dict, list]:
    ctype = ""
    if headers:
        block["headers"], ctype = _protect_headers(headers, sel.headers, enc)
    payload += _protect_body(ctype, body, sel, enc)
    if payload:
        block["payload"] = payload
    return block, enc.data


def _protect_path(path: str, indices: tuple[int, ...], enc: _Encrypted, payload: list[dict]) -> str:
    if not indices:
        return path
    segments = path.split("/")              # segments[0] is "" (the leading "/")
    for i in sorted(set(indices)):
        if 0 <= i < len(segments) - 1:
            ref = enc.put(segments[i + 1])
            segments[i + 1] = "{%s:%d}" % (INDEX, ref[INDEX])
            payload.append({"iePath": f"/requestLine/path/{i}", "ieValueLocation": URI_PARAM, "value": ref})
    return "/".join(segments)


def _protect_query(query: str, names: tuple[str, ...], enc: _Encrypted, payload: list[dict]) -> str:
    if not names:
        return query
    pieces = query.split("&")
    for k, piece in enumerate(pieces):
        name, sep, value = piece.partition("=")
        if sep and unquote_plus(name) in names:
            ref = enc.put(value)
            pieces[k] = "%s={%s:%d}" % (name, INDEX, ref[INDEX])
            payload.append({"iePath": _pointer(["requestLine", "query", name]), "ieValueLocation": URI_PARAM,
                            "value": ref})
    return "&".join(pieces)


def _protect_headers(headers: list[tuple[str, str]], names: tuple[str, ...], enc: _Encrypted
                     ) -> tuple[list[dict], str]:
    """The HttpHeader list, and the first content-type value (read in the same pass)."""
    out: list[dict] = []
    ctype = None
    for name, value in headers:
        name = name.lower()
        if INDEX in value:
            raise _rejected(f"header {name}")
        if ctype is None and name == "content-type":
            ctype = value
        out.append({"header": name, "value": enc.put(value) if name in names else value})
    return out, ctype or ""


def _protect_body(ctype: str, body: bytes, sel: IeSelection, enc: _Encrypted) -> list[dict]:
    if not body:
        return []
    mtype = _media_type(ctype)
    if mtype.startswith("multipart/"):
        return _protect_multipart(ctype, body, sel, enc)
    if _is_json(ctype):
        return _json_entries(_select(_parse_json(body, "the JSON body"), sel.body_tree, enc))
    return [{"iePath": "", "ieValueLocation": BODY, "value": {OPAQUE: _binary(body, sel.binary_parts, enc)}}]


def _protect_multipart(ctype: str, body: bytes, sel: IeSelection, enc: _Encrypted) -> list[dict]:
    bnd = multipart.boundary(ctype)
    try:
        if not bnd:
            raise ValueError("content-type without boundary")
        parts = multipart.parse(bnd, body)
    except ValueError as e:
        raise N32Error(400, "INVALID_MSG_FORMAT", f"multipart body: {e}") from None
    entries: list[dict] = []
    for n, (headers, content) in enumerate(parts):
        value: dict[str, Any] = {}
        others = list(headers)
        for key, name in (("contentType", "content-type"), ("contentId", "content-id")):
            found = next((h for h in others if h[0] == name), None)
            if found:
                value[key] = found[1]
                others.remove(found)
        if others:
            value["headers"] = [{"header": k, "value": v} for k, v in others]
        json_root = n == 0 and _is_json(value.get("contentType", ""))
        if not json_root:
            value["data"] = _binary(content, sel.binary_parts, enc)
        cid = value.get("contentId", "").strip("<>")
        entries.append({"iePath": _pointer([cid]) if cid else "", "ieValueLocation": MULTIPART_BINARY,
                        "value": value})
        if json_root:   # its content: BODY entries right after the part entry
            entries += _json_entries(_select(_parse_json(content, "the multipart root part"), sel.body_tree, enc))
    return entries


def _parse_json(raw: bytes, where: str) -> Any:
    check_json_limits(raw, where=where)     # limits before the parser (n32/body.py)
    try:
        doc = jwe.json_loads(raw)
    except (ValueError, RecursionError) as e:
        raise N32Error(400, "INVALID_MSG_FORMAT", f"{where} is declared JSON but is not: {e}") from None
    # The member name can only be there literally or written with \u escapes (RFC 8259 §7).
    if ((0x42 in raw and raw.find(_INDEX_BYTES) >= 0) or _has_u_escape(raw)) and contains_enc_block_index(doc):
        raise _rejected(where)
    return doc


def _select(doc: Any, patterns: _Patterns | None, enc: _Encrypted) -> Any:
    """``doc`` with every value a pattern selects replaced by an index (outermost match wins).

    Only the members a pattern names are visited and copied: ``doc`` is freshly parsed and ours."""
    return doc if patterns is None else _walk(doc, patterns, enc)


def _walk(node: Any, patterns: _Patterns, enc: _Encrypted) -> Any:
    if patterns.whole:
        return enc.put(node)
    if isinstance(node, dict):
        if patterns.star:
            below = patterns.below
            return {k: v if (p := below(k)) is None else _walk(v, p, enc) for k, v in node.items()}
        heads = [k for k in patterns.heads if k in node]
        if not heads:
            return node
        if len(heads) > 1:      # indices are numbered in document order
            position = {k: i for i, k in enumerate(node)}
            heads.sort(key=position.__getitem__)
        out = dict(node)
        for k in heads:
            out[k] = _walk(node[k], patterns.below(k), enc)   # type: ignore[arg-type]  # a head: not None
        return out
    if isinstance(node, list):
        below = patterns.below
        return [v if (p := below(str(i))) is None else _walk(v, p, enc) for i, v in enumerate(node)]
    return node


def _json_entries(doc: Any) -> list[dict]:
    if isinstance(doc, dict) and doc and INDEX not in doc:
        return [{"iePath": "/" + k if "~" not in k and "/" not in k else _pointer([k]), "ieValueLocation": BODY,
                 "value": v} for k, v in doc.items()]
    return [{"iePath": "", "ieValueLocation": BODY, "value": doc}]


def _binary(content: bytes, encrypt: bool, enc: _Encrypted) -> Any:
    data = base64.b64encode(content).decode("ascii")
    return enc.put(data) if encrypt else data


# ----------------------------------------------------------------------------- receiving side
def index_bound(text: bytes) -> int | None:
    """At most how many index objects the block parsed from the JSON ``text`` holds: the member
    name is in the text as ``"encBlockIndex"`` unless written with \\u escapes (None: unknown);
    a string or a duplicate name with that text only makes the bound larger. The restorer stops
    looking once it has found that many."""
    return None if _has_u_escape(text) else text.count(_QUOTED_INDEX)   # 0.2 µs for a 700-octet block


def _has_u_escape(text: bytes) -> bool:
    """Whether JSON ``text`` has a \\u escape: a backslash looked for first (memchr; most texts have
    none), and ``bytes.find``, not ``in`` (which first tries the operand as an integer)."""
    return 0x5C in text and text.find(b"\\u") >= 0


_UNCOUNTED: Any = object()
_INDEX_BYTES = INDEX.encode()
_QUOTED_INDEX = b'"encBlockIndex"'


def restore_request(block: dict, data_to_encrypt: list, text: bytes | None = None) -> HttpRequest:
    """The HTTP request a verified (and IPX-patched) block describes (TS 33.501 §13.2.4.7 step 8).
    ``text``: the JSON text the block was parsed from, if it is the block as parsed (not patched)."""
    r = _Restorer(block, data_to_encrypt, text)
    line = block.get("requestLine")
    if not isinstance(line, dict):
        _fail("/requestLine", errors.INVALID_HTTP_HEADER, "requestLine missing")
    method, scheme, authority, path = line.get("method"), line.get("scheme"), line.get("authority"), line.get("path")
    # one check of the four for the usual request; the first bad one is named by r.pseudo
    if not (type(method) is str and type(scheme) is str and type(authority) is str and type(path) is str
            and method and scheme and authority and path
            and not _has_bad_pseudo_char(whole := method + scheme + authority + path)
            and (whole.isascii() or _sendable(whole))):
        method, scheme, authority, path = (r.pseudo(line, k) for k in ("method", "scheme", "authority", "path"))
    headers = r.headers()
    uri_entries, parts, json_entries = r.payload(allow_uri=True)
    path, query = r.uri(path, line.get("queryFragment"), uri_entries)
    body = r.body(parts, json_entries, headers)
    if len(r.used) != len(r.data):      # r.done() names the unused values
        r.done()
    return HttpRequest(method, scheme, authority, path, query, _with_length(headers, body) if r.length else headers,
                       body)


def restore_response(block: dict, data_to_encrypt: list, text: bytes | None = None) -> HttpResponse:
    """The HTTP response a verified block describes; status = first 3-digit number (profile 21)."""
    r = _Restorer(block, data_to_encrypt, text)
    line = block.get("statusLine")
    if type(line) is str and len(line) == 3 and line.isascii() and line.isdigit() and "1" <= line[0] <= "5":
        status = int(line)      # the form we send: what the search below finds in it
    else:
        m = _STATUS.search(str(line)) if type(line) in (str, int) else None
        if m is None:
            _fail("/statusLine", errors.INVALID_HTTP_HEADER, "statusLine without a status code")
        status = int(m.group(1))
    headers = r.headers()
    _, parts, json_entries = r.payload(allow_uri=False)
    body = r.body(parts, json_entries, headers)
    if len(r.used) != len(r.data):
        r.done()
    return HttpResponse(status, _with_length(headers, body) if r.length else headers, body)


# Pointer to a place in the block, built lazily: a string, or (parent, member name or index).
Where = str | tuple


def _where(where: Where) -> str:
    tokens: list[str] = []
    while isinstance(where, tuple):
        where, token = where
        tokens.append(str(token).replace("~", "~0").replace("/", "~1"))
    return where + "".join("/" + t for t in reversed(tokens))


def _show(value: Any, limit: int = 80) -> str:
    """A bounded rendering of a hostile value for a detail (never the whole of it)."""
    if isinstance(value, dict):
        text = "{" + ", ".join(f"{str(k)[:limit]!r}: {_show(v, limit)}" for k, v in list(value.items())[:3]) + "}"
    elif isinstance(value, list):
        text = f"[{len(value)} items]"
    else:
        text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _fail(where: str, reason: str, detail: str) -> NoReturn:
    """The verified block cannot be turned back into an HTTP message: 403 like every other N32-f
    error type (TS 29.573 ProblemDetailsMsgForwarding; docs/interop-profile.md)."""
    raise N32Error(403, errors.MESSAGE_RECONSTRUCTION_FAILED, f"{where or '/'}: {detail}",
                   n32f_error_type=errors.MESSAGE_RECONSTRUCTION_FAILED,
                   error_details=[{"attribute": where or "/", "msgReconstructFailReason": reason}])


class _Restorer:
    """Resolves index objects against dataToEncrypt; each value must be used exactly once."""

    def __init__(self, block: Any, data: Any, text: bytes | None = None) -> None:
        if not isinstance(block, dict):
            _fail("", errors.INVALID_JSON_POINTER, "DataToIntegrityProtectBlock is not an object")
        if not isinstance(data, list):
            _fail("/dataToEncrypt", errors.INVALID_INDEX_TO_ENCRYPTED_BLOCK, "dataToEncrypt is not an array")
        self.block, self.data, self.used = block, data, set()
        self.length = False             # a content-length header to set to the restored body's
        # how many index objects the block can hold (None: unknown), counted in ``text`` when
        # first needed: once that many are found, the rest of the clear values need not be
        # walked (the common case: the containers after the last encrypted IE)
        self.text, self.bound = text, (_UNCOUNTED if text is not None else None)

    def take(self, ref: dict, where: Where) -> Any:
        n = ref.get(INDEX)
        if len(ref) != 1 or type(n) is not int or not 0 <= n < len(self.data):
            _fail(_where(where), errors.INVALID_INDEX_TO_ENCRYPTED_BLOCK,
                  f"{_show(ref)} does not index the {len(self.data)} encrypted values")
        if n in self.used:
            _fail(_where(where), errors.INVALID_INDEX_TO_ENCRYPTED_BLOCK, f"encrypted value {n} is referenced twice")
        self.used.add(n)
        return self.data[n]

    def found_all(self) -> bool:
        """Whether every index object the block's text can hold has been taken already."""
        bound = self.bound
        if bound is _UNCOUNTED:     # index_bound(self.text), without its two calls (once per message)
            text = self.text
            bound = self.bound = None if 0x5C in text and text.find(b"\\u") >= 0 else text.count(_QUOTED_INDEX)
        return bound is not None and len(self.used) >= bound

    def resolve(self, node: Any, where: Where, depth: int = 0) -> Any:
        """``node`` with its index objects replaced by their values; parts without any are the
        same objects (not copied). ``where`` is built into a pointer only for an error."""
        if type(node) is dict:
            if INDEX in node:
                return self.take(node, where)
            items: Any = node.items()
        elif type(node) is list:
            items = enumerate(node)
        else:
            return node
        if self.bound is not None and self.found_all():
            return node
        if depth >= MAX_DEPTH:
            _fail(_where(where), errors.INVALID_JSON_POINTER, f"nested deeper than {MAX_DEPTH} levels")
        out = None
        for k, v in items:
            if type(v) is dict or type(v) is list:
                r = self.resolve(v, (where, k), depth + 1)
                if r is not v:
                    if out is None:
                        out = dict(node) if type(node) is dict else list(node)
                    out[k] = r
        return node if out is None else out

    def done(self) -> None:
        if len(self.used) == len(self.data):    # every index taken is one of range(len(data))
            return
        unused = [n for n in range(len(self.data)) if n not in self.used]
        if unused:
            _fail(f"/dataToEncrypt/{unused[0]}", errors.INVALID_INDEX_TO_ENCRYPTED_BLOCK,
                  f"encrypted values {unused} are referenced nowhere")

    # ---- request line and headers
    def pseudo(self, line: dict, key: str) -> str:
        value = line.get(key)
        if type(value) is not str or not value or _BAD_PSEUDO.search(value) \
                or not (value.isascii() or _sendable(value)):
            _fail(f"/requestLine/{key}", errors.INVALID_HTTP_HEADER, f"{key} missing or not a valid value")
        return value

    def headers(self) -> list[tuple[str, str]]:
        raw = self.block.get("headers", [])
        if not isinstance(raw, list):
            _fail("/headers", errors.INVALID_HTTP_HEADER, "headers is not an array")
        out = []
        for i, h in enumerate(raw):
            if type(h) is not dict or type(name := h.get("header")) is not str or "value" not in h:
                _fail(f"/headers/{i}", errors.INVALID_HTTP_HEADER, "not an HttpHeader")
            value = h["value"]
            if type(value) is dict:
                if len(value) == 1 and "headerval" in value:                # TS 29.573 Annex B form
                    value = value["headerval"]
                # an index object (the usual encrypted header) taken without resolve's call
                value = self.take(value, (("/headers", i), "value")) if INDEX in value else \
                    self.resolve(value, (("/headers", i), "value"))
            lower = _header_name(name) if len(name) <= 256 else None
            if lower is None or type(value) is not str or "\r" in value or "\n" in value or "\0" in value \
                    or not (value.isascii() or _sendable(value)):
                _checked_header(name, value, f"/headers/{i}")              # names the problem
            if lower == "content-length":
                self.length = True
            out.append((lower, value))
        return out

    # ---- payload
    def payload(self, allow_uri: bool) -> tuple[list[tuple[int, dict]], list[tuple[int, dict]],
                                                 list[tuple[int, dict]]]:
        """The (position, entry) pairs of the URI_PARAM, MULTIPART_BINARY and BODY entries."""
        raw = self.block.get("payload", [])
        if not isinstance(raw, list):
            _fail("/payload", errors.INVALID_JSON_POINTER, "payload is not an array")
        uri: list[tuple[int, dict]] = []
        parts: list[tuple[int, dict]] = []
        body: list[tuple[int, dict]] = []
        for i, e in enumerate(raw):
            if type(e) is not dict or type(e.get("iePath")) is not str or "value" not in e:
                _fail(f"/payload/{i}", errors.INVALID_JSON_POINTER, "not an HttpPayload")
            loc = e.get("ieValueLocation")
            if loc == BODY:
                body.append((i, e))
            elif loc == MULTIPART_BINARY:
                parts.append((i, e))
            elif loc == URI_PARAM and allow_uri:
                uri.append((i, e))
            else:
                _fail(f"/payload/{i}/ieValueLocation", errors.INVALID_JSON_POINTER,
                      f"ieValueLocation {_show(loc)} not allowed here")
        return uri, parts, body

    def uri(self, path: str, query: Any, entries: list[tuple[int, dict]]) -> tuple[str, str]:
        if not path.startswith("/"):
            _fail("/requestLine/path", errors.INVALID_HTTP_HEADER, "path must start with /")
        if query is not None and not isinstance(query, str):
            _fail("/requestLine/queryFragment", errors.INVALID_HTTP_HEADER, "queryFragment is not a string")
        if not entries and "{" not in path and (not query or "{" not in query):
            return path, query or ""
        segments = path.split("/")
        pieces = query.split("&") if query else []
        holes: dict[tuple[str, str, int], int] = {}     # (kind, segment number | name, n) -> position
        for k, s in enumerate(segments):       # ("{" first: a regular expression call costs more)
            if k and "{" in s and (m := _PLACEHOLDER.fullmatch(s)):
                holes[("path", str(k - 1), int(m.group(1)))] = k
        for k, piece in enumerate(pieces if query and "{" in query else ()):   # no "{": no placeholder
            name, sep, value = piece.partition("=")
            if sep and "{" in value and (m := _PLACEHOLDER.fullmatch(value)):
                holes[("query", name, int(m.group(1)))] = k
        for i, e in entries:
            where = f"/payload/{i}"
            parts, ref = _parts(e["iePath"], where), e["value"]
            n = ref.get(INDEX) if type(ref) is dict else None
            key = (parts[1], parts[2], n) if len(parts) == 3 and type(n) is int else None
            if key is None or parts[0] != "requestLine" or key not in holes:
                _fail(f"{where}/iePath", errors.INVALID_JSON_POINTER,
                      "names no {encBlockIndex:n} of the request line with this entry's index")
            k = holes.pop(key)
            value = self.take(ref, f"{where}/value")
            forbidden = _BAD_SEGMENT if key[0] == "path" else _BAD_QUERY_VALUE
            if type(value) is not str or forbidden.search(value):
                _fail(f"{where}/value", errors.INVALID_HTTP_HEADER, f"encrypted {key[0]} value is not valid there")
            if key[0] == "path":
                segments[k] = value
            else:
                pieces[k] = f"{key[1]}={value}"
        if holes:
            _fail("/requestLine", errors.INVALID_INDEX_TO_ENCRYPTED_BLOCK,
                  f"{{{INDEX}:n}} without a URI_PARAM payload entry: {sorted(holes)}")
        return "/".join(segments), "&".join(pieces)

    def body(self, parts: list[tuple[int, dict]], json_entries: list[tuple[int, dict]],
             headers: list[tuple[str, str]]) -> bytes:
        if parts:
            return self.multipart(parts, json_entries, _header(headers, "content-type") or "")
        if not json_entries:
            return b""
        i, first = json_entries[0]
        if len(json_entries) == 1 and first["iePath"] == "" and type(first["value"]) is dict \
                and len(first["value"]) == 1 and OPAQUE in first["value"]:
            return self.binary(first["value"][OPAQUE], f"/payload/{i}/value/{OPAQUE}")
        doc = self.json_document(json_entries)
        try:            # _dumps, without the call
            return jwe.json_dumps(doc)
        except (ValueError, RecursionError) as e:
            _fail("/payload", errors.INVALID_JSON_POINTER, f"restored body is not JSON: {e}")

    def json_document(self, entries: list[tuple[int, dict]]) -> Any:
        whole = [i for i, e in entries if e["iePath"] == ""]
        if whole:
            if len(entries) != 1:
                _fail(f"/payload/{whole[0]}/iePath", errors.INVALID_JSON_POINTER,
                      "a whole-document entry (iePath \"\") must be the only BODY entry")
            return self.resolve(entries[0][1]["value"], f"/payload/{whole[0]}/value")
        doc: dict[str, Any] = {}
        done = False            # every index object the text can hold found: the rest is clear
        for i, e in entries:
            path, value = e["iePath"], e["value"]
            if path.rfind("/") != 0 or "~" in path:       # not "/name" (the common form)
                parts = _parts(path, f"/payload/{i}")
                name = parts[0] if len(parts) == 1 else None
            else:
                name = path[1:]
            if name is None or name in doc:
                _fail(f"/payload/{i}/iePath", errors.INVALID_JSON_POINTER,
                      "iePath must name a top-level member, once")
            if not done and type(value) in _CONTAINERS:
                value = self.take(value, (("/payload", i), "value")) if type(value) is dict and INDEX in value \
                    else self.resolve(value, (("/payload", i), "value"))
                done = self.bound is not None and self.found_all()
            doc[name] = value
        return doc

    def binary(self, node: Any, where: str) -> bytes:
        value = self.resolve(node, where)
        if not isinstance(value, str):
            _fail(where, errors.INVALID_JSON_POINTER, "binary data is not a base64 string")
        try:
            return base64.b64decode(value, validate=True)
        except binascii.Error:
            _fail(where, errors.INVALID_JSON_POINTER, "binary data is not valid base64")

    def multipart(self, entries: list[tuple[int, dict]], json_entries: list[tuple[int, dict]], ctype: str) -> bytes:
        bnd = multipart.boundary(ctype)
        if not bnd:
            _fail("/headers", errors.INVALID_HTTP_HEADER, "multipart payload, but content-type has no boundary")
        parts: list[multipart.Part] = []
        for n, (i, e) in enumerate(entries):
            where, v = f"/payload/{i}/value", e["value"]
            if not isinstance(v, dict) or not isinstance(v.get("headers", []), list):
                _fail(where, errors.INVALID_JSON_POINTER, "not a multipart part description")
            fields = [(name, v[key]) for key, name in (("contentType", "content-type"), ("contentId", "content-id"))
                      if key in v]
            fields += [(h.get("header"), h.get("value")) if isinstance(h, dict) else (None, None)
                       for h in v.get("headers", [])]
            headers = [_checked_header(name, value, f"{where}/headers") for name, value in fields]
            if "data" in v:
                content = self.binary(v["data"], f"{where}/data")
            elif n == 0 and json_entries:
                content = _dumps(self.json_document(json_entries), "/payload")
            else:
                _fail(where, errors.INVALID_JSON_POINTER, "part without data (only the first part may be "
                      "the JSON root given by BODY entries)")
            parts.append((headers, content))
        if json_entries and "data" in entries[0][1]["value"]:
            _fail(f"/payload/{json_entries[0][0]}", errors.INVALID_JSON_POINTER,
                  "BODY entries without a JSON root part")
        try:
            return multipart.serialize(bnd, parts)
        except ValueError as e:
            _fail("/payload", errors.INVALID_JSON_POINTER, f"multipart body: {e}")


# ----------------------------------------------------------------------------- helpers
def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    return next((v for k, v in headers if k.lower() == name), None)


@functools.lru_cache(maxsize=256)
def _media_type(ctype: str) -> str:
    """The media type of a content-type value (a handful of distinct values per SEPP: cached)."""
    return multipart.media_type(ctype)[0]


_is_json = wire.is_json


def _pointer(tokens: list[str]) -> str:
    """RFC 6901 §3: ``~`` -> ``~0``, ``/`` -> ``~1`` in each token."""
    if len(tokens) == 1 and "~" not in tokens[0] and "/" not in tokens[0]:
        return "/" + tokens[0]
    return "".join("/" + str(t).replace("~", "~0").replace("/", "~1") for t in tokens)


def _parts(pointer: str, where: str) -> list[str]:
    """RFC 6901 reference tokens of ``pointer`` (``~0``/``~1`` unescaped; any other ``~`` refused)."""
    if pointer == "":
        return []
    if pointer[0] != "/" or (("~" in pointer) and _BAD_TILDE.search(pointer)):
        _fail(f"{where}/iePath", errors.INVALID_JSON_POINTER, f"{_show(pointer)} is not a JSON pointer")
    tokens = pointer[1:].split("/")
    return [t.replace("~1", "/").replace("~0", "~") for t in tokens] if "~" in pointer else tokens


@functools.lru_cache(maxsize=1024)
def _header_name(name: str) -> str | None:
    """``name`` in lower case, or None if it is no RFC 9110 token or a connection-specific header."""
    lower = name.lower()
    return lower if _TOKEN.fullmatch(name) and lower not in _CONNECTION_HEADERS else None


def _checked_header(name: Any, value: Any, where: str) -> tuple[str, str]:
    lower = _header_name(name) if type(name) is str and len(name) <= 256 else None
    if lower is None:
        _fail(where, errors.INVALID_HTTP_HEADER, f"invalid or forbidden header name {_show(name)}")
    if type(value) is not str or _BAD_HEADER_VALUE.search(value) or not (value.isascii() or _sendable(value)):
        _fail(where, errors.INVALID_HTTP_HEADER, f"header {lower} has no valid string value")
    return lower, value


def _sendable(value: str) -> bool:
    """Whether a header value can be written as octets: JSON may carry a lone surrogate
    (``"\\ud800"``), which no encoding writes (RFC 8259 §8.2); the octets 0x80-0xFF of
    obs-text (RFC 9110 §5.5) arrive as their surrogate escapes and are written back as they came."""
    try:
        value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return False
    return True


def _dumps(doc: Any, where: str) -> bytes:
    try:
        return jwe.json_dumps(doc)
    except (ValueError, RecursionError) as e:
        _fail(where, errors.INVALID_JSON_POINTER, f"restored body is not JSON: {e}")


def _with_length(headers: list[tuple[str, str]], body: bytes) -> list[tuple[str, str]]:
    return [(k, str(len(body)) if k == "content-length" else v) for k, v in headers]
