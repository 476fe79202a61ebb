"""mitmweb shows the "N32-f PRINS" content view (addons/n32view.py) with encrypted IEs decrypted:
traffic through the PRINS lab, then ``mitmweb -r sepp-v.flows`` with the key log, checked through
mitmweb's JSON API (and, if Debian chromium is installed, a headless screenshot of a flow page
into tests/artifacts/mitmweb.png)."""
from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
import warnings
from pathlib import Path

import pytest

from lab import procs as P
from lab.run import run_traffic
from lab.topology import ROOT, free_port

VIEW = urllib.parse.quote("N32-f PRINS")


def _get(port: int, token: str, path: str):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=10) as rsp:
        return json.loads(rsp.read())


@pytest.fixture(scope="module")
def web(prins_lab, tmp_path_factory: pytest.TempPathFactory):
    lab, _ = prins_lab
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


def test_screenshot_if_chromium(web, tmp_path: Path):
    chromium = shutil.which("chromium")
    if not chromium:
        pytest.skip("chromium not installed (the API checks above do not need it)")
    port, token, flows = web
    art = ROOT / "tests/artifacts"
    art.mkdir(parents=True, exist_ok=True)
    shot = art / "mitmweb.png"
    shot.unlink(missing_ok=True)
    url = f"http://127.0.0.1:{port}/?token={token}#/flows/{flows[0]['id']}/request"
    proc = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                           "--disable-component-update", "--disable-sync", "--no-first-run",
                           f"--user-data-dir={tmp_path / 'chromium'}", "--virtual-time-budget=5000",
                           f"--screenshot={shot}", "--window-size=1400,900", url],
                          capture_output=True, text=True, timeout=60)
    if not shot.exists():
        warnings.warn(f"chromium produced no screenshot: {proc.stderr[-500:]}")
        pytest.skip("chromium could not take the screenshot")
    assert shot.stat().st_size > 1000
