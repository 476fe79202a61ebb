"""``lab/out/report.html``: the lab run as a page to look at, viewable without a network.

Everything is inline (CSS, SVG charts, PNG plots as base64): the per-API table of report.json,
a message sequence chart of the N32-c handshake (TS 29.573 §5.2.2) and of one UE's steps across
every hop (visited NF -> cSEPP -> IPXs -> pSEPP -> home NF, with the IEs encrypted and the IPX
patches verified, TS 33.501 §13.2), and latency plots per API and per hop. Read from the flow
files the SEPPs saved (the exchange each SEPP recorded on a flow, by its saved wire names).
"""
from __future__ import annotations

import base64
import html
import io
import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from lab.topology import HOME, IPXS, VISITED


@dataclass
class Flow:
    method: str
    path: str
    start: float
    end: float
    status: int
    meta: dict[str, Any]
    request_json: Any = None
    response_json: Any = None
    ipx: list[str] = field(default_factory=list)

    @property
    def ms(self) -> float:
        return (self.end - self.start) * 1000.0


def _json(content: bytes | None) -> Any:
    try:
        return json.loads(content or b"")
    except ValueError:
        return None


def read_flows(path: Path) -> list[Flow]:
    from mitmproxy import io as mio

    if not path.exists():
        return []
    flows = []
    with open(path, "rb") as f:
        for fl in mio.FlowReader(f).stream():
            rq, rs = getattr(fl, "request", None), getattr(fl, "response", None)
            if rq is None:
                continue
            meta = (getattr(fl, "metadata", {}) or {}).get("n32")
            meta = meta if isinstance(meta, dict) else {}
            flows.append(Flow(rq.method, rq.path, rq.timestamp_start or 0.0,
                              (rs.timestamp_end if rs else None) or rq.timestamp_end or rq.timestamp_start or 0.0,
                              rs.status_code if rs else 0, meta,
                              _json(rq.content) if meta.get("role") == "n32c" else None,
                              _json(rs.content) if rs is not None and meta.get("role") == "n32c" else None,
                              list(meta.get("ipxModifiedBy") or [])))
    return sorted(flows, key=lambda f: f.start)


# ------------------------------------------------------------------------------ sequence charts
@dataclass
class Arrow:
    src: int
    dst: int
    label: str
    note: str = ""                  # second line, smaller
    kind: str = "req"               # req | rsp | n32c | local
    marks: dict[int, str] = field(default_factory=dict)   # lifeline -> badge (an IPX's patch)


def svg_chart(lanes: Sequence[str], arrows: Sequence[Arrow], sections: dict[int, str] | None = None,
              lane_w: int = 190) -> str:
    """A message sequence chart as inline SVG: one lifeline per lane, one arrow per message."""
    sections = sections or {}
    top, row = 56, 44
    width = lane_w * len(lanes)
    height = top + row * (len(arrows) + len(sections)) + 24
    x = [lane_w // 2 + i * lane_w for i in range(len(lanes))]
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" class="msc">',
           '<defs><marker id="ah" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="10" markerHeight="10" '
           'markerUnits="userSpaceOnUse" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#334"/></marker></defs>']
    for i, name in enumerate(lanes):
        box = min(lane_w - 10, 210)   # wide enough for "pSEPP sepp-h (responder)" where lanes allow
        out.append(f'<rect x="{x[i] - box // 2}" y="8" width="{box}" height="30" rx="5" class="lane"/>'
                   f'<text x="{x[i]}" y="28" class="lanename">{html.escape(name)}</text>'
                   f'<line x1="{x[i]}" y1="38" x2="{x[i]}" y2="{height - 8}" class="life"/>')
    y = top
    for n, a in enumerate(arrows):
        if n in sections:
            out.append(f'<text x="8" y="{y + 20}" class="section">{html.escape(sections[n])}</text>'
                       f'<line x1="0" y1="{y + 27}" x2="{width}" y2="{y + 27}" class="sep"/>')
            y += row
        y1 = y + 26
        x1, x2 = x[a.src], x[a.dst]
        inset = 4 if x2 > x1 else -4
        out.append(f'<line x1="{x1}" y1="{y1}" x2="{x2 - inset}" y2="{y1}" class="arrow {a.kind}" '
                   'marker-end="url(#ah)"/>')
        mid = (x1 + x2) / 2
        out.append(f'<text x="{mid}" y="{y1 - 19 if a.note else y1 - 6}" class="label {a.kind}">'
                   f'{html.escape(a.label)}</text>')
        if a.note:
            out.append(f'<text x="{mid}" y="{y1 - 6}" class="note">{html.escape(a.note)}</text>')
        for lane, badge in a.marks.items():
            # under the arrow, where no label is
            out.append(f'<rect x="{x[lane] - 60}" y="{y1 + 3}" width="120" height="16" rx="8" class="badge"/>'
                       f'<text x="{x[lane]}" y="{y1 + 15}" class="badgetext">{html.escape(badge)}</text>')
        y += row
    out.append("</svg>")
    return "\n".join(out)


