"""mitmweb shows the "N32-f PRINS" content view (addons/n32view.py) with encrypted IEs decrypted and
IPX patches verified, and a labelled flow list: traffic through the lab with two IPXs, then mitmweb
reading the visited SEPP's and the first IPX's flows with the key log and the IPX keys, checked
through mitmweb's JSON API and in headless Chromium (Debian's ``chromium``). Screenshots are kept
in tests/artifacts/ (git ignores it): mitmweb-list.png (the flow list with the labels),
mitmweb.png (one PRINS flow), mitmweb-ipx.png (one IPX flow)."""
from __future__ import annotations

import html
import json
import os
import re
import secrets
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from lab import procs as P
from lab.run import run_traffic
from lab.run import start_lab
from lab.topology import ROOT, Lab, free_port

VIEW = urllib.parse.quote("N32-f PRINS")


def _get(port: int, token: str, path: str):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=10) as rsp:
        return json.loads(rsp.read())


@pytest.fixture(scope="module")
def ipx_lab(pki, tmp_path_factory: pytest.TempPathFactory):
    lab = Lab(out=tmp_path_factory.mktemp("weblab"), pki=pki, ipx=True)
    with P.Procs(lab.out) as procs:
        start_lab(lab, procs)
        yield lab


@pytest.fixture(scope="module")
def web(ipx_lab, tmp_path_factory: pytest.TempPathFactory):
    lab = ipx_lab
    results = run_traffic(lab, 1, concurrency=1)
    assert all(r.ok for r in results), [(r.step, r.status, r.error) for r in results if not r.ok]
    flows, keylog = lab.out / "sepp-v.flows", lab.out / "sepp-v.keylog.jsonl"
    P.wait_for(lambda: flows.exists() and flows.stat().st_size > 0, 10, "sepp-v.flows")
    P.wait_for(lambda: (lab.out / "ipx1.flows").exists() and (lab.out / "ipx1.flows").stat().st_size > 0, 10,
               "ipx1.flows")
    time.sleep(0.5)  # let mitmdump append the last flows
    out = tmp_path_factory.mktemp("mitmweb")
    # flow files are streams of flows: the SEPP's and the IPX's read as one
    both = out / "sepp-v+ipx1.flows"
    both.write_bytes(flows.read_bytes() + (lab.out / "ipx1.flows").read_bytes())
    port, token = free_port(), secrets.token_hex(16)
    with P.Procs(out) as procs:
        p = procs.start("mitmweb", [str(P.BIN / "mitmweb"), "-n", "-s", str(ROOT / "addons/n32view.py"),
                                    "--set", f"n32view_keylog={keylog}", "-r", str(both),
                                    *(a for ipx in ("ipx1", "ipx2") for a in
                                      ("--set", f"n32view_ipx_keys={lab.pki / 'ipx' / f'{ipx}.ipx.lab.pub'}")),
                                    "--set", f"web_port={port}", "--set", "web_host=127.0.0.1",
                                    "--set", "web_open_browser=false", "--set", f"web_password={token}"])
        P.wait_port(port, 30, [p])

        def loaded():
            try:
                fl = _get(port, token, "/flows")
            except OSError:
                return None
            n32f = [f for f in fl if f["request"]["path"].startswith("/n32f-forward/v1/n32f-process")]
            ipx = [f for f in n32f if f.get("comment", "").startswith("IPX ")]
            return (fl, ipx) if len(n32f) - len(ipx) >= 6 and len(ipx) >= 6 else None

        every, ipx = P.wait_for(loaded, 30, "mitmweb to load the flows", [p])
        sepp = [f for f in every if f["request"]["path"].startswith("/n32f-forward/v1/n32f-process") and f not in ipx]
        yield port, token, sepp, every, ipx


def _flat(text: str) -> str:
    """The view wraps long lines (also inside long tokens): compare without any whitespace."""
    return re.sub(r"\s+", "", text)


def _has(needle: str, text: str) -> bool:
    return _flat(needle) in _flat(text)


