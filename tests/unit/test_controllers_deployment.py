"""The Deployment controller with the ReplicaSet controller, against the fake API.

A stand-in for the kubelet marks chosen pods Running and Ready, so rollouts
advance as they would on real nodes; the tests then read the ReplicaSets,
the Deployment's status and the events both controllers wrote.
"""

from __future__ import annotations

import asyncio
import copy
import re
from collections.abc import Callable
from typing import Any

import pytest

from kubi.api.meta import now_rfc3339
from kubi.controllers.deployment import DeploymentController
from kubi.controllers.deployment.actions import DEPLOYMENTS, REPLICASETS, DeploymentActions
from kubi.controllers.deployment.hashing import compute_hash
from kubi.controllers.deployment.replicasets import new_replica_set
from kubi.controllers.events import EventBroadcaster
from kubi.controllers.informers import SharedInformers
from kubi.controllers.manager import ControllerContext
from kubi.controllers.podcontrol import PODS
from kubi.controllers.podutil import is_pod_ready
from kubi.controllers.replicaset import REPLICASET, ReplicaSetController
from tests.unit.controllers_fakeapi import FakeAPI

Obj = dict[str, Any]
HASH = r"[bcdfghjklmnpqrstvwxz2456789]{1,10}"


def deployment(replicas: int = 3, *, image: str = "nginx:1.14.2", strategy: str = "RollingUpdate",
               surge: int | str = "25%", unavailable: int | str = "25%", deadline: int = 600,
               history: int = 10, paused: bool = False) -> Obj:
    strategy_obj: Obj = {"type": strategy}
    if strategy == "RollingUpdate":
        strategy_obj["rollingUpdate"] = {"maxSurge": surge, "maxUnavailable": unavailable}
    spec: Obj = {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": "web"}},
        "strategy": strategy_obj,
        "revisionHistoryLimit": history,
        "progressDeadlineSeconds": deadline,
        "template": {"metadata": {"labels": {"app": "web"}},
                     "spec": {"containers": [{"name": "c", "image": image}]}},
    }
    if paused:
        spec["paused"] = True
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "demo"}, "spec": spec}


def image_of(pod: Obj) -> str:
    return str(pod["spec"]["containers"][0]["image"])


class Harness:
    def __init__(self) -> None:
        self.api = FakeAPI()
        self.informers = SharedInformers(self.api)  # type: ignore[arg-type]
        self.events = EventBroadcaster(self.api)  # type: ignore[arg-type]
        context = ControllerContext(self.api, self.informers, self.events)  # type: ignore[arg-type]
        self.replicasets = ReplicaSetController(context, REPLICASET)
        self.controller = DeploymentController(context)
        self.ready_when: Callable[[Obj], bool] = lambda pod: True
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self) -> Harness:
        self.informers.start()
        await self.informers.wait_for_sync(2)
        self.events.start()
        self.tasks = [asyncio.create_task(self.replicasets.run(2)),
                      asyncio.create_task(self.controller.run(2)),
                      asyncio.create_task(self._kubelet())]
        return self

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.informers.stop()
        await self.events.stop()

    async def _kubelet(self) -> None:
        """Mark pods Running and Ready once `ready_when` allows it."""
        while True:
            for pod in self.api.items("pods", "demo"):
                if not is_pod_ready(pod) and self.ready_when(pod):
                    await self.api.patch(PODS, pod["metadata"]["name"], {"status": {
                        "phase": "Running", "conditions": [
                            {"type": "Ready", "status": "True",
                             "lastTransitionTime": now_rfc3339()}]}}, "demo")
            await asyncio.sleep(0.01)

    # ---- reading the fake API

    def deployment(self) -> Obj:
        return copy.deepcopy(self.api.objects[("deployments", "demo", "web")])

    def replica_sets(self) -> dict[str, Obj]:
        return {rs["metadata"]["name"]: rs for rs in self.api.items("replicasets", "demo")}

    def sizes(self) -> dict[str, int]:
        return {name: rs["spec"]["replicas"] for name, rs in self.replica_sets().items()}

    def pods(self) -> list[Obj]:
        return self.api.items("pods", "demo")

    def condition(self, cond_type: str) -> Obj | None:
        for condition in (self.deployment().get("status") or {}).get("conditions") or ():
            if condition["type"] == cond_type:
                return dict(condition)
        return None

    def complete(self) -> bool:
        d = self.deployment()
        status = d.get("status") or {}
        want = d["spec"]["replicas"]
        return (status.get("observedGeneration") == d["metadata"]["generation"]
                and status.get("updatedReplicas", 0) == want
                and status.get("replicas", 0) == want
                and status.get("availableReplicas", 0) == want)

    async def scaling_events(self) -> list[str]:
        await asyncio.wait_for(self.events.flush(), 2)
        return [e["message"] for e in sorted(self.api.items("events", "demo"),
                                             key=lambda e: int(e["metadata"]["resourceVersion"]))
                if e["reason"] == "ScalingReplicaSet"]

    async def update_spec(self, change: Callable[[Obj], None]) -> None:
        d = self.deployment()
        change(d["spec"])
        await self.api.replace(DEPLOYMENTS, d)


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
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


