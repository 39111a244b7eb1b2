"""The node lifecycle controller: node health, condition taints, NoExecute tainting.

A health pass every `monitor_period` marks silent nodes Unknown (nodehealth),
records `NodeNotReady` and marks the pods of a node leaving Ready not ready,
and from the Ready status seen at the pass's start queues the NoExecute
`unreachable`/`not-ready` taint per zone (removed at once on recovery). A
tainting loop applies queued taints at each zone's rate; when every zone is
down, tainting stops and the taints come off (a partition, not dead nodes).
A node-keyed queue keeps the NoSchedule condition taints in step with every
node change. Evicting pods is the taint eviction controller's job.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from kubi.api.errors import StatusError
from kubi.api.meta import format_time, parse_time
from kubi.client.client import Resource
from kubi.controllers.base import QueueController
from kubi.controllers.events import NORMAL, WARNING
from kubi.controllers.manager import ControllerContext
from kubi.controllers.nodehealth import (
    NODE_NAME_INDEX,
    STATE_FULL_DISRUPTION,
    STATE_INITIAL,
    HealthAssessment,
    NodeHealth,
    ZoneTainter,
    assess_node_health,
    eviction_qps,
    excluded_from_disruption,
    node_condition,
    pod_node_index,
    zone_key,
    zone_state,
)
from kubi.controllers.podcontrol import PODS
from kubi.controllers.taints import (
    MANAGED_NO_SCHEDULE_KEYS,
    NO_EXECUTE,
    NO_SCHEDULE,
    NODE_LIFECYCLE_NO_EXECUTE_KEYS,
    TAINT_NOT_READY,
    TAINT_UNREACHABLE,
    apply_taints,
    condition_taints,
    diff_taints,
    has_taint,
    node_taints,
)

log = logging.getLogger(__name__)

Obj = dict[str, Any]

NODES = Resource("", "v1", "nodes", False, "Node")
LEASES = Resource("coordination.k8s.io", "v1", "leases", True, "Lease")
NODE_LEASE_NAMESPACE = "kube-node-lease"

NODE_MONITOR_GRACE_PERIOD = 40.0
NODE_STARTUP_GRACE_PERIOD = 60.0
NODE_MONITOR_PERIOD = 5.0
NODE_EVICTION_QPS = 0.1
SECONDARY_NODE_EVICTION_QPS = 0.01
LARGE_CLUSTER_THRESHOLD = 50
UNHEALTHY_ZONE_THRESHOLD = 0.55
TAINTING_PERIOD = 0.1
TAINT_UPDATE_RETRIES = 5
STATUS_UPDATE_RETRIES = 5


class NodeLifecycleController(QueueController):
    name = "nodelifecycle"
    workers = 1

    def __init__(self, ctx: ControllerContext, *,
                 grace_period: float = NODE_MONITOR_GRACE_PERIOD,
                 startup_grace_period: float = NODE_STARTUP_GRACE_PERIOD,
                 monitor_period: float = NODE_MONITOR_PERIOD,
                 eviction_qps: float = NODE_EVICTION_QPS,
                 secondary_eviction_qps: float = SECONDARY_NODE_EVICTION_QPS,
                 large_cluster_threshold: int = LARGE_CLUSTER_THRESHOLD,
                 unhealthy_zone_threshold: float = UNHEALTHY_ZONE_THRESHOLD,
                 tainting_period: float = TAINTING_PERIOD,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.client = ctx.client
        self.recorder = ctx.recorder("node-controller")
        self.grace_period = grace_period
        self.startup_grace_period = startup_grace_period
        self.monitor_period = monitor_period
        self.healthy_qps = eviction_qps
        self.secondary_qps = secondary_eviction_qps
        self.large_cluster_threshold = large_cluster_threshold
        self.unhealthy_zone_threshold = unhealthy_zone_threshold
        self.tainting_period = tainting_period
        self.clock = clock
        self.health: dict[str, NodeHealth] = {}
        self.known: dict[str, Obj] = {}
        self.zone_states: dict[str, str] = {}
        self.tainters: dict[str, ZoneTainter] = {}
        self.retry_pods_not_ready: set[str] = set()
        self._entering_full_disruption = False
        self._tainting_wanted = asyncio.Event()
        self.nodes = ctx.informers.get(NODES)
        self.leases = ctx.informers.get(LEASES, NODE_LEASE_NAMESPACE)
        self.pods = ctx.informers.get(PODS)
        self.pods.add_index(NODE_NAME_INDEX, pod_node_index)
        self.nodes.on_add(lambda node: self.queue.add(node["metadata"]["name"]))
        self.nodes.on_update(lambda old, new: self.queue.add(new["metadata"]["name"]))

    async def run(self, workers: int | None = None) -> None:
        loops = [asyncio.create_task(self._monitor_loop(), name="node-health-monitor"),
                 asyncio.create_task(self._tainting_loop(), name="node-noexecute-tainter")]
        try:
            await super().run(workers)
        finally:
            for task in loops:
                task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)

    # ---- NoSchedule taints follow the conditions (queue worker)

    async def sync(self, key: str) -> None:
        node = self.nodes.get(key)
        if node is None:
            return
        add, remove = diff_taints(node_taints(node), condition_taints(node),
                                  MANAGED_NO_SCHEDULE_KEYS, NO_SCHEDULE)
        if add or remove:
            await self._swap_taints(key, add, remove)

    # ---- the health pass

    async def _monitor_loop(self) -> None:
        while True:
            try:
                await self.monitor_node_health()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("node health pass failed")
            await asyncio.sleep(self.monitor_period)

    async def monitor_node_health(self) -> None:
        nodes = self.nodes.list()
        now = self.clock()
        current = {n["metadata"]["name"]: n for n in nodes}
        for name in [n for n in current if n not in self.known]:
            node = current[name]
            self._node_event(node, NORMAL, "RegisteredNode",
                             f"Node {name} event: Registered Node {name} in Controller")
            self.known[name] = node
            self.tainters.setdefault(zone_key(node), ZoneTainter(self.healthy_qps, now))
            self.zone_states.setdefault(zone_key(node), STATE_INITIAL)
            await self._mark_reachable(node)
        for name in [n for n in self.known if n not in current]:
            node = self.known.pop(name)
            self._node_event(node, NORMAL, "RemovingNode",
                             f"Node {name} event: Removing Node {name} from Controller")
            self.health.pop(name, None)
            self.retry_pods_not_ready.discard(name)
            for tainter in self.tainters.values():
                tainter.remove(name)
        zones: dict[str, list[str | None]] = {}
        results = await asyncio.gather(*(self._monitor_node(node, zones) for node in nodes),
                                       return_exceptions=True)
        for result in results:
            if isinstance(result, Exception):
                log.warning("node health: %s", result)
        self._handle_disruption(zones, nodes)
        await self._apply_disruption_mode(nodes)
        self._tainting_wanted.set()

    async def _monitor_node(self, node: Obj, zones: dict[str, list[str | None]]) -> None:
        name = node["metadata"]["name"]
        assessment = await self._update_health(node)
        if assessment is None:
            return
        current, observed = assessment.current_ready, assessment.observed_ready
        if not excluded_from_disruption(node):
            zones.setdefault(zone_key(node), []).append(
                current.get("status") if current else None)
        if current is None:
            return
        await self._taint_by_readiness(node, observed.get("status"))
        if current.get("status") != "True" and observed.get("status") == "True":
            self._node_event(node, NORMAL, "NodeNotReady",
                             f"Node {name} status is now: NodeNotReady")
            await self._mark_pods_not_ready(name)
        elif name in self.retry_pods_not_ready and observed.get("status") != "True":
            await self._mark_pods_not_ready(name)
        else:
            self.retry_pods_not_ready.discard(name)

    async def _update_health(self, node: Obj) -> HealthAssessment | None:
        name = node["metadata"]["name"]
        for attempt in range(STATUS_UPDATE_RETRIES):
            lease = self.leases.get(f"{NODE_LEASE_NAMESPACE}/{name}")
            renew = parse_time(((lease or {}).get("spec") or {}).get("renewTime"))
            assessment = assess_node_health(
                node, renew, self.health.get(name), now=self.clock(),
                grace_period=self.grace_period, startup_grace_period=self.startup_grace_period)
            if assessment.new_conditions is None:
                self.health[name] = assessment.health
                return assessment
            log.info("node %s: no status for %.0fs, marking its conditions Unknown", name,
                     self.clock() - assessment.health.probe_timestamp)
            body = {"apiVersion": "v1", "kind": "Node", **node,
                    "status": {**(node.get("status") or {}),
                               "conditions": assessment.new_conditions}}
            try:
                await self.client.replace(NODES, body, subresource="status")
                self.health[name] = assessment.health
                return assessment
            except StatusError as err:
                if err.code == 404:
                    return None
                if attempt == STATUS_UPDATE_RETRIES - 1:
                    raise
            node = await self.client.get(NODES, name)
        return None

    async def _mark_pods_not_ready(self, node_name: str) -> None:
        """Set Ready False on the pods of a node that stopped being ready."""
        failed = False
        stamp = format_time(self.clock())
        for pod in self.pods.by_index(NODE_NAME_INDEX, node_name):
            ready = next((c for c in (pod.get("status") or {}).get("conditions") or ()
                          if c.get("type") == "Ready"), None)
            if ready is None or ready.get("status") == "False":
                continue
            md = pod["metadata"]
            patch = {"status": {"conditions": [
                {"type": "Ready", "status": "False", "lastTransitionTime": stamp}]}}
            try:
                await self.client.patch(PODS, md["name"], patch, md.get("namespace"),
                                        patch_type="strategic", subresource="status")
            except StatusError as err:
                if err.code == 404:
                    continue
                log.info("node %s: could not mark pod %s/%s not ready: %s", node_name,
                         md.get("namespace"), md["name"], err)
                failed = True
                continue
            self.recorder.event(pod, WARNING, "NodeNotReady", "Node is not ready",
                                kind="Pod", api_version="v1")
        if failed:
            self.retry_pods_not_ready.add(node_name)
        else:
            self.retry_pods_not_ready.discard(node_name)

    # ---- NoExecute taints

    async def _taint_by_readiness(self, node: Obj, status: str | None) -> None:
        name = node["metadata"]["name"]
        taints = node_taints(node)
        tainter = self.tainters.setdefault(zone_key(node),
                                           ZoneTainter(self.healthy_qps, self.clock()))
        if status == "True":
            tainter.remove(name)
            await self._mark_reachable(node)
            return
        wanted, other = ((TAINT_NOT_READY, TAINT_UNREACHABLE) if status == "False"
                         else (TAINT_UNREACHABLE, TAINT_NOT_READY))
        if has_taint(taints, other, NO_EXECUTE):
            # Already tainted for the other failure: swap at once, no need to queue.
            await self._swap_taints(name, [self._no_execute(wanted)],
                                    [{"key": other, "effect": NO_EXECUTE}])
            return
        if not has_taint(taints, wanted, NO_EXECUTE):
            tainter.remove(name)  # queue it again, its taint went missing
        if tainter.add(name):
            # The tainting loop wakes after the pass, once the zones' rates are known.
            log.info("node %s: Ready is %s, queued for the %s taint", name, status, wanted)

    def _no_execute(self, key: str) -> Obj:
        return {"key": key, "effect": NO_EXECUTE, "timeAdded": format_time(self.clock())}

    async def _mark_reachable(self, node: Obj) -> None:
        remove = [t for t in node_taints(node) if t.get("effect") == NO_EXECUTE
                  and t.get("key") in NODE_LIFECYCLE_NO_EXECUTE_KEYS]
        if remove:
            await self._swap_taints(node["metadata"]["name"], [], remove)

    async def _tainting_loop(self) -> None:
        while True:
            await self._tainting_wanted.wait()
            self._tainting_wanted.clear()
            while any(t.pending and t.limiter.qps > 0 for t in self.tainters.values()):
                await self._tainting_pass()
                await asyncio.sleep(self.tainting_period)

    async def _tainting_pass(self) -> None:
        for tainter in list(self.tainters.values()):
            while tainter.pending and tainter.limiter.try_accept(self.clock()):
                name, _ = tainter.pending.popitem(last=False)
                if not await self._apply_no_execute(name):
                    tainter.pending[name] = None  # try again on a later pass

    async def _apply_no_execute(self, name: str) -> bool:
        node = self.nodes.get(name)
        if node is None:
            return True
        ready = node_condition(node, "Ready")
        status = ready.get("status") if ready else None
        if status not in ("False", "Unknown"):
            return True  # healthy again, or never reported: nothing to taint
        wanted, other = ((TAINT_NOT_READY, TAINT_UNREACHABLE) if status == "False"
                         else (TAINT_UNREACHABLE, TAINT_NOT_READY))
        try:
            await self._swap_taints(name, [self._no_execute(wanted)],
                                    [{"key": other, "effect": NO_EXECUTE}])
        except StatusError as err:
            log.info("node %s: could not add the %s taint: %s", name, wanted, err)
            return err.code == 404
        return True

    # ---- zones

    def _handle_disruption(self, zones: dict[str, list[str | None]], nodes: list[Obj]) -> None:
        new_states = {zone: zone_state(statuses, self.unhealthy_zone_threshold)
                      for zone, statuses in zones.items()}
        for zone in new_states:
            self.zone_states.setdefault(zone, STATE_INITIAL)
            self.tainters.setdefault(zone, ZoneTainter(self.healthy_qps, self.clock()))
        all_down_now = all(s == STATE_FULL_DISRUPTION for s in new_states.values())
        for zone in [z for z in self.zone_states if z not in new_states]:
            del self.zone_states[zone]
        all_down_before = all(s == STATE_FULL_DISRUPTION for s in self.zone_states.values())
        self._entering_full_disruption = False
        if all_down_now and all_down_before:
            return
        if all_down_now:
            log.warning("every node is not ready: entering full disruption mode, no evictions")
            for zone in self.zone_states:
                self.tainters[zone].limiter.set_qps(0.0, self.clock())
                self.zone_states[zone] = STATE_FULL_DISRUPTION
            self._entering_full_disruption = True
            return
        if all_down_before:
            log.info("some nodes are ready again: leaving full disruption mode")
            now = self.clock()
            for name, health in list(self.health.items()):
                self.health[name] = NodeHealth(now, now, health.ready_condition,
                                               health.lease_renew_time)
        for zone, state in new_states.items():
            if all_down_before or self.zone_states.get(zone) != state:
                qps = eviction_qps(state, len(zones[zone]), healthy_qps=self.healthy_qps,
                                   secondary_qps=self.secondary_qps,
                                   large_cluster_threshold=self.large_cluster_threshold)
                self.tainters[zone].limiter.set_qps(qps, self.clock())
                self.zone_states[zone] = state

    async def _apply_disruption_mode(self, nodes: list[Obj]) -> None:
        if self._entering_full_disruption:
            for node in nodes:
                try:
                    await self._mark_reachable(node)
                except StatusError as err:
                    log.info("node %s: could not remove taints: %s", node["metadata"]["name"],
                             err)

    # ---- writes

    def _node_event(self, node: Obj, event_type: str, reason: str, message: str) -> None:
        ref = {"metadata": {"name": node["metadata"]["name"],
                            "uid": node["metadata"].get("uid", "")}}
        self.recorder.event(ref, event_type, reason, message, kind="Node", api_version="v1")

    async def _swap_taints(self, name: str, add: list[Obj], remove: list[Obj]) -> None:
        """Add and remove taints with a resourceVersion guard, re-reading on conflict."""
        node = self.nodes.get(name)
        for attempt in range(TAINT_UPDATE_RETRIES):
            if node is None:
                node = await self.client.get(NODES, name)
            current = node_taints(node)
            updated = apply_taints(current, add, remove)
            if _same_taints(current, updated):
                return
            patch = {"metadata": {"resourceVersion": node["metadata"].get("resourceVersion")},
                     "spec": {"taints": updated or None}}
            try:
                await self.client.patch(NODES, name, patch, patch_type="merge")
                return
            except StatusError as err:
                if err.code == 404:
                    return
                if err.code != 409 or attempt == TAINT_UPDATE_RETRIES - 1:
                    raise
            node = None


def _same_taints(a: list[Obj], b: list[Obj]) -> bool:
    """Equal but for timeAdded on taints that were already there."""
    def strip(taints: list[Obj]) -> list[tuple[Any, ...]]:
        return sorted((t.get("key"), t.get("value"), t.get("effect")) for t in taints)
    return strip(a) == strip(b)


def nodelifecycle_controller(ctx: ControllerContext, **options: Any) -> NodeLifecycleController:
    """Options (seconds unless noted): grace_period, startup_grace_period, monitor_period,
    eviction_qps (nodes/s), secondary_eviction_qps, large_cluster_threshold (nodes),
    unhealthy_zone_threshold (fraction), tainting_period."""
    return NodeLifecycleController(ctx, **options)
