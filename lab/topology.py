"""The two-PLMN roaming lab: who is where, and the YAML configs that say so.

Visited PLMN 001/01 (cSEPP ``sepp-v``) and home PLMN 999/70 (pSEPP ``sepp-h``), optionally with
two roaming intermediaries (``ipx1`` contracted by the visited operator, ``ipx2`` by the home
operator) on the N32-f path. Ports are chosen free at run time so that several labs and test
runs can coexist on one machine.
"""
from __future__ import annotations

import secrets
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

import policies
from n32.peer import EXTENSIONS

ROOT = Path(__file__).resolve().parent.parent
# A clone keeps its lab output and PKI in the tree (lab/out, certs/out); an installed package
# (``mitm-sepp lab``) keeps them under the current directory instead of site-packages.
WORK = ROOT if (ROOT / "pyproject.toml").exists() else Path.cwd()
VISITED = {"plmn": "001-01", "mcc": "001", "mnc": "001", "name": "sepp-v"}
HOME = {"plmn": "999-70", "mcc": "999", "mnc": "070", "name": "sepp-h"}


def sepp_fqdn(side: dict) -> str:
    return f"sepp.5gc.mnc{side['mnc']}.mcc{side['mcc']}.3gppnetwork.org"


_handed_out: set[int] = set()


def free_port() -> int:
    """A loopback port that is free now and that this process has not handed out before.

    The kernel may return the same ephemeral port to two consecutive bind-and-close calls, so
    a lab that asks for its n32 and sbi ports back to back could get one port twice (a CI run
    failed exactly so: "listeners.sbi.port: same address as listeners.n32").
    """
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise RuntimeError("no fresh free loopback port after 100 tries")


@dataclass
class Lab:
    out: Path
    pki: Path
    mode: str = "prins"           # prins | tls
    suite: str = "A128GCM"
    ipx: bool = False
    nf: str = "tls"               # tls | h2c: how the home NFs listen (h2c: cleartext HTTP/2 only, as open5gs)
    ports: dict[str, int] = field(default_factory=dict)
    configs: dict[str, Path] = field(default_factory=dict)
    overrides: dict[str, dict] = field(default_factory=dict)       # sepp name -> top-level keys
    peer_overrides: dict[str, dict] = field(default_factory=dict)  # sepp name -> keys of its peer entry
    ipx_rules: dict[str, list] = field(default_factory=dict)       # IPX fqdn -> modification rules
    web_token: str = field(default_factory=lambda: secrets.token_hex(16))  # mitmweb password of the lab
    options: dict[str, dict] = field(default_factory=dict)       # process name -> extra mitmproxy options
    workers: int = 1              # >1: each SEPP as this many worker processes behind HAProxy (lab/workers.py)

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
            "encryption": str(policies.ENCRYPTION),
            "placement": [str(policies.PLACEMENT)],
            "modification": str(policies.MODIFICATION),
        },
        # http:// home NFs get HTTP/2 with prior knowledge (TS 29.500 §5.2; docs/interop-profile.md)
        "home_nfs": {"default": f"http://127.0.0.1:{lab.port(me['name'] + '.nf')}"} if lab.nf == "h2c" else {
            "default": f"https://127.0.0.1:{lab.port(me['name'] + '.nf')}",
            "trust_anchor": str(mine / "ca.crt"),
        },
        # telescopic FQDNs under this SEPP's FQDN (default; sepp.crt carries *.sepp...) and
        # topology hiding of this PLMN's NFs towards the peer (docs/routing.md)
        "topology_hiding": {"enabled": True},
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
    # both lab SEPPs are ours: each accepts all our wire extensions (docs/interop-profile.md)
    cfg["peers"][0]["options"] = {"extensions": list(EXTENSIONS), **(cfg["peers"][0].get("options") or {})}
    for k, v in (overrides or {}).items():
        cfg[k] = v
    return cfg


# IPX=1: the visited operator contracts ipx1, the home operator ipx2 (certs/pki.py issues them).
IPXS = {VISITED["name"]: "ipx1.ipx.lab", HOME["name"]: "ipx2.ipx.lab"}
# What each lab IPX changes (within the modification policies in policies/modification.yaml).
IPX_RULES = {
    "ipx1.ipx.lab": [{"direction": "request", "set_headers": {"user-agent": "AMF (via ipx1)"}}],
    "ipx2.ipx.lab": [{"direction": "response", "set_headers": {"server": "home-nf (via ipx2)"}}],
}


def ipx_config(lab: Lab, fqdn: str) -> dict[str, Any]:
    """ipx1 relays visited->home towards ipx2; ipx2 relays towards the home SEPP."""
    base = lab.pki / "ipx" / fqdn
    nxt = ({"uri": f"https://127.0.0.1:{lab.port('ipx2.ipx.lab')}", "server_name": "ipx2.ipx.lab"}
           if fqdn == "ipx1.ipx.lab" else
           {"uri": f"https://127.0.0.1:{lab.port('sepp-h.n32')}", "server_name": sepp_fqdn(HOME)})
    return {"name": fqdn.split(".")[0], "fqdn": fqdn, "certificate": f"{base}.crt", "private_key": f"{base}.key",
            "listeners": {"n32f": {"host": "127.0.0.1", "port": lab.port(fqdn)}},
            "trust_anchors": [str(_plmn_dir(lab.pki, VISITED["plmn"]) / "ca.crt"),
                              str(_plmn_dir(lab.pki, HOME["plmn"]) / "ca.crt")],
            "next_hops": [nxt], "modifications": lab.ipx_rules.get(fqdn, IPX_RULES[fqdn])}


def _ipx_entries(lab: Lab, me: dict) -> tuple[dict, dict]:
    fqdn = IPXS[me["name"]]
    keys = {"fqdn": fqdn, "public_keys": [str(lab.pki / "ipx" / f"{fqdn}.pub")],
            "trust_anchor": str(_plmn_dir(lab.pki, me["plmn"]) / "ca.crt")}
    hop = {"fqdn": fqdn, "uri": f"https://127.0.0.1:{lab.port(fqdn)}"}
    return {"ipx_keys": [keys]}, {"first_hop_ipx": hop}


def write_configs(lab: Lab) -> dict[str, Path]:
    lab.out.mkdir(parents=True, exist_ok=True)
    for me, peer, initiate in ((VISITED, HOME, True), (HOME, VISITED, False)):
        path = lab.out / f"{me['name']}.yaml"
        overrides = dict(lab.overrides.get(me["name"]) or {})
        extra_peer = dict(lab.peer_overrides.get(me["name"]) or {})
        if lab.ipx:
            top, peer_part = _ipx_entries(lab, me)
            overrides = {**top, **overrides}
            extra_peer = {**peer_part, **extra_peer}
        cfg = sepp_config(lab, me, peer, initiate=initiate, extra_peer=extra_peer, overrides=overrides)
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        lab.configs[me["name"]] = path
    if lab.ipx:
        for fqdn in IPXS.values():
            path = lab.out / f"{fqdn.split('.')[0]}.yaml"
            path.write_text(yaml.safe_dump(ipx_config(lab, fqdn), sort_keys=False))
            lab.configs[fqdn] = path
    return lab.configs
