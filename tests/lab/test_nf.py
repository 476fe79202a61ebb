"""The lab's home NFs (lab/nf.py), HTTP server (lab/h2server.py), scenario and traffic source,
without any SEPP: over TLS HTTP/2, cleartext HTTP/2 and HTTP/1.1, with every request and response
body validated against the 3GPP OpenAPI files in lab/openapi."""
from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import functools
import ipaddress
import json
import re
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft4Validator
from referencing import Registry
from referencing.jsonschema import DRAFT4

from lab import h2server, scenario
from lab.nf import HomeNfs
from lab.traffic import H1Client, H2Client, StepResult, run_scenario

ROOT = Path(__file__).resolve().parents[2]
OPENAPI = ROOT / "lab" / "openapi"
BASE = "https://lab.invalid/openapi/"

AUSF, UEAU = "TS29509_Nausf_UEAuthentication.yaml", "TS29503_Nudm_UEAU.yaml"
UECM, SDM = "TS29503_Nudm_UECM.yaml", "TS29503_Nudm_SDM.yaml"
SMF, COMMON = "TS29502_Nsmf_PDUSession.yaml", "TS29571_CommonData.yaml"
AMF = "TS29518_Namf_Communication.yaml"
# step -> (request schema, response schema)
SCHEMAS = {
    "ue-context-transfer": ((AMF, "UeContextTransferReqData"), (AMF, "UeContextTransferRspData")),
    "ue-authentication": ((AUSF, "AuthenticationInfo"), (AUSF, "UEAuthenticationCtx")),
    "5g-aka-confirmation": ((AUSF, "ConfirmationData"), (AUSF, "ConfirmationDataResponse")),
    "registration-status-update": ((AMF, "UeRegStatusUpdateReqData"), (AMF, "UeRegStatusUpdateRspData")),
    "amf-registration": ((UECM, "Amf3GppAccessRegistration"), (UECM, "Amf3GppAccessRegistration")),
    "am-data": (None, (SDM, "AccessAndMobilitySubscriptionData")),
    "sdm-subscribe": ((SDM, "SdmSubscription"), (SDM, "SdmSubscription")),
    "pdu-session-create": ((SMF, "PduSessionCreateData"), (SMF, "PduSessionCreatedData")),
}


# --------------------------------------------------------------------------- schema validation
@functools.cache
def registry() -> Registry:
    """All lab/openapi files; a $ref into a file that was not copied accepts anything."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    docs = {p.name: yaml.load(p.read_text(encoding="utf-8"), Loader=loader) for p in OPENAPI.glob("*.yaml")}

    def prune(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.split("#")[0] and ref.split("#")[0] not in docs:
                return {}
            return {k: prune(v) for k, v in node.items()}
        if isinstance(node, list):
            return [prune(v) for v in node]
        return node

    return Registry().with_resources((BASE + name, DRAFT4.create_resource(prune(doc))) for name, doc in docs.items())


def validate(file: str, schema: str, instance: Any) -> None:
    Draft4Validator({"$ref": f"{BASE}{file}#/components/schemas/{schema}"}, registry=registry()).validate(instance)


def test_schema_validation_rejects_bad_documents():
    validate(UEAU, "Rand", "00" * 16)
    for file, schema, bad in [(UEAU, "Rand", "00"), (AUSF, "AuthenticationInfo", {"supiOrSuci": "imsi-1"}),
                              (SMF, "PduSessionCreatedData", {"pduSessionType": "IPV4", "sscMode": "9"})]:
        with pytest.raises(Exception):
            validate(file, schema, bad)


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A throwaway self-signed server certificate for localhost / 127.0.0.1."""
    d = tmp_path_factory.mktemp("nfcert")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lab-nf")])
    now = datetime.datetime.now(datetime.timezone.utc)
    crt = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
           .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
           .not_valid_after(now + datetime.timedelta(days=1))
           .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                       x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
           .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
           .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
           .sign(key, hashes.SHA256()))
    (d / "nf.crt").write_bytes(crt.public_bytes(serialization.Encoding.PEM))
    (d / "nf.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()))
    return d / "nf.crt", d / "nf.key"


def client_ctx(cert: tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert[0]))


