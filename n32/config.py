"""SEPP and IPX configuration: load one YAML file, validate it, fail with one clear line.

Every problem raises :class:`ConfigError` whose text is ``<file>: <key>: <what is wrong>``.
Relative paths resolve against the current directory first, then the config file's directory.
docs/configuration.md documents every key.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

CAPABILITIES = ("PRINS", "TLS")
JWE_SUITES = ("A128GCM", "A256GCM")
JWS_SUITES = ("ES256",)  # TS 33.501 §13.2.4.9
_PLMN = re.compile(r"^(\d{3})-(\d{2,3})$")
_FQDN = re.compile(r"^(?=.{4,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$")


class ConfigError(ValueError):
    def __init__(self, file: Path | str, key: str, problem: str) -> None:
        super().__init__(f"{file}: {key}: {problem}")


@dataclass(frozen=True)
class PlmnId:
    mcc: str
    mnc: str

    def __str__(self) -> str:
        return f"{self.mcc}-{self.mnc}"

    def to_wire(self) -> dict:
        return {"mcc": self.mcc, "mnc": self.mnc}


@dataclass(frozen=True)
class Listener:
    host: str
    port: int
    tls: bool = True
    certificate: Path | None = None
    private_key: Path | None = None


@dataclass(frozen=True)
class Listeners:
    n32: Listener
    n32f: Listener | None = None
    sbi: Listener | None = None


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


@dataclass(frozen=True)
class Contexts:
    lifetime: float = 86400.0
    rekey_margin: int = 1000


@dataclass(frozen=True)
class Handshake:
    at_start: bool = True
    retry_initial: float = 0.5
    retry_max: float = 30.0
    timeout: float = 10.0
    attempts: int | None = None   # None: retry for ever


@dataclass(frozen=True)
class IpxKeys:
    fqdn: str
    public_keys: tuple[str, ...] = ()     # PEM texts
    certificates: tuple[str, ...] = ()    # PEM texts
    trust_anchor: Path | None = None      # TLS anchor for N32-f connections from/to this IPX

    def sec_info(self) -> dict:
        """IpxProviderSecInfo (TS 29.573 §6.1.5.2.8; profile 7: PEM strings)."""
        info: dict[str, Any] = {"ipxProviderId": self.fqdn}
        if self.public_keys:
            info["rawPublicKeyList"] = list(self.public_keys)
        if self.certificates:
            info["certificateList"] = list(self.certificates)
        return info


@dataclass(frozen=True)
class FirstHop:
    fqdn: str
    uri: str


@dataclass(frozen=True)
class PeerOptions:
    kdf_hash: str = "sha256"
    kdf_context: str = "default"
    authorized_ipx_null: str = "string"
    tls12: bool = False
    policy_mismatch: str = "report"
    header_value_form: str = "plain"


@dataclass(frozen=True)
class Peer:
    name: str
    fqdn: str
    n32c_uri: str
    plmn_ids: tuple[PlmnId, ...]
    trust_anchor: Path
    security_capabilities: tuple[str, ...]
    initiate: bool = True
    n32f_uri: str | None = None
    first_hop_ipx: FirstHop | None = None
    ipx_keys: tuple[IpxKeys, ...] = ()
    options: PeerOptions = PeerOptions()


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


class _Reader:
    """Walks a YAML mapping, remembering the dotted key for error messages."""

    def __init__(self, file: Path, data: Any, key: str = "") -> None:
        self.file, self.data, self.key = file, data, key
        if not isinstance(data, dict):
            self.fail(f"must be a mapping, got {type(data).__name__}")
        self._used: set[str] = set()

    def k(self, name: str) -> str:
        return f"{self.key}.{name}" if self.key else name

    def fail(self, problem: str, name: str | None = None) -> ConfigError:
        raise ConfigError(self.file, self.k(name) if name else (self.key or "(top)"), problem)

    def get(self, name: str, typ: type | tuple, default: Any = ..., choices: tuple | None = None) -> Any:
        self._used.add(name)
        if name not in self.data or self.data[name] is None:
            if default is ...:
                self.fail("missing (required)", name)
            return default
        value = self.data[name]
        if typ is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
            self.fail(f"must be {getattr(typ, '__name__', typ)}, got {value!r}", name)
        if choices is not None and value not in choices:
            self.fail(f"must be one of {', '.join(map(str, choices))}, got {value!r}", name)
        return value

    def sub(self, name: str, default: Any = ...) -> "_Reader | None":
        self._used.add(name)
        if name not in self.data or self.data[name] is None:
            if default is ...:
                self.fail("missing (required)", name)
            return None
        return _Reader(self.file, self.data[name], self.k(name))

    def path(self, name: str, default: Any = ..., must_exist: bool = True) -> Path | None:
        raw = self.get(name, str, default)
        return None if raw is None else resolve(self.file, raw, self.k(name), must_exist)

    def done(self) -> None:
        for extra in set(self.data) - self._used:
            self.fail("unknown key (typo?)", extra)


def resolve(file: Path, raw: str, key: str, must_exist: bool = True) -> Path:
    p = Path(raw).expanduser()
    for cand in ([p] if p.is_absolute() else [Path.cwd() / p, file.parent / p]):
        if cand.exists():
            return cand
    if must_exist:
        raise ConfigError(file, key, f"file not found: {raw}")
    return p


def _plmns(r: _Reader, name: str) -> tuple[PlmnId, ...]:
    items = r.get(name, list)
    out = []
    for i, s in enumerate(items):
        m = _PLMN.match(str(s))
        if not m:
            r.fail(f"PLMN ID must look like 001-01 (MCC-MNC), got {s!r}", f"{name}[{i}]")
        out.append(PlmnId(m.group(1), m.group(2)))
    if not out:
        r.fail("needs at least one PLMN ID", name)
    return tuple(out)


def _fqdn(r: _Reader, name: str) -> str:
    value = r.get(name, str)
    if not _FQDN.match(value):
        r.fail(f"not a valid FQDN: {value!r}", name)
    return value.lower()


def _listener(r: _Reader | None) -> Listener | None:
    if r is None:
        return None
    port = r.get("port", int)
    if not 1 <= port <= 65535:
        r.fail(f"must be 1-65535, got {port}", "port")
    lst = Listener(r.get("host", str, "127.0.0.1"), port, r.get("tls", bool, True),
                   r.path("certificate", None), r.path("private_key", None))
    r.done()
    return lst


def _list_of(r: _Reader, name: str, choices: tuple[str, ...], default: Any = ...) -> tuple[str, ...]:
    items = r.get(name, list, default)
    for i, v in enumerate(items):
        if v not in choices:
            r.fail(f"must be one of {', '.join(choices)}, got {v!r}", f"{name}[{i}]")
    if not items:
        r.fail("needs at least one entry", name)
    return tuple(items)


def _check_cert_key(file: Path, key: str, cert: Path, private_key: Path) -> None:
    try:
        c = x509.load_pem_x509_certificate(cert.read_bytes())
    except ValueError as e:
        raise ConfigError(file, key, f"not a PEM certificate: {cert} ({e})") from None
    try:
        k = serialization.load_pem_private_key(private_key.read_bytes(), None)
    except (ValueError, TypeError) as e:
        raise ConfigError(file, key.replace("certificate", "private_key"), f"not a PEM private key: {e}") from None
    if c.public_key().public_numbers() != k.public_key().public_numbers():
        raise ConfigError(file, key.replace("certificate", "private_key"), f"does not match {cert}")


def _ipx_keys(r: _Reader, name: str) -> tuple[IpxKeys, ...]:
    out = []
    for i, item in enumerate(r.get(name, list, [])):
        s = _Reader(r.file, item, f"{r.k(name)}[{i}]")
        pubs = tuple(resolve(r.file, p, s.k("public_keys")).read_text() for p in s.get("public_keys", list, []))
        certs = tuple(resolve(r.file, p, s.k("certificates")).read_text() for p in s.get("certificates", list, []))
        out.append(IpxKeys(_fqdn(s, "fqdn"), pubs, certs, s.path("trust_anchor", None)))
        s.done()
    return tuple(out)


def _peer(r: _Reader, own_caps: tuple[str, ...]) -> Peer:
    fqdn = _fqdn(r, "fqdn")
    caps = _list_of(r, "security_capabilities", CAPABILITIES, list(own_caps))
    for c in caps:
        if c not in own_caps:
            r.fail(f"{c} is not among this SEPP's security_capabilities", "security_capabilities")
    opts = r.sub("options", None)
    options = PeerOptions()
    if opts is not None:
        options = PeerOptions(
            kdf_hash=opts.get("kdf_hash", str, "sha256", ("sha256", "sha384", "sha512")),
            kdf_context=opts.get("kdf_context", str, "default", ("default", "initiator", "responder", "joined")),
            authorized_ipx_null=opts.get("authorized_ipx_null", str, "string", ("string", "json-null")),
            tls12=opts.get("tls12", bool, False),
            policy_mismatch=opts.get("policy_mismatch", str, "report", ("report", "log")),
            header_value_form=opts.get("header_value_form", str, "plain", ("plain", "headerval")))
        opts.done()
    hop = r.sub("first_hop_ipx", None)
    first_hop = None
    if hop is not None:
        first_hop = FirstHop(_fqdn(hop, "fqdn"), hop.get("uri", str))
        hop.done()
    uri = r.get("n32c_uri", str)
    if not uri.startswith("https://"):
        r.fail(f"must be an https:// URI, got {uri!r}", "n32c_uri")
    peer = Peer(name=r.get("name", str, fqdn), fqdn=fqdn, n32c_uri=uri.rstrip("/"), plmn_ids=_plmns(r, "plmn_ids"),
                trust_anchor=r.path("trust_anchor"), security_capabilities=caps,
                initiate=r.get("initiate", bool, True), n32f_uri=r.get("n32f_uri", str, None),
                first_hop_ipx=first_hop, ipx_keys=_ipx_keys(r, "ipx_keys"), options=options)
    r.done()
    return peer


def load_sepp_config(file: Path | str) -> SeppConfig:
    file = Path(file)
    try:
        data = yaml.safe_load(file.read_text())
    except OSError as e:
        raise ConfigError(file, "(file)", f"cannot read: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ConfigError(file, "(file)", f"not valid YAML: {e}") from None
    r = _Reader(file, data)
    caps = _list_of(r, "security_capabilities", CAPABILITIES, ["PRINS", "TLS"])
    cert, key = r.path("certificate"), r.path("private_key")
    _check_cert_key(file, "certificate", cert, key)
    lr = r.sub("listeners")
    listeners = Listeners(_listener(lr.sub("n32")), _listener(lr.sub("n32f", None)), _listener(lr.sub("sbi", None)))
    lr.done()
    pr = r.sub("policies")
    placement: list[Path] = []
    for i, raw in enumerate(pr.get("placement", list)):
        p = resolve(file, raw, f"policies.placement[{i}]")
        placement += sorted(p.glob("*.yaml")) if p.is_dir() else [p]
    policies = Policies(pr.path("encryption"), tuple(placement), pr.path("modification", None))
    pr.done()
    hr = r.sub("home_nfs", None)
    home = HomeNfs()
    if hr is not None:
        home = HomeNfs(hr.get("default", str, None), dict(hr.get("routes", dict, {})), hr.path("trust_anchor", None))
        hr.done()
    cr = r.sub("contexts", None)
    contexts = Contexts()
    if cr is not None:
        contexts = Contexts(cr.get("lifetime", float, 86400.0), cr.get("rekey_margin", int, 1000))
        cr.done()
    hs = r.sub("handshake", None)
    handshake = Handshake()
    if hs is not None:
        handshake = Handshake(hs.get("at_start", bool, True), hs.get("retry_initial", float, 0.5),
                              hs.get("retry_max", float, 30.0), hs.get("timeout", float, 10.0),
                              hs.get("attempts", int, None))
        hs.done()
    peers = []
    for i, item in enumerate(r.get("peers", list, [])):
        peers.append(_peer(_Reader(file, item, f"peers[{i}]"), caps))
    seen: dict[str, int] = {}
    plmn_anchor: dict[tuple[str, str], Path] = {}
    for i, p in enumerate(peers):
        if p.fqdn in seen:
            raise ConfigError(file, f"peers[{i}].fqdn", f"duplicate peer {p.fqdn} (also peers[{seen[p.fqdn]}])")
        seen[p.fqdn] = i
        for plmn in p.plmn_ids:
            k = (plmn.mcc, plmn.mnc.zfill(3))
            if k in plmn_anchor and plmn_anchor[k] != p.trust_anchor:
                raise ConfigError(file, f"peers[{i}].plmn_ids", f"PLMN {plmn} already maps to another trust anchor "
                                  "(TS 33.501 §13.1: one anchor per PLMN ID)")
            plmn_anchor[k] = p.trust_anchor
    cfg = SeppConfig(
        file=file, name=r.get("name", str), fqdn=_fqdn(r, "fqdn"), plmn_ids=_plmns(r, "plmn_ids"),
        certificate=cert, private_key=key, listeners=listeners, security_capabilities=caps,
        jwe_cipher_suites=_list_of(r, "jwe_cipher_suites", JWE_SUITES, ["A128GCM", "A256GCM"]),
        jws_cipher_suites=_list_of(r, "jws_cipher_suites", JWS_SUITES, ["ES256"]),
        policies=policies, home_nfs=home, contexts=contexts, handshake=handshake, peers=tuple(peers),
        ipx_keys=_ipx_keys(r, "ipx_keys"), security_profile=r.get("security_profile", str, None))
    r.done()
    return cfg


# ---------------------------------------------------------------------------------- IPX
@dataclass(frozen=True)
class NextHop:
    uri: str
    server_name: str
    peer: str | None = None   # receiving SEPP FQDN this hop leads to; None = any


@dataclass(frozen=True)
class ModificationRule:
    direction: str = "request"
    method: str | None = None
    path: str | None = None
    peer: str | None = None
    patch: tuple[dict, ...] = ()
    set_headers: dict[str, str] = field(default_factory=dict)
    reject: dict | None = None   # roaming hub error instead of forwarding: {status, cause, detail}


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


def load_ipx_config(file: Path | str) -> IpxConfig:
    file = Path(file)
    try:
        data = yaml.safe_load(file.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(file, "(file)", f"cannot load: {e}") from None
    r = _Reader(file, data)
    cert, key = r.path("certificate"), r.path("private_key")
    _check_cert_key(file, "certificate", cert, key)
    lr = r.sub("listeners")
    n32f = _listener(lr.sub("n32f"))
    listeners = Listeners(n32=n32f, n32f=n32f)
    lr.done()
    anchors = tuple(resolve(file, a, f"trust_anchors[{i}]") for i, a in enumerate(r.get("trust_anchors", list)))
    hops = []
    for i, h in enumerate(r.get("next_hops", list)):
        s = _Reader(file, h, f"next_hops[{i}]")
        hops.append(NextHop(s.get("uri", str), s.get("server_name", str), s.get("peer", str, None)))
        s.done()
    rules = []
    for i, m in enumerate(r.get("modifications", list, [])):
        s = _Reader(file, m, f"modifications[{i}]")
        patch = s.get("patch", list, [])
        for j, op in enumerate(patch):
            if not isinstance(op, dict) or "op" not in op or "path" not in op:
                s.fail("must be an RFC 6902 operation with op and path", f"patch[{j}]")
        rules.append(ModificationRule(s.get("direction", str, "request", ("request", "response")),
                                      s.get("method", str, None), s.get("path", str, None), s.get("peer", str, None),
                                      tuple(patch), dict(s.get("set_headers", dict, {})), s.get("reject", dict, None)))
        s.done()
    cfg = IpxConfig(file, r.get("name", str), _fqdn(r, "fqdn"), cert, key, listeners, anchors, tuple(hops), tuple(rules))
    r.done()
    return cfg
