"""What an HTTP request must look like before the SEPP routes it, and the answer to one the HTTP
layer refused before the SEPP saw it.

* ``check_request``: an NF's request (cSEPP) and the request a peer sent us (pSEPP, TLS mode or
  restored from PRINS) must have an origin-form path (RFC 9112 §3.2.1, RFC 9113 §8.3.1: ``*`` and
  absolute URIs are not routable over N32) without white space or control characters, header
  values without CR, LF or NUL (RFC 9110 §5.5), and one target apiRoot at most. HTTP/2 refuses
  such fields itself; HTTP/1.1 and ``:path`` reach the SEPP. The receiving SEPP refuses them in a restored message (``n32.reformat``,
  MESSAGE_RECONSTRUCTION_FAILED), so forwarding them only turned an NF's mistake into a 502: the
  sending SEPP answers 400 ``INVALID_MSG_FORMAT`` itself, naming the field.
* ``refused_by_http_layer``: a request the HTTP layer refused (malformed HTTP/1.1 head, CONNECT,
  a scheme other than http(s), ``transfer-encoding`` with ``content-length``) is answered as every
  other refusal, a TS 29.571 ProblemDetails: 400 ``INVALID_MSG_FORMAT`` (413 ``PAYLOAD_TOO_LARGE``
  for a body over the limit), never a 5xx for what a client sent (TS 29.500 §5.2.7.2).
"""
from __future__ import annotations

from . import wire
from .errors import N32Error, bounded
from .message import HttpRequest
from .wire import TARGET_API_ROOT

_BAD_IN_TARGET = (" ", "\t", "\r", "\n", "\0")     # as n32.reformat refuses in a restored request line
_BAD_IN_VALUE = ("\r", "\n", "\0")                 # as n32.reformat refuses in a restored header value


def check_request(req: HttpRequest) -> None:
    """Raise 400 ``INVALID_MSG_FORMAT`` (``invalidParams`` naming ``:path`` or the header) unless
    ``req`` can be routed and carried over N32 as it is."""
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


def refused_by_http_layer(status: int | None, reason: str) -> N32Error:
    """The ProblemDetails for a request the HTTP layer refused with ``status`` (its suggestion;
    None when it had none) because of ``reason`` (its words, bounded in the detail)."""
    if status == 413:
        return N32Error(413, wire.PAYLOAD_TOO_LARGE, "request body over the size limit (limits.body)")
    return N32Error(400, wire.INVALID_MSG_FORMAT, f"malformed HTTP request: {reason}")
