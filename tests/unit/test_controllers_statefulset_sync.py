"""The StatefulSet controller end to end against the in-memory fake API."""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Callable
from typing import Any

import pytest

from kubi.api.meta import format_time
from kubi.client.client import Resource
from kubi.controllers.events import EventBroadcaster
from kubi.controllers.informers import SharedInformers
from kubi.controllers.manager import ControllerContext
from kubi.controllers.podcontrol import PODS
from kubi.controllers.statefulset import StatefulSetController
from kubi.controllers.statefulset.control import STATEFULSETS
from kubi.controllers.statefulset.controller import PendingWrites
from tests.unit.controllers_fakeapi import FakeAPI

Obj = dict[str, Any]


class PodPhaseAPI(FakeAPI):
    """The fake API, with the API server's habit of giving new pods phase Pending."""

    async def create(self, res: Resource, obj: dict, namespace: str | None = None,
                     **kw: Any) -> dict:
        if res.kind == "Pod":
            obj = {**obj, "status": {"phase": "Pending"}}
        return await super().create(res, obj, namespace, **kw)


def statefulset(replicas: int = 3, **spec: Any) -> Obj:
    body: Obj = {
        "replicas": replicas,
        "serviceName": "nginx",
        "podManagementPolicy": "OrderedReady",
        "selector": {"matchLabels": {"app": "nginx"}},
        "template": {"metadata": {"labels": {"app": "nginx"}},
                     "spec": {"containers": [{"name": "nginx", "image": "nginx:1"}]}},
        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
        "revisionHistoryLimit": 10,
        "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
    }
    body.update(spec)
    return {"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "web", "namespace": "demo"}, "spec": body}


CLAIM_TEMPLATE = {
    "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "www"},
    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    "status": {"phase": "Pending"}}


class Harness:
    def __init__(self) -> None:
        self.api = PodPhaseAPI()
        self.informers = SharedInformers(self.api)  # type: ignore[arg-type]
        self.events = EventBroadcaster(self.api)  # type: ignore[arg-type]
        context = ControllerContext(self.api, self.informers, self.events)  # type: ignore[arg-type]
        self.controller = StatefulSetController(context)
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> Harness:
        self.informers.start()
        await self.informers.wait_for_sync(2)
        self.events.start()
        self.task = asyncio.create_task(self.controller.run(2))
        return self

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        await self.informers.stop()
        await self.events.stop()

    def pod_names(self) -> list[str]:
        return sorted(p["metadata"]["name"] for p in self.api.items("pods", "demo"))

    def pod(self, name: str) -> Obj:
        return self.api.objects[("pods", "demo", name)]

    def sts(self) -> Obj:
        return self.api.objects[("statefulsets", "demo", "web")]

    def status(self) -> Obj:
        return self.sts().get("status") or {}

    async def ready(self, name: str) -> None:
        await self.api.patch(PODS, name, {"status": {"phase": "Running", "conditions": [
            {"type": "Ready", "status": "True",
             "lastTransitionTime": format_time(time.time() - 1)}]}}, "demo")

    async def ready_all(self) -> None:
        for name in self.pod_names():
            if (self.pod(name).get("status") or {}).get("phase") != "Running":
                await self.ready(name)

    async def change(self, mutate: Callable[[Obj], None]) -> None:
        sts = copy.deepcopy(self.sts())
        mutate(sts["spec"])
        await self.api.replace(STATEFULSETS, sts)

    async def messages(self, reason: str | None = None) -> list[str]:
        await asyncio.wait_for(self.events.flush(), 2)
        events = sorted(self.api.items("events", "demo"), key=lambda e: e["metadata"]["name"])
        return [e["message"] for e in events if reason is None or e["reason"] == reason]

    async def ready_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Keep making pods ready, as kubelets would, until `predicate` holds."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate():
            assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
            await self.ready_all()
            await asyncio.sleep(0.01)


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


async def test_pods_come_up_in_order_each_after_the_previous_is_ready(harness: Harness) -> None:
    await harness.api.create(STATEFULSETS, statefulset(3), "demo")
    await eventually(lambda: harness.pod_names() == ["web-0"])
    await asyncio.sleep(0.1)
    assert harness.pod_names() == ["web-0"]  # web-0 is Pending: nothing more
    await harness.ready("web-0")
    await eventually(lambda: harness.pod_names() == ["web-0", "web-1"])
    await harness.ready("web-1")
    await eventually(lambda: len(harness.pod_names()) == 3)
    await harness.ready("web-2")
    await eventually(lambda: harness.status().get("readyReplicas") == 3)
    pod = harness.pod("web-1")
    assert pod["spec"]["hostname"] == "web-1" and pod["spec"]["subdomain"] == "nginx"
    assert pod["metadata"]["labels"]["apps.kubernetes.io/pod-index"] == "1"
    status = harness.status()
    [revision] = harness.api.items("controllerrevisions", "demo")
    assert revision["revision"] == 1
    assert status["currentRevision"] == status["updateRevision"] == revision["metadata"]["name"]
    assert status["replicas"] == status["currentReplicas"] == status["updatedReplicas"] == 3
    assert status["observedGeneration"] == 1 and status["collisionCount"] == 0
    assert await harness.messages("SuccessfulCreate") == [
        f"create Pod web-{i} in StatefulSet web successful" for i in range(3)]


async def test_scale_down_deletes_from_the_highest_ordinal(harness: Harness) -> None:
    await harness.api.create(STATEFULSETS, statefulset(5), "demo")
    await harness.ready_until(lambda: harness.status().get("readyReplicas") == 5)
    await harness.change(lambda spec: spec.update(replicas=2))
    await eventually(lambda: harness.pod_names() == ["web-0", "web-1"])
    deletes = [name for verb, plural, name in harness.api.calls
               if verb == "delete" and plural == "pods"]
    assert deletes == ["web-4", "web-3", "web-2"]
    assert await harness.messages("SuccessfulDelete") == [
        f"delete Pod web-{i} in StatefulSet web successful" for i in (4, 3, 2)]
    assert await harness.messages("FailedDelete") == []


async def test_a_deleted_pod_comes_back_under_its_name(harness: Harness) -> None:
    await harness.api.create(STATEFULSETS, statefulset(2), "demo")
    await harness.ready_until(lambda: harness.status().get("readyReplicas") == 2)
    old_uid = harness.pod("web-0")["metadata"]["uid"]
    await harness.api.delete(PODS, "web-0", "demo")
    await eventually(lambda: "web-0" in harness.pod_names()
                     and harness.pod("web-0")["metadata"]["uid"] != old_uid)


async def test_failed_pods_are_replaced(harness: Harness) -> None:
    await harness.api.create(STATEFULSETS, statefulset(1), "demo")
    await harness.ready_until(lambda: harness.status().get("readyReplicas") == 1)
    old_uid = harness.pod("web-0")["metadata"]["uid"]
    await harness.api.patch(PODS, "web-0", {"status": {"phase": "Failed"}}, "demo")
    await eventually(lambda: "web-0" in harness.pod_names()
                     and harness.pod("web-0")["metadata"]["uid"] != old_uid)


async def test_claims_are_created_before_their_pods_and_outlive_them(harness: Harness) -> None:
    await harness.api.create(STATEFULSETS, statefulset(2, volumeClaimTemplates=[CLAIM_TEMPLATE]),
                             "demo")
    await harness.ready_until(lambda: harness.status().get("readyReplicas") == 2)
    creates = [(plural, name) for verb, plural, name in harness.api.calls if verb == "create"
               and plural in ("pods", "persistentvolumeclaims")]
    assert creates == [("persistentvolumeclaims", "www-web-0"), ("pods", "web-0"),
                       ("persistentvolumeclaims", "www-web-1"), ("pods", "web-1")]
    claim = harness.api.objects[("persistentvolumeclaims", "demo", "www-web-0")]
    assert claim["metadata"]["labels"] == {"app": "nginx"}
    assert claim["spec"]["resources"] == {"requests": {"storage": "1Gi"}}
    assert not claim["metadata"].get("ownerReferences")  # Retain, Retain
    assert harness.pod("web-1")["spec"]["volumes"] == [
        {"name": "www", "persistentVolumeClaim": {"claimName": "www-web-1"}}]
    await harness.api.delete(PODS, "web-1", "demo")
    await eventually(lambda: "web-1" in harness.pod_names())
    assert harness.api.count("create", "persistentvolumeclaims") == 2
    messages = await harness.messages("SuccessfulCreate")
    assert "create Claim www-web-0 Pod web-0 in StatefulSet web success" in messages


async def test_retention_policy_sets_claim_owners(harness: Harness) -> None:
    await harness.api.create(STATEFULSETS, statefulset(
        2, volumeClaimTemplates=[CLAIM_TEMPLATE],
        persistentVolumeClaimRetentionPolicy={"whenDeleted": "Delete", "whenScaled": "Delete"}),
        "demo")
    await harness.ready_until(lambda: harness.status().get("readyReplicas") == 2)
    uid = harness.sts()["metadata"]["uid"]
    claim = harness.api.objects[("persistentvolumeclaims", "demo", "www-web-1")]
    assert [(r["kind"], r["uid"]) for r in claim["metadata"]["ownerReferences"]] == [
        ("StatefulSet", uid)]
    pod_uid = harness.pod("web-1")["metadata"]["uid"]
    # Scaling down hands the claim of web-1 to web-1, so it goes with the pod.
    await harness.change(lambda spec: spec.update(replicas=1))
    await eventually(lambda: harness.pod_names() == ["web-0"])
    claim = harness.api.objects[("persistentvolumeclaims", "demo", "www-web-1")]
    assert [(r["kind"], r["uid"]) for r in claim["metadata"]["ownerReferences"]] == [
        ("Pod", pod_uid)]


async def test_partitioned_rolling_update(harness: Harness) -> None:
    await harness.api.create(STATEFULSETS, statefulset(4), "demo")
    await harness.ready_until(lambda: harness.status().get("readyReplicas") == 4)
    first = harness.status()["currentRevision"]

    def update(spec: Obj) -> None:
        spec["template"]["spec"]["containers"][0]["image"] = "nginx:2"
        spec["updateStrategy"]["rollingUpdate"]["partition"] = 2

    await harness.change(update)
    await harness.ready_until(lambda: harness.status().get("updatedReplicas") == 2
                              and harness.status().get("readyReplicas") == 4)
    second = harness.status()["updateRevision"]
    assert second != first and harness.status()["currentRevision"] == first
    images = {n: harness.pod(n)["spec"]["containers"][0]["image"] for n in harness.pod_names()}
    assert images == {"web-0": "nginx:1", "web-1": "nginx:1", "web-2": "nginx:2",
                      "web-3": "nginx:2"}
    deletes = [name for verb, plural, name in harness.api.calls
               if verb == "delete" and plural == "pods"]
    assert deletes == ["web-3", "web-2"]
    revisions = {r["metadata"]["name"]: r["revision"]
                 for r in harness.api.items("controllerrevisions", "demo")}
    assert revisions == {first: 1, second: 2}
    # Partition 0 finishes the rollout; the update revision becomes current.
    await harness.change(lambda spec: spec["updateStrategy"]["rollingUpdate"].update(partition=0))
    await harness.ready_until(lambda: harness.status().get("currentRevision") == second
                              and harness.status().get("readyReplicas") == 4)
    assert harness.status()["currentReplicas"] == 4


async def test_rolling_back_renumbers_the_old_revision(harness: Harness) -> None:
    await harness.api.create(STATEFULSETS, statefulset(1), "demo")
    await harness.ready_until(lambda: harness.status().get("readyReplicas") == 1)
    first = harness.status()["currentRevision"]
    await harness.change(lambda s: s["template"]["spec"]["containers"][0].update(image="nginx:2"))
    await harness.ready_until(lambda: harness.status().get("currentRevision") != first
                              and harness.status().get("readyReplicas") == 1)
    await harness.change(lambda s: s["template"]["spec"]["containers"][0].update(image="nginx:1"))
    await harness.ready_until(lambda: harness.status().get("currentRevision") == first
                              and harness.status().get("readyReplicas") == 1)
    revisions = {r["metadata"]["name"]: r["revision"]
                 for r in harness.api.items("controllerrevisions", "demo")}
    assert revisions[first] == 3 and len(revisions) == 2


async def test_on_delete_updates_only_deleted_pods(harness: Harness) -> None:
    await harness.api.create(STATEFULSETS, statefulset(2, updateStrategy={"type": "OnDelete"}),
                             "demo")
    await harness.ready_until(lambda: harness.status().get("readyReplicas") == 2)
    await harness.change(lambda s: s["template"]["spec"]["containers"][0].update(image="nginx:2"))
    await eventually(lambda: harness.status().get("observedGeneration") == 2)
    await asyncio.sleep(0.1)
    assert harness.api.count("delete", "pods") == 0
    await harness.api.delete(PODS, "web-1", "demo")
    await harness.ready_until(lambda: harness.status().get("updatedReplicas") == 1
                              and harness.status().get("readyReplicas") == 2)
    assert harness.pod("web-1")["spec"]["containers"][0]["image"] == "nginx:2"
    assert harness.pod("web-0")["spec"]["containers"][0]["image"] == "nginx:1"


async def test_parallel_creates_all_at_once(harness: Harness) -> None:
    await harness.api.create(STATEFULSETS, statefulset(3, podManagementPolicy="Parallel"),
                             "demo")
    await eventually(lambda: harness.pod_names() == ["web-0", "web-1", "web-2"])


async def test_orphans_named_after_the_set_are_adopted(harness: Harness) -> None:
    await harness.api.create(PODS, {"metadata": {"name": "web-0", "labels": {"app": "nginx"}},
                                    "spec": {"containers": [{"name": "c", "image": "x"}]}},
                             "demo")
    await harness.api.create(PODS, {"metadata": {"name": "other", "labels": {"app": "nginx"}}},
                             "demo")
    created = await harness.api.create(STATEFULSETS, statefulset(1), "demo")
    await eventually(lambda: bool(harness.pod("web-0")["metadata"].get("ownerReferences")))
    ref = harness.pod("web-0")["metadata"]["ownerReferences"][0]
    assert ref["uid"] == created["metadata"]["uid"] and ref["kind"] == "StatefulSet"
    assert not harness.pod("other")["metadata"].get("ownerReferences")
    # The adopted pod lacks its identity label; once ready, the set restores it.
    await harness.ready("web-0")
    await eventually(lambda: harness.pod("web-0")["metadata"]["labels"].get(
        "statefulset.kubernetes.io/pod-name") == "web-0")
    assert "update Pod web-0 in StatefulSet web successful" in await harness.messages()


async def test_old_revisions_beyond_the_limit_are_deleted(harness: Harness) -> None:
    await harness.api.create(STATEFULSETS, statefulset(1, revisionHistoryLimit=1), "demo")

    def rolled_out() -> bool:
        status = harness.status()
        return (status.get("observedGeneration") == harness.sts()["metadata"]["generation"]
                and status.get("readyReplicas") == 1
                and status.get("currentRevision") == status.get("updateRevision"))

    for image in ("nginx:2", "nginx:3", "nginx:4"):
        await harness.ready_until(rolled_out)
        await harness.change(lambda s, i=image: s["template"]["spec"]["containers"][0].update(
            image=i))
    await harness.ready_until(rolled_out)
    await harness.change(lambda s: s.update(minReadySeconds=0))  # one more sync
    # Kept: the live revision and one more (revisionHistoryLimit 1).
    await eventually(lambda: len(harness.api.items("controllerrevisions", "demo")) == 2)
    assert harness.api.count("delete", "controllerrevisions") == 2
    assert {r["revision"] for r in harness.api.items("controllerrevisions", "demo")} == {3, 4}


def test_pending_writes_hold_a_set_until_seen_or_expired() -> None:
    now = [0.0]
    pending = PendingWrites(clock=lambda: now[0], timeout=60)
    sts = {"metadata": {"name": "web", "namespace": "demo"}}
    pod = {"metadata": {"name": "web-0", "namespace": "demo"}}
    pending.expect(sts, pod, "create")
    assert pending.waiting("demo/web") and not pending.waiting("demo/other")
    assert pending.observed("demo/web-0", "delete") is None
    assert pending.observed("demo/web-0", "create") == "demo/web"
    assert not pending.waiting("demo/web")
    pending.expect(sts, pod, "delete")
    pending.failed(pod, "delete")
    assert not pending.waiting("demo/web")
    pending.expect(sts, pod, "delete")
    now[0] = 61.0
    assert not pending.waiting("demo/web")  # the event was lost: give up waiting
