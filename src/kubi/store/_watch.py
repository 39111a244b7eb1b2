"""Live fan-out of committed changes to in-process watchers.

The writer publishes each committed batch of events, in revision order, to
every subscription whose prefix matches. A subscription buffers events until
its watcher takes them; a watcher that falls too far behind is not allowed to
hold memory without bound: its subscription is marked overflowed and dropped,
and the watcher resumes from the durable log instead (see _core.watch), so a
slow reader costs a re-read, never a lost event.
"""

from __future__ import annotations

import asyncio
from collections import deque

from kubi.store.base import WatchEvent


class SubscriptionOverflow(Exception):
    """The watcher fell behind by more than the buffer allows."""


class Subscription:
    """The live event buffer of one watcher."""

    def __init__(self, prefix: str, limit: int) -> None:
        self.prefix = prefix
        self._limit = limit
        self._events: deque[WatchEvent] = deque()
        self._ready = asyncio.Event()
        self._overflowed = False
        self._closed = False

    def offer(self, events: list[WatchEvent]) -> None:
        if self._overflowed or self._closed:
            return
        prefix = self.prefix
        added = False
        for event in events:
            if event.key.startswith(prefix):
                self._events.append(event)
                added = True
        if not added:
            return
        if len(self._events) > self._limit:
            self._overflowed = True
            self._events.clear()
        self._ready.set()

    def close(self) -> None:
        self._closed = True
        self._ready.set()

    async def next(self) -> WatchEvent | None:
        """The next buffered event; None once closed and drained."""
        while not self._events:
            if self._overflowed:
                raise SubscriptionOverflow()
            if self._closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        return self._events.popleft()


class WatchHub:
    """The set of live subscriptions of one store."""

    def __init__(self, buffer_limit: int) -> None:
        self._buffer_limit = buffer_limit
        self._subscriptions: set[Subscription] = set()
        self._closed = False

    def subscribe(self, prefix: str) -> Subscription:
        subscription = Subscription(prefix, self._buffer_limit)
        if self._closed:
            subscription.close()
        else:
            self._subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)

    def publish(self, events: list[WatchEvent]) -> None:
        for subscription in self._subscriptions:
            subscription.offer(events)

    def close(self) -> None:
        self._closed = True
        for subscription in self._subscriptions:
            subscription.close()
        self._subscriptions.clear()

    def __len__(self) -> int:
        return len(self._subscriptions)
