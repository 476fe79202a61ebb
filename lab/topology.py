"""The two-PLMN roaming lab: who is where, and the YAML configs that say so.

Visited PLMN 001/01 (cSEPP ``sepp-v``) and home PLMN 999/70 (pSEPP ``sepp-h``), optionally with
two roaming intermediaries (``ipx1`` contracted by the visited operator, ``ipx2`` by the home
operator) on the N32-f path. Ports are chosen free at run time so that several labs and test
runs can coexist on one machine.
"""
from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
VISITED = {"plmn": "001-01", "mcc": "001", "mnc": "001", "name": "sepp-v"}
HOME = {"plmn": "999-70", "mcc": "999", "mnc": "070", "name": "sepp-h"}


def sepp_fqdn(side: dict) -> str:
    return f"sepp.5gc.mnc{side['mnc']}.mcc{side['mcc']}.3gppnetwork.org"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Lab:
    out: Path
    pki: Path
    mode: str = "prins"           # prins | tls
    suite: str = "A128GCM"
    ipx: bool = False
    ports: dict[str, int] = field(default_factory=dict)
    configs: dict[str, Path] = field(default_factory=dict)
    overrides: dict[str, dict] = field(default_factory=dict)       # sepp name -> top-level keys
    peer_overrides: dict[str, dict] = field(default_factory=dict)  # sepp name -> keys of its peer entry

    def port(self, name: str) -> int:
        if name not in self.ports:
            self.ports[name] = free_port()
        return self.ports[name]


def _plmn_dir(pki: Path, plmn: str) -> Path:
    return pki / f"plmn-{plmn}"


def sepp_config(lab: Lab, me: dict, peer: dict, *, initiate: bool, extra_peer: dict | None = None,
                overrides: dict | None = None) -> dict[str, Any]:
    """The YAML config of one lab SEPP (docs/configuration.md describes every key)."""
    mine, theirs = _plmn_dir(lab.pki, me["plmn"]), _plmn_dir(lab.pki, peer["plmn"])
    caps = ["PRINS", "TLS"] if lab.mode == "prins" else ["TLS"]
    suites = [lab.suite] + [s for s in ("A128GCM", "A256GCM") if s != lab.suite]
    cfg: dict[str, Any] = {
        "name": me["name"],
        "fqdn": sepp_fqdn(me),
        "plmn_ids": [me["plmn"]],
        "certificate": str(mine / "sepp.crt"),
        "private_key": str(mine / "sepp.key"),
        "listeners": {
            "n32": {"host": "127.0.0.1", "port": lab.port(f"{me['name']}.n32")},
            "sbi": {"host": "127.0.0.1", "port": lab.port(f"{me['name']}.sbi"), "tls": True},
        },
        "security_capabilities": caps,
        "jwe_cipher_suites": suites,
        "jws_cipher_suites": ["ES256"],
        "policies": {
            "encryption": str(ROOT / "policies/data-type-encryption.yaml"),
            "placement": [str(ROOT / "policies/placement")],
            "modification": str(ROOT / "policies/modification.yaml"),
        },
        "home_nfs": {
            "default": f"https://127.0.0.1:{lab.port(me['name'] + '.nf')}",
            "trust_anchor": str(mine / "ca.crt"),
        },
        "handshake": {"at_start": initiate, "retry_initial": 0.2, "retry_max": 2.0, "timeout": 5.0},
        "peers": [{
            "name": peer["name"],
            "fqdn": sepp_fqdn(peer),
            "n32c_uri": f"https://127.0.0.1:{lab.port(peer['name'] + '.n32')}",
            "plmn_ids": [peer["plmn"]],
            "trust_anchor": str(theirs / "ca.crt"),
            "security_capabilities": caps,
            "initiate": initiate,
            **(extra_peer or {}),
        }],
    }
    for k, v in (overrides or {}).items():
        cfg[k] = v
    return cfg


def write_configs(lab: Lab) -> dict[str, Path]:
    lab.out.mkdir(parents=True, exist_ok=True)
    for me, peer, initiate in ((VISITED, HOME, True), (HOME, VISITED, False)):
        path = lab.out / f"{me['name']}.yaml"
        cfg = sepp_config(lab, me, peer, initiate=initiate, extra_peer=lab.peer_overrides.get(me["name"]),
                          overrides=lab.overrides.get(me["name"]))
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        lab.configs[me["name"]] = path
    return lab.configs
