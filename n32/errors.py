"""Errors of the N32 core and their TS 29.571 ProblemDetails form.

Every failure the core detects is raised as :class:`N32Error`. The adapters turn it into an
HTTP answer (``application/problem+json``), a log line and, where TS 33.501 §13.2.2.3 calls for
it, an ``n32f-error`` report to the peer SEPP (``n32f_error_type`` set).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PROBLEM_JSON = "application/problem+json"

# What a peer or NF sends may be echoed in an answer and written to the log only this long
# (issue 13 item 6: a 1 MB n32fContextId came back whole and made a 1 MB log line).
MAX_DETAIL = 512          # characters of a ProblemDetails detail / log message
MAX_ECHO = 160            # characters of one invalidParams param or reason, an ID in a report
MAX_INVALID_PARAMS = 20   # invalidParams entries in one answer

# TS 29.573 N32fErrorType values (N32-SPEC §2.4).
INTEGRITY_CHECK_FAILED = "INTEGRITY_CHECK_FAILED"
INTEGRITY_CHECK_ON_MODIFICATIONS_FAILED = "INTEGRITY_CHECK_ON_MODIFICATIONS_FAILED"
MODIFICATIONS_INSTRUCTIONS_FAILED = "MODIFICATIONS_INSTRUCTIONS_FAILED"
DECIPHERING_FAILED = "DECIPHERING_FAILED"
MESSAGE_RECONSTRUCTION_FAILED = "MESSAGE_RECONSTRUCTION_FAILED"
CONTEXT_NOT_FOUND = "CONTEXT_NOT_FOUND"
INTEGRITY_KEY_EXPIRED = "INTEGRITY_KEY_EXPIRED"
ENCRYPTION_KEY_EXPIRED = "ENCRYPTION_KEY_EXPIRED"
POLICY_MISMATCH = "POLICY_MISMATCH"

# TS 29.573 FailureReason values.
INVALID_JSON_POINTER = "INVALID_JSON_POINTER"
INVALID_INDEX_TO_ENCRYPTED_BLOCK = "INVALID_INDEX_TO_ENCRYPTED_BLOCK"
INVALID_HTTP_HEADER = "INVALID_HTTP_HEADER"


@dataclass
class N32Error(Exception):
    """A protocol failure with everything needed to answer, log and report it.

    status/cause/detail become the ProblemDetails; ``n32f_error_type`` (when set) means the
    peer SEPP gets an ``n32f-error`` report; ``message_id``/``context_id`` are filled in by the
    layer that knows them so that log lines and reports can name them.
    """

    status: int
    cause: str
    detail: str
    n32f_error_type: str | None = None
    invalid_params: list[dict[str, Any]] = field(default_factory=list)
    failed_modifications: list[dict[str, Any]] = field(default_factory=list)
    error_details: list[dict[str, Any]] = field(default_factory=list)
    message_id: str | None = None
    context_id: str | None = None
    # Set for 403 answers of n32f-process (ProblemDetailsMsgForwarding, TS 29.573 §6.2.5.2).
    suggested_status: int | None = None
    # Seconds for a Retry-After header (RFC 9110 §10.2.3) on 503 answers while a relation is rebuilt.
    retry_after: int | None = None

    def __post_init__(self) -> None:
        self.detail = bounded(self.detail, MAX_DETAIL)
        self.invalid_params = [{k: bounded(v) if isinstance(v, str) else v for k, v in p.items()}
                               if isinstance(p, dict) else p for p in self.invalid_params[:MAX_INVALID_PARAMS]]
        Exception.__init__(self, f"{self.status} {self.cause}: {self.detail}")

    def __setattr__(self, name: str, value: Any) -> None:
        # message_id / context_id are filled in later by the layer that knows them; they may come
        # from the peer unauthenticated, so they are bounded whenever they are set.
        if name in ("message_id", "context_id") and isinstance(value, str):
            value = bounded(value)
        super().__setattr__(name, value)

    def problem_details(self) -> dict[str, Any]:
        """The TS 29.571 ProblemDetails body for this error."""
        pd: dict[str, Any] = {
            "title": _TITLES.get(self.status, "Error"),
            "status": self.status,
            "detail": self.detail,
            "cause": self.cause,
        }
        if self.invalid_params:
            pd["invalidParams"] = self.invalid_params
        if self.suggested_status is not None:
            pd["suggestedStatusCode"] = self.suggested_status
        return pd

    def n32f_error_info(self, message_id: str, context_id: str | None) -> dict[str, Any]:
        """The N32fErrorInfo body of the ``n32f-error`` report (TS 29.573 §6.1.5.2.6)."""
        info: dict[str, Any] = {
            "n32fMessageId": message_id,
            "n32fErrorType": self.n32f_error_type or INTEGRITY_CHECK_FAILED,
        }
        if context_id:
            info["n32fContextId"] = context_id
        if self.failed_modifications:
            info["failedModificationList"] = self.failed_modifications
        if self.error_details:
            info["errorDetailsList"] = self.error_details
        if self.n32f_error_type == POLICY_MISMATCH and self.invalid_params:
            info["policyMismatchList"] = self.invalid_params
        return info


_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    411: "Length Required",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    431: "Request Header Fields Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def bounded(value: Any, limit: int = MAX_ECHO) -> str:
    """``value`` as text of at most about ``limit`` characters: what may be echoed or logged of
    anything a peer or an NF sent."""
    text = value if isinstance(value, str) else str(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}...({len(text) - limit} more characters)"


def bad_request(detail: str, cause: str = "MANDATORY_IE_INCORRECT", **kw: Any) -> N32Error:
    return N32Error(400, cause, detail, **kw)
