"""Expectations: what a controller waits to see before it acts on a key again.

A controller that just asked for 500 pods must not ask again until its
informer has seen them, or it would create 1000. Before creating it records
`expect_creations(key, n)`; each pod seen arriving lowers the count; until it
reaches zero `satisfied(key)` is False and the sync skips creating and
deleting (status is still written). Deletions are tracked by pod key, so a
pod seen first with a deletionTimestamp and later as deleted counts once.
Expectations expire after five minutes so a lost watch event cannot stall a
controller forever. Everything runs on one event loop: no locks are needed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

EXPECTATIONS_TIMEOUT = 300.0


@dataclass
class _Expectation:
    add: int
    delete: int
    timestamp: float
    deleting: set[str] = field(default_factory=set)

    def fulfilled(self) -> bool:
        return self.add <= 0 and self.delete <= 0


class ControllerExpectations:
    def __init__(self, *, clock: Callable[[], float] = time.monotonic,
                 timeout: float = EXPECTATIONS_TIMEOUT) -> None:
        self._clock = clock
        self._timeout = timeout
        self._store: dict[str, _Expectation] = {}

    def satisfied(self, key: str) -> bool:
        """True when the controller may act: nothing pending, or waited long enough."""
        exp = self._store.get(key)
        if exp is None or exp.fulfilled():
            return True
        return self._clock() - exp.timestamp > self._timeout

    def expect_creations(self, key: str, count: int) -> None:
        self._store[key] = _Expectation(count, 0, self._clock())

    def expect_deletions(self, key: str, pod_keys: Iterable[str]) -> None:
        pending = set(pod_keys)
        self._store[key] = _Expectation(0, len(pending), self._clock(), pending)

    def creation_observed(self, key: str) -> None:
        exp = self._store.get(key)
        if exp is not None:
            exp.add -= 1

    def deletion_observed(self, key: str, pod_key: str) -> None:
        exp = self._store.get(key)
        if exp is not None and pod_key in exp.deleting:
            exp.deleting.discard(pod_key)
            exp.delete -= 1

    def delete(self, key: str) -> None:
        self._store.pop(key, None)

    def pending(self, key: str) -> tuple[int, int]:
        """(creations, deletions) still expected; for logs and tests."""
        exp = self._store.get(key)
        return (exp.add, exp.delete) if exp else (0, 0)