@contextlib.asynccontextmanager
async def running(handler: Any, cert: tuple[Path, Path] | None) -> AsyncIterator[tuple[str, int]]:
    ctx = h2server.server_ssl_context(str(cert[0]), str(cert[1])) if cert else None
    server = await h2server.serve(handler, "127.0.0.1", 0, ctx)
    try:
        port = h2server.bound_port(server)
        yield f"{'https' if cert else 'http'}://127.0.0.1:{port}", port
    finally:
        await h2server.stop(server)


async def scenario_run(cert: tuple[Path, Path] | None, http: str, ues: int = 3,
                       concurrency: int = 3) -> tuple[HomeNfs, list[StepResult]]:
    nfs = HomeNfs()
    async with running(nfs.handle, cert) as (url, _):
        results = await run_scenario(url, ues, concurrency, client_ctx(cert) if cert else None, None, http=http)
    return nfs, results


def step(ue: int, name: str) -> scenario.Step:
    return next(s for s in scenario.ue_steps(ue) if s.name == name)


def json_part(content_type: str, body: bytes) -> dict:
    if content_type.startswith("multipart/"):
        return json.loads(h2server.multipart_decode(content_type, body)[0][1])
    return json.loads(body)


# --------------------------------------------------------------------------- the scenario
@pytest.mark.parametrize("transport,http", [("tls", "h2"), ("clear", "h2"), ("clear", "http/1.1"),
                                            ("tls", "http/1.1")])
def test_scenario_runs_schema_valid_over(cert, transport, http):
    nfs, results = asyncio.run(scenario_run(cert if transport == "tls" else None, http))
    steps = len(SCHEMAS)
    assert len(results) == 3 * steps
    bad = [(r.ue, r.step, r.status, r.error) for r in results if not r.ok]
    assert not bad
    assert [r.step for r in results[:steps]] == list(SCHEMAS)
    for r in results:
        h = dict(r.response_headers)
        assert re.fullmatch(r"(AUSF|UDM|SMF|AMF)-lab-1\.0", h["server"])
        _, (file, schema) = SCHEMAS[r.step]
        validate(file, schema, json_part(h["content-type"], r.response_body))
        if r.expected_status == 201:
            assert h["location"].startswith("https://") and ".5gc.mnc070.mcc999.3gppnetwork.org/" in h["location"]
    moved = json.loads(results[0].response_body)["ueContext"]
    assert moved["supi"] == "imsi-999700000000001" and moved["seafData"]["keyAmf"]["keyType"] == "KAMF"
    ctx = json.loads(results[1].response_body)
    assert results[1].response_headers and dict(results[1].response_headers)["content-type"] == "application/3gppHal+json"
    assert ctx["_links"]["5g-aka"]["href"] == dict(results[1].response_headers)["location"] + "/5g-aka-confirmation"
    confirmed = json.loads(results[2].response_body)
    assert confirmed["authResult"] == "AUTHENTICATION_SUCCESS" and confirmed["supi"] == "imsi-999700000000001"
    assert json.loads(results[3].response_body) == {"regStatusTransferComplete": True}

    received = list(nfs.received)
    assert len(received) == 3 * steps
    for rec in received:
        headers = dict(rec["headers"])
        assert headers["user-agent"] in ("AMF", "SMF")
        assert headers["authorization"].startswith("Bearer ey")
        assert re.fullmatch(r"https://(ausf|udm|smf|amf)\.5gc\.mnc070\.mcc999\.3gppnetwork\.org",
                            headers["3gpp-sbi-target-apiroot"])
        assert "3gpp-sbi-originating-network-id" not in headers
        if http == "h2":
            assert headers[":authority"].startswith("127.0.0.1:")
    for r in results:
        req_schema, _ = SCHEMAS[r.step]
        recs = [x for x in received if x["path"] == r.path and x["method"] == r.method]
        assert recs, r
        if req_schema:
            for rec in recs:
                body = base64.b64decode(rec["body"])
                validate(*req_schema, json_part(dict(rec["headers"])["content-type"], body))


def test_am_data_query_carries_the_serving_plmn():
    nfs, results = asyncio.run(scenario_run(None, "h2", ues=1))
    rec = next(x for x in nfs.received if x["path"].endswith("/am-data"))
    assert rec["query"] == "plmn-id=%7B%22mcc%22%3A%22001%22%2C%22mnc%22%3A%2201%22%7D"


