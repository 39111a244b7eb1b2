"""The simulated pod lifecycle and the pod status writer, against stand-ins."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from typing import Any

from kubi.api.errors import StatusError
from kubi.controllers.events import EventBroadcaster
from kubi.node.sim.ipam import IPAM
from kubi.node.sim.pods import EventBudget, NodeSlot, SimPodLifecycle
from kubi.node.status_manager import PodStatusManager


async def eventually(check: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


class Events(EventBroadcaster):
    def __init__(self) -> None:
        super().__init__(None)  # type: ignore[arg-type]
        self.seen: list[dict[str, Any]] = []

    def submit(self, event: dict[str, Any]) -> None:
        self.seen.append(event)

    def reasons(self) -> list[str]:
        return [e["reason"] for e in self.seen]


class Statuses:
    """Records what the lifecycle asks of the status writer."""

    def __init__(self) -> None:
        self.status: dict[str, dict[str, Any]] = {}
        self.deleted: list[tuple[str, str]] = []
        self.forgotten: list[str] = []
        self.sets = 0

    def set_status(self, key: str, uid: str, status: dict[str, Any]) -> None:
        self.sets += 1
        self.status[key] = status

    def delete_pod(self, key: str, uid: str) -> None:
        self.deleted.append((key, uid))

    def forget(self, key: str) -> None:
        self.forgotten.append(key)


def pod(name: str = "web", node: str = "sim-node-0", uid: str = "u1",
        **meta: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default", "uid": uid,
                         "resourceVersion": "5", **meta},
            "spec": {"nodeName": node, "containers": [{"name": "nginx", "image": "nginx"}]},
            "status": {"phase": "Pending"}}


def setup(cidr: str | None = "10.42.100.0/24", start_delay: float = 0.05,
          ) -> tuple[SimPodLifecycle, Statuses, Events, NodeSlot]:
    statuses, events = Statuses(), Events()
    life = SimPodLifecycle(statuses, ipam=IPAM(), start_delay=start_delay)  # type: ignore[arg-type]
    slot = NodeSlot("sim-node-0", "192.0.2.1", cidr, events.recorder("kubelet", "sim-node-0"))
    life.add_node(slot)
    return life, statuses, events, slot


def phase(statuses: Statuses, key: str = "default/web") -> str:
    return statuses.status.get(key, {}).get("phase", "")


# ---- the lifecycle


async def test_a_bound_pod_goes_pending_then_running_with_events() -> None:
    life, statuses, events, _ = setup()
    life.on_pod(pod())
    first = statuses.status["default/web"]
    assert first["phase"] == "Pending" and "podIP" not in first
    await eventually(lambda: phase(statuses) == "Running")
    assert statuses.status["default/web"]["podIP"] == "10.42.100.2"
    assert events.reasons() == ["Pulled", "Created", "Started"]
    started = events.seen[2]
    assert started["involvedObject"]["fieldPath"] == "spec.containers{nginx}"
    assert started["source"] == {"component": "kubelet", "host": "sim-node-0"}
    life.close()


async def test_pods_elsewhere_are_ignored() -> None:
    life, statuses, _, _ = setup()
    life.on_pod(pod(node="real-node"))
    unbound = pod()
    unbound["spec"].pop("nodeName")
    life.on_pod(unbound)
    assert statuses.status == {}


async def test_our_own_writes_coming_back_cost_nothing() -> None:
    life, statuses, _, _ = setup(start_delay=0)
    life.on_pod(pod())
    echoed = pod()
    echoed["status"] = copy.deepcopy(statuses.status["default/web"])
    before = statuses.sets
    life.on_pod(echoed)
    assert statuses.sets == before
    overwritten = pod()
    overwritten["status"] = {**echoed["status"], "phase": "Pending"}
    life.on_pod(overwritten)
    assert statuses.sets == before + 1
    life.close()


async def test_graceful_deletion_kills_reports_and_deletes() -> None:
    life, statuses, events, _slot = setup(start_delay=0)
    life.on_pod(pod())
    assert phase(statuses) == "Running"
    life.on_pod(pod(deletionTimestamp="2025-01-01T00:00:30Z", deletionGracePeriodSeconds=30))
    assert events.reasons()[-1] == "Killing"
    assert events.seen[-1]["message"] == "Stopping container nginx"
    assert phase(statuses) == "Succeeded"
    assert statuses.deleted == [("default/web", "u1")]
    assert life.ipam.pool("10.42.100.0/24").used == 0
    life.on_pod(pod(deletionTimestamp="2025-01-01T00:00:30Z"))  # echo: nothing more
    assert statuses.deleted == [("default/web", "u1")]
    life.on_pod_deleted(pod())
    assert statuses.forgotten == ["default/web"]
    life.close()


async def test_deleting_a_pending_pod_skips_the_status() -> None:
    life, statuses, events, _ = setup(start_delay=10)
    life.on_pod(pod())
    statuses.status.clear()
    life.on_pod(pod(deletionTimestamp="2025-01-01T00:00:30Z"))
    assert statuses.deleted == [("default/web", "u1")]
    assert statuses.status == {} and "Killing" not in events.reasons()
    life.close()


async def test_a_pod_replaced_under_the_same_name_starts_afresh() -> None:
    life, statuses, _, _ = setup(start_delay=0)
    life.on_pod(pod(uid="old"))
    life.on_pod(pod(uid="new"))
    assert life.ipam.pool("10.42.100.0/24").used == 1
    assert "default/web" in statuses.forgotten
    life.close()


async def test_a_stopped_node_freezes_its_pods_until_it_returns() -> None:
    life, statuses, _events, _slot = setup(start_delay=0.05)
    life.on_pod(pod())
    life.pause_node("sim-node-0")
    await asyncio.sleep(0.1)
    assert phase(statuses) == "Pending"
    life.on_pod(pod("late", uid="u2"))
    assert "default/late" not in statuses.status
    life.resume_node("sim-node-0", [pod(), pod("late", uid="u2")])
    assert phase(statuses) == "Running"
    assert phase(statuses, "default/late") == "Pending"
    await eventually(lambda: phase(statuses, "default/late") == "Running")
    life.close()


async def test_without_addresses_the_pod_waits_with_a_warning() -> None:
    life, statuses, events, _ = setup(cidr="10.42.100.0/30", start_delay=0)
    assert life.ipam.pool("10.42.100.0/30").allocate("another-pod") == "10.42.100.2"
    life.on_pod(pod())
    assert phase(statuses) == "Pending"
    assert events.seen[-1]["reason"] == "FailedCreatePodSandBox"
    assert events.seen[-1]["type"] == "Warning"
    assert "no IP addresses available in range set: 10.42.100.0/30" in events.seen[-1]["message"]
    life.close()


def test_event_budget_refills_at_its_rate() -> None:
    now = [0.0]
    budget = EventBudget(rate=2, burst=3, clock=lambda: now[0])
    assert [budget.take() for _ in range(4)] == [True, True, True, False]
    now[0] += 0.5
    assert budget.take() and not budget.take()
    now[0] += 100
    assert sum(budget.take() for _ in range(10)) == 3
    assert budget.dropped == 9


# ---- the status writer


class FakePods:
    def __init__(self, pods: dict[str, dict[str, Any]]) -> None:
        self.pods = pods
        self.patches: list[tuple[str, dict[str, Any], str, str]] = []
        self.deletes: list[tuple[str, int | None, dict | None]] = []
        self.fail_next: list[StatusError] = []

    async def patch(self, res: Any, name: str, patch: dict, namespace: str | None = None, *,
                    patch_type: str = "merge", subresource: str = "", **kw: Any) -> dict:
        if self.fail_next:
            raise self.fail_next.pop(0)
        self.patches.append((name, patch, patch_type, subresource))
        stored = self.pods[f"{namespace}/{name}"]
        stored = {**stored, "status": {**stored.get("status", {}),
                                       **{k: v for k, v in patch["status"].items()
                                          if not k.startswith("$")}},
                  "metadata": {**stored["metadata"], "resourceVersion": "99"}}
        self.pods[f"{namespace}/{name}"] = stored
        return stored

    async def delete(self, res: Any, name: str, namespace: str | None = None, *,
                     grace_period_seconds: int | None = None,
                     preconditions: dict | None = None, **kw: Any) -> dict:
        self.deletes.append((name, grace_period_seconds, preconditions))
        return {}


def writer(pods: dict[str, dict[str, Any]], **kw: Any) -> tuple[PodStatusManager, FakePods]:
    client = FakePods(pods)
    manager = PodStatusManager(client, lookup=pods.get, workers=4, retry_delay=0.01,
                               **kw)  # type: ignore[arg-type]
    return manager, client


async def test_only_the_latest_status_is_written() -> None:
    manager, client = writer({"default/web": pod()})
    manager.set_status("default/web", "u1", {"phase": "Pending"})
    manager.set_status("default/web", "u1", {"phase": "Running"})
    manager.start()
    await manager.flush()
    await manager.stop()
    assert len(client.patches) == 1
    name, patch, kind, sub = client.patches[0]
    assert (name, kind, sub) == ("web", "strategic", "status")
    assert patch["metadata"] == {"uid": "u1"} and patch["status"]["phase"] == "Running"
    assert manager.writes == 1


async def test_nothing_is_written_when_nothing_changed() -> None:
    manager, client = writer({"default/web": pod()})
    manager.start()
    manager.set_status("default/web", "u1", {"phase": "Pending"})
    await manager.flush()
    await manager.stop()
    assert client.patches == []


async def test_delete_follows_the_final_status() -> None:
    manager, client = writer({"default/web": pod()})
    manager.start()
    manager.set_status("default/web", "u1", {"phase": "Succeeded"})
    manager.delete_pod("default/web", "u1")
    await manager.flush()
    await manager.stop()
    assert client.patches[0][1]["status"]["phase"] == "Succeeded"
    assert client.deletes == [("web", 0, {"uid": "u1"})]


async def test_another_pod_under_the_name_is_never_written() -> None:
    manager, client = writer({"default/web": pod(uid="someone-else")})
    manager.start()
    manager.set_status("default/web", "u1", {"phase": "Running"})
    await manager.flush()
    await manager.stop()
    assert client.patches == []


async def test_conflicts_are_retried_and_missing_pods_forgotten() -> None:
    manager, client = writer({"default/web": pod()})
    client.fail_next = [StatusError(409, "Conflict", "uid changed")]
    manager.start()
    manager.set_status("default/web", "u1", {"phase": "Running"})
    await eventually(lambda: len(client.patches) == 1)
    client.fail_next = [StatusError(404, "NotFound", "gone")]
    manager.set_status("default/web", "u1", {"phase": "Failed"})
    await manager.flush()
    await manager.stop()
    assert len(client.patches) == 1


async def test_paused_nodes_are_not_written() -> None:
    manager, client = writer({"default/web": pod()}, may_write=lambda p: False)
    manager.start()
    manager.set_status("default/web", "u1", {"phase": "Running"})
    await manager.flush()
    await manager.stop()
    assert client.patches == []
