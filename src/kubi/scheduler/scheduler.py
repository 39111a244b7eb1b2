"""The scheduler component: watch pending pods, decide, bind, report.

`Scheduler(client, name=...)` takes the pods whose `spec.schedulerName` is
its name and that no node holds yet. Decisions are made one pod at a time,
synchronously, on the in-memory cache, each pod assumed on its node before
the next decision, so they never race each other; the `pods/binding` calls
then run concurrently (64 in flight by default, the loop waits when all are
busy), because the API round-trip, not the decision, is the slow part. A
bound pod gets a `Scheduled` event (written once the scheduler has recorded
none for half a second: controllers/eventhold.py); a pod that fits nowhere
gets the PodScheduled=False condition (reason `Unschedulable`, upstream's
message) and a `FailedScheduling` warning, and waits in the queue for a
cluster change.
A failed binding is forgotten from the cache and retried after a backoff.

Informer handlers (see `handlers.py`) keep the cache and the queue current.
With `leader_election` the scheduler only acts while holding the
`kube-system/kube-scheduler` Lease, with fresh state on every term.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import time
import uuid
from typing import Any

import aiohttp

from kubi.api.errors import StatusError
from kubi.client.client import Client, Resource
from kubi.controllers.eventhold import EventHold
from kubi.controllers.events import NORMAL, WARNING, EventBroadcaster
from kubi.controllers.leader import LeaderElector
from kubi.scheduler.algorithm import Diagnosis, schedule_pod
from kubi.scheduler.cache import SchedulerCache
from kubi.scheduler.handlers import Watches
from kubi.scheduler.nodeinfo import PodInfo
from kubi.scheduler.queue import ASSIGNED_POD_DELETE, QueueClosed, QueuedPod, SchedulingQueue
from kubi.scheduler.status import condition_patch, truncate_message

log = logging.getLogger(__name__)

DEFAULT_SCHEDULER_NAME = "default-scheduler"
LEASE_NAME = "kube-scheduler"
BIND_CONCURRENCY = 64
# Room for one Scheduled event per pod of a large burst, written after the bindings.
EVENT_QUEUE = 20000
# Events wait until the scheduler has recorded none for this long (eventhold.py):
# the pods of a burst start on their nodes meanwhile.
EVENT_SETTLE = 0.5
# How long the decision loop may hold the event loop before letting I/O run.
YIELD_EVERY = 0.005

PODS = Resource("", "v1", "pods", True, "Pod")


class Scheduler:
    def __init__(self, client: Client, *, name: str = DEFAULT_SCHEDULER_NAME,
                 bind_concurrency: int = BIND_CONCURRENCY,
                 leader_election: bool = False, identity: str | None = None,
                 events: EventBroadcaster | None = None,
                 rng: random.Random | None = None,
                 percentage_of_nodes_to_score: int = 0) -> None:
        self.client = client
        self.name = name
        self.bind_concurrency = bind_concurrency
        self.identity = identity or f"{socket.gethostname()}_{uuid.uuid4()}"
        self.rng = rng or random.Random()
        self.percentage_of_nodes_to_score = percentage_of_nodes_to_score
        self._own_events = events is None
        self.events = events or EventBroadcaster(client, max_queued=EVENT_QUEUE)
        self.event_hold = EventHold(self.events.submit, settle=EVENT_SETTLE)
        self.recorder = self.events.recorder(name, submit=self.event_hold.add)
        self.elector = LeaderElector(client, name=LEASE_NAME, identity=self.identity) \
            if leader_election else None
        self.cache = SchedulerCache()
        self.queue = SchedulingQueue()
        self.watches: Watches | None = None
        self.running = asyncio.Event()  # set once caches synced and pods are being scheduled
        self.scheduled = 0
        self.failed = 0
        self._next_start = 0
        self._bindings: set[asyncio.Task[None]] = set()
        self._background: set[asyncio.Task[None]] = set()  # status patches
        self._slots: asyncio.Semaphore | None = None
        self._task: asyncio.Task[None] | None = None

    # ---- lifecycle

    def start(self) -> asyncio.Task[None]:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name=f"scheduler-{self.name}")
        return self._task

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def run(self) -> None:
        """Schedule until cancelled; under leader election, only while leading."""
        if self._own_events:
            self.events.start()
        try:
            if self.elector is None:
                await self._lead()
                return
            while True:
                await self.elector.run(self._lead)
                log.warning("%s: lost the scheduler lease, campaigning again", self.identity)
        finally:
            self.event_hold.release()
            if self._own_events:
                await self.events.stop()

    async def _lead(self) -> None:
        self.cache = SchedulerCache()
        self.queue = SchedulingQueue()
        self._slots = asyncio.Semaphore(self.bind_concurrency)
        self.watches = Watches(self.client, self.name, self.cache, self.queue)
        tasks: list[asyncio.Task[Any]] = []
        try:
            await self.watches.start()
            tasks.append(asyncio.create_task(self.queue.run_flushes(), name="scheduler-flush"))
            self.running.set()
            log.info("%s: caches synced, scheduling pods of %s", self.identity, self.name)
            await self._loop()
        except QueueClosed:
            pass
        finally:
            self.running.clear()
            self.queue.close()
            pending = tasks + list(self._bindings) + list(self._background)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            self._bindings.clear()
            self._background.clear()
            await self.watches.stop()

    async def _loop(self) -> None:
        assert self._slots is not None
        last_yield = time.monotonic()
        while True:
            queued = await self.queue.pop()
            await self._slots.acquire()
            if not self.schedule_one(queued):
                self._slots.release()
            # Decisions never await: give informers and bindings their turn now and then.
            if time.monotonic() - last_yield > YIELD_EVERY:
                await asyncio.sleep(0)
                last_yield = time.monotonic()

    # ---- one pod

    def schedule_one(self, queued: QueuedPod) -> bool:
        """Decide for one popped pod; True when its binding was started in the background."""
        pod = queued.pod
        if pod.terminating:
            self.recorder.event(pod.pod, WARNING, "FailedScheduling",
                                f"skip schedule deleting pod: {pod.namespace}/{pod.name}",
                                kind="Pod", api_version="v1")
            self.queue.done(pod.key)
            return False
        if self.cache.is_assumed(pod.key):
            self.queue.done(pod.key)
            return False
        assert self.watches is not None
        result = schedule_pod(
            pod, self.cache.node_list(), start_index=self._next_start, rng=self.rng,
            namespace_labels=self.watches.namespace_labels,
            default_spread_selector=self.watches.default_spread_selector(pod),
            percentage_of_nodes_to_score=self.percentage_of_nodes_to_score)
        self._next_start = result.next_start
        if result.node_name is None:
            self._unschedulable(queued, result.diagnosis)
            return False
        assumed = self.cache.assume(pod, result.node_name)
        task = asyncio.create_task(self._bind(queued, assumed, result.node_name), name=pod.key)
        self._bindings.add(task)
        task.add_done_callback(self._binding_done)
        return True

    def _binding_done(self, task: asyncio.Task[None]) -> None:
        self._bindings.discard(task)
        if self._slots is not None:
            self._slots.release()

    async def _bind(self, queued: QueuedPod, assumed: PodInfo, node: str) -> None:
        binding = {
            "apiVersion": "v1", "kind": "Binding",
            "metadata": {"name": assumed.name, "namespace": assumed.namespace, "uid": assumed.uid},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        }
        path = PODS.path(assumed.namespace, assumed.name, "binding")
        try:
            await self.client.request("POST", path, body=binding)
        except (TimeoutError, StatusError, aiohttp.ClientError, OSError) as err:
            self.cache.forget(assumed.key)
            # What this pod held is free again: others waiting for room may fit now.
            self.queue.move_all(ASSIGNED_POD_DELETE, exclude=assumed.key)
            self._binding_failed(queued, str(err) or repr(err))
            return
        self.cache.finish_binding(assumed.key)
        self.queue.done(assumed.key)
        self.scheduled += 1
        self.recorder.event(assumed.pod, NORMAL, "Scheduled",
                            f"Successfully assigned {assumed.namespace}/{assumed.name} to {node}",
                            kind="Pod", api_version="v1")

    # ---- failures

    def _unschedulable(self, queued: QueuedPod, diagnosis: Diagnosis) -> None:
        self.failed += 1
        message = diagnosis.message
        log.info("unable to schedule pod %s: %s", queued.key, message)
        current = self._requeue(queued, lambda q: self.queue.requeue_unschedulable(
            q, diagnosis.unschedulable_plugins))
        self._report_failure(queued.pod, current, "Unschedulable", message)

    def _binding_failed(self, queued: QueuedPod, message: str) -> None:
        log.warning("binding pod %s failed: %s", queued.key, message)
        current = self._requeue(queued, self.queue.requeue_error)
        self._report_failure(queued.pod, current, "SchedulerError", message)

    def _requeue(self, queued: QueuedPod, put_back: Any) -> dict[str, Any] | None:
        """Put the pod back unless it is gone or bound meanwhile; the informer's copy."""
        assert self.watches is not None
        current = self.watches.pending_pod(queued.key)
        if current is None or (current.get("spec") or {}).get("nodeName"):
            self.queue.done(queued.key)
            return None
        queued.pod = PodInfo(current)
        put_back(queued)
        return current

    def _report_failure(self, pod: PodInfo, current: dict[str, Any] | None, reason: str,
                        message: str) -> None:
        note = truncate_message(message)
        self.recorder.event(pod.pod, WARNING, "FailedScheduling", note, kind="Pod",
                            api_version="v1")
        if current is None:
            return
        patch = condition_patch(current, reason, message)
        if patch is not None:
            task = asyncio.create_task(self._patch_status(pod, patch))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _patch_status(self, pod: PodInfo, patch: dict[str, Any]) -> None:
        try:
            await self.client.patch(PODS, pod.name, patch, pod.namespace,
                                    patch_type="strategic", subresource="status")
        except (TimeoutError, StatusError, aiohttp.ClientError, OSError) as err:
            log.warning("updating the PodScheduled condition of %s failed: %s", pod.key, err)


async def main(kubeconfig: str, *, name: str = DEFAULT_SCHEDULER_NAME,
               leader_election: bool = True) -> None:
    """`kubi scheduler --kubeconfig FILE`: run a scheduler until cancelled."""
    client = Client.from_kubeconfig(os.path.expanduser(kubeconfig), user_agent="kubi-scheduler")
    scheduler = Scheduler(client, name=name, leader_election=leader_election)
    try:
        await scheduler.run()
    finally:
        await client.close()
