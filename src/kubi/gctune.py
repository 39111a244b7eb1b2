"""Cyclic garbage collection for processes that hold the cluster's objects in memory.

kubi's long-running processes keep every object of the cluster decoded: the
API server's watch cache and its history, the informers of the controllers,
the scheduler, the simulated nodes and the agent. That is millions of dicts,
lists and strings, long-lived and almost never in reference cycles, so
reference counting frees them without help. With CPython's default
thresholds, though, a full collection walks all of them whenever the old
generation has grown by a quarter: with 10,000 pods a pause of about 300 ms
every few seconds, and a third of each process's CPU spent finding nothing.

`tune()` keeps automatic collection for the young generation only, where the
short-lived cycles of asyncio and aiohttp (tasks, futures, exceptions with
their tracebacks) are found cheaply, and lets survivors settle in the older
generations untouched; a thread runs one full collection every
`FULL_INTERVAL` seconds for the rare cycle that outlived its first
collection.
"""

from __future__ import annotations

import gc
import threading

YOUNG_THRESHOLD = 50_000
NEVER = 1_000_000_000
FULL_INTERVAL = 600.0

_started = False


def tune(full_interval: float = FULL_INTERVAL) -> None:
    """Apply the thresholds above and start the periodic full collection (once)."""
    global _started
    gc.set_threshold(YOUNG_THRESHOLD, NEVER, NEVER)
    if _started:
        return
    _started = True
    threading.Thread(target=collect_every, args=(full_interval, threading.Event()),
                     name="full-gc", daemon=True).start()


def collect_every(interval: float, stop: threading.Event) -> None:
    """A full collection every `interval` seconds until `stop` is set."""
    while not stop.wait(interval):
        gc.collect()
