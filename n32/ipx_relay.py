"""A roaming intermediary's per-message decisions on the N32-f path (sans-I/O; addons/ipx.py
performs them).

An IPX relays only ``n32f-process`` (TS 29.573 §6.2): it refuses delivery with a signed roaming
hub error where a ``reject`` rule matches (TS 33.501 §13.2.4.5.2a), otherwise appends its signed
modification (TS 33.501 §13.2.4.5, ``n32.ipx.modify``) and forwards the message to the next hop
towards the receiving SEPP named in ``3gpp-Sbi-Target-apiRoot`` (our interop profile).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from . import body as body_mod, ipx, rh_error, upstream_errors, wire
from .config import Timeouts
from .errors import N32Error
from .message import HttpRequest, HttpResponse


@dataclass(frozen=True)
class Forward:
    """Send ``body`` on to ``uri`` over TLS naming ``server_name``."""

    body: bytes
    uri: str
    server_name: str
    operations: list = field(default_factory=list)


@dataclass(frozen=True)
class Answer:
    """Answer the sender with ``response``; ``rejected``: the reject rule that matched, if any."""

    response: HttpResponse
    rejected: dict | None = None


class Relay:
    def __init__(self, cfg: Any, private_key_pem: bytes) -> None:
        self.cfg, self.key = cfg, private_key_pem
        self.rules = [ipx.Rule(direction=m.direction, method=m.method, path=m.path, peer=m.peer,
                               patch=tuple(m.patch), set_headers=tuple(m.set_headers.items()))
                      for m in cfg.modifications if not m.reject]
        self.rejects = [(ipx.Rule(direction="request", method=m.method, path=m.path, peer=m.peer), m.reject)
                        for m in cfg.modifications if m.reject]

    def request(self, req: HttpRequest) -> Forward | Answer:
        try:
            if req.path != wire.N32F_PROCESS or req.method != "POST":
                raise N32Error(404, wire.RESOURCE_URI_STRUCTURE_NOT_FOUND, "an IPX only relays n32f-process")
            hop = self._next_hop(urlsplit(req.header(wire.TARGET_API_ROOT) or "").hostname or "")
            body = body_mod.loads(req.body or b"null")
            block = ipx.current_block(body)
            for rule, reject in self.rejects:
                if rule.matches("request", block):  # refuse delivery: a roaming hub error (§13.2.4.5.2a)
                    answer = rh_error.make(body, self.cfg.fqdn, self.key, int(reject.get("status", 403)),
                                           str(reject.get("cause", "CONTRACTUAL_REASONS")),
                                           str(reject.get("detail", "message not delivered for contractual reasons")))
                    return Answer(_json(200, answer, wire.JSON), dict(reject))
            res = ipx.modify(body, self.cfg.fqdn, self.key, self.rules, "request")
            return Forward(body_mod.dumps(res.body), hop.uri, hop.server_name, res.operations)
        except N32Error as e:
            return Answer(_json(e.status, e.problem_details(), wire.PROBLEM_JSON))
        except (ValueError, KeyError) as e:
            return Answer(_json(400, N32Error(400, wire.INVALID_MSG_FORMAT, str(e)).problem_details(),
                                wire.PROBLEM_JSON))

    # The IPX config has no timeouts section: a SEPP's N32-f defaults apply to the IPX's next hop.
    deadline = Timeouts().n32f
    idle = Timeouts().idle

    def next_hop_failed(self, kind: str) -> HttpResponse:
        """The answer to the previous hop when the next one failed (n32.upstream_errors kind)."""
        err = upstream_errors.upstream_failure(upstream_errors.NEXT, kind, self.deadline)
        return _json(err.status, err.problem_details(), wire.PROBLEM_JSON)

    def response(self, raw: bytes) -> tuple[bytes, list] | str:
        """The peer's N32-f response with our modification appended, or why it is left as it is."""
        try:
            res = ipx.modify(body_mod.loads(raw or b"null"), self.cfg.fqdn, self.key, self.rules, "response")
        except (N32Error, ValueError, KeyError) as e:
            return f"response not modifiable: {e}"
        return body_mod.dumps(res.body), res.operations

    def _next_hop(self, target_host: str) -> Any:
        for hop in self.cfg.next_hops:
            if not hop.peer or hop.peer == target_host:
                return hop
        raise N32Error(404, "NEXT_HOP_NOT_FOUND", f"no next hop towards {target_host or 'an unnamed SEPP'}")


def _json(status: int, obj: Any, content_type: str) -> HttpResponse:
    return HttpResponse(status, [(wire.CONTENT_TYPE, content_type)], json.dumps(obj, separators=(",", ":")).encode())
