"""Validation of JSON bodies against the shipped 3GPP OpenAPI files (n32/openapi/).

OpenAPI 3.0 schemas are used as JSON Schema (``nullable`` mapped to a ``null`` type); the
``$ref``s across files (``TS29571_CommonData.yaml#/components/schemas/PlmnId``) are resolved by
the ``referencing`` registry; references to files we do not ship resolve to ``{}`` (anything).
Validators are compiled once per schema.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from .errors import N32Error

OPENAPI_DIR = Path(__file__).parent / "openapi"


def _convert(node: Any) -> Any:
    if isinstance(node, dict):
        out = {k: _convert(v) for k, v in node.items() if k not in ("nullable", "example", "discriminator")}
        if node.get("nullable") is True:
            if "type" in out:
                t = out["type"]
                out["type"] = [*t, "null"] if isinstance(t, list) else [t, "null"]
            else:
                out = {"anyOf": [out, {"type": "null"}]}
        return out
    if isinstance(node, list):
        return [_convert(v) for v in node]
    return node


@lru_cache(maxsize=None)
def _load(name: str, search: tuple[Path, ...]) -> dict:
    for d in search:
        p = d / name
        if p.exists():
            return _convert(yaml.safe_load(p.read_text()))
    return {}


@lru_cache(maxsize=None)
def _registry(search: tuple[Path, ...]) -> Registry:
    def retrieve(uri: str) -> Resource:
        return Resource(_load(uri.split("#")[0], search), specification=DRAFT202012)
    return Registry(retrieve=retrieve)  # type: ignore[call-arg]


@lru_cache(maxsize=None)
def _validator(api_file: str, schema_name: str, search: tuple[Path, ...]) -> Draft202012Validator:
    if schema_name not in _load(api_file, search).get("components", {}).get("schemas", {}):
        raise KeyError(f"{schema_name} not in {api_file}")
    return Draft202012Validator({"$ref": f"{api_file}#/components/schemas/{schema_name}"},
                                registry=_registry(search))


def validate(schema_name: str, body: Any, api: str = "TS29573_N32_Handshake",
             search_path: tuple[Path, ...] = (OPENAPI_DIR,)) -> None:
    """Raise N32Error 400 (TS 29.500 causes) listing every schema violation as invalidParams."""
    errors = sorted(_validator(f"{api}.yaml", schema_name, tuple(search_path)).iter_errors(body),
                    key=lambda e: list(map(str, e.absolute_path)))
    if not errors:
        return
    params = []
    missing = False
    for e in errors[:10]:
        pointer = "/" + "/".join(str(p) for p in e.absolute_path)
        if e.validator == "required":
            missing = True
        params.append({"param": pointer, "reason": e.message[:200]})
    raise N32Error(400, "MANDATORY_IE_MISSING" if missing else "INVALID_MSG_FORMAT",
                   f"{schema_name} does not match TS 29.573: {params[0]['param']}: {params[0]['reason']}",
                   invalid_params=params)
