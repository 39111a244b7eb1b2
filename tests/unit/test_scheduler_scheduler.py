"""The Scheduler component against an in-memory API: bind, report, retry."""

from __future__ import annotations

import asyncio
import copy
import re
from typing import Any

import pytest

from kubi.api.errors import StatusError
from kubi.client.client import Resource
from kubi.scheduler import Scheduler
from tests.unit.controllers_fakeapi import FakeAPI
from tests.unit.scheduler_fixtures import make_node, make_pod

NODES = Resource("", "v1", "nodes", False, "Node")
PODS = Resource("", "v1", "pods", True, "Pod")
BINDINGS = Resource("", "v1", "bindings", True, "Binding")
_BINDING_PATH = re.compile(r"^/api/v1/namespaces/([^/]+)/pods/([^/]+)/binding$")


class BindingAPI(FakeAPI):
    """FakeAPI plus the pods/binding subresource, as the API server implements it."""

    async def request(self, method: str, path: str, *, body: Any = None, **_: Any) -> Any:
        match = _BINDING_PATH.match(path)
        assert method == "POST" and match, (method, path)
        namespace, name = match.groups()
        self.calls.append(("bind", "pods", name))
        self._check("create", BINDINGS, body)
        pod = self._existing(PODS, namespace, name)
        if pod["spec"].get("nodeName"):
            raise StatusError(409, "Conflict", f'Operation cannot be fulfilled on pods/binding '
                              f'"{name}": pod {name} is already assigned to node '
                              f'"{pod["spec"]["nodeName"]}"')
        updated = copy.deepcopy(pod)
        updated["spec"]["nodeName"] = body["target"]["name"]
        conditions = [c for c in updated.setdefault("status", {}).get("conditions", [])
                      if c["type"] != "PodScheduled"]
        updated["status"]["conditions"] = conditions + [{"type": "PodScheduled",
                                                         "status": "True"}]
        self.objects[self._key(PODS, namespace, name)] = updated
        self._record("MODIFIED", PODS, updated)
        return {"kind": "Status", "status": "Success"}


async def eventually(predicate, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def node_of(api: FakeAPI, name: str) -> str | None:
    for pod in api.items("pods"):
        if pod["metadata"]["name"] == name:
            return pod["spec"].get("nodeName")
    return None


def events(api: FakeAPI, reason: str) -> list[dict[str, Any]]:
    return [e for e in api.items("events") if e["reason"] == reason]


@pytest.fixture
async def api():
    return BindingAPI()


@pytest.fixture
async def scheduler(api):
    sched = Scheduler(api)  # type: ignore[arg-type]
    sched.start()
    await asyncio.wait_for(sched.running.wait(), 5)
    yield sched
    await sched.stop()


async def test_pods_are_bound_and_reported(api, scheduler):
    await api.create(NODES, make_node("a", cpu="1"))
    await api.create(NODES, make_node("b", cpu="1"))
    for i in range(4):
        await api.create(PODS, make_pod(f"p{i}", cpu="400m"))
    await eventually(lambda: all(node_of(api, f"p{i}") for i in range(4)))
    placed = [node_of(api, f"p{i}") for i in range(4)]
    assert sorted(placed) == ["a", "a", "b", "b"]  # 400m each: two per 1-cpu node
    await eventually(lambda: len(events(api, "Scheduled")) == 4)
    messages = {e["message"] for e in events(api, "Scheduled")}
    assert f"Successfully assigned default/p0 to {placed[0]}" in messages
    event = events(api, "Scheduled")[0]
    assert event["source"] == {"component": "default-scheduler"} and event["type"] == "Normal"
    assert event["involvedObject"]["kind"] == "Pod"


async def test_unschedulable_pod_gets_condition_event_and_a_later_chance(api, scheduler):
    await api.create(NODES, make_node("small", cpu="500m"))
    await api.create(PODS, make_pod("big", cpu="1"))
    expected = ("0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are "
                "available: 1 No preemption victims found for incoming pod.")

    def condition():
        pod = api.objects[("pods", "default", "big")]
        return next((c for c in pod.get("status", {}).get("conditions", [])
                     if c["type"] == "PodScheduled"), None)

    await eventually(lambda: condition() is not None)
    assert condition()["status"] == "False" and condition()["reason"] == "Unschedulable"
    assert condition()["message"] == expected
    await eventually(lambda: len(events(api, "FailedScheduling")) == 1)
    assert events(api, "FailedScheduling")[0]["type"] == "Warning"
    assert events(api, "FailedScheduling")[0]["message"] == expected

    await api.create(NODES, make_node("large", cpu="2"))
    await eventually(lambda: node_of(api, "big") == "large", timeout=5)


async def test_other_schedulers_gated_and_bound_pods_are_left_alone(api, scheduler):
    await api.create(NODES, make_node("a"))
    await api.create(PODS, make_pod("mine"))
    await api.create(PODS, make_pod("theirs", schedulerName="other-scheduler"))
    await api.create(PODS, make_pod("gated", schedulingGates=[{"name": "wait"}]))
    await api.create(PODS, make_pod("pinned", node="a"))
    await eventually(lambda: node_of(api, "mine") == "a")
    await asyncio.sleep(0.1)
    assert node_of(api, "theirs") is None and node_of(api, "gated") is None
    assert api.count("bind", "pods") == 1
    assert scheduler.cache.node("a").pods.keys() >= {"default/mine", "default/pinned"}


async def test_failed_binding_is_forgotten_and_retried(api, scheduler):
    failures = [StatusError(500, "InternalError", "etcd is sad")]

    def fail_once(verb, res, obj):
        if res.plural == "bindings" and failures:
            return failures.pop()
        return None

    api.fail(fail_once)
    await api.create(NODES, make_node("a", cpu="1"))
    await api.create(PODS, make_pod("p", cpu="1"))
    await eventually(lambda: len(events(api, "FailedScheduling")) == 1)
    assert events(api, "FailedScheduling")[0]["message"] == "etcd is sad"
    await eventually(lambda: node_of(api, "p") == "a", timeout=5)
    assert scheduler.cache.node("a").requested.milli_cpu == 1000


async def test_deleting_a_pod_frees_room_for_a_waiting_one(api, scheduler):
    await api.create(NODES, make_node("a", cpu="1"))
    await api.create(PODS, make_pod("first", cpu="1"))
    await eventually(lambda: node_of(api, "first") == "a")
    await api.create(PODS, make_pod("second", cpu="1"))
    await eventually(lambda: len(events(api, "FailedScheduling")) == 1)
    await api.delete(PODS, "first", "default")
    await eventually(lambda: node_of(api, "second") == "a", timeout=5)


async def test_no_nodes_message(api, scheduler):
    await api.create(PODS, make_pod("p"))
    await eventually(lambda: len(events(api, "FailedScheduling")) == 1)
    assert events(api, "FailedScheduling")[0]["message"] == "no nodes available to schedule pods"


async def test_stop_is_clean(api):
    sched = Scheduler(api)  # type: ignore[arg-type]
    sched.start()
    await asyncio.wait_for(sched.running.wait(), 5)
    await sched.stop()
    assert not sched.running.is_set()
    leftovers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()
                 and not t.done() and (t.get_name() or "").startswith(("informer", "scheduler"))]
    assert leftovers == []
