"""The built wheel is the tool, not only a clone: policies and data inside, the ``mitm-sepp``
console command, dependency ranges; installed elsewhere it runs the lab in the current directory."""
from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                           "--disable-pip-version-check", "-q", "-w", str(out), str(ROOT)],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # a quiet build: setuptools warns about a deprecated license table or unlisted data packages
    assert "warn" not in (proc.stdout + proc.stderr).lower(), proc.stdout + proc.stderr
    (whl,) = out.glob("mitm_sepp-*.whl")
    return whl


def test_wheel_holds_policies_data_and_entry_point(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = z.read(meta).decode()
        entry = z.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    shipped = {p.relative_to(ROOT).as_posix() for p in (ROOT / "policies").rglob("*.yaml")}
    assert shipped and shipped <= names, shipped - names
    assert {"n32/openapi/TS29573_N32_Handshake.yaml", "lab/scenario.flows", "addons/sepp.py",
            "certs/pki.py", "mitm_sepp/cli.py", "lab/openapi/TS29509_Nausf_UEAuthentication.yaml"} <= names
    assert not any(n.startswith(("lab/out/", "certs/out/", "tests/")) for n in names)
    assert "mitm-sepp = mitm_sepp.cli:main" in entry
    assert "Requires-Python: >=3.12" in metadata
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert any(r.startswith("Requires-Dist: mitmproxy") for r in requires)
    assert not any("==" in r.split(";")[0] for r in requires), requires     # ranges; the exact set is requirements.lock


def test_installed_wheel_runs_the_lab_outside_a_clone(wheel: Path, tmp_path: Path) -> None:
    target, work = tmp_path / "site", tmp_path / "work"
    work.mkdir()
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--disable-pip-version-check",
                           "-q", "--target", str(target), str(wheel)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    env = {**os.environ, "PYTHONPATH": str(target), "PYTHONUNBUFFERED": "1"}
    cmd = [str(target / "bin" / "mitm-sepp")]
    # the shipped policies come from the installed package, not from a clone
    out = subprocess.run(cmd + ["policies"], cwd=work, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and Path(out.stdout.strip()) == target / "policies", out
    assert (Path(out.stdout.strip()) / "data-type-encryption.yaml").is_file()
    usage = subprocess.run(cmd + ["--help"], cwd=work, env=env, capture_output=True, text=True, timeout=60)
    for sub in ("lab", "decode", "pki", "slim", "sepp", "view"):
        assert f"\n  {sub} " in usage.stdout, usage.stdout
    lab = subprocess.run(cmd + ["lab", "--ues", "1"], cwd=work, env=env, capture_output=True, text=True,
                         timeout=150)
    assert lab.returncode == 0, lab.stdout[-3000:] + lab.stderr[-3000:]
    assert "lab: OK" in lab.stdout
    # PKI and output in the current directory; the SEPPs use the installed policies
    assert (work / "certs/out").is_dir() and (work / "lab/out/report.html").is_file()
    assert str(target / "policies" / "data-type-encryption.yaml") in (work / "lab/out/sepp-v.yaml").read_text()
    dec = subprocess.run(cmd + ["decode", str(work / "lab/out/sepp-h.flows"), "--keylog",
                                str(work / "lab/out/sepp-h.keylog.jsonl")],
                         cwd=work, env=env, capture_output=True, text=True, timeout=60)
    assert dec.returncode == 0 and "imsi-" in dec.stdout, dec.stdout[-2000:] + dec.stderr[-2000:]
