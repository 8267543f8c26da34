"""The garbage collector in a process that hosts a runtime (``eventual dev``).

Such a process keeps thousands of warm executors alive for as long as their executions run,
and makes a steady stream of objects that live for a few awaits (a step's events, futures
and rows). With CPython's default thresholds a young collection runs every 700 net
allocations: those short-lived objects outlive it, are promoted, and the old generation
grows by a quarter often enough that full collections, each walking every warm executor,
take a large share of the time (resuming 10,000 parked executions, all warm: 2.3 s of
collections in a 6.3 s run). Collecting the young generation every 50,000 allocations lets
those objects die young; freezing what start-up made (modules, the service, pydantic's
validators) keeps it out of every later pass.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 50_000
"""Net allocations between young collections in a runtime's host (CPython's default: 700)."""


def settle_after_startup() -> None:
    """Call once, when start-up is done: collect, move everything alive to the permanent
    generation, and raise the young generation's threshold (never lower it). A process whose
    collector is off is left as it is."""
    if not gc.isenabled():
        return
    gc.collect()
    gc.freeze()
    young, middle, old = gc.get_threshold()
    if young and young < YOUNG_THRESHOLD:
        gc.set_threshold(YOUNG_THRESHOLD, max(middle, 20), old)
