"""Protection policies (n32/policy.py, policies/): selection per shipped API, per-peer overrides,
mandatory data types, the TS 29.573 ProtectionPolicy wire form and mismatch detection, and the
modification policy (TS 33.501 §13.2.3, §5.9.3.3; profile 25)."""
from __future__ import annotations

import functools
import json
import random
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from n32.message import HttpResponse
from n32.policy import MANDATORY, MAX_MISMATCHES, PolicyError, PolicySet, pointer_matches
from n32.reformat import IeSelection, reformat_response

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "policies"
SUPI = "imsi-999700000000001"
HOME = "sepp.5gc.mnc070.mcc999.3gppnetwork.org"
OTHER = "sepp.5gc.mnc002.mcc002.3gppnetwork.org"


def load(encryption: Path = POLICIES / "data-type-encryption.yaml", placement: list[Path] | None = None,
         modification: Path | None = POLICIES / "modification.yaml") -> PolicySet:
    files = placement if placement is not None else sorted((POLICIES / "placement").glob("*.yaml"))
    return PolicySet.load(encryption, files, modification)


@pytest.fixture(scope="module")
def shipped() -> PolicySet:
    return load()


def write(tmp_path: Path, name: str, doc: dict | str) -> Path:
    p = tmp_path / name
    p.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc))
    return p


