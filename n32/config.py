"""SEPP and IPX configuration: load one YAML file, validate it, fail with one clear line.

    cfg = load_sepp_config("lab/out/sepp-v.yaml")      # -> SeppConfig
    ipx = load_ipx_config("lab/out/ipx1.yaml")         # -> IpxConfig

Every problem raises :class:`ConfigError` whose text is exactly one line
``<file>: <dotted.key>: <what is wrong>``, e.g.
``lab/sepp-v.yaml: peers[0].trust_anchor: file not found: certs/out/plmn-999-70/ca.crt``.

* Unknown keys are errors (typo protection), reported before anything else in their mapping,
  with a suggestion when a known key is close. Duplicate keys in one mapping are errors too.
* Relative paths resolve against the current working directory first, then against the
  directory of the config file (so both ``make lab`` from the repository root and configs that
  sit next to their certificates work).
* Certificates, keys and trust anchors must exist and parse; a private key must match its
  certificate; certificates must be within their validity period.
* A PLMN ID may map to only one peer trust anchor (TS 33.501 §13.1); our own PLMN IDs may not
  be claimed by a peer.

docs/configuration.md documents every key.
"""
from __future__ import annotations

import datetime
import difflib
import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from .plmn import PlmnId

__all__ = [
    "CAPABILITIES", "JWE_SUITES", "JWS_SUITES", "ConfigError", "PlmnId", "Listener", "Listeners", "Policies",
    "HomeNfs", "Contexts", "Handshake", "IpxKeys", "FirstHop", "PeerOptions", "Peer", "SeppConfig",
    "NextHop", "ModificationRule", "IpxConfig", "load_sepp_config", "load_ipx_config", "resolve",
]

CAPABILITIES = ("PRINS", "TLS")
JWE_SUITES = ("A128GCM", "A256GCM")
JWS_SUITES = ("ES256",)  # TS 33.501 §13.2.4.9
HTTP_METHODS = ("GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE")
PATCH_OPS = ("add", "remove", "replace", "move", "copy", "test")
_FQDN = re.compile(r"^(?=.{4,253}\Z)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}\Z")
_TEMPLATE_VAR = re.compile(r"\{[A-Za-z_][A-Za-z0-9_-]*\}")
_WILDCARD_HOSTS = ("", "0.0.0.0", "::", "[::]")
REQUIRED: Any = object()  # marker: the key must be present


class ConfigError(ValueError):
    """``<file>: <key>: <problem>`` on one line (newlines in the problem are folded)."""

    def __init__(self, file: Path | str, key: str, problem: str) -> None:
        self.file, self.key, self.problem = str(file), key, " ".join(str(problem).split())
        super().__init__(f"{self.file}: {self.key}: {self.problem}")


# ------------------------------------------------------------------------------- SEPP model
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


OPTION_CHOICES: dict[str, tuple] = {
    "kdf_hash": ("sha256", "sha384", "sha512"),
    "kdf_context": ("default", "initiator", "responder", "joined"),
    "authorized_ipx_null": ("string", "json-null"),
    "policy_mismatch": ("report", "log"),
    "header_value_form": ("plain", "headerval"),
}


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
    telescopic: Telescopic = Telescopic()
    topology_hiding: TopologyHiding = TopologyHiding(enabled=False)

    def peer(self, name_or_fqdn: str) -> Peer | None:
        """The peer with this name or FQDN."""
        key = name_or_fqdn.lower()
        return next((p for p in self.peers if p.name == name_or_fqdn or p.fqdn == key), None)


# -------------------------------------------------------------------------------- IPX model
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


# ---------------------------------------------------------------------------------- reading
_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false", list: "a list",
               dict: "a mapping"}


