"""Our SEPP as the probe's target: the home SEPP (PLMN 999-70) of the lab, alone, with two
configured peers (001-01, played by the probe, and 002-02 for the trust cases), its home NF
route and its peer's N32-c apiRoot pointing at the probe. In TLS mode it serves N32-f on a
listener of its own, as open5gs does. ``flaws`` are addon scripts loaded
before the SEPP's, each patching one check out of that process (tests/probe/flaws/): the
product has no insecure switch."""
from __future__ import annotations

import datetime
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from lab import procs as P
from lab.topology import HOME, VISITED, Lab, sepp_config, sepp_fqdn
from probe import ProbeConfig, from_dict

BIN = Path(sys.executable).parent
OTHER = {"plmn": "002-02", "mcc": "002", "mnc": "002", "name": "sepp-o"}
PLMNS = (VISITED["plmn"], OTHER["plmn"], HOME["plmn"])


def _mint(out: Path, name: str, ca_dir: Path, fqdns: list[str], *, expired: bool = False) -> dict:
    """A SEPP-profile certificate (TS 33.310 §6.1.3c) for ``fqdns`` issued by the CA in ``ca_dir``."""
    ca_cert = x509.load_pem_x509_certificate((ca_dir / "ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((ca_dir / "ca.key").read_bytes(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = (now - datetime.timedelta(days=30), now - datetime.timedelta(days=1)) if expired else \
        (now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=30))
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "XX"),
                                     x509.NameAttribute(NameOID.COMMON_NAME, fqdns[0])]))
            .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(f) for f in fqdns]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256()))
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (out / f"{name}.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                        serialization.NoEncryption()))
    (out / f"{name}.key").chmod(0o600)
    return {"certificate": str(out / f"{name}.crt"), "private_key": str(out / f"{name}.key")}


def make_pki(pki: Path) -> dict[str, dict]:
    """The lab PKI with a third PLMN (002-02, root R2) and the 4.2.5 certificates C3, C4, plus an
    untrusted-CA and an expired peer certificate."""
    from certs.pki import ensure_lab_pki

    ensure_lab_pki(pki, plmns=PLMNS)
    v, o = pki / f"plmn-{VISITED['plmn']}", pki / f"plmn-{OTHER['plmn']}"
    extra = pki / "probe"
    return {
        "other_root": _mint(extra, "c3", o, [sepp_fqdn(VISITED)]),                       # PLMN1 under R2
        "two_plmns": _mint(extra, "c4", v, [sepp_fqdn(VISITED), sepp_fqdn(OTHER)]),    # PLMN1 + PLMN2 under R1
        "expired": _mint(extra, "expired", v, [sepp_fqdn(VISITED)], expired=True),
        "untrusted": {"certificate": str(pki / "rogue" / f"sepp-{VISITED['plmn']}.crt"),
                      "private_key": str(pki / "rogue" / f"sepp-{VISITED['plmn']}.key")},
    }


def write_target(lab: Lab, mode: str, tweak: Callable[[dict], None] | None = None) -> Path:
    cfg = sepp_config(lab, HOME, VISITED, initiate=False)
    peer = cfg["peers"][0]
    peer["n32c_uri"] = f"https://127.0.0.1:{lab.port('probe.n32c')}"
    caps = peer["security_capabilities"]
    cfg["peers"].append({"name": OTHER["name"], "fqdn": sepp_fqdn(OTHER), "plmn_ids": [OTHER["plmn"]],
                         "n32c_uri": f"https://127.0.0.1:{lab.port('probe.n32c-other')}",
                         "trust_anchor": str(lab.pki / f"plmn-{OTHER['plmn']}" / "ca.crt"),
                         "security_capabilities": caps, "initiate": False})
    cfg["home_nfs"]["default"] = f"https://127.0.0.1:{lab.port('probe.nf')}"
    if mode == "tls":  # the open5gs shape: N32-f on a listener of its own, given to the probe as target.n32f
        cfg["listeners"]["n32f"] = {"host": "127.0.0.1", "port": lab.port("sepp-h.n32f")}
    if tweak is not None:
        tweak(cfg)
    lab.out.mkdir(parents=True, exist_ok=True)
    path = lab.out / f"target-{mode}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def probe_config(lab: Lab, certs: dict[str, dict]) -> ProbeConfig:
    """The probe's configuration for this target, also written to ``<out>/probe.yaml`` (the CLI's)."""
    raw = probe_dict(lab, certs)
    (lab.out / "probe.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return from_dict(raw)


def probe_dict(lab: Lab, certs: dict[str, dict]) -> dict:
    pki = lab.pki
    home, visited, other = (pki / f"plmn-{p}" for p in (HOME["plmn"], VISITED["plmn"], OTHER["plmn"]))
    ipx = pki / "ipx" / "ipx1.ipx.lab"
    return {
        "target": {"n32c": f"https://127.0.0.1:{lab.port('sepp-h.n32')}", "fqdn": sepp_fqdn(HOME),
                   **({"n32f": f"https://127.0.0.1:{lab.port('sepp-h.n32f')}"} if lab.mode == "tls" else {}),
                   "ca": str(home / "ca.crt"), "plmn_ids": [HOME["plmn"]],
                   "sbi": f"https://127.0.0.1:{lab.port('sepp-h.sbi')}", "sbi_ca": str(home / "ca.crt"),
                   "log": str(lab.out / "target.log")},
        "peer": {"fqdn": sepp_fqdn(VISITED), "plmn_ids": [VISITED["plmn"]], "certificate": str(visited / "sepp.crt"),
                 "private_key": str(visited / "sepp.key"), "n32c_listen": f"127.0.0.1:{lab.port('probe.n32c')}"},
        "nf": {"listen": f"127.0.0.1:{lab.port('probe.nf')}", "certificate": str(home / "nf.crt"),
               "private_key": str(home / "nf.key")},
        "ipx": {"fqdn": "ipx1.ipx.lab", "private_key": f"{ipx}.key", "public_key": f"{ipx}.pub",
                "certificate": f"{ipx}.crt"},
        "trust": {"other_peer": {"fqdn": sepp_fqdn(OTHER), "plmn_ids": [OTHER["plmn"]],
                                 "certificate": str(other / "sepp.crt"), "private_key": str(other / "sepp.key"),
                                 "n32c_listen": f"127.0.0.1:{lab.port('probe.n32c-other')}"}, **certs},
        "capabilities": ["PRINS", "TLS"] if lab.mode == "prins" else ["TLS"],
    }


@contextmanager
def our_sepp(pki: Path, out: Path, mode: str = "prins", flaws: tuple[Path, ...] = (),
             certs: dict[str, dict] | None = None, tweak: Callable[[dict], None] | None = None) -> Iterator[ProbeConfig]:
    """Our SEPP running as a target (``flaws``: addon scripts loaded before it; ``tweak`` edits its
    configuration); yields the probe config. ``certs``: what :func:`make_pki` returned for ``pki``."""
    certs = certs or make_pki(pki)
    lab = Lab(out=out, pki=pki, mode=mode)
    config = write_target(lab, mode, tweak)
    argv = [str(BIN / "mitmdump")]
    for f in flaws:
        argv += ["-s", str(f)]
    argv += ["-s", str(Path(P.ROOT) / "addons/sepp.py"), "--set", f"sepp_config={config}",
             "--set", "listen_port=0", "--set", "flow_detail=0", "--set", "termlog_verbosity=info"]
    with P.Procs(out) as procs:
        p = procs.start("target", argv)
        P.wait_port(lab.port("sepp-h.n32"), 30, [p])
        P.wait_port(lab.port("sepp-h.sbi"), 30, [p])
        if mode == "tls":
            P.wait_port(lab.port("sepp-h.n32f"), 30, [p])
        yield probe_config(lab, certs)
