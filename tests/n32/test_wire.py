"""n32.wire: the one place of wire names; media type reading and the N32 paths built from it."""
from __future__ import annotations

import pytest

from n32 import wire


@pytest.mark.parametrize("value, expected", [
    ("application/json", "application/json"),
    ("Application/JSON; charset=utf-8", "application/json"),
    ("  multipart/related ; boundary=x ", "multipart/related"),
    ("", ""),
    (None, ""),
])
def test_media_type_drops_parameters_and_case(value, expected):
    assert wire.media_type(value) == expected


@pytest.mark.parametrize("value, expected", [
    ("application/json", True),
    ("application/problem+json", True),
    ("application/merge-patch+json; charset=utf-8", True),     # RFC 6839 §3.1 structured suffix
    ("application/json-patch+json", True),
    ("application/jsonx", False),
    ("text/json-ish", False),
    ("multipart/related; type=application/json", False),    # the parameter is not the type
    (None, False),
])
def test_is_json_knows_structured_suffixes(value, expected):
    assert wire.is_json(value) is expected


def test_n32c_paths_are_the_operations_of_ts_29_573():
    assert [wire.n32c_path(op) for op in wire.N32C_OPERATIONS] == [
        "/n32c-handshake/v1/exchange-capability", "/n32c-handshake/v1/exchange-params",
        "/n32c-handshake/v1/n32f-terminate", "/n32c-handshake/v1/n32f-error"]
    assert wire.N32F_PROCESS == "/n32f-forward/v1/n32f-process"


def test_header_names_are_lower_case_as_http2_sends_them():
    # RFC 9113 §8.2.2: a field name with an upper-case letter is malformed in HTTP/2
    names = [v for k, v in vars(wire).items() if k.isupper() and isinstance(v, str)
             and not k.endswith("_NAME") and v.startswith(("3gpp-", "content-", "location", "allow", "retry-"))]
    assert names and all(n == n.lower() for n in names)
    assert wire.TARGET_API_ROOT_NAME.lower() == wire.TARGET_API_ROOT
    assert wire.ORIGINATING_NETWORK_ID_NAME.lower() == wire.ORIGINATING_NETWORK_ID
