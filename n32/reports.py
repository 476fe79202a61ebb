"""Which ``n32f-error`` reports to send to a peer SEPP (TS 33.501 §13.2.2.3), sans-I/O.

Reports cost the receiver of a bad message N32-c requests (on one kept connection per peer,
n32io.n32c.ReportChannel), so a stream of bad messages must not become a stream of reports
(issue "hostile input", item 4):

* never for a message that did not authenticate: no context for its ID, or its JWE did not
  verify or decrypt (``UNAUTHENTICATED``); anyone who can reach the listener could send it, and
  the report would be an amplifier and an oracle. The sender still gets its HTTP answer;
* coalesced: one report per (peer, error type, context) per ``interval`` seconds; the others are
  counted and the count is logged;
* rate-limited: at most ``per_interval`` reports per peer per ``interval``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from . import errors
from .errors import N32Error

UNAUTHENTICATED = frozenset({errors.CONTEXT_NOT_FOUND, errors.INTEGRITY_CHECK_FAILED, errors.DECIPHERING_FAILED,
                             errors.INTEGRITY_KEY_EXPIRED, errors.ENCRYPTION_KEY_EXPIRED})


@dataclass
class _Window:
    start: float
    sent: int = 0
    keys: set = field(default_factory=set)


class ErrorReports:
    def __init__(self, interval: float = 1.0, per_interval: int = 5) -> None:
        self.interval, self.per_interval = interval, per_interval
        self._windows: dict[str, _Window] = {}
        self.suppressed: dict[tuple[str, str, str | None], int] = {}

    @staticmethod
    def reportable(error_type: str | None) -> bool:
        return error_type is not None and error_type not in UNAUTHENTICATED

    def admit(self, peer: str, info: dict, now: float) -> bool:
        """Whether to send the N32fErrorInfo ``info`` to ``peer`` now (else it is counted)."""
        kind = info.get("n32fErrorType")
        if not self.reportable(kind):
            return False
        w = self._windows.get(peer)
        if w is None or now >= w.start + self.interval:
            w = self._windows[peer] = _Window(now)
        key = (peer, str(kind), info.get("n32fContextId"))
        if key in w.keys or w.sent >= self.per_interval:
            self.suppressed[key] = self.suppressed.get(key, 0) + 1
            return False
        w.keys.add(key)
        w.sent += 1
        return True

    def offer(self, peer: str, err: N32Error, message_id: str | None, context_id: str | None,
              now: float) -> dict | None:
        """The N32fErrorInfo to send now for ``err``, or None (not reportable, coalesced or over the rate)."""
        if not self.reportable(err.n32f_error_type):
            return None
        info = err.n32f_error_info(message_id or "0", context_id)
        return info if self.admit(peer, info, now) else None

    def take_suppressed(self) -> dict[tuple[str, str, str | None], int]:
        """Counts of reports left out since the last call (for one log line each)."""
        out, self.suppressed = self.suppressed, {}
        return out
