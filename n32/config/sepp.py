"""The SEPP's own configuration: one schema function per top-level section, and the whole."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from .. import suites
from ..body import Limits
from ..header_limits import HeaderLimits
from ..plmn import PlmnId
from . import identity
from .errors import ConfigError, show
from .fields import Section, check_fqdn, check_uri, covers, dns_names
from .listeners import Listeners, sepp_listeners
from .peers import CAPABILITIES, PEER_KEYS, IpxKeys, Peer, ipx_keys, peer

# The built-in suites; the loader accepts whatever n32/suites.py has registered when it runs.
JWE_SUITES = suites.jwe_names()
JWS_SUITES = suites.jws_names()  # TS 33.501 §13.2.4.9
SEPP_KEYS = ("name", "fqdn", "plmn_ids", "certificate", "private_key", "listeners", "security_capabilities",
             "jwe_cipher_suites", "jws_cipher_suites", "policies", "security_profile", "home_nfs", "contexts",
             "handshake", "ipx_keys", "peers", "telescopic", "topology_hiding", "timeouts", "limits")
# The most nesting a configuration may allow: our recursive walks of JSON documents stay far from
# Python's recursion limit (1000 frames).
MAX_JSON_DEPTH = 200
# How the SEPP speaks to a home NF: HTTP/2 over TLS (ALPN h2), HTTP/2 cleartext with prior knowledge
# (RFC 9113 §3.3; the SBI is HTTP/2, TS 29.500 §5.2) or HTTP/1.1 when a route asks for it.
NF_PROTOCOLS = ("h2", "h2c", "h1")


@dataclass(frozen=True)
class Policies:
    encryption: Path
    placement: tuple[Path, ...]
    modification: Path | None = None


@dataclass(frozen=True)
class HomeNfs:
    default: str | None = None
    routes: dict[str, str] = field(default_factory=dict)
    trust_anchor: Path | None = None
    protocol: str | None = None                               # for every route without its own
    protocols: dict[str, str] = field(default_factory=dict)   # route host -> protocol

    def route(self, host: str) -> tuple[str, str] | None:
        """(apiRoot, protocol) of the home NF ``host``; None when no route and no default."""
        uri = self.routes.get(host)
        proto = self.protocols.get(host) if uri else None
        uri = uri or self.default
        if not uri:
            return None
        return uri, proto or self.protocol or derive_protocol(uri)


def derive_protocol(uri: str) -> str:
    """http:// → h2c (prior knowledge), https:// → h2 (TS 29.500 §5.2: the SBI is HTTP/2)."""
    return "h2" if uri.startswith("https:") else "h2c"


@dataclass(frozen=True)
class Timeouts:
    """Deadlines per hop (seconds): past them the NF gets 504 ProblemDetails (TS 29.500 §5.2.7)."""
    n32f: float = 10.0       # N32-f to the peer SEPP or the first-hop IPX, answer included
    home_nf: float = 8.0     # delivery to the home NF; below the peer's n32f so its cause arrives first
    idle: float = 60.0       # idle upstream connections are closed after this long


@dataclass(frozen=True)
class Contexts:
    lifetime: float = 86400.0
    rekey_margin: int = 1000
    # JWE messages per key before the SEPP must rekey: at most the 2**32 SEQ values of profile 11;
    # an operator may set fewer to bound how much traffic one key protects.
    max_messages: int = 2 ** 32
    # after a rekey the old context still accepts messages in flight for this long, then it is
    # terminated with n32f-terminate (TS 29.573 §5.2.2.4)
    rekey_grace: float = 5.0


@dataclass(frozen=True)
class Telescopic:
    """Telescopic FQDNs (TS 33.501 §13.1.1.1): ``<label>.<domain>``; the SBI certificate must
    cover ``*.<domain>``. ``domain`` None: disabled."""
    domain: str | None = None


@dataclass(frozen=True)
class TopologyHiding:
    """Topology hiding (TS 33.501 §13.1.2) of our NFs towards peers."""
    enabled: bool = True
    pseudonym_domain: str | None = None     # default th.5gc.mnc<MNC>.mcc<MCC>.3gppnetwork.org
    secret_file: Path | None = None         # HMAC key of the pseudonyms; default: random per start
    home_networks: tuple[str, ...] | None = None   # IP networks of our NFs; default: every IP literal


