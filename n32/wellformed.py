"""What an HTTP request must look like before the SEPP routes it, and the answer to one the HTTP
layer refused before the SEPP saw it.

* ``check_request``: an NF's request (cSEPP) and the request a peer sent us (pSEPP, TLS mode or
  restored from PRINS) must have an origin-form path (RFC 9112 §3.2.1, RFC 9113 §8.3.1: ``*`` and
  absolute URIs are not routable over N32) without white space or control characters, header
  values without CR, LF or NUL (RFC 9110 §5.5), a method that is a token, only UTF-8 (N32-f
  carries them in JSON), and one target apiRoot at most. HTTP/2 refuses some of these itself;
  HTTP/1.1 and ``:path`` reach the SEPP. Forwarded, they came back as a 502 (the receiving SEPP
  refused to restore them, MESSAGE_RECONSTRUCTION_FAILED) or a 500 (not UTF-8): the sending SEPP
  answers 400 ``INVALID_MSG_FORMAT`` itself, naming the field.
* ``check_response``: our home NF's answer, before it goes to the peer (both modes): header
  values with CR, LF or NUL or octets that are not UTF-8 cannot be carried (encoding them raised:
  a 500 and a traceback in the receiving SEPP); 502, as for any unusable answer of a next hop.
* ``check_carried``: the N32-f message built for an NF's request must pass the checks the
  receiving SEPP applies before it opens it (``limits``: size, nesting, members, string length,
  also inside the aad, where the NF's body sits a few levels deeper beside the headers). An NF
  body just within the limits made one that was not: the peer refused it and the NF got a 502.
  It gets the refusal (413, or 400 naming the limit) from its own SEPP instead.
* ``refused_by_http_layer``: a request the HTTP layer refused (malformed HTTP/1.1 head, CONNECT,
  a scheme other than http(s), ``transfer-encoding`` with ``content-length``) is answered as every
  other refusal, a TS 29.571 ProblemDetails: 400 ``INVALID_MSG_FORMAT`` (413 ``PAYLOAD_TOO_LARGE``
  for a body over the limit), never a 5xx for what a client sent (TS 29.500 §5.2.7.2).
"""
from __future__ import annotations

import re

from . import body, jwe, wire
from .errors import N32Error, bounded
from .message import HttpRequest, HttpResponse
from .wire import TARGET_API_ROOT

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")     # RFC 9110 §5.6.2
_BAD_IN_TARGET = (" ", "\t", "\r", "\n", "\0")     # as n32.reformat refuses in a restored request line
_BAD_IN_VALUE = ("\r", "\n", "\0")                 # as n32.reformat refuses in a restored header value


def check_request(req: HttpRequest) -> None:
    """Raise 400 ``INVALID_MSG_FORMAT`` (``invalidParams`` naming ``:method``, ``:path`` or the
    header) unless ``req`` can be routed and carried over N32 as it is."""
    if not _TOKEN.fullmatch(req.method):
        why = "the method is not a token (RFC 9110 §9.1)"
        raise N32Error(400, wire.INVALID_MSG_FORMAT, f"{why}: {bounded(repr(req.method))}",
                       invalid_params=[{"param": ":method", "reason": why}])
    target = req.target
    if not target.startswith("/") or any(c in target for c in _BAD_IN_TARGET):
        why = "not an origin-form path (RFC 9112 §3.2.1)" if not target.startswith("/") else \
            "white space or a control character in the path"
        raise N32Error(400, wire.INVALID_MSG_FORMAT, f"{why}: {bounded(repr(target))}",
                       invalid_params=[{"param": ":path", "reason": why}])
    if sum(k == TARGET_API_ROOT for k, _ in req.headers) > 1:
        # one target (TS 29.500 §5.2.3.2.4): we would route on the first, a TLS-mode peer or an NF
        # may take another
        why = "more than one 3gpp-Sbi-Target-apiRoot"
        raise N32Error(400, wire.INVALID_MSG_FORMAT, why, invalid_params=[{"param": TARGET_API_ROOT, "reason": why}])
    joined = "".join(v for _, v in req.headers)     # one scan in C for the usual, clean message
    if any(c in joined for c in _BAD_IN_VALUE):
        name = next(k for k, v in req.headers if any(c in v for c in _BAD_IN_VALUE))
        why = "CR, LF or NUL in a header value (RFC 9110 §5.5)"
        raise N32Error(400, wire.INVALID_MSG_FORMAT, f"header {bounded(name)}: {why}",
                       invalid_params=[{"param": name, "reason": why}])
    if not (target + joined).isascii() and not _utf8(target + joined):
        # octets that are no UTF-8 (RFC 9110 §5.5 obs-text) arrive as lone surrogates: N32-f's
        # JSON cannot carry them and encoding them for the next hop raised (a 500)
        name = ":path" if not _utf8(target) else next(k for k, v in req.headers if not _utf8(v))
        why = "octets that are not UTF-8"
        raise N32Error(400, wire.INVALID_MSG_FORMAT, f"{name}: {why}", invalid_params=[{"param": name, "reason": why}])


def _utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def refused_by_http_layer(status: int | None, reason: str) -> N32Error:
    """The ProblemDetails for a request the HTTP layer refused with ``status`` (its suggestion;
    None when it had none) because of ``reason`` (its words, bounded in the detail)."""
    if status == 413:
        return N32Error(413, wire.PAYLOAD_TOO_LARGE, "request body over the size limit (limits.body)")
    return N32Error(400, wire.INVALID_MSG_FORMAT, f"malformed HTTP request: {reason}")


def check_carried(message: bytes, aad: str, limits: body.Limits) -> None:
    """N32Error (413 ``PAYLOAD_TOO_LARGE``, 400 ``INVALID_MSG_FORMAT``) if the N32-f ``message``
    or its ``aad`` (base64url) exceeds ``limits`` as the receiving SEPP counts them."""
    where = "the N32-f message for this request"
    body.check(message, limits, where)
    body.check(jwe.b64url_decode(aad), limits, f"{where} (aad)")


def check_response(rsp: HttpResponse) -> None:
    """N32Error 502 if a header value of our NF's answer cannot be carried to the peer."""
    joined = "".join(v for _, v in rsp.headers)
    if any(c in joined for c in _BAD_IN_VALUE) or (not joined.isascii() and not _utf8(joined)):
        name = next(k for k, v in rsp.headers if any(c in v for c in _BAD_IN_VALUE) or not _utf8(v))
        raise N32Error(502, "UNSPECIFIED_NF_FAILURE",
                       f"the home NF's answer cannot be carried: header {bounded(name)} holds CR, LF, NUL "
                       "or octets that are not UTF-8")
