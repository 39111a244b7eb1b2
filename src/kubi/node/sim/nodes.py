"""Simulated nodes: Node objects that heartbeat, and pods on them that "run".

`SimNodes` registers `count` nodes named `<prefix><i>` with the labels,
capacity, conditions, addresses and nodeInfo a kubelet would report, then
keeps each one's Lease and status fresh through a `NodeHeartbeat` (started at
staggered offsets, so a thousand nodes spread their writes over the renew
interval instead of bursting). One pod informer and one node informer serve
every node; the pod lifecycle (`SimPodLifecycle`) and the status writer
(`PodStatusManager`) are shared too. Stopping the process leaves the Nodes
registered, as a kubelet does: their Leases expire and the cluster sees them
fail.

Containers take `start_delay` (1 s) to start and `stop_delay` (1 s, or the
pod's grace period when shorter) to stop. A pod that vanished the moment it
was deleted would race clients that wait for its deletion: kubectl 1.32 and
1.33 list the pod after their DELETE and watch from that list, and when a
StatefulSet has already re-created the pod under the same name by then, they
wait forever for a deletion they missed.

A single node fails on demand, from outside the process: annotating its Node
with `kubi.dev/sim-stopped: "true"` silences it as `stop_node` does (no Lease
renewals, no status reports, no pod changes), and removing the annotation (or
setting any other value) brings it back as `start_node` does. The node
informer carries the annotation in, so it holds across restarts too.

Simulated pods are never mistaken for real processes: their containerIDs and
imageIDs use the `sim://` scheme, the node reports `containerRuntimeVersion:
sim://0.1` and a `sim` runtime handler, and carries the annotation
`kubi.dev/runtime-handler: sim` and the label `kubi.dev/sim: "true"`. User
objects are left untouched (no runtimeClassName or annotation is added to
pods; a RuntimeClass named `sim` is for the node agent to select later).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import platform
import uuid
from collections.abc import Callable
from typing import Any

from kubi.api.errors import StatusError
from kubi.client.client import Client, Resource
from kubi.client.informer import Informer
from kubi.controllers.events import NORMAL, EventBroadcaster
from kubi.node import nodestatus
from kubi.node.heartbeat import (
    LEASE_DURATION,
    STATUS_REPORT_INTERVAL,
    TRANSIENT,
    NodeHeartbeat,
    register_node,
)
from kubi.node.sim.ipam import IPAM, node_address, provisional_pod_cidr
from kubi.node.sim.model import ProbeDelay, default_probe_delay
from kubi.node.sim.pods import NodeSlot, SimPodLifecycle
from kubi.node.status_manager import PODS, PodStatusManager

log = logging.getLogger(__name__)

NODES = Resource("", "v1", "nodes", False, "Node")
SIM_LABEL = "kubi.dev/sim"
RUNTIME_HANDLER_ANNOTATION = "kubi.dev/runtime-handler"
STOPPED_ANNOTATION = "kubi.dev/sim-stopped"
RUNTIME_HANDLER = "sim"
KUBELET_VERSION = "v1.33.0-kubi"
CONTAINER_RUNTIME_VERSION = "sim://0.1"
OS_IMAGE = "kubi simulated node"
REGISTRATION_CONCURRENCY = 32
REGISTRATION_RETRY_MAX = 7.0


def _stable_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def node_status(name: str, index: int, *, capacity: dict[str, str],
                boot_id: str) -> dict[str, Any]:
    """What simulated node `index` reports, conditions without timestamps."""
    return {
        "capacity": dict(capacity),
        "allocatable": nodestatus.allocatable(capacity),
        "conditions": nodestatus.node_conditions(),
        "addresses": [{"type": "InternalIP", "address": node_address(index)},
                      {"type": "Hostname", "address": name}],
        # No kubelet endpoint: nothing serves logs or exec for simulated pods.
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
        "nodeInfo": {
            "machineID": _stable_hex(f"machine/{name}"),
            "systemUUID": str(uuid.UUID(_stable_hex(f"system/{name}"))),
            "bootID": boot_id,
            "kernelVersion": platform.release(),
            "osImage": OS_IMAGE,
            "containerRuntimeVersion": CONTAINER_RUNTIME_VERSION,
            "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": "amd64",
        },
        "runtimeHandlers": [{"name": RUNTIME_HANDLER, "features": {
            "recursiveReadOnlyMounts": False, "userNamespaces": False}}],
    }


def node_object(name: str, index: int, *, capacity: dict[str, str],
                boot_id: str) -> dict[str, Any]:
    """The Node simulated node `index` registers."""
    cidr = provisional_pod_cidr(index)
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "beta.kubernetes.io/arch": "amd64",
                "beta.kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                SIM_LABEL: "true",
            },
            "annotations": {
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
                RUNTIME_HANDLER_ANNOTATION: RUNTIME_HANDLER,
            },
        },
        "spec": {"podCIDR": cidr, "podCIDRs": [cidr]},
        "status": node_status(name, index, capacity=capacity, boot_id=boot_id),
    }


def stopped_by_annotation(node: dict[str, Any]) -> bool:
    """Whether the Node asks its simulated kubelet to play dead."""
    annotations = node["metadata"].get("annotations") or {}
    return annotations.get(STOPPED_ANNOTATION) == "true"


def node_reference(name: str) -> dict[str, str]:
    # The kubelet refers to its Node by name, with the name standing in for the uid.
    return {"kind": "Node", "name": name, "uid": name}


STOP_DELAY = 1.0


class SimNodes:
    def __init__(self, client: Client, *, count: int, prefix: str = "sim-node-",
                 cpu: str = "32", memory: str = "256Gi", pods: int = 110,
                 ephemeral_storage: str = "100Gi", heartbeat: float = 10.0,
                 status_report: float = STATUS_REPORT_INTERVAL,
                 lease_duration: int = LEASE_DURATION, start_delay: float = 1.0,
                 stop_delay: float = STOP_DELAY, probe_delay: ProbeDelay = default_probe_delay,
                 status_workers: int = 64, events: EventBroadcaster | None = None) -> None:
        self.client = client
        self.names = [f"{prefix}{i}" for i in range(count)]
        self.capacity = {"cpu": cpu, "ephemeral-storage": ephemeral_storage,
                         "hugepages-1Gi": "0", "hugepages-2Mi": "0", "memory": memory,
                         "pods": str(pods)}
        self.heartbeat = heartbeat
        self.status_report = status_report
        self.lease_duration = lease_duration
        self.boot_id = str(uuid.uuid4())
        self._own_events = events is None
        self.events = events or EventBroadcaster(client)
        self.pod_informer = Informer(client, PODS)
        self.node_informer = Informer(client, NODES, label_selector=f"{SIM_LABEL}=true")
        self.statuses = PodStatusManager(client, lookup=self.pod_informer.get,
                                         workers=status_workers, may_write=self._may_write)
        self.lifecycle = SimPodLifecycle(self.statuses, ipam=IPAM(), start_delay=start_delay,
                                         stop_delay=stop_delay, probe_delay=probe_delay)
        self.heartbeats: dict[str, NodeHeartbeat] = {}
        self._stopped_by_annotation: set[str] = set()
        self.pod_informer.on_add(self.lifecycle.on_pod)
        self.pod_informer.on_update(lambda old, new: self.lifecycle.on_pod(new))
        self.pod_informer.on_delete(self.lifecycle.on_pod_deleted)
        self.node_informer.on_add(self._follow_stop_annotation)
        self.node_informer.on_update(lambda old, new: self._follow_stop_annotation(new))

    # ---- lifecycle

    async def start(self) -> None:
        """Register every node, then start heartbeats and pod handling."""
        if self._own_events:
            self.events.start()
        self.node_informer.start()
        await self.node_informer.wait_synced()
        gate = asyncio.Semaphore(REGISTRATION_CONCURRENCY)

        async def bring_up(index: int, name: str) -> None:
            async with gate:
                await self._register(index, name)

        await asyncio.gather(*(bring_up(i, n) for i, n in enumerate(self.names)))
        self.statuses.start()
        self.pod_informer.start()
        await self.pod_informer.wait_synced()
        spread = self.heartbeat / max(1, len(self.names))
        for i, name in enumerate(self.names):
            self.heartbeats[name].offset = self.heartbeat + i * spread
            self.heartbeats[name].start()

    async def stop(self) -> None:
        for hb in self.heartbeats.values():
            await hb.stop()
        await self.pod_informer.stop()
        await self.node_informer.stop()
        self.lifecycle.close()
        await self.statuses.stop()
        if self._own_events:
            try:
                await asyncio.wait_for(self.events.flush(), 2.0)
            except TimeoutError:
                pass
            await self.events.stop()

    async def _register(self, index: int, name: str) -> None:
        desired = node_object(name, index, capacity=self.capacity, boot_id=self.boot_id)
        delay = 0.1
        while True:
            # As the kubelet does, keep trying until the API server takes the Node.
            try:
                node = await register_node(self.client, desired)
                break
            except (StatusError, *TRANSIENT) as exc:
                if isinstance(exc, StatusError) and exc.code < 500 and exc.code != 429:
                    raise
                log.warning("node %s: registration failed, retrying: %s", name, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, REGISTRATION_RETRY_MAX)
        recorder = self.events.recorder("kubelet", host=name)
        cidr = (node.get("spec") or {}).get("podCIDR") or None
        self.lifecycle.add_node(NodeSlot(name, node_address(index), cidr, recorder))
        hb = NodeHeartbeat(
            self.client, node, status=self._status_source(name, index),
            lookup=self.node_informer.get, lease_duration=self.lease_duration,
            renew_interval=self.heartbeat, status_update_interval=self.heartbeat,
            status_report_interval=self.status_report)
        self.heartbeats[name] = hb
        if stopped_by_annotation(self.node_informer.get(name) or node):
            # Stopped before this process started: stay silent from the first beat.
            self._stopped_by_annotation.add(name)
            self.stop_node(name)
            return
        await hb.beat()
        self._node_events(name)

    def _status_source(self, name: str, index: int) -> Callable[[], dict[str, Any]]:
        return lambda: node_status(name, index, capacity=self.capacity, boot_id=self.boot_id)

    def _node_events(self, name: str) -> None:
        """The events a kubelet records about its node when it starts."""
        recorder = self.events.recorder("kubelet", host=name)
        ref = node_reference(name)
        messages = [("Starting", "Starting kubelet.")]
        messages += [(reason, f"Node {name} status is now: {reason}")
                     for reason in ("NodeHasSufficientMemory", "NodeHasNoDiskPressure",
                                    "NodeHasSufficientPID")]
        messages += [("NodeAllocatableEnforced", "Updated Node Allocatable limit across pods"),
                     ("NodeReady", f"Node {name} status is now: NodeReady")]
        for reason, message in messages:
            if self.lifecycle.event_budget.take():
                self.events.submit(recorder.make_event(ref, NORMAL, reason, message))

    # ---- simulated failures

    def stop_node(self, name: str) -> None:
        """Silence a node as if its kubelet died: no lease, no status, no pod changes."""
        self.heartbeats[name].pause()
        self.lifecycle.pause_node(name)

    def start_node(self, name: str) -> None:
        """Bring a stopped node back: it renews its lease and catches up with its pods."""
        self.heartbeats[name].resume()
        pods = [p for p in self.pod_informer.list()
                if (p.get("spec") or {}).get("nodeName") == name]
        self.lifecycle.resume_node(name, pods)

    def _follow_stop_annotation(self, node: dict[str, Any]) -> None:
        name = node["metadata"]["name"]
        hb = self.heartbeats.get(name)
        if hb is None:
            return  # not registered yet: _register reads the annotation itself
        stopped = stopped_by_annotation(node)
        # Only a stop the annotation made is undone by its removal, so a node
        # stopped through stop_node() stays stopped across unrelated Node updates.
        if stopped and name not in self._stopped_by_annotation:
            log.info("node %s: stopped by its %s annotation", name, STOPPED_ANNOTATION)
            self._stopped_by_annotation.add(name)
            if not hb.paused:
                self.stop_node(name)
        elif not stopped and name in self._stopped_by_annotation:
            log.info("node %s: started again (%s annotation gone)", name, STOPPED_ANNOTATION)
            self._stopped_by_annotation.discard(name)
            self.start_node(name)

    def _may_write(self, pod: dict[str, Any]) -> bool:
        slot = self.lifecycle.nodes.get((pod.get("spec") or {}).get("nodeName") or "")
        return slot is not None and not slot.paused
