"""Events of the N32 state machines (handshake, relation lifecycle), dispatched by type.

As in ``h2`` (``H2Connection.receive_data() -> list[Event]``), the sans-I/O core reports what
happened as event objects and the I/O owner acts on them: an ``isinstance`` / ``match`` on the
class, never a comparison of class names.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .errors import POLICY_MISMATCH, N32Error

if TYPE_CHECKING:
    from .context import N32fContext


class N32Event:
    """Base class of every event the N32 state machines emit."""

    peer: str


# ------------------------------------------------------------------------- N32-c (handshake)
@dataclass
class RelationEstablished(N32Event):
    """exchange-capability selected ``capability`` with ``peer`` (TLS mode needs nothing more)."""

    peer: str
    capability: str


@dataclass
class RelationReleased(N32Event):
    """The peer released a TLS-mode relation with ``["NONE"]`` (interop profile point 3)."""

    peer: str


@dataclass
class ContextEstablished(N32Event):
    """Round 1 of exchange-params gave a new N32-f context (responder: usable for receiving)."""

    context: "N32fContext"
    peer: str = ""

    def __post_init__(self) -> None:
        self.peer = self.peer or self.context.peer_fqdn


@dataclass
class HandshakeCompleted(N32Event):
    """All rounds of one N32-c handshake are done (the context, if PRINS, is complete)."""

    peer: str
    capability: str
    context: "N32fContext | None" = None


@dataclass
class ContextTerminated(N32Event):
    """The peer ended a context with n32f-terminate."""

    context: "N32fContext"
    peer: str = ""

    def __post_init__(self) -> None:
        self.peer = self.peer or self.context.peer_fqdn


@dataclass
class PolicyMismatch(N32Event):
    peer: str
    context: "N32fContext | None"
    invalid_params: list[dict]
    report: bool

    def error(self) -> N32Error:
        """What the n32f-error report carries (TS 29.573 N32fErrorType POLICY_MISMATCH)."""
        return N32Error(403, POLICY_MISMATCH, "protection policy mismatch", n32f_error_type=POLICY_MISMATCH,
                        invalid_params=self.invalid_params)


@dataclass
class N32fErrorReceived(N32Event):
    peer: str
    info: dict


# ------------------------------------------------------------------------- relation lifecycle
@dataclass
class HandshakeDue(N32Event):
    """The I/O owner should run the initiator handshake with ``peer`` now."""

    peer: str
    rekey: bool = False
    attempt: int = 1


@dataclass
class TerminateDue(N32Event):
    """The I/O owner should send n32f-terminate for ``context`` (then it is gone locally)."""

    peer: str
    context: "N32fContext"


@dataclass
class ReleaseDue(N32Event):
    """The I/O owner should send exchange-capability ``["NONE"]`` to end a TLS-mode relation."""

    peer: str


@dataclass
class ContextExpired(N32Event):
    peer: str
    context: "N32fContext"


@dataclass
class ContextRetired(N32Event):
    """An older context of a rekeyed relation left the store after the grace period."""

    peer: str
    context: "N32fContext"


@dataclass
class StateChanged(N32Event):
    peer: str
    old: str
    new: str
    reasons: list[str] = field(default_factory=list)