@dataclass(frozen=True)
class Handshake:
    at_start: bool = True
    retry_initial: float = 0.5
    retry_max: float = 30.0
    timeout: float = 10.0
    attempts: int | None = None   # None: retry for ever


@dataclass(frozen=True)
class SeppConfig:
    file: Path
    name: str
    fqdn: str
    plmn_ids: tuple[PlmnId, ...]
    certificate: Path
    private_key: Path
    listeners: Listeners
    security_capabilities: tuple[str, ...]
    jwe_cipher_suites: tuple[str, ...]
    jws_cipher_suites: tuple[str, ...]
    policies: Policies
    home_nfs: HomeNfs
    contexts: Contexts
    handshake: Handshake
    peers: tuple[Peer, ...]
    ipx_keys: tuple[IpxKeys, ...] = ()
    security_profile: str | None = None
    telescopic: Telescopic = Telescopic()
    topology_hiding: TopologyHiding = TopologyHiding(enabled=False)
    timeouts: Timeouts = Timeouts()
    limits: Limits = Limits()
    header_limits: HeaderLimits = HeaderLimits()
    # What looks wrong but is legal (identity.py): the adapter logs each line at start-up.
    warnings: tuple[str, ...] = ()

    def peer(self, name_or_fqdn: str) -> Peer | None:
        """The peer with this name or FQDN."""
        key = name_or_fqdn.lower()
        return next((p for p in self.peers if p.name == name_or_fqdn or p.fqdn == key), None)


def _placement(m: Section) -> tuple[Path, ...]:
    raw = m.data.get("placement")
    if raw is None:
        m.fail("missing (required)", "placement")
    entries = [(m.k("placement"), raw)] if isinstance(raw, str) else m.items("placement")
    out: list[Path] = []
    for key, item in entries:
        if not isinstance(item, str):
            raise ConfigError(m.file, key, f"must be a path (string), got {show(item)}")
        p = m.files.resolve(item, key)
        if m.files.is_dir(p):
            found = m.files.yaml_files(p)
            if not found:
                raise ConfigError(m.file, key, f"directory {item} has no *.yaml files")
            out += found
        else:
            out.append(p)
    if not out:
        m.fail("needs at least one placement file or directory", "placement")
    return tuple(out)


def policies(top: Section) -> Policies:
    pm = top.sub("policies", ("encryption", "placement", "modification"), required=True)
    assert pm is not None
    return Policies(pm.path("encryption"), _placement(pm), pm.path("modification", None))


def home_nfs(top: Section) -> HomeNfs:
    hm = top.sub("home_nfs", ("default", "routes", "trust_anchor", "protocol"))
    if hm is None:
        return HomeNfs()
    default = hm.uri("default", None, ("http", "https"))
    protocol = hm.get("protocol", str, None, NF_PROTOCOLS)
    routes: dict[str, str] = {}
    protocols: dict[str, str] = {}
    for host, spec in (hm.get("routes", dict, {}) or {}).items():
        rkey = hm.k(f"routes.{host}")
        name = check_fqdn(top.file, rkey, host)
        if isinstance(spec, dict):  # {uri, protocol}
            rm = hm.child(spec, rkey, ("uri", "protocol"))
            routes[name] = rm.uri("uri", schemes=("http", "https"))
            if rm.has("protocol"):
                protocols[name] = rm.get("protocol", str, None, NF_PROTOCOLS)
        else:
            routes[name] = check_uri(top.file, rkey, spec, ("http", "https"))
    anchor = hm.path("trust_anchor", None)
    if anchor is not None:
        top.files.certificates(hm.k("trust_anchor"), anchor, "trust anchor")
    checks = [("default", default, protocol)] if default else []
    checks += [(f"routes.{h}", uri, protocols.get(h) or protocol) for h, uri in routes.items()]
    for where, uri, proto in checks:
        proto = proto or derive_protocol(uri)
        if proto == "h2" and not uri.startswith("https:"):
            hm.fail(f"protocol h2 is HTTP/2 over TLS: needs an https:// URI, got {uri} (h2c for cleartext)", where)
        if proto == "h2c" and not uri.startswith("http:"):
            hm.fail(f"protocol h2c is cleartext HTTP/2: needs an http:// URI, got {uri}", where)
    return HomeNfs(default, routes, anchor, protocol, protocols)


def timeouts(top: Section) -> Timeouts:
    tm = top.sub("timeouts", ("n32f", "home_nf", "idle"))
    if tm is None:
        return Timeouts()
    return Timeouts(tm.number("n32f", 10.0, positive=True), tm.number("home_nf", 8.0, positive=True),
                    tm.number("idle", 60.0, positive=True))