def test_multipart_bytes_round_trip_end_to_end():
    nfs, results = asyncio.run(scenario_run(None, "h2", ues=2))
    for ue in (1, 2):
        rec = next(x for x in nfs.received if x["path"] == "/nsmf-pdusession/v1/pdu-sessions"
                   and f'"supi": "{scenario.supi(ue)}"'.encode() in base64.b64decode(x["body"]))
        parts = h2server.multipart_decode(dict(rec["headers"])["content-type"], base64.b64decode(rec["body"]))
        assert dict(parts[1][0])["content-id"] == "n1SmMsg"
        sent = scenario.n1_establishment_request(ue, 5)
        assert parts[1][1] == sent and b"\x00" in sent and b"\r\n--" in sent
        r = next(x for x in results if x.ue == ue and x.step == "pdu-session-create")
        rparts = h2server.multipart_decode(dict(r.response_headers)["content-type"], r.response_body)
        created = json.loads(rparts[0][1])
        assert dict(rparts[1][0])["content-type"] == "application/vnd.3gpp.5gnas"
        assert created["n1SmInfoToUe"]["contentId"] == dict(rparts[1][0])["content-id"]
        assert rparts[1][1] == scenario.n1_establishment_accept(ue, 5, 1, created["ueIpv4Address"])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=300), min_size=1, max_size=4))
def test_multipart_encode_decode_is_byte_exact(blobs):
    parts = [([("content-type", "application/octet-stream"), ("content-id", f"p{i}")], b) for i, b in enumerate(blobs)]
    ctype, body = h2server.multipart_encode(parts, "b-7f3a9c")
    assert h2server.multipart_decode(ctype, body) == parts


def test_responses_are_deterministic_per_ue():
    _, a = asyncio.run(scenario_run(None, "h2", ues=2, concurrency=2))
    _, b = asyncio.run(scenario_run(None, "h2", ues=2, concurrency=1))
    assert [(r.step, r.status, r.response_body, dict(r.response_headers).get("location")) for r in a] == \
           [(r.step, r.status, r.response_body, dict(r.response_headers).get("location")) for r in b]


def test_reregistration_is_200_and_still_ok():
    async def go() -> list[StepResult]:
        nfs = HomeNfs()
        async with running(nfs.handle, None) as (url, _):
            await run_scenario(url, 1, 1, None)
            return await run_scenario(url, 1, 1, None)
    results = asyncio.run(go())
    assert all(r.ok for r in results)
    assert next(r for r in results if r.step == "amf-registration").status == 200


def test_sdm_nssai_and_dataset_names():
    async def go():
        nfs = HomeNfs()
        async with running(nfs.handle, None) as (url, port):
            c = await H2Client.connect("127.0.0.1", port, None)
            try:
                s = scenario.supi(2)
                return (await c.request("GET", f"/nudm-sdm/v2/{s}/nssai", [], b""),
                        await c.request("GET", f"/nudm-sdm/v2/{s}?dataset-names=AM,SMF_SEL", [], b""),
                        await c.request("GET", f"/nudm-sdm/v2/{s}?dataset-names=AM", [], b""))
            finally:
                await c.close()
    nssai, sets, one = asyncio.run(go())
    validate(SDM, "Nssai", nssai.json())
    validate(SDM, "SubscriptionDataSets", sets.json())
    assert set(sets.json()) == {"amData", "smfSelData"}
    assert (one.status, one.json()["cause"]) == (400, "INVALID_QUERY_PARAM")


# --------------------------------------------------------------------------- 5G AKA
def test_milenage_ts_35_207_test_set_1():
    k = bytes.fromhex("465b5ce8b199b49faa5f0a2ee238a6bc")
    opc = scenario.milenage_opc(k, bytes.fromhex("cdc202d5123e20f62b6d676ac72cb318"))
    assert opc.hex() == "cd63cb71954a9f4e48a5994e37a02baf"
    f = scenario.milenage(k, opc, bytes.fromhex("23553cbe9637a89d218ae64dae47bf35"),
                          bytes.fromhex("ff9bb4d0b607"), bytes.fromhex("b9b9"))
    assert f["mac_a"].hex() == "4a9ffac354dfafb3"
    assert f["mac_s"].hex() == "01cfaf9ec4e871e9"
    assert f["res"].hex() == "a54211d5e3ba50bf"
    assert f["ck"].hex() == "b40ba9a3c58b2a05bbf0d987b21bf8cb"
    assert f["ik"].hex() == "f769bcd751044604127672711c6d3441"
    assert f["ak"].hex() == "aa689c648370"
    assert f["ak_star"].hex() == "451e8beca43b"


