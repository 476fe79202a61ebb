"""SEPP and IPX configuration: load one YAML file, validate it, fail with one clear line.

    cfg = load_sepp_config("lab/out/sepp-v.yaml")      # -> SeppConfig
    ipx = load_ipx_config("lab/out/ipx1.yaml")         # -> IpxConfig

Every problem raises :class:`ConfigError` whose text is exactly one line
``<file>: <dotted.key>: <what is wrong>``, e.g.
``lab/sepp-v.yaml: peers[0].trust_anchor: file not found: certs/out/plmn-999-70/ca.crt``.

* Unknown keys are errors (typo protection), reported before anything else in their mapping,
  with a suggestion when a known key is close. Duplicate keys in one mapping are errors too.
* Certificates, keys and trust anchors must exist and parse; a private key must match its
  certificate; certificates must be within their validity period.
* A PLMN ID may map to only one peer trust anchor (TS 33.501 §13.1); our own PLMN IDs may not
  be claimed by a peer.

Layout: ``errors`` (ConfigError), ``fields`` (typed access to one parsed mapping), one schema
module per section (``listeners``, ``peers``, ``sepp``, ``ipx``), ``loader`` (the only file I/O).
To add a section: a dataclass and a parse function in its schema module, its key in
``sepp.SEPP_KEYS``, a field of ``SeppConfig``. docs/configuration.md documents every key.
"""
from ..plmn import PlmnId
from .errors import ConfigError
from .fields import REQUIRED
from .ipx import HTTP_METHODS, PATCH_OPS, IpxConfig, ModificationRule, NextHop
from .listeners import Listener, Listeners
from .loader import load_ipx_config, load_sepp_config, resolve
from .peers import CAPABILITIES, OPTION_CHOICES, FirstHop, IpxKeys, Peer, PeerOptions
from ..body import Limits
from .sepp import (JWE_SUITES, JWS_SUITES, NF_PROTOCOLS, Contexts, Handshake, HomeNfs, Policies, SeppConfig,
                   Telescopic, Timeouts, TopologyHiding)

__all__ = [
    "CAPABILITIES", "JWE_SUITES", "JWS_SUITES", "ConfigError", "PlmnId", "Listener", "Listeners", "Policies",
    "HomeNfs", "Contexts", "Handshake", "IpxKeys", "FirstHop", "PeerOptions", "Peer", "SeppConfig",
    "NextHop", "ModificationRule", "IpxConfig", "load_sepp_config", "load_ipx_config", "resolve",
    "Telescopic", "TopologyHiding", "Limits", "Timeouts", "NF_PROTOCOLS", "OPTION_CHOICES", "HTTP_METHODS", "PATCH_OPS", "REQUIRED",
]
