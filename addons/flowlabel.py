"""Puts the label of an exchange (n32/label.py) in mitmproxy's own places: ``flow.comment``, a
mark on rejected messages, and mitmweb's flow list columns (``web_columns``) with the comment
column, so that the label shows in the list."""
from __future__ import annotations

from typing import Any

from mitmproxy import ctx, http

REJECTED_MARK = ":red_circle:"
COLUMNS = ["tls", "icon", "method", "path", "status", "comment", "size", "time"]


def apply(flow: http.HTTPFlow, text: str, rejected: bool) -> None:
    flow.comment = text
    if rejected:
        flow.marked = REJECTED_MARK
    # the link's protocol: a response made by us (answer, or what our own upstream client got)
    # is shown with the version of the connection it is sent on, not HTTP/1.1
    if flow.response is not None and flow.response.http_version != flow.request.http_version:
        flow.response.http_version = flow.request.http_version


class WebColumns:
    """Under mitmweb: the flow list shows the comment (the label) unless the user chose columns.
    ``name``: each script loading it gives its own (mitmproxy refuses two addons of one name)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def running(self) -> None:
        opts: Any = ctx.options
        if "web_columns" in opts and "comment" not in opts.web_columns \
                and opts.web_columns == opts.default("web_columns"):
            opts.update(web_columns=COLUMNS)
