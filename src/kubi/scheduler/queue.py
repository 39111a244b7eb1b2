"""The scheduling queue: which pending pod to try next, and when to retry one.

Three places hold a pod, as upstream's PriorityQueue has them:

- the active queue, a heap ordered by priority (highest first), then by the
  time the pod entered the queue (so a pod that just failed goes behind its
  peers, and equal pods keep their arrival order);
- the backoff queue, for pods that failed and must wait 1 s, 2 s, 4 s, ...
  up to 10 s (doubling per failed attempt) before they are tried again;
- the unschedulable pods, parked until a cluster event could change their
  fate: a node added or changed in a way scheduling sees, an assigned pod
  deleted (resources and ports freed), an assigned pod added or relabelled
  (for affinity and spreading). Only pods refused by a plugin that such an
  event concerns are moved. A periodic flush also retries any pod parked for
  5 minutes, so a missed event never strands a pod.

A pod being scheduled is "in flight"; if a move event arrives meanwhile, a
failure sends it to backoff instead of parking it, since the event may
already have made it schedulable. `pop()` waits for work; `close()` wakes it.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from kubi.scheduler.nodeinfo import PodInfo

INITIAL_BACKOFF = 1.0
MAX_BACKOFF = 10.0
MAX_UNSCHEDULABLE_DURATION = 300.0
BACKOFF_FLUSH_INTERVAL = 1.0
UNSCHEDULABLE_FLUSH_INTERVAL = 30.0

# Cluster events, and the plugins whose refusals each of them may undo.
NODE_ADD = "NodeAdd"
NODE_UPDATE = "NodeUpdate"
ASSIGNED_POD_ADD = "AssignedPodAdd"
ASSIGNED_POD_UPDATE = "AssignedPodUpdate"
ASSIGNED_POD_DELETE = "AssignedPodDelete"
UNSCHEDULABLE_TIMEOUT = "UnschedulableTimeout"
_ALL = None
EVENT_PLUGINS: dict[str, frozenset[str] | None] = {
    NODE_ADD: _ALL,
    NODE_UPDATE: _ALL,
    ASSIGNED_POD_ADD: frozenset({"InterPodAffinity", "PodTopologySpread"}),
    ASSIGNED_POD_UPDATE: frozenset({"InterPodAffinity", "PodTopologySpread"}),
    ASSIGNED_POD_DELETE: frozenset({"NodeResourcesFit", "NodePorts", "InterPodAffinity",
                                    "PodTopologySpread"}),
}


class QueueClosed(Exception):
    pass


@dataclass
class QueuedPod:
    pod: PodInfo
    timestamp: float
    initial_attempt: float | None = None
    attempts: int = 0
    unschedulable_count: int = 0
    consecutive_errors: int = 0
    unschedulable_plugins: set[str] = field(default_factory=set)

    @property
    def key(self) -> str:
        return self.pod.key


class SchedulingQueue:
    def __init__(self, *, clock: Callable[[], float] = time.monotonic,
                 initial_backoff: float = INITIAL_BACKOFF, max_backoff: float = MAX_BACKOFF,
                 max_unschedulable: float = MAX_UNSCHEDULABLE_DURATION) -> None:
        self.clock = clock
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.max_unschedulable = max_unschedulable
        self._active: list[tuple[int, float, int, str]] = []
        self._active_pods: dict[str, QueuedPod] = {}
        self._backoff: dict[str, QueuedPod] = {}
        self._unschedulable: dict[str, QueuedPod] = {}
        self._in_flight: dict[str, int] = {}  # key -> scheduling cycle it was popped in
        self._updated_in_flight: dict[str, PodInfo] = {}
        self._seq = itertools.count()
        self.scheduling_cycle = 0
        self._move_request_cycle = -1
        self._wakeup = asyncio.Event()
        self._closed = False

    # ---- sizes, for tests and metrics

    def __len__(self) -> int:
        return len(self._active_pods) + len(self._backoff) + len(self._unschedulable)

    @property
    def pending(self) -> dict[str, int]:
        return {"active": len(self._active_pods), "backoff": len(self._backoff),
                "unschedulable": len(self._unschedulable)}

    def where(self, key: str) -> str | None:
        if key in self._active_pods:
            return "active"
        if key in self._backoff:
            return "backoff"
        if key in self._unschedulable:
            return "unschedulable"
        if key in self._in_flight:
            return "in-flight"
        return None

    # ---- the active heap

    def _push_active(self, queued: QueuedPod) -> None:
        self._active_pods[queued.key] = queued
        heapq.heappush(self._active, (-queued.pod.priority, queued.timestamp, next(self._seq),
                                      queued.key))
        self._wakeup.set()

    def _pop_active(self) -> QueuedPod | None:
        while self._active:
            _, timestamp, _, key = heapq.heappop(self._active)
            queued = self._active_pods.get(key)
            # Entries of pods removed or re-pushed since are stale: skip them.
            if queued is not None and queued.timestamp == timestamp:
                del self._active_pods[key]
                return queued
        return None

    # ---- informer-driven changes

    def add(self, pod: PodInfo) -> None:
        """A new pending pod, or one seen again: straight to the active queue."""
        if self.update(pod):
            return
        self._push_active(QueuedPod(pod, self.clock()))

    def update(self, pod: PodInfo) -> bool:
        """Refresh a pod wherever it is; False when the queue does not hold it."""
        key = pod.key
        if key in self._in_flight:
            self._updated_in_flight[key] = pod
            return True
        if key in self._active_pods:
            queued = self._active_pods[key]
            if queued.pod.priority != pod.priority:
                queued.pod = pod
                queued.timestamp = self.clock()
                self._push_active(queued)
            else:
                queued.pod = pod
            return True
        for parked in (self._backoff, self._unschedulable):
            waiting = parked.get(key)
            if waiting is None:
                continue
            changed = _spec_changed(waiting.pod, pod)
            waiting.pod = pod
            if changed and parked is self._unschedulable:
                # The pod itself changed (tolerations, affinity, ...): worth a new try.
                del parked[key]
                self._requeue(waiting)
            return True
        return False

    def delete(self, key: str) -> None:
        self._active_pods.pop(key, None)
        self._backoff.pop(key, None)
        self._unschedulable.pop(key, None)
        self._updated_in_flight.pop(key, None)

    # ---- the scheduling loop's side

    def pop_nowait(self) -> QueuedPod | None:
        queued = self._pop_active()
        if queued is None:
            return None
        self.scheduling_cycle += 1
        queued.attempts += 1
        if queued.initial_attempt is None:
            queued.initial_attempt = self.clock()
        self._in_flight[queued.key] = self.scheduling_cycle
        return queued

    async def pop(self) -> QueuedPod:
        while True:
            if self._closed:
                raise QueueClosed()
            queued = self.pop_nowait()
            if queued is not None:
                return queued
            self._wakeup.clear()
            await self._wakeup.wait()

    def done(self, key: str) -> None:
        """The attempt on `key` is over, whatever its outcome."""
        self._in_flight.pop(key, None)
        self._updated_in_flight.pop(key, None)

    def requeue_unschedulable(self, queued: QueuedPod, plugins: Iterable[str]) -> None:
        """After a failed attempt: park the pod, or back it off if the world moved meanwhile."""
        cycle = self._in_flight.pop(queued.key, self.scheduling_cycle)
        updated = self._updated_in_flight.pop(queued.key, None)
        if updated is not None:
            queued.pod = updated
        queued.unschedulable_plugins = set(plugins)
        queued.unschedulable_count += 1
        queued.consecutive_errors = 0
        queued.timestamp = self.clock()
        if self._move_request_cycle >= cycle or updated is not None:
            self._backoff[queued.key] = queued
        else:
            self._unschedulable[queued.key] = queued

    def requeue_error(self, queued: QueuedPod) -> None:
        """After an error (e.g. the API refused the binding): retry after a backoff."""
        self._in_flight.pop(queued.key, None)
        updated = self._updated_in_flight.pop(queued.key, None)
        if updated is not None:
            queued.pod = updated
        queued.consecutive_errors += 1
        queued.timestamp = self.clock()
        self._backoff[queued.key] = queued

    # ---- backoff

    def backoff_duration(self, queued: QueuedPod) -> float:
        count = queued.consecutive_errors or queued.unschedulable_count
        duration = self.initial_backoff
        for _ in range(1, count):
            if duration > self.max_backoff - duration:
                return self.max_backoff
            duration += duration
        return min(duration, self.max_backoff) if count else 0.0

    def backoff_expiry(self, queued: QueuedPod) -> float:
        return queued.timestamp + self.backoff_duration(queued)

    def _requeue(self, queued: QueuedPod) -> None:
        if self.backoff_expiry(queued) > self.clock():
            self._backoff[queued.key] = queued
        else:
            self._push_active(queued)

    def flush_backoff_completed(self) -> int:
        now = self.clock()
        ready = [q for q in self._backoff.values() if self.backoff_expiry(q) <= now]
        for queued in ready:
            del self._backoff[queued.key]
            self._push_active(queued)
        return len(ready)

    def flush_unschedulable_leftover(self) -> int:
        now = self.clock()
        stale = [q for q in self._unschedulable.values()
                 if now - q.timestamp > self.max_unschedulable]
        for queued in stale:
            del self._unschedulable[queued.key]
            self._requeue(queued)
        return len(stale)

    # ---- cluster events

    def move_all(self, event: str, *, exclude: str | None = None) -> int:
        """Retry parked pods that `event` may help; returns how many moved."""
        concerned = EVENT_PLUGINS.get(event, _ALL)
        moving = [q for q in self._unschedulable.values()
                  if q.key != exclude and (concerned is None or not q.unschedulable_plugins
                                           or q.unschedulable_plugins & concerned)]
        for queued in moving:
            del self._unschedulable[queued.key]
            self._requeue(queued)
        self._move_request_cycle = self.scheduling_cycle
        return len(moving)

    async def run_flushes(self, *, backoff_interval: float = BACKOFF_FLUSH_INTERVAL,
                          unschedulable_interval: float = UNSCHEDULABLE_FLUSH_INTERVAL) -> None:
        """The two periodic flushes, until cancelled."""
        last_leftover = self.clock()
        while True:
            await asyncio.sleep(backoff_interval)
            self.flush_backoff_completed()
            if self.clock() - last_leftover >= unschedulable_interval:
                last_leftover = self.clock()
                self.flush_unschedulable_leftover()

    def close(self) -> None:
        self._closed = True
        self._wakeup.set()


def _spec_changed(old: PodInfo, new: PodInfo) -> bool:
    return old.pod.get("spec") != new.pod.get("spec") or old.labels != new.labels
