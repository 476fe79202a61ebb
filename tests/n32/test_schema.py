"""Schema validation against the shipped 3GPP OpenAPI (n32/schema.py)."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from n32 import schema
from n32.errors import N32Error

ROOT = Path(__file__).resolve().parents[2]
OPEN5GS_OFFER = {"sender": "sepp2.localdomain", "supportedSecCapabilityList": ["TLS"],
                 "3GppSbiTargetApiRootSupported": True, "plmnIdList": [{"mcc": "001", "mnc": "01"}],
                 "supportedFeatures": "1"}
JOSE = "TS29573_JOSEProtectedMessageForwarding"


def fails(name: str, body, api: str = schema.DEFAULT_API, **kw) -> N32Error:
    with pytest.raises(N32Error) as ei:
        schema.validate(name, body, api, **kw)
    e = ei.value
    assert e.status == 400 and e.invalid_params
    assert "\n" not in e.detail
    return e


def params(e: N32Error) -> list[str]:
    return [p["param"] for p in e.invalid_params]


def test_open5gs_capability_offer_passes():
    schema.validate("SecNegotiateReqData", OPEN5GS_OFFER)


def test_bad_context_id_names_the_member():
    e = fails("SecParamExchReqData", {"n32fContextId": "xyz"})
    assert e.cause == "MANDATORY_IE_INCORRECT"
    assert params(e) == ["/n32fContextId"]
    assert "^[A-Fa-f0-9]{16}$" in e.invalid_params[0]["reason"]
    assert e.detail.startswith("SecParamExchReqData (TS29573_N32_Handshake): /n32fContextId: ")


def test_missing_sender_is_mandatory_ie_missing():
    body = dict(OPEN5GS_OFFER)
    del body["sender"]
    e = fails("SecNegotiateReqData", body)
    assert e.cause == "MANDATORY_IE_MISSING"
    assert params(e) == ["/sender"]
    e = fails("N32fErrorInfo", {})
    assert e.cause == "MANDATORY_IE_MISSING" and params(e) == ["/n32fErrorType", "/n32fMessageId"]


def test_nested_missing_member_has_its_full_pointer():
    e = fails("SecNegotiateReqData", {**OPEN5GS_OFFER, "plmnIdList": [{"mcc": "001", "mnc": "01"}, {"mcc": "001"}]})
    assert params(e) == ["/plmnIdList/1/mnc"]


def test_every_violation_is_listed_sorted():
    e = fails("SecNegotiateReqData", {"sender": 5, "supportedSecCapabilityList": [], "plmnIdList": [{"mcc": "1",
                                                                                                   "mnc": "01"}]})
    assert params(e) == ["/plmnIdList/0/mcc", "/sender", "/supportedSecCapabilityList"]
    assert "(and 2 more)" in e.detail


def test_any_of_enums_are_extensible_but_typed():
    # SecurityCapability / N32fErrorType: anyOf [enum, string]; unknown strings pass, other types do not
    schema.validate("SecNegotiateReqData", {**OPEN5GS_OFFER, "supportedSecCapabilityList": ["PRINS", "TLS", "NONE"]})
    schema.validate("SecNegotiateReqData", {**OPEN5GS_OFFER, "supportedSecCapabilityList": ["FUTURE"]})
    schema.validate("SecNegotiateRspData", {"sender": "sepp.example.org", "selectedSecCapability": "PRINS"})
    e = fails("SecNegotiateReqData", {**OPEN5GS_OFFER, "supportedSecCapabilityList": ["TLS", 5]})
    assert params(e) == ["/supportedSecCapabilityList/1"]
    assert "not of type 'string'" in e.invalid_params[0]["reason"]
    schema.validate("N32fErrorInfo", {"n32fMessageId": "1", "n32fErrorType": "POLICY_MISMATCH",
                                      "policyMismatchList": [{"param": "/x", "reason": "y"}]})
    fails("N32fErrorInfo", {"n32fMessageId": "1", "n32fErrorType": ["POLICY_MISMATCH"]})


def test_reformatted_request_sample_passes():
    body = {"reformattedData": {"protected": "eyJhbGciOiJkaXIiLCJlbmMiOiJBMTI4R0NNIn0", "aad": "e30",
                                "iv": "AAAAAAAAAAAAAAAA", "ciphertext": "abc", "tag": "def"},
            "modificationsBlock": [{"protected": "eyJhbGciOiJFUzI1NiJ9", "payload": "e30", "signature": "sig"}]}
    schema.validate("N32fReformattedReqMsg", body, JOSE)
    schema.validate("N32fReformattedRspMsg", {"reformattedData": {"ciphertext": ""}}, JOSE)
    e = fails("N32fReformattedReqMsg", {"reformattedData": {"aad": "e30"}, "modificationsBlock": []}, JOSE)
    assert e.cause == "MANDATORY_IE_MISSING"
    assert params(e) == ["/modificationsBlock", "/reformattedData/ciphertext"]


def test_clear_block_with_cross_file_refs():
    block = {"metaData": {"n32fContextId": "0123456789abcdef", "messageId": "1", "authorizedIpxId": "NULL"},
             "requestLine": {"method": "POST", "scheme": "https", "authority": "ausf.example.org",
                             "path": "/nausf-auth/v1/ue-authentications", "protocolVersion": "HTTP/2"},
             "headers": [{"header": "content-type", "value": "application/json"},
                         {"header": "x-secret", "value": {"encBlockIndex": 0}}],
             "payload": [{"iePath": "/supiOrSuci", "ieValueLocation": "BODY", "value": {"encBlockIndex": 1}}]}
    schema.validate("DataToIntegrityProtectBlock", block, JOSE)
    block["requestLine"]["scheme"] = "gopher"            # UriScheme from TS29571_CommonData.yaml (anyOf enum)
    schema.validate("DataToIntegrityProtectBlock", block, JOSE)
    block["headers"][1]["value"] = {"encBlockIndex": -1}  # Uinteger from CommonData
    e = fails("DataToIntegrityProtectBlock", block, JOSE)
    assert params(e) == ["/headers/1/value"]


def test_problem_details_sample_passes_and_unknown_files_are_permissive(tmp_path):
    pd = {"type": "https://example.org/p", "title": "Bad Request", "status": 400, "detail": "x",
          "instance": "/a", "cause": "INVALID_MSG_FORMAT", "invalidParams": [{"param": "/n32fContextId",
                                                                              "reason": "bad"}],
          "supportedFeatures": "1"}
    schema.validate("ProblemDetails", pd, "TS29571_CommonData")
    # accessTokenError refers to TS29510_Nnrf_AccessToken.yaml, shipped since issue 13 item 6
    schema.validate("ProblemDetails", {**pd, "accessTokenError": {"error": "invalid_request"}}, "TS29571_CommonData")
    e = fails("ProblemDetails", {**pd, "accessTokenError": {"whatever": [1, 2]}}, "TS29571_CommonData")
    assert params(e) == ["/accessTokenError/error"]
    # a reference into a file that is not on the search path: anything goes there
    (tmp_path / "Mine.yaml").write_text("components:\n  schemas:\n    A:\n      type: object\n      properties:\n"
                                        "        b: {$ref: 'Absent.yaml#/components/schemas/B'}\n")
    schema.validate_any("Mine", "A", {"b": {"whatever": [1, 2]}}, search_path=[tmp_path])
    e = fails("ProblemDetails", {**pd, "status": "400"}, "TS29571_CommonData")
    assert params(e) == ["/status"]
    schema.validate("ProblemDetailsMsgForwarding", {**pd, "suggestedStatusCode": 403}, JOSE)


def test_nullable_types():
    schema.validate("DateTimeRm", None, "TS29571_CommonData")
    schema.validate("UintegerRm", None, "TS29571_CommonData")
    schema.validate("UintegerRm", 5, "TS29571_CommonData")
    fails("UintegerRm", -1, "TS29571_CommonData")
    fails("Uinteger", None, "TS29571_CommonData")


def test_unknown_schema_or_file_is_a_programming_error():
    with pytest.raises(KeyError):
        schema.validate("NoSuchSchema", {})
    with pytest.raises(KeyError):
        schema.validate_any("TS00000_Nothing", "X", {})
    with pytest.raises(KeyError):
        schema.validate_any("../n32/openapi/TS29571_CommonData.yaml", "PlmnId", {})


def test_validators_are_cached_and_fast():
    schema.validate("SecNegotiateReqData", OPEN5GS_OFFER)
    cat = schema._catalog(None)
    v = cat.validator("TS29573_N32_Handshake.yaml", "SecNegotiateReqData")
    schema.validate("SecNegotiateReqData", OPEN5GS_OFFER)
    assert cat.validator("TS29573_N32_Handshake.yaml", "SecNegotiateReqData") is v
    t = time.perf_counter()
    for _ in range(200):
        schema.validate("SecNegotiateReqData", OPEN5GS_OFFER)
    assert (time.perf_counter() - t) / 200 < 0.01


# ------------------------------------------------------------------ other APIs, conversion rules
def test_validate_any_with_a_search_path():
    lab_apis = ROOT / "lab" / "openapi"
    if not (lab_apis / "TS29509_Nausf_UEAuthentication.yaml").exists():
        pytest.skip("lab/openapi not present")
    body = {"supiOrSuci": "suci-0-001-01-0000-0-0-0000000001", "servingNetworkName": "5G:mnc001.mcc001.3gppnetwork.org"}
    schema.validate_any("TS29509_Nausf_UEAuthentication", "AuthenticationInfo", body, search_path=[lab_apis])
    with pytest.raises(N32Error) as ei:
        schema.validate_any("TS29509_Nausf_UEAuthentication.yaml", "AuthenticationInfo", {"supiOrSuci": "x"},
                            search_path=[str(lab_apis)])
    assert ei.value.cause == "MANDATORY_IE_MISSING"
    assert [p["param"] for p in ei.value.invalid_params] == ["/servingNetworkName"]


API = """
openapi: 3.0.0
info: {title: t, version: '1'}
paths: {}
components:
  schemas:
    Thing:
      type: object
      required: [id]
      properties:
        id: {type: string, example: abc}
        colour: {type: string, enum: [red, blue], nullable: true}
        ref: {$ref: 'Other.yaml#/components/schemas/Sub'}
        gone: {$ref: 'Missing.yaml#/components/schemas/Anything'}
        dangling: {$ref: '#/components/schemas/NotThere'}
        ratio: {type: number, minimum: 0, exclusiveMinimum: true}
        wrapped:
          allOf: [{$ref: 'Other.yaml#/components/schemas/Sub'}]
          nullable: true
        nullable: {type: integer}
        example: {type: boolean}
      discriminator: {propertyName: id}