def set_image(image: str) -> Callable[[Obj], None]:
    def change(spec: Obj) -> None:
        spec["template"]["spec"]["containers"][0]["image"] = image
    return change


async def test_a_new_deployment_gets_one_replica_set_and_reports_status(harness: Harness) -> None:
    created = await harness.api.create(DEPLOYMENTS, deployment(), "demo")
    await eventually(harness.complete)
    [(name, rs)] = harness.replica_sets().items()
    pod_hash = rs["metadata"]["labels"]["pod-template-hash"]
    assert re.fullmatch(HASH, pod_hash) and name == f"web-{pod_hash}"
    assert rs["spec"]["selector"] == {"matchLabels": {"app": "web",
                                                      "pod-template-hash": pod_hash}}
    assert rs["spec"]["template"]["metadata"]["labels"]["pod-template-hash"] == pod_hash
    assert rs["metadata"]["ownerReferences"] == [{
        "apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
        "uid": created["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}]
    assert rs["metadata"]["annotations"] == {
        "deployment.kubernetes.io/revision": "1",
        "deployment.kubernetes.io/desired-replicas": "3",
        "deployment.kubernetes.io/max-replicas": "4"}
    for pod in harness.pods():
        assert re.fullmatch(rf"web-{pod_hash}-[bcdfghjklmnpqrstvwxz2456789]{{5}}",
                            pod["metadata"]["name"])
    d = harness.deployment()
    assert d["metadata"]["annotations"] == {"deployment.kubernetes.io/revision": "1"}
    assert d["status"]["readyReplicas"] == 3 and "unavailableReplicas" not in d["status"]
    available = harness.condition("Available")
    assert available is not None
    assert (available["status"], available["reason"], available["message"]) == (
        "True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
    progressing = harness.condition("Progressing")
    assert progressing is not None and progressing["reason"] == "NewReplicaSetAvailable"
    assert progressing["message"] == f'ReplicaSet "{name}" has successfully progressed.'
    assert [c["type"] for c in d["status"]["conditions"]] == ["Available", "Progressing"]
    assert await harness.scaling_events() == [f"Scaled up replica set {name} from 0 to 3"]


async def test_a_rolling_update_never_exceeds_surge_nor_loses_availability(
        harness: Harness) -> None:
    await harness.api.create(DEPLOYMENTS, deployment(), "demo")
    await eventually(harness.complete)
    [old] = harness.sizes()
    await harness.update_spec(set_image("nginx:1.19.2"))
    await eventually(lambda: len(harness.sizes()) == 2 and harness.complete())
    [new] = set(harness.sizes()) - {old}
    assert harness.sizes() == {old: 0, new: 3}
    # Replay every ReplicaSet write: at most desired + maxSurge pods asked for at once.
    asked: dict[str, int] = {}
    for _, kind, plural, obj in harness.api.history:
        if plural == "replicasets" and kind != "DELETED":
            asked[obj["metadata"]["name"]] = obj["spec"]["replicas"]
            assert sum(asked.values()) <= 4
    assert await harness.scaling_events() == [
        f"Scaled up replica set {old} from 0 to 3",
        f"Scaled up replica set {new} from 0 to 1",
        f"Scaled down replica set {old} from 3 to 2",
        f"Scaled up replica set {new} from 1 to 2",
        f"Scaled down replica set {old} from 2 to 1",
        f"Scaled up replica set {new} from 2 to 3",
        f"Scaled down replica set {old} from 1 to 0",
    ]
    assert harness.replica_sets()[new]["metadata"]["annotations"][
        "deployment.kubernetes.io/revision"] == "2"
    assert harness.deployment()["metadata"]["annotations"][
        "deployment.kubernetes.io/revision"] == "2"
    assert {image_of(p) for p in harness.pods()} == {"nginx:1.19.2"}


async def test_going_back_to_an_old_template_reuses_its_replica_set(harness: Harness) -> None:
    await harness.api.create(DEPLOYMENTS, deployment(), "demo")
    await eventually(harness.complete)
    [first] = harness.sizes()
    await harness.update_spec(set_image("nginx:1.19.2"))
    await eventually(lambda: len(harness.sizes()) == 2 and harness.complete())
    await harness.update_spec(set_image("nginx:1.14.2"))
    await eventually(lambda: harness.sizes().get(first) == 3 and harness.complete())
    assert len(harness.sizes()) == 2   # no third ReplicaSet
    annotations = harness.replica_sets()[first]["metadata"]["annotations"]
    assert annotations["deployment.kubernetes.io/revision"] == "3"
    assert annotations["deployment.kubernetes.io/revision-history"] == "1"
    assert harness.deployment()["metadata"]["annotations"][
        "deployment.kubernetes.io/revision"] == "3"


async def test_recreate_removes_every_old_pod_before_creating_new_ones(
        harness: Harness) -> None:
    await harness.api.create(DEPLOYMENTS, deployment(strategy="Recreate"), "demo")
    await eventually(harness.complete)
    [old] = harness.sizes()
    old_pods = {p["metadata"]["name"] for p in harness.pods()}
    await harness.update_spec(set_image("nginx:1.19.2"))
    await eventually(lambda: len(harness.sizes()) == 2 and harness.complete())
    [new] = set(harness.sizes()) - {old}
    last_old_pod_gone = max(rv for rv, kind, plural, obj in harness.api.history
                            if kind == "DELETED" and obj["metadata"]["name"] in old_pods)
    new_rs_created = min(rv for rv, kind, plural, obj in harness.api.history
                         if plural == "replicasets" and obj["metadata"]["name"] == new)
    assert last_old_pod_gone < new_rs_created
    assert (await harness.scaling_events())[1:] == [
        f"Scaled down replica set {old} from 3 to 0",
        f"Scaled up replica set {new} from 0 to 3"]


async def test_a_paused_deployment_scales_but_does_not_roll(harness: Harness) -> None:
    await harness.api.create(DEPLOYMENTS, deployment(), "demo")
    await eventually(harness.complete)
    [only] = harness.sizes()

    def pause_and_change(spec: Obj) -> None:
        spec["paused"] = True
        set_image("nginx:1.19.2")(spec)

    await harness.update_spec(pause_and_change)
    await eventually(lambda: (harness.condition("Progressing") or {}).get("reason")
                     == "DeploymentPaused")
    assert harness.condition("Progressing")["status"] == "Unknown"   # type: ignore[index]
    assert harness.condition("Progressing")["message"] == "Deployment is paused"  # type: ignore[index]
    await harness.update_spec(lambda spec: spec.update(replicas=5))
    await eventually(lambda: harness.sizes() == {only: 5})
    assert harness.replica_sets()[only]["metadata"]["annotations"][
        "deployment.kubernetes.io/desired-replicas"] == "5"
    await harness.update_spec(lambda spec: spec.pop("paused"))
    await eventually(lambda: len(harness.sizes()) == 2 and harness.complete())
    assert harness.sizes()[only] == 0


async def test_resizing_mid_rollout_is_proportional(harness: Harness) -> None:
    await harness.api.create(DEPLOYMENTS, deployment(10, surge=3, unavailable=2), "demo")
    await eventually(harness.complete)
    [old] = harness.sizes()
    harness.ready_when = lambda pod: image_of(pod) == "nginx:1.14.2"  # the new pods hang
    await harness.update_spec(set_image("broken"))
    await eventually(lambda: len(harness.sizes()) == 2)
    [new] = set(harness.sizes()) - {old}
    await eventually(lambda: harness.sizes() == {old: 8, new: 5})
    await asyncio.sleep(0.2)
    assert harness.sizes() == {old: 8, new: 5}   # stuck: no availability left to spend
    await harness.update_spec(lambda spec: spec.update(replicas=20))
    # Room 13 → 23, shared as 8 → 14 and 5 → 9.
    await eventually(lambda: harness.sizes() == {old: 14, new: 9})


async def test_revision_history_limit_deletes_the_oldest_replica_sets(harness: Harness) -> None:
    await harness.api.create(DEPLOYMENTS, deployment(1, history=1), "demo")
    await eventually(harness.complete)
    for image in ("v2", "v3", "v4"):
        await harness.update_spec(set_image(image))
        await eventually(lambda: harness.complete() and {image_of(p) for p in harness.pods()}
                         == {image})  # noqa: B023 - awaited within the iteration
    await eventually(lambda: len(harness.sizes()) == 2)
    revisions = sorted(rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
                       for rs in harness.replica_sets().values())
    assert revisions == ["3", "4"]


async def test_an_orphan_replica_set_with_the_same_template_is_adopted(
        harness: Harness) -> None:
    d = deployment()
    pod_hash = compute_hash(d["spec"]["template"])
    orphan = new_replica_set({**d, "metadata": {**d["metadata"], "uid": "x"}}, {})
    orphan["metadata"].pop("ownerReferences")
    orphan["spec"]["replicas"] = 3
    await harness.api.create(REPLICASETS, orphan, "demo")
    created = await harness.api.create(DEPLOYMENTS, d, "demo")
    await eventually(harness.complete)
    [(name, rs)] = harness.replica_sets().items()
    assert name == f"web-{pod_hash}"
    assert rs["metadata"]["ownerReferences"][0]["uid"] == created["metadata"]["uid"]


async def test_a_hash_collision_is_resolved_by_counting_it(harness: Harness) -> None:
    d = deployment()
    taken = new_replica_set({**d, "metadata": {**d["metadata"], "uid": "x"}}, {})
    taken["metadata"].pop("ownerReferences")
    taken["metadata"]["labels"] = {"app": "someone-else"}
    taken["spec"]["selector"] = {"matchLabels": {"app": "someone-else"}}
    taken["spec"]["template"] = {"metadata": {"labels": {"app": "someone-else"}},
                                 "spec": {"containers": [{"name": "c", "image": "x"}]}}
    await harness.api.create(REPLICASETS, taken, "demo")
    await harness.api.create(DEPLOYMENTS, d, "demo")
    await eventually(harness.complete)
    assert harness.deployment()["status"]["collisionCount"] == 1
    ours = {name for name, rs in harness.replica_sets().items()
            if rs["metadata"].get("ownerReferences")}
    assert ours == {f"web-{compute_hash(d['spec']['template'], 1)}"}


async def test_a_stalled_rollout_times_out(harness: Harness) -> None:
    harness.ready_when = lambda pod: False
    await harness.api.create(DEPLOYMENTS, deployment(1, deadline=1), "demo")
    await eventually(lambda: (harness.condition("Progressing") or {}).get("reason")
                     == "ProgressDeadlineExceeded", timeout=8)
    [name] = harness.sizes()
    progressing = harness.condition("Progressing")
    assert progressing is not None and progressing["status"] == "False"
    assert progressing["message"] == f'ReplicaSet "{name}" has timed out progressing.'
    assert harness.condition("Available")["reason"] == \
        "MinimumReplicasUnavailable"  # type: ignore[index]


async def test_a_deployment_selecting_everything_is_refused(harness: Harness) -> None:
    d = deployment()
    d["spec"]["selector"] = {}
    await harness.api.create(DEPLOYMENTS, d, "demo")
    await eventually(lambda: (harness.deployment().get("status") or {})
                     .get("observedGeneration") == 1)
    await asyncio.wait_for(harness.events.flush(), 2)
    [event] = harness.api.items("events", "demo")
    assert (event["type"], event["reason"]) == ("Warning", "SelectingAll")
    assert harness.sizes() == {}


class StatusWriter:
    """A client whose status writes keep annotations (as upstream's do) or not."""

    def __init__(self, keeps_annotations: bool) -> None:
        self.keeps_annotations = keeps_annotations
        self.calls: list[str] = []

    async def replace(self, res: Any, obj: Obj, *, subresource: str = "") -> Obj:
        self.calls.append(f"put/{subresource}")
        written = copy.deepcopy(obj)
        if not self.keeps_annotations:
            written["metadata"].pop("annotations", None)
        written["metadata"]["resourceVersion"] = "2"
        return written

    async def patch(self, res: Any, name: str, body: Obj, namespace: str, **_: Any) -> Obj:
        self.calls.append("patch")
        return {"metadata": {"resourceVersion": "3", **body["metadata"]}}


@pytest.mark.parametrize(("keeps", "calls", "version"), [
    (True, ["put/status"], "2"),
    (False, ["put/status", "patch"], "3"),
])
async def test_the_revision_rides_on_the_status_write(keeps: bool, calls: list[str],
                                                      version: str) -> None:
    client = StatusWriter(keeps)
    act = DeploymentActions(client, None, None)  # type: ignore[arg-type]
    d = deployment()
    d["metadata"].update(resourceVersion="1",
                         annotations={"deployment.kubernetes.io/revision": "2"})
    await act.save_deployment(d, revision=True)
    assert client.calls == calls
    assert d["metadata"]["resourceVersion"] == version
