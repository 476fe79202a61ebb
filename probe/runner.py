"""Runs cases against a target: the probe's servers live on one event loop in a background
thread, so a caller (the CLI, or pytest with one target per session) runs case after case
synchronously while the NF and N32-c servers keep listening in between."""
from __future__ import annotations

import asyncio
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterable

from n32io.h2client import H2Error, Response

from . import report
from .config import ProbeConfig
from .peer import PeerSepp, Session
from .servers import Recorder, n32c_reply


CONNECTION_ERRORS = (H2Error, OSError, asyncio.TimeoutError)


class Refused:
    """The target refused a connection or reset it: an answer too (a refusal), not an exception."""

    status = None

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def __str__(self) -> str:
        return f"{type(self.error).__name__}: {self.error}"


class Failed(Exception):
    """The target did what the clause forbids (or not what it requires)."""


class NotApplicable(Exception):
    pass


def short(rsp: Response | Refused | BaseException | None) -> dict:
    """Evidence form of an answer (or of the failure to get one)."""
    if rsp is None:
        return {"answer": None}
    if isinstance(rsp, (BaseException, Refused)):
        return {"refused": str(rsp) if isinstance(rsp, Refused) else f"{type(rsp).__name__}: {rsp}"}
    body = rsp.body[:1500].decode(errors="replace")
    return {"status": rsp.status, "content-type": rsp.header("content-type"), "body": body}


@dataclass
class Trace:
    """What one case sent and got back: the evidence of its verdict."""

    evidence: list[dict] = field(default_factory=list)

    def sent(self, what: str, detail: Any = None) -> None:
        self.evidence.append({"sent": what, **({"detail": detail} if detail is not None else {})})

    def got(self, what: str, rsp: Response | Refused | BaseException | dict | None) -> None:
        self.evidence.append({"got": what, **(rsp if isinstance(rsp, dict) else short(rsp))})

    def note(self, text: str) -> None:
        self.evidence.append({"note": text})


@dataclass(frozen=True)
class Case:
    id: str
    title: str
    clause: str
    fn: Callable[["Env", Trace], Awaitable[None]]
    modes: tuple[str, ...] = ("PRINS", "TLS")      # N32-f modes of the target the case applies to


class Env:
    """The probe's side of a run: the peer SEPP, its servers and the shared N32 session."""

    def __init__(self, cfg: ProbeConfig) -> None:
        self.cfg = cfg
        self.peer = PeerSepp(cfg)
        self.nf = Recorder(cfg.nf_listen, cfg.nf_tls, None)
        self.n32c = Recorder(cfg.peer.n32c_listen, cfg.peer.tls, cfg.target.ca, n32c_reply) \
            if cfg.peer.n32c_listen else None
        other = cfg.trust.get("other_peer")
        self.n32c_other = Recorder(other.n32c_listen, other.tls, cfg.target.ca, n32c_reply) \
            if other is not None and getattr(other, "n32c_listen", None) else None
        self._session: Session | None = None
        self.mode: str | None = None

    async def start(self) -> None:
        await self.nf.start()
        for r in (self.n32c, self.n32c_other):
            if r is not None:
                await r.start()

    async def stop(self) -> None:
        for r in (self.nf, self.n32c, self.n32c_other):
            if r is not None:
                await r.stop()

    async def session(self, fresh: bool = False) -> Session:
        """The N32 relation the cases share (a new handshake when ``fresh`` or none yet)."""
        if self._session is None or fresh:
            self._session = await self.peer.handshake()
            self.mode = self._session.capability
        return self._session

    def adopt(self, session: Session) -> None:
        self._session, self.mode = session, session.capability

    async def send(self, t: Trace, what: str, body: dict, **kw: Any) -> Response | Refused:
        """POST an N32-f message; a refused connection is an answer too (returned, not raised)."""
        t.sent(what, _brief_body(body))
        try:
            rsp = await self.peer.post_n32f(self._session, body, **kw)
        except CONNECTION_ERRORS as e:
            t.got("answer", e)
            return Refused(e)
        t.got("answer", rsp)
        return rsp

    async def delivered(self, mark: int, timeout: float = 0.1) -> list:
        """What reached the NF behind the target since ``mark`` (waits ``timeout`` for stragglers:
        a SEPP forwards before it answers, so the answer already tells)."""
        await asyncio.sleep(timeout)
        return self.nf.since(mark)


def _brief_body(body: Any) -> Any:
    if isinstance(body, dict) and "reformattedData" in body:
        from n32 import jwe
        try:
            aad = jwe.peek_aad(body["reformattedData"])
        except Exception:  # noqa: BLE001 - evidence only
            aad = None
        return {"clearBlock": aad, "modificationsBlock": len(body.get("modificationsBlock") or [])}
    return body


class Probe:
    """``Probe(cfg)`` starts the probe's servers; ``run(ids)`` runs cases; ``close()`` stops them."""

    def __init__(self, cfg: ProbeConfig) -> None:
        from .cases import CASES

        self.cfg, self.cases = cfg, CASES
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="probe", daemon=True)
        self._thread.start()
        self.env = Env(cfg)
        self._call(self.env.start())

    def _call(self, coro: Awaitable[Any], timeout: float = 120) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]

    def run_case(self, case_id: str) -> report.Result:
        case = self.cases[case_id]
        return self._call(self._run(case))

    async def _run(self, case: Case) -> report.Result:
        t, t0 = Trace(), time.monotonic()
        verdict, reason = report.PASSED, ""
        try:
            try:
                await self.env.session()
            except Exception as e:  # noqa: BLE001
                raise RuntimeError(f"no N32 relation with the target: {e}") from e
            if self.env.mode not in case.modes:
                raise NotApplicable(f"the target negotiated {self.env.mode}; this case needs {'/'.join(case.modes)}")
            await asyncio.wait_for(case.fn(self.env, t), 60)
        except Failed as e:
            verdict, reason = report.FAILED, str(e)
        except NotApplicable as e:
            verdict, reason = report.NOT_APPLICABLE, str(e)
        except Exception as e:  # noqa: BLE001 - the probe's own trouble is an error, not a verdict
            verdict, reason = report.ERROR, f"{type(e).__name__}: {e}"
            t.note(traceback.format_exc(limit=6))
        return report.Result(case.id, case.title, case.clause, verdict, reason, t.evidence,
                             round(time.monotonic() - t0, 3))

    def run(self, ids: Iterable[str] | None = None) -> report.Report:
        rep = report.Report(self.cfg.target.n32c)
        for cid in (list(ids) if ids else list(self.cases)):
            rep.results.append(self.run_case(cid))
        return rep

    def close(self) -> None:
        try:
            self._call(self.env.stop(), 15)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)

    def __enter__(self) -> "Probe":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run(cfg: ProbeConfig, ids: Iterable[str] | None = None) -> report.Report:
    """The Python API: run the cases ``ids`` (default: all) against ``cfg.target``."""
    with Probe(cfg) as p:
        return p.run(ids)
