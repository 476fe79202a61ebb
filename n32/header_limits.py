"""Bounds on a request's header section (hostile input, issue 13 item 5).

Size is measured as HTTP/2 measures a field list (RFC 9113 §6.5.2: name + value + 32 octets per
field, pseudo-header fields included), for HTTP/1.1 too, so that one limit means the same on
both. Over the limit the request is answered 431 (RFC 9110 §15.5.22, RFC 6585 §5) before any
work; over HTTP/2 a field block larger than ``h2_block`` is not decoded at all and the connection
ends with GOAWAY ENHANCE_YOUR_CALM (RFC 9113 §10.5.1: a field block must be decoded to keep the
HPACK state, or the connection closed). The limits come from ``limits:`` in the configuration.
"""
from __future__ import annotations

import dataclasses
from typing import Iterable

from . import wire
from .errors import N32Error

FIELD_OVERHEAD = 32  # RFC 9113 §6.5.2


@dataclasses.dataclass(frozen=True)
class HeaderLimits:
    section: int = 32 * 1024      # octets of a request's header section: over it, 431
    h2_block: int = 1024 * 1024   # HTTP/2: largest field list decoded (advertised as SETTINGS_MAX_HEADER_LIST_SIZE)


DEFAULT = HeaderLimits()


def section_size(fields: Iterable[tuple[str | bytes, str | bytes]]) -> int:
    return sum(len(k) + len(v) + FIELD_OVERHEAD for k, v in fields)


def check(fields: Iterable[tuple[str | bytes, str | bytes]], limits: HeaderLimits = DEFAULT) -> None:
    """N32Error 431 when the header section exceeds ``limits.section``."""
    size = section_size(fields)
    if size > limits.section:
        raise N32Error(431, wire.REQUEST_HEADER_FIELDS_TOO_LARGE,
                       f"header section of {size} octets exceeds the limit of {limits.section}",
                       invalid_params=[{"param": "headers", "reason": f"{size} octets > {limits.section}"}])


def check_unfinished(received: int, limits: HeaderLimits = DEFAULT) -> None:
    """N32Error 431 when an HTTP/1.1 header section still unfinished after ``received`` octets
    already exceeds ``limits.section`` (a field line costs fewer raw octets than its §6.5.2 size,
    so this never refuses what :func:`check` would allow, padding aside)."""
    if received > limits.section:
        raise N32Error(431, wire.REQUEST_HEADER_FIELDS_TOO_LARGE,
                       f"header section longer than the limit of {limits.section} octets",
                       invalid_params=[{"param": "headers", "reason": f"more than {limits.section} octets"}])
