"""JSON pointers (RFC 6901), on top of ``jsonpointer``: the one place that splits, joins and
follows them. Patterns may use ``*`` for any one member name or array index (our policy
notation, TS 33.501 §13.2.3.2 gives IE locations as JSON pointers)."""
from __future__ import annotations

import functools
from typing import Any, Iterable, Iterator

import jsonpointer

WILDCARD = "*"


def tokens(pointer: str) -> list[str]:
    """The unescaped reference tokens; ``ValueError`` if ``pointer`` is not a JSON pointer."""
    return list(_tokens(pointer))


@functools.lru_cache(maxsize=1024)
def _tokens(pointer: str) -> tuple[str, ...]:
    # the same few patterns (policies, callback members) are split for every message
    try:
        return tuple(jsonpointer.JsonPointer(pointer).parts)
    except (jsonpointer.JsonPointerException, TypeError, AttributeError) as e:
        raise ValueError(f"not a JSON pointer: {pointer!r} ({e})") from None


def escape(token: Any) -> str:
    return jsonpointer.escape(str(token))


def join(parts: Iterable[Any]) -> str:
    """The pointer of reference tokens (ints for array indices are fine)."""
    return "".join("/" + escape(t) for t in parts)


def child(pointer: str, token: Any) -> str:
    return f"{pointer}/{escape(token)}"


def _index(node: list, token: str) -> int | None:
    """An array index as RFC 6901 §4 writes it (no leading zeros), if within ``node``."""
    if token.isdigit() and (token == "0" or not token.startswith("0")) and int(token) < len(node):
        return int(token)
    return None


def exists(doc: Any, pointer: str) -> bool:
    """True if ``pointer`` names a member or element present in ``doc`` (False if malformed)."""
    try:
        parts = tokens(pointer)
    except ValueError:
        return False
    node = doc
    for tok in parts:
        if isinstance(node, dict) and tok in node:
            node = node[tok]
        elif isinstance(node, list) and (i := _index(node, tok)) is not None:
            node = node[i]
        else:
            return False
    return True


def walk(doc: Any, pattern: str) -> Iterator[tuple[Any, Any, str]]:
    """Existing members matched by ``pattern`` (``*`` = any one key or index), as
    ``(container, key, pointer)``; absent members are skipped (they are optional IEs).
    ``ValueError`` if ``pattern`` is not a JSON pointer."""
    toks = _tokens(pattern)
    if not toks:
        return

    def step(node: Any, i: int, path: str) -> Iterator[tuple[Any, Any, str]]:
        tok = toks[i]
        if isinstance(node, dict):
            keys: Iterable[Any] = list(node) if tok == WILDCARD else ([tok] if tok in node else [])
        elif isinstance(node, list):
            idx = None if tok == WILDCARD else _index(node, tok)
            keys = range(len(node)) if tok == WILDCARD else ([] if idx is None else [idx])
        else:
            return
        for k in keys:
            p = child(path, k)
            if i == len(toks) - 1:
                yield node, k, p
            else:
                yield from step(node[k], i + 1, p)

    yield from step(doc, 0, "")
