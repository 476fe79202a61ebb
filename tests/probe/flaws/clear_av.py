"""FLAW (test process only): responses go out under PRINS with nothing encrypted."""
from n32 import policy, reformat

_orig = policy.PolicySet.selection


def _flawed(self, peer, method, path, direction):
    return reformat.IeSelection() if direction == "response" else _orig(self, peer, method, path, direction)


policy.PolicySet.selection = _flawed