"""
OTHER = """
openapi: 3.0.0
info: {title: o, version: '1'}
paths: {}
components:
  schemas:
    Sub: {type: object, required: [n], properties: {n: {type: integer}}}
"""


@pytest.fixture
def apis(tmp_path) -> Path:
    (tmp_path / "Api.yaml").write_text(API)
    (tmp_path / "Other.yaml").write_text(OTHER)
    return tmp_path


@pytest.mark.parametrize("body", [
    {"id": "a"},
    {"id": "a", "colour": None},
    {"id": "a", "colour": "red", "ref": {"n": 1}, "gone": "anything", "dangling": [1]},
    {"id": "a", "ratio": 0.5, "wrapped": None},
    {"id": "a", "wrapped": {"n": 2}},
    {"id": "a", "nullable": 3, "example": True},        # members named like OpenAPI keywords are members
])
def test_openapi_conversion_accepts(apis, body):
    schema.validate_any("Api", "Thing", body, search_path=[apis])


@pytest.mark.parametrize("body,param", [
    ({"id": "a", "colour": "green"}, "/colour"),
    ({"id": "a", "ref": {"n": "1"}}, "/ref/n"),
    ({"id": "a", "ratio": 0}, "/ratio"),                # exclusiveMinimum: true -> 0 excluded
    ({"id": "a", "wrapped": {}}, "/wrapped"),
    ({"id": "a", "nullable": "x"}, "/nullable"),
    ({"id": "a", "example": "yes"}, "/example"),
    ({"id": None}, "/id"),
])
def test_openapi_conversion_rejects(apis, body, param):
    with pytest.raises(N32Error) as ei:
        schema.validate_any("Api", "Thing", body, search_path=[apis])
    assert [p["param"] for p in ei.value.invalid_params] == [param]


def test_pointer_escaping_in_params(apis):
    with pytest.raises(N32Error) as ei:
        schema.validate_any("Api", "Thing", {"id": "a", "ref": {"n": 1, "x": 1}, "wrapped": {"n": "z"}},
                            search_path=[apis])
    assert ei.value.invalid_params[0]["param"] == "/wrapped"
    (apis / "Map.yaml").write_text("""
