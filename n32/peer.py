"""One partner SEPP as the core sees it: configuration, what we allow with it, how we trust it.

Replaces the three views the runtime used to look up by FQDN (the configured peer, the handshake
settings and the trust entry). It carries every attribute of the configured peer, so the I/O
layers may pass it wherever a configured peer was expected.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .plmn import PlmnId
from .trust import PeerTrust

if TYPE_CHECKING:
    from .config import FirstHop, IpxKeys, PeerOptions
    from .config import Peer as PeerConfig

# Our wire extensions (docs/interop-profile.md, "Extensions"), sent only to peers that list them in
# ``peers[].options.extensions``; towards any other peer the spec-only form is used.
EXT_RI_PARAMETERS = "n32c-parameters"            # n32cParameters in the clear block of N32-f
EXT_MODIFICATION_POLICY = "modification-policy"  # modificationPolicy member in exchange-params round 2
EXT_WILDCARDS = "wildcards"                      # "*" apiSignature / apiMethod mappings in ProtectionPolicy
EXT_EMPTY_ROUND3 = "empty-round3"                # round 3 without ipxProviderSecInfoList
EXTENSIONS = (EXT_RI_PARAMETERS, EXT_MODIFICATION_POLICY, EXT_WILDCARDS, EXT_EMPTY_ROUND3)


@dataclass(frozen=True)
class Peer:
    fqdn: str
    plmn_ids: tuple[PlmnId, ...]
    capabilities: tuple[str, ...]
    options: "PeerOptions | None" = None
    ipx_sec_info: tuple[dict, ...] = ()          # IpxProviderSecInfo configured for this peer
    name: str = ""
    n32c_uri: str = ""
    n32f_uri: str | None = None
    trust_anchor: Path | None = None
    initiate: bool = True
    first_hop_ipx: "FirstHop | None" = None
    ipx_keys: tuple["IpxKeys", ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "fqdn", self.fqdn.lower().rstrip("."))
        object.__setattr__(self, "plmn_ids", tuple(PlmnId.parse(p) for p in self.plmn_ids))
        object.__setattr__(self, "capabilities", tuple(self.capabilities))
        object.__setattr__(self, "ipx_sec_info", tuple(self.ipx_sec_info))
        if not self.name:
            object.__setattr__(self, "name", self.fqdn)

    @classmethod
    def from_config(cls, peer: "PeerConfig") -> "Peer":
        """From a configured peer (``n32.config`` ``Peer``)."""
        return cls(peer.fqdn, tuple(peer.plmn_ids), tuple(peer.security_capabilities), peer.options,
                   tuple(k.sec_info() for k in peer.ipx_keys), peer.name, peer.n32c_uri, peer.n32f_uri,
                   peer.trust_anchor, peer.initiate, peer.first_hop_ipx, tuple(peer.ipx_keys))

    @property
    def security_capabilities(self) -> tuple[str, ...]:
        return self.capabilities

    @property
    def trust(self) -> PeerTrust:
        """What authenticates this peer's certificates (TS 33.501 §13.1)."""
        return PeerTrust(self.fqdn, list(self.plmn_ids), [self.trust_anchor] if self.trust_anchor else [])

    def opt(self, name: str, default: Any) -> Any:
        """A per-peer interop option (``peers[].options``), ``default`` when unset."""
        return getattr(self.options, name, default) if self.options is not None else default

    def accepts(self, extension: str) -> bool:
        """Whether this peer is known to accept one of our wire extensions (``EXTENSIONS``)."""
        return extension in (self.opt("extensions", ()) or ())
