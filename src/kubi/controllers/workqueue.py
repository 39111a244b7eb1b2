"""A rate-limited work queue with client-go's semantics, for asyncio workers.

Keys flow in from informer handlers (`add`, `add_after`, `add_rate_limited`)
and out to workers (`get` ... `done`). Three sets make the guarantees:
`_queue` (ordered, waiting for a worker), `_dirty` (needs processing) and
`_processing` (held by a worker). A key is queued at most once however often
it is added, and never handed to two workers at once: a key added while it is
being processed stays dirty and is queued again when the worker calls `done`.

Delayed adds sit on loop timers, one per key (an earlier deadline replaces a
later one). `add_rate_limited` delays a key by its own exponential backoff,
5 ms doubling per failure up to 1000 s, until `forget` clears its history;
there is deliberately no overall token bucket throttling every key.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)

DEFAULT_BASE_DELAY = 0.005
DEFAULT_MAX_DELAY = 1000.0


class QueueShutDown(Exception):
    """Raised by `get` once the queue is shut down and drained."""


class ItemExponentialBackoff(Generic[K]):
    """Per-key exponential backoff: base * 2**failures, capped at max_delay."""

    def __init__(self, base_delay: float = DEFAULT_BASE_DELAY,
                 max_delay: float = DEFAULT_MAX_DELAY) -> None:
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._failures: dict[K, int] = {}

    def when(self, key: K) -> float:
        exponent = self._failures.get(key, 0)
        self._failures[key] = exponent + 1
        # Compare exponents first so a long failure streak cannot overflow a float.
        if exponent > 1100:
            return self.max_delay
        return min(self.base_delay * 2.0**exponent, self.max_delay)

    def forget(self, key: K) -> None:
        self._failures.pop(key, None)

    def num_requeues(self, key: K) -> int:
        return self._failures.get(key, 0)


class WorkQueue(Generic[K]):
    """Deduplicating, delaying, rate-limited queue of keys."""

    def __init__(self, *, name: str = "",
                 rate_limiter: ItemExponentialBackoff[K] | None = None) -> None:
        self.name = name
        self.rate_limiter: ItemExponentialBackoff[K] = rate_limiter or ItemExponentialBackoff()
        self._queue: deque[K] = deque()
        self._dirty: set[K] = set()
        self._processing: set[K] = set()
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._timers: dict[K, tuple[float, asyncio.TimerHandle]] = {}
        self._shutting_down = False

    # ---- producers

    def add(self, key: K) -> None:
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        if key in self._processing:
            return  # `done` queues it again
        self._queue.append(key)
        self._wake_one()

    def add_after(self, key: K, delay: float) -> None:
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + delay
        pending = self._timers.get(key)
        if pending is not None:
            if pending[0] <= deadline:
                return
            pending[1].cancel()
        handle = loop.call_at(deadline, self._fire, key)
        self._timers[key] = (deadline, handle)

    def add_rate_limited(self, key: K) -> None:
        self.add_after(key, self.rate_limiter.when(key))

    def forget(self, key: K) -> None:
        self.rate_limiter.forget(key)

    def num_requeues(self, key: K) -> int:
        return self.rate_limiter.num_requeues(key)

    # ---- consumers

    async def get(self) -> K:
        """The next key, marked as being processed; the caller must call `done`."""
        while not self._queue and not self._shutting_down:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()  # pass on a wake-up this cancelled getter consumed
                else:
                    waiter.cancel()
                raise
        if not self._queue:
            raise QueueShutDown(self.name)
        key = self._queue.popleft()
        self._processing.add(key)
        self._dirty.discard(key)
        return key

    def done(self, key: K) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._queue.append(key)
            self._wake_one()

    # ---- lifecycle

    def shutdown(self) -> None:
        """Refuse new keys, drop pending delays, release every blocked getter."""
        self._shutting_down = True
        for _, handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def processing(self) -> int:
        return len(self._processing)

    @property
    def waiting(self) -> int:
        """Keys scheduled by `add_after` whose delay has not yet passed."""
        return len(self._timers)

    # ---- internals

    def _fire(self, key: K) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
