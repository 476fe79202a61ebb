"""mitm-sepp probe: the TS 33.517 SEPP cases (and more) against any SEPP, with the probe playing
the peer SEPP, its IPX and the NF behind the target. ``python -m probe --help``; from Python::

    from probe import load_config, run
    report = run(load_config("probe.yaml"), ["4.2.2.7", "4.2.5"])
    print(report.table())
"""
from .config import ProbeConfig, from_dict
from .config import load as load_config
from .report import Report, Result
from .runner import Probe, run

__all__ = ["Probe", "ProbeConfig", "Report", "Result", "from_dict", "load_config", "run"]
