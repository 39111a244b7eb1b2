"""Taint-based eviction: toleration matching, then the controller's timers on a fake API."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from kubi.client.client import Resource
from kubi.controllers.events import EventBroadcaster
from kubi.controllers.informers import SharedInformers
from kubi.controllers.manager import ControllerContext
from kubi.controllers.nodelifecycle import NODES
from kubi.controllers.tainteviction import TaintEvictionController
from kubi.controllers.taints import eviction_delay, matching_tolerations, min_toleration_seconds
from tests.unit.lifecycle_fakeapi import LifecycleFakeAPI

PODS = Resource("", "v1", "pods", True, "Pod")
UNREACHABLE = {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}
NOT_READY = {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}


def toleration(key: str | None, seconds: float | None = None, *, operator: str = "Exists",
               effect: str = "NoExecute", value: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"operator": operator, "effect": effect}
    if key is not None:
        out["key"] = key
    if value is not None:
        out["value"] = value
    if seconds is not None:
        out["tolerationSeconds"] = seconds
    return out


def test_matching_tolerations() -> None:
    taints = [UNREACHABLE, NOT_READY]
    both = [toleration(UNREACHABLE["key"], 300), toleration(NOT_READY["key"], 60)]
    assert matching_tolerations(taints, both) == (True, both)
    assert matching_tolerations(taints, both[:1])[0] is False
    wildcard = [toleration(None)]  # key unset with Exists tolerates every taint
    assert matching_tolerations(taints, wildcard) == (True, wildcard * 2)
    wrong_effect = [toleration(UNREACHABLE["key"], effect="NoSchedule")]
    assert matching_tolerations([UNREACHABLE], wrong_effect)[0] is False
    equal = [toleration("k", operator="Equal", value="v")]
    assert matching_tolerations([{"key": "k", "value": "v", "effect": "NoExecute"}], equal)[0]
    assert not matching_tolerations([{"key": "k", "value": "w", "effect": "NoExecute"}],
                                    equal)[0]


def test_eviction_delay() -> None:
    taints = [UNREACHABLE, NOT_READY]
    assert eviction_delay(taints, []) == 0
    assert eviction_delay(taints, [toleration(UNREACHABLE["key"], 300),
                                   toleration(NOT_READY["key"], 60)]) == 60
    assert eviction_delay(taints, [toleration(None)]) is None  # forever
    assert eviction_delay([UNREACHABLE], [toleration(None, -5)]) == 0
    assert eviction_delay([], []) is None
    assert min_toleration_seconds([toleration(None), toleration("a", 30)]) == 30


# ---- the controller


class Harness:
    def __init__(self) -> None:
        self.api = LifecycleFakeAPI()
        self.informers = SharedInformers(self.api)  # type: ignore[arg-type]
        self.events = EventBroadcaster(self.api)  # type: ignore[arg-type]
        ctx = ControllerContext(self.api, self.informers, self.events)  # type: ignore[arg-type]
        self.controller = TaintEvictionController(ctx)
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.informers.start()
        await self.informers.wait_for_sync(2)
        self.events.start()
        self.task = asyncio.create_task(self.controller.run(2))

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        await self.informers.stop()
        await self.events.stop()

    async def pod(self, name: str, *tolerations: dict[str, Any], node: str = "n1") -> None:
        await self.api.create(PODS, {"metadata": {"name": name},
                                     "spec": {"nodeName": node,
                                              "tolerations": list(tolerations)},
                                     "status": {"phase": "Running"}}, "demo")

    async def taint(self, *taints: dict[str, Any], name: str = "n1") -> None:
        await self.api.patch(NODES, name, {"spec": {"taints": list(taints) or None}})

    def names(self) -> list[str]:
        return [p["metadata"]["name"] for p in self.api.items("pods", "demo")]

    async def messages(self) -> list[str]:
        await asyncio.wait_for(self.events.flush(), 2)
        return sorted(e["message"] for e in self.api.items("events", "demo")
                      if e["reason"] == "TaintManagerEviction")


async def eventually(predicate: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


@pytest.fixture
async def harness() -> Any:
    h = Harness()
    await h.api.create(NODES, {"metadata": {"name": "n1"}, "spec": {}})
    await h.api.create(NODES, {"metadata": {"name": "n2"}, "spec": {}})
    await h.start()
    yield h
    await h.stop()


async def test_untolerated_pods_go_now_tolerating_ones_later(harness: Harness) -> None:
    await harness.pod("plain")
    await harness.pod("patient", toleration(UNREACHABLE["key"], 0.3))
    await harness.pod("forever", toleration(UNREACHABLE["key"]))
    await harness.pod("elsewhere", node="n2")
    await asyncio.sleep(0.05)
    await harness.taint(UNREACHABLE)
    await eventually(lambda: "plain" not in harness.names())
    assert "patient" in harness.names()
    await eventually(lambda: harness.names() == ["elsewhere", "forever"])
    deletes = [(p, name) for p, name, _, _ in harness.api.deletes]
    assert sorted(deletes) == [("pods", "patient"), ("pods", "plain")]
    assert await harness.messages() == ["Marking for deletion Pod demo/patient",
                                        "Marking for deletion Pod demo/plain"]


async def test_lifting_the_taint_cancels_a_scheduled_eviction(harness: Harness) -> None:
    await harness.pod("patient", toleration(UNREACHABLE["key"], 0.5))
    await asyncio.sleep(0.05)
    await harness.taint(UNREACHABLE)
    await eventually(lambda: "demo/patient" in harness.controller.scheduled)
    await harness.taint()
    await eventually(lambda: "demo/patient" not in harness.controller.scheduled)
    await asyncio.sleep(0.6)
    assert harness.names() == ["patient"]
    assert await harness.messages() == ["Cancelling deletion of Pod demo/patient"]


async def test_a_pod_bound_to_a_tainted_node_is_evicted(harness: Harness) -> None:
    await harness.taint(NOT_READY)
    await asyncio.sleep(0.05)
    await harness.pod("late")
    await eventually(lambda: harness.names() == [])
