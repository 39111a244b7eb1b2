"""The simulated runtime's pod lifecycle: pods bound to simulated nodes, moved through time.

One pod informer for the whole cluster feeds `on_pod` / `on_pod_deleted`;
both return at once for pods bound elsewhere, so a thousand simulated nodes
cost one watch and a dict lookup per event. A pod on one of our nodes gets a
`SimPod` (adopted from its status when we started it before a restart), an
address from its node's podCIDR, and one timer at its next due moment; each
step advances the model, records the kubelet's events and hands the new
status to the `PodStatusManager`, which writes it when it can.

A deletionTimestamp stops the containers (Killing events), then the final
status is written and the pod deleted with gracePeriodSeconds 0, as the
kubelet does. A paused node (a simulated failure) gets no steps, timers or
writes until it resumes, when each of its pods catches up in one step.

Events pass through a token bucket first (`EventBudget`), as the kubelet's
own events are rate-limited: ten thousand pods starting at once would
otherwise queue thirty thousand events in front of the event writer. Events
over budget are counted and dropped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from kubi.controllers.events import NORMAL, WARNING, EventRecorder
from kubi.node.sim.ipam import IPAM
from kubi.node.sim.model import ContainerEvent, ProbeDelay, SimPod, default_probe_delay
from kubi.node.status import TERMINAL_PHASES
from kubi.node.status_manager import PodStatusManager

log = logging.getLogger(__name__)

IP_RETRY_DELAY = 5.0
EVENT_QPS = 50.0
EVENT_BURST = 500


class EventBudget:
    """A token bucket: `rate` events a second, up to `burst` at once."""

    def __init__(self, rate: float = EVENT_QPS, burst: int = EVENT_BURST,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.dropped = 0
        self._tokens = float(burst)
        self._at = clock()

    def take(self) -> bool:
        now = self.clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        self.dropped += 1
        return False


@dataclass
class NodeSlot:
    """What the pod lifecycle needs to know about one simulated node."""

    name: str
    host_ip: str
    pod_cidr: str | None
    recorder: EventRecorder
    paused: bool = False


def pod_key(pod: dict[str, Any]) -> str:
    md = pod["metadata"]
    return f"{md.get('namespace', '')}/{md['name']}"


def pod_reference(pod: dict[str, Any], field_path: str = "") -> dict[str, str]:
    """The ObjectReference the kubelet puts on a pod's (or one container's) events."""
    md = pod["metadata"]
    ref = {"kind": "Pod", "namespace": md.get("namespace", ""), "name": md["name"],
           "uid": md.get("uid", ""), "apiVersion": "v1",
           "resourceVersion": md.get("resourceVersion", ""), "fieldPath": field_path}
    return {k: v for k, v in ref.items() if v}


def container_field_path(name: str, init: bool) -> str:
    return f"spec.{'initContainers' if init else 'containers'}{{{name}}}"


def _summary(status: dict[str, Any]) -> tuple[str, str]:
    """(phase, Ready status): enough to tell whether a stored status is ours."""
    ready = next((c.get("status", "") for c in status.get("conditions") or []
                  if c.get("type") == "Ready"), "")
    return status.get("phase", ""), ready


class SimPodLifecycle:
    def __init__(self, statuses: PodStatusManager, *, ipam: IPAM | None = None,
                 start_delay: float = 1.0, stop_delay: float = 0.0,
                 probe_delay: ProbeDelay = default_probe_delay,
                 clock: Callable[[], float] = time.time,
                 ip_retry_delay: float = IP_RETRY_DELAY,
                 event_budget: EventBudget | None = None) -> None:
        self.statuses = statuses
        self.ipam = ipam or IPAM()
        self.start_delay = start_delay
        self.stop_delay = stop_delay
        self.probe_delay = probe_delay
        self.clock = clock
        self.ip_retry_delay = ip_retry_delay
        self.event_budget = event_budget or EventBudget()
        self.nodes: dict[str, NodeSlot] = {}
        self._pods: dict[str, SimPod] = {}
        self._node_of: dict[str, str] = {}
        self._finished: set[str] = set()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._reported: dict[str, tuple[str, str]] = {}

    # ---- nodes

    def add_node(self, slot: NodeSlot) -> None:
        self.nodes[slot.name] = slot

    def pods_on(self, node: str) -> list[SimPod]:
        return [sim for key, sim in self._pods.items() if self._node_of.get(key) == node]

    def pause_node(self, node: str) -> None:
        """The node's kubelet is gone: nothing about its pods moves until it returns."""
        slot = self.nodes.get(node)
        if slot is None:
            return
        slot.paused = True
        for sim in self.pods_on(node):
            self._cancel_timer(sim.key)

    def resume_node(self, node: str, pods: Iterable[dict[str, Any]]) -> None:
        """Back after a pause: pick up `pods` (the node's pods as stored now)."""
        slot = self.nodes.get(node)
        if slot is None:
            return
        slot.paused = False
        seen = set()
        for pod in pods:
            seen.add(pod_key(pod))
            self.on_pod(pod)
        for sim in self.pods_on(node):
            if sim.key not in seen:
                self._step(sim)

    def close(self) -> None:
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()

    # ---- informer handlers

    def on_pod(self, pod: dict[str, Any]) -> None:
        slot = self.nodes.get((pod.get("spec") or {}).get("nodeName") or "")
        if slot is None or slot.paused:
            return
        key, uid = pod_key(pod), pod["metadata"].get("uid", "")
        sim = self._pods.get(key)
        if sim is not None and sim.uid != uid:
            self._drop(key)
            sim = None
        if key in self._finished:
            return
        deleting = bool(pod["metadata"].get("deletionTimestamp"))
        if sim is None:
            if (pod.get("status") or {}).get("phase") in TERMINAL_PHASES and not deleting:
                return
            sim = self._admit(pod, slot)
        else:
            sim.pod = pod
            # Most updates are our own writes coming back: nothing to do unless
            # the pod is now being deleted, or its stored status is not what we
            # last reported (someone else wrote it, or readiness gates moved).
            if not (deleting and not sim.deleting) and not (pod["spec"].get("readinessGates")) \
                    and _summary(pod.get("status") or {}) == self._reported.get(key):
                return
        if deleting and not sim.deleting:
            grace = pod["metadata"].get("deletionGracePeriodSeconds")
            delay = self.stop_delay if grace is None else min(self.stop_delay, float(grace))
            self._record(slot, sim, sim.begin_kill(self.clock(), delay))
        self._step(sim)

    def on_pod_deleted(self, pod: dict[str, Any]) -> None:
        key = pod_key(pod)
        sim = self._pods.get(key)
        if sim is not None and sim.uid == pod["metadata"].get("uid"):
            self._drop(key)

    # ---- the steps

    def _admit(self, pod: dict[str, Any], slot: NodeSlot) -> SimPod:
        now = self.clock()
        sim = SimPod.adopt(pod, now=now, host_ip=slot.host_ip, probe_delay=self.probe_delay)
        if sim is not None and sim.pod_ip and not sim.host_network and slot.pod_cidr:
            self.ipam.pool(slot.pod_cidr).reserve(sim.pod_ip, sim.uid)
        if sim is None:
            sim = SimPod(pod, now=now, host_ip=slot.host_ip, start_delay=self.start_delay,
                         probe_delay=self.probe_delay)
        self._pods[sim.key] = sim
        self._node_of[sim.key] = slot.name
        return sim

    def _step(self, sim: SimPod) -> None:
        """Bring `sim` up to now, then report, finish or wait for its next moment."""
        slot = self.nodes[self._node_of[sim.key]]
        if slot.paused or sim.key in self._finished:
            return
        now = self.clock()
        if sim.pod_ip is None and not sim.deleting and not self._assign_ip(sim, slot):
            self._schedule(sim, now + self.ip_retry_delay)
            self._report(sim)
            return
        self._record(slot, sim, sim.advance(now))
        if sim.stopped:
            self._finish(sim, slot)
            return
        self._report(sim)
        if sim.terminal:
            self._release_ip(sim, slot)
        due = sim.next_due()
        if due is not None:
            self._schedule(sim, due)

    def _report(self, sim: SimPod) -> None:
        existing = (sim.pod.get("status") or {}).get("conditions") or []
        status = sim.status(existing)
        self._reported[sim.key] = _summary(status)
        self.statuses.set_status(sim.key, sim.uid, status)

    def _finish(self, sim: SimPod, slot: NodeSlot) -> None:
        """The containers are stopped: report the final status, then remove the pod."""
        self._finished.add(sim.key)
        self._cancel_timer(sim.key)
        if sim.sandbox_ready:
            self._report(sim)
        self.statuses.delete_pod(sim.key, sim.uid)
        self._release_ip(sim, slot)

    def _assign_ip(self, sim: SimPod, slot: NodeSlot) -> bool:
        ip = self.ipam.pool(slot.pod_cidr).allocate(sim.uid) if slot.pod_cidr else None
        if ip is None:
            self._emit(slot, pod_reference(sim.pod), WARNING, "FailedCreatePodSandBox",
                       "Failed to create pod sandbox: no IP addresses available in range "
                       f"set: {slot.pod_cidr or '<none>'}")
            return False
        sim.pod_ip = ip
        return True

    def _release_ip(self, sim: SimPod, slot: NodeSlot) -> None:
        if not sim.host_network and slot.pod_cidr:
            self.ipam.pool(slot.pod_cidr).release(sim.uid)

    def _drop(self, key: str) -> None:
        sim = self._pods.pop(key, None)
        node = self._node_of.pop(key, None)
        self._finished.discard(key)
        self._reported.pop(key, None)
        self._cancel_timer(key)
        self.statuses.forget(key)
        slot = self.nodes.get(node or "")
        if sim is not None and slot is not None:
            self._release_ip(sim, slot)

    # ---- timers and events

    def _schedule(self, sim: SimPod, due: float) -> None:
        self._cancel_timer(sim.key)
        loop = asyncio.get_running_loop()
        self._timers[sim.key] = loop.call_later(max(0.0, due - self.clock()), self._on_timer,
                                                sim.key)

    def _cancel_timer(self, key: str) -> None:
        handle = self._timers.pop(key, None)
        if handle is not None:
            handle.cancel()

    def _on_timer(self, key: str) -> None:
        self._timers.pop(key, None)
        sim = self._pods.get(key)
        if sim is not None:
            try:
                self._step(sim)
            except Exception:
                log.exception("simulating pod %s failed", key)

    def _record(self, slot: NodeSlot, sim: SimPod, events: list[ContainerEvent]) -> None:
        for ev in events:
            ref = pod_reference(sim.pod, container_field_path(ev.container, ev.init))
            self._emit(slot, ref, WARNING if ev.type == WARNING else NORMAL, ev.reason,
                       ev.message)

    def _emit(self, slot: NodeSlot, ref: dict[str, str], kind: str, reason: str,
              message: str) -> None:
        if self.event_budget.take():
            slot.recorder.broadcaster.submit(slot.recorder.make_event(ref, kind, reason, message))
