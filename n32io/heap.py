"""The cyclic garbage collector in a long-running SEPP or IPX process (issue 14 goal 2).

A SEPP process holds a few hundred thousand objects from start-up (mitmproxy, the cryptography
and schema modules, the policies and OpenAPI schemas it loads) that live as long as it does.
CPython's full collection traverses all of them each time: measured in the lab's PRINS SEPPs
under ``h2load`` (``gc.callbacks`` timing, 2,700 requests), 2-3 full collections of 25-32 ms each,
together 3-5 % of the process's CPU, more than a slim mitmproxy master pays (its heap is smaller
and it allocates less per request). :func:`freeze_startup_objects` moves what exists once the
process is configured into the permanent generation (``gc.freeze``, meant for exactly this):
collections then traverse only what was made since. Objects frozen are still freed by reference
counting; only a cycle among them that becomes garbage later is kept.
"""
from __future__ import annotations

import gc
import logging

log = logging.getLogger("sepp")


def freeze_startup_objects() -> int:
    """Collect once, then freeze what is left; the number of objects frozen."""
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.debug("%d start-up objects moved out of the collector's generations", frozen)
    return frozen
