"""n32io/heap.py: start-up objects leave the collector's generations; later cycles are still collected."""
from __future__ import annotations

import gc
import weakref

from n32io import heap


class _Node:
    def __init__(self) -> None:
        self.me = self


def test_what_exists_is_frozen_and_what_comes_later_is_collected() -> None:
    try:
        before = _Node()
        frozen = heap.freeze_startup_objects()
        assert frozen == gc.get_freeze_count() > 0
        assert not any(o is before for o in gc.get_objects())       # out of every generation
        later = _Node()
        ref = weakref.ref(later)
        del later
        gc.collect()
        assert ref() is None                                        # a cycle made afterwards is collected
    finally:
        gc.unfreeze()
