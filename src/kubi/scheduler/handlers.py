"""The scheduler's informers, and what each event does to its cache and queue.

Pods are watched with `status.phase!=Succeeded,status.phase!=Failed`, so
finished pods leave the cache as deletions and free their node. A pod bound
to a node goes to the cache (confirming our assumption when we bound it);
a pending pod whose `schedulerName` is ours, without scheduling gates, goes
to the queue. Events that may make parked pods schedulable move them: a node
added or changed in what scheduling sees (labels, taints, allocatable,
unschedulable: not heartbeats), an assigned pod deleted, added or relabelled.

Namespaces (for affinity namespace selectors) and Services, ReplicaSets,
StatefulSets and ReplicationControllers (for the default spreading of a
pod's siblings) are watched too, read-only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from kubi.api.selectors import LabelSelector
from kubi.client.client import Client, Resource
from kubi.client.informer import Informer, object_key
from kubi.controllers.informers import IndexedInformer
from kubi.scheduler import spread
from kubi.scheduler.cache import SchedulerCache, scheduling_view
from kubi.scheduler.nodeinfo import PodInfo, pod_key
from kubi.scheduler.queue import (
    ASSIGNED_POD_ADD,
    ASSIGNED_POD_DELETE,
    ASSIGNED_POD_UPDATE,
    NODE_ADD,
    NODE_UPDATE,
    SchedulingQueue,
)

NODES = Resource("", "v1", "nodes", False, "Node")
PODS = Resource("", "v1", "pods", True, "Pod")
NAMESPACES = Resource("", "v1", "namespaces", False, "Namespace")
SERVICES = Resource("", "v1", "services", True, "Service")
REPLICATION_CONTROLLERS = Resource("", "v1", "replicationcontrollers", True,
                                   "ReplicationController")
REPLICA_SETS = Resource("apps", "v1", "replicasets", True, "ReplicaSet")
STATEFUL_SETS = Resource("apps", "v1", "statefulsets", True, "StatefulSet")

ACTIVE_PODS = "status.phase!=Succeeded,status.phase!=Failed"
DEFAULT_SCHEDULER_NAME = "default-scheduler"

_CONTROLLERS = {
    ("v1", "ReplicationController"): "rcs",
    ("apps/v1", "ReplicaSet"): "replicasets",
    ("apps/v1", "StatefulSet"): "statefulsets",
}


def _spec(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    return pod.get("spec") or {}


def _assigned(pod: Mapping[str, Any]) -> bool:
    return bool(_spec(pod).get("nodeName"))


def _deleting(pod: Mapping[str, Any]) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def _labels(obj: Mapping[str, Any]) -> Mapping[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}


class Watches:
    def __init__(self, client: Client, scheduler_name: str, cache: SchedulerCache,
                 queue: SchedulingQueue) -> None:
        self.scheduler_name = scheduler_name
        self.cache = cache
        self.queue = queue
        self.nodes = Informer(client, NODES)
        self.pods = Informer(client, PODS, field_selector=ACTIVE_PODS)
        self.namespaces = Informer(client, NAMESPACES)
        self.services = IndexedInformer(client, SERVICES)
        self.rcs = Informer(client, REPLICATION_CONTROLLERS)
        self.replicasets = Informer(client, REPLICA_SETS)
        self.statefulsets = Informer(client, STATEFUL_SETS)
        self.nodes.on_add(self._node_added)
        self.nodes.on_update(self._node_updated)
        self.nodes.on_delete(self.cache.remove_node)
        self.pods.on_add(self._pod_added)
        self.pods.on_update(self._pod_updated)
        self.pods.on_delete(self._pod_deleted)

    @property
    def informers(self) -> list[Informer]:
        return [self.nodes, self.pods, self.namespaces, self.services, self.rcs,
                self.replicasets, self.statefulsets]

    async def start(self, timeout: float | None = None) -> None:
        # Nodes first, so the pods listed next land on known nodes.
        self.nodes.start()
        await self.nodes.wait_synced(timeout)
        for informer in self.informers[1:]:
            informer.start()
        await asyncio.wait_for(asyncio.gather(*(i.wait_synced() for i in self.informers)),
                               timeout)

    async def stop(self) -> None:
        await asyncio.gather(*(i.stop() for i in self.informers))

    # ---- lookups for the decisions

    def namespace_labels(self, namespace: str) -> Mapping[str, str] | None:
        ns = self.namespaces.get(namespace)
        return None if ns is None else _labels(ns)

    def pending_pod(self, key: str) -> dict[str, Any] | None:
        return self.pods.get(key)

    def default_spread_selector(self, pod: PodInfo) -> LabelSelector | None:
        """Selector of the pod's siblings, for pods that state no spread constraints."""
        if _spec(pod.pod).get("topologySpreadConstraints"):
            return None
        services = self.services.in_namespace(pod.namespace)
        controller, kind = None, ""
        for ref in (pod.pod.get("metadata") or {}).get("ownerReferences") or []:
            if not ref.get("controller"):
                continue
            attr = _CONTROLLERS.get((ref.get("apiVersion", ""), ref.get("kind", "")))
            if attr is not None:
                informer: Informer = getattr(self, attr)
                controller = informer.get(f"{pod.namespace}/{ref.get('name', '')}")
                kind = ref["kind"]
            break
        if not services and controller is None:
            return None
        selector = spread.default_selector(pod, services, controller, kind)
        return None if selector.empty else selector

    # ---- nodes

    def _node_added(self, node: dict[str, Any]) -> None:
        self.cache.add_node(node)
        self.queue.move_all(NODE_ADD)

    def _node_updated(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        if scheduling_view(old) == scheduling_view(new):
            info = self.cache.node(new["metadata"]["name"])
            if info is not None and info.node is not None:
                info.node = new
                return
        self.cache.update_node(new)
        self.queue.move_all(NODE_UPDATE)

    # ---- pods

    def _responsible(self, pod: Mapping[str, Any]) -> bool:
        spec = _spec(pod)
        return (spec.get("schedulerName") or DEFAULT_SCHEDULER_NAME) == self.scheduler_name \
            and not spec.get("schedulingGates")

    def _pod_added(self, pod: dict[str, Any]) -> None:
        if _assigned(pod):
            self.cache.add_pod(pod)
            self.queue.move_all(ASSIGNED_POD_ADD)
        elif self._responsible(pod) and not self.cache.is_assumed(pod_key(pod)):
            self.queue.add(PodInfo(pod))

    def _pod_updated(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        key = object_key(new)
        if _assigned(new):
            if not _assigned(old):
                self.queue.delete(key)
            self.cache.update_pod(new)
            if not _assigned(old):
                self.queue.move_all(ASSIGNED_POD_ADD)
            elif _labels(old) != _labels(new):
                self.queue.move_all(ASSIGNED_POD_UPDATE)
            return
        if self.cache.is_assumed(key):
            return  # being bound by us; the bound pod will confirm it
        if not self._responsible(new):
            self.queue.delete(key)
            return
        if _spec(old) == _spec(new) and _labels(old) == _labels(new) and \
                _deleting(old) == _deleting(new) and self.queue.where(key) is not None:
            return  # a status or metadata change: nothing the decision reads
        self.queue.add(PodInfo(new))

    def _pod_deleted(self, pod: dict[str, Any]) -> None:
        key = object_key(pod)
        assigned = _assigned(pod) or self.cache.pod(key) is not None
        self.queue.delete(key)
        self.cache.remove_pod(pod)
        if assigned:
            self.queue.move_all(ASSIGNED_POD_DELETE)
