"""Per-pod and per-node facts, precomputed once and kept up to date incrementally.

`PodInfo` wraps a pod dict with what every scheduling decision reads: its
requests (exact and non-zero), host ports, priority and compiled affinity
terms. `NodeInfo` aggregates one node: its allocatable resources, taints and
labels, the pods on it (assumed ones included), their summed requests and
used host ports. It also keeps counters of pods matching given predicates
(`count`), updated as pods come and go, so that topology spreading asks "how
many pods of this ReplicaSet are here" in O(1) instead of walking the pods of
every node for every pod scheduled.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any

from kubi.scheduler.matching import (
    AffinityTerm,
    compile_terms,
    compile_weighted,
)
from kubi.scheduler.resources import (
    Resources,
    non_zero_requests,
    pod_requests,
    requests_as_resources,
)

HostPort = tuple[str, str, int]  # (hostIP, protocol, hostPort)

# Bounded so that a stream of distinct selectors cannot grow a node's memo forever.
_MAX_COUNTERS = 256


def pod_key(pod: Mapping[str, Any]) -> str:
    md = pod.get("metadata") or {}
    return f"{md.get('namespace', '')}/{md.get('name', '')}"


def host_ports(spec: Mapping[str, Any]) -> tuple[HostPort, ...]:
    """Host ports of app containers and sidecars; hostIP defaults to 0.0.0.0, protocol to TCP."""
    containers = list(spec.get("containers") or [])
    containers += [c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
    ports: list[HostPort] = []
    for container in containers:
        for port in container.get("ports") or []:
            host_port = port.get("hostPort") or 0
            if host_port <= 0:
                continue
            ports.append((port.get("hostIP") or "0.0.0.0", port.get("protocol") or "TCP",
                          int(host_port)))
    return tuple(ports)


class PodInfo:
    """A pod plus the derived facts the scheduler needs, computed once."""

    __slots__ = (
        "host_ports",
        "key",
        "labels",
        "name",
        "namespace",
        "node_name",
        "non0_cpu",
        "non0_mem",
        "pod",
        "preferred_affinity",
        "preferred_anti_affinity",
        "priority",
        "requests",
        "required_affinity",
        "required_anti_affinity",
        "terminating",
        "uid",
    )

    def __init__(self, pod: dict[str, Any]) -> None:
        md = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        self.pod = pod
        self.name: str = md.get("name", "")
        self.namespace: str = md.get("namespace", "")
        self.key = f"{self.namespace}/{self.name}"
        self.uid: str = md.get("uid", "")
        self.labels: Mapping[str, str] = md.get("labels") or {}
        self.node_name: str = spec.get("nodeName") or ""
        self.priority = int(spec.get("priority") or 0)
        self.terminating = bool(md.get("deletionTimestamp"))
        self.requests: Resources = requests_as_resources(pod_requests(spec))
        self.non0_cpu, self.non0_mem = non_zero_requests(spec)
        self.host_ports = host_ports(spec)
        affinity = spec.get("affinity") or {}
        pod_aff = affinity.get("podAffinity") or {}
        anti = affinity.get("podAntiAffinity") or {}
        ns = self.namespace
        self.required_affinity: tuple[AffinityTerm, ...] = compile_terms(
            pod_aff.get("requiredDuringSchedulingIgnoredDuringExecution") or (), ns)
        self.required_anti_affinity: tuple[AffinityTerm, ...] = compile_terms(
            anti.get("requiredDuringSchedulingIgnoredDuringExecution") or (), ns)
        self.preferred_affinity = compile_weighted(
            pod_aff.get("preferredDuringSchedulingIgnoredDuringExecution") or (), ns)
        self.preferred_anti_affinity = compile_weighted(
            anti.get("preferredDuringSchedulingIgnoredDuringExecution") or (), ns)

    @property
    def spec(self) -> dict[str, Any]:
        return self.pod.get("spec") or {}

    @property
    def has_affinity(self) -> bool:
        """Any pod (anti-)affinity at all: such pods are looked at by every scheduling cycle."""
        return bool(self.required_affinity or self.required_anti_affinity or
                    self.preferred_affinity or self.preferred_anti_affinity)

    def with_node(self, node_name: str) -> PodInfo:
        """A copy bound to `node_name` (what the cache assumes while binding is under way)."""
        pod = {**self.pod, "spec": {**self.spec, "nodeName": node_name}}
        clone = PodInfo.__new__(PodInfo)
        for slot in PodInfo.__slots__:
            setattr(clone, slot, getattr(self, slot))
        clone.pod = pod
        clone.node_name = node_name
        return clone


Predicate = Callable[[PodInfo], bool]


class NodeInfo:
    """One node and the pods on it, with running totals."""

    __slots__ = (
        "_counters",
        "allocatable",
        "generation",
        "labels",
        "name",
        "node",
        "non0_cpu",
        "non0_mem",
        "pods",
        "pods_with_affinity",
        "pods_with_required_anti_affinity",
        "requested",
        "taints",
        "unschedulable",
        "used_ports",
    )

    def __init__(self, name: str, node: dict[str, Any] | None = None) -> None:
        self.name = name
        self.node: dict[str, Any] | None = None
        self.labels: Mapping[str, str] = {}
        self.taints: list[Mapping[str, Any]] = []
        self.unschedulable = False
        self.allocatable = Resources()
        self.requested = Resources()
        self.non0_cpu = 0
        self.non0_mem = 0
        self.pods: dict[str, PodInfo] = {}
        self.pods_with_affinity: dict[str, PodInfo] = {}
        self.pods_with_required_anti_affinity: dict[str, PodInfo] = {}
        self.used_ports: Counter[HostPort] = Counter()
        self.generation = 0
        self._counters: dict[Hashable, tuple[Predicate, int]] = {}
        if node is not None:
            self.set_node(node)

    @classmethod
    def build(cls, node: dict[str, Any], pods: Iterable[dict[str, Any] | PodInfo] = ()) -> NodeInfo:
        info = cls(node["metadata"]["name"], node)
        for pod in pods:
            info.add_pod(pod if isinstance(pod, PodInfo) else PodInfo(pod))
        return info

    def set_node(self, node: dict[str, Any]) -> None:
        spec = node.get("spec") or {}
        status = node.get("status") or {}
        self.node = node
        self.labels = (node.get("metadata") or {}).get("labels") or {}
        self.taints = list(spec.get("taints") or [])
        self.unschedulable = bool(spec.get("unschedulable"))
        self.allocatable = Resources.from_list(status.get("allocatable"))
        self.generation += 1

    def add_pod(self, info: PodInfo) -> None:
        if info.key in self.pods:
            self.remove_pod(info.key)
        self.pods[info.key] = info
        if info.required_affinity or info.required_anti_affinity or \
                info.preferred_affinity or info.preferred_anti_affinity:
            self.pods_with_affinity[info.key] = info
        if info.required_anti_affinity:
            self.pods_with_required_anti_affinity[info.key] = info
        self._account(info, 1)

    def remove_pod(self, key: str) -> PodInfo | None:
        info = self.pods.pop(key, None)
        if info is None:
            return None
        self.pods_with_affinity.pop(key, None)
        self.pods_with_required_anti_affinity.pop(key, None)
        self._account(info, -1)
        return info

    def _account(self, info: PodInfo, sign: int) -> None:
        self.requested.add(info.requests, sign)
        self.non0_cpu += sign * info.non0_cpu
        self.non0_mem += sign * info.non0_mem
        for port in info.host_ports:
            self.used_ports[port] += sign
            if self.used_ports[port] <= 0:
                del self.used_ports[port]
        for key, (predicate, count) in self._counters.items():
            if predicate(info):
                self._counters[key] = (predicate, count + sign)
        self.generation += 1

    def cached_count(self, key: Hashable) -> int | None:
        entry = self._counters.get(key)
        return None if entry is None else entry[1]

    def count(self, key: Hashable, predicate: Predicate) -> int:
        """Pods here for which `predicate` holds; `key` names the predicate for reuse."""
        entry = self._counters.get(key)
        if entry is not None:
            return entry[1]
        if len(self._counters) >= _MAX_COUNTERS:
            self._counters.clear()
        count = sum(1 for info in self.pods.values() if predicate(info))
        self._counters[key] = (predicate, count)
        return count

    def clone(self) -> NodeInfo:
        """A copy whose pods and totals can change without touching this one."""
        other = NodeInfo(self.name)
        if self.node is not None:
            other.set_node(self.node)
        for info in self.pods.values():
            other.add_pod(info)
        return other

    def __repr__(self) -> str:
        return f"NodeInfo({self.name!r}, pods={len(self.pods)})"
