"""What the SEPP engine is given and what it answers (sans-I/O; see n32/engine.py).

An :class:`Exchange` is one HTTP exchange passing through the SEPP: the listener it arrived on,
who is on the other end of that connection (authenticated by TLS), the clock, and what the
engine decided and learnt while handling it (peer, context IDs, message ID, counts). The
adapter keeps it on the mitmproxy flow under :data:`METADATA_KEY`; the inspection tools (the
content view, the offline decoder, the lab) read it from there.

Actions are the engine's output: the adapter performs them and nothing else.
"""
from __future__ import annotations

import copy
import enum
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from .message import HttpRequest, HttpResponse

if TYPE_CHECKING:
    from .context import N32fContext

METADATA_KEY = "n32"


class Listener(enum.Enum):
    """The role of the listener a request arrived on (config ``listeners``)."""

    SBI = "sbi"        # our own NFs
    N32 = "n32"        # N32-c, and N32-f unless a separate N32-f listener is configured
    N32F = "n32f"      # N32-f only


class HopKind(enum.Enum):
    """Who the next hop of a forwarded message is (selects the TLS client context)."""

    PEER = "peer"      # the peer SEPP (N32-f, PRINS or TLS mode)
    IPX = "ipx"        # our first-hop roaming intermediary
    NF = "nf"          # a home NF


# Exchange fields kept in saved flows, with the wire names the metadata dict always had.
_WIRE = {"role": "role", "mode": "mode", "peer": "peer", "context": "context",
         "peer_context_id": "peerContextId", "message_id": "messageId", "encrypted": "encrypted",
         "encrypted_response": "encryptedResponse", "status": "status", "error": "error",
         "request_jwe": "requestJwe", "response_jwe": "responseJwe", "request_tag": "requestTag",
         "ipx_modifications": "ipxModifications", "ipx_modified_by": "ipxModifiedBy", "method": "method",
         "path": "path", "original": "original", "via_ipx": "viaIpx", "rh_error": "rhError",
         "operation": "operation", "answered": "answered", "report_to": "report_to",
         "answer_ri_parameters": "answerRiParameters"}


@dataclass(slots=True)
class Exchange:
    """One exchange through the SEPP: the engine's input and its record of what it did."""

    listener: Listener | None = None
    peer_identity: str | None = None      # FQDN of the peer SEPP authenticated on this connection
    ipx_identity: str | None = None       # FQDN of the roaming intermediary authenticated instead
    now: float = 0.0
    handshake_waited: bool = False        # the adapter already waited for a pending handshake
    handshake_retried: bool = False       # this is the one retry after the peer lost our context
    # Scale-out (docs/interop-profile.md): the N32-f endpoint the peer announced apart from its
    # N32-c address (one of its workers) this exchange was sent to, and whether the next hop
    # certainly never got the request (no connection or TLS, refused stream, GOAWAY below it).
    # Not saved with the flow.
    announced_dest: str | None = None
    undelivered: bool = False
    # ---- what the engine decided / learnt (saved with the flow)
    role: str | None = None               # sending | receiving | tls-receiving | n32c | local
    mode: str | None = None               # PRINS | TLS (sending side)
    peer: str | None = None
    context: str | None = None            # our N32-f context ID
    peer_context_id: str | None = None
    message_id: str | None = None
    encrypted: int = 0                    # IEs encrypted in the request
    encrypted_response: int = 0
    status: int | None = None             # status of the NF-level answer
    error: dict | None = None             # {status, cause, detail} when the engine refused
    request_jwe: dict | None = None       # N32-f form of a request restored in place
    response_jwe: dict | None = None      # N32-f form of a response restored in place
    request_tag: str = ""
    ipx_modifications: int = 0
    ipx_modified_by: list[str] = field(default_factory=list)
    method: str | None = None
    path: str | None = None
    original: dict | None = None
    via_ipx: str | None = None
    rh_error: dict | None = None
    operation: str | None = None
    answered: bool = False
    report_to: str | None = None          # peer to send an n32f-error to when this exchange fails
    answer_ri_parameters: bool = False
    # The context this exchange was protected with, held until its answer is protected or opened:
    # a rekey may retire that context (or the peer terminate it) while the message is in flight,
    # and its answer is still bound to it (make before break, docs/interop-profile.md). Never saved.
    held_context: "N32fContext | None" = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The saved form: plain JSON-like types only, default values left out."""
        out: dict[str, Any] = {}
        for name, wire in _WIRE.items():
            value = getattr(self, name)
            if value not in (None, "", 0, False, []):
                out[wire] = copy.deepcopy(value)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Exchange":
        """An exchange from its saved form (also the untyped dicts older versions saved)."""
        known = {f.name for f in fields(cls)}
        return cls(**{name: d[wire] for name, wire in _WIRE.items() if wire in d and name in known})

    def __deepcopy__(self, memo: dict) -> dict[str, Any]:
        # mitmproxy's Flow.get_state() deep-copies flow.metadata and saves it with tnetstring,
        # which knows only plain types: the copy is the saved form; readers use of_metadata().
        return self.to_dict()


def of_metadata(metadata: dict | None) -> Exchange | None:
    """The exchange kept in a flow's metadata: live object, or the dict of a saved flow."""
    value = (metadata or {}).get(METADATA_KEY)
    if isinstance(value, Exchange):
        return value
    if isinstance(value, dict):
        return Exchange.from_dict(value)
    return None


# ------------------------------------------------------------------------------------- actions
@dataclass(frozen=True, slots=True)
class Forward:
    """Send ``request`` to ``uri`` (scheme://host:port[/base]) over TLS named ``tls_name``."""

    request: HttpRequest
    uri: str
    hop: HopKind
    tls_name: str
    deadline: float | None = None         # absolute time (the ``now`` scale) to give up by
    protocol: str = "h2"                  # h2 (TLS, ALPN h2) | h2c (prior knowledge) | h1


@dataclass(frozen=True, slots=True)
class Answer:
    """Answer the exchange with ``response`` (replacing any upstream response)."""

    response: HttpResponse


@dataclass(frozen=True, slots=True)
class ReportError:
    """POST ``n32f-error`` with ``info`` (N32fErrorInfo, TS 29.573 §6.1.5.2.6) to ``peer``."""

    peer: str
    info: dict
    message_id: str
    context_id: str | None


@dataclass(frozen=True, slots=True)
class StartHandshake:
    """Run the N32-c handshake (or a rekey) with ``peer``; ``wait``: call the engine again when it
    ends or after the handshake wait, with ``Exchange.handshake_waited`` set."""

    peer: str
    rekey: bool = False
    wait: bool = False
    # the peer does not hold our context ``context_id`` (or, None, our TLS-mode relation): it
    # restarted; the relation is rebuilt and the NF request retried once (issue 12)
    dead: bool = False
    context_id: str | None = None


@dataclass(frozen=True, slots=True)
class HandleN32c:
    """An N32-c request for the handshake responder; answer with what it returns."""

    peer: str
    operation: str
    body: Any


@dataclass(frozen=True, slots=True)
class Log:
    """A log line (``level``: logging level name)."""

    line: str
    level: str = "warning"


@dataclass(frozen=True, slots=True)
class StatusChanged:
    """The relations/contexts description changed (peer RI parameters learnt)."""


Action = Forward | Answer | ReportError | StartHandshake | HandleN32c | Log | StatusChanged