def _brief(body: Any, limit: int = 84) -> str:
    """The IEs of a handshake body, short: ``supportedSecCapabilityList=[PRINS, TLS]``."""
    if not isinstance(body, dict):
        return ""
    parts = []
    for k, v in body.items():
        if k in ("sender", "3GppSbiTargetApiRootSupported", "supportedFeatures", "senderN32fPort",
                 "senderN32fPortList", "senderN32fFqdn"):
            continue
        if isinstance(v, (str, int, float, bool)):
            parts.append(f"{k}={v}")
        elif isinstance(v, list) and all(isinstance(i, str) for i in v):
            parts.append(f"{k}=[{', '.join(v)}]")
        else:
            parts.append(f"{k}{{…}}")
    text = "; ".join(parts)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def handshake_chart(home_flows: list[Flow], report: dict) -> str:
    """N32-c between the two SEPPs, as the responder (sepp-h) recorded each request."""
    lanes = [f"cSEPP {VISITED['name']} (initiator)", f"pSEPP {HOME['name']} (responder)"]
    arrows = [Arrow(0, 1, "TLS 1.3 mutual authentication (N32-c, HTTP/2)", "SEPP certificates, SAN = SEPP FQDN",
                    "local")]
    rounds = {"exchange-capability": "capability"}
    n = 0
    for f in home_flows:
        if f.meta.get("role") != "n32c":
            continue
        op = f.meta.get("operation") or f.path.rsplit("/", 1)[-1]
        n += op == "exchange-params"
        title = rounds.get(op, f"params round {n}")
        arrows.append(Arrow(0, 1, f"POST {op} ({title})", _brief(f.request_json), "n32c"))
        arrows.append(Arrow(1, 0, f"{f.status}", _brief(f.response_json), "rsp"))
    if report.get("capability") == "PRINS":
        arrows.append(Arrow(0, 1, "N32-f master key: TLS exporter EXPORTER_3GPP_N32_MASTER (both sides)",
                            f"key logs agree: {report.get('keysMatch')}", "local"))
    return svg_chart(lanes, arrows, lane_w=560)


def _short(path: str, limit: int = 46) -> str:
    return path if len(path) <= limit else "…" + path[-(limit - 1):]


def ue_chart(results: list[dict], visited: list[Flow], home: list[Flow], report: dict) -> tuple[str, str]:
    """One UE's steps across every hop. Returns (title, svg)."""
    ues = sorted({r["ue"] for r in results})
    if not ues:
        return "", ""
    ue = ues[0]
    steps = [r for r in results if r["ue"] == ue]
    by_id = {f.meta.get("messageId"): f for f in home if f.meta.get("messageId")}
    sending = [f for f in visited if f.meta.get("role") == "sending"]
    ipxs = [IPXS[VISITED["name"]], IPXS[HOME["name"]]] if "ipx" in report else []
    lanes = ["visited NF (AMF/V-SMF)", f"cSEPP {VISITED['name']}", *ipxs, f"pSEPP {HOME['name']}", "home NF"]
    c, p, h = 1, 2 + len(ipxs), 3 + len(ipxs)
    prins = report.get("capability") == "PRINS"
    arrows: list[Arrow] = []
    sections: dict[int, str] = {}
    used: set[int] = set()
    after = 0.0
    supi = ""
    for r in steps:
        # the cSEPP's flow of this step: same NF method and path, in the UE's order
        cand = [i for i, f in enumerate(sending) if i not in used and f.meta.get("method") == r["method"]
                and f.meta.get("path") == r["path"].split("?")[0] and f.start >= after]
        fv = sending[cand[0]] if cand else None
        if cand:
            used.add(cand[0])
            after = fv.start
        fh = by_id.get(fv.meta.get("messageId")) if fv else None
        supi = supi or next((s for s in r["path"].split("/") if s.startswith(("imsi-", "nai-"))), "")
        sections[len(arrows)] = f"{r['step']}: {r['api']}"
        arrows.append(Arrow(0, c, f"{r['method']} {_short(r['path'])}", "HTTP/2 over TLS (SBI)"))
        enc = fv.meta.get("encrypted", 0) if fv else 0
        req_marks = {2 + i: f"{x.split('.')[0]}: patch + JWS" for i, x in enumerate(ipxs) if fh and x in " ".join(fh.ipx)}
        if prins:
            arrows.append(Arrow(c, p, f"N32-f JWE (context {fv.meta.get('context', '?') if fv else '?'})",
                                f"{enc} IE(s) encrypted, rest integrity protected", "n32f", req_marks))
        else:
            arrows.append(Arrow(c, p, "N32-f TLS mode: the NF message over mutual TLS", "", "n32f", req_marks))
        verified = f"; IPX patches verified: {', '.join(fh.ipx)}" if fh and fh.ipx else ""
        arrows.append(Arrow(p, h, f"{r['method']} {_short(r['path'])}",
                            ("restored and verified" if prins else "forwarded") + verified))
        arrows.append(Arrow(h, p, f"{r['status']}", "", "rsp"))
        enc_r = fh.meta.get("encryptedResponse", 0) if fh else 0
        rsp_marks = {2 + i: f"{x.split('.')[0]}: patch + JWS" for i, x in enumerate(ipxs) if fv and x in " ".join(fv.ipx)}
        arrows.append(Arrow(p, c, "N32-f JWE response" if prins else "N32-f TLS response",
                            f"{enc_r} IE(s) encrypted" if prins else "", "rsp", rsp_marks))
        arrows.append(Arrow(c, 0, f"{r['status']} ({r['latency_ms']:.1f} ms)",
                            "ok" if r["ok"] else f"FAILED {r.get('error') or ''}", "rsp"))
    title = f"UE {ue}" + (f" ({supi})" if supi else "")
    return title, svg_chart(lanes, arrows, sections)


