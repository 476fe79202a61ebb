"""mitmweb shows the "N32-f PRINS" content view (addons/n32view.py) with encrypted IEs decrypted and
IPX patches verified: traffic through the lab with two IPXs, then ``mitmweb -r sepp-v.flows`` with
the key log and the IPX keys, checked through mitmweb's JSON API and in headless Chromium (Debian's
``chromium``: the rendered page must show a decrypted SUPI and an IPX patch; a screenshot is kept
in tests/artifacts/mitmweb.png, which git ignores)."""
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
    time.sleep(0.5)  # let mitmdump append the last flows
    out = tmp_path_factory.mktemp("mitmweb")
    port, token = free_port(), secrets.token_hex(16)
    with P.Procs(out) as procs:
        p = procs.start("mitmweb", [str(P.BIN / "mitmweb"), "-n", "-s", str(ROOT / "addons/n32view.py"),
                                    "--set", f"n32view_keylog={keylog}", "-r", str(flows),
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
            return n32f if len(n32f) >= 6 else None

        yield port, token, P.wait_for(loaded, 30, "mitmweb to load the flows", [p])


def test_n32f_view_shows_decrypted_supi(web):
    port, token, flows = web
    texts = []
    for f in flows:
        view = _get(port, token, f"/flows/{f['id']}/request/content/{VIEW}.json")
        assert view["view_name"] == "N32-f PRINS"
        texts.append(view["text"])
    joined = "\n".join(texts)
    assert "\U0001f512encrypted" in joined
    assert "NOT decrypted" not in joined
    # the SUCI of the authentication request (JSON IE) and the SUPI (in paths: {🔒encrypted:imsi-...};
    # in bodies: {"🔒encrypted": "imsi-..."}), decrypted and marked
    assert '{"\U0001f512encrypted": "suci-0-999-70-0000-0-0-0000000001"}' in joined, joined[:3000]
    assert "{\U0001f512encrypted:imsi-999700000000001}" in joined \
        or '{"\U0001f512encrypted": "imsi-999700000000001"}' in joined, joined[:3000]


def test_n32f_view_of_response(web):
    port, token, flows = web
    auth = next(f for f in flows if f.get("response"))
    view = _get(port, token, f"/flows/{auth['id']}/response/content/{VIEW}.json")
    assert view["view_name"] == "N32-f PRINS" and "N32-f response" in view["text"], view["text"][:2000]


def test_n32f_view_shows_ipx_patches_verified(web):
    port, token, flows = web
    texts = [_get(port, token, f"/flows/{f['id']}/response/content/{VIEW}.json")["text"] for f in flows]
    # ipx2 rewrites the server header of every response (lab/topology.py IPX_RULES) and signs it
    assert all("IPX modification 1: signer ipx2.ipx.lab: ok" in t for t in texts), texts[0][-1500:]
    assert all('"value": "home-nf (via ipx2)"' in t for t in texts), texts[0][-1500:]
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
    port, token, flows = web
    # the 5G AKA confirmation: its response carries the SUPI (encrypted on N32-f) and ipx2's patch;
    # mitmweb's "auto" view picks "N32-f PRINS" for N32-f bodies (render_priority)
    confirm = next(f for f in flows if f["request"]["path"].endswith("n32f-process")
                   and f.get("response", {}).get("status_code") == 200
                   and "AUTHENTICATION_SUCCESS" in _get(port, token, f"/flows/{f['id']}/response/content/{VIEW}.json")["text"])
    url = f"http://127.0.0.1:{port}/?token={token}#/flows/{confirm['id']}/response"
    dom = _chromium(tmp_path, "--dump-dom", url)
    text = _page_text(dom.stdout)
    assert "N32-f PRINS" in text, (dom.stderr[-1000:], text[:2000])
    assert '/supi [BODY] = {"\U0001f512encrypted": "imsi-999700000000001"}' in text, text[:4000]
    assert "IPX modification 1: signer ipx2.ipx.lab: ok" in text, text[-3000:]
    # the home SEPP removed the NF's server header (topology hiding), so ipx2 adds one
    assert 'patch: [{"op": "add", "path": "/headers/-", "value": {"header": "server", "value": "home-nf (via ipx2)"}}]' \
        in text, text[-3000:]

    art = ROOT / "tests/artifacts"
    art.mkdir(parents=True, exist_ok=True)
    shot = art / "mitmweb.png"
    shot.unlink(missing_ok=True)
    proc = _chromium(tmp_path, f"--screenshot={shot}", url)
    assert shot.exists() and shot.stat().st_size > 10_000, proc.stderr[-1000:]
