"""Conversion between mitmproxy's HTTP objects and the core's message model."""
from __future__ import annotations

import functools
import json
import time
from typing import Any

from mitmproxy import http
from mitmproxy.net.http import status_codes

from n32.errors import PROBLEM_JSON, N32Error
from n32.message import HttpRequest, HttpResponse

# Connection-specific headers are not part of the end-to-end message (RFC 9110 §7.6.1,
# RFC 9113 §8.2.2); content-length is recomputed; host is the HTTP/1.1 form of :authority.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "transfer-encoding",
                        "te", "upgrade", "host", "content-length", "content-encoding",
                        "proxy-authorization", "proxy-authenticate"})


def _headers(h: http.Headers) -> list[tuple[str, str]]:
    return _split_headers(h)[0]


def _split_headers(h: http.Headers) -> tuple[list[tuple[str, str]], bool]:
    """The end-to-end headers (decoded as mitmproxy's ``Headers`` decodes them) and whether a
    content-encoding is declared, in one pass over the raw fields."""
    out, encoded = [], False
    for k, v in h.fields:
        name = k.decode("utf-8", "surrogateescape").lower()
        if name in HOP_BY_HOP:
            encoded = encoded or name == "content-encoding"
            continue
        out.append((name, v.decode("utf-8", "surrogateescape")))
    return out, encoded


def _content(m: http.Message, encoded: bool) -> bytes:
    """The body with any content-encoding removed (as ``get_content(strict=False)``)."""
    if not encoded:
        return m.raw_content or b""
    return m.get_content(strict=False) or b""


def to_http_request(r: http.Request) -> HttpRequest:
    path, _, query = r.path.partition("?")
    headers, encoded = _split_headers(r.headers)
    return HttpRequest(method=r.method, scheme=r.scheme, authority=r.authority or r.host_header or r.pretty_host,
                       path=path, query=query, headers=headers, body=_content(r, encoded))


def to_response(r: http.Response) -> HttpResponse:
    headers, encoded = _split_headers(r.headers)
    return HttpResponse(status=r.status_code, headers=headers, body=_content(r, encoded))


def _header_obj(pairs: list[tuple[str, str]], body: bytes) -> http.Headers:
    fields = [(k.encode(), v.encode()) for k, v in pairs if k not in HOP_BY_HOP]
    if body or not any(k == b"content-length" for k, _ in fields):
        fields.append((b"content-length", str(len(body)).encode()))
    return http.Headers(fields)


def apply_request(flow: http.HTTPFlow, req: HttpRequest, *, scheme: str, host: str, port: int) -> None:
    """Make ``flow.request`` be ``req``, sent to ``scheme://host:port``."""
    r = flow.request
    r.method = req.method
    r.scheme, r.host, r.port = scheme, host, port
    r.path = req.target
    r.headers = _header_obj(req.headers, req.body)
    r.authority = req.authority if r.http_version == "HTTP/2.0" else ""
    if r.http_version != "HTTP/2.0":
        r.headers["host"] = req.authority
    r.raw_content = req.body


def set_request(flow: http.HTTPFlow, method: str, scheme: str, host: str, port: int, path: str, *,
                authority: str, body: bytes, headers: list[tuple[str, str]]) -> None:
    """Replace ``flow.request`` by a new request (e.g. the N32-f POST carrying the JWE)."""
    apply_request(flow, HttpRequest(method, scheme, authority, path, "", headers, body),
                  scheme=scheme, host=host, port=port)


def response_from(rsp: HttpResponse) -> http.Response:
    """What ``http.Response.make(status, body, headers)`` makes, built without its cost per
    message: mitmproxy type-checks every field of every message it constructs (a debug aid, off
    under ``python -O``; ours are typed already), and ``make`` sets the content through the
    content-encoding machinery, where ``_header_obj`` has removed content-encoding and set
    content-length already. tests/addons/test_flowconv.py compares both."""
    now = time.time()
    data = object.__new__(http.ResponseData)
    data.__dict__.update(http_version=b"HTTP/1.1", status_code=rsp.status, reason=_reason(rsp.status),
                         headers=_header_obj(rsp.headers, rsp.body), content=rsp.body, trailers=None,
                         timestamp_start=now, timestamp_end=now)
    out = object.__new__(http.Response)
    out.data = data
    return out


@functools.lru_cache(maxsize=None)
def _reason(status: int) -> bytes:
    return status_codes.RESPONSES.get(status, "").encode()


def json_response(status: int, obj: Any, content_type: str = "application/json",
                  extra: list[tuple[str, str]] | None = None) -> http.Response:
    body = b"" if obj is None else json.dumps(obj, separators=(",", ":")).encode()
    headers = [("content-type", content_type)] if body else []
    return http.Response.make(status, body, [(k.encode(), v.encode()) for k, v in headers + list(extra or [])])


def problem_response(err: N32Error) -> http.Response:
    """ProblemDetails (TS 29.571); with ``suggested_status`` set it is a ProblemDetailsMsgForwarding
    (TS 29.573 §6.2.5.2.4) as n32f-process answers it."""
    return json_response(err.status, err.problem_details(), PROBLEM_JSON)
