"""Our real SEPP against an open5gs-shaped peer (tests/peers/open5gs.py: open5gs v2.7.7's
captured bodies, headers and behaviours), in both N32-c roles (issue 17, points 1-5).

* open5gs initiates (our SEPP is the home SEPP, PLMN 999/70, responder): its exchange-capability
  body, its N32-f in TLS mode with its headers (``:authority sepp...:7777``,
  ``3gpp-sbi-target-apiroot http://...:8080``) on new parallel connections that offer a TLS
  session, delivered to a home NF that speaks only cleartext HTTP/2; its ``["NONE"]`` release,
  sent or lost, and its restart; its sample-style certificate (no PLMN) refused.
* we initiate (our SEPP is the visited SEPP, 001/01, its NF-facing side cleartext HTTP/2): the
  body open5gs receives, N32-f to its dedicated N32-f port (``peers[].n32f_uri``), what happens
  without ``n32f_uri`` (its ``[DROP] ... wrong interface``), and re-establishment after our
  restart while open5gs still believes the relation established (it never initiates then).
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest
import yaml

from lab import procs as P
from lab.topology import HOME, VISITED, Lab, sepp_config, sepp_fqdn
from lab.traffic import H2Client

OPEN5GS_RESPONSE_MEMBERS = {"sender", "selectedSecCapability", "3GppSbiTargetApiRootSupported", "plmnIdList",
                            "supportedFeatures"}
SNN = "5G:mnc001.mcc001.3gppnetwork.org"


def _emulator_config(lab: Lab, me: dict, peer: dict, *, initiate: bool, name: str, cert: Path | None = None,
                     release: str = "send") -> Path:
    d = lab.pki / f"plmn-{me['plmn']}"
    cfg = {"sender": sepp_fqdn(me), "mcc": me["mcc"], "mnc": me["mnc"][-2:] if me["mnc"].startswith("0") else me["mnc"],
           "certificate": str(cert or d / "sepp.crt"), "private_key": str((cert or d / "sepp.crt").with_suffix(".key")),
           "ca": str(lab.pki / f"plmn-{peer['plmn']}" / "ca.crt"),
           "listen": {"n32c": lab.port("o5.n32c"), "n32f": lab.port("o5.n32f"), "sbi": lab.port("o5.sbi")},
           "peer": {"fqdn": sepp_fqdn(peer), "n32c": f"127.0.0.1:{lab.port('us.n32')}",
                    "n32f": f"127.0.0.1:{lab.port('us.n32')}", "authority_port": 7777},
           "initiate": initiate, "retry": 0.3, "release": release,
           "state": str(lab.out / f"{name}.state.json"), "log": str(lab.out / f"{name}.emulog")}
    path = lab.out / f"{name}.json"
    path.write_text(json.dumps(cfg))
    (lab.out / f"{name}.state.json").unlink(missing_ok=True)
    return path


def _start_emulator(lab: Lab, procs: P.Procs, cfg: Path, name: str = "open5gs") -> P.Proc:
    p = procs.start(name, [sys.executable, "-m", "tests.peers.open5gs", str(cfg)], out=lab.out)
    P.wait_port(lab.port("o5.n32c"), 15, [p])
    return p


def _our_config(lab: Lab, me: dict, peer: dict, *, initiate: bool, n32f_uri: bool = True) -> Path:
    extra = {"n32c_uri": f"https://127.0.0.1:{lab.port('o5.n32c')}", "security_capabilities": ["TLS"],
             "options": {"extensions": []}}   # spec-only: open5gs accepts none of ours
    if n32f_uri:
        extra["n32f_uri"] = f"https://127.0.0.1:{lab.port('o5.n32f')}"
    lab.ports[f"{me['name']}.n32"] = lab.port("us.n32")
    cfg = sepp_config(lab, me, peer, initiate=initiate, extra_peer=extra)
    cfg["security_capabilities"] = ["TLS"]
    cfg["listeners"]["sbi"]["tls"] = False        # its NFs: cleartext HTTP/2 (prior knowledge)
    path = lab.out / f"{me['name']}{'' if n32f_uri else '-no-n32f'}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def _start_ours(lab: Lab, procs: P.Procs, me: dict, cfg: Path) -> P.Proc:
    name = me["name"]
    (lab.out / f"{name}.status.json").unlink(missing_ok=True)
    p = procs.start_mitmdump(name, "addons/sepp.py", {"sepp_config": cfg,
                                                       "sepp_status": lab.out / f"{name}.status.json"},
                             flows=False, out=lab.out)
    P.wait_port(lab.port("us.n32"), 30, [p])
    return p


def _start_home_nf(lab: Lab, procs: P.Procs) -> P.Proc:
    nf = procs.start("nf-home", [sys.executable, "-m", "lab.nf", "--host", "127.0.0.1", "--port",
                                 str(lab.port("sepp-h.nf")), "--h2c-only", "--plmn", HOME["plmn"],
                                 "--record", str(lab.out / "nf-home.requests.jsonl")], out=lab.out)
    P.wait_port(lab.port("sepp-h.nf"), 15, [nf])
    return nf


def _state(lab: Lab, name: str = "open5gs") -> dict:
    return P.read_json(lab.out / f"{name}.state.json") or {}


def _our_relation(lab: Lab, me: dict, peer: dict) -> dict:
    st = P.read_json(lab.out / f"{me['name']}.status.json") or {}
    return (st.get("peers") or {}).get(sepp_fqdn(peer)) or {}


def _kill(p: P.Proc, sig: int) -> None:
    os.killpg(p.popen.pid, sig)
    p.popen.wait(10)


async def _nf_requests(port: int, requests: list[tuple[str, str, list[tuple[str, str]], bytes]]):
    """Cleartext HTTP/2 with prior knowledge (as open5gs NFs), all requests concurrently."""
    async def one(method, path, headers, body):
        c = await H2Client.connect("127.0.0.1", port, None)
        try:
            return await c.request(method, path, headers, body)
        finally:
            await c.close()
    return await asyncio.gather(*(one(*r) for r in requests))


def _auth_request(ue: int) -> tuple[str, str, list[tuple[str, str]], bytes]:
    from lab.scenario import suci

    body = json.dumps({"supiOrSuci": suci(ue), "servingNetworkName": SNN}).encode()
    return ("POST", "/nausf-auth/v1/ue-authentications?x=1",
            [("content-type", "application/json"),
             ("3gpp-sbi-target-apiroot", "http://nausf.5gc.mnc070.mcc999.3gppnetwork.org:8080")], body)


# ============================================================== open5gs initiates, we respond
@pytest.fixture(scope="module")
def o5_initiates(pki, tmp_path_factory):
    from certs.pki import ensure_lab_pki

    ensure_lab_pki(pki, sepps=["sepp1.localdomain=001-01"])
    lab = Lab(out=tmp_path_factory.mktemp("o5init"), pki=pki, mode="tls", nf="h2c")
    with P.Procs(lab.out) as procs:
        nf = _start_home_nf(lab, procs)
        ours = _start_ours(lab, procs, HOME, _our_config(lab, HOME, VISITED, initiate=False))
        emu = _start_emulator(lab, procs, _emulator_config(lab, VISITED, HOME, initiate=True, name="open5gs"))
        P.wait_for(lambda: _state(lab).get("established"), 20, "open5gs's handshake", [ours, emu, nf])
        yield lab, procs, {"ours": ours, "emu": emu}


def test_open5gs_capability_request_gets_an_answer_it_reads(o5_initiates):
    lab, _, _ = o5_initiates
    st = _state(lab)
    rsp = st["n32c_responses"][0]
    assert rsp["status"] == 200
    assert OPEN5GS_RESPONSE_MEMBERS <= set(rsp["body"]), rsp
    assert rsp["body"]["selectedSecCapability"] == "TLS" and rsp["body"]["sender"] == sepp_fqdn(HOME)
    assert rsp["body"]["plmnIdList"] == [{"mcc": "999", "mnc": "70"}]
    assert _our_relation(lab, HOME, VISITED).get("capability") == "TLS"


def test_open5gs_n32f_burst_with_session_offers_reaches_our_h2c_home_nf(o5_initiates):
    """Its N32-f headers as captured; 6 parallel connections, the later ones offering the TLS
    session of an earlier one: each gets a full handshake (no resumption) and is served."""
    lab, _, _ = o5_initiates
    rsps = asyncio.run(_nf_requests(lab.port("o5.sbi"), [_auth_request(1)]))
    rsps += asyncio.run(_nf_requests(lab.port("o5.sbi"), [_auth_request(ue) for ue in range(2, 7)]))
    assert [r.status for r in rsps] == [201] * 6, [(r.status, r.body[:200]) for r in rsps]
    sent = _state(lab)["n32f_sent"][-6:]
    assert all(s.get("status") == 201 and s["reused"] is False for s in sent), sent
    assert any(s["offered"] for s in sent), sent
    got = [json.loads(line) for line in (lab.out / "nf-home.requests.jsonl").read_text().splitlines()]
    auth = [r for r in got if r["path"] == "/nausf-auth/v1/ue-authentications"]
    assert len(auth) >= 6 and all(r["query"] == "x=1" for r in auth)
    hdrs = dict(auth[-1]["headers"])
    assert "3gpp-sbi-target-apiroot" not in hdrs      # delivered directly to the NF: removed
    assert hdrs[":authority"].startswith("nausf.5gc.mnc070.mcc999.3gppnetwork.org")
    assert hdrs["user-agent"] == "AMF" and hdrs[":scheme"] == "http"   # h2c to the NF, as its apiRoot says


def test_open5gs_release_lost_then_restart(o5_initiates):
    """SIGKILL: the ["NONE"] never arrives. Our relation stays; open5gs starts again, initiates,
    and its new relation replaces the old one; N32-f works at once."""
    lab, procs, p = o5_initiates
    before = _state(lab)["handshakes_sent"]
    _kill(p["emu"], signal.SIGKILL)
    assert _our_relation(lab, HOME, VISITED).get("capability") == "TLS"
    p["emu"] = _start_emulator(lab, procs, _emulator_config(lab, VISITED, HOME, initiate=True, name="open5gs"))
    P.wait_for(lambda: _state(lab).get("established"), 20, "open5gs's new handshake", [p["emu"], p["ours"]])
    assert _state(lab)["handshakes_sent"] >= 1 and before >= 1
    rsps = asyncio.run(_nf_requests(lab.port("o5.sbi"), [_auth_request(7)]))
    assert rsps[0].status == 201


def test_open5gs_release_none_then_restart(o5_initiates):
    """SIGTERM: open5gs sends ["NONE"] on a new connection; we end the relation and answer
    selectedSecCapability NONE; its restart re-establishes."""
    lab, procs, p = o5_initiates
    _kill(p["emu"], signal.SIGTERM)
    got = _state(lab)["n32c_responses"][-1]
    assert got["status"] == 200 and got["body"]["selectedSecCapability"] == "NONE"
    P.wait_for(lambda: _our_relation(lab, HOME, VISITED).get("capability") in (None, ""), 10,
               "our side to end the relation", [p["ours"]])
    p["emu"] = _start_emulator(lab, procs, _emulator_config(lab, VISITED, HOME, initiate=True, name="open5gs"))
    P.wait_for(lambda: _our_relation(lab, HOME, VISITED).get("capability") == "TLS" and _state(lab).get("established"),
               20, "the relation again", [p["emu"], p["ours"]])
    assert asyncio.run(_nf_requests(lab.port("o5.sbi"), [_auth_request(8)]))[0].status == 201


def test_open5gs_sample_certificate_without_plmn_is_refused(o5_initiates):
    """Its sample-style certificate (sepp1.localdomain, issued by the right CA, no PLMN): the TLS
    handshake fails, our log says CERTIFICATE_PLMN_MISMATCH, open5gs sees only an EOF/error."""
    lab, procs, p = o5_initiates
    _kill(p["emu"], signal.SIGKILL)
    cert = lab.pki / "plmn-001-01" / "sepp1.localdomain.crt"
    cfg = _emulator_config(lab, VISITED, HOME, initiate=True, name="open5gs-sample", cert=cert)
    cfgd = json.loads(cfg.read_text())
    cfgd["sender"] = "sepp1.localdomain"
    cfg.write_text(json.dumps(cfgd))
    bad = _start_emulator(lab, procs, cfg, name="open5gs-sample")
    P.wait_for(lambda: len(_state(lab, "open5gs-sample").get("handshake_errors") or []) >= 1, 15,
               "the refused handshake", [bad])
    assert not _state(lab, "open5gs-sample")["established"]
    P.wait_for(lambda: "CERTIFICATE_PLMN_MISMATCH" in p["ours"].log_text(), 5, "our log line")
    _kill(bad, signal.SIGKILL)


# ============================================================== we initiate, open5gs responds
@pytest.fixture(scope="module")
def we_initiate(pki, tmp_path_factory):
    lab = Lab(out=tmp_path_factory.mktemp("o5resp"), pki=pki, mode="tls", nf="h2c")
    with P.Procs(lab.out) as procs:
        emu = _start_emulator(lab, procs, _emulator_config(lab, HOME, VISITED, initiate=False, name="open5gs"))
        ours = _start_ours(lab, procs, VISITED, _our_config(lab, VISITED, HOME, initiate=True))
        P.wait_for(lambda: _our_relation(lab, VISITED, HOME).get("capability") == "TLS", 20,
                   "our handshake with open5gs", [ours, emu])
        yield lab, procs, {"ours": ours, "emu": emu}


def _udm_get(ue: int = 1):
    from lab.scenario import supi

    return ("GET", f"/nudm-sdm/v2/{supi(ue)}/nssai", [("3gpp-sbi-target-apiroot",
                                                        "https://udm.5gc.mnc070.mcc999.3gppnetwork.org")], b"")


def test_open5gs_receives_a_spec_only_tls_offer(we_initiate):
    lab, _, _ = we_initiate
    req = _state(lab)["n32c_received"][0]
    assert req["sender"] == sepp_fqdn(VISITED) and req["supportedSecCapabilityList"] == ["TLS"]
    assert req["plmnIdList"] == [{"mcc": "001", "mnc": "01"}]
    assert _state(lab)["established"]


def test_our_h2c_nf_reaches_open5gs_on_its_dedicated_n32f_port(we_initiate):
    lab, _, _ = we_initiate
    rsps = asyncio.run(_nf_requests(lab.port("sepp-v.sbi"), [_udm_get(1), _udm_get(2)]))
    assert [r.status for r in rsps] == [200, 200], [r.body for r in rsps]
    st = _state(lab)
    assert st["dropped"] == 0 and len(st["n32f_received"]) >= 2
    h = dict(st["n32f_received"][-1]["headers"])
    assert h[":authority"].split(":")[0] == sepp_fqdn(HOME)
    assert h["3gpp-sbi-target-apiroot"] == "https://udm.5gc.mnc070.mcc999.3gppnetwork.org"


def test_without_n32f_uri_open5gs_drops_on_its_n32c_port_then_our_restart_reestablishes(we_initiate):
    """Our SEPP restarted without n32f_uri: open5gs announces nothing, so N32-f goes to its N32-c
    port, where it is dropped ("wrong interface", 500). Restarted again with n32f_uri: open5gs
    still believes the relation established and never initiates; ours does, traffic flows."""
    lab, procs, p = we_initiate
    _kill(p["ours"], signal.SIGKILL)
    p["ours"] = _start_ours(lab, procs, VISITED, _our_config(lab, VISITED, HOME, initiate=True, n32f_uri=False))
    P.wait_for(lambda: _our_relation(lab, VISITED, HOME).get("capability") == "TLS", 20, "handshake", [p["ours"]])
    dropped = _state(lab)["dropped"]
    rsp = asyncio.run(_nf_requests(lab.port("sepp-v.sbi"), [_udm_get(3)]))[0]
    assert rsp.status == 500, rsp.body
    assert _state(lab)["dropped"] == dropped + 1
    assert "[DROP] Peer SEPP is using the wrong interface" in (lab.out / "open5gs.emulog").read_text()
    _kill(p["ours"], signal.SIGKILL)
    handshakes = len(_state(lab)["n32c_received"])
    p["ours"] = _start_ours(lab, procs, VISITED, _our_config(lab, VISITED, HOME, initiate=True))
    P.wait_for(lambda: len(_state(lab)["n32c_received"]) > handshakes, 20, "our new handshake", [p["ours"]])
    assert _state(lab)["handshakes_sent"] == 0            # open5gs never initiated
    P.wait_for(lambda: _our_relation(lab, VISITED, HOME).get("capability") == "TLS", 20, "relation", [p["ours"]])
    assert asyncio.run(_nf_requests(lab.port("sepp-v.sbi"), [_udm_get(4)]))[0].status == 200


# ============================================================== the README's open5gs recipe, tried
ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples" / "open5gs"


def _readme_pki_command() -> list[str]:
    """The `python -m certs.pki ...` command of the README's open5gs recipe (continuations joined)."""
    import re
    import shlex

    text = (ROOT / "README.md").read_text()
    section = text[text.index("### Facing open5gs"):]
    m = re.search(r"^python -m certs\.pki (.*?)(?<!\\)$", section, re.M | re.S)
    assert m, "the recipe's certificate command"
    line = m.group(1).replace("\\\n", " ")
    return shlex.split(line, comments=True)


