"""Sans-I/O model of the HTTP/2 messages a SEPP rewrites.

The adapters (addons/) convert mitmproxy flows to these and back; the core (reformatting,
PRINS protection, routing) works only on these. Header names are lower case (HTTP/2,
RFC 9113 §8.2.2); pseudo-headers are fields, not headers.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

M = TypeVar("M", bound="_Headers")


class _Headers:
    headers: list[tuple[str, str]]

    def evolve(self: M, **changes: Any) -> M:
        """A shallow copy with ``changes`` (field name -> value): ``dataclasses.replace`` without
        running ``__init__`` again, which looks up every field by name (2-3 µs, several times per
        message on the SEPP's path)."""
        fields = self.__dict__
        if not fields.keys() >= changes.keys():
            raise TypeError(f"{type(self).__name__} has no field {sorted(changes.keys() - fields.keys())}")
        new = object.__new__(type(self))
        new.__dict__.update(fields, **changes)
        return new

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        name = name.lower()
        for k, v in self.headers:   # a loop, not next() over a generator: asked several times per message
            if k == name:
                return v
        return None


@dataclass
class HttpRequest(_Headers):
    method: str                 # "GET", "POST", ...
    scheme: str                 # "https" | "http"
    authority: str              # host[:port]
    path: str                   # absolute path, still percent-encoded, without the query
    query: str = ""             # raw query string without "?" ("" when absent)
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @property
    def target(self) -> str:
        """Path plus query as on the request line."""
        return self.path + ("?" + self.query if self.query else "")


@dataclass
class HttpResponse(_Headers):
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