openapi: 3.0.0
info: {title: m, version: '1'}
paths: {}
components:
  schemas:
    M: {type: object, additionalProperties: {type: integer}}
""")
    with pytest.raises(N32Error) as ei:
        schema.validate_any("Map", "M", {"a/b~c": "x"}, search_path=[apis])
    assert ei.value.invalid_params == [{"param": "/a~1b~0c", "reason": "'x' is not of type 'integer'"}]


def test_invalid_params_are_capped(apis):
    (apis / "Many.yaml").write_text("""
openapi: 3.0.0
info: {title: m, version: '1'}
paths: {}
components:
  schemas:
    L: {type: array, items: {type: integer}}
""")
    with pytest.raises(N32Error) as ei:
        schema.validate_any("Many", "L", ["x"] * 25, search_path=[apis])
    assert len(ei.value.invalid_params) == schema.MAX_PARAMS
    assert "(and 24 more)" in ei.value.detail


def test_shipped_openapi_resolves():
    """Every $ref reachable from the components of the APIs we validate against lands in a file
    shipped in n32/openapi (issue 13 item 6: CommonData named TS29510_Nnrf_AccessToken.yaml,
    which was not shipped), and at a pointer that exists."""
    import jsonpointer
    import yaml as _yaml

    from n32 import pointer
    from n32.schema import OPENAPI_DIR

    docs: dict[str, object] = {}

    def doc(name: str):
        if name not in docs:
            path = OPENAPI_DIR / name
            assert path.is_file(), f"{name} is referenced but not shipped in n32/openapi"
            docs[name] = _yaml.safe_load(path.read_text())
        return docs[name]

    seen: set[tuple[str, str]] = set()
    todo = [(name, doc(name).get("components", {})) for name in
            ("TS29573_N32_Handshake.yaml", "TS29573_JOSEProtectedMessageForwarding.yaml",
             "TS29573_SeppTelescopicFqdnMapping.yaml")]
    while todo:
        name, node = todo.pop()
        if isinstance(node, list):
            todo += [(name, v) for v in node]
        elif isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                target, _, fragment = ref.partition("#")
                target = target or name
                if (target, fragment) not in seen:
                    seen.add((target, fragment))
                    assert pointer.exists(doc(target), fragment), ref
                    todo.append((target, jsonpointer.resolve_pointer(doc(target), fragment)))
            todo += [(name, v) for k, v in node.items() if k != "$ref"]
    assert {t for t, _ in seen} >= {"TS29571_CommonData.yaml", "TS29510_Nnrf_AccessToken.yaml"}


@pytest.mark.parametrize("schema_name,body,cause,param", [
    # TS 29.500 Table 5.2.7.2-1 (issue 17 item 8): wrongly typed or malformed members
    ("SecNegotiateReqData", {**OPEN5GS_OFFER, "sender": 42}, "MANDATORY_IE_INCORRECT", "/sender"),
    ("SecNegotiateReqData", {**OPEN5GS_OFFER, "3GppSbiTargetApiRootSupported": "true"}, "OPTIONAL_IE_INCORRECT",
     "/3GppSbiTargetApiRootSupported"),
    ("SecParamExchReqData", {"n32fContextId": "abc"}, "MANDATORY_IE_INCORRECT", "/n32fContextId"),
    ("SecNegotiateReqData", {**OPEN5GS_OFFER, "plmnIdList": [{"mcc": "001", "mnc": 1}]}, "OPTIONAL_IE_INCORRECT",
     "/plmnIdList/0/mnc"),
    ("N32fErrorInfo", {"n32fMessageId": 7, "n32fErrorType": "INTEGRITY_CHECK_FAILED"}, "MANDATORY_IE_INCORRECT",
     "/n32fMessageId"),
    ("SecParamExchReqData", ["not", "an", "object"], "INVALID_MSG_FORMAT", ""),
])
def test_causes_per_ts29500(schema_name, body, cause, param):
    e = fails(schema_name, body)
    assert e.cause == cause and params(e)[0] == param
