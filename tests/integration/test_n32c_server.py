"""The N32-c server of a real SEPP process (issue 3): capability policies, peer authentication,
bad input answered with ProblemDetails while the SEPP keeps serving."""
from __future__ import annotations

import asyncio
import json

import pytest

from lab import procs as P
from lab.run import start_lab
from lab.topology import HOME, VISITED, Lab, sepp_fqdn
from n32io import tls
from n32io.h2client import H2Error

from .conftest import n32c_post, peer_client_ctx, run

V_FQDN = sepp_fqdn(VISITED)


def offer(caps):
    # the open5gs v2.7 request shape (issue 7 fixture), with our peer's FQDN as sender
    return {"sender": V_FQDN, "supportedSecCapabilityList": caps, "3GppSbiTargetApiRootSupported": True,
            "plmnIdList": [{"mcc": "001", "mnc": "01"}], "supportedFeatures": "1"}


@pytest.fixture(scope="module")
def responders(pki, tmp_path_factory):
    """Two home SEPPs: one allowing [PRINS, TLS] for the visited peer, one allowing only TLS."""
    labs = {}
    with P.Procs(tmp_path_factory.mktemp("n32c")) as procs:
        for name, caps in (("both", ["PRINS", "TLS"]), ("tls", ["TLS"])):
            lab = Lab(out=tmp_path_factory.mktemp(name), pki=pki)
            lab.peer_overrides["sepp-h"] = {"security_capabilities": caps}
            lab.overrides["sepp-v"] = {"handshake": {"at_start": False}}
            start_lab(lab, procs, wait_handshake=False)
            labs[name] = lab
        yield labs


@pytest.mark.parametrize("caps,selected", [(["PRINS", "TLS"], "PRINS"), (["TLS", "PRINS"], "TLS"),
                                           (["PRINS"], "PRINS"), (["TLS"], "TLS")])
def test_capability_offers_against_a_permissive_responder(responders, caps, selected):
    rsp = run(n32c_post(responders["both"], HOME, "exchange-capability", offer(caps)))
    assert rsp.status == 200, rsp.body
    body = rsp.json()
    assert body["selectedSecCapability"] == selected
    # the open5gs v2.7 response shape: exactly these members and types
    assert body["sender"] == sepp_fqdn(HOME)
    assert body["3GppSbiTargetApiRootSupported"] is True
    assert body["plmnIdList"] == [{"mcc": "999", "mnc": "70"}]
    assert body["supportedFeatures"] == "1"


def test_no_overlap_is_400_negotiation_not_allowed(responders):
    rsp = run(n32c_post(responders["tls"], HOME, "exchange-capability", offer(["PRINS"])))
    assert rsp.status == 400
    assert rsp.header("content-type") == "application/problem+json"
    assert rsp.json()["cause"] == "NEGOTIATION_NOT_ALLOWED"
    ok = run(n32c_post(responders["tls"], HOME, "exchange-capability", offer(["PRINS", "TLS"])))
    assert ok.json()["selectedSecCapability"] == "TLS"


def test_none_releases_the_relation(responders):
    lab = responders["tls"]
    assert run(n32c_post(lab, HOME, "exchange-capability", offer(["TLS"]))).status == 200
    rsp = run(n32c_post(lab, HOME, "exchange-capability", {"sender": V_FQDN, "supportedSecCapabilityList": ["NONE"]}))
    assert rsp.status == 200 and rsp.json() == {"sender": sepp_fqdn(HOME), "selectedSecCapability": "NONE"}
    status = json.loads((lab.out / "sepp-h.status.json").read_text())
    assert status["peers"][V_FQDN]["capability"] is None


@pytest.mark.parametrize("cert", ["rogue/sepp-001-01", "rogue/cross-001-01"])
def test_certificate_from_wrong_anchor_fails_the_tls_handshake(responders, pki, cert):
    ctx = tls.client_context(certificate=pki / f"{cert}.crt", private_key=pki / f"{cert}.key",
                             anchors=[pki / "plmn-999-70" / "ca.crt"])
    with pytest.raises(H2Error):
        run(n32c_post(responders["both"], HOME, "exchange-capability", offer(["TLS"]), ctx=ctx))
    log = (responders["both"].out / "sepp-h.log").read_text()
    assert "TLS handshake from" in log and "refused" in log


def test_sender_that_does_not_match_the_certificate_is_refused(responders):
    body = offer(["TLS"])
    body["sender"] = "sepp2.localdomain"
    rsp = run(n32c_post(responders["both"], HOME, "exchange-capability", body))
    assert rsp.status == 403 and rsp.json()["cause"] == "SENDER_MISMATCH"


@pytest.mark.parametrize("kwargs,status,cause", [
    ({"raw": b"{not json"}, 400, "INVALID_MSG_FORMAT"),
    ({"raw": b'{"sender":"x"}', "content_type": "text/plain"}, 415, "UNSUPPORTED_MEDIA_TYPE"),
    ({"raw": b"{" + b'"a":"' + b"x" * 70000 + b'"}'}, 413, "PAYLOAD_TOO_LARGE"),
    ({"method": "GET", "raw": b""}, 405, "METHOD_NOT_ALLOWED"),
])
def test_malformed_requests_get_problem_details(responders, kwargs, status, cause):
    rsp = run(n32c_post(responders["both"], HOME, "exchange-capability", None, **kwargs))
    assert rsp.status == status
    assert rsp.header("content-type") == "application/problem+json"
    assert rsp.json()["cause"] == cause and rsp.json()["status"] == status


def test_schema_violation_names_the_parameter(responders):
    lab = responders["both"]
    assert run(n32c_post(lab, HOME, "exchange-capability", offer(["PRINS"]))).status == 200
    rsp = run(n32c_post(lab, HOME, "exchange-params", {"n32fContextId": "xyz", "sender": V_FQDN,
                                                        "jweCipherSuiteList": ["A128GCM"]}))
    assert rsp.status == 400
    assert {"param": "/n32fContextId"}.items() <= rsp.json()["invalidParams"][0].items()


def test_unknown_context_in_terminate_is_404(responders):
    rsp = run(n32c_post(responders["both"], HOME, "n32f-terminate", {"n32fContextId": "00000000deadbeef"}))
    assert rsp.status == 404 and rsp.json()["cause"] == "CONTEXT_NOT_FOUND"


def test_the_sepp_keeps_serving_after_bad_input(responders):
    for lab in responders.values():
        rsp = run(n32c_post(lab, HOME, "exchange-capability", offer(["TLS"])))
        assert rsp.status == 200


def test_wrong_method_names_the_allowed_one(responders):
    """RFC 9110 §15.5.6: a 405 carries Allow (the N32 resources take POST only)."""
    rsp = run(n32c_post(responders["both"], HOME, "exchange-capability", None, method="GET", raw=b""))
    assert rsp.status == 405 and rsp.header("allow") == "POST"
