"""FLAW (test process only): the certificate's PLMN picks the peer, whichever trusted CA issued
it: the per-PLMN anchor check of n32.trust is skipped (SCAS TS 33.517 4.2.5 must catch it)."""
from n32 import trust

_orig = trust.identify_client_peer


def _flawed(chain, peers):
    try:
        return _orig(chain, peers)
    except trust.N32Error as e:
        if "not issued by the anchor" not in e.detail:
            raise
        plmns = trust.cert_plmns(chain[0])
        return next(p for p in peers if plmns & {trust._norm(x) for x in p.plmn_ids})


trust.identify_client_peer = _flawed