def _type_name(typ: Any) -> str:
    return _TYPE_NAMES.get(typ, getattr(typ, "__name__", str(typ)))


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys in a mapping (the last one would silently win)."""


def _mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict:
    seen: set = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        if isinstance(key, (list, dict)):
            raise yaml.constructor.ConstructorError(None, None, "keys must be scalars", key_node.start_mark)
        seen.add(key)
    loader.flatten_mapping(node)
    return dict(loader.construct_pairs(node, deep=True))


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def _read_yaml(file: Path) -> Any:
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(file, "(file)", "file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(file, "(file)", f"cannot read: {getattr(e, 'strerror', None) or e}") from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (SafeLoader subclass)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e)
        raise ConfigError(file, "(file)", f"not valid YAML: {where}{problem}") from None


class _Map:
    """One YAML mapping at ``key`` in ``file``; every accessor names the dotted key on error."""

    def __init__(self, file: Path, data: Any, key: str, allowed: tuple[str, ...]) -> None:
        self.file, self.data, self.key = file, data, key
        if not isinstance(data, dict):
            self.fail(f"must be a mapping, got {_show(data)}")
        for name in data:
            if name not in allowed:
                close = difflib.get_close_matches(str(name), allowed, n=1)
                hint = f" (did you mean {close[0]}?)" if close else f" (known: {', '.join(allowed)})"
                self.fail(f"unknown key{hint}", str(name))

    def k(self, name: str) -> str:
        return f"{self.key}.{name}" if self.key else name

    def fail(self, problem: str, name: str | None = None) -> NoReturn:
        raise ConfigError(self.file, self.k(name) if name else (self.key or "(top)"), problem)

    def has(self, name: str) -> bool:
        return self.data.get(name) is not None

    def get(self, name: str, typ: Any, default: Any = REQUIRED, choices: tuple | None = None) -> Any:
        if not self.has(name):
            if default is REQUIRED:
                self.fail("missing (required)", name)
            return default
        value = self.data[name]
        if typ is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, typ) or (typ in (int, float) and isinstance(value, bool)):
            self.fail(f"must be {_type_name(typ)}, got {_show(value)}", name)
        if choices is not None and value not in choices:
            self.fail(f"must be one of {', '.join(map(str, choices))}, got {_show(value)}", name)
        return value

    def number(self, name: str, default: Any, *, minimum: float | None = None, positive: bool = False) -> Any:
        value = self.get(name, float, default)
        if value is None:
            return None
        if positive and not value > 0:
            self.fail(f"must be greater than 0, got {value:g}", name)
        if minimum is not None and value < minimum:
            self.fail(f"must be at least {minimum:g}, got {value:g}", name)
        return value

    def integer(self, name: str, default: Any, *, minimum: int | None = None, maximum: int | None = None) -> Any:
        value = self.get(name, int, default)
        if value is None:
            return None
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            lo = "" if minimum is None else str(minimum)
            hi = "" if maximum is None else str(maximum)
            rng = f"{lo}-{hi}" if lo and hi else (f"at least {lo}" if lo else f"at most {hi}")
            self.fail(f"must be {rng}, got {value}", name)
        return value

    def sub(self, name: str, allowed: tuple[str, ...], required: bool = False) -> "_Map | None":
        if not self.has(name):
            if required:
                self.fail("missing (required)", name)
            return None
        return _Map(self.file, self.data[name], self.k(name), allowed)

    def items(self, name: str, default: Any = REQUIRED) -> list[tuple[str, Any]]:
        """(dotted key, value) of each entry of a list."""
        values = self.get(name, list, default)
        return [(f"{self.k(name)}[{i}]", v) for i, v in enumerate(values or [])]

    def path(self, name: str, default: Any = REQUIRED) -> Any:
        raw = self.get(name, str, default)
        return None if raw is None else resolve(self.file, raw, self.k(name))

    def fqdn(self, name: str, default: Any = REQUIRED) -> Any:
        value = self.get(name, str, default)
        if value is None:
            return None
        return _check_fqdn(self.file, self.k(name), value)

    def uri(self, name: str, default: Any = REQUIRED, schemes: tuple[str, ...] = ("https",)) -> Any:
        value = self.get(name, str, default)
        return None if value is None else _check_uri(self.file, self.k(name), value, schemes)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _check_fqdn(file: Path, key: str, value: Any) -> str:
    if not isinstance(value, str) or not _FQDN.match(value.rstrip(".")):
        raise ConfigError(file, key, f"not a valid FQDN: {_show(value)}")
    return value.rstrip(".").lower()


def _check_uri(file: Path, key: str, value: Any, schemes: tuple[str, ...]) -> str:
    if not isinstance(value, str):
        raise ConfigError(file, key, f"must be {_type_name(str)}, got {_show(value)}")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError as e:
        raise ConfigError(file, key, f"not a valid URI: {_show(value)} ({e})") from None
    if parts.scheme not in schemes or not parts.hostname:
        want = " or ".join(f"{s}://" for s in schemes)
        raise ConfigError(file, key, f"must be a {want} URI with a host, got {_show(value)}")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigError(file, key, f"must be an apiRoot (scheme://host[:port][/prefix]), got {_show(value)}")
    return value.rstrip("/")


def resolve(file: Path, raw: str, key: str, must_exist: bool = True) -> Path:
    """``raw`` as a path: absolute as is; relative against the current directory, then against the
    directory of ``file``. ConfigError if it exists in neither (and ``must_exist``)."""
    p = Path(raw).expanduser()
    for cand in ([p] if p.is_absolute() else [Path.cwd() / p, Path(file).parent / p]):
        if cand.exists():
            return cand
    if must_exist:
        raise ConfigError(file, key, f"file not found: {raw}")
    return p


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _certificates(file: Path, key: str, path: Path, what: str = "certificate") -> list[x509.Certificate]:
    """All PEM certificates in ``path`` (at least one), each within its validity period."""
    try:
        certs = x509.load_pem_x509_certificates(path.read_bytes())
    except (OSError, ValueError) as e:
        raise ConfigError(file, key, f"not a PEM {what}: {path} ({e})") from None
    now = _now()
    for c in certs:
        if c.not_valid_after_utc < now:
            raise ConfigError(file, key, f"{what} {path} expired on {c.not_valid_after_utc:%Y-%m-%d}")
        if c.not_valid_before_utc > now:
            raise ConfigError(file, key, f"{what} {path} is not valid before {c.not_valid_before_utc:%Y-%m-%d}")
    return certs


def _spki(public_key: Any) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _private_key(file: Path, key: str, path: Path) -> Any:
    try:
        return serialization.load_pem_private_key(path.read_bytes(), None)
    except (OSError, ValueError, TypeError) as e:
        raise ConfigError(file, key, f"not an unencrypted PEM private key: {path} ({e})") from None


def _cert_and_key(file: Path, cert_key: str, cert: Path, key_key: str, key: Path) -> tuple[x509.Certificate, Any]:
    leaf = _certificates(file, cert_key, cert)[0]
    private = _private_key(file, key_key, key)
    if _spki(leaf.public_key()) != _spki(private.public_key()):
        raise ConfigError(file, key_key, f"does not match {cert}")
    return leaf, private


def _is_p256(public_key: Any) -> bool:
    return isinstance(public_key, ec.EllipticCurvePublicKey) and isinstance(public_key.curve, ec.SECP256R1)


def _plmns(m: _Map, name: str) -> tuple[PlmnId, ...]:
    out: list[PlmnId] = []
    for key, raw in m.items(name):
        try:
            plmn = PlmnId.parse(raw)
        except (ValueError, TypeError) as e:
            raise ConfigError(m.file, key, str(e)) from None
        if plmn in out:
            raise ConfigError(m.file, key, f"duplicate PLMN ID {plmn}")
        out.append(plmn)
    if not out:
        m.fail("needs at least one PLMN ID", name)
    return tuple(out)


def _choice_list(m: _Map, name: str, choices: tuple[str, ...], default: Any = REQUIRED) -> tuple[str, ...]:
    items = m.get(name, list, default)
    for i, v in enumerate(items):
        if v not in choices:
            m.fail(f"must be one of {', '.join(choices)}, got {_show(v)}", f"{name}[{i}]")
        if v in items[:i]:
            m.fail(f"duplicate {v}", f"{name}[{i}]")
    if not items:
        m.fail("needs at least one entry", name)
    return tuple(items)


def _listener(m: _Map | None, with_tls: bool) -> Listener | None:
    if m is None:
        return None
    host = m.get("host", str, "127.0.0.1")
    if not host.strip() or any(ch.isspace() for ch in host):
        m.fail(f"not a host name or address: {_show(host)}", "host")
    port = m.integer("port", REQUIRED, minimum=1, maximum=65535)
    if not with_tls:
        return Listener(host, port)
    tls = m.get("tls", bool, True)
    cert, key = m.path("certificate", None), m.path("private_key", None)
    if (cert is None) != (key is None):
        m.fail("certificate and private_key go together", "private_key" if cert else "certificate")
    if cert is not None:
        if not tls:
            m.fail("a certificate needs tls: true", "certificate")
        _cert_and_key(m.file, m.k("certificate"), cert, m.k("private_key"), key)
    return Listener(host, port, tls, cert, key)


def _same_socket(a: Listener, b: Listener) -> bool:
    return a.port == b.port and (a.host == b.host or a.host in _WILDCARD_HOSTS or b.host in _WILDCARD_HOSTS)


def _pem_texts(m: _Map, name: str, kind: str) -> tuple[str, ...]:
    out = []
    for key, raw in m.items(name, []):
        if not isinstance(raw, str):
            raise ConfigError(m.file, key, f"must be a path (string), got {_show(raw)}")
        path = resolve(m.file, raw, key)
        if kind == "public key":
            try:
                pub = serialization.load_pem_public_key(path.read_bytes())
            except (OSError, ValueError) as e:
                raise ConfigError(m.file, key, f"not a PEM public key: {path} ({e})") from None
        else:
            pub = _certificates(m.file, key, path)[0].public_key()
        if not _is_p256(pub):
            raise ConfigError(m.file, key, f"{path}: an IPX {kind} must be EC P-256 (JWS ES256 only)")
        out.append(path.read_text())
    return tuple(out)


def _ipx_keys(m: _Map, name: str) -> tuple[IpxKeys, ...]:
    out: list[IpxKeys] = []
    for key, item in m.items(name, []):
        s = _Map(m.file, item, key, ("fqdn", "public_keys", "certificates", "trust_anchor"))
        fqdn = s.fqdn("fqdn")
        if any(k.fqdn == fqdn for k in out):
            s.fail(f"duplicate IPX {fqdn}", "fqdn")
        keys = IpxKeys(fqdn, _pem_texts(s, "public_keys", "public key"), _pem_texts(s, "certificates", "certificate"),
                       s.path("trust_anchor", None))
        if not keys.public_keys and not keys.certificates:
            s.fail("needs public_keys or certificates (to verify the IPX's JWS)")
        if keys.trust_anchor is not None:
            _certificates(m.file, s.k("trust_anchor"), keys.trust_anchor, "trust anchor")
        out.append(keys)
    return tuple(out)


# ------------------------------------------------------------------------------------- SEPP
_SEPP_KEYS = ("name", "fqdn", "plmn_ids", "certificate", "private_key", "listeners", "security_capabilities",
              "jwe_cipher_suites", "jws_cipher_suites", "policies", "security_profile", "home_nfs", "contexts",
              "handshake", "ipx_keys", "peers", "telescopic", "topology_hiding")
_PEER_KEYS = ("name", "fqdn", "n32c_uri", "n32f_uri", "plmn_ids", "trust_anchor", "security_capabilities",
              "initiate", "first_hop_ipx", "ipx_keys", "options")


def _peer(m: _Map, own_caps: tuple[str, ...]) -> Peer:
    fqdn = m.fqdn("fqdn")
    caps = _choice_list(m, "security_capabilities", CAPABILITIES, list(own_caps))
    for i, c in enumerate(caps):
        if c not in own_caps:
            m.fail(f"{c} is not among this SEPP's security_capabilities ({', '.join(own_caps)})",
                   f"security_capabilities[{i}]")
    options = PeerOptions()
    om = m.sub("options", tuple(PeerOptions.__dataclass_fields__))
    if om is not None:
        options = PeerOptions(**{name: om.get(name, str, getattr(options, name), choices)
                                 for name, choices in OPTION_CHOICES.items()},
                              tls12=om.get("tls12", bool, False))
    first_hop = None
    hm = m.sub("first_hop_ipx", ("fqdn", "uri"))
    if hm is not None:
        first_hop = FirstHop(hm.fqdn("fqdn"), hm.uri("uri"))
    anchor = m.path("trust_anchor")
    _certificates(m.file, m.k("trust_anchor"), anchor, "trust anchor")
    return Peer(name=m.get("name", str, fqdn), fqdn=fqdn, n32c_uri=m.uri("n32c_uri"), plmn_ids=_plmns(m, "plmn_ids"),
                trust_anchor=anchor, security_capabilities=caps, initiate=m.get("initiate", bool, True),
                n32f_uri=m.uri("n32f_uri", None), first_hop_ipx=first_hop, ipx_keys=_ipx_keys(m, "ipx_keys"),
                options=options)


def _placement(m: _Map) -> tuple[Path, ...]:
    raw = m.data.get("placement")
    if raw is None:
        m.fail("missing (required)", "placement")
    entries = [(m.k("placement"), raw)] if isinstance(raw, str) else m.items("placement")
    out: list[Path] = []
    for key, item in entries:
        if not isinstance(item, str):
            raise ConfigError(m.file, key, f"must be a path (string), got {_show(item)}")
        p = resolve(m.file, item, key)
        if p.is_dir():
            found = sorted([*p.glob("*.yaml"), *p.glob("*.yml")])
            if not found:
                raise ConfigError(m.file, key, f"directory {item} has no *.yaml files")
            out += found
        else:
            out.append(p)
    if not out:
        m.fail("needs at least one placement file or directory", "placement")
    return tuple(out)


def load_sepp_config(file: Path | str) -> SeppConfig:
    """Load and validate one SEPP's YAML. Raises ConfigError (one line) on any problem."""
    file = Path(file)
    top = _Map(file, _read_yaml(file), "", _SEPP_KEYS)
    name = top.get("name", str)
    if not name.strip():
        top.fail("must not be empty", "name")
    fqdn = top.fqdn("fqdn")
    plmn_ids = _plmns(top, "plmn_ids")
    cert, key = top.path("certificate"), top.path("private_key")
    _cert_and_key(file, "certificate", cert, "private_key", key)

    lm = top.sub("listeners", ("n32", "n32f", "sbi"), required=True)
    assert lm is not None
    n32 = _listener(lm.sub("n32", ("host", "port"), required=True), with_tls=False)
    n32f = _listener(lm.sub("n32f", ("host", "port")), with_tls=False)
    sbi = _listener(lm.sub("sbi", ("host", "port", "tls", "certificate", "private_key")), with_tls=True)
    assert n32 is not None
    for other, other_key in ((n32, "n32"), (n32f, "n32f")):
        if sbi is not None and other is not None and _same_socket(sbi, other):
            lm.fail(f"same address as listeners.{other_key} ({other.host}:{other.port})", "sbi.port")

    caps = _choice_list(top, "security_capabilities", CAPABILITIES, ["PRINS", "TLS"])
    jwe = _choice_list(top, "jwe_cipher_suites", JWE_SUITES, ["A128GCM", "A256GCM"])
    jws = _choice_list(top, "jws_cipher_suites", JWS_SUITES, ["ES256"])

    pm = top.sub("policies", ("encryption", "placement", "modification"), required=True)
    assert pm is not None
    policies = Policies(pm.path("encryption"), _placement(pm), pm.path("modification", None))
    profile = top.get("security_profile", str, None)

    home = HomeNfs()
    hm = top.sub("home_nfs", ("default", "routes", "trust_anchor"))
    if hm is not None:
        routes: dict[str, str] = {}
        for host, uri in (hm.get("routes", dict, {}) or {}).items():
            rkey = hm.k(f"routes.{host}")
            routes[_check_fqdn(file, rkey, host)] = _check_uri(file, rkey, uri, ("http", "https"))
        anchor = hm.path("trust_anchor", None)
        if anchor is not None:
            _certificates(file, hm.k("trust_anchor"), anchor, "trust anchor")
        home = HomeNfs(hm.uri("default", None, ("http", "https")), routes, anchor)

    contexts = Contexts()
    cm = top.sub("contexts", ("lifetime", "rekey_margin", "max_messages", "rekey_grace"))
    if cm is not None:
        contexts = Contexts(cm.number("lifetime", 86400.0, positive=True), cm.integer("rekey_margin", 1000, minimum=0),
                            cm.integer("max_messages", 2 ** 32, minimum=1, maximum=2 ** 32),  # profile 11: 32-bit SEQ
                            cm.number("rekey_grace", 5.0, minimum=0))
        if contexts.rekey_margin >= contexts.max_messages:
            cm.fail("must be less than contexts.max_messages", "rekey_margin")

    handshake = Handshake()
    sm = top.sub("handshake", ("at_start", "retry_initial", "retry_max", "timeout", "attempts"))
    if sm is not None:
        handshake = Handshake(sm.get("at_start", bool, True), sm.number("retry_initial", 0.5, positive=True),
                              sm.number("retry_max", 30.0, positive=True), sm.number("timeout", 10.0, positive=True),
                              sm.integer("attempts", None, minimum=1))
        if handshake.retry_max < handshake.retry_initial:
            sm.fail(f"must be at least retry_initial ({handshake.retry_initial:g})", "retry_max")

    ipx_keys = _ipx_keys(top, "ipx_keys")
    telescopic = _telescopic(top, fqdn, (sbi.certificate if sbi else None) or cert)
    hiding = _topology_hiding(top)

    peers: list[Peer] = []
    anchors: dict[PlmnId, tuple[bytes, int]] = {}
    for i, (pkey, item) in enumerate(top.items("peers", [])):
        pm_ = _Map(file, item, pkey, _PEER_KEYS)
        p = _peer(pm_, caps)
        for j, q in enumerate(peers):
            if q.fqdn == p.fqdn:
                pm_.fail(f"duplicate peer {p.fqdn} (also peers[{j}])", "fqdn")
            if q.name == p.name:
                pm_.fail(f"duplicate peer name {p.name} (also peers[{j}])", "name")
        if p.fqdn == fqdn:
            pm_.fail("is this SEPP's own fqdn", "fqdn")
        anchor_bytes = p.trust_anchor.read_bytes()
        for j, plmn in enumerate(p.plmn_ids):
            if plmn in plmn_ids:
                pm_.fail(f"PLMN {plmn} is one of this SEPP's own plmn_ids", f"plmn_ids[{j}]")
            if plmn in anchors and anchors[plmn][0] != anchor_bytes:
                pm_.fail(f"PLMN {plmn} already maps to another trust anchor (peers[{anchors[plmn][1]}]); "
                         "TS 33.501 §13.1: a PLMN ID may appear in one anchor only", f"plmn_ids[{j}]")
            anchors.setdefault(plmn, (anchor_bytes, i))
        hop = p.first_hop_ipx
        if hop is not None and not any(k.fqdn == hop.fqdn and k.trust_anchor for k in ipx_keys):
            pm_.fail(f"{hop.fqdn} is not among the top-level ipx_keys with a trust_anchor "
                     "(the IPX we contract, and the CA to authenticate it)", "first_hop_ipx.fqdn")
        peers.append(p)

    return SeppConfig(file=file, name=name, fqdn=fqdn, plmn_ids=plmn_ids, certificate=cert, private_key=key,
                      listeners=Listeners(n32, n32f, sbi), security_capabilities=caps, jwe_cipher_suites=jwe,
                      jws_cipher_suites=jws, policies=policies, home_nfs=home, contexts=contexts,
                      handshake=handshake, peers=tuple(peers), ipx_keys=ipx_keys, security_profile=profile,
                      telescopic=telescopic, topology_hiding=hiding)


