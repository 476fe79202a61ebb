"""mitmproxy addon for lab processes: flush ``save_stream_file`` after each flow.

mitmproxy buffers the stream file until it stops; a ``KEEP=1`` lab reports (and lets people
open the flows) while its processes still run, so each finished flow is pushed to disk.
"""
from __future__ import annotations

from mitmproxy import ctx


class FlowFlush:
    def _flush(self, _flow: object = None) -> None:
        save = ctx.master.addons.get("save")
        stream = getattr(save, "stream", None)
        if stream is not None:
            stream.fo.flush()

    response = error = _flush


addons = [FlowFlush()]
