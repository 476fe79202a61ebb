"""An IPX provider's configuration (lab/ipx): next hops and modification rules."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigError, show
from .fields import REQUIRED, Section, dns_names
from .listeners import Listeners, listener

HTTP_METHODS = ("GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE")
PATCH_OPS = ("add", "remove", "replace", "move", "copy", "test")
IPX_KEYS = ("name", "fqdn", "certificate", "private_key", "listeners", "trust_anchors", "next_hops",
            "modifications")
_MATCH_KEYS = ("direction", "method", "path", "peer")
_TEMPLATE_VAR = re.compile(r"\{[A-Za-z_][A-Za-z0-9_-]*\}")


@dataclass(frozen=True)
class NextHop:
    uri: str
    server_name: str
    peer: str | None = None       # receiving SEPP FQDN this hop leads to; None = any
    direction: str = "request"    # match.direction (responses return on the request's connection)


@dataclass(frozen=True)
class ModificationRule:
    direction: str = "request"
    method: str | None = None
    path: str | None = None       # always a regular expression (templates are converted)
    peer: str | None = None
    patch: tuple[dict, ...] = ()
    set_headers: dict[str, str] = field(default_factory=dict)
    reject: dict | None = None    # roaming hub error instead of forwarding: {status, cause, detail}


@dataclass(frozen=True)
class IpxConfig:
    file: Path
    name: str
    fqdn: str
    certificate: Path
    private_key: Path
    listeners: Listeners
    trust_anchors: tuple[Path, ...]
    next_hops: tuple[NextHop, ...]
    modifications: tuple[ModificationRule, ...]


def _path_regex(m: Section, key: str, value: str) -> str:
    """A path template (``/nausf-auth/v1/ue-authentications/{authCtxId}``) becomes an anchored
    regular expression (each ``{var}`` = one segment); anything else must be a valid regex."""
    if _TEMPLATE_VAR.search(value):
        parts = _TEMPLATE_VAR.split(value)
        regex = "^" + "[^/]+".join(re.escape(p) for p in parts) + "$"
    else:
        regex = value
    try:
        re.compile(regex)
    except re.error as e:
        raise ConfigError(m.file, key, f"not a valid regular expression or path template: {show(value)} ({e})") \
            from None
    return regex


def _match(m: Section, fields: tuple[str, ...]) -> dict[str, Any]:
    """The match conditions of a rule: ``match: {...}`` or the same keys at rule level."""
    mm = m.sub("match", fields)
    if mm is not None:
        for name in fields:
            if m.has(name):
                m.fail("given both here and under match", name)
    src = mm or m
    out: dict[str, Any] = {"direction": src.get("direction", str, "request", ("request", "response"))}
    if "method" in fields:
        method = src.get("method", str, None)
        if method is not None and method.upper() not in HTTP_METHODS:
            src.fail(f"must be one of {', '.join(HTTP_METHODS)}, got {show(method)}", "method")
        out["method"] = method.upper() if method else None
    if "path" in fields:
        path = src.get("path", str, None)
        out["path"] = _path_regex(src, src.k("path"), path) if path is not None else None
    out["peer"] = src.fqdn("peer", None)
    return out


def _patch(m: Section) -> tuple[dict, ...]:
    ops = []
    for key, op in m.items("patch", []):
        o = m.child(op, key, ("op", "path", "value", "from"))
        kind = o.get("op", str, REQUIRED, PATCH_OPS)
        for ptr in ("path", "from") if kind in ("move", "copy") else ("path",):
            value = o.get(ptr, str)
            if value and not value.startswith("/"):
                o.fail(f"must be a JSON pointer (\"\" or starting with /), got {show(value)}", ptr)
        if kind not in ("move", "copy") and o.has("from"):
            o.fail(f"only move and copy take from, not {kind}", "from")
        if kind in ("add", "replace", "test") and "value" not in o.data:
            o.fail(f"{kind} needs a value", "value")
        ops.append(dict(op))
    return tuple(ops)


def _reject(m: Section) -> dict | None:
    r = m.sub("reject", ("status", "cause", "detail"))
    if r is None:
        return None
    out: dict[str, Any] = {"status": r.integer("status", 403, minimum=400, maximum=599)}
    for name in ("cause", "detail"):
        if r.has(name):
            out[name] = r.get(name, str)
    return out


def ipx_config(top: Section) -> IpxConfig:
    """The whole IPX configuration from its top-level mapping."""
    files = top.files
    name = top.get("name", str)
    fqdn = top.fqdn("fqdn")
    cert, key = top.path("certificate"), top.path("private_key")
    leaf, private = files.cert_and_key("certificate", cert, "private_key", key)
    if not files.is_p256(private.public_key()):
        top.fail("must be an EC P-256 key: it also signs the JWS (ES256 only)", "private_key")
    names = {n.lower().rstrip(".") for n in dns_names(leaf)}
    if fqdn not in names:
        top.fail(f"{fqdn} is not a DNS name of the certificate ({', '.join(sorted(names)) or 'none'})", "fqdn")

    lm = top.sub("listeners", ("n32f",), required=True)
    assert lm is not None
    n32f = listener(lm.sub("n32f", ("host", "port"), required=True), with_tls=False)
    assert n32f is not None

    anchors = []
    for akey, raw in top.items("trust_anchors"):
        if not isinstance(raw, str):
            raise ConfigError(top.file, akey, f"must be a path (string), got {show(raw)}")
        path = files.resolve(raw, akey)
        files.certificates(akey, path, "trust anchor")
        anchors.append(path)
    if not anchors:
        top.fail("needs at least one CA", "trust_anchors")

    hops = []
    for hkey, item in top.items("next_hops"):
        h = top.child(item, hkey, ("match", "uri", "server_name", "direction", "peer"))
        cond = _match(h, ("direction", "peer"))
        uri = h.uri("uri")
        hops.append(NextHop(uri, h.fqdn("server_name", None) or urlsplit(uri).hostname or "", cond["peer"],
                            cond["direction"]))
    if not hops:
        top.fail("needs at least one next hop", "next_hops")

    rules = []
    for rkey, item in top.items("modifications", []):
        r = top.child(item, rkey, ("match", *_MATCH_KEYS, "patch", "set_headers", "reject"))
        cond = _match(r, _MATCH_KEYS)
        headers = r.get("set_headers", dict, {})
        for hname, hvalue in headers.items():
            if not isinstance(hname, str) or not isinstance(hvalue, str):
                r.fail(f"header names and values must be strings, got {show(hname)}: {show(hvalue)}", "set_headers")
        rules.append(ModificationRule(cond["direction"], cond["method"], cond["path"], cond["peer"], _patch(r),
                                      dict(headers), _reject(r)))
    return IpxConfig(top.file, name, fqdn, cert, key, Listeners(n32=n32f, n32f=n32f), tuple(anchors), tuple(hops),
                     tuple(rules))
