"""Topology hiding (TS 33.501 §5.9.3.2, §13.1.2; N32-SPEC §8).

Towards the peer, FQDNs and IP addresses of our own NFs are replaced by stable pseudonyms
``nf<16 hex>.<pseudonym_domain>`` (the first 8 octets of HMAC-SHA-256(secret, host)); traffic
that comes back addressed to a pseudonym is given the real name again. Headers that reveal
internals (``server``, ``via``, ``x-forwarded-*`` ...) are removed.

What is rewritten (also listed in docs/routing.md):

* headers :data:`URI_HEADERS` (``location``, ``3gpp-sbi-target-apiroot``, ...): the host of
  every http(s) URI in the value; ``user-agent`` (``<NF type>-<FQDN>``, TS 29.500 §5.2.2.2) and
  the ``src:`` FQDN of ``3gpp-sbi-originating-network-id`` in requests;
* JSON bodies (``application/json``, ``*+json``, JSON parts of ``multipart/related``): every
  string that is an absolute http(s) URI (``_links`` hrefs, callback URIs, resource URIs ...),
  the members :data:`FQDN_MEMBERS`, and in NF profiles / NF services (TS 29.510; recognised by
  ``nfInstanceId``+``nfType`` / ``serviceInstanceId``+``serviceName``) the IP addresses
  :data:`IP_MEMBERS` and the addresses in ``ipEndPoints`` are removed; a profile or service left
  without any address gets ``fqdn`` = the pseudonym of its first IP address;
* ``:authority`` of requests from the peer (restore only; an unknown pseudonym is refused).

"Our own" = the host is ``home_domain`` or below it, or an IP literal (any, or only inside
``home_networks`` when given); names below ``exclude_domains`` (e.g. the SEPP's own FQDN and
its telescopic domain) and pseudonyms are never hidden.

The reverse table (pseudonym -> host) lives in memory: pseudonyms handed out before a restart
are unknown afterwards unless the same ``secret`` is configured and the hosts are
:meth:`~TopologyHider.register`-ed again (e.g. the configured home NF routes).
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import re
from collections import OrderedDict
from typing import Any, Callable, Iterable, TypeVar

from . import body, multipart, wire
from .errors import N32Error
from .message import HttpRequest, HttpResponse
from .telescopic import (ENDPOINT_ADDRESS_MEMBERS, IP_MEMBERS, host_of, is_fqdn, remember, replace_uri_host,
                         split_uri)

# No hyphen: a pseudonym then has a readable direct telescopic label on the peer side ("nf-" would
# give "nf--...", which RFC 5891 reserves and n32/telescopic.py replaces by a hash label).
PSEUDONYM_PREFIX = "nf"
PSEUDONYM_HEX = 16
# Headers removed towards the peer (exact names) and name prefixes removed.
STRIP_HEADERS = frozenset({
    "server", "via", "x-powered-by", "x-aspnet-version", "x-aspnetmvc-version", "x-real-ip",
    "x-client-ip", "x-originating-ip", "forwarded", "x-backend-server", "x-served-by", "x-upstream",
    "x-host", "x-server", "x-node",
})
STRIP_PREFIXES = ("x-forwarded-", "x-envoy-")
# Headers whose value carries URIs of NFs (hosts rewritten in both directions).
URI_HEADERS = (wire.LOCATION, wire.CONTENT_LOCATION, wire.TARGET_API_ROOT, wire.BINDING, wire.NRF_URI,
               wire.NRF_URI_CALLBACK)
USER_AGENT = "user-agent"
ORIGINATING_NETWORK_ID = wire.ORIGINATING_NETWORK_ID
# JSON members holding a bare NF FQDN (TS 29.510 NFProfile / NFService). ``pgwFqdn`` is left
# alone on purpose: the visited network resolves it for S8 (GTP), not through the SEPP.
FQDN_MEMBERS = ("fqdn", "interPlmnFqdn")

_HEADER_URI = re.compile(r"(?i)(https?://(?:[^@/?#\s\"]*@)?)(\[[0-9a-f:.]+\]|[a-z0-9.-]+)")
_SRC_FQDN = re.compile(r"(?i)(src:\s*(?:SCP|SEPP)-)([a-z0-9.-]+)")


def _is_nf(obj: dict) -> bool:
    return ("nfInstanceId" in obj and "nfType" in obj) or ("serviceInstanceId" in obj and "serviceName" in obj)


# What hide_json can change, as a JSON text spells it: a URI, an FQDN member, an NF profile
# (body.may_contain: a body without any is neither parsed nor walked).
_HIDE_MARKS = re.compile(b"|".join([b"://"] + [b'"%s"' % n.encode() for n in (*FQDN_MEMBERS, "nfInstanceId",
                                                                                 "serviceInstanceId")]))
_KNOWN_HOSTS = 1024     # is_home answers kept (hosts come from NFs and peers: bounded)


def _canon_ip(host: str) -> str | None:
    if not (host[:1].isdigit() or host[:1] == "[" or ":" in host):   # no IP literal: skip the exception
        return None
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


class TopologyHider:
    """Pseudonymises our NFs' names towards the peer and restores them on the way back."""

    def __init__(self, home_domain: str, pseudonym_domain: str, *, secret: bytes | None = None,
                 home_networks: Iterable[str] | None = None, exclude_domains: Iterable[str] = (),
                 max_entries: int = 65536) -> None:
        self.home_domain = home_domain.strip().lower().rstrip(".")
        self.pseudonym_domain = pseudonym_domain.strip().lower().rstrip(".")
        for name, v in (("home_domain", self.home_domain), ("pseudonym_domain", self.pseudonym_domain)):
            if not is_fqdn(v):
                raise ValueError(f"{name} {v!r} is not an FQDN")
        if len(PSEUDONYM_PREFIX) + PSEUDONYM_HEX + 1 + len(self.pseudonym_domain) > 253:
            raise ValueError(f"pseudonym_domain {pseudonym_domain!r} is too long")
        self._secret = secret if secret is not None else os.urandom(32)
        self._networks = None if home_networks is None else \
            tuple(ipaddress.ip_network(n, strict=False) for n in home_networks)
        self._exclude = tuple(d.strip().lower().rstrip(".") for d in exclude_domains)
        self._pseudo = re.compile(rf"^{PSEUDONYM_PREFIX}[0-9a-f]{{{PSEUDONYM_HEX}}}\.{re.escape(self.pseudonym_domain)}$")
        self._max = max_entries
        self._table: OrderedDict[str, str] = OrderedDict()   # pseudonym -> real host (IPv6 unbracketed)
        self._home: dict[str, bool] = {}     # is_home of the hosts seen last (the same few on every message)
        self._names: dict[str, str] = {}     # pseudonyms of the hosts seen last
        # where a pseudonym may be (any case: hosts are compared in lower case)
        self._restore_marks = re.compile(re.escape(self.pseudonym_domain.encode()), re.IGNORECASE)
        self._restore_marks_text = re.compile(re.escape(self.pseudonym_domain), re.IGNORECASE)

    # ------------------------------------------------------------------ names
    def is_pseudonym(self, host: str) -> bool:
        return bool(self._pseudo.match(host_of(host)))

    def is_home(self, host: str) -> bool:
        """True if ``host`` (host or authority) names one of our NFs and must be hidden."""
        known = self._home.get(host)
        if known is None:
            if len(self._home) >= _KNOWN_HOSTS:
                self._home.clear()
            known = self._home[host] = self._is_home(host)
        return known

    def _is_home(self, host: str) -> bool:
        h = host_of(host)
        if not h or self.is_pseudonym(h):
            return False
        ip = _canon_ip(h)
        if ip is not None:
            return self._networks is None or any(ipaddress.ip_address(ip) in n for n in self._networks)
        if any(h == d or h.endswith("." + d) for d in self._exclude):
            return False
        return h == self.home_domain or h.endswith("." + self.home_domain)

    def pseudonym(self, host: str) -> str:
        """The stable pseudonym FQDN of ``host`` (an FQDN or IP address), remembered for restore."""
        h = host_of(host)
        key = _canon_ip(h) or h
        name = self._names.get(key)
        if name is None:    # the HMAC of the same few hosts, computed once (bounded)
            digest = hmac.new(self._secret, key.encode(), hashlib.sha256).hexdigest()[:PSEUDONYM_HEX]
            name = f"{PSEUDONYM_PREFIX}{digest}.{self.pseudonym_domain}"
            if len(self._names) >= _KNOWN_HOSTS:
                self._names.clear()
            self._names[key] = name
        remember(self._table, name, key, self._max, "topology-hiding pseudonym")
        return name

    register = pseudonym

    def real_host(self, host: str) -> str | None:
        """The real host behind a pseudonym (IPv6 without brackets), or None if unknown."""
        real = self._table.get(host_of(host))
        if real is not None:
            self._table.move_to_end(host_of(host))
        return real

    def _hide_host(self, host: str) -> str | None:
        return self.pseudonym(host) if self.is_home(host) else None

    def _restore_host(self, host: str) -> str | None:
        if not self.is_pseudonym(host):
            return None
        real = self.real_host(host)
        if real is None:
            return None
        return f"[{real}]" if ":" in real else real

    def hide_uri(self, uri: str) -> str:
        return replace_uri_host(uri, self._hide_host)

    def restore_uri(self, uri: str) -> str:
        return replace_uri_host(uri, self._restore_host)

    # ------------------------------------------------------------------ JSON
    def hide_json(self, doc: Any) -> Any:
        """A copy of ``doc`` with our NFs' names pseudonymised and their addresses removed."""
        if isinstance(doc, dict):
            nf = _is_nf(doc)
            out: dict[str, Any] = {}
            removed: list[str] = []
            for k, v in doc.items():
                if nf and k in IP_MEMBERS and isinstance(v, list):
                    removed += [a for a in v if isinstance(a, str)]
                elif nf and k == "ipEndPoints" and isinstance(v, list):
                    eps = []
                    for ep in v:
                        if isinstance(ep, dict):
                            removed += [ep[a] for a in ENDPOINT_ADDRESS_MEMBERS if isinstance(ep.get(a), str)]
                            ep = {a: b for a, b in ep.items() if a not in ENDPOINT_ADDRESS_MEMBERS}
                            if ep:
                                eps.append(ep)
                    if eps:
                        out[k] = eps
                elif k in FQDN_MEMBERS and isinstance(v, str):
                    out[k] = self._hide_host(v) or v
                else:
                    out[k] = self.hide_json(v)
            if nf and removed and "fqdn" not in out:
                out["fqdn"] = self.pseudonym(removed[0])
            return out
        if isinstance(doc, list):
            return [self.hide_json(v) for v in doc]
        if isinstance(doc, str) and "://" in doc and split_uri(doc) is not None:   # ("://": no regex call)
            return self.hide_uri(doc)
        return doc

    def restore_json(self, doc: Any) -> Any:
        """A copy of ``doc`` with known pseudonyms (URI hosts, :data:`FQDN_MEMBERS`) restored."""
        if isinstance(doc, dict):
            return {k: (self._restore_host(v) or v) if k in FQDN_MEMBERS and isinstance(v, str)
                    else self.restore_json(v) for k, v in doc.items()}
        if isinstance(doc, list):
            return [self.restore_json(v) for v in doc]
        if isinstance(doc, str) and "://" in doc and split_uri(doc) is not None:   # ("://": no regex call)
            return self.restore_uri(doc)
        return doc

    # ------------------------------------------------------------------ messages
    def _body(self, headers: list[tuple[str, str]], raw: bytes, fn: Callable[[Any], Any],
              marks: re.Pattern[bytes]) -> tuple[list[tuple[str, str]], bytes]:
        ctype = next((v for k, v in headers if k == wire.CONTENT_TYPE), "")
        if not raw or not ctype:
            return headers, raw
        new = raw
        if wire.is_json(ctype):
            if not body.may_contain(raw, marks):     # nothing fn could change (limits still apply)
                body.check(raw, where="body")
                return headers, raw
            new = _rewrite_json(raw, fn, "body")
        elif multipart.media_type(ctype)[0] == "multipart/related" and (bnd := multipart.boundary(ctype)):
            try:
                parts = multipart.parse(bnd, raw)
            except ValueError:
                return headers, raw
            out, changed = [], False
            for i, (phdrs, content) in enumerate(parts):
                pctype = next((v for k, v in phdrs if k == wire.CONTENT_TYPE), "")
                c2 = _rewrite_json(content, fn, f"multipart part {i}") if wire.is_json(pctype) else content
                changed |= c2 is not content
                out.append((phdrs, c2))
            if changed:
                new = multipart.serialize(bnd, out)
        if new is raw:
            return headers, raw
        return body.with_length(headers, new), new

    def _headers(self, headers: list[tuple[str, str]], hide: bool, request: bool) -> list[tuple[str, str]]:
        fn = self._hide_host if hide else self._restore_host

        def sub(m: re.Match) -> str:
            return m.group(1) + (fn(m.group(2)) or m.group(2))

        out = []
        for k, v in headers:
            if hide and (k in STRIP_HEADERS or k.startswith(STRIP_PREFIXES)):
                continue
            if k in URI_HEADERS and (hide or self._restore_marks_text.search(v)):
                v = _HEADER_URI.sub(sub, v)
            elif hide and request and k == USER_AGENT:
                nftype, sep, fqdn = v.partition("-")
                if sep and self.is_home(fqdn.strip()):
                    v = f"{nftype}-{self.pseudonym(fqdn.strip())}"
            elif hide and request and k == ORIGINATING_NETWORK_ID:
                v = _SRC_FQDN.sub(sub, v)
            out.append((k, v))
        return out

    def hide_response(self, rsp: HttpResponse) -> HttpResponse:
        """Our NF's response, as the peer may see it (``rsp`` itself if nothing is hidden)."""
        headers, new_body = self._body(self._headers(rsp.headers, True, False), rsp.body, self.hide_json, _HIDE_MARKS)
        return _changed(rsp, headers, new_body)

    def hide_request(self, req: HttpRequest) -> HttpRequest:
        """Our NF's request to the peer (callback URIs, ``user-agent``, ... hidden; ``req`` itself
        if nothing is)."""
        headers, new_body = self._body(self._headers(req.headers, True, True), req.body, self.hide_json, _HIDE_MARKS)
        return _changed(req, headers, new_body)

    def restore_request(self, req: HttpRequest) -> HttpRequest:
        """A request from the peer: pseudonyms in ``:authority``, URI headers and the body are
        given their real names. N32Error 403 if ``:authority`` or ``3gpp-sbi-target-apiroot``
        names a pseudonym we do not know."""
        authority = req.authority
        if self.is_pseudonym(authority):
            authority = self._restore_authority(authority, ":authority")
        target = req.header(wire.TARGET_API_ROOT)
        if target:
            parts = split_uri(target.strip())
            if parts and self.is_pseudonym(parts[1]):
                self._restore_authority(parts[1], wire.TARGET_API_ROOT_NAME)
        headers, new_body = self._body(self._headers(req.headers, False, True), req.body, self.restore_json,
                                       self._restore_marks)
        if authority == req.authority:
            return _changed(req, headers, new_body)
        return req.evolve(authority=authority, headers=headers, body=new_body)

    def restore_response(self, rsp: HttpResponse) -> HttpResponse:
        """A response from the peer to our NF (e.g. echoing one of our hidden callback URIs)."""
        headers, new_body = self._body(self._headers(rsp.headers, False, False), rsp.body, self.restore_json,
                                       self._restore_marks)
        return _changed(rsp, headers, new_body)

    def _restore_authority(self, authority: str, param: str) -> str:
        host = host_of(authority)
        real = self._restore_host(host)
        if real is None:
            raise N32Error(403, "TARGET_NOT_ALLOWED", f"{host!r} is not an NF of this PLMN",
                           invalid_params=[{"param": param, "reason": "unknown NF"}])
        rest = authority.strip()
        port = rest.rpartition(":")[2] if ":" in rest and not rest.endswith("]") else ""
        return f"{real}:{port}" if port.isdigit() else real


M = TypeVar("M", HttpRequest, HttpResponse)


def _changed(msg: M, headers: list[tuple[str, str]], new_body: bytes) -> M:
    """``msg`` with ``headers`` and ``new_body``; ``msg`` itself when both are what it has."""
    if new_body is msg.body and headers == msg.headers:
        return msg
    return msg.evolve(headers=headers, body=new_body)


def _rewrite_json(raw: bytes, fn: Callable[[Any], Any], where: str) -> bytes:
    """``raw`` itself when it is not JSON or nothing changed, else the re-serialised document.
    N32Error when it exceeds the limits (n32/body.py)."""
    doc = body.read(raw, where=where, or_not_json=True)     # fn copies, never changes doc
    if doc is body.NOT_JSON:
        return raw
    new = fn(doc)
    if new == doc:
        return raw
    return body.dumps(new)