def _covers(names: list[str], host: str) -> bool:
    """RFC 6125 §6.4.3: ``*.`` matches exactly one left-most label."""
    host = host.lower()
    return any(n.lower() == host or (n.startswith("*.") and host.partition(".")[2] == n[2:].lower())
               for n in names)


def _telescopic(top: _Map, fqdn: str, sbi_cert: Path) -> Telescopic:
    tm = top.sub("telescopic", ("enabled", "domain"))
    enabled = tm.get("enabled", bool, True) if tm is not None else True
    if not enabled:
        return Telescopic(None)
    domain = (tm.fqdn("domain", None) if tm is not None else None) or fqdn
    leaf = _certificates(top.file, "certificate", sbi_cert)[0]
    try:
        names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value \
            .get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        names = []
    if not _covers(names, f"x.{domain}"):
        raise ConfigError(top.file, "telescopic.domain",
                          f"the certificate NFs see ({sbi_cert}) does not cover *.{domain}, which telescopic "
                          "FQDNs need (TS 33.501 §13.1.1.1); add that SAN or set telescopic.enabled: false")
    return Telescopic(domain)


def _topology_hiding(top: _Map) -> TopologyHiding:
    hm = top.sub("topology_hiding", ("enabled", "pseudonym_domain", "secret_file", "home_networks"))
    if hm is None:
        return TopologyHiding(enabled=False)
    secret = hm.path("secret_file", None)
    if secret is not None and len(secret.read_bytes()) < 16:
        hm.fail("must hold at least 16 octets (the pseudonyms' HMAC key)", "secret_file")
    nets = None
    if hm.has("home_networks"):
        nets = []
        for key, v in hm.items("home_networks"):
            try:
                nets.append(str(ipaddress.ip_network(v, strict=False)))
            except (TypeError, ValueError):
                raise ConfigError(top.file, key, f"must be an IP network such as 10.0.0.0/8, got {_show(v)}") from None
        nets = tuple(nets)
    return TopologyHiding(hm.get("enabled", bool, True), hm.fqdn("pseudonym_domain", None), secret, nets)