def contexts(top: Section) -> Contexts:
    cm = top.sub("contexts", ("lifetime", "rekey_margin", "max_messages", "rekey_grace"))
    if cm is None:
        return Contexts()
    out = Contexts(cm.number("lifetime", 86400.0, positive=True), cm.integer("rekey_margin", 1000, minimum=0),
                   cm.integer("max_messages", 2 ** 32, minimum=1, maximum=2 ** 32),  # profile 11: 32-bit SEQ
                   cm.number("rekey_grace", 5.0, minimum=0))
    if out.rekey_margin >= out.max_messages:
        cm.fail("must be less than contexts.max_messages", "rekey_margin")
    return out


def handshake(top: Section) -> Handshake:
    sm = top.sub("handshake", ("at_start", "retry_initial", "retry_max", "timeout", "attempts"))
    if sm is None:
        return Handshake()
    out = Handshake(sm.get("at_start", bool, True), sm.number("retry_initial", 0.5, positive=True),
                    sm.number("retry_max", 30.0, positive=True), sm.number("timeout", 10.0, positive=True),
                    sm.integer("attempts", None, minimum=1))
    if out.retry_max < out.retry_initial:
        sm.fail(f"must be at least retry_initial ({out.retry_initial:g})", "retry_max")
    return out


def telescopic(top: Section, fqdn: str, sbi_cert: Path) -> Telescopic:
    tm = top.sub("telescopic", ("enabled", "domain"))
    enabled = tm.get("enabled", bool, True) if tm is not None else True
    if not enabled:
        return Telescopic(None)
    domain = (tm.fqdn("domain", None) if tm is not None else None) or fqdn
    leaf = top.files.certificates("certificate", sbi_cert)[0]
    if not covers(dns_names(leaf), f"x.{domain}"):
        raise ConfigError(top.file, "telescopic.domain",
                          f"the certificate NFs see ({sbi_cert}) does not cover *.{domain}, which telescopic "
                          "FQDNs need (TS 33.501 §13.1.1.1); add that SAN or set telescopic.enabled: false")
    return Telescopic(domain)


def topology_hiding(top: Section) -> TopologyHiding:
    hm = top.sub("topology_hiding", ("enabled", "pseudonym_domain", "secret_file", "home_networks"))
    if hm is None:
        return TopologyHiding(enabled=False)
    secret = hm.path("secret_file", None)
    if secret is not None and len(top.files.read_bytes(hm.k("secret_file"), secret)) < 16:
        hm.fail("must hold at least 16 octets (the pseudonyms' HMAC key)", "secret_file")
    nets = None
    if hm.has("home_networks"):
        nets = []
        for key, v in hm.items("home_networks"):
            try:
                nets.append(str(ipaddress.ip_network(v, strict=False)))
            except (TypeError, ValueError):
                raise ConfigError(top.file, key, f"must be an IP network such as 10.0.0.0/8, got {show(v)}") from None
        nets = tuple(nets)
    return TopologyHiding(hm.get("enabled", bool, True), hm.fqdn("pseudonym_domain", None), secret, nets)


def peers(top: Section, fqdn: str, plmn_ids: tuple[PlmnId, ...], caps: tuple[str, ...],
          ipx: tuple[IpxKeys, ...]) -> tuple[Peer, ...]:
    out: list[Peer] = []
    anchors: dict[PlmnId, tuple[bytes, int]] = {}
    for i, (pkey, item) in enumerate(top.items("peers", [])):
        pm = top.child(item, pkey, PEER_KEYS)
        p = peer(pm, caps)
        for j, q in enumerate(out):
            if q.fqdn == p.fqdn:
                pm.fail(f"duplicate peer {p.fqdn} (also peers[{j}])", "fqdn")
            if q.name == p.name:
                pm.fail(f"duplicate peer name {p.name} (also peers[{j}])", "name")
        if p.fqdn == fqdn:
            pm.fail("is this SEPP's own fqdn", "fqdn")
        anchor_bytes = top.files.read_bytes(pm.k("trust_anchor"), p.trust_anchor)
        for j, plmn in enumerate(p.plmn_ids):
            if plmn in plmn_ids:
                pm.fail(f"PLMN {plmn} is one of this SEPP's own plmn_ids", f"plmn_ids[{j}]")
            if plmn in anchors and anchors[plmn][0] != anchor_bytes:
                pm.fail(f"PLMN {plmn} already maps to another trust anchor (peers[{anchors[plmn][1]}]); "
                        "TS 33.501 §13.1: a PLMN ID may appear in one anchor only", f"plmn_ids[{j}]")
            anchors.setdefault(plmn, (anchor_bytes, i))
        hop = p.first_hop_ipx
        if hop is not None and not any(k.fqdn == hop.fqdn and k.trust_anchor for k in ipx):
            pm.fail(f"{hop.fqdn} is not among the top-level ipx_keys with a trust_anchor "
                    "(the IPX we contract, and the CA to authenticate it)", "first_hop_ipx.fqdn")
        out.append(p)
    return tuple(out)


