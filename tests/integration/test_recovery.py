"""A SEPP stopped with SIGTERM ends its relations as the spec says, without tracebacks (issue 12).
Real processes, real TLS on loopback."""
from __future__ import annotations

import signal
import time

import pytest

from lab import procs as P
from lab.run import client_ssl, start_lab
from lab.topology import VISITED, Lab, sepp_fqdn
from lab.traffic import run_scenario

from .conftest import run


def scenario(lab: Lab, ue: int) -> list:
    return run(run_scenario(f"https://127.0.0.1:{lab.port('sepp-v.sbi')}", 1, 1, client_ssl(lab), first_ue=ue,
                            timeout=15.0))


def proc(procs: P.Procs, name: str) -> P.Proc:
    return [p for p in procs.procs if p.name == name and p.alive()][-1]


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
