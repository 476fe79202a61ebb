"""SEPP and IPX configuration: the lab configs load; every mistake stops start-up with one line
naming the file, the key and the problem."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from certs.pki import ensure_lab_pki
from lab.topology import HOME, VISITED, Lab, ipx_config, sepp_config
from n32.config import ConfigError, PlmnId, load_ipx_config, load_sepp_config


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("pki")
    ensure_lab_pki(d)
    return d


def lab_dict(tmp: Path, pki: Path, ipx: bool = False) -> dict:
    lab = Lab(out=tmp, pki=pki, ipx=ipx)
    extra_peer, overrides = {}, {}
    if ipx:
        overrides = {"ipx_keys": [{"fqdn": "ipx1.ipx.lab", "public_keys": [str(pki / "ipx" / "ipx1.ipx.lab.pub")],
                                   "trust_anchor": str(pki / "plmn-001-01" / "ca.crt")}]}
        extra_peer = {"first_hop_ipx": {"fqdn": "ipx1.ipx.lab", "uri": "https://127.0.0.1:9600"}}
    return copy.deepcopy(sepp_config(lab, VISITED, HOME, initiate=True, extra_peer=extra_peer, overrides=overrides))


def write(tmp: Path, pki: Path, edit=None, ipx: bool = False) -> Path:
    cfg = lab_dict(tmp, pki, ipx)
    if edit:
        edit(cfg)
    p = tmp / "sepp.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


def one_line_error(path: Path, loader=load_sepp_config) -> str:
    with pytest.raises(ConfigError) as ei:
        loader(path)
    msg = str(ei.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path}: "), msg
    return msg


# ------------------------------------------------------------------------------------ SEPP
def test_lab_config_loads(tmp_path, pki):
    cfg = load_sepp_config(write(tmp_path, pki))
    assert cfg.name == "sepp-v" and cfg.fqdn == "sepp.5gc.mnc001.mcc001.3gppnetwork.org"
    assert cfg.plmn_ids == (PlmnId("001", "01"),) and [str(p) for p in cfg.plmn_ids] == ["001-01"]
    assert cfg.certificate == pki / "plmn-001-01" / "sepp.crt"
    assert cfg.listeners.n32.host == "127.0.0.1" and 1 <= cfg.listeners.n32.port <= 65535
    assert cfg.listeners.n32f is None and cfg.listeners.sbi is not None and cfg.listeners.sbi.tls
    assert cfg.security_capabilities == ("PRINS", "TLS")
    assert cfg.jwe_cipher_suites == ("A128GCM", "A256GCM") and cfg.jws_cipher_suites == ("ES256",)
    assert len(cfg.policies.placement) >= 6 and all(p.suffix == ".yaml" for p in cfg.policies.placement)
    assert cfg.home_nfs.default.startswith("https://127.0.0.1:") and cfg.home_nfs.trust_anchor is not None
    assert cfg.contexts.lifetime == 86400.0 and cfg.contexts.rekey_margin == 1000
    assert cfg.contexts.max_messages == 2 ** 32 and cfg.contexts.rekey_grace == 5.0
    assert cfg.handshake.at_start and cfg.handshake.retry_max == 2.0 and cfg.handshake.attempts is None
    peer = cfg.peers[0]
    assert peer.name == "sepp-h" and peer.fqdn == "sepp.5gc.mnc070.mcc999.3gppnetwork.org"
    assert peer.plmn_ids == (PlmnId("999", "70"),) and peer.n32c_uri.startswith("https://127.0.0.1:")
    assert peer.security_capabilities == ("PRINS", "TLS") and peer.initiate
    assert peer.options.kdf_context == "default" and peer.options.authorized_ipx_null == "string"
    assert cfg.peer("sepp-h") is peer and cfg.peer(peer.fqdn) is peer and cfg.peer("x") is None


def test_lab_config_with_ipx_loads(tmp_path, pki):
    cfg = load_sepp_config(write(tmp_path, pki, ipx=True))
    assert cfg.ipx_keys[0].fqdn == "ipx1.ipx.lab"
    assert cfg.ipx_keys[0].sec_info()["rawPublicKeyList"][0].startswith("-----BEGIN PUBLIC KEY-----")
    assert cfg.peers[0].first_hop_ipx.uri == "https://127.0.0.1:9600"


def test_minimal_config_gets_the_defaults(tmp_path, pki, monkeypatch):
    cfg = {"name": "s", "fqdn": "sepp.5gc.mnc001.mcc001.3gppnetwork.org", "plmn_ids": ["001-01"],
           "certificate": str(pki / "plmn-001-01" / "sepp.crt"), "private_key": str(pki / "plmn-001-01" / "sepp.key"),
           "listeners": {"n32": {"port": 9443}},
           "policies": {"encryption": "policies/data-type-encryption.yaml", "placement": "policies/placement"}}
    p = tmp_path / "min.yaml"
    p.write_text(yaml.safe_dump(cfg))
    monkeypatch.chdir(Path(__file__).resolve().parents[2])   # relative paths: current directory first
    c = load_sepp_config(p)
    assert c.listeners.n32.host == "127.0.0.1" and c.listeners.sbi is None
    assert c.security_capabilities == ("PRINS", "TLS") and c.jwe_cipher_suites == ("A128GCM", "A256GCM")
    assert c.peers == () and c.ipx_keys == () and c.security_profile is None and c.policies.modification is None
    assert c.home_nfs.default is None and c.home_nfs.routes == {}


def test_relative_paths_cwd_first_then_config_directory(tmp_path, pki, monkeypatch):
    conf = tmp_path / "conf"
    (conf / "certs").mkdir(parents=True)
    for name in ("sepp.crt", "sepp.key"):
        (conf / "certs" / name).write_bytes((pki / "plmn-001-01" / name).read_bytes())
    cwd = tmp_path / "cwd"
    (cwd / "certs").mkdir(parents=True)
    (cwd / "certs" / "sepp.crt").write_bytes((pki / "plmn-001-01" / "sepp.crt").read_bytes())
    (cwd / "certs" / "sepp.key").write_bytes((pki / "plmn-001-01" / "sepp.key").read_bytes())

    def edit(c):
        c.update(certificate="certs/sepp.crt", private_key="certs/sepp.key")
    cfg = lab_dict(tmp_path, pki)
    edit(cfg)
    p = conf / "sepp.yaml"
    p.write_text(yaml.safe_dump(cfg))
    monkeypatch.chdir(cwd)
    assert load_sepp_config(p).certificate == cwd / "certs" / "sepp.crt"
    monkeypatch.chdir(tmp_path)
    assert load_sepp_config(p).certificate == conf / "certs" / "sepp.crt"


def _dup_peer(c):
    c["peers"].append(dict(c["peers"][0]))


def _second_peer(**kw):
    def edit(c):
        p = copy.deepcopy(c["peers"][0])
        p.update(name="other", fqdn="sepp.5gc.mnc002.mcc999.3gppnetwork.org", plmn_ids=["999-02"])
        p.update(kw)
        c["peers"].append(p)
    return edit


def _options(**kw):
    def edit(c):
        c["peers"][0].setdefault("options", {}).update(kw)
    return edit


CASES = [
    # missing, types, enums
    (lambda c: c.pop("certificate"), "certificate", "missing (required)"),
    (lambda c: c.pop("name"), "name", "missing (required)"),
    (lambda c: c.pop("listeners"), "listeners", "missing (required)"),
    (lambda c: c["listeners"].pop("n32"), "listeners.n32", "missing (required)"),
    (lambda c: c["listeners"]["n32"].pop("port"), "listeners.n32.port", "missing (required)"),
    (lambda c: c.update(name=5), "name", "must be a string, got 5"),
    (lambda c: c.update(peers={"a": 1}), "peers", "must be a list"),
    (lambda c: c.update(peers=["x"]), "peers[0]", "must be a mapping, got 'x'"),
    (lambda c: c["listeners"]["n32"].update(port="9443"), "listeners.n32.port", "must be an integer"),
    (lambda c: c["listeners"]["n32"].update(port=True), "listeners.n32.port", "must be an integer"),
    (lambda c: c["listeners"]["n32"].update(port=70000), "listeners.n32.port", "must be 1-65535, got 70000"),
    (lambda c: c["listeners"]["n32"].update(port=0), "listeners.n32.port", "1-65535"),
    (lambda c: c["listeners"].update(n32f={"port": 99999}), "listeners.n32f.port", "1-65535"),
    (lambda c: c["listeners"]["sbi"].update(port=c["listeners"]["n32"]["port"]), "listeners.sbi.port",
     "same address as listeners.n32"),
    (lambda c: c["listeners"]["sbi"].update(tls="yes please"), "listeners.sbi.tls", "must be true or false"),
    (lambda c: c["listeners"]["sbi"].update(certificate=c["certificate"]), "listeners.sbi.private_key",
     "go together"),
    (lambda c: c["listeners"]["n32"].update(tls=True), "listeners.n32.tls", "unknown key"),
    (lambda c: c.update(plmn_ids=["1-1"]), "plmn_ids[0]", "PLMN ID must look like 001-01"),
    (lambda c: c.update(plmn_ids=[]), "plmn_ids", "at least one"),
    (lambda c: c.update(plmn_ids=["001-01", "001-001"]), "plmn_ids[1]", "duplicate PLMN ID 001-001"),
    (lambda c: c.update(fqdn="not a fqdn"), "fqdn", "not a valid FQDN"),
    (lambda c: c.update(security_capabilities=["PRINS", "ALS"]), "security_capabilities[1]", "must be one of"),
    (lambda c: c.update(security_capabilities=["TLS", "TLS"]), "security_capabilities[1]", "duplicate TLS"),
    (lambda c: c.update(security_capabilities=[]), "security_capabilities", "at least one"),
    (lambda c: c.update(jwe_cipher_suites=["A192GCM"]), "jwe_cipher_suites[0]", "must be one of A128GCM, A256GCM"),
    (lambda c: c.update(jws_cipher_suites=["HS256"]), "jws_cipher_suites[0]", "must be one of ES256"),
    (lambda c: c.update(security_profile=["x"]), "security_profile", "must be a string"),
    (lambda c: c.update(limits={"json_depth": 1000}), "limits.json_depth", "must be 8-200"),
    (lambda c: c.update(limits={"body": 10}), "limits.body", "must be at least 1024"),
    (lambda c: c.update(limits={"json_members": "many"}), "limits.json_members", "must be an integer"),
    (lambda c: c.update(limits={"depth": 10}), "limits.depth", "did you mean json_depth?"),
    (lambda c: c.update(limits={"header_section": 100}), "limits.header_section", "must be at least 4096"),
    (lambda c: c.update(limits={"header_section": 200000, "h2_header_block": 100000}), "limits.h2_header_block",
     "must be 200000-8388608"),
    # unknown keys (typo protection), reported before anything else in their mapping
    (lambda c: c.update(colour="blue"), "colour", "unknown key"),
    (lambda c: c.update(certficate="x"), "certficate", "unknown key (did you mean certificate?)"),
    (lambda c: c["peers"][0].update(trustanchor="x"), "peers[0].trustanchor", "did you mean trust_anchor?"),
    (_options(kdf="sha256"), "peers[0].options.kdf", "unknown key"),
    (lambda c: c["handshake"].update(retries=3), "handshake.retries", "unknown key"),
    # files
    (lambda c: c.update(certificate="nope/sepp.crt"), "certificate", "file not found: nope/sepp.crt"),
    (lambda c: c["peers"][0].update(trust_anchor="nope/ca.crt"), "peers[0].trust_anchor",
     "file not found: nope/ca.crt"),
    (lambda c: c["peers"][0].update(trust_anchor=c["private_key"]), "peers[0].trust_anchor",
     "not a PEM trust anchor"),
    (lambda c: c.update(certificate=c["private_key"]), "certificate", "not a PEM certificate"),
    (lambda c: c.update(private_key=c["certificate"]), "private_key", "not an unencrypted PEM private key"),
    (lambda c: c["policies"].update(encryption="nope.yaml"), "policies.encryption", "file not found"),
    (lambda c: c["policies"].update(placement=["nope/"]), "policies.placement[0]", "file not found"),
    (lambda c: c["policies"].update(placement=[]), "policies.placement", "at least one"),
    (lambda c: c["home_nfs"].update(trust_anchor="nope.crt"), "home_nfs.trust_anchor", "file not found"),
    # values
    (lambda c: c["home_nfs"].update(default="ftp://x"), "home_nfs.default", "must be a http:// or https:// URI"),
    (lambda c: c["home_nfs"].update(routes={"not a host": "https://127.0.0.1:1"}), "home_nfs.routes.not a host",
     "not a valid FQDN"),
    (lambda c: c["home_nfs"].update(routes={"ausf.5gc.mnc001.mcc001.3gppnetwork.org": "127.0.0.1:7443"}),
     "home_nfs.routes.ausf.5gc.mnc001.mcc001.3gppnetwork.org", "URI"),
    (lambda c: c.update(contexts={"lifetime": 0}), "contexts.lifetime", "greater than 0"),
    (lambda c: c.update(contexts={"rekey_margin": -1}), "contexts.rekey_margin", "at least 0"),
    (lambda c: c.update(contexts={"max_messages": 2 ** 32 + 1}), "contexts.max_messages", "1-4294967296"),
    (lambda c: c.update(contexts={"max_messages": 100, "rekey_margin": 100}), "contexts.rekey_margin",
     "less than contexts.max_messages"),
    (lambda c: c.update(contexts={"rekey_grace": -1}), "contexts.rekey_grace", "at least 0"),
    (lambda c: c["handshake"].update(retry_max=0.1), "handshake.retry_max", "at least retry_initial"),
    (lambda c: c["handshake"].update(attempts=0), "handshake.attempts", "at least 1"),
    (lambda c: c["handshake"].update(timeout="10s"), "handshake.timeout", "must be a number"),
    # peers
    (lambda c: c["peers"][0].update(security_capabilities=["NONE"]), "peers[0].security_capabilities[0]",
     "must be one of"),
    (lambda c: (c.update(security_capabilities=["PRINS"]), c["peers"][0].update(security_capabilities=["TLS"])),
     "peers[0].security_capabilities[0]", "TLS is not among this SEPP's security_capabilities"),
    (_options(kdf_hash="md5"), "peers[0].options.kdf_hash", "must be one of sha256, sha384, sha512"),
    (_options(kdf_context="both"), "peers[0].options.kdf_context", "must be one of"),
    (_options(authorized_ipx_null="none"), "peers[0].options.authorized_ipx_null", "must be one of"),
    (_options(tls12="no"), "peers[0].options.tls12", "must be true or false"),
    (_options(policy_mismatch="ignore"), "peers[0].options.policy_mismatch", "must be one of report, log"),
    (_options(header_value_form="json"), "peers[0].options.header_value_form", "must be one of"),
    (_options(extensions=["n32c-parameters", "pigeons"]), "peers[0].options.extensions[1]", "must be one of"),
    (_options(extensions="wildcards"), "peers[0].options.extensions", "must be"),
    (lambda c: c["peers"][0].update(n32c_uri="http://127.0.0.1:1"), "peers[0].n32c_uri", "https://"),
    (lambda c: c["peers"][0].update(n32c_uri="https://127.0.0.1:99999"), "peers[0].n32c_uri", "not a valid URI"),
    (lambda c: c["peers"][0].update(n32f_uri="https://"), "peers[0].n32f_uri", "with a host"),
    (lambda c: c["peers"][0].update(plmn_ids=["999-7"]), "peers[0].plmn_ids[0]", "PLMN ID"),
    (lambda c: c["peers"][0].update(plmn_ids=["001-001"]), "peers[0].plmn_ids[0]",
     "PLMN 001-001 is one of this SEPP's own plmn_ids"),
    (lambda c: c["peers"][0].update(fqdn=c["fqdn"]), "peers[0].fqdn", "own fqdn"),
    (lambda c: c["peers"][0].update(initiate="yes"), "peers[0].initiate", "must be true or false"),
    (_dup_peer, "peers[1].fqdn", "duplicate peer sepp.5gc.mnc070.mcc999.3gppnetwork.org (also peers[0])"),
    (_second_peer(name="sepp-h"), "peers[1].name", "duplicate peer name sepp-h"),
    (_second_peer(plmn_ids=["999-070"], trust_anchor="{pki}/rogue/ca.crt"), "peers[1].plmn_ids[0]",
     "already maps to another trust anchor"),
    (lambda c: c["peers"][0].update(first_hop_ipx={"fqdn": "ipx9.ipx.lab", "uri": "https://127.0.0.1:1"}),
     "peers[0].first_hop_ipx.fqdn", "not among the top-level ipx_keys"),
    (lambda c: c["peers"][0].update(first_hop_ipx={"fqdn": "ipx1.ipx.lab"}), "peers[0].first_hop_ipx.uri",
     "missing (required)"),
    # IPX keys
    (lambda c: c.update(ipx_keys=[{"fqdn": "ipx1.ipx.lab"}]), "ipx_keys[0]", "needs public_keys or certificates"),
    (lambda c: c.update(ipx_keys=[{"fqdn": "ipx1.ipx.lab", "public_keys": ["{pki}/ipx/ipx1.ipx.lab.crt"]}]),
     "ipx_keys[0].public_keys[0]", "not a PEM public key"),
    (lambda c: c.update(ipx_keys=[{"fqdn": "ipx1.ipx.lab", "certificates": ["nope.crt"]}]),
     "ipx_keys[0].certificates[0]", "file not found"),
    (lambda c: c.update(ipx_keys=[{"fqdn": "ipx1.ipx.lab", "public_keys": ["{pki}/ipx/ipx1.ipx.lab.pub"]},
                                  {"fqdn": "IPX1.ipx.lab", "public_keys": ["{pki}/ipx/ipx1.ipx.lab.pub"]}]),
     "ipx_keys[1].fqdn", "duplicate IPX ipx1.ipx.lab"),
]


@pytest.mark.parametrize("edit,key,problem", CASES, ids=[c[1] + ":" + c[2][:30] for c in CASES])
def test_each_mistake_gives_one_line_naming_file_and_key(tmp_path, pki, edit, key, problem):
    def apply(c):
        edit(c)
        text = yaml.safe_dump(c).replace("{pki}", str(pki))
        c.clear()
        c.update(yaml.safe_load(text))
    path = write(tmp_path, pki, apply)
    msg = one_line_error(path)
    assert msg.startswith(f"{path}: {key}: ") and problem in msg, msg


def test_key_that_does_not_match_the_certificate(tmp_path, pki):
    path = write(tmp_path, pki, lambda c: c.update(private_key=str(pki / "plmn-999-70" / "sepp.key")))
    assert f"{path}: private_key: does not match " in one_line_error(path)


def test_same_plmn_same_anchor_is_fine(tmp_path, pki):
    edit = _second_peer(plmn_ids=["999-70"])
    cfg = load_sepp_config(write(tmp_path, pki, edit))
    assert len(cfg.peers) == 2


@pytest.mark.parametrize("text,problem", [
    ("name: [unclosed", "not valid YAML: line 1"),
    ("name: a\nname: b\n", "not valid YAML: line 2, column 1: duplicate key 'name'"),
    ("", "(top): must be a mapping, got None"),
    ("- a\n- b\n", "(top): must be a mapping"),
])
def test_yaml_problems_are_one_line(tmp_path, text, problem):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    assert problem in one_line_error(p)


def test_missing_config_file(tmp_path):
    p = tmp_path / "nope.yaml"
    assert one_line_error(p) == f"{p}: (file): file not found"


def test_expired_certificate(tmp_path, pki):
    import datetime

    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=400)
    path = write(tmp_path, pki)
    msg = one_line_error(path, lambda p: load_sepp_config(p, now=later))
    assert "certificate: certificate " in msg and "expired on" in msg


# ------------------------------------------------------------------------------------- IPX
def ipx_dict(tmp: Path, pki: Path, fqdn: str = "ipx1.ipx.lab") -> dict:
    return copy.deepcopy(ipx_config(Lab(out=tmp, pki=pki, ipx=True), fqdn))   # never edit lab.topology's rules


def write_ipx(tmp: Path, pki: Path, edit=None) -> Path:
    cfg = ipx_dict(tmp, pki)
    if edit:
        edit(cfg)
    p = tmp / "ipx.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


def test_lab_ipx_config_loads(tmp_path, pki):
    cfg = load_ipx_config(write_ipx(tmp_path, pki))
    assert cfg.name == "ipx1" and cfg.fqdn == "ipx1.ipx.lab"
    assert cfg.listeners.n32f is cfg.listeners.n32 and cfg.listeners.n32f.port > 0
    assert len(cfg.trust_anchors) == 2
    assert cfg.next_hops[0].server_name == "ipx2.ipx.lab" and cfg.next_hops[0].peer is None
    assert cfg.modifications[0].direction == "request"
    assert cfg.modifications[0].set_headers == {"user-agent": "AMF (via ipx1)"}


def test_ipx_match_form_templates_and_patches(tmp_path, pki):
    def edit(c):
        c["next_hops"] = [{"match": {"direction": "request", "peer": "sepp.5gc.mnc070.mcc999.3gppnetwork.org"},
                           "uri": "https://127.0.0.1:9543"}]
        c["modifications"] = [
            {"match": {"direction": "request", "method": "post",
                       "path": "/nausf-auth/v1/ue-authentications/{authCtxId}/5g-aka-confirmation"},
             "patch": [{"op": "replace", "path": "/headers/0/value", "value": "x"},
                       {"op": "move", "from": "/a", "path": "/b"}, {"op": "remove", "path": "/c"}]},
            {"direction": "response", "path": "^/nudm-sdm/", "reject": {"status": 403, "cause": "CONTRACTUAL"}},
        ]
    cfg = load_ipx_config(write_ipx(tmp_path, pki, edit))
    hop = cfg.next_hops[0]
    assert hop.uri == "https://127.0.0.1:9543" and hop.server_name == "127.0.0.1"
    assert hop.peer == "sepp.5gc.mnc070.mcc999.3gppnetwork.org" and hop.direction == "request"
    rule, reject = cfg.modifications
    assert rule.method == "POST" and len(rule.patch) == 3
    import re
    assert re.search(rule.path, "/nausf-auth/v1/ue-authentications/abc-1/5g-aka-confirmation")
    assert not re.search(rule.path, "/nausf-auth/v1/ue-authentications/a/b/5g-aka-confirmation")
    assert reject.reject == {"status": 403, "cause": "CONTRACTUAL"} and reject.direction == "response"


IPX_CASES = [
    (lambda c: c.pop("fqdn"), "fqdn", "missing (required)"),
    (lambda c: c.update(fqdn="ipx9.ipx.lab"), "fqdn", "is not a DNS name of the certificate"),
    (lambda c: c.update(private_key="{pki}/ipx/ipx2.ipx.lab.key"), "private_key", "does not match"),
    (lambda c: c.update(trust_anchors=[]), "trust_anchors", "at least one"),
    (lambda c: c.update(trust_anchors=["nope.crt"]), "trust_anchors[0]", "file not found"),
    (lambda c: c["listeners"].update(sbi={"port": 1}), "listeners.sbi", "unknown key"),
    (lambda c: c["listeners"]["n32f"].update(port=-1), "listeners.n32f.port", "1-65535"),
    (lambda c: c.update(next_hops=[]), "next_hops", "at least one"),
    (lambda c: c["next_hops"][0].update(uri="http://x.example.org"), "next_hops[0].uri", "https://"),
    (lambda c: c["next_hops"][0].update(match={"direction": "sideways"}), "next_hops[0].match.direction",
     "must be one of request, response"),
    (lambda c: c["next_hops"][0].update(match={"method": "GET"}), "next_hops[0].match.method", "unknown key"),
    (lambda c: c["modifications"][0].update(direction="up"), "modifications[0].direction", "must be one of"),
    (lambda c: c["modifications"][0].update(match={"direction": "request"}), "modifications[0].direction",
     "given both here and under match"),
    (lambda c: c["modifications"][0].update(method="FETCH"), "modifications[0].method", "must be one of GET"),
    (lambda c: c["modifications"][0].update(path="(unclosed"), "modifications[0].path",
     "not a valid regular expression"),
    (lambda c: c["modifications"][0].update(patch=[{"op": "frobnicate", "path": "/a"}]),
     "modifications[0].patch[0].op", "must be one of add, remove"),
    (lambda c: c["modifications"][0].update(patch=[{"op": "add", "path": "/a"}]), "modifications[0].patch[0].value",
     "add needs a value"),
    (lambda c: c["modifications"][0].update(patch=[{"op": "replace", "path": "a", "value": 1}]),
     "modifications[0].patch[0].path", "JSON pointer"),
    (lambda c: c["modifications"][0].update(patch=[{"op": "copy", "path": "/a"}]), "modifications[0].patch[0].from",
     "missing (required)"),
    (lambda c: c["modifications"][0].update(patch=[{"op": "remove", "path": "/a", "value": 1, "x": 2}]),
     "modifications[0].patch[0].x", "unknown key"),
    (lambda c: c["modifications"][0].update(set_headers={"a": 1}), "modifications[0].set_headers", "must be strings"),
    (lambda c: c["modifications"][0].update(reject={"status": 200}), "modifications[0].reject.status", "400-599"),
    (lambda c: c["modifications"][0].update(reject={"reason": "x"}), "modifications[0].reject.reason",
     "unknown key"),
]


@pytest.mark.parametrize("edit,key,problem", IPX_CASES, ids=[c[1] + ":" + c[2][:30] for c in IPX_CASES])
def test_each_ipx_mistake_gives_one_line_naming_file_and_key(tmp_path, pki, edit, key, problem):
    def apply(c):
        edit(c)
        text = yaml.safe_dump(c).replace("{pki}", str(pki))
        c.clear()
        c.update(yaml.safe_load(text))
    path = write_ipx(tmp_path, pki, apply)
    msg = one_line_error(path, load_ipx_config)
    assert msg.startswith(f"{path}: {key}: ") and problem in msg, msg


def test_ipx_key_must_be_p256(tmp_path, pki):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    pub = ec.generate_private_key(ec.SECP384R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    (tmp_path / "p384.pub").write_bytes(pub)
    path = write(tmp_path, pki, lambda c: c.update(ipx_keys=[{"fqdn": "ipx1.ipx.lab",
                                                              "public_keys": [str(tmp_path / "p384.pub")]}]))
    assert "ipx_keys[0].public_keys[0]: " in one_line_error(path) and "EC P-256" in one_line_error(path)


# ------------------------------------------------------------------- telescopic / topology hiding
def test_telescopic_and_topology_hiding_defaults(tmp_path, pki):
    cfg = load_sepp_config(write(tmp_path, pki))        # the lab enables topology_hiding
    assert cfg.telescopic.domain == cfg.fqdn             # sepp.crt carries *.sepp.5gc...
    th = cfg.topology_hiding
    assert th.enabled and th.pseudonym_domain is None and th.secret_file is None and th.home_networks is None

    def plain(c):
        del c["topology_hiding"]
    assert not load_sepp_config(write(tmp_path, pki, plain)).topology_hiding.enabled


def test_topology_hiding_options(tmp_path, pki):
    secret = tmp_path / "th.key"
    secret.write_bytes(b"k" * 32)

    def edit(c):
        c["topology_hiding"] = {"pseudonym_domain": "hidden.5gc.mnc001.mcc001.3gppnetwork.org",
                                "secret_file": str(secret), "home_networks": ["10.1.0.0/16", "fd00::/8"]}
        c["telescopic"] = {"enabled": False}
    cfg = load_sepp_config(write(tmp_path, pki, edit))
    assert cfg.telescopic.domain is None
    th = cfg.topology_hiding
    assert th.enabled and th.pseudonym_domain.startswith("hidden.") and th.secret_file == secret
    assert th.home_networks == ("10.1.0.0/16", "fd00::/8")


@pytest.mark.parametrize("edit,key,problem", [
    (lambda c, t: c.update(telescopic={"domain": "tele.example.org"}), "telescopic.domain", "does not cover *.tele.example.org"),
    (lambda c, t: c.update(telescopic={"domian": "x"}), "telescopic.domian", "did you mean domain"),
    (lambda c, t: c.update(topology_hiding={"home_networks": ["10.0.0.0/33"]}), "topology_hiding.home_networks[0]",
     "must be an IP network"),
    (lambda c, t: (t.joinpath("short.key").write_bytes(b"x"),
                   c.update(topology_hiding={"secret_file": str(t / "short.key")})), "topology_hiding.secret_file",
     "at least 16 octets"),
    (lambda c, t: c.update(topology_hiding={"enabled": "yes"}), "topology_hiding.enabled", "must be"),
])
def test_telescopic_and_topology_hiding_mistakes(tmp_path, pki, edit, key, problem):
    msg = one_line_error(write(tmp_path, pki, lambda c: edit(c, tmp_path)))
    assert f": {key}: " in msg and problem in msg, msg


def test_json_limits_default_and_configured(tmp_path, pki):
    from n32.body import Limits
    assert load_sepp_config(write(tmp_path, pki)).limits == Limits()
    cfg = load_sepp_config(write(tmp_path, pki, lambda c: c.update(limits={"json_depth": 20, "json_string": 4096})))
    assert cfg.limits == Limits(depth=20, string=4096)


def test_header_limits(tmp_path: Path, pki: Path) -> None:
    from n32.header_limits import HeaderLimits

    assert load_sepp_config(write(tmp_path, pki)).header_limits == HeaderLimits()
    cfg = load_sepp_config(write(tmp_path, pki, lambda c: c.update(limits={"header_section": 8192})))
    assert cfg.header_limits == HeaderLimits(section=8192, h2_block=1024 * 1024)
    cfg = load_sepp_config(write(tmp_path, pki, lambda c: c.update(limits={"header_section": 2 * 1024 * 1024})))
    assert cfg.header_limits.h2_block == 2 * 1024 * 1024   # the decoder takes what the 431 check must see


# ------------------------------------------------------------------ identity warnings (issue 15)
def test_consistent_identity_gives_no_warning(tmp_path, pki):
    assert load_sepp_config(write(tmp_path, pki)).warnings == ()


def test_plmn_fqdn_and_certificate_that_disagree_are_warned_not_refused(tmp_path, pki):
    path = write(tmp_path, pki, lambda c: c.update(plmn_ids=["001-02"]))
    warnings = load_sepp_config(path).warnings
    assert warnings == (
        f"{path}: fqdn: sepp.5gc.mnc001.mcc001.3gppnetwork.org names PLMN 001-001, which is not among plmn_ids "
        "(001-02)",
        f"{path}: certificate: names PLMN 001-001, which is not among plmn_ids (001-02)",
        f"{path}: plmn_ids[0]: 001-02 is not named by the certificate (001-001); peers will refuse it on N32-c")


def test_fqdn_outside_the_3gpp_domain_and_not_in_the_certificate_is_warned(tmp_path, pki):
    path = write(tmp_path, pki, lambda c: c.update(fqdn="sepp1.localdomain", telescopic={"enabled": False}))
    warnings = load_sepp_config(path).warnings
    assert any(": fqdn: sepp1.localdomain is not a 3GPP SEPP FQDN" in w for w in warnings)
    assert any(": certificate: does not name sepp1.localdomain" in w for w in warnings)


def test_peer_fqdn_naming_another_plmn_is_warned(tmp_path, pki):
    path = write(tmp_path, pki, lambda c: c["peers"][0].update(plmn_ids=["999-71"]))
    assert load_sepp_config(path).warnings == (
        f"{path}: peers[0].fqdn: sepp.5gc.mnc070.mcc999.3gppnetwork.org names PLMN 999-070, which is not among "
        "peers[0].plmn_ids (999-71)",)
