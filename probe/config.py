"""What a probe run needs to know (``probe.yaml``): only what a real test campaign has.

* ``target``: the SEPP under test: its N32-c apiRoot, FQDN, PLMN IDs and trust anchor; optionally
  its N32-f apiRoot (else the port it announces on N32-c, else its N32-c apiRoot), its NF-facing
  listener (``sbi``, for the cases that play one of its own NFs) and a home NF FQDN to address.
* ``peer``: who the probe plays: a SEPP the target trusts (certificate and key issued by the
  anchor the target has for it), its PLMN IDs and where the probe listens for the target's N32-c
  requests (``n32c_listen``: the target's configured N32-c apiRoot for this peer).
* ``nf``: where the target delivers what it receives (its home NF route): the probe runs an
  HTTP/2 server there (TLS with the given certificate, else cleartext with prior knowledge), so
  it sees what was forwarded. ``target.nf_scheme`` (``https``/``http``) is how the target's NFs
  are addressed in ``3gpp-Sbi-Target-apiRoot``.
* ``ipx`` (optional): a roaming intermediary of the peer: ES256 key pair, TLS certificate.
* ``trust`` (optional): certificates for the trust cases (each ``{certificate, private_key}``):
  ``other_peer`` (C2: a second peer PLMN the target trusts under another root, with its
  ``fqdn``, ``plmn_ids`` and ``n32c_listen``), ``other_root`` (C3: names the peer's PLMN, issued
  by the other root), ``two_plmns`` (C4: names both PLMNs), ``untrusted`` (an unknown CA),
  ``expired``.

Paths are relative to the YAML file's directory.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml


class ProbeConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Address:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str, where: str) -> "Address":
        host, sep, port = str(text).rpartition(":")
        if not sep or not port.isdigit():
            raise ProbeConfigError(f"{where}: expected host:port, got {text!r}")
        return cls(host or "127.0.0.1", int(port))


@dataclass(frozen=True)
class KeyPair:
    certificate: Path
    private_key: Path


@dataclass(frozen=True)
class Identity:
    """A SEPP identity the probe can present (the peer, or a second peer for 4.2.5)."""

    fqdn: str
    plmn_ids: tuple[str, ...]
    tls: KeyPair
    n32c_listen: Address | None = None


@dataclass(frozen=True)
class Target:
    n32c: str
    fqdn: str
    ca: Path
    plmn_ids: tuple[str, ...]
    n32f: str | None = None
    sbi: str | None = None
    sbi_ca: Path | None = None
    nf_fqdn: str | None = None            # a home NF of the target, for the :authority of requests
    nf_scheme: str = "https"              # how the target reaches its NFs (open5gs: http, h2 prior knowledge)
    log: Path | None = None               # the target's log file, where readable (4.2.2.6 allows "log it")

    @property
    def n32c_host_port(self) -> tuple[str, int]:
        u = urlsplit(self.n32c)
        return u.hostname or "127.0.0.1", u.port or 443

    @property
    def home_nf(self) -> str:
        if self.nf_fqdn:
            return self.nf_fqdn
        mcc, mnc = self.plmn_ids[0].split("-")
        return f"udm.5gc.mnc{mnc.zfill(3)}.mcc{mcc}.3gppnetwork.org"

    def api_root(self, host: str | None = None, suffix: str = "") -> str:
        """An apiRoot of a home NF (``host``, default :attr:`home_nf`) as the target's NFs have them."""
        return f"{self.nf_scheme}://{host or self.home_nf}{suffix}"


@dataclass(frozen=True)
class Ipx:
    fqdn: str
    private_key: Path          # ES256 (PKCS#8 PEM): signs modificationsBlock entries
    public_key: Path
    tls: KeyPair | None = None