# ------------------------------------------------------------------------------ latency plots
def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def latency_plots(results: list[dict], visited: list[Flow], home: list[Flow]) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    apis = list(dict.fromkeys(r["api"] for r in results))
    if not apis:
        return []
    plots = []
    fig, ax = plt.subplots(figsize=(9, 3.6))
    ax.boxplot([[r["latency_ms"] for r in results if r["api"] == a] for a in apis], showfliers=True)
    ax.set_xticks(range(1, len(apis) + 1), apis, rotation=15, fontsize=8)
    ax.set_ylabel("ms (NF request to answer)")
    ax.set_title("End-to-end latency per API, as the visited NF sees it")
    ax.grid(axis="y", alpha=0.3)
    plots.append(("End-to-end latency per API", _png(fig)))
    plt.close(fig)

    # per hop: home NF + pSEPP (the pSEPP's flow), the N32-f path (cSEPP flow minus pSEPP flow:
    # JWE, IPXs, links) and the visited side (NF's latency minus the cSEPP's flow)
    prefix = {"/".join(r["path"].split("/")[:3]): r["api"] for r in results}
    by_id = {f.meta.get("messageId"): f for f in home if f.meta.get("messageId")}
    hops: dict[str, list[list[float]]] = {a: [[], [], []] for a in apis}
    for f in visited:
        if f.meta.get("role") != "sending":
            continue
        api = prefix.get("/".join(str(f.meta.get("path", "")).split("/")[:3]))
        fh = by_id.get(f.meta.get("messageId"))
        if api in hops and fh:
            hops[api][0].append(fh.ms)
            hops[api][1].append(max(0.0, f.ms - fh.ms))
    for r in results:
        api_v = [f.ms for f in visited if f.meta.get("role") == "sending"
                 and prefix.get("/".join(str(f.meta.get("path", "")).split("/")[:3])) == r["api"]]
        if api_v:
            hops[r["api"]][2].append(max(0.0, r["latency_ms"] - statistics.fmean(api_v)))
    mean = [[statistics.fmean(hops[a][k]) if hops[a][k] else 0.0 for a in apis] for k in range(3)]
    fig, ax = plt.subplots(figsize=(9, 3.6))
    bottom = [0.0] * len(apis)
    names = ("pSEPP + home NF", "N32-f path (cSEPP → IPXs → pSEPP)", "visited NF ↔ cSEPP")
    for k, (name, color) in enumerate(zip(names, ("#6a9fd8", "#e8a33d", "#7cbf7c"))):
        ax.bar(range(len(apis)), mean[k], bottom=bottom, label=name, color=color)
        bottom = [b + m for b, m in zip(bottom, mean[k])]
    ax.set_xticks(range(len(apis)), apis, rotation=15, fontsize=8)
    ax.set_ylabel("mean ms")
    ax.set_title("Where the time goes, per hop (mean per API)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(axis="y", alpha=0.3)
    plots.append(("Latency per hop", _png(fig)))
    plt.close(fig)
    return plots


# ------------------------------------------------------------------------------ the page
CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#223;background:#fafbfc}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #dde}
.ok{color:#177a2c;font-weight:600} .bad{color:#b3261e;font-weight:600}
table{border-collapse:collapse;background:#fff} td,th{border:1px solid #dde;padding:4px 10px;text-align:right}
th{background:#eef1f6} td:first-child,th:first-child{text-align:left}
.facts span{display:inline-block;margin:2px 14px 2px 0} .facts b{color:#556}
.msc{background:#fff;border:1px solid #dde;margin:4px 0;font-size:12px}
.msc .lane{fill:#e8eef8;stroke:#8aa0c8} .msc .lanename{text-anchor:middle;font-weight:600;font-size:12px}
.msc .life{stroke:#b8c4d8;stroke-dasharray:4 3} .msc .arrow{stroke:#334;stroke-width:1.4}
.msc .arrow.rsp{stroke-dasharray:5 3} .msc .arrow.n32f{stroke:#8a4b08;stroke-width:2.2}
.msc .arrow.n32c{stroke:#1f4e9c;stroke-width:1.8} .msc .arrow.local{stroke:#777;stroke-dasharray:2 2}
.msc .label{text-anchor:middle;font-size:12px} .msc .label.n32f{fill:#8a4b08;font-weight:600}
.msc .note{text-anchor:middle;font-size:10.5px;fill:#556}
.msc .section{font-size:12px;font-weight:700;fill:#1f4e9c} .msc .sep{stroke:#e4e8f0}
.msc .badge{fill:#fff3d6;stroke:#e0a030} .msc .badgetext{text-anchor:middle;font-size:10px;fill:#7a4a00}
img{background:#fff;border:1px solid #dde;max-width:100%}
"""


def render(report: dict, results: list[dict], visited: list[Flow], home: list[Flow]) -> str:
    esc = html.escape
    ok = report.get("ok")
    facts = {"result": f'<span class="{"ok" if ok else "bad"}">{"OK" if ok else "FAILED"}</span>',
             "N32-f": esc(str(report.get("capability"))), "JWE": esc(str(report.get("jweCipherSuite"))),
             "JWS": esc(str(report.get("jwsCipherSuite"))), "UEs": esc(str(report.get("ues"))),
             "messages": esc(str(report.get("messages"))), "master keys equal": esc(str(report.get("keysMatch"))),
             "run": f"{report.get('seconds')} s"}
    if report.get("ipx"):
        facts["IPX patches"] = esc(", ".join(f"{k}: {v['requests']} req / {v['responses']} rsp"
                                             for k, v in sorted(report["ipx"].items())))
    cols = ("messages", "ok", "failed", "encryptedIes", "ipxModifications", "meanMs", "p99Ms")
    heads = ("API", "messages", "ok", "failed", "IEs encrypted", "IPX modifications", "mean ms", "p99 ms")
    rows = "".join("<tr><td>" + esc(api) + "</td>" + "".join(f"<td>{esc(str(a.get(c)))}</td>" for c in cols)
                   + "</tr>" for api, a in (report.get("apis") or {}).items())
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>mitm-sepp lab report</title>"
             f"<style>{CSS}</style></head><body>",
             f"<h1>mitm-sepp lab: {esc(VISITED['name'])} (PLMN {VISITED['plmn']}) ⇄ "
             f"{esc(HOME['name'])} (PLMN {HOME['plmn']})</h1>",
             '<div class="facts">' + "".join(f"<span><b>{k}</b> {v}</span>" for k, v in facts.items()) + "</div>",
             "<h2>Per API</h2><table><tr>" + "".join(f"<th>{h}</th>" for h in heads) + f"</tr>{rows}</table>"]
    if report.get("metrics"):
        parts.append("<h2>Per peer, from the SEPPs' Prometheus metrics</h2><ul>"
                     + "".join(f"<li>{esc(line)}</li>" for line in report["metrics"]) + "</ul>")
    if report.get("error"):
        parts.append(f"<p class='bad'>{esc(report['error'][:2000])}</p>")
    parts.append("<h2>N32-c handshake</h2>" + handshake_chart(home, report))
    title, chart = ue_chart(results, visited, home, report)
    if chart:
        parts.append(f"<h2>One UE across every hop: {esc(title)}</h2>{chart}")
    for name, src in latency_plots(results, visited, home):
        parts.append(f"<h2>{esc(name)}</h2><img alt='{esc(name)}' src='{src}'>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write(out: Path, report: dict, results: list[Any]) -> Path:
    """Write ``out/report.html`` for a run (results: the traffic's StepResults or their dicts)."""
    rows = [r if isinstance(r, dict) else {"ue": r.ue, "step": r.step, "api": r.api, "method": r.method,
                                            "path": r.path, "status": r.status, "ok": r.ok,
                                            "latency_ms": r.latency_ms, "error": r.error} for r in results]
    page = render(report, rows, read_flows(out / f"{VISITED['name']}.flows"), read_flows(out / f"{HOME['name']}.flows"))
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