def _absolute(node, base: Path):
    if isinstance(node, dict):
        return {k: _absolute(v, base) for k, v in node.items()}
    if isinstance(node, list):
        return [_absolute(v, base) for v in node]
    if isinstance(node, str) and node.startswith(("certs/", "policies/")):
        return str(base / node)
    return node


def test_readme_open5gs_recipe_both_yaml_files_work_together(tmp_path, monkeypatch):
    """The recipe's certificate command, our YAML as shipped (load_sepp_config), and the open5gs
    YAML read as the emulator's configuration (its sender, serving PLMN, certificates, n32 and
    n32f servers, client entry): the two agree, establish N32-c and carry N32-f. Only the
    addresses are moved to free loopback ports."""
    from certs import pki
    from n32.config import load_sepp_config

    monkeypatch.chdir(tmp_path)
    (tmp_path / "policies").symlink_to(ROOT / "policies")
    assert pki.main(_readme_pki_command()) == 0
    ours = load_sepp_config(EXAMPLES / "mitm-sepp.yaml")
    o5 = yaml.safe_load((EXAMPLES / "open5gs-sepp.yaml").read_text())["sepp"]
    server, client = o5["n32"]["server"][0], o5["n32"]["client"]["sepp"][0]
    peer = ours.peers[0]
    # the two files agree with each other
    assert server["sender"] == peer.fqdn and client["receiver"] == ours.fqdn
    assert peer.n32f_uri == f"https://{server['n32f']['address']}:{server['n32f']['port']}"
    assert peer.n32c_uri == f"https://{server['address']}:{server['port']}"
    plmn = o5["serving"][0]["plmn_id"]
    assert [str(p) for p in peer.plmn_ids] == [f"{plmn['mcc']}-{plmn['mnc']}"]
    from cryptography import x509
    from n32.plmn import plmns_from_certificate
    cert = x509.load_pem_x509_certificate(Path(o5["default"]["tls"]["server"]["cert"]).read_bytes())
    assert x509.DNSName(server["sender"]) in cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert plmns_from_certificate(cert) == set(peer.plmn_ids)

    lab = Lab(out=tmp_path / "run", pki=tmp_path / "certs" / "out", mode="tls")
    lab.out.mkdir()
    raw = _absolute(yaml.safe_load((EXAMPLES / "mitm-sepp.yaml").read_text()), tmp_path)
    raw["listeners"]["n32"] = {"host": "127.0.0.1", "port": lab.port("us.n32")}
    raw["listeners"]["sbi"] = {"host": "127.0.0.1", "port": lab.port("sepp-v.sbi"), "tls": False}
    raw["peers"][0]["n32c_uri"] = f"https://127.0.0.1:{lab.port('o5.n32c')}"
    raw["peers"][0]["n32f_uri"] = f"https://127.0.0.1:{lab.port('o5.n32f')}"
    (lab.out / "ours.yaml").write_text(yaml.safe_dump(raw))
    tls = o5["default"]["tls"]
    emu = {"sender": server["sender"], "mcc": str(plmn["mcc"]), "mnc": str(plmn["mnc"]),
           "certificate": str(tmp_path / tls["server"]["cert"]), "private_key": str(tmp_path / tls["server"]["private_key"]),
           "ca": str(tmp_path / tls["server"]["verify_client_cacert"]),
           "listen": {"n32c": lab.port("o5.n32c"), "n32f": lab.port("o5.n32f"), "sbi": lab.port("o5.sbi")},
           "peer": {"fqdn": client["receiver"], "n32c": f"127.0.0.1:{lab.port('us.n32')}",
                    "n32f": f"127.0.0.1:{lab.port('us.n32')}", "authority_port": 7777},
           "initiate": True, "retry": 0.3, "release": "send",
           "state": str(lab.out / "open5gs.state.json"), "log": str(lab.out / "open5gs.emulog")}
    (lab.out / "open5gs.json").write_text(json.dumps(emu))
    with P.Procs(lab.out) as procs:
        e = _start_emulator(lab, procs, lab.out / "open5gs.json")
        o = _start_ours(lab, procs, VISITED, lab.out / "ours.yaml")
        P.wait_for(lambda: _our_relation(lab, VISITED, HOME).get("capability") == "TLS"
                   and _state(lab).get("established"), 20, "N32-c between the two", [e, o])
        rsp = asyncio.run(_nf_requests(lab.port("sepp-v.sbi"), [_udm_get(5)]))[0]
        assert rsp.status == 200 and json.loads(rsp.body)["servedBy"] == "open5gs NF"
        assert _state(lab)["dropped"] == 0
