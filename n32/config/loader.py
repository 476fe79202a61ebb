"""Reading configuration files: YAML, certificates, keys. The only file I/O of the package.

Relative paths resolve against the current working directory first, then against the directory
of the config file (so both ``make lab`` from the repository root and configs that sit next to
their certificates work). Certificates must be within their validity period at ``now``.
"""
from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from .errors import ConfigError
from .fields import Section
from .ipx import IPX_KEYS, IpxConfig, ipx_config
from .sepp import SEPP_KEYS, SeppConfig, sepp_config


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys in a mapping (the last one would silently win)."""


def _mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict:
    seen: set = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        if isinstance(key, (list, dict)):
            raise yaml.constructor.ConstructorError(None, None, "keys must be scalars", key_node.start_mark)
        seen.add(key)
    loader.flatten_mapping(node)
    return dict(loader.construct_pairs(node, deep=True))


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def _read_yaml(file: Path) -> Any:
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(file, "(file)", "file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(file, "(file)", f"cannot read: {getattr(e, 'strerror', None) or e}") from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (SafeLoader subclass)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e)
        raise ConfigError(file, "(file)", f"not valid YAML: {where}{problem}") from None


def resolve(file: Path, raw: str, key: str, must_exist: bool = True) -> Path:
    """``raw`` as a path: absolute as is; relative against the current directory, then against the
    directory of ``file``. ConfigError if it exists in neither (and ``must_exist``)."""
    p = Path(raw).expanduser()
    for cand in ([p] if p.is_absolute() else [Path.cwd() / p, Path(file).parent / p]):
        if cand.exists():
            return cand
    if must_exist:
        raise ConfigError(file, key, f"file not found: {raw}")
    return p


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _spki(public_key: Any) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


class Files:
    """The files one config refers to; every error names the config file and the dotted key."""

    def __init__(self, file: Path, now: datetime.datetime) -> None:
        self.file, self.now = file, now

    def resolve(self, raw: str, key: str) -> Path:
        return resolve(self.file, raw, key)

    def is_dir(self, path: Path) -> bool:
        return path.is_dir()

    def yaml_files(self, directory: Path) -> list[Path]:
        return sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])

    def read_bytes(self, key: str, path: Path) -> bytes:
        try:
            return path.read_bytes()
        except OSError as e:
            raise ConfigError(self.file, key, f"cannot read {path}: {e.strerror or e}") from None

    def read_text(self, key: str, path: Path) -> str:
        return self.read_bytes(key, path).decode("utf-8", "replace")

    def certificates(self, key: str, path: Path, what: str = "certificate") -> list[x509.Certificate]:
        """All PEM certificates in ``path`` (at least one), each within its validity period."""
        try:
            certs = x509.load_pem_x509_certificates(path.read_bytes())
        except (OSError, ValueError) as e:
            raise ConfigError(self.file, key, f"not a PEM {what}: {path} ({e})") from None
        for c in certs:
            if c.not_valid_after_utc < self.now:
                raise ConfigError(self.file, key, f"{what} {path} expired on {c.not_valid_after_utc:%Y-%m-%d}")
            if c.not_valid_before_utc > self.now:
                raise ConfigError(self.file, key,
                                  f"{what} {path} is not valid before {c.not_valid_before_utc:%Y-%m-%d}")
        return certs

    def private_key(self, key: str, path: Path) -> Any:
        try:
            return serialization.load_pem_private_key(path.read_bytes(), None)
        except (OSError, ValueError, TypeError) as e:
            raise ConfigError(self.file, key, f"not an unencrypted PEM private key: {path} ({e})") from None

    def public_key(self, key: str, path: Path) -> Any:
        try:
            return serialization.load_pem_public_key(path.read_bytes())
        except (OSError, ValueError) as e:
            raise ConfigError(self.file, key, f"not a PEM public key: {path} ({e})") from None

    def cert_and_key(self, cert_key: str, cert: Path, key_key: str, key: Path) -> tuple[x509.Certificate, Any]:
        leaf = self.certificates(cert_key, cert)[0]
        private = self.private_key(key_key, key)
        if _spki(leaf.public_key()) != _spki(private.public_key()):
            raise ConfigError(self.file, key_key, f"does not match {cert}")
        return leaf, private

    @staticmethod
    def is_p256(public_key: Any) -> bool:
        return isinstance(public_key, ec.EllipticCurvePublicKey) and isinstance(public_key.curve, ec.SECP256R1)


def _top(file: Path | str, allowed: tuple[str, ...], now: datetime.datetime | None) -> Section:
    file = Path(file)
    files = Files(file, now or _now())
    return Section(files, _read_yaml(file), "", allowed)


def load_sepp_config(file: Path | str, *, now: datetime.datetime | None = None) -> SeppConfig:
    """Load and validate one SEPP's YAML. Raises ConfigError (one line) on any problem."""
    return sepp_config(_top(file, SEPP_KEYS, now))


def load_ipx_config(file: Path | str, *, now: datetime.datetime | None = None) -> IpxConfig:
    """Load and validate one IPX's YAML. Raises ConfigError (one line) on any problem."""
    return ipx_config(_top(file, IPX_KEYS, now))