def generic_rules(direction: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(pointers, headers) of the shipped generic rules, which apply to every API."""
    rules = yaml.safe_load((POLICIES / "placement" / "generic.yaml").read_text())["generic"][direction]
    return tuple(r["pointer"] for r in rules if "pointer" in r), tuple(r["header"] for r in rules if "header" in r)


def expect(direction: str, body=(), headers=(), segments=(), query=(), binary=False) -> IeSelection:
    """The generic rules plus the API-specific IEs, in the order selection() lists them."""
    g_body, g_headers = generic_rules(direction)
    return IeSelection(tuple(dict.fromkeys(g_body + body)), tuple(dict.fromkeys(g_headers + headers)),
                       segments, query, binary)


# ----------------------------------------------------------------------------- selection
def test_ausf_authentication_request_and_response(shipped):
    req = shipped.selection(HOME, "POST", "/nausf-auth/v1/ue-authentications", "request")
    assert "/supiOrSuci" in req.body and "/resynchronizationInfo/auts" in req.body
    assert req.headers == ("authorization",) and req.path_segments == () and not req.binary_parts
    rsp = shipped.selection(HOME, "POST", "/nausf-auth/v1/ue-authentications", "response")
    assert {"/5gAuthData/rand", "/5gAuthData/autn", "/5gAuthData/hxresStar", "/5gAuthData"} <= set(rsp.body)
    assert "authorization" not in rsp.headers


def test_selected_authentication_vector_is_not_in_the_clear_block(shipped):
    ctx = {"authType": "5G_AKA", "5gAuthData": {"rand": "aa" * 16, "autn": "bb" * 16, "hxresStar": "cc" * 16},
           "_links": {"5g-aka": {"href": "https://ausf.example/x"}}}
    sel = shipped.selection(HOME, "POST", "/nausf-auth/v1/ue-authentications", "response")
    block, data = reformat_response(HttpResponse(201, [("content-type", "application/3gppHal+json")],
                                                 json.dumps(ctx).encode()), sel, {})
    clear = json.dumps(block)
    assert all(v not in clear for v in ctx["5gAuthData"].values()) and data == [ctx["5gAuthData"]]


AMF_CTX = ("/ueContext/supi", "/ueContext/pei", "/ueContext/gpsiList", "/ueContext/seafData/keyAmf",
           "/ueContext/seafData/nh", "/ueContext/mmContextList/*/expectedUEbehavior/expMoveTrajectory")


@pytest.mark.parametrize("method,path,direction,expected", [
    # Nausf_UEAuthentication
    ("PUT", "/nausf-auth/v1/ue-authentications/ctx-1/5g-aka-confirmation", "request",
     expect("request", ("/resStar",))),
    ("PUT", "/nausf-auth/v1/ue-authentications/ctx-1/5g-aka-confirmation", "response",
     expect("response", ("/supi", "/kseaf"))),
    ("POST", "/nausf-auth/v1/ue-authentications/ctx-1/eap-session", "response",
     expect("response", ("/eapPayload", "/kSeaf", "/msk", "/supi"))),
    # Nudm_UEAU
    ("POST", f"/nudm-ueau/v1/{SUPI}/security-information/generate-auth-data", "request",
     expect("request", ("/resynchronizationInfo/rand", "/resynchronizationInfo/auts"), segments=(2,))),
    ("POST", f"/nudm-ueau/v1/{SUPI}/security-information/generate-auth-data", "response",
     expect("response", tuple(f"/authenticationVector/{k}" for k in ("rand", "autn", "xres", "xresStar", "kausf",
                                                                      "ckPrime", "ikPrime")) + ("/supi",))),
    ("POST", f"/nudm-ueau/v1/{SUPI}/auth-events", "response", expect("response", headers=("location",))),
    # Nudm_UECM
    ("PUT", f"/nudm-uecm/v1/{SUPI}/registrations/amf-3gpp-access", "request",
     expect("request", ("/pei", "/supi"), segments=(2,))),
    ("PUT", f"/nudm-uecm/v1/{SUPI}/registrations/amf-3gpp-access", "response",
     expect("response", ("/pei", "/supi"), ("location",))),
    ("DELETE", f"/nudm-uecm/v1/{SUPI}/registrations/smf-registrations/5", "request", expect("request", segments=(2,))),
    # Nudm_SDM
    ("GET", f"/nudm-sdm/v2/{SUPI}/am-data", "request", expect("request", segments=(2,))),
    ("GET", f"/nudm-sdm/v2/{SUPI}/am-data", "response",
     expect("response", ("/gpsis", "/sorInfo/sorMacIausf", "/upuInfo/upuMacIausf"))),
    ("GET", "/nudm-sdm/v2/shared-data", "request", expect("request")),
    ("GET", "/nudm-sdm/v2/multiple-identifiers", "request", expect("request", query=("gpsi-list",))),
    ("GET", "/nudm-sdm/v2/multiple-identifiers", "response", expect("response", ("/*/supiList",))),
    ("POST", f"/nudm-sdm/v2/{SUPI}/sdm-subscriptions", "response",
     expect("response", ("/monitoredResourceUris",), ("location",))),
    # Namf_Communication
    ("POST", f"/namf-comm/v1/ue-contexts/{SUPI}/relocate", "request",
     expect("request", AMF_CTX, segments=(3,), binary=True)),
    ("POST", f"/namf-comm/v1/ue-contexts/{SUPI}/transfer", "response", expect("response", AMF_CTX)),
    ("POST", f"/namf-comm/v1/ue-contexts/{SUPI}/n1-n2-messages", "request",
     expect("request", segments=(3,), binary=True)),
    # Nsmf_PDUSession
    ("POST", "/nsmf-pdusession/v1/pdu-sessions", "request",
     expect("request", ("/supi", "/pei", "/gpsi", "/ueLocation", "/addUeLocation"), binary=True)),
    ("POST", "/nsmf-pdusession/v1/pdu-sessions", "response", expect("response", ("/gpsi",))),
    ("POST", "/nsmf-pdusession/v1/pdu-sessions/ref-1/modify", "response",
     expect("response", ("/ueLocation", "/addUeLocation"))),
    ("POST", "/nsmf-pdusession/v1/sm-contexts/ref-1/send-mo-data", "request", expect("request", binary=True)),
    # no mapping: generic rules only; the method is part of the match
    ("POST", "/nnrf-disc/v1/nf-instances", "request", expect("request")),
    ("GET", "/nausf-auth/v1/ue-authentications", "request", expect("request")),
])
def test_selection_per_shipped_api(shipped, method, path, direction, expected):
    assert shipped.selection(HOME, method, path, direction) == expected


def test_path_template_matches_after_an_api_root_prefix(shipped):
    sel = shipped.selection(HOME, "GET", f"/udm-prefix/x/nudm-sdm/v2/{SUPI}/am-data", "request")
    assert sel.path_segments == (4,)


def test_every_shipped_api_file_is_used(shipped):
    wire = shipped.to_wire(HOME)
    prefixes = {m["apiSignature"].split("/")[1] for m in wire["apiIeMappingList"] if m["apiSignature"] != "*"}
    assert prefixes == {"nausf-auth", "nudm-ueau", "nudm-uecm", "nudm-sdm", "namf-comm", "nsmf-pdusession"}


# ----------------------------------------------------------------------------- encryption policy
def test_default_and_peer_override(tmp_path):
    enc = write(tmp_path, "enc.yaml", {
        "generic": {"policy_id": "p-generic", "release": 18},
        "peers": {HOME.upper(): {"policy_id": "p-home", "encrypt": sorted(MANDATORY)}}})
    ps = load(encryption=enc)
    home, other = ps.data_type_policy(HOME), ps.data_type_policy(OTHER)
    assert (home.policy_id, home.release, home.encrypted) == ("p-home", "18", MANDATORY)
    assert (other.policy_id, other.encrypted) == ("p-generic", MANDATORY | {"UEID"})
    path = f"/nudm-ueau/v1/{SUPI}/security-information/generate-auth-data"
    sel_home, sel_other = (ps.selection(p, "POST", path, "request") for p in (HOME, OTHER))
    assert sel_home.path_segments == () and "/supi" not in sel_home.body
    assert sel_home.headers == ("authorization",) and "/resynchronizationInfo/rand" in sel_home.body
    assert sel_other.path_segments == (2,) and "/supi" in sel_other.body
    assert ps.to_wire(HOME)["dataTypeEncPolicy"] == sorted(MANDATORY)
    assert ps.selection(None, "POST", path, "request") == sel_other


@pytest.mark.parametrize("doc,key", [
    ({"generic": {"policy_id": "p", "release": 18, "encrypt": ["UEID", "KEY_MATERIAL", "LOCATION",
                                                                "AUTHORIZATION_TOKEN", "OTHER"]}},
     "generic.encrypt: AUTHENTICATION_MATERIAL cannot be turned off"),
    ({"generic": {"policy_id": "p", "release": 18},
      "peers": {HOME: {"encrypt": ["UEID", "AUTHENTICATION_MATERIAL", "LOCATION", "AUTHORIZATION_TOKEN"]}}},
     f"peers.{HOME}.encrypt: KEY_MATERIAL, OTHER cannot be turned off"),
    ({"generic": {"policy_id": "p", "release": 18, "encrypt": sorted(MANDATORY) + ["NONSENSITIVE"]}},
     "generic.encrypt: 'NONSENSITIVE' is not a data type that can be encrypted"),
    ({"generic": {"policy_id": "p", "release": 18, "encrypt": sorted(MANDATORY) + ["SUPI"]}},
     "generic.encrypt: 'SUPI' is not a data type"),
    ({"generic": {"release": 18}}, "generic.policy_id: missing"),
    ({"generic": {"policy_id": "p", "release": 18, "encrpyt": []}}, "generic.encrpyt: unknown key"),
    ({"peers": {}}, "generic: missing"),
])
def test_encryption_policy_errors_name_file_and_key(tmp_path, doc, key):
    enc = write(tmp_path, "enc.yaml", doc)
    with pytest.raises(PolicyError) as e:
        load(encryption=enc)
    assert isinstance(e.value, ValueError) and str(e.value).startswith(f"{enc}: {key}")


def placement(**entry) -> dict:
    return {"mapping_id": "m", "nf": "UDM", "api": "Nudm_X", "version": "v1", "release": 18,
            "entries": [{"method": "GET", "path": "/nudm-x/v1/{supi}", **entry}]}


@pytest.mark.parametrize("doc,key", [
    (placement(request=[{"pointer": "/a", "type": "SECRET"}]), "entries[0].request[0].type: unknown data type"),
    (placement(request=[{"path": "ueId", "type": "UEID"}]), "entries[0].request[0].path: {ueId} is not a variable"),
    (placement(response=[{"query": "supi", "type": "UEID"}]), "entries[0].response[0].query: a response has no URI"),
    (placement(request=[{"pointer": "a", "type": "UEID"}]), "entries[0].request[0].pointer: 'a' is not a JSON pointer"),
    (placement(request=[{"header": "Authorization", "type": "UEID"}]), "entries[0].request[0].header: header names"),
    (placement(request=[{"pointer": "/a", "header": "x", "type": "UEID"}]), "entries[0].request[0]: needs exactly one"),
    (placement(request=[{"binary": "yes", "type": "OTHER"}]), "entries[0].request[0].binary: must be true"),
    (placement(method="FETCH"), "entries[0].method: must be one of"),
    (placement(path="nudm-x/{supi}"), "entries[0].path: must be an absolute path template"),
    (placement(path="/nudm-x/v1/x{supi}"), "entries[0].path: must be an absolute path template"),
    (placement(direction="request"), "entries[0].direction: unknown key"),
    ({**placement(), "generic": {"request": [{"path": "supi", "type": "UEID"}]}},
     "generic.request[0].path: {supi} is not a variable"),
    ({k: v for k, v in placement().items() if k != "release"}, "release: missing"),
])
def test_placement_errors_name_file_and_key(tmp_path, doc, key):
    f = write(tmp_path, "p.yaml", doc)
    with pytest.raises(PolicyError) as e:
        load(placement=[f])
    assert str(e.value).startswith(f"{f}: {key}")


def test_duplicate_mapping_id_and_bad_yaml(tmp_path):
    a, b = write(tmp_path, "a.yaml", placement()), write(tmp_path, "b.yaml", placement())
    with pytest.raises(PolicyError, match=f"^{b}: mapping_id: 'm' is also used by {a}"):
        load(placement=[a, b])
    broken = write(tmp_path, "c.yaml", "entries: [")
    with pytest.raises(PolicyError, match="not valid YAML"):
        load(placement=[broken])
    with pytest.raises(PolicyError, match="cannot read"):
        load(placement=[tmp_path / "missing.yaml"])


# ----------------------------------------------------------------------------- wire form
def protection_policy_validator() -> Draft202012Validator:
    openapi = ROOT / "n32" / "openapi"

    @functools.cache
    def retrieve(uri: str) -> Resource:
        return Resource(yaml.safe_load((openapi / uri).read_text()), specification=DRAFT202012)
    return Draft202012Validator({"$ref": "TS29573_N32_Handshake.yaml#/components/schemas/ProtectionPolicy"},
                                registry=Registry(retrieve=retrieve))  # type: ignore[call-arg]


def test_wire_form_is_schema_valid(shipped, tmp_path):
    v = protection_policy_validator()
    v.validate(shipped.to_wire(HOME))
    no_ueid = write(tmp_path, "enc.yaml", {"generic": {"policy_id": "p", "release": 18, "encrypt": sorted(MANDATORY)}})
    v.validate(load(encryption=no_ueid, modification=None).to_wire(None))
    assert len(list(v.iter_errors({"apiIeMappingList": [], "dataTypeEncPolicy": []}))) == 2   # minItems bite
    broken = shipped.to_wire(HOME)
    del broken["apiIeMappingList"][3]["IeList"][0]["ieType"]
    broken["apiIeMappingList"][4]["apiSignature"] = 5
    assert len(list(v.iter_errors(broken))) == 2                                         # refs resolved


def test_wire_form_content(shipped):
    wire = shipped.to_wire(HOME)
    assert wire["dataTypeEncPolicy"] == sorted(MANDATORY | {"UEID"})
    generic = wire["apiIeMappingList"][0]
    assert (generic["apiSignature"], generic["apiMethod"]) == ("*", "*")
    auth = next(m for m in wire["apiIeMappingList"]
                if m["apiSignature"] == "/nausf-auth/v1/ue-authentications" and m["apiMethod"] == "POST")
    assert {"ieLoc": "BODY", "ieType": "UEID", "reqIe": "/supiOrSuci", "isModifiable": False,
            "isModifiableByIpx": {"ipx1.ipx.lab": False, "ipx2.ipx.lab": False}} in auth["IeList"]
    assert any(ie.get("rspIe") == "/5gAuthData/hxresStar" for ie in auth["IeList"])
    sdm = next(m for m in wire["apiIeMappingList"] if m["apiSignature"] == "/nudm-sdm/v2/{supi}/am-data")
    assert sdm["IeList"][0] | {"isModifiableByIpx": None} == {"ieLoc": "URI_PARAM", "ieType": "UEID", "reqIe": "{supi}",
                                                              "isModifiable": False, "isModifiableByIpx": None}
    relocate = next(m for m in wire["apiIeMappingList"] if m["apiSignature"].endswith("/relocate"))
    binary = [ie for ie in relocate["IeList"] if ie["ieLoc"] == "MULTIPART_BINARY"]
    assert [(ie.get("reqIe"), ie["ieType"]) for ie in binary] == [("*", "KEY_MATERIAL")]


def test_is_modifiable_only_for_clear_ies_an_ipx_may_patch(tmp_path):
    enc = write(tmp_path, "enc.yaml", {"generic": {"policy_id": "p", "release": 18, "encrypt": sorted(MANDATORY)}})
    mod = write(tmp_path, "mod.yaml", {"ipx": {"ipx1.ipx.lab": {"default": ["/headers/*"]},
                                               "ipx2.ipx.lab": {"default": ["/payload/*/value"]}}})
    wire = load(encryption=enc, modification=mod).to_wire(HOME)
    ies = {(m["apiSignature"], m["apiMethod"], ie.get("reqIe") or ie.get("rspIe"), ie["ieLoc"]): ie
           for m in wire["apiIeMappingList"] for ie in m["IeList"]}
    sub = "/nudm-sdm/v2/{ueId}/sdm-subscriptions"
    location = ies[(sub, "POST", "location", "HEADER")]            # UEID in clear, pattern is an ancestor
    assert location["isModifiable"] and location["isModifiableByIpx"] == {"ipx1.ipx.lab": True, "ipx2.ipx.lab": False}
    uris = ies[(sub, "POST", "/monitoredResourceUris", "BODY")]      # top-level member: /payload/<n>/value
    assert uris["isModifiableByIpx"] == {"ipx1.ipx.lab": False, "ipx2.ipx.lab": True}
    supi = ies[("/namf-comm/v1/ue-contexts/{ueContextId}", "PUT", "/ueContext/supi", "BODY")]
    assert supi["isModifiableByIpx"] == {"ipx1.ipx.lab": False, "ipx2.ipx.lab": True}   # via the ancestor
    key = ies[("/namf-comm/v1/ue-contexts/{ueContextId}", "PUT", "/ueContext/seafData/keyAmf", "BODY")]
    assert key["isModifiable"] is False                              # KEY_MATERIAL is encrypted
    token = ies[("*", "*", "authorization", "HEADER")]             # encrypted: never modifiable
    assert token["isModifiable"] is False and not any(token["isModifiableByIpx"].values())
    without_ipx = load(encryption=enc, modification=None).to_wire(HOME)
    assert "isModifiableByIpx" not in without_ipx["apiIeMappingList"][0]["IeList"][0]


# ----------------------------------------------------------------------------- mismatches
def test_identical_policy_in_any_order_matches(shipped):
    received = json.loads(json.dumps(shipped.to_wire(HOME)))
    rng = random.Random(5)
    rng.shuffle(received["apiIeMappingList"])
    for m in received["apiIeMappingList"]:
        rng.shuffle(m["IeList"])
        for ie in m["IeList"]:
            ie["isModifiable"] = True                                   # each side's IPXs differ
    received["dataTypeEncPolicy"].reverse()
    assert shipped.mismatches(HOME, received) == []


def test_mismatches_name_what_differs(shipped):
    received = json.loads(json.dumps(shipped.to_wire(HOME)))
    received["dataTypeEncPolicy"].remove("UEID")
    received["dataTypeEncPolicy"].append("NONSENSITIVE")
    removed = received["apiIeMappingList"][1]["IeList"].pop(0)
    received["apiIeMappingList"][2]["IeList"].append({"ieLoc": "BODY", "ieType": "LOCATION", "reqIe": "/extra"})
    extra_at = f"/apiIeMappingList/2/IeList/{len(received['apiIeMappingList'][2]['IeList']) - 1}"
    out = shipped.mismatches(HOME, received)
    assert {"param": "/dataTypeEncPolicy", "reason": "we encrypt UEID, the peer does not"} in out
    assert {"param": "/dataTypeEncPolicy", "reason": "the peer encrypts NONSENSITIVE, we do not"} in out
    assert any(p["param"] == extra_at and "/extra (LOCATION): not in our placement mappings" in p["reason"]
               for p in out)
    name = removed.get("reqIe") or removed.get("rspIe")
    assert any(p["param"] == "/apiIeMappingList" and f"{name} ({removed['ieType']}): missing in the peer" in p["reason"]
               for p in out)
    assert len(out) == 4


@pytest.mark.parametrize("received,param", [
    ("policy", "/"), ({"apiIeMappingList": "x"}, "/apiIeMappingList"),
    ({"apiIeMappingList": [{"IeList": [1]}]}, "/apiIeMappingList"),
    ({"dataTypeEncPolicy": "UEID"}, "/dataTypeEncPolicy"),
])
def test_malformed_received_policy(shipped, received, param):
    assert {p["param"] for p in shipped.mismatches(HOME, received)} >= {param}


def test_mismatch_list_is_bounded(shipped):
    out = shipped.mismatches(HOME, {"apiIeMappingList": [], "dataTypeEncPolicy": []})
    assert len(out) == MAX_MISMATCHES and out[-1]["param"] == "/" and out[-1]["reason"].startswith("and ")


# ----------------------------------------------------------------------------- modification policy
def test_modification_patterns_default_and_per_peer(tmp_path):
    mod = write(tmp_path, "mod.yaml", {"ipx": {"IPX1.example": {"default": ["/requestLine/authority"],
                                                                "peers": {HOME: ["/headers/-"], OTHER: []}},
                                               "ipx2.example": {"peers": {HOME: ["/headers/*/value"]}}}})
    ps = load(modification=mod)
    assert ps.modification_patterns("ipx1.example") == ("/requestLine/authority",)
    assert ps.modification_patterns("ipx1.example", HOME.upper()) == ("/headers/-",)
    assert ps.modification_patterns("ipx1.example", OTHER) == ()
    assert ps.modification_patterns("ipx2.example", OTHER) == ()
    assert ps.modification_patterns("unknown.example", HOME) == ()
    assert ps.modification_policy_wire(HOME) == {"ipx1.example": ["/headers/-"], "ipx2.example": ["/headers/*/value"]}
    assert ps.modification_policy_wire(OTHER) == {}


def test_shipped_modification_policy(shipped):
    assert shipped.modification_policy_wire(HOME) == {
        "ipx1.ipx.lab": ["/requestLine/authority", "/headers/*/value", "/headers/-"],
        "ipx2.ipx.lab": ["/headers/*/value", "/headers/-"]}


@pytest.mark.parametrize("patterns,key", [
    (["/metaData/authorizedIpxId"], "ipx.x.example.default[0]: metaData"),
    ([""], "ipx.x.example.default[0]: metaData"),
    (["headers/*"], "ipx.x.example.default[0]: 'headers/*' is not a JSON pointer"),
    ("/headers/*", "ipx.x.example.default: must be a list"),
])
def test_modification_policy_errors(tmp_path, patterns, key):
    mod = write(tmp_path, "mod.yaml", {"ipx": {"x.example": {"default": patterns}}})
    with pytest.raises(PolicyError) as e:
        load(modification=mod)
    assert str(e.value).startswith(f"{mod}: {key}")


@pytest.mark.parametrize("pattern,pointer,result", [
    ("/headers/*/value", "/headers/3/value", True),
    ("/headers/*/value", "/headers/3", False),
    ("/headers/*", "/headers/-", True),
    ("/headers/-", "/headers/-", True),
    ("/headers/-", "/headers/2", False),
    ("/payload/*/value/a~1b", "/payload/0/value/a~1b", True),
    ("/payload/*/value/a~1b", "/payload/0/value/a/b", False),
    ("/requestLine/authority", "/requestLine/authority", True),
    ("/requestLine/*", "/requestLine", False),
    ("", "", True),
    ("/a", "a", False),
    ("/a~2", "/a~2", False),
])
def test_pointer_matches(pattern, pointer, result):
    assert pointer_matches(pattern, pointer) is result


def _brute_force(policy: PolicySet, peer, method: str, path: str, direction: str) -> IeSelection:
    """The selection as the specification reads: every mapping tried, the most literal ones kept."""
    segments = path.split("/")[1:]
    found = [(m, off) for m in policy._mappings if (off := m.offset(method, segments)) is not None]
    top = max((m.literals for m, _ in found), default=0)
    found = [(m, off) for m, off in found if m.literals == top]
    encrypted = policy.data_type_policy(peer).encrypted
    ies = [(ie, None) for ie in policy._generic_ies[direction]]
    ies += [(ie, (m, off)) for m, off in found for ie in m.ies.get(direction, ())]
    body = [ie.name for ie, _ in ies if ie.type in encrypted and ie.kind == "pointer"]
    headers = [ie.name for ie, _ in ies if ie.type in encrypted and ie.kind == "header"]
    query = [ie.name for ie, _ in ies if ie.type in encrypted and ie.kind == "query"]
    segs = sorted({w[1] + w[0].template.index("{%s}" % ie.name) for ie, w in ies
                   if ie.type in encrypted and ie.kind == "path" and w})
    binary = any(ie.type in encrypted and ie.kind == "binary" for ie, _ in ies)
    return IeSelection(tuple(dict.fromkeys(body)), tuple(dict.fromkeys(headers)), tuple(segs),
                       tuple(dict.fromkeys(query)), binary)


def test_compiled_selection_equals_trying_every_mapping(shipped):
    """The trie and the selection cache give what a search over all mappings gives, for every
    shipped template with random values, apiRoot prefixes, extra and missing segments."""
    rng = random.Random(14)
    cases = 0
    for m in shipped._mappings:
        for _ in range(4):
            segs = [s if not s.startswith("{") else rng.choice(["imsi-999700000000001", "x", "sdm-subscriptions",
                                                                 "shared-data", "am-data"]) for s in m.template]
            prefix = rng.choice([[], ["prefix"], ["a", "b"]])
            tail = rng.choice([[], [], ["extra"]])
            cut = rng.choice([0, 0, 1])
            path = "/" + "/".join(prefix + segs[cut:] + tail)
            for method in (m.method, "GET", "post"):
                for direction in ("request", "response"):
                    for _ in range(2):   # the second call comes from the cache
                        assert shipped.selection(None, method, path, direction) == \
                            _brute_force(shipped, None, method.upper(), path, direction), (method, path)
                    cases += 1
    print(f"{cases} selections compared")
    assert cases > 1000
