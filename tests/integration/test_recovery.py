"""The N32 relation survives a restart of either SEPP without an operator (issue 12), and a SEPP
stopped with SIGTERM ends its relations as the spec says, without tracebacks. Real processes,
real TLS on loopback; a SEPP is killed with SIGKILL and started again with the same config."""
from __future__ import annotations

import signal
import time

import pytest

from lab import procs as P
from lab.run import client_ssl, start_lab, start_sepp
from lab.scenario import ue_steps
from lab.topology import HOME, VISITED, Lab, sepp_fqdn
from lab.traffic import run_scenario

from .conftest import run

STEPS = len(ue_steps(1))
RECOVERY_BOUND = 5.0   # seconds from the restarted SEPP listening to traffic succeeding again


def scenario(lab: Lab, ue: int) -> list:
    return run(run_scenario(f"https://127.0.0.1:{lab.port('sepp-v.sbi')}", 1, 1, client_ssl(lab), first_ue=ue,
                            timeout=15.0))


def proc(procs: P.Procs, name: str) -> P.Proc:
    return [p for p in procs.procs if p.name == name and p.alive()][-1]


def kill_and_restart(lab: Lab, procs: P.Procs, name: str) -> float:
    p = proc(procs, name)
    p.popen.send_signal(signal.SIGKILL)
    p.popen.wait(10)
    (lab.out / f"{name}.status.json").unlink(missing_ok=True)
    start_sepp(lab, procs, name)
    return time.monotonic()


def recover(lab: Lab, first_ue: int) -> tuple[float, list]:
    """Run the scenario (one UE at a time) until a whole run succeeds; (seconds, failed steps)."""
    t0, failed, ue = time.monotonic(), [], first_ue
    while time.monotonic() - t0 < 3 * RECOVERY_BOUND:
        results = scenario(lab, ue)
        ue += 1
        bad = [(r.api, r.status, r.error) for r in results if not r.ok]
        if not bad:
            return time.monotonic() - t0, failed
        failed += bad
        time.sleep(0.2)
    raise AssertionError(f"no recovery within {3 * RECOVERY_BOUND} s: {failed[-5:]}")


@pytest.mark.parametrize("mode,restarted", [("prins", "sepp-h"), ("prins", "sepp-v"), ("tls", "sepp-h")])
def test_a_restarted_sepp_is_recovered_without_an_operator(pki, tmp_path_factory, mode, restarted):
    lab = Lab(out=tmp_path_factory.mktemp(f"recover-{mode}-{restarted}"), pki=pki, mode=mode)
    with P.Procs(lab.out) as procs:
        start_lab(lab, procs)
        assert all(r.ok for r in scenario(lab, 1))
        kill_and_restart(lab, procs, restarted)
        seconds, failed = recover(lab, 100)
        print(f"\nrecovery {mode} restart of {restarted}: {seconds:.2f} s, {len(failed)} failed step(s)")
        assert seconds < RECOVERY_BOUND, failed
        # the NF request that met the dead context was retried on the new one: nothing failed
        assert failed == []
        for name in ("sepp-v", "sepp-h"):
            assert "Traceback" not in proc(procs, name).log_text()


@pytest.mark.parametrize("mode", ["prins", "tls"])
def test_sigterm_ends_the_relations_and_exits_cleanly(pki, tmp_path_factory, mode):
    lab = Lab(out=tmp_path_factory.mktemp(f"sigterm-{mode}"), pki=pki, mode=mode)
    with P.Procs(lab.out) as procs:
        start_lab(lab, procs)
        assert all(r.ok for r in scenario(lab, 1))
        v = proc(procs, "sepp-v")
        t0 = time.monotonic()
        v.popen.send_signal(signal.SIGTERM)
        assert v.popen.wait(10) == 0
        assert time.monotonic() - t0 < 6.0
        text = v.log_text()
        assert "Traceback" not in text and "CancelledError" not in text, text[-2000:]
        home_log = proc(procs, "sepp-h").log_text()
        op = "n32f-terminate" if mode == "prins" else "exchange-capability"
        assert f"N32-c {op} from {sepp_fqdn(VISITED)}: 200" in home_log

        def released():
            st = (P.read_json(lab.out / "sepp-h.status.json") or {}).get("peers", {}).get(sepp_fqdn(VISITED), {})
            return st if st.get("capability") is None and not st.get("contexts") else None
        P.wait_for(released, 5, "the home SEPP dropped the relation")
        assert sepp_fqdn(HOME)
