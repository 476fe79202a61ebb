"""Start, watch and stop the lab's processes (mitmdump SEPPs, IPXs, NF stubs).

Shared by ``make lab`` and the integration tests: real processes on loopback, every wait
bounded, every process stopped on exit (also on Ctrl-C).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _child_setup(main_thread: bool) -> None:
    """In the child before exec: SIGINT handled (the runner stops children with it, and a runner
    started in the background inherits it ignored), and on Linux die with the runner (even a
    SIGKILLed one), so nothing is left behind. The parent-death signal is tied to the forking
    thread, so only a child forked by the main thread asks for it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    if not main_thread or sys.platform != "linux":
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log: Path
    drain: float = 0.0      # seconds to let it run on after the others stopped (a packet capture)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""


@dataclass
class Procs:
    out: Path
    procs: list[Proc] = field(default_factory=list)

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None, out: Path | None = None,
              drain: float = 0.0) -> Proc:
        out = out or self.out
        out.mkdir(parents=True, exist_ok=True)
        log = out / f"{name}.log"
        fh = open(log, "wb")
        # umask 077: flow files hold restored authentication vectors and keys, like the key log;
        # own session: a terminal's Ctrl-C reaches the runner only, which stops these in order
        main = threading.current_thread() is threading.main_thread()
        popen = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT,
                                 env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
                                 start_new_session=True, umask=0o077,
                                 preexec_fn=lambda: _child_setup(main))
        fh.close()
        proc = Proc(name, popen, log, drain)
        self.procs.append(proc)
        return proc

    def start_mitmdump(self, name: str, script: str, options: dict[str, Any], flows: bool = True,
                       web: bool = False, slim: bool = False, out: Path | None = None) -> Proc:
        """mitmdump (or mitmweb, or the slim runner for load) with one addon script."""
        if slim:
            argv = [sys.executable, "-m", "addons.slim", "-s", str(ROOT / script)]
        else:
            argv = [str(BIN / ("mitmweb" if web else "mitmdump")), "-s", str(ROOT / script)]
        for k, v in options.items():
            argv += ["--set", f"{k}={v}"]
        # the default listener mitmproxy may start before the addon sets its own: any free port
        argv += ["--set", "listen_port=0"]
        out = out or self.out
        if slim:
            return self.start(name, argv, out=out)
        if flows:
            argv += ["-s", str(ROOT / "lab/flowflush.py"),
                     "--set", f"save_stream_file={out / (name + '.flows')}"]
        argv += ["--set", "flow_detail=0", "--set", "termlog_verbosity=info"]
        if web:
            argv += ["--set", "web_open_browser=false"]
        return self.start(name, argv, out=out)

    def stop(self, timeout: float = 5.0) -> None:
        # a second Ctrl-C/SIGTERM/SIGHUP (closing the terminal after Ctrl-C) must not cut the
        # clean-up short: the stop signals are ignored until every process is gone
        held = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                if signal.getsignal(sig) not in (signal.SIG_IGN, None):
                    held[sig] = signal.signal(sig, signal.SIG_IGN)
        try:
            self._stop(timeout)
        finally:
            for sig, handler in held.items():
                signal.signal(sig, handler)

    def _stop(self, timeout: float) -> None:
        last = [p for p in self.procs if p.drain]
        self._signal_and_wait([p for p in self.procs if not p.drain], timeout)
        if last:
            time.sleep(max(p.drain for p in last))
            self._signal_and_wait(last, timeout)
        self.procs.clear()

    def _signal_and_wait(self, procs: list[Proc], timeout: float) -> None:
        for p in procs:
            if p.alive():
                try:
                    os.killpg(p.popen.pid, signal.SIGINT)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + timeout
        for p in procs:
            try:
                p.popen.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(p.popen.pid, signal.SIGKILL)
                p.popen.wait()

    def __enter__(self) -> "Procs":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_for(check: Callable[[], Any], timeout: float, what: str, procs: list[Proc] = (),
             interval: float = 0.05) -> Any:
    """Poll ``check`` until it returns something truthy; fail early if a process died."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        for p in procs:
            if not p.alive():
                raise RuntimeError(f"{p.name} exited ({p.popen.returncode}) while waiting for {what}:\n"
                                   + p.log_text()[-3000:])
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {p.name}\n{p.log_text()[-2000:]}" for p in procs)
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}\n{logs}")
        time.sleep(interval)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def wait_port(port: int, timeout: float, procs: list[Proc] = ()) -> None:
    import socket

    def check() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            return False

    wait_for(check, timeout, f"port {port}", procs)
