"""N32-f replay protection (TS 33.501 §13.2.2.4.3 "counters are used for replay protection";
N32-SPEC §4.3; profile points 11 and 26).

* :class:`ReplayWindow`: per receive key, an RFC 4303 §3.4.3 sliding window over the 32-bit SEQ
  of the JWE nonce (salt || SEQ). Call :meth:`ReplayWindow.check` before and
  :meth:`ReplayWindow.accept` only **after** the AEAD check succeeded, so that forged messages
  cannot move the window.
* :class:`MessageIdCache`: bounded, expiring memory of the ``messageId`` values already answered.

A replay is answered with 403 ``REPLAY_DETECTED`` and no ``n32f-error`` report (profile 26).
"""
from __future__ import annotations

from collections import OrderedDict

from .errors import N32Error

REPLAY_DETECTED = "REPLAY_DETECTED"
_SEQ_SPACE = 2**32


class ReplayWindow:
    """Sliding anti-replay window of ``size`` sequence numbers ending at the highest SEQ accepted.

    Sequence numbers above the right edge are new; inside the window each is accepted once;
    below it they are too old (RFC 4303 §3.4.3). SEQ starts at 0 and never wraps (profile 11).
    """

    def __init__(self, size: int = 1024) -> None:
        if size < 1:
            raise ValueError("replay window size must be positive")
        self.size = size
        self._top = -1  # highest accepted SEQ; -1 = none yet
        self._bitmap = 0  # bit i set <=> SEQ (top - i) accepted
        self._mask = (1 << size) - 1

    def _problem(self, seq: int) -> str | None:
        if not 0 <= seq < _SEQ_SPACE:
            return f"nonce sequence {seq} outside the 32-bit range"
        if seq > self._top:
            return None
        offset = self._top - seq
        if offset >= self.size:
            return (f"nonce sequence {seq} is older than the replay window "
                    f"({self._top - self.size + 1}..{self._top})")
        if self._bitmap >> offset & 1:
            return f"nonce sequence {seq} already received"
        return None

    def check(self, seq: int) -> bool:
        """Whether ``seq`` would be accepted (no state change)."""
        return self._problem(seq) is None

    def admit(self, seq: int) -> bool:
        """:meth:`check` and, if it passes, :meth:`accept`, with one look at the window."""
        top = self._top
        if top < seq < _SEQ_SPACE:      # past the right edge (the usual case), recorded inline
            shift = seq - top
            self._bitmap = 1 if shift >= self.size else ((self._bitmap << shift) | 1) & self._mask
            self._top = seq
            return True
        if self._problem(seq) is not None:
            return False
        self._record(seq)
        return True

    def accept(self, seq: int) -> None:
        """Record ``seq`` as received; N32Error 403 ``REPLAY_DETECTED`` if it is a replay or too old."""
        problem = self._problem(seq)
        if problem:
            raise N32Error(403, REPLAY_DETECTED, problem)
        self._record(seq)

    def _record(self, seq: int) -> None:
        if seq > self._top:
            shift = seq - self._top
            # A jump of a whole window clears it (and avoids building a 2**32-bit integer).
            self._bitmap = 1 if shift >= self.size else ((self._bitmap << shift) | 1) & self._mask
            self._top = seq
        else:
            self._bitmap |= 1 << (self._top - seq)


class MessageIdCache:
    """The ``messageId`` values seen in the last ``ttl`` seconds, at most ``max_entries`` of them.

    When full, the oldest entry is dropped; the nonce window of the key remains the primary
    replay defence, this cache catches a messageId reused under a new nonce. The caller passes
    ``now`` (seconds on any monotonic scale); a caller without a clock (the offline decoder,
    tests) passes None and gets the latest time it was given, so nothing expires by age then
    (entries still leave when the cache is full).
    """

    def __init__(self, max_entries: int = 100_000, ttl: float = 300.0) -> None:
        if max_entries < 1 or ttl <= 0:
            raise ValueError("max_entries and ttl must be positive")
        self.max_entries = max_entries
        self.ttl = ttl
        self.latest = 0.0           # the latest ``now`` given (a clock that steps back is not trusted)
        self._expiry: OrderedDict[str, float] = OrderedDict()  # insertion order == expiry order
        self._purge_at = 0.0        # at most the first entry's expiry: no purge is due before

    def __len__(self) -> int:
        return len(self._expiry)

    def _now(self, now: float | None) -> float:
        if now is not None and now > self.latest:
            self.latest = now
        return self.latest

    def purge(self, now: float | None = None) -> None:
        """Drop the entries whose ``ttl`` ran out by ``now``."""
        now = self._now(now)
        while self._expiry and next(iter(self._expiry.values())) <= now:
            self._expiry.popitem(last=False)
        self._purge_at = next(iter(self._expiry.values())) if self._expiry else now + self.ttl

    def seen(self, message_id: str, now: float | None = None) -> bool:
        """Whether ``message_id`` was added less than ``ttl`` seconds before ``now`` (and not evicted)."""
        expiry = self._expiry.get(message_id)
        return expiry is not None and expiry > self._now(now)

    def add(self, message_id: str, now: float | None = None) -> None:
        """Remember ``message_id`` for ``ttl`` seconds from ``now`` (re-adding restarts its lifetime)."""
        now = self._now(now)
        if now >= self._purge_at:
            self.purge(now)
        self._expiry.pop(message_id, None)
        self._expiry[message_id] = now + self.ttl
        while len(self._expiry) > self.max_entries:
            self._expiry.popitem(last=False)
