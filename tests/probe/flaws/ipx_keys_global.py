"""FLAW (test process only): IPX keys learnt on any N32-c connection verify patches on every
context (one global key table per IPX identity, filled at the handshake, instead of per context)."""
from n32 import handshake, modifications

_orig_signers, _orig_params = modifications.signers_from, handshake.Responder._exchange_params
_learnt: dict[str, set] = {}


def _params(self, conn, body, *rest):
    outcome = _orig_params(self, conn, body, *rest)
    for info in (conn.context.peer_ipx_sec_info if conn.context else []) or []:
        _learnt.setdefault(info.get("ipxProviderId"), set()).update(info.get("rawPublicKeyList") or [])
    return outcome


def _signers(ipx_sec_info, patterns):
    signers = _orig_signers(ipx_sec_info, patterns)
    return {fqdn: modifications.Signer(fqdn, tuple(set(s.public_keys) | _learnt.get(fqdn, set())), s.patterns)
            for fqdn, s in signers.items()}


handshake.Responder._exchange_params = _params
modifications.signers_from = _signers
