"""The scheduler's picture of the cluster: nodes and the pods placed on them.

Fed by the node and pod informers, `SchedulerCache` keeps one `NodeInfo` per
node with the pods bound to it and their summed requests. A pod the scheduler
has just chosen a node for is *assumed*: added to that node at once, before
the binding call returns and long before the informer reports the pod bound,
so the next decisions already see its requests and a burst of pods does not
overcommit a node. The informer's bound pod later confirms the assumption
(replacing it, on whatever node the server says); a failed binding forgets it.

Pods may reference a node the cache has not seen (or no longer has): they are
kept on a node-less `NodeInfo` that is never offered to the scheduler, as
upstream does, so totals are right the moment the node (re)appears.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from kubi.scheduler.nodeinfo import NodeInfo, PodInfo, pod_key

log = logging.getLogger(__name__)


def scheduling_view(node: Mapping[str, Any]) -> tuple:
    """What of a node matters to scheduling (heartbeats and conditions do not)."""
    md = node.get("metadata") or {}
    spec = node.get("spec") or {}
    status = node.get("status") or {}
    return (
        tuple(sorted((md.get("labels") or {}).items())),
        repr(spec.get("taints") or []),
        bool(spec.get("unschedulable")),
        tuple(sorted((status.get("allocatable") or {}).items())),
    )


def _same_placement(current: PodInfo, pod: Mapping[str, Any]) -> bool:
    md = pod.get("metadata") or {}
    return (current.pod.get("spec") == pod.get("spec")
            and current.labels == (md.get("labels") or {})
            and current.terminating == bool(md.get("deletionTimestamp")))


class SchedulerCache:
    def __init__(self) -> None:
        self._nodes: dict[str, NodeInfo] = {}
        self._pods: dict[str, PodInfo] = {}  # every pod placed on some NodeInfo, by key
        self._assumed: set[str] = set()
        self._bound: set[str] = set()  # assumed pods whose binding call succeeded
        self._node_list: list[NodeInfo] | None = None

    # ---- reads

    def node_list(self) -> list[NodeInfo]:
        """Nodes that can be scheduled to, in a stable order."""
        if self._node_list is None:
            self._node_list = [n for n in self._nodes.values() if n.node is not None]
        return self._node_list

    def node(self, name: str) -> NodeInfo | None:
        return self._nodes.get(name)

    def pod(self, key: str) -> PodInfo | None:
        return self._pods.get(key)

    def is_assumed(self, key: str) -> bool:
        return key in self._assumed

    @property
    def assumed_count(self) -> int:
        return len(self._assumed)

    # ---- nodes

    def add_node(self, node: dict[str, Any]) -> None:
        name = node["metadata"]["name"]
        info = self._nodes.get(name)
        if info is None:
            self._nodes[name] = NodeInfo(name, node)
        else:
            had_node = info.node is not None
            info.set_node(node)
            if had_node:
                return
        self._node_list = None

    def update_node(self, node: dict[str, Any]) -> None:
        self.add_node(node)

    def remove_node(self, node: Mapping[str, Any]) -> None:
        name = node["metadata"]["name"]
        info = self._nodes.get(name)
        if info is None:
            return
        if info.pods:
            info.node = None  # keep its pods' totals until they are gone too
            info.generation += 1
        else:
            del self._nodes[name]
        self._node_list = None

    def _node_for(self, name: str) -> NodeInfo:
        info = self._nodes.get(name)
        if info is None:
            info = self._nodes[name] = NodeInfo(name)
        return info

    def _place(self, info: PodInfo) -> None:
        self._node_for(info.node_name).add_pod(info)
        self._pods[info.key] = info

    def _unplace(self, key: str) -> PodInfo | None:
        info = self._pods.pop(key, None)
        if info is None:
            return None
        node = self._nodes.get(info.node_name)
        if node is not None:
            node.remove_pod(key)
            if node.node is None and not node.pods:
                del self._nodes[node.name]
        return info

    # ---- pods the informer reports bound

    def add_pod(self, pod: dict[str, Any]) -> None:
        spec = pod.get("spec") or {}
        if not spec.get("nodeName"):
            return
        key = pod_key(pod)
        current = self._pods.get(key)
        if current is not None and key not in self._assumed and _same_placement(current, pod):
            # Status-only changes (most updates) leave every total as it is.
            current.pod = pod
            return
        info = PodInfo(pod)
        self._unplace(info.key)
        self._assumed.discard(info.key)
        self._bound.discard(info.key)
        self._place(info)

    def update_pod(self, pod: dict[str, Any]) -> None:
        self.add_pod(pod)

    def remove_pod(self, pod: Mapping[str, Any]) -> None:
        key = pod_key(pod)
        self._unplace(key)
        self._assumed.discard(key)
        self._bound.discard(key)

    # ---- the scheduler's own placements

    def assume(self, info: PodInfo, node_name: str) -> PodInfo:
        """Count `info` on `node_name` until the informer confirms or binding fails."""
        assumed = info.with_node(node_name)
        self._unplace(assumed.key)
        self._place(assumed)
        self._assumed.add(assumed.key)
        return assumed

    def finish_binding(self, key: str) -> None:
        if key in self._assumed:
            self._bound.add(key)

    def forget(self, key: str) -> None:
        """Undo an assumption whose binding failed."""
        if key in self._assumed:
            self._assumed.discard(key)
            self._bound.discard(key)
            self._unplace(key)

    def __repr__(self) -> str:
        return f"SchedulerCache(nodes={len(self.node_list())}, pods={len(self._pods)}, " \
               f"assumed={len(self._assumed)})"
