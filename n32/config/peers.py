"""``peers:`` and ``ipx_keys:``: the SEPPs we talk to and the IPX providers whose JWS we accept."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..peer import EXTENSIONS
from ..plmn import PlmnId
from .errors import ConfigError, show
from .fields import Section

CAPABILITIES = ("PRINS", "TLS")
PEER_KEYS = ("name", "fqdn", "n32c_uri", "n32f_uri", "plmn_ids", "trust_anchor", "security_capabilities",
             "initiate", "first_hop_ipx", "ipx_keys", "options")


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
    # our wire extensions this peer accepts (n32.peer.EXTENSIONS); none: the spec-only form
    extensions: tuple[str, ...] = ()


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


def _pem_texts(m: Section, name: str, kind: str) -> tuple[str, ...]:
    out = []
    for key, raw in m.items(name, []):
        if not isinstance(raw, str):
            raise ConfigError(m.file, key, f"must be a path (string), got {show(raw)}")
        path = m.files.resolve(raw, key)
        pub = m.files.public_key(key, path) if kind == "public key" else m.files.certificates(key, path)[0].public_key()
        if not m.files.is_p256(pub):
            raise ConfigError(m.file, key, f"{path}: an IPX {kind} must be EC P-256 (JWS ES256 only)")
        out.append(m.files.read_text(key, path))
    return tuple(out)


def ipx_keys(m: Section, name: str) -> tuple[IpxKeys, ...]:
    out: list[IpxKeys] = []
    for key, item in m.items(name, []):
        s = m.child(item, key, ("fqdn", "public_keys", "certificates", "trust_anchor"))
        fqdn = s.fqdn("fqdn")
        if any(k.fqdn == fqdn for k in out):
            s.fail(f"duplicate IPX {fqdn}", "fqdn")
        keys = IpxKeys(fqdn, _pem_texts(s, "public_keys", "public key"), _pem_texts(s, "certificates", "certificate"),
                       s.path("trust_anchor", None))
        if not keys.public_keys and not keys.certificates:
            s.fail("needs public_keys or certificates (to verify the IPX's JWS)")
        if keys.trust_anchor is not None:
            m.files.certificates(s.k("trust_anchor"), keys.trust_anchor, "trust anchor")
        out.append(keys)
    return tuple(out)


def peer(m: Section, own_caps: tuple[str, ...]) -> Peer:
    fqdn = m.fqdn("fqdn")
    caps = m.choice_list("security_capabilities", CAPABILITIES, list(own_caps))
    for i, c in enumerate(caps):
        if c not in own_caps:
            m.fail(f"{c} is not among this SEPP's security_capabilities ({', '.join(own_caps)})",
                   f"security_capabilities[{i}]")
    options = PeerOptions()
    om = m.sub("options", tuple(PeerOptions.__dataclass_fields__))
    if om is not None:
        options = PeerOptions(**{name: om.get(name, str, getattr(options, name), choices)
                                 for name, choices in OPTION_CHOICES.items()},
                              tls12=om.get("tls12", bool, False),
                              extensions=om.choice_list("extensions", EXTENSIONS) if om.get("extensions", list, []) else ())
    first_hop = None
    hm = m.sub("first_hop_ipx", ("fqdn", "uri"))
    if hm is not None:
        first_hop = FirstHop(hm.fqdn("fqdn"), hm.uri("uri"))
    anchor = m.path("trust_anchor")
    m.files.certificates(m.k("trust_anchor"), anchor, "trust anchor")
    return Peer(name=m.get("name", str, fqdn), fqdn=fqdn, n32c_uri=m.uri("n32c_uri"), plmn_ids=m.plmns("plmn_ids"),
                trust_anchor=anchor, security_capabilities=caps, initiate=m.get("initiate", bool, True),
                n32f_uri=m.uri("n32f_uri", None), first_hop_ipx=first_hop, ipx_keys=ipx_keys(m, "ipx_keys"),
                options=options)
