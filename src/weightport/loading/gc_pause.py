"""Pausing Python's cyclic garbage collector while a load runs (the one place that does it).

A plan makes a few Python objects per tensor (records, producers, views of the mapped file). Every
700 allocations the collector runs, and now and then it traverses every tracked object of the
process, so on a model of thousands of tensors it took about 40 % of ``plan()``'s time (5,000 tensors,
``benchmarks/plan_speed.py``: 0.30 s with the collector running, 0.18 s paused). A load frees what it
makes by reference counting; nothing it makes waits on the cyclic collector, which runs again as soon
as the load returns or fails.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Disable the cyclic collector for the block, and enable it again after (only if it was enabled).

    Nested use is free: an inner block finds the collector disabled and leaves it to the outer one.
    Usable as a decorator.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
