"""Validation of JSON bodies against 3GPP OpenAPI files (the shipped ones in n32/openapi/).

    validate("SecNegotiateReqData", body)                                  # N32-c (default API)
    validate("N32fReformattedReqMsg", body, api="TS29573_JOSEProtectedMessageForwarding")
    validate_any("TS29509_Nausf_UEAuthentication", "AuthenticationInfo", body,
                 search_path=[Path("lab/openapi")])                        # any other API

A failure raises ``N32Error(400, cause, detail, invalid_params=[{"param": <JSON pointer>,
"reason": ...}, ...])`` with the cause of TS 29.500 Table 5.2.7.2-1: ``MANDATORY_IE_MISSING``
when a required member is missing (its pointer names the missing member); else
``MANDATORY_IE_INCORRECT`` or ``OPTIONAL_IE_INCORRECT`` for a wrongly typed or malformed member
(``sender: 42``, ``n32fContextId: "abc"``), after whether the top-level member it is in is
required by the schema; ``INVALID_MSG_FORMAT`` when the body itself is not what the schema
describes (e.g. not an object). At most ``MAX_PARAMS`` invalid parameters are listed.

How the OpenAPI 3.0 files become JSON Schema (draft 2020-12):

* each YAML file is loaded once (lazily, on first use) and registered in a ``referencing``
  registry under its file name, so ``TS29571_CommonData.yaml#/components/schemas/PlmnId`` and
  ``#/components/schemas/X`` resolve as written;
* ``nullable: true`` adds ``"null"`` to ``type`` (and ``None`` to ``enum``); next to
  ``$ref``/``allOf``/``anyOf``/``oneOf``/``not`` it becomes ``anyOf: [<schema>, {type: null}]``;
* OpenAPI 3.0 boolean ``exclusiveMinimum``/``exclusiveMaximum`` become the numeric form;
  ``example``, ``discriminator``, ``xml``, ``externalDocs`` are dropped (annotations only);
  ``format`` is not asserted (3GPP formats such as ``int32`` or ``byte`` are annotations here);
* a ``$ref`` to a file not found on the search path, or to a pointer that does not exist,
  becomes ``{}`` (anything is valid there): NFManagement refers to files we do not ship, for
  schemas none of our APIs reach (n32/openapi/SOURCE.md).

Validators are compiled once per (search path, file, schema name) and cached.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import unquote

import jsonpointer
import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from . import pointer, wire
from .errors import N32Error

OPENAPI_DIR = Path(__file__).parent / "openapi"
DEFAULT_API = "TS29573_N32_Handshake"
MAX_PARAMS = 10
MAX_REASON = 200

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DROP = frozenset({"nullable", "example", "discriminator", "xml", "externalDocs"})
_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_SCHEMA_ONE = ("items", "additionalProperties", "not", "contains", "propertyNames", "if", "then", "else",
               "unevaluatedProperties", "unevaluatedItems", "additionalItems")
_COMBINERS = ("$ref", "allOf", "anyOf", "oneOf", "not")


def _file_name(api: str) -> str:
    return api if api.endswith((".yaml", ".yml", ".json")) else f"{api}.yaml"


class _Refs:
    """Collects the ``$ref`` nodes of one file while it is converted."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.nodes: list[dict] = []
        self.files: set[str] = set()

    def add(self, node: dict) -> None:
        ref = node["$ref"]
        if isinstance(ref, str):
            self.nodes.append(node)
            target = ref.split("#", 1)[0]
            if target:
                self.files.add(target)


def _schema(node: Any, refs: _Refs) -> Any:
    """One OpenAPI 3.0 Schema Object -> JSON Schema 2020-12."""
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for k, v in node.items():
        if k in _DROP:
            continue
        if k in _SCHEMA_MAPS and isinstance(v, dict):
            out[k] = {name: _schema(s, refs) for name, s in v.items()}
        elif k in _SCHEMA_LISTS and isinstance(v, list):
            out[k] = [_schema(s, refs) for s in v]
        elif k in _SCHEMA_ONE:
            out[k] = [_schema(s, refs) for s in v] if isinstance(v, list) else _schema(v, refs)
        else:
            out[k] = v
    for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(out.get(bound), bool):
            if out.pop(bound) and limit in out:
                out[bound] = out.pop(limit)
    if "$ref" in out:
        refs.add(out)
    if node.get("nullable") is True:
        if any(k in out for k in _COMBINERS) or "type" not in out:
            out = {"anyOf": [out, {"type": "null"}]}  # the $ref node (if any) stays registered
        else:
            t = out["type"]
            out["type"] = [*t, "null"] if isinstance(t, list) else [t, "null"]
            if isinstance(out.get("enum"), list) and None not in out["enum"]:
                out["enum"] = [*out["enum"], None]
    return out