@dataclass(frozen=True)
class ProbeConfig:
    target: Target
    peer: Identity
    nf_listen: Address
    nf_tls: KeyPair | None                 # None: the NF speaks cleartext HTTP/2 (prior knowledge)
    ipx: Ipx | None = None
    trust: dict[str, Any] = field(default_factory=dict)   # name -> KeyPair | Identity
    capabilities: tuple[str, ...] = ("PRINS", "TLS")
    jwe_suites: tuple[str, ...] = ("A128GCM", "A256GCM")
    policies: dict[str, Any] = field(default_factory=dict)  # encryption, placement, modification
    timeout: float = 5.0


def _path(base: Path, value: Any, where: str) -> Path:
    if not value:
        raise ProbeConfigError(f"{where} is required")
    p = Path(value)
    return p if p.is_absolute() else base / p


def _pair(base: Path, d: Any, where: str) -> KeyPair:
    if not isinstance(d, dict):
        raise ProbeConfigError(f"{where}: expected a mapping with certificate and private_key")
    return KeyPair(_path(base, d.get("certificate"), f"{where}.certificate"),
                   _path(base, d.get("private_key"), f"{where}.private_key"))


def _identity(base: Path, d: Any, where: str) -> Identity:
    if not isinstance(d, dict) or not d.get("fqdn") or not d.get("plmn_ids"):
        raise ProbeConfigError(f"{where}: fqdn and plmn_ids are required")
    listen = Address.parse(d["n32c_listen"], f"{where}.n32c_listen") if d.get("n32c_listen") else None
    return Identity(str(d["fqdn"]), tuple(map(str, d["plmn_ids"])), _pair(base, d, where), listen)


def from_dict(raw: dict, base: Path = Path(".")) -> ProbeConfig:
    if not isinstance(raw, dict):
        raise ProbeConfigError("the probe configuration must be a mapping")
    t = raw.get("target") or {}
    if not t.get("n32c") or not t.get("fqdn") or not t.get("plmn_ids"):
        raise ProbeConfigError("target: n32c, fqdn and plmn_ids are required")
    target = Target(str(t["n32c"]).rstrip("/"), str(t["fqdn"]), _path(base, t.get("ca"), "target.ca"),
                    tuple(map(str, t["plmn_ids"])), t.get("n32f"), t.get("sbi"),
                    _path(base, t["sbi_ca"], "target.sbi_ca") if t.get("sbi_ca") else None, t.get("nf_fqdn"),
                    str(t.get("nf_scheme", "https")), _path(base, t["log"], "target.log") if t.get("log") else None)
    peer = _identity(base, raw.get("peer"), "peer")
    nf = raw.get("nf") or {}
    if not nf.get("listen"):
        raise ProbeConfigError("nf.listen is required (the target's home NF route points there)")
    ipx = None
    if raw.get("ipx"):
        i = raw["ipx"]
        ipx = Ipx(str(i["fqdn"]), _path(base, i.get("private_key"), "ipx.private_key"),
                  _path(base, i.get("public_key"), "ipx.public_key"),
                  _pair(base, i, "ipx") if i.get("certificate") else None)
    trust: dict[str, Any] = {}
    for name, d in (raw.get("trust") or {}).items():
        trust[name] = _identity(base, d, f"trust.{name}") if isinstance(d, dict) and d.get("fqdn") \
            else _pair(base, d, f"trust.{name}")
    pol = {k: ([_path(base, x, f"policies.{k}") for x in v] if isinstance(v, list) else _path(base, v, f"policies.{k}"))
           for k, v in (raw.get("policies") or {}).items()}
    nf_tls = _pair(base, nf, "nf") if nf.get("certificate") else None
    return ProbeConfig(target, peer, Address.parse(nf["listen"], "nf.listen"), nf_tls, ipx, trust,
                       tuple(raw.get("capabilities") or ("PRINS", "TLS")),
                       tuple(raw.get("jwe_cipher_suites") or ("A128GCM", "A256GCM")), pol,
                       float(raw.get("timeout", 5.0)))


def load(path: Path | str) -> ProbeConfig:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ProbeConfigError(f"{path}: {e}") from None
    return from_dict(raw, path.resolve().parent)
