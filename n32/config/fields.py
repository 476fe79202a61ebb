"""Pure validation of parsed YAML: one mapping at a dotted key, typed accessors that name the key
on error. Anything touching files goes through ``Section.files`` (the loader's :class:`Files`)."""
from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlsplit

from cryptography import x509

from ..plmn import PlmnId
from .errors import ConfigError, show, type_name

if TYPE_CHECKING:
    from .loader import Files

REQUIRED: Any = object()  # marker: the key must be present
_FQDN = re.compile(r"^(?=.{4,253}\Z)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}\Z")


class Section:
    """One YAML mapping at ``key`` in ``file``; every accessor names the dotted key on error."""

    def __init__(self, files: "Files", data: Any, key: str, allowed: tuple[str, ...]) -> None:
        self.files, self.file, self.data, self.key = files, files.file, data, key
        if not isinstance(data, dict):
            self.fail(f"must be a mapping, got {show(data)}")
        for name in data:
            if name not in allowed:
                close = difflib.get_close_matches(str(name), allowed, n=1)
                hint = f" (did you mean {close[0]}?)" if close else f" (known: {', '.join(allowed)})"
                self.fail(f"unknown key{hint}", str(name))

    def k(self, name: str) -> str:
        return f"{self.key}.{name}" if self.key else name

    def fail(self, problem: str, name: str | None = None) -> NoReturn:
        raise ConfigError(self.file, self.k(name) if name else (self.key or "(top)"), problem)

    def has(self, name: str) -> bool:
        return self.data.get(name) is not None

    def get(self, name: str, typ: Any, default: Any = REQUIRED, choices: tuple | None = None) -> Any:
        if not self.has(name):
            if default is REQUIRED:
                self.fail("missing (required)", name)
            return default
        value = self.data[name]
        if typ is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, typ) or (typ in (int, float) and isinstance(value, bool)):
            self.fail(f"must be {type_name(typ)}, got {show(value)}", name)
        if choices is not None and value not in choices:
            self.fail(f"must be one of {', '.join(map(str, choices))}, got {show(value)}", name)
        return value

    def number(self, name: str, default: Any, *, minimum: float | None = None, positive: bool = False) -> Any:
        value = self.get(name, float, default)
        if value is None:
            return None
        if positive and not value > 0:
            self.fail(f"must be greater than 0, got {value:g}", name)
        if minimum is not None and value < minimum:
            self.fail(f"must be at least {minimum:g}, got {value:g}", name)
        return value

    def integer(self, name: str, default: Any, *, minimum: int | None = None, maximum: int | None = None) -> Any:
        value = self.get(name, int, default)
        if value is None:
            return None
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            lo = "" if minimum is None else str(minimum)
            hi = "" if maximum is None else str(maximum)
            rng = f"{lo}-{hi}" if lo and hi else (f"at least {lo}" if lo else f"at most {hi}")
            self.fail(f"must be {rng}, got {value}", name)
        return value

    def sub(self, name: str, allowed: tuple[str, ...], required: bool = False) -> "Section | None":
        if not self.has(name):
            if required:
                self.fail("missing (required)", name)
            return None
        return Section(self.files, self.data[name], self.k(name), allowed)

    def child(self, data: Any, key: str, allowed: tuple[str, ...]) -> "Section":
        """A mapping found elsewhere (a list entry) at dotted ``key``."""
        return Section(self.files, data, key, allowed)

    def items(self, name: str, default: Any = REQUIRED) -> list[tuple[str, Any]]:
        """(dotted key, value) of each entry of a list."""
        values = self.get(name, list, default)
        return [(f"{self.k(name)}[{i}]", v) for i, v in enumerate(values or [])]

    def path(self, name: str, default: Any = REQUIRED) -> Any:
        raw = self.get(name, str, default)
        return None if raw is None else self.files.resolve(raw, self.k(name))

    def fqdn(self, name: str, default: Any = REQUIRED) -> Any:
        value = self.get(name, str, default)
        if value is None:
            return None
        return check_fqdn(self.file, self.k(name), value)

    def uri(self, name: str, default: Any = REQUIRED, schemes: tuple[str, ...] = ("https",)) -> Any:
        value = self.get(name, str, default)
        return None if value is None else check_uri(self.file, self.k(name), value, schemes)

    def plmns(self, name: str) -> tuple[PlmnId, ...]:
        out: list[PlmnId] = []
        for key, raw in self.items(name):
            try:
                plmn = PlmnId.parse(raw)
            except (ValueError, TypeError) as e:
                raise ConfigError(self.file, key, str(e)) from None
            if plmn in out:
                raise ConfigError(self.file, key, f"duplicate PLMN ID {plmn}")
            out.append(plmn)
        if not out:
            self.fail("needs at least one PLMN ID", name)
        return tuple(out)

    def choice_list(self, name: str, choices: tuple[str, ...], default: Any = REQUIRED) -> tuple[str, ...]:
        items = self.get(name, list, default)
        for i, v in enumerate(items):
            if v not in choices:
                self.fail(f"must be one of {', '.join(choices)}, got {show(v)}", f"{name}[{i}]")
            if v in items[:i]:
                self.fail(f"duplicate {v}", f"{name}[{i}]")
        if not items:
            self.fail("needs at least one entry", name)
        return tuple(items)


def check_fqdn(file: Path, key: str, value: Any) -> str:
    if not isinstance(value, str) or not _FQDN.match(value.rstrip(".")):
        raise ConfigError(file, key, f"not a valid FQDN: {show(value)}")
    return value.rstrip(".").lower()


def check_uri(file: Path, key: str, value: Any, schemes: tuple[str, ...]) -> str:
    if not isinstance(value, str):
        raise ConfigError(file, key, f"must be {type_name(str)}, got {show(value)}")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError as e:
        raise ConfigError(file, key, f"not a valid URI: {show(value)} ({e})") from None
    if parts.scheme not in schemes or not parts.hostname:
        want = " or ".join(f"{s}://" for s in schemes)
        raise ConfigError(file, key, f"must be a {want} URI with a host, got {show(value)}")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigError(file, key, f"must be an apiRoot (scheme://host[:port][/prefix]), got {show(value)}")
    return value.rstrip("/")


def dns_names(cert: x509.Certificate) -> list[str]:
    """The DNS names of a certificate's SAN (none without one)."""
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value \
            .get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        return []


def covers(names: list[str], host: str) -> bool:
    """True if a certificate DNS name covers ``host``; RFC 6125 §6.4.3: ``*.`` matches exactly
    one left-most label."""
    host = host.lower()
    return any(n.lower() == host or (n.startswith("*.") and host.partition(".")[2] == n[2:].lower())
               for n in names)
