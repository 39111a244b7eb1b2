"""The ReplicaSet/ReplicationController controller, pure parts and against a fake API."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import pytest

from kubi.api.errors import StatusError
from kubi.api.meta import format_time
from kubi.client.client import Resource
from kubi.controllers.events import EventBroadcaster
from kubi.controllers.informers import SharedInformers
from kubi.controllers.manager import ControllerContext
from kubi.controllers.podcontrol import PODS, pod_from_template, slow_start_batch
from kubi.controllers.replicaset import (
    REPLICASET,
    REPLICATIONCONTROLLER,
    ReplicaKind,
    ReplicaSetController,
)
from kubi.controllers.replicaset_status import calculate_status, status_unchanged
from tests.unit.controllers_fakeapi import FakeAPI

NOW = 1_700_000_000.0
RS_RES = REPLICASET.resource
RC_RES = REPLICATIONCONTROLLER.resource


def template(labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"metadata": {"labels": labels or {"app": "web"}, "annotations": {"a": "1"}},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]}}


def replicaset(name: str = "web", replicas: int = 3, *, selector: dict[str, Any] | None = None,
               labels: dict[str, str] | None = None, min_ready: int = 0) -> dict[str, Any]:
    spec: dict[str, Any] = {"replicas": replicas,
                            "selector": selector or {"matchLabels": {"app": "web"}},
                            "template": template(labels)}
    if min_ready:
        spec["minReadySeconds"] = min_ready
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "namespace": "demo"}, "spec": spec}


def ready_pod(name: str, *, since: float = NOW - 100, labels: dict[str, str] | None = None,
              ready: bool = True) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels or {"app": "web", "tier": "fe"}},
            "status": {"phase": "Running", "conditions": [
                {"type": "Ready", "status": "True" if ready else "False",
                 "lastTransitionTime": format_time(since)}]}}


# ---- pure parts


def test_status_counts() -> None:
    rs = replicaset(replicas=4, labels={"app": "web", "tier": "fe"}, min_ready=30)
    rs["metadata"]["generation"] = 2
    pods = [ready_pod("a"), ready_pod("b", since=NOW - 10), ready_pod("c", ready=False),
            ready_pod("d", labels={"app": "web"})]
    status = calculate_status(rs, pods, None, NOW)
    assert status == {"replicas": 4, "fullyLabeledReplicas": 3, "readyReplicas": 3,
                      "availableReplicas": 2}
    assert not status_unchanged(rs, status)


def test_status_omits_zero_counts_and_keeps_unknown_fields() -> None:
    rs = replicaset(replicas=1)
    rs["status"] = {"replicas": 2, "readyReplicas": 2, "availableReplicas": 2, "extra": 1}
    assert calculate_status(rs, [], None, NOW) == {"replicas": 0, "extra": 1}


def test_replica_failure_condition_is_added_kept_and_removed() -> None:
    rs = replicaset(replicas=2)
    status = calculate_status(rs, [], StatusError(403, "Forbidden", "exceeded quota"), NOW)
    [condition] = status["conditions"]
    assert condition == {"type": "ReplicaFailure", "status": "True",
                         "lastTransitionTime": format_time(NOW), "reason": "FailedCreate",
                         "message": "exceeded quota"}
    rs["status"] = status
    again = calculate_status(rs, [], StatusError(403, "Forbidden", "other"), NOW + 5)
    assert again["conditions"] == [condition]  # existing failure kept as it was
    rs["status"] = again
    assert "conditions" not in calculate_status(rs, [], None, NOW)
    too_many = calculate_status(replicaset(replicas=0), [ready_pod("a")],
                                RuntimeError("no"), NOW)
    assert too_many["conditions"][0]["reason"] == "FailedDelete"


def test_status_unchanged_needs_the_generation_observed() -> None:
    rs = replicaset()
    rs["metadata"]["generation"] = 3
    rs["status"] = {"replicas": 3, "observedGeneration": 2}
    assert not status_unchanged(rs, {"replicas": 3})
    rs["status"]["observedGeneration"] = 3
    assert status_unchanged(rs, {"replicas": 3})


def test_pod_from_template() -> None:
    rs = replicaset()
    rs["metadata"]["uid"] = "u"
    ref = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "u",
           "controller": True, "blockOwnerDeletion": True}
    tpl = template()
    tpl["metadata"]["finalizers"] = ["f"]
    pod = pod_from_template(tpl, rs, ref)
    assert pod["metadata"] == {"generateName": "web-", "labels": {"app": "web"},
                               "annotations": {"a": "1"}, "finalizers": ["f"],
                               "ownerReferences": [ref]}
    assert pod["spec"] == tpl["spec"] and pod["spec"] is not tpl["spec"]


async def test_slow_start_doubles_and_stops_at_the_first_failing_batch() -> None:
    calls = 0

    async def ok() -> None:
        nonlocal calls
        calls += 1

    assert await slow_start_batch(10, 1, ok) == (10, None)
    assert calls == 10  # batches of 1, 2, 4, 3

    calls = 0

    async def fails_after_three() -> None:
        nonlocal calls
        calls += 1
        if calls > 3:
            raise RuntimeError("quota")

    successes, error = await slow_start_batch(100, 1, fails_after_three)
    assert calls == 7  # 1 + 2 + a batch of 4 that fails; no batch of 8
    assert successes == 3 and isinstance(error, RuntimeError)


# ---- the controller against a fake API


class Harness:
    def __init__(self, kind: ReplicaKind = REPLICASET) -> None:
        self.api = FakeAPI()
        self.kind = kind
        self.informers = SharedInformers(self.api)  # type: ignore[arg-type]
        self.events = EventBroadcaster(self.api)  # type: ignore[arg-type]
        context = ControllerContext(self.api, self.informers, self.events)  # type: ignore[arg-type]
        self.controller = ReplicaSetController(context, kind)
        self.task: asyncio.Task[None] | None = None

    async def start(self, run: bool = True) -> Harness:
        self.informers.start()
        await self.informers.wait_for_sync(2)
        self.events.start()
        if run:
            self.task = asyncio.create_task(self.controller.run(2))
        return self

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        await self.informers.stop()
        await self.events.stop()

    def pods(self) -> list[dict[str, Any]]:
        return self.api.items("pods", "demo")

    def owner(self, name: str = "web") -> dict[str, Any]:
        plural = self.kind.resource.plural
        return self.api.objects[(plural, "demo", name)]

    async def events_flushed(self) -> list[dict[str, Any]]:
        await asyncio.wait_for(self.events.flush(), 2)
        return self.api.items("events", "demo")


async def eventually(predicate: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


@pytest.fixture
async def harness() -> Any:
    h = Harness()
    await h.start()
    yield h
    await h.stop()


async def test_creates_the_replicas_with_owner_references_and_events(harness: Harness) -> None:
    created = await harness.api.create(RS_RES, replicaset(), "demo")
    await eventually(lambda: len(harness.pods()) == 3)
    for pod in harness.pods():
        md = pod["metadata"]
        assert re.fullmatch(r"web-[bcdfghjklmnpqrstvwxz2456789]{5}", md["name"])
        assert md["generateName"] == "web-"
        assert md["labels"] == {"app": "web"} and md["annotations"] == {"a": "1"}
        assert md["ownerReferences"] == [{
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web",
            "uid": created["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}]
    await eventually(lambda: (harness.owner().get("status") or {}).get("replicas") == 3)
    assert harness.owner()["status"]["observedGeneration"] == 1
    assert harness.owner()["status"]["fullyLabeledReplicas"] == 3
    events = await harness.events_flushed()
    messages = sorted(e["message"] for e in events if e["reason"] == "SuccessfulCreate")
    assert messages == sorted(f"Created pod: {p['metadata']['name']}" for p in harness.pods())
    assert all(e["source"] == {"component": "replicaset-controller"} for e in events)
    assert all(e["involvedObject"]["kind"] == "ReplicaSet" for e in events)
    await asyncio.sleep(0.1)
    assert harness.api.count("create", "pods") == 3  # never more than asked


async def test_a_deleted_pod_is_replaced(harness: Harness) -> None:
    await harness.api.create(RS_RES, replicaset(replicas=2), "demo")
    await eventually(lambda: len(harness.pods()) == 2)
    victim = harness.pods()[0]["metadata"]["name"]
    await harness.api.delete(PODS, victim, "demo")
    await eventually(lambda: len(harness.pods()) == 2
                     and victim not in {p["metadata"]["name"] for p in harness.pods()})


async def test_a_terminating_pod_is_replaced_before_it_is_gone(harness: Harness) -> None:
    await harness.api.create(RS_RES, replicaset(replicas=1), "demo")
    await eventually(lambda: len(harness.pods()) == 1)
    name = harness.pods()[0]["metadata"]["name"]
    await harness.api.patch(PODS, name, {"metadata": {"deletionTimestamp": format_time(NOW)}},
                            "demo")
    await eventually(lambda: len(harness.pods()) == 2)


async def test_scaling_down_deletes_the_most_deletable(harness: Harness) -> None:
    await harness.api.create(RS_RES, replicaset(replicas=3), "demo")
    await eventually(lambda: len(harness.pods()) == 3)
    names = [p["metadata"]["name"] for p in harness.pods()]
    keep, doomed = names[:2], names[2]
    for name in keep:  # these two are scheduled and running; the third stays unassigned
        await harness.api.patch(PODS, name, {"spec": {"nodeName": "n1"},
                                             "status": {"phase": "Running"}}, "demo")
    rs = harness.owner()
    await harness.api.replace(RS_RES, {**rs, "spec": {**rs["spec"], "replicas": 2}})
    await eventually(lambda: len(harness.pods()) == 2)
    assert sorted(p["metadata"]["name"] for p in harness.pods()) == sorted(keep)
    await eventually(lambda: harness.owner()["status"].get("observedGeneration") == 2
                     and harness.owner()["status"]["replicas"] == 2)
    events = await harness.events_flushed()
    deleted = [e["message"] for e in events if e["reason"] == "SuccessfulDelete"]
    assert deleted == [f"Deleted pod: {doomed}"]


async def test_orphans_are_adopted_and_strays_released(harness: Harness) -> None:
    orphan = await harness.api.create(PODS, {"metadata": {"name": "orphan",
                                                          "labels": {"app": "web"}}}, "demo")
    await harness.api.create(PODS, {"metadata": {"name": "stranger",
                                                 "labels": {"app": "db"}}}, "demo")
    rs = await harness.api.create(RS_RES, replicaset(replicas=2), "demo")
    await eventually(lambda: len(harness.pods()) == 3)
    adopted = harness.api.objects[("pods", "demo", "orphan")]
    assert adopted["metadata"]["ownerReferences"][0]["uid"] == rs["metadata"]["uid"]
    assert adopted["metadata"]["uid"] == orphan["metadata"]["uid"]
    assert "ownerReferences" not in harness.api.objects[("pods", "demo", "stranger")]["metadata"]
    # Relabel the adopted pod: it is released and replaced.
    await harness.api.patch(PODS, "orphan", {"metadata": {"labels": {"app": "gone"}}}, "demo")
    await eventually(lambda: not harness.api.objects[("pods", "demo", "orphan")]["metadata"]
                     .get("ownerReferences") and len(harness.pods()) == 4)


async def test_set_based_selectors(harness: Harness) -> None:
    selector = {"matchExpressions": [
        {"key": "app", "operator": "In", "values": ["web", "api"]},
        {"key": "env", "operator": "NotIn", "values": ["dev"]},
        {"key": "tier", "operator": "Exists"}]}
    await harness.api.create(PODS, {"metadata": {"name": "dev-pod", "labels": {
        "app": "web", "env": "dev", "tier": "fe"}}}, "demo")
    await harness.api.create(PODS, {"metadata": {"name": "prod-pod", "labels": {
        "app": "api", "env": "prod", "tier": "fe"}}}, "demo")
    await harness.api.create(RS_RES, replicaset(replicas=2, selector=selector,
                                                labels={"app": "web", "tier": "fe"}), "demo")
    await eventually(lambda: len(harness.pods()) == 3)
    owned = [p["metadata"]["name"] for p in harness.pods() if p["metadata"].get("ownerReferences")]
    assert "prod-pod" in owned and "dev-pod" not in owned and len(owned) == 2


async def test_create_failures_set_replica_failure_and_clear_it(harness: Harness) -> None:
    def quota(verb: str, res: Resource, obj: dict[str, Any] | None) -> Exception | None:
        if verb == "create" and res.plural == "pods":
            return StatusError(403, "Forbidden", 'pods "web-x" is forbidden: exceeded quota')
        return None

    harness.api.fail(quota)
    await harness.api.create(RS_RES, replicaset(replicas=5), "demo")
    await eventually(lambda: bool((harness.owner().get("status") or {}).get("conditions")))
    [condition] = harness.owner()["status"]["conditions"]
    assert condition["type"] == "ReplicaFailure" and condition["reason"] == "FailedCreate"
    assert condition["message"] == 'pods "web-x" is forbidden: exceeded quota'
    assert harness.api.count("create", "pods") <= 3  # slow start: one try per sync, backing off
    events = await harness.events_flushed()
    failed = [e for e in events if e["reason"] == "FailedCreate"]
    assert failed and failed[0]["type"] == "Warning"
    assert failed[0]["message"] == 'Error creating: pods "web-x" is forbidden: exceeded quota'
    harness.api.failures.clear()
    await eventually(lambda: len(harness.pods()) == 5, timeout=5)
    await eventually(lambda: "conditions" not in harness.owner()["status"])


async def test_expectations_prevent_double_creation() -> None:
    h = Harness()
    await h.start(run=False)
    try:
        await h.api.create(RS_RES, replicaset(replicas=4), "demo")
        await eventually(lambda: h.controller.owners.get("demo/web") is not None)
        h.api.hold_watches()
        await h.controller.sync("demo/web")
        await h.controller.sync("demo/web")  # creations not yet observed: must not create again
        assert h.api.count("create", "pods") == 4
        assert h.controller.expectations.pending("demo/web") == (4, 0)
        h.api.release_watches()
        await eventually(lambda: h.controller.expectations.satisfied("demo/web"))
        await h.controller.sync("demo/web")
        assert h.api.count("create", "pods") == 4
    finally:
        await h.stop()


async def test_burst_limits_one_sync() -> None:
    h = Harness()
    h.controller.burst_replicas = 3
    await h.start(run=False)
    try:
        await h.api.create(RS_RES, replicaset(replicas=10), "demo")
        await eventually(lambda: h.controller.owners.get("demo/web") is not None)
        await h.controller.sync("demo/web")
        assert h.api.count("create", "pods") == 3
    finally:
        await h.stop()


async def test_ready_and_available_replicas_follow_the_pods(harness: Harness) -> None:
    await harness.api.create(RS_RES, replicaset(replicas=2, min_ready=3600), "demo")
    await eventually(lambda: len(harness.pods()) == 2)
    old, new = [p["metadata"]["name"] for p in harness.pods()]
    for name, since in ((old, NOW - 7200), (new, NOW + 10**9)):
        await harness.api.patch(PODS, name, {"status": {"phase": "Running", "conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": format_time(since)}]}},
            "demo")
    await eventually(lambda: harness.owner()["status"].get("readyReplicas") == 2)
    assert harness.owner()["status"]["availableReplicas"] == 1


def replication_controller() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ReplicationController",
            "metadata": {"name": "web", "namespace": "demo"},
            "spec": {"replicas": 2, "selector": {"app": "web"}, "template": template()}}


@pytest.fixture
async def rc_harness() -> Any:
    h = Harness(REPLICATIONCONTROLLER)
    await h.start()
    yield h
    await h.stop()


async def test_replication_controllers_use_the_same_machinery(rc_harness: Harness) -> None:
    h = rc_harness
    created = await h.api.create(RC_RES, replication_controller(), "demo")
    await eventually(lambda: len(h.pods()) == 2)
    ref = h.pods()[0]["metadata"]["ownerReferences"][0]
    assert ref["kind"] == "ReplicationController" and ref["apiVersion"] == "v1"
    assert ref["uid"] == created["metadata"]["uid"]
    await eventually(lambda: (h.owner().get("status") or {}).get("replicas") == 2)
    events = await h.events_flushed()
    assert {e["source"]["component"] for e in events} == {"replication-controller"}
    assert {e["involvedObject"]["apiVersion"] for e in events} == {"v1"}


async def test_a_deleted_owner_is_forgotten(harness: Harness) -> None:
    await harness.api.create(RS_RES, replicaset(replicas=1), "demo")
    await eventually(lambda: len(harness.pods()) == 1)
    await harness.api.delete(RS_RES, "web", "demo")
    await eventually(lambda: harness.controller.owners.get("demo/web") is None)
    await harness.controller.sync("demo/web")  # nothing to do, nothing raised
    assert harness.controller.expectations.pending("demo/web") == (0, 0)


async def test_a_changed_selector_is_read_again(rc_harness: Harness) -> None:
    """A ReplicationController's selector may change: the pods it no longer selects
    are released and new ones made, although the pods themselves did not change."""
    h = rc_harness
    await h.api.create(RC_RES, replication_controller(), "demo")
    await eventually(lambda: len(h.pods()) == 2)
    first = {p["metadata"]["name"] for p in h.pods()}
    await h.api.patch(RC_RES, "web", {"spec": {
        "selector": {"app": "web2"}, "template": template({"app": "web2"})}}, "demo")

    def owned() -> set[str]:
        return {p["metadata"]["name"] for p in h.pods() if p["metadata"].get("ownerReferences")}

    await eventually(lambda: len(owned()) == 2 and not owned() & first)
    assert len(h.pods()) == 4