# -------------------------------------------------------------------------------------- IPX
_IPX_KEYS = ("name", "fqdn", "certificate", "private_key", "listeners", "trust_anchors", "next_hops",
             "modifications")
_MATCH_KEYS = ("direction", "method", "path", "peer")


def _path_regex(m: _Map, key: str, value: str) -> str:
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
        raise ConfigError(m.file, key, f"not a valid regular expression or path template: {_show(value)} ({e})") \
            from None
    return regex


def _match(m: _Map, fields: tuple[str, ...]) -> dict[str, Any]:
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
            src.fail(f"must be one of {', '.join(HTTP_METHODS)}, got {_show(method)}", "method")
        out["method"] = method.upper() if method else None
    if "path" in fields:
        path = src.get("path", str, None)
        out["path"] = _path_regex(src, src.k("path"), path) if path is not None else None
    out["peer"] = src.fqdn("peer", None)
    return out


def _patch(m: _Map) -> tuple[dict, ...]:
    ops = []
    for key, op in m.items("patch", []):
        o = _Map(m.file, op, key, ("op", "path", "value", "from"))
        kind = o.get("op", str, REQUIRED, PATCH_OPS)
        for ptr in ("path", "from") if kind in ("move", "copy") else ("path",):
            value = o.get(ptr, str)
            if value and not value.startswith("/"):
                o.fail(f"must be a JSON pointer (\"\" or starting with /), got {_show(value)}", ptr)
        if kind not in ("move", "copy") and o.has("from"):
            o.fail(f"only move and copy take from, not {kind}", "from")
        if kind in ("add", "replace", "test") and "value" not in o.data:
            o.fail(f"{kind} needs a value", "value")
        ops.append(dict(op))
    return tuple(ops)


