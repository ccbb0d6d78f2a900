"""Holding Python's cycle collector off while large, long-lived structures are built and run."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def cycle_collection_paused() -> Iterator[None]:
    """Hold Python's cycle collector off for the duration, restoring its state after.

    A large network's databases are millions of list slots that every full collection walks
    again as the heap grows, and building a run's results allocates millions of small lists and
    dicts that set collections off (benchmarks/README.md says what pausing saves). Members make
    little cyclic garbage; it is collected afterwards as usual. Nesting is harmless: an inner
    pause leaves the state to the outer one.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