def test_n32f_view_shows_decrypted_supi(web):
    port, token, flows, *_ = web
    texts = []
    for f in flows:
        view = _get(port, token, f"/flows/{f['id']}/request/content/{VIEW}.json")
        assert view["view_name"] == "N32-f PRINS"
        texts.append(_flat(view["text"]))
    joined = "\n".join(texts)
    assert "NOT decrypted" not in joined
    # the SUCI of the authentication request (JSON IE) and the SUPI (path segment), decrypted and
    # marked in the NF message, and marked as encrypted value n in the N32-f form
    assert _has('"supiOrSuci": "\U0001f512suci-0-999-70-0000-0-0-0000000001"', joined), joined[:3000]
    assert _has("/nudm-sdm/v2/\U0001f512imsi-999700000000001/am-data", joined), joined[:3000]
    assert re.search(r'payload/supiOrSuci\[BODY\]="\U0001f512#\d+"', joined), joined[:3000]
    assert re.search(r"requestLine:GET\S+/nudm-sdm/v2/\{\U0001f512#\d+\}/am-data", joined), joined[:3000]
    # the NAS part of the registration (multipart) as hex with its content type
    assert _has("part 2: application/vnd.3gpp.5gnas, Content-ID regRequest, 17 bytes", joined), joined[:3000]
    assert _has("0000 7e 00 41", joined)


def test_n32f_view_of_response(web):
    port, token, flows, *_ = web
    auth = next(f for f in flows if f.get("response"))
    view = _get(port, token, f"/flows/{auth['id']}/response/content/{VIEW}.json")
    assert view["view_name"] == "N32-f PRINS" and "N32-f response" in view["text"], view["text"][:2000]


def test_n32f_view_shows_ipx_patches_verified(web):
    port, token, flows, *_ = web
    texts = [_flat(_get(port, token, f"/flows/{f['id']}/response/content/{VIEW}.json")["text"]) for f in flows]
    # ipx2 rewrites the server header of every response (lab/topology.py IPX_RULES) and signs it
    assert all(_has("IPX modification 1: signer ipx2.ipx.lab: ok", t) for t in texts), texts[0][-1500:]
    assert all(_has('"value": "home-nf (via ipx2)"', t) for t in texts), texts[0][-1500:]
    requests = [_get(port, token, f"/flows/{f['id']}/request/content/{VIEW}.json")["text"] for f in flows]
    assert not any("IPX modification" in t for t in requests)   # the sender's copy, before any IPX


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1400,1000", "--virtual-time-budget=8000"]


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    chromium = shutil.which("chromium")
    if not chromium:
        if os.environ.get("SEPP_SKIP_BROWSER") == "1":
            pytest.skip("SEPP_SKIP_BROWSER=1")
        pytest.fail("Debian chromium is not installed: run `make system-deps` (make test does it)")
    profile = tmp_path / f"chromium-{secrets.token_hex(4)}"
    return subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=90)


def _page_text(dom: str) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", dom)))


def test_mitmweb_in_chromium_shows_decrypted_supi_and_ipx_patch(web, tmp_path: Path):
    port, token, flows, *_ = web
    # the 5G AKA confirmation: its response carries the SUPI (encrypted on N32-f) and ipx2's patch;
    # mitmweb's "auto" view picks "N32-f PRINS" for N32-f bodies (render_priority)
    confirm = next(f for f in flows if f["request"]["path"].endswith("n32f-process")
                   and f.get("response", {}).get("status_code") == 200
                   and "AUTHENTICATION_SUCCESS" in _get(port, token, f"/flows/{f['id']}/response/content/{VIEW}.json")["text"])
    url = f"http://127.0.0.1:{port}/?token={token}#/flows/{confirm['id']}/response"
    dom = _chromium(tmp_path, "--dump-dom", url)
    text = _page_text(dom.stdout)
    assert "N32-f PRINS" in text, (dom.stderr[-1000:], text[:2000])
    assert _has('"supi": "\U0001f512imsi-999700000000001"', text), text[:4000]
    assert re.search(r'payload/supi\[BODY\]="\U0001f512#\d+"', _flat(text)), text[:4000]
    assert "IPX modification 1: signer ipx2.ipx.lab: ok" in text, text[-3000:]
    # the home SEPP removed the NF's server header (topology hiding), so ipx2 adds one
    assert _has('patch: [{"op": "add", "path": "/headers/-", "value": {"header": "server", "value": "home-nf (via ipx2)"}}]',
                text), text[-3000:]

    _screenshot(tmp_path, "mitmweb.png", url)


