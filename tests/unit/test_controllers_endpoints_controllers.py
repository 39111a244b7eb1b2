"""The Endpoints and EndpointSlice controllers running against the in-memory fake API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from kubi.controllers.endpoints import ENDPOINTS, EndpointsController
from kubi.controllers.endpointslice import ENDPOINT_SLICES, EndpointSliceController
from kubi.controllers.endpointutil import NODES, SERVICES
from kubi.controllers.events import EventBroadcaster
from kubi.controllers.informers import SharedInformers
from kubi.controllers.manager import ControllerContext
from kubi.controllers.podcontrol import PODS
from tests.unit.controllers_fakeapi import FakeAPI
from tests.unit.endpoints_fixtures import node, pod, service

Obj = dict[str, Any]


class ReplacingFakeAPI(FakeAPI):
    """The fake API, with updates replacing the whole object as the real server's do.

    (The shared fake keeps top-level fields an update leaves out; Endpoints
    whose last address went away leave `subsets` out.)
    """

    async def replace(self, res: Any, obj: dict, *, subresource: str = "", **kw: Any) -> dict:
        md = obj["metadata"]
        current = self.objects.get(self._key(res, md.get("namespace"), md["name"]))
        if current is not None and not subresource:
            for field in [f for f in current if f not in ("metadata", "status") and f not in obj]:
                del current[field]
        return await super().replace(res, obj, subresource=subresource, **kw)


class Harness:
    def __init__(self) -> None:
        self.api = ReplacingFakeAPI()
        self.informers = SharedInformers(self.api)  # type: ignore[arg-type]
        self.events = EventBroadcaster(self.api)  # type: ignore[arg-type]
        context = ControllerContext(self.api, self.informers, self.events)  # type: ignore[arg-type]
        self.endpoints = EndpointsController(context)
        self.slices = EndpointSliceController(context)
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self) -> Harness:
        self.informers.start()
        await self.informers.wait_for_sync(2)
        self.events.start()
        self.tasks = [asyncio.create_task(self.endpoints.run(2)),
                      asyncio.create_task(self.slices.run(2))]
        return self

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.informers.stop()
        await self.events.stop()

    async def create(self, obj: Obj) -> Obj:
        resource = {"Service": SERVICES, "Pod": PODS, "Node": NODES, "Endpoints": ENDPOINTS,
                    "EndpointSlice": ENDPOINT_SLICES}[obj["kind"]]
        created: Obj = await self.api.create(resource, obj, obj["metadata"].get("namespace"))
        return created

    def endpoints_of(self, name: str = "web") -> Obj | None:
        return self.api.objects.get(("endpoints", "demo", name))

    def slices_of(self, name: str = "web") -> list[Obj]:
        return [s for s in self.api.items("endpointslices", "demo")
                if s["metadata"]["labels"].get("kubernetes.io/service-name") == name]

    async def events_flushed(self) -> list[Obj]:
        await asyncio.wait_for(self.events.flush(), 2)
        return self.api.items("events", "demo")


def fresh(obj: Obj) -> Obj:
    """A fixture object without the server-set fields the fake API assigns."""
    md = obj["metadata"]
    for key in ("uid", "resourceVersion"):
        md.pop(key, None)
    return obj


async def eventually(predicate: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    h = Harness()
    await h.create(node("node-1", zone="zone-a"))
    await h.start()
    yield h
    await h.stop()


def addresses(endpoints: Obj | None, field: str = "addresses") -> list[str]:
    return [a["ip"] for s in (endpoints or {}).get("subsets") or () for a in s.get(field) or ()]


def slice_ips(h: Harness, ready: bool | None = None) -> set[str]:
    return {address for s in h.slices_of() for e in s.get("endpoints") or ()
            if ready is None or e["conditions"]["ready"] is ready for address in e["addresses"]}


async def test_endpoints_follow_pods_and_go_with_the_service(harness: Harness) -> None:
    h = harness
    svc = await h.create(fresh(service()))
    await h.create(fresh(pod("a", "10.42.0.5")))
    await h.create(fresh(pod("b", "10.42.0.6")))
    await eventually(lambda: addresses(h.endpoints_of()) == ["10.42.0.5", "10.42.0.6"])
    endpoints = h.endpoints_of()
    assert endpoints is not None
    assert endpoints["metadata"]["labels"] == {
        "app": "web", "endpoints.kubernetes.io/managed-by": "endpoint-controller"}
    assert endpoints["metadata"]["annotations"] == {
        "endpoints.kubernetes.io/last-change-trigger-time": svc["metadata"]["creationTimestamp"]}
    assert endpoints["subsets"][0]["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]

    await h.api.patch(PODS, "b", {"status": {"conditions": [
        {"type": "Ready", "status": "False", "lastTransitionTime": "2025-01-01T00:09:00Z"}]}},
        "demo")
    await eventually(lambda: addresses(h.endpoints_of(), "notReadyAddresses") == ["10.42.0.6"])
    assert addresses(h.endpoints_of()) == ["10.42.0.5"]
    assert h.endpoints_of()["metadata"]["annotations"] == {  # type: ignore[index]
        "endpoints.kubernetes.io/last-change-trigger-time": "2025-01-01T00:09:00Z"}

    await h.api.delete(SERVICES, "web", "demo")
    await eventually(lambda: h.endpoints_of() is None)


async def test_terminating_pods_leave_endpoints_but_stay_in_slices(harness: Harness) -> None:
    h = harness
    await h.create(fresh(service()))
    await h.create(fresh(pod("a", "10.42.0.5")))
    await eventually(lambda: addresses(h.endpoints_of()) == ["10.42.0.5"])
    await eventually(lambda: slice_ips(h) == {"10.42.0.5"})
    await h.api.patch(PODS, "a", {"metadata": {"deletionTimestamp": "2025-01-01T00:10:00Z"}},
                      "demo")
    await eventually(lambda: addresses(h.endpoints_of()) == [])
    await eventually(lambda: slice_ips(h, ready=False) == {"10.42.0.5"})
    [endpoint] = h.slices_of()[0]["endpoints"]
    assert endpoint["conditions"] == {"ready": False, "serving": True, "terminating": True}


async def test_services_without_selector_are_left_alone(harness: Harness) -> None:
    h = harness
    await h.create(fresh(service("manual", selector={})))
    manual = {"apiVersion": "v1", "kind": "Endpoints",
              "metadata": {"name": "manual", "namespace": "demo"},
              "subsets": [{"addresses": [{"ip": "192.0.2.10"}], "ports": [{"port": 80}]}]}
    await h.create(manual)
    await h.create(fresh(pod("a", labels={"app": "manual"})))
    await h.create(fresh(service("web")))
    await eventually(lambda: h.endpoints_of("web") is not None and bool(h.slices_of("web")))
    assert addresses(h.endpoints_of("manual")) == ["192.0.2.10"]
    assert h.slices_of("manual") == []
    assert h.api.count("replace", "endpoints") == 0


async def test_leftover_endpoints_are_deleted_at_start() -> None:
    h = Harness()
    for name, notes in (("orphan", {}),
                        ("lock", {"control-plane.alpha.kubernetes.io/leader": "{}"})):
        await h.create({"apiVersion": "v1", "kind": "Endpoints",
                         "metadata": {"name": name, "namespace": "demo", "annotations": notes}})
    await h.start()
    try:
        await eventually(lambda: h.endpoints_of("orphan") is None)
        assert h.endpoints_of("lock") is not None
    finally:
        await h.stop()


async def test_steady_state_makes_no_writes(harness: Harness) -> None:
    h = harness
    await h.create(fresh(service()))
    await h.create(fresh(pod("a")))
    await eventually(lambda: bool(addresses(h.endpoints_of())) and bool(slice_ips(h)))
    writes = (h.api.count("replace", "endpoints"), h.api.count("create", "endpointslices"),
              h.api.count("replace", "endpointslices"))
    # An annotation change on the pod is no endpoint change.
    await h.api.patch(PODS, "a", {"metadata": {"annotations": {"note": "x"}}}, "demo")
    h.endpoints.queue.add("demo/web")
    h.slices.queue.add("demo/web")
    await asyncio.sleep(0.2)
    assert (h.api.count("replace", "endpoints"), h.api.count("create", "endpointslices"),
            h.api.count("replace", "endpointslices")) == writes


async def test_slices_are_owned_labelled_and_capped(harness: Harness) -> None:
    h = harness
    svc = await h.create(fresh(service()))
    for i in range(120):
        await h.create(fresh(pod(f"p{i:03d}", f"10.42.0.{i + 2}")))
    await eventually(lambda: len(slice_ips(h)) == 120)
    slices = h.slices_of()
    assert sorted(len(s["endpoints"]) for s in slices) == [20, 100]
    for endpoint_slice in slices:
        md = endpoint_slice["metadata"]
        assert md["name"].startswith("web-") and len(md["name"]) == len("web-") + 5
        assert md["labels"] == {"app": "web", "kubernetes.io/service-name": "web",
                                "endpointslice.kubernetes.io/managed-by":
                                    "endpointslice-controller.k8s.io"}
        assert md["ownerReferences"] == [
            {"apiVersion": "v1", "kind": "Service", "name": "web",
             "uid": svc["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}]
        assert endpoint_slice["endpoints"][0]["zone"] == "zone-a"


async def test_a_slice_deleted_by_someone_else_comes_back(harness: Harness) -> None:
    h = harness
    await h.create(fresh(service()))
    await h.create(fresh(pod("a")))
    await eventually(lambda: slice_ips(h) == {"10.42.0.5"})
    [endpoint_slice] = h.slices_of()
    await h.api.delete(ENDPOINT_SLICES, endpoint_slice["metadata"]["name"], "demo")
    await eventually(lambda: slice_ips(h) == {"10.42.0.5"}
                     and h.slices_of()[0]["metadata"]["name"]
                     != endpoint_slice["metadata"]["name"])


async def test_pods_on_unknown_nodes_wait_with_an_event(harness: Harness) -> None:
    h = harness
    await h.create(fresh(service()))
    await h.create(fresh(pod("a", node="node-2")))
    await eventually(lambda: len(h.slices_of()) == 1)
    assert slice_ips(h) == set()
    events = await h.events_flushed()
    assert any(e["reason"] == "FailedToUpdateEndpointSlices"
               and "Node node-2 Not Found" in e["message"] for e in events)
    await h.create(node("node-2"))
    await eventually(lambda: slice_ips(h) == {"10.42.0.5"}, timeout=4.0)
