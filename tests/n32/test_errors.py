"""n32.errors: every error answer is a TS 29.571 ProblemDetails and every report an N32fErrorInfo
(TS 29.573 §6.1.5.2.6), both validated against the shipped OpenAPI; what a peer sent is echoed
bounded (issue 13 item 6)."""
from __future__ import annotations

from n32 import errors, schema
from n32.errors import N32Error


def test_problem_details_validate_against_ts29571():
    e = N32Error(403, "PLMN_ID_MISMATCH", "servingNetworkName: 998-098 is not the peer's",
                 n32f_error_type=errors.POLICY_MISMATCH, suggested_status=403,
                 invalid_params=[{"param": "/servingNetworkName", "reason": "not the peer's"}])
    pd = e.problem_details()
    assert (pd["status"], pd["cause"], pd["suggestedStatusCode"]) == (403, "PLMN_ID_MISMATCH", 403)
    schema.validate_any("TS29571_CommonData", "ProblemDetails", {k: v for k, v in pd.items()
                                                                 if k != "suggestedStatusCode"})
    assert str(e) == "403 PLMN_ID_MISMATCH: servingNetworkName: 998-098 is not the peer's"


def test_n32f_error_info_validates_against_ts29573():
    e = N32Error(403, "PLMN_ID_MISMATCH", "x", n32f_error_type=errors.POLICY_MISMATCH,
                 invalid_params=[{"param": "/servingNetworkName", "reason": "not the peer's"}])
    info = e.n32f_error_info("1871229850703670447", "a1b2c3d4e5f60718")
    assert info == {"n32fMessageId": "1871229850703670447", "n32fErrorType": "POLICY_MISMATCH",
                    "n32fContextId": "a1b2c3d4e5f60718",
                    "policyMismatchList": [{"param": "/servingNetworkName", "reason": "not the peer's"}]}
    schema.validate("N32fErrorInfo", info)
    plain = N32Error(403, errors.INTEGRITY_CHECK_FAILED, "y").n32f_error_info("7", None)
    assert plain == {"n32fMessageId": "7", "n32fErrorType": errors.INTEGRITY_CHECK_FAILED}
    schema.validate("N32fErrorInfo", plain)


def test_what_a_peer_sent_is_echoed_bounded():
    huge = "9" * 1_000_000
    e = N32Error(400, "MANDATORY_IE_INCORRECT", f"unknown n32fContextId {huge}",
                 invalid_params=[{"param": huge, "reason": "r"}] * 100)
    assert len(e.detail) < errors.MAX_DETAIL + 64 and "more characters" in e.detail
    assert len(e.invalid_params) == errors.MAX_INVALID_PARAMS
    assert len(e.invalid_params[0]["param"]) < errors.MAX_ECHO + 64
    e.message_id, e.context_id = huge, huge                # set later from unauthenticated input
    assert len(e.message_id) < errors.MAX_ECHO + 64 and len(e.context_id) < errors.MAX_ECHO + 64
    assert errors.bad_request("d").status == 400 and errors.bounded(5) == "5"