def _screenshot(tmp_path: Path, name: str, url: str) -> None:
    art = ROOT / "tests/artifacts"
    art.mkdir(parents=True, exist_ok=True)
    shot = art / name
    shot.unlink(missing_ok=True)
    proc = _chromium(tmp_path, f"--screenshot={shot}", url)
    assert shot.exists() and shot.stat().st_size > 10_000, proc.stderr[-1000:]


def test_flow_list_shows_labels(web, tmp_path: Path):
    port, token, flows, every, ipx = web
    comments = [f.get("comment", "") for f in flows]
    assert any(c.startswith("Nausf_UEAuthentication POST ue-authentications · UE suci-") for c in comments), comments
    assert any(c.startswith("Nudm_SDM GET am-data · UE imsi-999700000000001 · to sepp.5gc.mnc070") for c in comments)
    assert all(" · via ipx1.ipx.lab · PRINS · " in c and "patched by ipx2.ipx.lab" in c for c in comments), comments
    assert all(f["response"]["http_version"] == "HTTP/2.0" for f in flows)
    # the visited SEPP initiates N32-c with its own client: those requests are listed too, with the
    # address they went to (not reverse mode's placeholder upstream), labelled
    hs = [f for f in every if f["request"]["path"].startswith("/n32c-handshake/v1/exchange-")]
    assert len(hs) >= 2, [f["request"]["path"] for f in every]
    for f in hs:
        r = f["request"]
        assert r["scheme"] == "https" and r["port"] != 9 and r["http_version"] == "HTTP/2.0", r
        assert f["response"]["http_version"] == "HTTP/2.0" and f["response"]["status_code"] == 200
        assert f["comment"].startswith("N32-c exchange-") and " · initiator · 200" in f["comment"], f["comment"]
    assert all(re.match(r"IPX ipx1\.ipx\.lab · \w+ (GET|POST|PUT|PATCH|DELETE) .* · → ipx2\.ipx\.lab · ", f["comment"])
               for f in ipx), [f["comment"] for f in ipx]
    # the list (its comment column is narrow: mitmweb lets one drag it wider) and the whole label of
    # the authentication request in the flow's Comment tab
    auth = next(f for f in flows if f["comment"].startswith("Nausf_UEAuthentication POST ue-authentications"))
    url = f"http://127.0.0.1:{port}/?token={token}#/flows/{auth['id']}/comment"
    text = _page_text(_chromium(tmp_path, "--dump-dom", url).stdout)
    assert "Nausf_UEAuthentication POST ue-authentications" in text and "N32-c exchange-capability" in text, text[:3000]
    assert auth["comment"] in text, text[:3000]
    _screenshot(tmp_path, "mitmweb-list.png", url)


def test_ipx_flow_in_chromium(web, tmp_path: Path):
    port, token, _, _, ipx = web
    # the authentication request as ipx1 relayed it: ipx1's own signed patch, verified with its key
    f = next(f for f in ipx if "Nausf_UEAuthentication POST ue-authentications" in f["comment"])
    url = f"http://127.0.0.1:{port}/?token={token}#/flows/{f['id']}/request"
    text = _page_text(_chromium(tmp_path, "--dump-dom", url).stdout)
    assert "N32-f PRINS" in text and _has("IPX modification 1: signer ipx1.ipx.lab: ok", text), text[-3000:]
    _screenshot(tmp_path, "mitmweb-ipx.png", url)
