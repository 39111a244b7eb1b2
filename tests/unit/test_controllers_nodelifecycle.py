"""Node lifecycle: health assessment, zones, tainting pace, and the controller on a fake API."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kubi.api.meta import format_time
from kubi.client.client import Resource
from kubi.controllers.events import EventBroadcaster
from kubi.controllers.informers import SharedInformers
from kubi.controllers.manager import ControllerContext
from kubi.controllers.nodehealth import (
    STATE_FULL_DISRUPTION,
    STATE_NORMAL,
    STATE_PARTIAL_DISRUPTION,
    TokenBucket,
    ZoneTainter,
    assess_node_health,
    eviction_qps,
    zone_key,
    zone_state,
)
from kubi.controllers.nodelifecycle import LEASES, NODES, NodeLifecycleController
from kubi.controllers.taints import apply_taints, condition_taints, diff_taints
from tests.unit.lifecycle_fakeapi import LifecycleFakeAPI

T0 = 1_700_000_000.0
PODS = Resource("", "v1", "pods", True, "Pod")


def node(name: str = "n1", *, ready: str | None = "True", heartbeat: float = T0,
         labels: dict[str, str] | None = None, unschedulable: bool = False,
         taints: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    conditions = []
    if ready is not None:
        for ctype, status in (("MemoryPressure", "False"), ("Ready", ready)):
            conditions.append({"type": ctype, "status": status, "reason": "KubeletReady",
                               "message": "ok", "lastHeartbeatTime": format_time(heartbeat),
                               "lastTransitionTime": format_time(T0 - 100)})
    spec: dict[str, Any] = {}
    if unschedulable:
        spec["unschedulable"] = True
    if taints:
        spec["taints"] = taints
    return {"metadata": {"name": name, "labels": labels or {},
                         "creationTimestamp": format_time(T0 - 1000)},
            "spec": spec, "status": {"conditions": conditions}}


def assess(n: dict[str, Any], lease: float | None, saved: Any, now: float) -> Any:
    return assess_node_health(n, lease, saved, now=now, grace_period=40,
                              startup_grace_period=60)


# ---- health


def test_a_silent_node_turns_unknown_after_the_grace_period() -> None:
    first = assess(node(), None, None, T0)
    assert first.new_conditions is None and first.current_ready["status"] == "True"
    # Same heartbeat, no lease: nothing heard for 40 s is still within grace.
    assert assess(node(), None, first.health, T0 + 40).new_conditions is None
    late = assess(node(), None, first.health, T0 + 41)
    assert late.observed_ready["status"] == "True"
    assert late.current_ready == {
        "type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown",
        "message": "Kubelet stopped posting node status.",
        "lastHeartbeatTime": format_time(T0), "lastTransitionTime": format_time(T0 + 41)}
    by_type = {c["type"]: c for c in late.new_conditions}
    assert by_type["MemoryPressure"]["status"] == "Unknown"
    assert by_type["DiskPressure"]["reason"] == "NodeStatusNeverUpdated"
    assert by_type["DiskPressure"]["message"] == "Kubelet never posted node status."
    assert "NetworkUnavailable" not in by_type
    # Once written, the next pass sees Unknown and has nothing more to write.
    written = node()
    written["status"]["conditions"] = late.new_conditions
    again = assess(written, None, late.health, T0 + 50)
    assert again.new_conditions is None and again.observed_ready["status"] == "Unknown"


def test_lease_renewals_keep_a_node_healthy() -> None:
    health = assess(node(), T0, None, T0).health
    for step in range(1, 6):
        result = assess(node(), T0 + step * 20, health, T0 + step * 20 + 5)
        assert result.new_conditions is None
        health = result.health
    # The lease stops: 40 s after the last renewal was observed, Unknown.
    assert assess(node(), T0 + 100, health, T0 + 145).new_conditions is None
    assert assess(node(), T0 + 100, health, T0 + 146).new_conditions is not None


def test_a_status_heartbeat_counts_as_hearing_from_the_node() -> None:
    health = assess(node(), None, None, T0).health
    result = assess(node(heartbeat=T0 + 30), None, health, T0 + 60)
    assert result.new_conditions is None and result.health.probe_timestamp == T0 + 60


def test_a_node_that_never_reported_gets_the_startup_grace() -> None:
    silent = node(ready=None)
    first = assess(silent, None, None, T0 - 1000 + 59)
    assert first.new_conditions is None and first.current_ready is None
    late = assess(silent, None, first.health, T0 - 1000 + 61)
    assert late.current_ready["reason"] == "NodeStatusNeverUpdated"


# ---- zones and pace


def test_zone_key_and_state() -> None:
    assert zone_key(node()) == ""
    labelled = node(labels={"topology.kubernetes.io/region": "r",
                            "topology.kubernetes.io/zone": "z"})
    assert zone_key(labelled) == "r:\x00:z"
    assert zone_state(["True", "Unknown"], 0.55) == STATE_NORMAL
    assert zone_state(["Unknown", "False"], 0.55) == STATE_FULL_DISRUPTION
    assert zone_state(["True", "True", "Unknown", "Unknown"], 0.55) == STATE_NORMAL
    assert zone_state(["True", "True", "Unknown", "Unknown", "False"], 0.55) == \
        STATE_PARTIAL_DISRUPTION
    assert zone_state([], 0.55) == STATE_NORMAL
    kw: dict[str, Any] = {"healthy_qps": 0.1, "secondary_qps": 0.01,
                          "large_cluster_threshold": 50}
    assert eviction_qps(STATE_PARTIAL_DISRUPTION, 10, **kw) == 0.0
    assert eviction_qps(STATE_PARTIAL_DISRUPTION, 51, **kw) == 0.01
    assert eviction_qps(STATE_FULL_DISRUPTION, 10, **kw) == 0.1


def test_token_bucket() -> None:
    bucket = TokenBucket(0.1, now=0.0)
    assert bucket.try_accept(0.0) and not bucket.try_accept(5.0)
    assert bucket.wait_time(5.0) == pytest.approx(5.0)
    assert bucket.try_accept(10.0)
    bucket.set_qps(0.0, 30.0)
    assert not bucket.try_accept(100.0) and bucket.wait_time(100.0) is None


def test_zone_tainter_queues_a_node_once_until_removed() -> None:
    tainter = ZoneTainter(0.1, now=0.0)
    assert tainter.add("a") and tainter.add("b") and not tainter.add("a")
    assert list(tainter.pending) == ["a", "b"]
    tainter.pending.popitem(last=False)  # processed, but still a member
    assert not tainter.add("a")
    tainter.remove("a")
    assert tainter.add("a") and list(tainter.pending) == ["b", "a"]


def test_condition_taints() -> None:
    down = node(ready="Unknown", unschedulable=True)
    wanted = condition_taints(down)
    assert wanted == [{"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"},
                      {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]
    current = [{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"},
               {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"},
               {"key": "user", "effect": "NoSchedule"}]
    add, remove = diff_taints(current, wanted,
                              {"node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable",
                               "node.kubernetes.io/unschedulable"}, "NoSchedule")
    assert add == wanted and remove == [current[0]]
    assert [t["key"] for t in apply_taints(current, add, remove)] == [
        "node.kubernetes.io/not-ready", "user", "node.kubernetes.io/unreachable",
        "node.kubernetes.io/unschedulable"]


# ---- the controller against a fake API


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


class Harness:
    def __init__(self) -> None:
        self.api = LifecycleFakeAPI()
        self.clock = Clock()
        self.informers = SharedInformers(self.api)  # type: ignore[arg-type]
        self.events = EventBroadcaster(self.api)  # type: ignore[arg-type]
        ctx = ControllerContext(self.api, self.informers, self.events)  # type: ignore[arg-type]
        self.controller = NodeLifecycleController(ctx, clock=self.clock, eviction_qps=1.0)

    async def start(self) -> None:
        self.informers.start()
        await self.informers.wait_for_sync(2)
        self.events.start()

    async def stop(self) -> None:
        await self.informers.stop()
        await self.events.stop()

    async def settle(self) -> None:
        await asyncio.sleep(0.05)

    async def add_node(self, name: str, heartbeat: float = T0) -> None:
        created = await self.api.create(NODES, node(name, heartbeat=heartbeat))
        await self.api.replace(NODES, {**created, "status": node(name, heartbeat=heartbeat)
                                       ["status"]}, subresource="status")

    async def renew(self, name: str) -> None:
        lease = {"metadata": {"name": name, "namespace": "kube-node-lease"},
                 "spec": {"holderIdentity": name, "renewTime": format_time(self.clock.now)}}
        if self.api.obj("leases", "kube-node-lease", name) is None:
            await self.api.create(LEASES, lease, "kube-node-lease")
        else:
            await self.api.patch(LEASES, name, {"spec": lease["spec"]}, "kube-node-lease")

    async def pass_(self) -> None:
        await self.settle()
        await self.controller.monitor_node_health()
        await self.settle()
        await self.controller._tainting_pass()
        await self.settle()

    def node(self, name: str) -> dict[str, Any]:
        return self.api.obj("nodes", "", name) or {}

    def taints(self, name: str) -> list[tuple[str, str]]:
        return sorted((t["key"], t["effect"]) for t in
                      (self.node(name).get("spec") or {}).get("taints") or [])

    def ready(self, name: str) -> str:
        return next(c["status"] for c in self.node(name)["status"]["conditions"]
                    if c["type"] == "Ready")


@pytest.fixture
async def harness() -> Any:
    h = Harness()
    await h.start()
    yield h
    await h.stop()


async def test_an_unreachable_node_is_marked_and_tainted(harness: Harness) -> None:
    await harness.add_node("n1")
    await harness.add_node("n2")
    await harness.api.create(PODS, {"metadata": {"name": "web"}, "spec": {"nodeName": "n1"},
                                    "status": {"conditions": [{"type": "Ready",
                                                               "status": "True"}]}}, "demo")
    for name in ("n1", "n2"):
        await harness.renew(name)
    await harness.pass_()
    assert harness.ready("n1") == "True" and harness.taints("n1") == []
    harness.clock.now = T0 + 30
    await harness.renew("n2")  # n2 keeps renewing, n1 falls silent
    await harness.pass_()
    harness.clock.now = T0 + 41
    await harness.renew("n2")
    await harness.pass_()
    assert harness.ready("n1") == "Unknown" and harness.ready("n2") == "True"
    [pod] = harness.api.items("pods", "demo")
    assert pod["status"]["conditions"][0]["status"] == "False"  # marked not ready
    # The NoExecute taint follows on the next pass, from the Unknown it now observes.
    harness.clock.now = T0 + 46
    await harness.renew("n2")
    await harness.pass_()
    await harness.controller.sync("n1")
    assert harness.taints("n1") == [("node.kubernetes.io/unreachable", "NoExecute"),
                                    ("node.kubernetes.io/unreachable", "NoSchedule")]
    noexec = next(t for t in harness.node("n1")["spec"]["taints"] if t["effect"] == "NoExecute")
    assert noexec["timeAdded"] == format_time(T0 + 46)
    # Back: heartbeats again, Ready True; the taints come off.
    harness.clock.now = T0 + 60
    fresh = harness.node("n1")
    await harness.api.replace(NODES, {**fresh, "status": node("n1", heartbeat=T0 + 60)["status"]},
                              subresource="status")
    await harness.renew("n1")
    await harness.renew("n2")
    await harness.pass_()
    await harness.controller.sync("n1")
    assert harness.taints("n1") == []
    await asyncio.wait_for(harness.events.flush(), 2)
    reasons = sorted({e["reason"] for e in harness.api.items("events")})
    assert reasons == ["NodeNotReady", "RegisteredNode"]


async def test_every_node_down_is_a_full_disruption_no_eviction_taints(
        harness: Harness) -> None:
    await harness.add_node("solo")
    await harness.renew("solo")
    await harness.pass_()
    harness.clock.now = T0 + 41
    await harness.pass_()
    harness.clock.now = T0 + 46
    await harness.pass_()
    await harness.controller.sync("solo")
    assert harness.ready("solo") == "Unknown"
    # Only the condition taint: with no node left ready, nothing is evicted.
    assert harness.taints("solo") == [("node.kubernetes.io/unreachable", "NoSchedule")]


async def test_not_ready_replaces_the_unreachable_taint_at_once(harness: Harness) -> None:
    unreachable = [{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}]
    await harness.api.create(NODES, node("n1", ready="False", taints=unreachable))
    await harness.add_node("n2")
    await harness.renew("n1")
    await harness.renew("n2")
    await harness.pass_()
    await harness.controller.sync("n1")
    assert harness.taints("n1") == [("node.kubernetes.io/not-ready", "NoExecute"),
                                    ("node.kubernetes.io/not-ready", "NoSchedule")]
