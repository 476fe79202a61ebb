"""FLAW (test process only): TLS listeners take cleartext HTTP as mitmproxy's reverse mode does."""
from n32io import admission

_orig = admission.admit


def _flawed(first, *, tls):
    decision = _orig(first, tls=tls)
    if tls and decision.verdict is admission.Verdict.REFUSE:
        return _orig(first, tls=False)
    return decision


admission.admit = _flawed
