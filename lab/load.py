"""Steady NF traffic for fault injection (tests/integration/test_chaos.py, bench/soak.py).

``Load`` runs the roaming scenario (lab/scenario.py) in a background thread: ``workers`` UEs in
flight at all times, one after another, each request with its own deadline (the NF's timer).
Every answered or failed request is kept as a ``Sample`` with its start and end time
(``time.monotonic``), so a fault's window, the failures inside it and the recovery time can be
read afterwards. ``problem_defects`` checks that non-2xx answers are TS 29.571 ProblemDetails.
"""
from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from dataclasses import dataclass
from typing import Iterable

from lab.run import client_ssl
from lab.topology import Lab
from lab.traffic import StepResult, run_scenario


@dataclass(frozen=True)
class Sample:
    start: float
    end: float
    result: StepResult

    @property
    def ok(self) -> bool:
        return self.result.ok

    @property
    def sent(self) -> bool:
        """False for the steps a UE skipped after one of its steps failed."""
        return not (self.result.error or "").startswith("not sent")


class Load:
    def __init__(self, lab: Lab, *, workers: int = 2, deadline: float = 8.0, first_ue: int = 10_000,
                 pause: float = 0.0) -> None:
        self.lab, self.workers, self.deadline, self.pause = lab, workers, deadline, pause
        self.samples: list[Sample] = []
        self._next_ue = first_ue
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    def __enter__(self) -> "Load":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(self.deadline + 15)
        assert not self._thread.is_alive(), "the load did not end"

    async def _main(self) -> None:
        await asyncio.gather(*(self._worker() for _ in range(self.workers)))

    async def _worker(self) -> None:
        url = f"https://127.0.0.1:{self.lab.port('sepp-v.sbi')}"
        ctx = client_ssl(self.lab)

        def record(r: StepResult) -> None:
            end = time.monotonic()
            self.samples.append(Sample(end - r.latency_ms / 1000, end, r))

        while not self._stop.is_set():
            ue, self._next_ue = self._next_ue, self._next_ue + 1
            try:
                results = await run_scenario(url, 1, 1, ctx, record, first_ue=ue, timeout=self.deadline)
            except Exception:  # noqa: BLE001 - the connection to the SEPP failed: it is down
                results = []
            if not results or not all(r.ok for r in results):
                await asyncio.sleep(0.1)     # an NF backs off a little after a failure
            if self.pause:
                await asyncio.sleep(self.pause)

    # ------------------------------------------------------------------ reading the samples
    def between(self, t0: float, t1: float) -> list[Sample]:
        return [s for s in self.samples if s.sent and t0 <= s.start < t1]

    def failed(self, samples: Iterable[Sample] | None = None) -> list[Sample]:
        return [s for s in (self.samples if samples is None else samples) if s.sent and not s.ok]

    def recovery(self, ready: float, horizon: float | None = None) -> float | None:
        """Seconds from ``ready`` (the fault repaired: the peer reachable again) until traffic
        succeeds for good: the end of the first successful request started after both ``ready``
        and the last failure (of those ending within ``horizon`` seconds of ``ready``, when given:
        a long run's unrelated later failures are counted as such, not as this fault's recovery).
        None if traffic never succeeded after the fault."""
        last_fail = max((s.end for s in self.failed()
                         if s.end >= ready and (horizon is None or s.end <= ready + horizon)), default=ready)
        ok = [s.end for s in self.samples if s.ok and s.start >= last_fail]
        return min(ok) - ready if ok else None


_ADDRESS = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b|\[[0-9a-fA-F:]+\]|localhost|:\d{2,5}\b|Errno")


def problem_defects(samples: Iterable[Sample]) -> list[str]:
    """Every non-2xx answer must be ProblemDetails (TS 29.500 §5.2.7.2): application/problem+json,
    a ``cause``, a ``status`` equal to the HTTP status, and no internal address or port."""
    out = []
    for s in samples:
        r = s.result
        if r.status == 0 or 200 <= r.status < 300:
            continue
        where = f"{r.api} {r.step} {r.status}"
        if dict(r.response_headers).get("content-type") != "application/problem+json":
            out.append(f"{where}: content-type {dict(r.response_headers).get('content-type')}")
            continue
        try:
            pd = json.loads(r.response_body)
        except ValueError:
            out.append(f"{where}: body is not JSON")
            continue
        if not pd.get("cause") or pd.get("status") != r.status:
            out.append(f"{where}: {pd}")
        if _ADDRESS.search(str(pd.get("detail", ""))):
            out.append(f"{where}: address in detail {pd.get('detail')!r}")
    return out
