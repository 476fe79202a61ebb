"""FLAW (test process only): as N32 client, any server certificate under the peer's anchor is
taken, whatever PLMNs it names (no n32.trust.check_server_plmns)."""
from n32io import tls

tls.check_server_plmns = lambda cert, plmn_ids: None
