"""n32.peer: one typed partner SEPP built from the lab's configuration (config, options, trust)."""
from __future__ import annotations

from pathlib import Path

from n32 import peer as peer_mod
from n32.config import PeerOptions, load_sepp_config
from n32.peer import Peer
from n32.plmn import PlmnId
from tests.n32.test_config import pki, write  # noqa: F401 (pki is a fixture)


def test_from_the_lab_config(tmp_path: Path, pki: Path):
    cfg = load_sepp_config(write(tmp_path, pki))
    (configured,) = cfg.peers
    p = Peer.from_config(configured)
    assert p.fqdn == configured.fqdn and p.n32c_uri == configured.n32c_uri
    assert p.plmn_ids and all(isinstance(x, PlmnId) for x in p.plmn_ids)
    assert p.security_capabilities == tuple(configured.security_capabilities)
    t = p.trust
    assert t.fqdn == p.fqdn and t.plmn_ids == list(p.plmn_ids) and t.anchors == [configured.trust_anchor]
    assert p.accepts(peer_mod.EXT_RI_PARAMETERS) == (peer_mod.EXT_RI_PARAMETERS in configured.options.extensions)


def test_normalised_values_options_and_extensions():
    p = Peer("SEPP.Example.ORG.", ("001-01", PlmnId("001", "002")), ["PRINS"],
             PeerOptions(kdf_hash="sha384", extensions=(peer_mod.EXT_WILDCARDS,)))
    assert p.fqdn == "sepp.example.org" and p.name == "sepp.example.org"
    assert p.plmn_ids == (PlmnId("001", "01"), PlmnId("001", "002")) and p.capabilities == ("PRINS",)
    assert p.opt("kdf_hash", "sha256") == "sha384" and p.opt("missing", 7) == 7
    assert p.accepts(peer_mod.EXT_WILDCARDS) and not p.accepts(peer_mod.EXT_EMPTY_ROUND3)
    bare = Peer("sepp.example.org", (), ("TLS",))
    assert bare.opt("kdf_hash", "sha256") == "sha256" and not bare.accepts(peer_mod.EXT_WILDCARDS)
    assert bare.trust.anchors == []
