"""What the two sides of the engine (n32/sending.py, n32/receiving.py) use of
:class:`n32.engine.Engine`, which they are parts of: its state and its shared steps."""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from . import body as body_mod, edge as edge_mod, prins
    from .config import Peer as PeerConfig, SeppConfig
    from .context import ContextStore, N32fContext
    from .errors import N32Error
    from .exchange import Action, Exchange, HopKind
    from .policy import PolicySet


class EngineParts:
    cfg: SeppConfig
    limits: body_mod.Limits
    policy: PolicySet
    store: ContextStore
    edge: edge_mod.Edge
    _peers: dict[str, PeerConfig]
    _ipx_with_anchor: set[str]
    _retry_after: int
    _fail: Callable[[Exchange, N32Error], list[Action]]
    _seal: Callable[..., tuple[dict, int]]
    _after_open: Callable[[Exchange, N32fContext, prins.Opened], list[Action]]
    _timeout: Callable[[HopKind], float]
    ri_parameters: Callable[[N32fContext], dict]
    modification_check: Callable[[N32fContext], prins.ModificationCheck]
