"""What the engine answers with, and the JSON body of an N32 request (TS 29.571 ProblemDetails,
TS 29.573 §6.1/§6.2 bodies): kept apart from the decisions in n32/engine.py."""
from __future__ import annotations

import json
from typing import Any

from . import body as body_mod, wire
from .errors import N32Error
from .message import HttpRequest, HttpResponse


def forwarded_failure(rsp: HttpResponse) -> N32Error:
    """The peer refused our N32-f message: relay its suggestion to the NF (profile 20)."""
    try:
        pd = json.loads(rsp.body or b"{}")
    except ValueError:
        pd = {}
    if not isinstance(pd, dict):
        pd = {}
    status = pd.get("suggestedStatusCode")
    detail = f"peer SEPP answered {rsp.status} {pd.get('cause', '')}".strip()
    return N32Error(status if isinstance(status, int) and 400 <= status < 600 else 502,
                    pd.get("cause") or "N32F_FORWARDING_FAILED", detail)


def json_body(req: HttpRequest, limits: body_mod.Limits, max_body: int) -> Any:
    """The JSON body of an N32 POST (TS 29.573 §6.1/§6.2 take application/json only), parsed
    within ``limits`` (413 before 415, as the size is known first)."""
    if req.method != "POST":
        raise N32Error(405, wire.METHOD_NOT_ALLOWED, f"{req.method} is not allowed here; use POST")
    ctype = wire.media_type(req.header(wire.CONTENT_TYPE))
    if len(req.body) <= max_body and ctype != wire.JSON:
        raise N32Error(415, wire.UNSUPPORTED_MEDIA_TYPE,
                       f"content-type must be application/json, got {ctype or 'none'!r}")
    return body_mod.loads(req.body, limits, max_body=max_body)


def json_response(status: int, obj: Any, content_type: str = wire.JSON) -> HttpResponse:
    body = b"" if obj is None else json.dumps(obj, separators=(",", ":")).encode()
    return HttpResponse(status, [("content-type", content_type)] if body else [], body)


def problem_response(err: N32Error, allow: str = "POST") -> HttpResponse:
    """ProblemDetails (TS 29.571); with ``suggested_status`` set it is a ProblemDetailsMsgForwarding
    (TS 29.573 §6.2.5.2.4) as n32f-process answers it. A 405 names the allowed method (RFC 9110 §15.5.6)."""
    rsp = json_response(err.status, err.problem_details(), wire.PROBLEM_JSON)
    if err.status == 405:
        rsp.headers.append((wire.ALLOW, allow))
    if err.retry_after is not None:
        rsp.headers.append((wire.RETRY_AFTER, str(err.retry_after)))
    return rsp
