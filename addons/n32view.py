"""mitmweb content view "N32-f PRINS": N32-f messages decrypted with a key log.

    mitmweb -s addons/n32view.py --set n32view_keylog=lab/out/sepp-v.keylog.jsonl -r lab/out/sepp-v.flows
    mitmweb -s addons/sepp.py -s addons/n32view.py --set sepp_config=lab/sepp-v.yaml --set n32_keylog=FILE

For an ``n32f-process`` body (JSON with ``reformattedData``, request or response) the view shows
the message as rebuilt from the clear block with every encrypted IE decrypted in place and
marked, the metaData and the flow's N32 metadata, the JWE integrity result, and each IPX
modification with its signer, verification result and patch. For a plain NF message whose
N32-f form the SEPP kept on the flow's :class:`n32.exchange.Exchange` (``request_jwe`` / ``response_jwe``)
it shows the message followed by that form under "as carried on N32-f".

Options: ``n32view_keylog`` (key log path, may hold lines of several SEPPs; reread when it
changes; default: the SEPP addon's ``n32_keylog`` when that is loaded) and
``n32view_ipx_keys`` (PEM files with IPX public keys or certificates). The session key of each
message is chosen as in TS 33.501 §13.2.4.4.1 from the receiver's context ID and the direction
(see n32/inspect.py).
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

from mitmproxy import contentviews, ctx, http

from addons import decode, flowlabel, msgview
from n32 import exchange, keylog
from n32.errors import N32Error

VIEW_NAME = "N32-f PRINS"
NF_HEADING = "NF message"
N32F_HEADING = "N32-f form, clear part as carried"
FLOW_METADATA_SHOWN = ("role", "mode", "peer", "context", "peerContextId", "messageId", "encrypted",
                       "encryptedResponse", "status", "error")
T = TypeVar("T")


class FileCache(Generic[T]):
    """The parsed content of a set of files, parsed again only when one of them changes (mtime, size)."""

    def __init__(self, parse: Callable[[list[str]], T], empty: T) -> None:
        self._parse, self._empty = parse, empty
        self._stamp: tuple | None = None
        self._value: T = empty
        self.error: str | None = None

    def get(self, paths: Sequence[str]) -> T:
        try:
            stamp = tuple((p, os.stat(p).st_mtime_ns, os.stat(p).st_size) for p in paths)
        except OSError as e:
            self._stamp, self._value, self.error = None, self._empty, f"{e.filename}: {e.strerror}"
            return self._value
        if stamp != self._stamp:
            try:
                self._value, self.error = self._parse(list(paths)), None
            except (OSError, ValueError) as e:
                self._value, self.error = self._empty, str(e)
            self._stamp = stamp
        return self._value


def _read_keylogs(paths: list[str]) -> list[dict]:
    return [r for p in paths for r in keylog.read_keylog(Path(p))]


class N32fView(contentviews.Contentview):
    """Content view for N32-f PRINS messages; see the module docstring."""

    name = VIEW_NAME

    def __init__(self, keylog_path: str | None = None, ipx_key_paths: Sequence[str] = ()) -> None:
        self.keylog_path = keylog_path
        self.ipx_key_paths = list(ipx_key_paths)
        self._records: FileCache[list[dict]] = FileCache(_read_keylogs, [])
        self._ipx_keys: FileCache[list] = FileCache(decode.load_ipx_keys, [])

    # ------------------------------------------------------------------ mitmproxy Contentview API
    def render_priority(self, data: bytes, metadata: contentviews.Metadata) -> float:
        if decode.parse_n32f(data) is not None:
            return 2  # above the JSON view (1)
        return 1.5 if _counterpart(metadata) is not None else -1

    def prettify(self, data: bytes, metadata: contentviews.Metadata) -> str:
        body = decode.parse_n32f(data)
        if body is not None:
            return self.render(body, metadata.flow)
        counterpart = _counterpart(metadata)
        if counterpart is None:
            raise ValueError("not an N32-f message, and the flow keeps no N32-f form of it")
        return self.render(counterpart, metadata.flow)

    # ------------------------------------------------------------------ rendering
    def render(self, body: dict, flow: Any = None) -> str:
        """The NF's message rebuilt from the N32-f message (decrypted, encrypted IEs marked), the
        N32-f form as carried (the same IEs marked), integrity and IPX modifications, key source."""
        records = self._records.get([self.keylog_path]) if self.keylog_path else []
        ipx_keys = self._ipx_keys.get(self.ipx_key_paths) if self.ipx_key_paths else []
        try:
            lines = _examined_lines(decode.examine(body, records, ipx_keys))
        except N32Error as e:  # the clear part itself does not decode
            lines = [f"malformed N32-f message: {e.detail}", "", json.dumps(body, indent=2, ensure_ascii=False)]
        # the trailer is not wrapped: file paths and the metadata JSON stay whole for copying
        lines = [msgview.wrap("\n".join(lines)), "", msgview.heading("where this comes from")]
        ex = exchange.of_metadata(getattr(flow, "metadata", None))
        if ex is not None:
            saved = ex.to_dict()
            shown = {k: saved[k] for k in FLOW_METADATA_SHOWN if k in saved}
            lines.append("flow N32 metadata: " + json.dumps(shown, ensure_ascii=False))
        if not self.keylog_path:
            lines.append("key log: none (set n32view_keylog)")
        elif self._records.error:
            lines.append(f"key log: {self._records.error}")
        else:
            lines.append(f"key log: {self.keylog_path} ({len(records)} context(s))")
        if self.ipx_key_paths and self._ipx_keys.error:
            lines.append(f"IPX keys: {self._ipx_keys.error}")
        return "\n".join(lines)


def _examined_lines(ex: decode.Examined) -> list[str]:
    d = ex.decoded
    meta = d.block.get("metaData") if isinstance(d.block.get("metaData"), dict) else {}
    lines = [f"N32-f {d.kind}  messageId={meta.get('messageId')}  n32fContextId={meta.get('n32fContextId')}"
             f"  authorizedIpxId={meta.get('authorizedIpxId')}",
             f"key: {d.key_label or '-'}  " + ("decrypted" if d.decrypted else f"NOT decrypted ({d.error})"),
             f"integrity (JWE AEAD, TS 33.501 §13.2.4.4): {ex.integrity}"]
    # the IPX modifications first: short, and what an IPX flow is about
    if ex.modifications:
        lines += ["", msgview.heading("IPX modifications (RFC 6902 patches of the clear part, in order)")]
    for m in ex.modifications:
        lines += [f"IPX modification {m.index + 1}: signer {m.signer}: {m.verification}",
                  f"  patch: {json.dumps(m.operations, ensure_ascii=False)}"]
    lines += ["", msgview.heading(f"{NF_HEADING} ({msgview.MARK} = carried encrypted on N32-f)")]
    restored = msgview.restored_lines(d)
    lines += restored if restored is not None else ["(not rebuilt: no key for this context)"]
    lines += ["", msgview.heading(f"{N32F_HEADING} ({msgview.MARK}#n = encrypted value n)")]
    lines += msgview.n32f_form_lines(d)
    if d.record is not None:
        lines += ["", decode.record_summary(d.record)]
    return lines


def _counterpart(metadata: contentviews.Metadata) -> dict | None:
    """The N32-f form the SEPP addon kept for the plain NF message being shown, if any."""
    flow, msg = metadata.flow, metadata.http_message
    if not isinstance(flow, http.HTTPFlow) or msg is None:
        return None
    ex = exchange.of_metadata(flow.metadata)
    if ex is None:
        return None
    if msg is flow.request:
        body = ex.request_jwe
    elif msg is flow.response:
        body = ex.response_jwe
    else:
        return None
    return body if decode.is_n32f(body) else None


class N32ViewOptions:
    """Options of the view; mitmproxy calls ``configure`` on every option change."""

    def __init__(self, view: N32fView) -> None:
        self.view = view

    def load(self, loader: Any) -> None:
        loader.add_option("n32view_keylog", str | None, None,
                          "N32 key log (JSON lines) to decrypt N32-f messages in the N32-f PRINS view; "
                          "default: n32_keylog of the SEPP addon.")
        loader.add_option("n32view_ipx_keys", Sequence[str], [],
                          "PEM files with IPX public keys or certificates to verify IPX modifications.")

    def configure(self, updated: set[str]) -> None:
        opts = ctx.options
        self.view.keylog_path = opts.n32view_keylog or (opts.n32_keylog if "n32_keylog" in opts else None)
        self.view.ipx_key_paths = list(opts.n32view_ipx_keys)


view = N32fView()
contentviews.add(view)
addons = [N32ViewOptions(view), flowlabel.WebColumns("n32view-web-columns")]