def _reject(m: _Map) -> dict | None:
    r = m.sub("reject", ("status", "cause", "detail"))
    if r is None:
        return None
    out: dict[str, Any] = {"status": r.integer("status", 403, minimum=400, maximum=599)}
    for name in ("cause", "detail"):
        if r.has(name):
            out[name] = r.get(name, str)
    return out


def load_ipx_config(file: Path | str) -> IpxConfig:
    """Load and validate one IPX's YAML. Raises ConfigError (one line) on any problem."""
    file = Path(file)
    top = _Map(file, _read_yaml(file), "", _IPX_KEYS)
    name = top.get("name", str)
    fqdn = top.fqdn("fqdn")
    cert, key = top.path("certificate"), top.path("private_key")
    leaf, private = _cert_and_key(file, "certificate", cert, "private_key", key)
    if not _is_p256(private.public_key()):
        top.fail("must be an EC P-256 key: it also signs the JWS (ES256 only)", "private_key")
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = {n.lower().rstrip(".") for n in san.get_values_for_type(x509.DNSName)}
    except x509.ExtensionNotFound:
        names = set()
    if fqdn not in names:
        top.fail(f"{fqdn} is not a DNS name of the certificate ({', '.join(sorted(names)) or 'none'})", "fqdn")

    lm = top.sub("listeners", ("n32f",), required=True)
    assert lm is not None
    n32f = _listener(lm.sub("n32f", ("host", "port"), required=True), with_tls=False)
    assert n32f is not None

    anchors = []
    for akey, raw in top.items("trust_anchors"):
        if not isinstance(raw, str):
            raise ConfigError(file, akey, f"must be a path (string), got {_show(raw)}")
        path = resolve(file, raw, akey)
        _certificates(file, akey, path, "trust anchor")
        anchors.append(path)
    if not anchors:
        top.fail("needs at least one CA", "trust_anchors")

    hops = []
    for hkey, item in top.items("next_hops"):
        h = _Map(file, item, hkey, ("match", "uri", "server_name", "direction", "peer"))
        cond = _match(h, ("direction", "peer"))
        uri = h.uri("uri")
        hops.append(NextHop(uri, h.fqdn("server_name", None) or urlsplit(uri).hostname or "", cond["peer"],
                            cond["direction"]))
    if not hops:
        top.fail("needs at least one next hop", "next_hops")

    rules = []
    for rkey, item in top.items("modifications", []):
        r = _Map(file, item, rkey, ("match", *_MATCH_KEYS, "patch", "set_headers", "reject"))
        cond = _match(r, _MATCH_KEYS)
        headers = r.get("set_headers", dict, {})
        for hname, hvalue in headers.items():
            if not isinstance(hname, str) or not isinstance(hvalue, str):
                r.fail(f"header names and values must be strings, got {_show(hname)}: {_show(hvalue)}", "set_headers")
        rules.append(ModificationRule(cond["direction"], cond["method"], cond["path"], cond["peer"], _patch(r),
                                      dict(headers), _reject(r)))
    return IpxConfig(file, name, fqdn, cert, key, Listeners(n32=n32f, n32f=n32f), tuple(anchors), tuple(hops),
                     tuple(rules))
