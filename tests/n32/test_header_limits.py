"""n32.header_limits: the RFC 9113 §6.5.2 size of a header section and the 431 over the limit."""
from __future__ import annotations

import pytest

from n32 import header_limits
from n32.errors import N32Error


def test_size_counts_name_value_and_32_octets_per_field() -> None:
    assert header_limits.section_size([(":path", "/x"), (b"a", b"bc")]) == (5 + 2 + 32) + (1 + 2 + 32)


def test_within_and_over_the_limit() -> None:
    limits = header_limits.HeaderLimits(section=100)
    header_limits.check([("a", "b" * 67)], limits)           # 1 + 67 + 32 = 100: allowed
    with pytest.raises(N32Error) as e:
        header_limits.check([("a", "b" * 68)], limits)
    pd = e.value.problem_details()
    assert (pd["status"], pd["cause"], pd["title"]) == (431, "REQUEST_HEADER_FIELDS_TOO_LARGE",
                                                        "Request Header Fields Too Large")
    assert "101 octets exceeds the limit of 100" in pd["detail"]
