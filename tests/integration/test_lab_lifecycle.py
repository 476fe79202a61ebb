"""The lab's lifecycle: SIGTERM/SIGHUP stop it like Ctrl-C, nothing it started is left running.

A ``KEEP=1`` lab is started as a user would (``make lab`` or ``python -m lab.run``), its process
tree is read from /proc, one signal is sent to the runner only (as ``timeout``, a CI cancel or a
closed terminal do), and every PID of the tree must be gone afterwards.
"""
from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab.procs import ROOT

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")


def _stat(pid: int) -> tuple[int, str] | None:
    """(parent PID, start time) of a live process, None when it is gone (or a zombie)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()
    if fields[0] == "Z":
        return None
    return int(fields[1]), fields[19]


def descendants(root: int) -> dict[int, str]:
    """Every live process below ``root`` (PID -> start time, to tell a reused PID apart)."""
    table = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and (st := _stat(int(d.name))):
            table[int(d.name)] = st
    found, todo = {}, [root]
    while todo:
        parent = todo.pop()
        for pid, (ppid, start) in table.items():
            if ppid == parent and pid not in found:
                found[pid] = start
                todo.append(pid)
    return found


def read_until(proc: subprocess.Popen, marker: str, timeout: float) -> str:
    out, deadline = "", time.monotonic() + timeout
    fd = proc.stdout.fileno()
    while marker not in out:
        left = deadline - time.monotonic()
        if left <= 0 or proc.poll() is not None:
            raise AssertionError(f"no {marker!r} after {timeout}s (exit {proc.poll()}):\n{out}")
        if select.select([fd], [], [], min(left, 0.5))[0]:
            chunk = os.read(fd, 65536).decode(errors="replace")
            if not chunk:
                continue
            out += chunk
    return out


def stop_and_check(proc: subprocess.Popen, sig: signal.Signals, tree: dict[int, str]) -> str:
    proc.send_signal(sig)
    try:
        rest, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    # give orphans (if any) no excuse: the runner has exited, its children must have too
    left = {pid: start for pid, start in tree.items() if (st := _stat(pid)) and st[1] == start}
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, f"still running after {sig.name}: {left}"
    return rest.decode(errors="replace")


def _start(argv: list[str], out: Path) -> subprocess.Popen:
    out.mkdir(parents=True, exist_ok=True)
    (out / "ipx1.flows").write_bytes(b"stale")  # from an earlier run with IPX=1
    return subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _check_keep_run(text: str, out: Path, tree: dict[int, str]) -> None:
    # KEEP=1 printed the table and wrote the report before waiting
    assert "Nausf_UEAuthentication" in text and "lab: OK" in text, text
    report = json.loads((out / "report.json").read_text())
    assert report["ok"] and report["messages"] > 0
    assert not (out / "ipx1.flows").exists(), "the previous run's files stay in the output directory"
    # two NF stubs and two SEPPs at least, all below the runner
    assert len(tree) >= 4, tree
    # flow files hold restored authentication vectors: owner-only, like the key log
    for f in ("sepp-v.flows", "sepp-h.flows", "sepp-v.keylog.jsonl"):
        assert (out / f).stat().st_mode & 0o077 == 0, f


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_signal_stops_everything(tmp_path: Path, sig: signal.Signals) -> None:
    out = tmp_path / "out"
    proc = _start([sys.executable, "-m", "lab.run", "--ues", "1", "--keep", "1", "--out", str(out)], out)
    try:
        text = read_until(proc, "KEEP=1", 90)
        tree = descendants(proc.pid)
        _check_keep_run(text, out, tree)
        text += stop_and_check(proc, sig, tree)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    # a user stop after a successful run is a normal end
    assert proc.returncode == 0, text
    assert "Traceback" not in text, text


def test_sigterm_to_make_lab(tmp_path: Path) -> None:
    """What ``timeout make lab KEEP=1`` does: SIGTERM to make, which passes it to the runner."""
    out = tmp_path / "out"
    # -o: the venv this test runs in stands for the installed one (no pip run from a test)
    proc = _start(["make", "-s", "-o", ".venv/.installed", "lab", "KEEP=1", "UES=1", f"OUT={out}",
                   f"PY={sys.executable}"], out)
    try:
        text = read_until(proc, "KEEP=1", 90)
        tree = descendants(proc.pid)
        _check_keep_run(text, out, tree)
        text += stop_and_check(proc, signal.SIGTERM, tree)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert "Traceback" not in text, text


def test_sigterm_during_the_run(tmp_path: Path) -> None:
    """Stopped before the scenario is over: everything stops, the exit status says so."""
    out = tmp_path / "out"
    proc = _start([sys.executable, "-m", "lab.run", "--ues", "40", "--out", str(out)], out)
    try:
        text = read_until(proc, "running the roaming scenario", 90)
        tree = descendants(proc.pid)
        text += stop_and_check(proc, signal.SIGTERM, tree)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 128 + signal.SIGTERM, text
    assert "SIGTERM, stopping" in text and "Traceback" not in text, text
