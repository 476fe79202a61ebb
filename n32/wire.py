"""Wire names of the SBI and N32, spelled once: headers, paths, media types, causes.

Header names are lower case as HTTP/2 sends them (RFC 9113 §8.2.2) and as
:meth:`n32.message.HttpRequest.header` compares them; the ``*_NAME`` forms are the spellings of
the specifications, for details and ``invalidParams`` that people read.
"""
from __future__ import annotations

# ---------------------------------------------------------------- headers (TS 29.500 §5.2.3.2)
TARGET_API_ROOT = "3gpp-sbi-target-apiroot"                    # §5.2.3.2.4
TARGET_API_ROOT_NAME = "3gpp-Sbi-Target-apiRoot"
ORIGINATING_NETWORK_ID = "3gpp-sbi-originating-network-id"     # §5.2.3.2.15
ORIGINATING_NETWORK_ID_NAME = "3gpp-Sbi-Originating-Network-Id"
BINDING = "3gpp-sbi-binding"                                   # §5.2.3.2.6
NRF_URI = "3gpp-sbi-nrf-uri"                                   # §5.2.3.2.20
NRF_URI_CALLBACK = "3gpp-sbi-nrf-uri-callback"
CONTENT_TYPE = "content-type"
CONTENT_LENGTH = "content-length"
CONTENT_ID = "content-id"
LOCATION = "location"
CONTENT_LOCATION = "content-location"
ALLOW = "allow"
RETRY_AFTER = "retry-after"
N32_NOT_ESTABLISHED = "N32_NOT_ESTABLISHED"

# ---------------------------------------------------------------- media types (TS 29.500 §5.4)
JSON = "application/json"
PROBLEM_JSON = "application/problem+json"                      # TS 29.500 §5.2.7.1
MULTIPART_RELATED = "multipart/related"                        # TS 29.500 §5.2.3.2.10


def media_type(content_type: str | None) -> str:
    """The media type of a ``content-type`` value, lower case, without parameters."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_json(content_type: str | None) -> bool:
    """``application/json`` or any ``+json`` type (RFC 6839 §3.1), e.g. problem+json, merge-patch+json."""
    mtype = media_type(content_type)
    return mtype == JSON or mtype.endswith("+json")


# ---------------------------------------------------------------- N32 APIs (TS 29.573 §5.2, §5.3)
N32C_API = "/n32c-handshake/v1/"
N32C_OPERATIONS = ("exchange-capability", "exchange-params", "n32f-terminate", "n32f-error")
N32F_API = "/n32f-forward/v1/"
N32F_PROCESS = N32F_API + "n32f-process"
TELESCOPIC_MAPPING = "/nsepp-telescopic/v1/mapping"            # TS 29.573 §5.4 (Nsepp_Telescopic_FQDN_Mapping)


def n32c_path(operation: str) -> str:
    return N32C_API + operation


# ---------------------------------------------------------------- causes (TS 29.500 Table 5.2.7.2-1)
INVALID_MSG_FORMAT = "INVALID_MSG_FORMAT"                # 400: the body or URI is not well formed
INVALID_QUERY_PARAM = "INVALID_QUERY_PARAM"
MANDATORY_IE_INCORRECT = "MANDATORY_IE_INCORRECT"        # 400: a mandatory IE has a wrong value or type
OPTIONAL_IE_INCORRECT = "OPTIONAL_IE_INCORRECT"          # 400: an optional IE has a wrong value or type
MANDATORY_IE_MISSING = "MANDATORY_IE_MISSING"
UNSPECIFIED_MSG_FAILURE = "UNSPECIFIED_MSG_FAILURE"
RESOURCE_URI_STRUCTURE_NOT_FOUND = "RESOURCE_URI_STRUCTURE_NOT_FOUND"
METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"                  # 413 (TS 29.500 §5.2.7.2)
# 431: no cause in Table 5.2.7.2-1; named like PAYLOAD_TOO_LARGE after the reason phrase (RFC 9110 §15.5.22)
REQUEST_HEADER_FIELDS_TOO_LARGE = "REQUEST_HEADER_FIELDS_TOO_LARGE"
SYSTEM_FAILURE = "SYSTEM_FAILURE"
TARGET_NOT_ALLOWED = "TARGET_NOT_ALLOWED"                # TS 29.573 §6.1.7.3 / routing
PLMN_NOT_ALLOWED = "PLMN_NOT_ALLOWED"
