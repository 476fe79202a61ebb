"""lab/out/report.html: self-contained, with the per-API table, the N32-c handshake and one UE
across every hop (IPXs included) as sequence charts and the latency plots; rendered in headless
Chromium with no network (screenshot kept in tests/artifacts/lab-report.png, which git ignores)."""
from __future__ import annotations

import html
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lab.procs import ROOT
from tests.integration.test_mitmweb import _chromium, _page_text


@pytest.fixture(scope="module")
def lab_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report")
    proc = subprocess.run([sys.executable, "-m", "lab.run", "--ues", "2", "--ipx", "1", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=150)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "report.html" in proc.stdout
    return out


def test_report_is_self_contained_and_complete(lab_run: Path) -> None:
    page = (lab_run / "report.html").read_text(encoding="utf-8")
    report = json.loads((lab_run / "report.json").read_text())
    # nothing to fetch: no external src/href/url()/@import, images inline
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)|url\(\s*["']?(https?:|//)|@import""", page, re.I)
    assert page.count("data:image/png;base64,") == 2          # the two latency plots
    text = _page_text(page)
    for api, row in report["apis"].items():                 # the per-API table of report.json
        assert re.search(rf"{api} {row['messages']} {row['ok']} {row['failed']} {row['encryptedIes']} "
                         rf"{row['ipxModifications']} ", text), (api, row)
    # N32-c: capability then three parameter rounds, as the responder saw them
    assert text.count("POST exchange-params") == 3 and "POST exchange-capability" in text
    assert "selectedSecCapability=PRINS" in text and "EXPORTER_3GPP_N32_MASTER" in text
    # one UE across NF -> cSEPP -> ipx1 -> ipx2 -> pSEPP -> NF: 8 steps, each encrypted and patched
    lanes = re.findall(r'class="lanename">([^<]+)<', page)
    assert lanes[2:] == ["visited NF (AMF/V-SMF)", "cSEPP sepp-v", "ipx1.ipx.lab", "ipx2.ipx.lab",
                         "pSEPP sepp-h", "home NF"], lanes
    assert text.count("N32-f JWE (context") == 8 and text.count("N32-f JWE response") == 8
    assert text.count("ipx1: patch + JWS") == 8 and text.count("ipx2: patch + JWS") == 8
    assert text.count("IPX patches verified: ipx1.ipx.lab") == 8
    encrypted = [int(n) for n in re.findall(r"(\d+) IE\(s\) encrypted, rest", text)]
    assert len(encrypted) == 8 and all(n > 0 for n in encrypted), encrypted
    assert html.escape("imsi-999700000000001") in page
    # the per-peer summary the lab read from both SEPPs' Prometheus metrics
    assert len(report["metrics"]) == 2 and "handshakes ok 1" in text and "sent 16" in text, report["metrics"]


def test_report_in_headless_chromium(lab_run: Path, tmp_path: Path) -> None:
    url = (lab_run / "report.html").as_uri()
    # a proxy that does not exist: any network fetch would fail, the page must not need one
    offline = "--proxy-server=127.0.0.1:9"
    dom = _chromium(tmp_path, offline, "--dump-dom", url)
    text = _page_text(dom.stdout)
    assert "One UE across every hop" in text and "Nausf_UEAuthentication" in text, dom.stderr[-1000:]
    art = ROOT / "tests/artifacts"
    art.mkdir(parents=True, exist_ok=True)
    shot = art / "lab-report.png"
    shot.unlink(missing_ok=True)
    proc = _chromium(tmp_path, offline, "--window-size=1280,5200", f"--screenshot={shot}", url)
    assert shot.exists(), proc.stderr[-1000:]
    from PIL import Image

    def pixels(image: Image.Image) -> list[tuple[int, ...]]:
        raw = image.convert("RGB").tobytes()
        return [tuple(raw[i:i + 3]) for i in range(0, len(raw), 3)]

    with Image.open(shot) as im:
        colours = len(set(pixels(im.resize((64, 260)))))
        # the plots' coloured bars (orange of the N32-f path) render in the lower part of the page
        lower = pixels(im.crop((0, im.height * 2 // 3, im.width, im.height)))
        orange = sum(1 for r, g, b in lower if r > 200 and 140 < g < 180 and b < 90)
    assert colours > 40, colours
    assert orange > 2000, orange
