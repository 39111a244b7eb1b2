"""Shared indexed informers and the controller manager under leader election."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from kubi.client.client import Resource
from kubi.controllers import default_controllers
from kubi.controllers.informers import SharedInformers
from kubi.controllers.manager import ControllerContext, ControllerManager
from kubi.controllers.podcontrol import PODS
from kubi.controllers.replicaset import REPLICASET
from tests.unit.controllers_fakeapi import FakeAPI

FAST = {"lease_duration": 1.0, "renew_deadline": 0.5, "retry_period": 0.1}


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def rs(name: str, replicas: int = 2) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "namespace": "demo"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "i"}]}}}}


def pods_of(api: FakeAPI, app: str) -> list[dict[str, Any]]:
    return [p for p in api.items("pods") if p["metadata"]["labels"].get("app") == app]


# ---- shared informers


async def test_one_informer_per_resource_and_namespace() -> None:
    informers = SharedInformers(FakeAPI())  # type: ignore[arg-type]
    assert informers.get(PODS) is informers.get(PODS)
    assert informers.get(PODS, "a") is not informers.get(PODS)
    assert len(list(informers)) == 2


async def test_indexes_follow_adds_updates_and_deletes() -> None:
    api = FakeAPI()
    informers = SharedInformers(api)  # type: ignore[arg-type]
    pods = informers.get(PODS)
    await api.create(PODS, {"metadata": {"name": "a", "labels": {"n": "1"}}}, "x")
    informers.start()
    await informers.wait_for_sync(2)
    pods.add_index("by-n", lambda o: [o["metadata"].get("labels", {}).get("n", "")])
    assert [p["metadata"]["name"] for p in pods.by_index("by-n", "1")] == ["a"]
    await api.create(PODS, {"metadata": {"name": "b", "labels": {"n": "1"}}}, "y")
    await eventually(lambda: len(pods.by_index("by-n", "1")) == 2)
    assert [p["metadata"]["name"] for p in pods.in_namespace("y")] == ["b"]
    await api.patch(PODS, "a", {"metadata": {"labels": {"n": "2"}}}, "x")
    await eventually(lambda: len(pods.by_index("by-n", "2")) == 1)
    assert [p["metadata"]["name"] for p in pods.by_index("by-n", "1")] == ["b"]
    await api.delete(PODS, "b", "y")
    await eventually(lambda: pods.by_index("by-n", "1") == [])
    assert pods.in_namespace("y") == []
    late = informers.get(Resource("apps", "v1", "replicasets"))  # started on demand
    await asyncio.wait_for(late.synced.wait(), 2)
    await informers.stop()


# ---- the manager


async def test_manager_without_election_runs_the_controllers() -> None:
    api = FakeAPI()
    manager = ControllerManager(api, identity="solo",  # type: ignore[arg-type]
                                controllers=default_controllers()[:2], leader_election=False)
    manager.start()
    await asyncio.wait_for(manager.running.wait(), 2)
    assert [c.name for c in manager.controllers] == ["replicaset", "replicationcontroller"]
    await api.create(REPLICASET.resource, rs("web"), "demo")
    await eventually(lambda: len(pods_of(api, "web")) == 2)
    await manager.stop()
    assert not manager.running.is_set() and manager.controllers == []


async def test_only_the_leader_acts_and_a_standby_takes_over() -> None:
    api = FakeAPI()
    built: list[str] = []

    def counting(identity: str) -> Callable[[ControllerContext], Any]:
        def factory(ctx: ControllerContext) -> Any:
            built.append(identity)
            return default_controllers()[0](ctx)
        return factory

    first = ControllerManager(api, identity="first",  # type: ignore[arg-type]
                              controllers=[counting("first")], **FAST)
    second = ControllerManager(api, identity="second",  # type: ignore[arg-type]
                               controllers=[counting("second")], **FAST)
    first.start()
    await asyncio.wait_for(first.running.wait(), 2)
    second.start()
    await api.create(REPLICASET.resource, rs("one"), "demo")
    await eventually(lambda: len(pods_of(api, "one")) == 2)
    await asyncio.sleep(0.3)
    assert built == ["first"] and not second.running.is_set()

    await first.stop()  # releases the lease
    await asyncio.wait_for(second.running.wait(), 3)
    assert built == ["first", "second"]
    await api.create(REPLICASET.resource, rs("two"), "demo")
    await eventually(lambda: len(pods_of(api, "two")) == 2)
    assert len(pods_of(api, "one")) == 2  # the new leader adopted the state, no duplicates
    await second.stop()


async def test_losing_the_lease_stops_controllers_until_leading_again() -> None:
    api = FakeAPI()
    manager = ControllerManager(api, identity="m",  # type: ignore[arg-type]
                                controllers=default_controllers(), **FAST)
    manager.start()
    await asyncio.wait_for(manager.running.wait(), 2)
    partitioned = True

    def partition(verb: str, res: Resource, obj: dict[str, Any] | None) -> Exception | None:
        return ConnectionRefusedError() if partitioned and res.plural == "leases" else None

    api.fail(partition)
    await eventually(lambda: not manager.running.is_set(), timeout=3)
    assert manager.controllers == []
    await api.create(REPLICASET.resource, rs("while-down"), "demo")
    await asyncio.sleep(0.2)
    assert pods_of(api, "while-down") == []  # nobody acts without the lease
    partitioned = False
    await asyncio.wait_for(manager.running.wait(), 5)
    await eventually(lambda: len(pods_of(api, "while-down")) == 2)
    await manager.stop()