def test_usim_and_home_network_agree_and_a_wrong_res_star_fails():
    s, snn = scenario.supi(7), scenario.serving_network_name()
    av = scenario.home_auth_vector(s, snn, bytes(range(16)), (33).to_bytes(6, "big"))
    assert scenario.usim_res_star(s, snn, av["rand"], av["autn"]) == av["xres_star"]
    with pytest.raises(ValueError):
        scenario.usim_res_star(scenario.supi(8), snn, av["rand"], av["autn"])

    async def go() -> tuple[int, dict]:
        nfs = HomeNfs()
        async with running(nfs.handle, None) as (url, port):
            c = await H2Client.connect("127.0.0.1", port, None)
            try:
                req = step(1, "ue-authentication").build([])
                rsp = await c.request(req.method, req.path, list(req.headers), req.body)
                href = rsp.json()["_links"]["5g-aka"]["href"]
                bad = await c.request("PUT", href.split(".org", 1)[1], [("content-type", "application/json")],
                                      json.dumps({"resStar": "00" * 16}).encode())
                return bad.status, bad.json()
            finally:
                await c.close()
    status, doc = asyncio.run(go())
    assert status == 200 and doc == {"authResult": "AUTHENTICATION_FAILURE"}
    validate(AUSF, "ConfirmationDataResponse", doc)


def test_old_amf_checks_the_registration_request_and_the_transfer_order():
    """TS 29.518 §5.2.2.2.2: the REGISTRATION REQUEST part must name the GUTI of the URI;
    §5.2.2.2.3: a status update needs a transfer in progress; unknown GUTIs are 404."""
    async def go() -> list[tuple[int, dict]]:
        nfs = HomeNfs()
        async with running(nfs.handle, None) as (url, port):
            c = await H2Client.connect("127.0.0.1", port, None)
            out = []
            try:
                good = step(1, "ue-context-transfer").build([])
                other = step(2, "ue-context-transfer").build([])
                update = step(1, "registration-status-update")
                for method, path, headers, body in [
                    (good.method, other.path, good.headers, good.body),    # UE 1's NAS, UE 2's GUTI
                    ("POST", good.path.replace("cafe00", "beef00"), good.headers, good.body),
                    (good.method, good.path + "-update", [("content-type", "application/json")],
                     b'{"transferStatus": "TRANSFERRED"}'),                 # no transfer yet
                    (good.method, good.path, good.headers, good.body),
                ]:
                    r = await c.request(method, path, list(headers), body)
                    out.append((r.status, r.json()))
                confirmed = scenario.Response(200, [("content-type", "application/json")],
                                              b'{"supi": "imsi-999700000000001"}')
                req = update.build([None, None, confirmed])
                r = await c.request(req.method, req.path, list(req.headers), req.body)
                out.append((r.status, r.json()))
            finally:
                await c.close()
            return out
    (mismatch, mism), (unknown, unk), (early, ear), (ok, moved), (done, upd) = asyncio.run(go())
    assert mismatch == 403 and mism["cause"] == "INTEGRITY_CHECK_FAIL" and "5g-guti-99970cafe0000000001" in mism["detail"]
    assert unknown == 404 and unk["cause"] == "CONTEXT_NOT_FOUND"
    assert early == 404 and ear["cause"] == "CONTEXT_NOT_FOUND"
    assert ok == 200 and moved["ueContext"]["supi"] == "imsi-999700000000001"
    validate(AMF, "UeContextTransferRspData", moved)
    assert done == 200 and upd == {"regStatusTransferComplete": True}
    reg = scenario.n1_registration_request(3)
    assert scenario.guti_of_registration_request(reg) == scenario.guti(3) == "5g-guti-99970cafe0000000003"
    with pytest.raises(ValueError):
        scenario.guti_of_registration_request(reg[:8])


