"""The interpreter's cycle collector, run less often while a tick, a replay or the render
worker works.

A tick makes and drops hundreds of thousands of small objects (occasions, candidates,
decisions, rows, messages), none of them in a reference cycle: reference counting frees
them all. The cycle collector is started by allocations alone, every 700 by default, and
each pass walks the young objects, and every so often all of them, a big day's list of
due occasions included. Within :func:`fewer_collections` it starts after
:data:`TICK_THRESHOLD` allocations instead; the thresholds are restored afterwards, and a
rare cycle is still collected. Measured on the 200k shop (bench/README.md): a big day's
tick 0.85 of its CPU time, its peak memory about 6 MB higher.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

TICK_THRESHOLD = 50_000  # allocations between two passes over the young objects


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Within: the cycle collector's first threshold is :data:`TICK_THRESHOLD` (a higher
    one is left as it is); restored on leaving, also when nested or raising."""
    before = gc.get_threshold()
    if before[0] < TICK_THRESHOLD:
        gc.set_threshold(TICK_THRESHOLD, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)