LIMIT_KEYS = ("body", "n32c_body", "json_depth", "json_members", "json_string", "header_section",
              "h2_header_block")


def limits(top: Section) -> Limits:
    """``limits:``: bounds on every JSON body, enforced before parsing (n32/body.py)."""
    lm = top.sub("limits", LIMIT_KEYS)
    if lm is None:
        return Limits()
    d = Limits()
    return Limits(body=lm.integer("body", d.body, minimum=1024),
                  n32c_body=lm.integer("n32c_body", d.n32c_body, minimum=1024),
                  depth=lm.integer("json_depth", d.depth, minimum=8, maximum=MAX_JSON_DEPTH),
                  members=lm.integer("json_members", d.members, minimum=16),
                  string=lm.integer("json_string", d.string, minimum=64))


def header_limits(top: Section) -> HeaderLimits:
    """``limits.header_section`` / ``limits.h2_header_block``: bounds on a request's header
    section on every listener (n32/header_limits.py)."""
    lm = top.sub("limits", LIMIT_KEYS)
    d = HeaderLimits()
    if lm is None:
        return d
    section = lm.integer("header_section", d.section, minimum=4096)
    # the HTTP/2 decoder must take what the 431 check is to see; hpack's own floor is 64 KiB
    block = lm.integer("h2_header_block", max(d.h2_block, section), minimum=max(section, 65536),
                       maximum=8 * 1024 * 1024)   # h2 buffers at most 64 frames of 128 KiB per block
    return HeaderLimits(section=section, h2_block=block)


def sepp_config(top: Section) -> SeppConfig:
    """The whole SEPP configuration from its top-level mapping."""
    name = top.get("name", str)
    if not name.strip():
        top.fail("must not be empty", "name")
    fqdn = top.fqdn("fqdn")
    plmn_ids = top.plmns("plmn_ids")
    cert, key = top.path("certificate"), top.path("private_key")
    leaf, _ = top.files.cert_and_key("certificate", cert, "private_key", key)
    warnings = identity.sepp_identity(top.file, fqdn, plmn_ids, leaf)
    listeners = sepp_listeners(top)
    caps = top.choice_list("security_capabilities", CAPABILITIES, ["PRINS", "TLS"])
    jwe = top.choice_list("jwe_cipher_suites", suites.jwe_names(), ["A128GCM", "A256GCM"])
    jws = top.choice_list("jws_cipher_suites", suites.jws_names(), ["ES256"])
    pol = policies(top)
    profile = top.get("security_profile", str, None)
    home, ctxs, hs = home_nfs(top), contexts(top), handshake(top)
    ipx = ipx_keys(top, "ipx_keys")
    sbi = listeners.sbi
    tele = telescopic(top, fqdn, (sbi.certificate if sbi else None) or cert)
    hiding = topology_hiding(top)
    peer_list = peers(top, fqdn, plmn_ids, caps, ipx)
    for i, p in enumerate(peer_list):
        warnings += identity.peer_identity(top.file, f"peers[{i}]", p.fqdn, p.plmn_ids)
    return SeppConfig(file=top.file, name=name, fqdn=fqdn, plmn_ids=plmn_ids, certificate=cert, private_key=key,
                      listeners=listeners, security_capabilities=caps, jwe_cipher_suites=jwe,
                      jws_cipher_suites=jws, policies=pol, home_nfs=home, contexts=ctxs,
                      handshake=hs, peers=peer_list, ipx_keys=ipx, warnings=tuple(warnings),
                      security_profile=profile, telescopic=tele, topology_hiding=hiding, timeouts=timeouts(top),
                      limits=limits(top), header_limits=header_limits(top))