def test_udm_generate_auth_data():
    async def go():
        nfs = HomeNfs()
        async with running(nfs.handle, None) as (url, port):
            c = await H2Client.connect("127.0.0.1", port, None)
            body = {"servingNetworkName": scenario.serving_network_name(),
                    "ausfInstanceId": "9f1c2a4e-0d5b-4c1e-8a7f-3b2d1e0c9a88"}
            validate(UEAU, "AuthenticationInfoRequest", body)
            try:
                return await c.request("POST", f"/nudm-ueau/v1/{scenario.suci(4)}/security-information/"
                                       "generate-auth-data", [("content-type", "application/json")],
                                       json.dumps(body).encode())
            finally:
                await c.close()
    rsp = asyncio.run(go())
    assert rsp.status == 200
    doc = rsp.json()
    validate(UEAU, "AuthenticationInfoResult", doc)
    av = doc["authenticationVector"]
    assert doc["supi"] == scenario.supi(4) and av["avType"] == "5G_HE_AKA"
    assert scenario.usim_res_star(scenario.supi(4), scenario.serving_network_name(), bytes.fromhex(av["rand"]),
                                  bytes.fromhex(av["autn"])).hex() == av["xresStar"]


# --------------------------------------------------------------------------- errors and lab endpoints
def test_problem_details_for_unknown_paths_bad_json_and_unknown_users():
    async def go() -> list:
        nfs = HomeNfs()
        async with running(nfs.handle, None) as (url, port):
            out = []
            for http_cls in (H2Client, H1Client):
                c = await http_cls.connect("127.0.0.1", port, None)
                try:
                    ct = [("content-type", "application/json")]
                    out.append(await c.request("GET", "/nudm-foo/v1/x", [], b""))
                    out.append(await c.request("POST", "/nausf-auth/v1/ue-authentications", ct, b"{not json"))
                    out.append(await c.request("GET", "/nudm-sdm/v2/imsi-001010000000001/am-data", [], b""))
                    out.append(await c.request("DELETE", "/nausf-auth/v1/ue-authentications", [], b""))
                    out.append(await c.request("POST", "/nudm-sdm/v2/imsi-999700000000001/sdm-subscriptions",
                                               ct, b'{"nfInstanceId": "x"}'))
                    out.append(await c.request("POST", "/nsmf-pdusession/v1/pdu-sessions", ct,
                                               b'{"dnn": "internet", "servingNetwork": {}, "anType": "3GPP_ACCESS",'
                                               b' "supi": "imsi-999700000000001", "n1SmInfoFromUe": "x"}'))
                finally:
                    await c.close()
            return out
    rsps = asyncio.run(go())
    expect = [(404, "RESOURCE_URI_STRUCTURE_NOT_FOUND"), (400, "INVALID_MSG_FORMAT"), (404, "USER_NOT_FOUND"),
              (405, "METHOD_NOT_ALLOWED"), (400, "MANDATORY_IE_MISSING"), (400, "INVALID_MSG_FORMAT")] * 2
    assert [(r.status, r.json()["cause"]) for r in rsps] == expect
    for r in rsps:
        assert r.header("content-type") == "application/problem+json" and r.header("server").endswith("-lab-1.0")
        validate(COMMON, "ProblemDetails", r.json())
    assert rsps[4].json()["invalidParams"][0]["param"] == "/callbackReference"
    assert rsps[3].header("allow") == "POST"


def test_confirmation_follows_the_href_it_was_given():
    """Step 2 targets the apiRoot of the received href (a SEPP may rewrite it, e.g. telescopic)."""
    s, snn = scenario.supi(1), scenario.serving_network_name()
    av = scenario.home_auth_vector(s, snn, bytes(16), (32).to_bytes(6, "big"))
    href = "https://ausf.5gc.mnc070.mcc999.3gppnetwork.org.sepp.5gc.mnc001.mcc001.3gppnetwork.org:4443" \
           "/nausf-auth/v1/ue-authentications/abc/5g-aka-confirmation"
    ctx = {"authType": "5G_AKA", "5gAuthData": {"rand": av["rand"].hex(), "autn": av["autn"].hex(),
                                                "hxresStar": av["hxres_star"].hex()},
           "_links": {"5g-aka": {"href": href}}}
    first = scenario.Response(201, [("content-type", "application/3gppHal+json")], json.dumps(ctx).encode())
    req = step(1, "5g-aka-confirmation").build([None, first])
    assert req.path == "/nausf-auth/v1/ue-authentications/abc/5g-aka-confirmation"
    assert dict(req.headers)["3gpp-sbi-target-apiroot"] == href.split("/nausf")[0]
    assert json.loads(req.body) == {"resStar": av["xres_star"].hex()}


