"""The garbage collector: graph bookkeeping and decisions, then the controller on a fake API."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from kubi.api import catalog
from kubi.client.client import Resource
from kubi.controllers.events import EventBroadcaster
from kubi.controllers.garbagecollector import GarbageCollector, collected_resources
from kubi.controllers.gc_graph import (
    AbsentOwnerCache,
    Action,
    DependencyGraph,
    OwnerState,
    decide,
    node_from_metadata,
    owner_state,
    remove_owner_refs_patch,
    unblock_owner_refs_patch,
    without_finalizer,
)
from kubi.controllers.informers import SharedInformers
from kubi.controllers.manager import ControllerContext
from tests.unit.lifecycle_fakeapi import LifecycleFakeAPI

RS = Resource("apps", "v1", "replicasets", True, "ReplicaSet")
PODS = Resource("", "v1", "pods", True, "Pod")
CMS = Resource("", "v1", "configmaps", True, "ConfigMap")


def ref(uid: str, name: str = "web", kind: str = "ReplicaSet", api_version: str = "apps/v1",
        block: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"apiVersion": api_version, "kind": kind, "name": name, "uid": uid}
    if block:
        out["blockOwnerDeletion"] = True
    return out


def meta(uid: str, *owners: dict[str, Any], name: str = "", finalizers: tuple[str, ...] = (),
         deleting: bool = False, namespace: str = "demo") -> dict[str, Any]:
    md: dict[str, Any] = {"uid": uid, "name": name or uid, "namespace": namespace,
                          "resourceVersion": "1"}
    if owners:
        md["ownerReferences"] = list(owners)
    if finalizers:
        md["finalizers"] = list(finalizers)
    if deleting:
        md["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    return md


def rs_node(uid: str, **kw: Any) -> Any:
    return node_from_metadata("apps/v1", "ReplicaSet", meta(uid, name="web", **kw))


def pod_node(uid: str, *owners: dict[str, Any], **kw: Any) -> Any:
    return node_from_metadata("v1", "Pod", meta(uid, *owners, **kw))


# ---- the graph


def test_a_dependent_of_an_unseen_owner_is_examined() -> None:
    graph = DependencyGraph()
    assert graph.observe(pod_node("p1", ref("rs1"))) == [("delete", "p1")]
    assert [n.identity.uid for n in graph.dependents_of("rs1")] == ["p1"]


def test_a_dependent_of_a_present_owner_is_left_alone() -> None:
    graph = DependencyGraph()
    assert graph.observe(rs_node("rs1")) == []
    assert graph.observe(pod_node("p1", ref("rs1"))) == []
    # A reference whose coordinates do not match the observed owner is examined.
    assert graph.observe(pod_node("p2", ref("rs1", name="other"))) == [("delete", "p2")]


def test_deleting_an_owner_queues_its_dependents() -> None:
    graph = DependencyGraph()
    graph.observe(rs_node("rs1"))
    graph.observe(pod_node("p1", ref("rs1")))
    graph.observe(pod_node("p2", ref("rs1")))
    assert sorted(graph.forget("rs1")) == [("delete", "p1"), ("delete", "p2")]
    assert graph.get("rs1") is None
    assert len(graph.dependents_of("rs1")) == 2  # still found by the owner's uid


def test_foreground_deletion_queues_dependents_and_the_owner() -> None:
    graph = DependencyGraph()
    graph.observe(rs_node("rs1"))
    graph.observe(pod_node("p1", ref("rs1")))
    work = graph.observe(rs_node("rs1", finalizers=("foregroundDeletion",), deleting=True))
    assert work == [("delete", "p1"), ("delete", "rs1")]
    # Seen again in the same state: no new work.
    assert graph.observe(rs_node("rs1", finalizers=("foregroundDeletion",), deleting=True)) == []
    # A dependent going away brings its waiting owner back.
    assert graph.forget("p1") == [("delete", "rs1")]


def test_orphan_finalizer_queues_orphaning_once() -> None:
    graph = DependencyGraph()
    graph.observe(rs_node("rs1"))
    assert graph.observe(rs_node("rs1", finalizers=("orphan",), deleting=True)) == \
        [("orphan", "rs1")]
    assert graph.observe(rs_node("rs1", finalizers=("orphan",), deleting=True)) == []


def test_dropping_a_blocking_reference_unblocks_the_owner() -> None:
    graph = DependencyGraph()
    graph.observe(rs_node("rs1"))
    graph.observe(pod_node("p1", ref("rs1")))
    assert graph.blocking_dependents("rs1")[0].identity.uid == "p1"
    assert graph.observe(pod_node("p1", ref("rs1", block=False))) == [("delete", "rs1")]
    assert graph.blocking_dependents("rs1") == []
    assert graph.observe(pod_node("p1")) == []  # the non-blocking reference goes quietly
    assert graph.dependents_of("rs1") == []


def test_absent_owner_cache_is_bounded() -> None:
    cache = AbsentOwnerCache(size=2)
    cache.add("a")
    cache.add("b", "demo")
    assert cache.has("a")  # refreshes a
    cache.add("c")
    assert cache.has("a") and cache.has("c") and not cache.has("b", "demo")


# ---- decisions


def test_owner_state() -> None:
    r = ref("rs1")
    assert owner_state(None, r) is OwnerState.DANGLING
    assert owner_state({"uid": "other"}, r) is OwnerState.DANGLING
    assert owner_state({"uid": "rs1"}, r) is OwnerState.SOLID
    assert owner_state({"uid": "rs1", "deletionTimestamp": "x"}, r) is OwnerState.SOLID
    assert owner_state({"uid": "rs1", "deletionTimestamp": "x",
                        "finalizers": ["foregroundDeletion"]}, r) is OwnerState.WAITING


def _decide(node: Any, *states: OwnerState, deps: bool = False,
            dep_deleting: bool = False) -> Any:
    return decide(node, [(ref(f"o{i}"), s) for i, s in enumerate(states)], has_dependents=deps,
                  a_dependent_is_deleting_dependents=dep_deleting)


def test_decide() -> None:
    pod = pod_node("p1", ref("o0"), ref("o1"))
    assert _decide(pod).action is Action.NONE
    assert _decide(pod, OwnerState.SOLID, OwnerState.SOLID).action is Action.NONE
    # Multiple owners: one left keeps the object, the gone one's reference is dropped.
    partial = _decide(pod, OwnerState.SOLID, OwnerState.DANGLING)
    assert (partial.action, partial.remove_uids) == (Action.REMOVE_REFS, ("o1",))
    assert _decide(pod, OwnerState.WAITING, OwnerState.SOLID).remove_uids == ("o0",)
    gone = _decide(pod, OwnerState.DANGLING, OwnerState.DANGLING)
    assert (gone.action, gone.policy) == (Action.DELETE, "Background")
    # Waiting owner and dependents of our own: foreground, unblocking on a cycle.
    chain = _decide(pod, OwnerState.WAITING, deps=True)
    assert (chain.action, chain.policy, chain.unblock_first) == (Action.DELETE, "Foreground",
                                                                False)
    assert _decide(pod, OwnerState.WAITING, deps=True, dep_deleting=True).unblock_first
    assert _decide(pod, OwnerState.WAITING).policy == "Background"
    kept = pod_node("p2", ref("o0"), finalizers=("orphan",))
    assert _decide(kept, OwnerState.DANGLING).policy == "Orphan"


def test_patches() -> None:
    assert remove_owner_refs_patch("p1", ["a"]) == {"metadata": {
        "ownerReferences": [{"$patch": "delete", "uid": "a"}], "uid": "p1"}}
    node = pod_node("p1", ref("a"), ref("b", block=False))
    assert unblock_owner_refs_patch(node) == {"metadata": {
        "ownerReferences": [{"uid": "a", "blockOwnerDeletion": False}], "uid": "p1"}}
    assert unblock_owner_refs_patch(pod_node("p2", ref("b", block=False))) is None
    assert without_finalizer(["a", "orphan"], "orphan") == ["a"]
    assert without_finalizer(["a"], "orphan") is None


def test_collected_resources_skip_events() -> None:
    plurals = {(rt.group, rt.plural) for rt in collected_resources()}
    assert ("", "pods") in plurals and ("apps", "replicasets") in plurals
    assert ("", "namespaces") in plurals
    assert ("", "events") not in plurals and ("events.k8s.io", "events") not in plurals


# ---- the controller against a fake API


class Harness:
    def __init__(self) -> None:
        self.api = LifecycleFakeAPI()
        self.informers = SharedInformers(self.api)  # type: ignore[arg-type]
        self.events = EventBroadcaster(self.api)  # type: ignore[arg-type]
        ctx = ControllerContext(self.api, self.informers, self.events)  # type: ignore[arg-type]
        resources = [rt for rt in catalog.RESOURCES
                     if rt.plural in ("replicasets", "pods", "configmaps") and rt.group in
                     ("", "apps")]
        self.gc = GarbageCollector(ctx, resources=resources, unobserved_owner_recheck=0.05)
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.informers.start()
        await self.informers.wait_for_sync(2)
        self.task = asyncio.create_task(self.gc.run(4))

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        await self.informers.stop()

    async def owner(self, name: str = "web", **md: Any) -> dict[str, Any]:
        return await self.api.create(RS, {"metadata": {"name": name, **md}, "spec": {}}, "demo")

    async def dependent(self, name: str, *owners: dict[str, Any],
                        res: Resource = PODS) -> dict[str, Any]:
        refs = [ref(o["metadata"]["uid"], o["metadata"]["name"]) for o in owners]
        return await self.api.create(res, {"metadata": {"name": name, "ownerReferences": refs}},
                                     "demo")

    def names(self, plural: str = "pods") -> list[str]:
        return [o["metadata"]["name"] for o in self.api.items(plural, "demo")]


async def eventually(predicate: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def deleting(harness: Harness, pod: str) -> bool:
    obj = harness.api.obj("pods", "demo", pod) or {}
    return bool(obj.get("metadata", {}).get("deletionTimestamp"))


@pytest.fixture
async def harness() -> Any:
    h = Harness()
    await h.start()
    yield h
    await h.stop()


async def test_background_deletion_collects_dependents(harness: Harness) -> None:
    rs = await harness.owner()
    await harness.dependent("a", rs)
    await harness.dependent("b", rs)
    await asyncio.sleep(0.1)
    assert harness.names() == ["a", "b"]
    await harness.api.delete(RS, "web", "demo", propagation_policy="Background")
    await eventually(lambda: harness.names() == [])
    policies = {(p, policy) for p, _, policy, _ in harness.api.deletes if p == "pods"}
    assert policies == {("pods", "Background")}
    # Each delete named the uid it decided on.
    assert all(pre and pre.get("uid") for p, _, _, pre in harness.api.deletes if p == "pods")


async def test_a_dependent_with_another_owner_only_loses_the_reference(harness: Harness) -> None:
    first = await harness.owner("first")
    second = await harness.owner("second")
    await harness.dependent("shared", first, second)
    await harness.api.delete(RS, "first", "demo")
    await eventually(lambda: len(harness.api.items("pods", "demo")[0]["metadata"]
                                 ["ownerReferences"]) == 1)
    [pod] = harness.api.items("pods", "demo")
    assert pod["metadata"]["ownerReferences"][0]["uid"] == second["metadata"]["uid"]
    await harness.api.delete(RS, "second", "demo")
    await eventually(lambda: harness.names() == [])


async def test_dependents_of_an_owner_already_gone_or_replaced(harness: Harness) -> None:
    await harness.api.create(PODS, {"metadata": {"name": "stray", "ownerReferences": [
        ref("no-such-uid", "ghost")]}}, "demo")
    await harness.owner("web")  # a namesake with another uid does not own it
    await harness.api.create(PODS, {"metadata": {"name": "stale", "ownerReferences": [
        ref("old-uid", "web")]}}, "demo")
    await eventually(lambda: harness.names() == [])


async def test_foreground_deletion_waits_for_blocking_dependents(harness: Harness) -> None:
    rs = await harness.owner()
    await harness.dependent("a", rs)
    await harness.dependent("b", rs)
    harness.api.held.add(("pods", "b"))  # b takes its time, as a running pod does
    await asyncio.sleep(0.1)
    await harness.api.delete(RS, "web", "demo", propagation_policy="Foreground")
    await eventually(lambda: harness.names() == ["b"])
    await eventually(lambda: deleting(harness, "b"))
    await asyncio.sleep(0.1)
    owner = harness.api.obj("replicasets", "demo", "web")
    assert owner is not None and owner["metadata"]["finalizers"] == ["foregroundDeletion"]
    await harness.api.finish(PODS, "b", "demo")
    await eventually(lambda: harness.api.obj("replicasets", "demo", "web") is None)


async def test_non_blocking_dependents_do_not_hold_a_foreground_owner(harness: Harness) -> None:
    rs = await harness.owner()
    await harness.api.create(PODS, {"metadata": {"name": "loose", "ownerReferences": [
        ref(rs["metadata"]["uid"], "web", block=False)]}}, "demo")
    harness.api.held.add(("pods", "loose"))
    await asyncio.sleep(0.1)
    await harness.api.delete(RS, "web", "demo", propagation_policy="Foreground")
    await eventually(lambda: harness.api.obj("replicasets", "demo", "web") is None)


async def test_orphan_deletion_keeps_dependents(harness: Harness) -> None:
    rs = await harness.owner()
    keep = await harness.owner("keep")
    await harness.dependent("a", rs)
    await harness.dependent("b", rs, keep)
    await harness.dependent("cm", rs, res=CMS)
    await asyncio.sleep(0.1)
    await harness.api.delete(RS, "web", "demo", propagation_policy="Orphan")
    await eventually(lambda: harness.api.obj("replicasets", "demo", "web") is None)
    await asyncio.sleep(0.1)
    assert harness.names() == ["a", "b"] and harness.names("configmaps") == ["cm"]
    refs = {p["metadata"]["name"]: [r["name"] for r in p["metadata"].get("ownerReferences") or []]
            for p in harness.api.items("pods", "demo")}
    assert refs == {"a": [], "b": ["keep"]}
    assert not harness.api.items("configmaps", "demo")[0]["metadata"].get("ownerReferences")


async def test_a_chain_is_deleted_in_the_foreground(harness: Harness) -> None:
    top = await harness.owner("top")
    middle = await harness.api.create(RS, {"metadata": {"name": "middle", "ownerReferences": [
        ref(top["metadata"]["uid"], "top")]}, "spec": {}}, "demo")
    await harness.dependent("leaf", middle)
    harness.api.held.add(("pods", "leaf"))
    await asyncio.sleep(0.1)
    await harness.api.delete(RS, "top", "demo", propagation_policy="Foreground")
    # The middle object is deleted in the foreground because its owner waits for it.
    await eventually(lambda: any(n == "middle" and p == "Foreground"
                                 for _, n, p, _ in harness.api.deletes))
    await eventually(lambda: deleting(harness, "leaf"))
    assert harness.api.obj("replicasets", "demo", "top") is not None
    await harness.api.finish(PODS, "leaf", "demo")
    await eventually(lambda: harness.names("replicasets") == [])
