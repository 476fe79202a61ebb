"""``make lab CAPTURE=1``: a pcapng of the loopback traffic and the TLS key log; tshark shows the
N32-c exchange and N32-f requests in clear HTTP/2 with the key log (and nothing without it), and
the decoder opens the JWE of the N32-f messages in the capture with the n32 key log."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lab.capture import tshark_decode_as
from lab.procs import ROOT
from lab.topology import HOME


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if not path:
        if os.environ.get("SEPP_SKIP_TSHARK") == "1":
            pytest.skip("SEPP_SKIP_TSHARK=1")
        pytest.fail(f"{tool} is not installed: run `make system-deps` (Debian package tshark)")
    return path


@pytest.fixture(scope="module")
def captured(tmp_path_factory) -> Path:
    _need("tshark")
    dumpcap = _need("dumpcap")
    out = tmp_path_factory.mktemp("capture")
    probe = subprocess.run([dumpcap, "-q", "-i", "lo", "-a", "duration:1", "-w", str(out / "probe.pcapng")],
                           capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip(f"this user may not capture on lo (root or the wireshark group): {probe.stderr[-300:]}")
    (out / "probe.pcapng").unlink()
    proc = subprocess.run([sys.executable, "-m", "lab.run", "--ues", "1", "--capture", "1", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=150)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "tls.keylog_file:" in proc.stdout
    return out


def _tshark(out: Path, *args: str, keys: bool = True) -> list[list[str]]:
    ports = json.loads((out / "report.json").read_text())["ports"]
    argv = [shutil.which("tshark"), "-n", "-r", str(out / "lab.pcapng"), *tshark_decode_as(ports)]
    if keys:
        argv += ["-o", f"tls.keylog_file:{out / 'tls-keys.txt'}"]
    proc = subprocess.run(argv + list(args), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-1000:]
    return [line.split("\t") for line in proc.stdout.splitlines()]


def test_capture_and_keys_are_owner_only(captured: Path) -> None:
    for name in ("lab.pcapng", "tls-keys.txt"):
        assert (captured / name).stat().st_mode & 0o077 == 0, name
    labels = {line.split()[0] for line in (captured / "tls-keys.txt").read_text().splitlines() if line.strip()}
    assert {"CLIENT_HANDSHAKE_TRAFFIC_SECRET", "CLIENT_TRAFFIC_SECRET_0"} <= labels, labels


def test_tshark_shows_n32c_and_n32f_in_clear_http2(captured: Path) -> None:
    ports = json.loads((captured / "report.json").read_text())["ports"]
    n32 = ports[f"{HOME['name']}.n32"]
    rows = _tshark(captured, "-Y", f'http2.headers.path && tcp.dstport == {n32}', "-T", "fields",
                   "-E", "separator=/t", "-e", "http2.headers.method", "-e", "http2.headers.path")
    paths = [r[1] for r in rows]
    # N32-c: capability and the three parameter rounds, then N32-f on the same N32 listener
    assert paths[:4] == ["/n32c-handshake/v1/exchange-capability"] + ["/n32c-handshake/v1/exchange-params"] * 3, paths
    assert paths.count("/n32f-forward/v1/n32f-process") == 8, paths
    assert all(r[0] == "POST" for r in rows)
    bodies = _tshark(captured, "-Y", f"http2.body.reassembled.data && tcp.srcport == {n32}", "-T", "fields",
                     "-e", "http2.body.reassembled.data")
    text = b"".join(bytes.fromhex(c.replace(":", "")) for r in bodies for c in r[0].split(",")).decode()
    assert '"selectedSecCapability":"PRINS"' in text.replace(" ", ""), text[:500]
    # the N32-f body itself is a JWE: the SUPI is not in clear on N32
    assert "reformattedData" in text and "imsi-999700000000001" not in text
    # without the key log, tshark sees TLS records only
    assert _tshark(captured, "-Y", "http2", "-T", "fields", "-e", "frame.number", keys=False) == []


def test_decoder_opens_the_jwe_of_the_capture(captured: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "addons.decode", str(captured / "lab.pcapng"),
                           "--tls-keylog", str(captured / "tls-keys.txt"),
                           "--keylog", str(captured / f"{HOME['name']}.keylog.jsonl"), "--json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    found = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(found) == 16, len(found)             # 8 requests and their responses
    assert all(m["integrity"] == "ok" for m in found), [m["integrity"] for m in found]
    assert "imsi-999700000000001" in proc.stdout     # decrypted from the JWE
    # without the TLS secrets the capture is refused with a clear message
    bad = subprocess.run([sys.executable, "-m", "addons.decode", str(captured / "lab.pcapng")],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--tls-keylog" in bad.stderr