def _document(node: Any, refs: _Refs) -> Any:
    """Walk an OpenAPI document, converting every Schema Object (``schema:``, ``schemas:``)."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k == "schema":
                out[k] = _schema(v, refs)
            elif k == "schemas" and isinstance(v, dict):
                out[k] = {name: _schema(s, refs) for name, s in v.items()}
            else:
                out[k] = _document(v, refs)
        return out
    if isinstance(node, list):
        return [_document(v, refs) for v in node]
    return node


def _pointer(doc: Any, fragment: str) -> bool:
    """True if the JSON pointer ``fragment`` (URI-encoded) exists in ``doc``."""
    return pointer.exists(doc, unquote(fragment))  # anchors (no leading "/"): 3GPP files have none


class _Catalog:
    """The OpenAPI files of one search path: converted documents, registry, validators."""

    def __init__(self, search: tuple[Path, ...]) -> None:
        self.search = search
        self.docs: dict[str, Any] = {}
        self.missing: set[str] = set()
        self.registry: Registry = Registry()
        self.validators: dict[tuple[str, str], Draft202012Validator] = {}
        self.lock = threading.RLock()

    def _find(self, name: str) -> Path | None:
        if "/" in name or "\\" in name or name.startswith("."):
            return None  # file names only: never leave the search path
        for d in self.search:
            p = Path(d) / name
            if p.is_file():
                return p
        return None

    def load(self, name: str) -> Any:
        """The converted document ``name`` (with every file it refers to), or None if absent."""
        with self.lock:
            if name in self.docs or name in self.missing:
                return self.docs.get(name)
            new: dict[str, _Refs] = {}
            todo = [name]
            while todo:
                file = todo.pop()
                if file in self.docs or file in self.missing or file in new:
                    continue
                path = self._find(file)
                if path is None:
                    self.missing.add(file)
                    continue
                refs = _Refs(file)
                with path.open("rb") as f:
                    raw = yaml.load(f, Loader=_Loader)  # noqa: S506 (a safe loader)
                self.docs[file] = _document(raw, refs)
                new[file] = refs
                todo += sorted(refs.files)
            for file, refs in new.items():  # unknown files / dangling pointers: anything goes
                for node in refs.nodes:
                    target, _, fragment = node["$ref"].partition("#")
                    doc = self.docs.get(target or file)
                    if doc is None or not _pointer(doc, fragment):
                        del node["$ref"]
            if new:
                self.registry = self.registry.with_resources(
                    (file, Resource(self.docs[file], specification=DRAFT202012)) for file in new)
            return self.docs.get(name)

    def validator(self, api_file: str, schema_name: str) -> Draft202012Validator:
        key = (api_file, schema_name)
        v = self.validators.get(key)
        if v is not None:
            return v
        with self.lock:
            doc = self.load(api_file)
            if doc is None:
                raise KeyError(f"OpenAPI file {api_file} not found in {[str(d) for d in self.search]}")
            schemas = (doc.get("components") or {}).get("schemas") or {}
            if schema_name not in schemas:
                raise KeyError(f"schema {schema_name} not in {api_file}")
            ref = f"{api_file}#/components/schemas/{schema_name.replace('~', '~0').replace('/', '~1')}"
            v = Draft202012Validator({"$ref": ref}, registry=self.registry)
            self.validators[key] = v
            return v


_catalogs: dict[tuple[Path, ...], _Catalog] = {}
_catalogs_lock = threading.Lock()


def _catalog(search_path: Iterable[Path | str] | None) -> _Catalog:
    dirs = tuple(Path(d) for d in (search_path or ()))
    if OPENAPI_DIR not in dirs:
        dirs += (OPENAPI_DIR,)
    cat = _catalogs.get(dirs)
    if cat is None:
        with _catalogs_lock:
            cat = _catalogs.setdefault(dirs, _Catalog(dirs))
    return cat


_ptr = pointer.join


def _reason(e: ValidationError) -> str:
    msg = e.message
    if e.validator in ("anyOf", "oneOf") and e.context:
        deeper = best_match(e.context)
        if deeper is not None:
            where = _ptr(deeper.absolute_path)
            msg += f" ({where + ': ' if where != _ptr(e.absolute_path) else ''}{deeper.message})"
    return msg if len(msg) <= MAX_REASON else msg[:MAX_REASON - 3] + "..."


def _required(cat: _Catalog, file: str, node: Any, depth: int = 0) -> set[str]:
    """Member names a schema node requires at its own level: its ``required``, and those of its
    ``allOf`` members and ``$ref`` targets. A member required in only some ``anyOf``/``oneOf``
    branch is conditional and counts as optional here."""
    if not isinstance(node, dict) or depth > 16:
        return set()
    out = set(node.get("required") or ())
    for sub in node.get("allOf") or ():
        out |= _required(cat, file, sub, depth + 1)
    ref = node.get("$ref")
    if isinstance(ref, str):
        target, _, fragment = ref.partition("#")
        doc = cat.load(target or file)
        if doc is not None and pointer.exists(doc, unquote(fragment)):
            out |= _required(cat, target or file, jsonpointer.resolve_pointer(doc, unquote(fragment)), depth + 1)
    return out


def _cause(cat: _Catalog, api_file: str, schema_name: str, body: Any, paths: list[list[Any]], missing: bool) -> str:
    """TS 29.500 Table 5.2.7.2-1 for a body that does not match its schema: a body that is not
    the right JSON type at all is ``INVALID_MSG_FORMAT``; a missing mandatory IE
    ``MANDATORY_IE_MISSING``; else the wrongly typed or malformed IE (the top-level member the
    first violation is in) is ``MANDATORY_IE_INCORRECT`` or ``OPTIONAL_IE_INCORRECT`` per the
    schema's ``required``."""
    if any(not p for p in paths) and not missing:
        return wire.INVALID_MSG_FORMAT
    if missing:
        return wire.MANDATORY_IE_MISSING
    doc = cat.load(api_file) or {}
    node = ((doc.get("components") or {}).get("schemas") or {}).get(schema_name)
    required = _required(cat, api_file, node)
    if any(p[0] in required for p in paths):
        return wire.MANDATORY_IE_INCORRECT
    return wire.OPTIONAL_IE_INCORRECT


