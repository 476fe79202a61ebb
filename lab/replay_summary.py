"""mitmproxy addon: a summary of a client replay (``mitmdump -n -C FLOWS -s lab/replay_summary.py``).

mitmdump prints each replayed flow but no total; this prints, when mitmdump ends (it does once
the replay is over), how many flows were answered per status class and each one that was not 2xx.
"""
from __future__ import annotations

from mitmproxy import http


class ReplaySummary:
    def __init__(self) -> None:
        self.flows: list[http.HTTPFlow] = []

    def _seen(self, flow: http.HTTPFlow) -> None:
        if flow.is_replay:
            self.flows.append(flow)

    response = error = _seen

    def done(self) -> None:
        classes: dict[str, int] = {}
        bad = []
        for f in self.flows:
            status = f.response.status_code if f.response else 0
            key = f"{status // 100}xx" if status else "no answer"
            classes[key] = classes.get(key, 0) + 1
            if not 200 <= status < 300:
                cause = ""
                if f.response is not None and "json" in f.response.headers.get("content-type", ""):
                    try:
                        cause = f" {f.response.json().get('cause', '')}"
                    except ValueError:
                        pass
                bad.append(f"  {f.request.method} {f.request.path} -> "
                           f"{status or (f.error.msg if f.error else '?')}{cause}")
        summary = ", ".join(f"{n} {k}" for k, n in sorted(classes.items()))
        # printed, not logged: it is the command's result, shown with -q too
        print(f"replay: {len(self.flows)} flow(s): {summary}" + "".join("\n" + b for b in bad), flush=True)


addons = [ReplaySummary()]
