"""The taint eviction controller: pods leave nodes whose NoExecute taints they do not tolerate.

Node NoExecute taints, pod nodeName and tolerations changes queue the pods
concerned; `eviction_delay` says delete now, after the shortest
tolerationSeconds used, or never. Scheduled deletions are loop timers per
pod, cancelled (with an event) when the taints lift or the pod goes. A firing
timer records `TaintManagerEviction`, adds the `DisruptionTarget` condition
and deletes the pod gracefully; as upstream, a fired pod is not scheduled
again until it is gone or its node's taints are lifted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubi.api.errors import StatusError
from kubi.api.meta import format_time
from kubi.client.informer import object_key
from kubi.controllers.base import QueueController
from kubi.controllers.events import NORMAL
from kubi.controllers.manager import ControllerContext
from kubi.controllers.nodehealth import NODE_NAME_INDEX, pod_node_index
from kubi.controllers.nodelifecycle import NODES
from kubi.controllers.podcontrol import PODS
from kubi.controllers.taints import eviction_delay, no_execute_taints, node_taints

log = logging.getLogger(__name__)

Obj = dict[str, Any]

EVICTION_RETRIES = 5
EVICTION_RETRY_DELAY = 0.01
COMPONENT = "taint-eviction-controller"
DISRUPTION_CONDITION = {"type": "DisruptionTarget", "status": "True",
                        "reason": "DeletionByTaintManager",
                        "message": "Taint manager: deleting due to NoExecute taint"}


@dataclass
class _Scheduled:
    created_at: float
    fire_at: float
    timer: asyncio.TimerHandle | None  # None once fired


def _tolerations(pod: Obj) -> list[Obj]:
    return list((pod.get("spec") or {}).get("tolerations") or [])


def _node_of(pod: Obj) -> str:
    return (pod.get("spec") or {}).get("nodeName") or ""


class TaintEvictionController(QueueController):
    name = "taint-eviction-controller"
    workers = 4

    def __init__(self, ctx: ControllerContext, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.client = ctx.client
        self.recorder = ctx.recorder(COMPONENT)
        self.clock = clock
        self.tainted: dict[str, list[Obj]] = {}
        self.scheduled: dict[str, _Scheduled] = {}
        self._evictions: set[asyncio.Task[None]] = set()
        self.nodes = ctx.informers.get(NODES)
        self.pods = ctx.informers.get(PODS)
        self.pods.add_index(NODE_NAME_INDEX, pod_node_index)
        self.nodes.on_add(lambda node: self._node_changed(None, node))
        self.nodes.on_update(self._node_changed)
        self.nodes.on_delete(lambda node: self._node_changed(node, None))
        self.pods.on_add(lambda pod: self._pod_changed(None, pod))
        self.pods.on_update(self._pod_changed)
        self.pods.on_delete(lambda pod: self._pod_changed(pod, None))

    async def run(self, workers: int | None = None) -> None:
        try:
            await super().run(workers)
        finally:
            for entry in self.scheduled.values():
                if entry.timer is not None:
                    entry.timer.cancel()
            for task in list(self._evictions):
                task.cancel()
            await asyncio.gather(*self._evictions, return_exceptions=True)

    # ---- handlers

    def _node_changed(self, old: Obj | None, new: Obj | None) -> None:
        if old is not None and new is not None and \
                no_execute_taints(node_taints(old)) == no_execute_taints(node_taints(new)):
            return
        name = (new or old or {}).get("metadata", {}).get("name", "")
        self.queue.add(f"node:{name}")

    def _pod_changed(self, old: Obj | None, new: Obj | None) -> None:
        if old is not None and new is not None and _node_of(old) == _node_of(new) \
                and _tolerations(old) == _tolerations(new):
            return
        pod = new or old or {}
        self.queue.add(f"pod:{object_key(pod)}")

    # ---- sync

    async def sync(self, key: str) -> None:
        kind, _, name = key.partition(":")
        if kind == "node":
            self._handle_node(name)
        else:
            self._handle_pod(name)

    def _handle_node(self, name: str) -> None:
        node = self.nodes.get(name)
        taints = no_execute_taints(node_taints(node)) if node is not None else []
        if taints:
            self.tainted[name] = taints
        else:
            self.tainted.pop(name, None)
        if node is None:
            return
        now = self.clock()
        for pod in self.pods.by_index(NODE_NAME_INDEX, name):
            if taints:
                self._process_pod(object_key(pod), pod, taints, now)
            else:
                self._cancel(object_key(pod))

    def _handle_pod(self, key: str) -> None:
        pod = self.pods.get(key)
        if pod is None:
            self._cancel(key)
            return
        taints = self.tainted.get(_node_of(pod))
        if taints:
            self._process_pod(key, pod, taints, self.clock())

    def _process_pod(self, key: str, pod: Obj, taints: list[Obj], now: float) -> None:
        delay = eviction_delay(taints, _tolerations(pod))
        if delay is None:
            self._cancel(key)
            return
        existing = self.scheduled.get(key)
        if existing is not None and existing.timer is None:
            return  # already evicted once; not again until the pod is gone
        if delay == 0:
            if existing is not None:
                self._cancel(key)
            self._schedule(key, now, now)
            return
        created = existing.created_at if existing is not None else now
        fire_at = created + delay
        if existing is not None and existing.fire_at == fire_at:
            return
        if existing is not None:
            self._cancel(key)
        log.info("pod %s tolerates the taints of its node for %.0fs", key, delay)
        self._schedule(key, created, max(fire_at, now))

    # ---- timers

    def _schedule(self, key: str, created_at: float, fire_at: float) -> None:
        loop = asyncio.get_running_loop()
        timer = loop.call_later(max(0.0, fire_at - self.clock()), self._fire, key)
        self.scheduled[key] = _Scheduled(created_at, fire_at, timer)

    def _cancel(self, key: str) -> None:
        entry = self.scheduled.pop(key, None)
        if entry is None or entry.timer is None:
            return
        entry.timer.cancel()
        self._event(key, f"Cancelling deletion of Pod {key}")

    def _fire(self, key: str) -> None:
        entry = self.scheduled.get(key)
        if entry is not None:
            entry.timer = None
        task = asyncio.create_task(self._evict(key), name=f"taint-eviction-{key}")
        self._evictions.add(task)
        task.add_done_callback(self._evictions.discard)

    async def _evict(self, key: str) -> None:
        namespace, _, name = key.partition("/")
        log.info("evicting pod %s from its NoExecute-tainted node", key)
        self._event(key, f"Marking for deletion Pod {key}")
        error: Exception | None = None
        for _ in range(EVICTION_RETRIES):
            try:
                await self._condition_and_delete(namespace, name)
                return
            except StatusError as err:
                if err.code == 404:
                    return
                error = err
            except (OSError, TimeoutError) as err:
                error = err
            await asyncio.sleep(EVICTION_RETRY_DELAY)
        log.warning("could not evict pod %s: %s", key, error)
        self.scheduled.pop(key, None)  # a later change may try again

    async def _condition_and_delete(self, namespace: str, name: str) -> None:
        pod = await self.client.get(PODS, name, namespace)
        conditions = (pod.get("status") or {}).get("conditions") or []
        current = next((c for c in conditions if c.get("type") == "DisruptionTarget"), None)
        wanted = {k: v for k, v in DISRUPTION_CONDITION.items()}
        if current is None or any(current.get(k) != v for k, v in wanted.items()):
            if current is None or current.get("status") != "True":
                wanted["lastTransitionTime"] = format_time(time.time())
            patch = {"metadata": {"uid": pod["metadata"]["uid"]},
                     "status": {"conditions": [wanted]}}
            await self.client.patch(PODS, name, patch, namespace, patch_type="strategic",
                                    subresource="status")
        await self.client.delete(PODS, name, namespace)

    def _event(self, key: str, message: str) -> None:
        namespace, _, name = key.partition("/")
        ref = {"metadata": {"name": name, "namespace": namespace}}
        self.recorder.event(ref, NORMAL, "TaintManagerEviction", message, kind="Pod",
                            api_version="v1")


def taint_eviction_controller(ctx: ControllerContext) -> TaintEvictionController:
    return TaintEvictionController(ctx)