def _violations(schema_name: str, body: Any, api: str,
                search_path: Iterable[Path | str] | None) -> tuple[list[dict[str, str]], bool, str]:
    cat = _catalog(search_path)
    validator = cat.validator(_file_name(api), schema_name)
    params: list[tuple[str, str]] = []
    paths: list[list[Any]] = []
    missing = False
    for e in validator.iter_errors(body):
        if e.validator == "required" and isinstance(e.instance, dict) and isinstance(e.validator_value, list):
            missing = True
            for name in e.validator_value:
                if name not in e.instance:
                    params.append((_ptr([*e.absolute_path, name]), f"{name!r} is a required property"))
        else:
            params.append((_ptr(e.absolute_path), _reason(e)))
            paths.append(list(e.absolute_path))
    # jsonschema reports "required" once per missing member, each with the whole list: dedupe
    unique = sorted(dict.fromkeys(params), key=lambda p: p[0])
    cause = _cause(cat, _file_name(api), schema_name, body, paths, missing) if unique else ""
    return [{"param": p, "reason": r} for p, r in unique], missing, cause


def errors(schema_name: str, body: Any, api: str = DEFAULT_API,
           search_path: Iterable[Path | str] | None = None) -> tuple[list[dict[str, str]], bool]:
    """Every violation as ``InvalidParam`` dicts (sorted by pointer) and whether one of them is a
    missing required member. ``([], False)`` means valid."""
    params, missing, _ = _violations(schema_name, body, api, search_path)
    return params, missing


def validate_any(api_file: str, schema_name: str, body: Any,
                 search_path: Iterable[Path | str] | None = None) -> None:
    """Validate ``body`` against ``components.schemas.<schema_name>`` of ``api_file`` (name with or
    without ``.yaml``), looked up in ``search_path`` in order and then in n32/openapi/.

    Raises ``N32Error`` 400 (see the module docstring); ``KeyError`` if the file or schema does not
    exist (a programming error, not a message error).
    """
    params, _, cause = _violations(schema_name, body, api_file, search_path)
    if not params:
        return
    first = params[0]
    more = f" (and {len(params) - 1} more)" if len(params) > 1 else ""
    raise N32Error(400, cause,
                   f"{schema_name} ({_file_name(api_file).rsplit('.', 1)[0]}): "
                   f"{first['param'] or '(body)'}: {first['reason']}{more}",
                   invalid_params=params[:MAX_PARAMS])


def validate(schema_name: str, body: Any, api: str = DEFAULT_API,
             search_path: Iterable[Path | str] | None = None) -> None:
    """Validate ``body`` against a schema of one of the shipped APIs (default: N32 Handshake)."""
    validate_any(api, schema_name, body, search_path)