def test_lab_received_reset_and_record_file(tmp_path):
    async def go():
        nfs = HomeNfs(record=tmp_path / "rec.jsonl")
        async with running(nfs.handle, None) as (url, port):
            await run_scenario(url, 1, 1, None)
            c = await H2Client.connect("127.0.0.1", port, None)
            try:
                got = await c.request("GET", "/_lab/received", [], b"")
                reset = await c.request("POST", "/_lab/reset", [], b"")
                after = await c.request("GET", "/_lab/received", [], b"")
            finally:
                await c.close()
                nfs.close()
            return got, reset, after
    got, reset, after = asyncio.run(go())
    recs = got.json()
    assert [r["method"] for r in recs] == ["POST", "POST", "PUT", "POST", "PUT", "GET", "POST", "POST"]
    assert base64.b64decode(recs[2]["body"]).startswith(b'{"resStar"')
    assert reset.status == 204 and after.json() == []
    lines = [json.loads(x) for x in (tmp_path / "rec.jsonl").read_text().splitlines()]
    assert lines == recs


# --------------------------------------------------------------------------- h2server itself
def test_h2server_many_concurrent_streams_and_flow_control(cert):
    async def echo(method, path, query, headers, body):
        return 200, [("content-type", "application/octet-stream"), ("x-path", path)], body * 2

    async def go():
        async with running(echo, cert) as (url, port):
            c = await H2Client.connect("127.0.0.1", port, client_ctx(cert))
            try:
                bodies = [bytes([i % 256]) * (150_000 + i * 1000) + b"\r\n\x00--" for i in range(40)]
                rsps = await asyncio.gather(*(c.request("POST", f"/echo/{i}", [], b) for i, b in enumerate(bodies)))
                big = await c.request("POST", "/big", [], bytes(range(256)) * 12_000)  # 3 MB each way
                return bodies, rsps, big
            finally:
                await c.close()
    bodies, rsps, big = asyncio.run(go())
    for i, (b, r) in enumerate(zip(bodies, rsps)):
        assert r.status == 200 and r.header("x-path") == f"/echo/{i}" and r.body == b * 2
        assert r.header("content-length") == str(2 * len(b))
    assert big.body == bytes(range(256)) * 24_000


def test_h2server_sniffs_cleartext_http1_and_h2_on_one_port():
    async def hello(method, path, query, headers, body):
        return 200, [("content-type", "text/plain")], f"{method} {path} {query} {len(body)}".encode()

    async def go():
        async with running(hello, None) as (url, port):
            h1 = await H1Client.connect("127.0.0.1", port, None)
            h2c = await H2Client.connect("127.0.0.1", port, None)
            try:
                a = await h1.request("PUT", "/a?x=1", [], b"12345")
                b = await h1.request("GET", "/b", [], b"")  # keep-alive
                c = await h2c.request("GET", "/c?y=2", [], b"")
                r, w = await asyncio.open_connection("127.0.0.1", port)  # chunked HTTP/1.1
                w.write(b"POST /d HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
                        b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
                raw = await r.read()
                w.close()
                return a, b, c, raw
            finally:
                await h1.close()
                await h2c.close()
    a, b, c, raw = asyncio.run(go())
    assert (a.body, b.body, c.body) == (b"PUT /a x=1 5", b"GET /b  0", b"GET /c y=2 0")
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n") and raw.endswith(b"POST /d  5")


# --------------------------------------------------------------------------- CLIs
def test_cli_nf_over_tls_and_traffic_cli(cert, tmp_path):
    nf = subprocess.Popen([sys.executable, "-m", "lab.nf", "--host", "127.0.0.1", "--port", "0",
                           "--tls-cert", str(cert[0]), "--tls-key", str(cert[1]),
                           "--record", str(tmp_path / "r.jsonl")],
                          cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = nf.stdout.readline()
        m = re.search(r"https://127\.0\.0\.1:(\d+)", line)
        assert m, line
        out = subprocess.run([sys.executable, "-m", "lab.traffic", "--target", f"https://127.0.0.1:{m[1]}",
                              "--ues", "2", "--cafile", str(cert[0])], cwd=ROOT, capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 0, out.stdout + out.stderr
        assert f"total: {2 * len(SCHEMAS)} steps, 0 failed" in out.stdout
        assert "Nsmf_PDUSession" in out.stdout and "Namf_Communication" in out.stdout
        assert len((tmp_path / "r.jsonl").read_text().splitlines()) == 2 * len(SCHEMAS)
    finally:
        nf.terminate()
        nf.wait(10)
        nf.stdout.close()
