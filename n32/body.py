"""JSON bodies: detection, parsing under explicit limits, rewriting with the right length.

Every JSON body the core reads (N32-c, N32-f, NF messages, JSON parts of ``multipart/related``)
goes through :func:`loads`, which enforces :class:`Limits` *before* the parser runs (hostile
input, issue 13 item 2): a body nested 10,000 deep must be a 400, not a ``RecursionError`` in
the parser or in any recursive walk after it. The limits come from the ``limits:`` section of
the SEPP configuration (docs/configuration.md).

The pre-scan runs in C (``bytes`` methods; a regular expression only when a string holds an
escaped quote) and is skipped when the counts of brackets and commas, strings included, are
already within the limits. Otherwise strings are measured and removed, then brackets and commas
are counted. With strings blanked and
whitespace removed, every comma separates two members of one container, so
``members = commas + non-empty containers`` exactly; nesting is only walked when there are
more containers than the depth limit, by removing innermost pairs at most ``depth`` times.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import math
import re
from typing import Any, Callable, TypeVar

import orjson

from . import wire
from .errors import N32Error

# A JSON string as sent (RFC 8259 §7), unrolled so that the regex engine runs without backtracking.
_STRING = re.compile(rb'"([^"\\]*(?:\\.[^"\\]*)*)"', re.DOTALL)
_KEEP = b"[]{},"
_DROP_ALL_BUT_STRUCTURE = bytes(b for b in range(256) if b not in _KEEP)


@dataclasses.dataclass(frozen=True)
class Limits:
    """Bounds on one JSON body (``limits:`` in the configuration)."""
    body: int = 4 * 1024 * 1024        # octets of an NF or N32-f message body
    n32c_body: int = 64 * 1024         # octets of an N32-c body (handshake messages are small)
    depth: int = 64                    # nesting of arrays and objects
    members: int = 100_000             # object members + array elements in one document, all levels
    string: int = 4 * 1024 * 1024      # octets of one string as sent (N32-f carries whole messages in aad)

    @functools.cached_property
    def few(self) -> int:
        """Brackets and commas that can exceed neither the depth nor the member limit."""
        return min(self.depth, self.members)


DEFAULT = Limits()


def _too(where: str, what: str, status: int = 400, cause: str = wire.INVALID_MSG_FORMAT) -> N32Error:
    return N32Error(status, cause, f"{where}: {what}", invalid_params=[{"param": where, "reason": what}])


def check(raw: bytes, limits: Limits = DEFAULT, where: str = "body", max_body: int | None = None) -> None:
    """N32Error 413 if ``raw`` is longer than the body limit, 400 ``INVALID_MSG_FORMAT`` if a
    string, the member count or the nesting exceeds its limit. Nothing is parsed."""
    size_limit = limits.body if max_body is None else max_body
    size = len(raw)
    if size > size_limit:
        raise _too(where, f"{size} octets exceed the limit of {size_limit}", 413, wire.PAYLOAD_TOO_LARGE)
    # Upper bounds first (brackets and commas inside strings counted too): most bodies stop here,
    # most of them (N32-f messages, their blocks, usual NF bodies) at the first, one pass in C.
    if size - len(raw.translate(None, b"[{,")) <= limits.few and size <= limits.string:
        return
    opens, commas = raw.count(b"[") + raw.count(b"{"), raw.count(b",")
    if opens <= limits.depth and commas + opens <= limits.members and len(raw) <= limits.string:
        return
    if b'\\"' in raw:    # escaped quotes: find the strings with the regular expression
        strings, outside = _STRING.findall(raw), _STRING.sub(b"", raw)
    else:                 # no escaped quote: strings are the odd pieces between quotes
        pieces = raw.split(b'"')
        strings, outside = pieces[1::2], b"".join(pieces[0::2])
    longest = max(map(len, strings), default=0)
    if longest > limits.string:
        raise _too(where, f"a string of {longest} octets exceeds the limit of {limits.string}")
    # Strings removed, only []{} and commas left: every comma separates two members of one
    # container, and a container is empty iff its closer follows at once ("[1]" -> "[]").
    structure = outside.translate(None, _DROP_ALL_BUT_STRUCTURE)
    containers = structure.count(b"[") + structure.count(b"{")
    members = structure.count(b",") + containers - structure.count(b"[]") - structure.count(b"{}")
    if members > limits.members:
        raise _too(where, f"more than {limits.members} members and elements")
    if containers > limits.depth:
        # Each round removes the innermost pairs: a balanced text of depth d empties in d rounds.
        nest = structure.replace(b",", b"").replace(b"{", b"[").replace(b"}", b"]")
        for _ in range(limits.depth):
            shorter = nest.replace(b"[]", b"")
            if shorter == nest:
                return
            nest = shorter
        if b"[]" in nest:
            raise _too(where, f"nested deeper than {limits.depth} levels")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (RFC 8259 §6)")


# ---------------------------------------------------------------- the codec
# orjson (C, about 10x the standard library for dumps, 3x for loads; docs/benchmarks.md), with the
# standard library wherever the two could differ, so that results are what ``json`` gives:
# numbers of 16 digits or more (orjson reads integers beyond 64 bits as floats), text that is
# not UTF-8 (a BOM, UTF-16), and anything orjson cannot write (integers beyond 64 bits).
# Unlike ``json``, a lone surrogate escape is refused (RFC 8259 §8.2: no UTF-8 can carry it on).
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_RUNS = bytes(0x30 if c in b"0123456789." else 0x20 for c in range(256))   # digits and "." -> "0", else " "
_RUN = b"0" * 16                          # 16 digits (or 15 and a point) in a row, strings included
_NUMBER_CHARS = frozenset(b"0123456789.-+eE \t\r\n")


def _long_number(data: bytes) -> bool:
    """Whether a number token has 16 integer digits or 15 fraction digits: such a run that
    starts a value (after "[", ":", "," or at the start of the text, maybe after a sign and
    spaces) rather than sitting inside a string. Runs are found with bytes.find (C)."""
    runs = data.translate(_RUNS)
    pos = runs.find(_RUN)
    while pos >= 0:
        i = pos
        while i > 0 and data[i - 1] in _NUMBER_CHARS:
            i -= 1
        if i == 0 or data[i - 1] in b"[:,":
            return True
        end = runs.find(b" ", pos)
        if end < 0:
            return False
        pos = runs.find(_RUN, end)
    return False


_BOM = b"\xef\xbb\xbf"


def _negative_exponent(out: bytes, pos: int | None = None) -> bool:
    """Whether ``out`` (compact JSON) may hold a number with a negative exponent: an "e-" after
    digits (and a point) that follow "[", ":", ",", "-" or the start. Inside strings this is rare
    (a UUID's "0e-" follows a letter); such a string only costs the slower writer. bytes.find
    runs in C; a regular expression tries every position and cost more than the writer itself.
    ``pos``: where the first "e-" is, if the caller looked already."""
    if pos is None:
        pos = out.find(b"e-")
    while pos >= 0:
        i = pos
        while i > 0 and out[i - 1] in _DIGITS_POINT:
            i -= 1
        if i < pos and (i == 0 or out[i - 1] in _BEFORE_NUMBER):
            return True
        pos = out.find(b"e-", pos + 2)
    return False


_DIGITS_POINT = frozenset(b"0123456789.")
_BEFORE_NUMBER = frozenset(b"[:,-")


def dumps(doc: Any) -> bytes:
    """Compact UTF-8 JSON (RFC 8259; no NaN/Infinity), as ``json.dumps(separators=(",", ":"),
    ensure_ascii=False)`` writes it."""
    try:
        out = orjson.dumps(doc)
    except TypeError:
        return _ENCODER.encode(doc).encode("utf-8")
    # orjson writes NaN and Infinity as null (the standard library refuses them), and numbers
    # below 1e-4 in another form ("1e-7", "0.00001" for "1e-07", "1e-05"): those go to json.
    # A negative exponent is always a digit then "e-"; "e-" alone is common in strings
    # ("ue-authentications", base64url), which would send most N32-f blocks to json for nothing.
    # bytes.find, not "in": ``bytes in bytes`` first tries the operand as an integer and pays
    # for the TypeError it raises (0.6 µs here, per test)
    if out.find(b"null") >= 0:
        _ENCODER.encode(doc)
    if out.find(b"0.0000") >= 0 or ((pos := out.find(b"e-")) >= 0 and _negative_exponent(out, pos)):
        return _ENCODER.encode(doc).encode("utf-8")
    return out


def _finite(text: str) -> float:
    value = float(text)
    if value in (math.inf, -math.inf):
        raise ValueError(f"number {text[:20]} is out of range")    # orjson refuses it too
    return value


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        dup = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise ValueError(f"duplicate member {dup[:40]!r}")  # RFC 7516 §4 / RFC 7515 §5.2: reject
    return obj


_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_no_constant, parse_float=_finite)
_PLAIN_DECODER = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite)


def _not_utf8(data: bytes) -> bool:
    """A BOM or UTF-16/32 (RFC 8259 §8.1 allows a parser to accept them): the standard library
    reads those. orjson refuses them all (a BOM; the zero octets any JSON text has in UTF-16/32),
    so this is asked only when orjson refused the text."""
    return 0 in data[:2] or data.startswith(_BOM)      # a zero octet (an int: see dumps)


def fast_loads(data: bytes) -> Any:
    """Parse JSON (duplicate names: the last wins, as ``json``); ``ValueError`` if it is not JSON.
    No limits: :func:`loads` checks them first."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:      # also every BOM and UTF-16/32 text (see _not_utf8)
        if _not_utf8(data) or _long_number(data):
            return _PLAIN_DECODER.decode(data.decode(json.detect_encoding(data), "surrogatepass"))
        raise
    return _as_json_reads(data, value)


def _as_json_reads(data: bytes, value: Any) -> Any:
    """``value`` (orjson's parse of UTF-8 ``data``), or json's parse where the two could differ."""
    # Text as orjson writes it (ours, most peers') has no number orjson reads otherwise than
    # json: an integer it read as a float would be written back with "." or "e". One write and
    # a comparison cost less than looking for long digit runs.
    try:
        if orjson.dumps(value) == data:
            return value
    except orjson.JSONEncodeError:
        pass
    if _long_number(data):
        return _PLAIN_DECODER.decode(data.decode(json.detect_encoding(data), "surrogatepass"))
    return value


def _small_tree(value: Any, limits: Limits) -> bool:
    """Whether ``value`` is an object of at most three levels and 32 members and elements in
    all, whose every leaf is a string, within ``limits`` (N32-f messages: base64url strings in
    reformattedData; the plaintext of most of them). Such a parse holds no number, so it is what
    json gives, and the pre-scan of the text could not have refused it."""
    if type(value) is not dict:
        return False
    members, depth, level = 0, 1, [value]
    while level:
        below = []
        for node in level:
            members += len(node)
            if members > 32:
                return False
            for v in (node.values() if type(node) is dict else node):
                if type(v) is not str:
                    if type(v) is not dict and type(v) is not list:
                        return False
                    below.append(v)
        if below:
            depth += 1
            if depth > 3:
                return False
        level = below
    return members <= limits.members and depth <= limits.depth


def parse_within(data: bytes, limits: Limits = DEFAULT, where: str = "body", max_body: int | None = None) -> Any:
    """:func:`fast_loads` after :func:`check` (N32Error for a limit, ValueError if not JSON),
    in the other order: orjson is safe on any input (it refuses nesting beyond 1024 levels), and
    a small object of strings (an N32-f message) needs neither the pre-scan nor the number check.
    Anything else gets both, and a parse error the pre-scan's verdict first."""
    if len(data) <= limits.string and len(data) <= (limits.body if max_body is None else max_body):
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
        else:
            if _small_tree(value, limits):
                return value
            check(data, limits, where, max_body)
            return _as_json_reads(data, value)
    check(data, limits, where, max_body)
    return fast_loads(data)


def unique_loads(data: bytes) -> Any:
    """Parse JSON refusing duplicate member names. What orjson parses and writes back byte for
    byte has none (a duplicate would be missing from the copy): our own blocks take that path;
    any other text (also a number orjson would read inexactly: it does not write it back the
    same) is parsed again by the standard library with a duplicate check."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:      # not JSON (a ValueError), or a BOM or UTF-16/32 text
        if not _not_utf8(data):
            raise
    else:
        if orjson.dumps(value) == data:
            return value
    return _DECODER.decode(data.decode(json.detect_encoding(data), "surrogatepass"))


def loads(raw: bytes | str, limits: Limits = DEFAULT, where: str = "body", *, unique: bool = False,
          max_body: int | None = None) -> Any:
    """Parse JSON after :func:`check`; N32Error 400 ``INVALID_MSG_FORMAT`` if it is not JSON
    (NaN/Infinity refused; with ``unique`` duplicate member names too, so that no later parser
    sees another value than we checked)."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else bytes(raw)
    if unique:
        check(data, limits, where, max_body)
    try:
        return unique_loads(data) if unique else parse_within(data, limits, where, max_body)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise _too(where, f"not valid JSON: {e}") from None


NOT_JSON: Any = object()   # what :func:`loads_or_not_json` returns for a body that is not JSON


def loads_or_not_json(raw: bytes, limits: Limits = DEFAULT, where: str = "body") -> Any:
    """As :func:`loads` (limits enforced, N32Error), but :data:`NOT_JSON` instead of an error
    when ``raw`` is within the limits and simply not JSON: for steps that rewrite JSON they find
    and leave anything else to the layer that owns the message."""
    check(raw, limits, where)
    try:
        return fast_loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return NOT_JSON


# The document :func:`read` parsed last, with the bytes object it came from (kept, so that its id
# is not reused) and whether duplicate member names were ruled out.
_LAST: list[Any] = [None, None, False]


def read(raw: bytes, limits: Limits = DEFAULT, where: str = "body", *, unique: bool = False,
         or_not_json: bool = False) -> Any:
    """:func:`loads` (with ``or_not_json``: :func:`loads_or_not_json`) for readers that never
    change the document they are given. On each hop the edge steps and the origin checks read
    the same NF body in turn: the document of the bytes object read last is handed out again
    instead of being parsed once per step. Limits are checked on every call."""
    check(raw, limits, where)
    last_raw, last_doc, last_unique = _LAST
    if raw is last_raw:
        if last_unique or not unique:
            return last_doc
        try:        # as unique_loads decides: written back byte for byte, no duplicate was dropped
            if not _not_utf8(raw) and orjson.dumps(last_doc) == raw:
                _LAST[2] = True
                return last_doc
        except TypeError:
            pass
    try:
        doc = unique_loads(raw) if unique else fast_loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        if or_not_json:
            return NOT_JSON
        raise _too(where, f"not valid JSON: {e}") from None
    _LAST[:] = [raw, doc, unique]
    return doc


def may_contain(raw: bytes, marks: re.Pattern[bytes]) -> bool:
    """Whether the JSON text ``raw`` may hold a match of ``marks`` (False: it certainly holds
    none). A UTF-8 JSON text spells every member name and string value literally unless it
    uses an escape, which starts with a backslash; a UTF-16/32 text (which the parsers accept,
    RFC 8259 §8.1) has zero octets. Without either, one search of the octets answers for the
    whole document, so that a step that only changes certain members or URIs skips the parse
    and the walk of a message that has none (most messages)."""
    return 0x5C in raw or 0 in raw or marks.search(raw) is not None


def member_marks(names: Any) -> re.Pattern[bytes] | None:
    """A pattern for :func:`may_contain` matching the member names ``names`` as a JSON text
    writes them (``"name"``); None if one of them cannot be looked for that way (``*``, or a
    character JSON always escapes)."""
    names = list(names)
    if not names or any(n == "*" or any(c in n for c in '"\\') or any(ord(c) < 0x20 for c in n) for n in names):
        return None
    return re.compile(b'"(?:' + b"|".join(re.escape(n.encode()) for n in names) + b')"')


def json_type(msg: Any) -> bool:
    """True if ``msg`` (HttpRequest/HttpResponse) declares a JSON body (``application/json``, ``*+json``)."""
    return wire.is_json(msg.header(wire.CONTENT_TYPE))


def document(msg: Any, limits: Limits = DEFAULT, where: str = "body") -> Any:
    """The JSON document of ``msg``; :data:`NOT_JSON` when it has no body, does not declare
    JSON or is not JSON. N32Error when it exceeds a limit."""
    if not msg.body or not json_type(msg):
        return NOT_JSON
    return read(msg.body, limits, where, or_not_json=True)


M = TypeVar("M")


def with_length(headers: list[tuple[str, str]], body: bytes) -> list[tuple[str, str]]:
    """``headers`` with ``content-length`` (if present) set to the length of ``body``."""
    return [(k, str(len(body)) if k == wire.CONTENT_LENGTH else v) for k, v in headers]


def replace(msg: M, body: bytes) -> M:
    """``msg`` with ``body`` and its ``content-length`` kept right."""
    return msg.evolve(body=body, headers=with_length(msg.headers, body))  # type: ignore[attr-defined]


def rewrite(msg: M, fn: Callable[[Any], Any], limits: Limits = DEFAULT, objects_only: bool = True,
            marks: re.Pattern[bytes] | None = None) -> M:
    """``msg`` with its JSON body replaced by ``fn(doc)``; ``msg`` itself when the body is not
    JSON (or not an object, with ``objects_only``) or nothing changed. N32Error when the body
    exceeds a limit. ``marks``: ``fn`` changes nothing in a document without a match of it
    (:func:`may_contain`), so such a body is not parsed."""
    if marks is not None and msg.body and json_type(msg):    # type: ignore[attr-defined]
        check(msg.body, limits)                                 # type: ignore[attr-defined]
        if not may_contain(msg.body, marks):                    # type: ignore[attr-defined]
            return msg
    doc = document(msg, limits)
    if doc is NOT_JSON or (objects_only and not isinstance(doc, dict)):
        return msg
    new = fn(doc)
    if new == doc:
        return msg
    return replace(msg, dumps(new))
