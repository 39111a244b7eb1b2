"""EndpointSlices as the EndpointSlice controller decides them, on plain data."""

from __future__ import annotations

import copy
from typing import Any

from kubi.controllers.endpointslice_reconciler import SlicePlan, reconcile
from kubi.controllers.endpointslice_rules import (
    LABEL_MANAGED_BY,
    LABEL_SERVICE_NAME,
    address_types,
    endpoint_key,
    endpoint_ports,
    new_slice,
    pod_to_endpoint,
    port_key,
    slice_labels,
    slice_to_fill,
)
from kubi.controllers.endpointslice_tracker import EndpointSliceTracker
from kubi.controllers.endpointutil import HEADLESS_LABEL, LAST_CHANGE_TRIGGER_TIME
from tests.unit.endpoints_fixtures import node, pod, service

NODES = {"node-1": node("node-1", zone="zone-a"), "node-2": node("node-2")}
MANAGED = "endpointslice-controller.k8s.io"


def pods(n: int, *, start: int = 0) -> list[dict[str, Any]]:
    return [pod(f"p{i:03d}", f"10.42.{i // 200}.{i % 200 + 1}") for i in range(start, start + n)]


def stored(slices: list[dict[str, Any]], first: int = 1) -> list[dict[str, Any]]:
    """The slices as the API server would hand them back: named, with versions."""
    out = []
    for i, s in enumerate(slices, start=first):
        s = copy.deepcopy(s)
        md = s["metadata"]
        md.setdefault("name", f"{md.get('generateName', 'x-')}{i:05d}")
        md.update(uid=f"uid-slice-{md['name']}", resourceVersion=str(i), generation=1)
        out.append(s)
    return out


def names(endpoint_slice: dict[str, Any]) -> list[str]:
    return [e["targetRef"]["name"] for e in endpoint_slice.get("endpoints") or ()]


# ---- rules

def test_pod_to_endpoint_conditions_and_topology() -> None:
    svc = service("nginx-demo")
    p = pod("web-0", "10.42.0.4", hostname="web-0", subdomain="nginx-demo")
    assert pod_to_endpoint(p, NODES["node-1"], svc, "IPv4") == {
        "addresses": ["10.42.0.4"],
        "conditions": {"ready": True, "serving": True, "terminating": False},
        "hostname": "web-0",
        "targetRef": {"kind": "Pod", "namespace": "demo", "name": "web-0", "uid": "uid-web-0"},
        "nodeName": "node-1",
        "zone": "zone-a",
    }
    terminating = pod("t", deleting=True)
    conditions = pod_to_endpoint(terminating, None, svc, "IPv4")["conditions"]
    assert conditions == {"ready": False, "serving": True, "terminating": True}
    conditions = pod_to_endpoint(terminating, None, service(publishNotReadyAddresses=True),
                                 "IPv4")["conditions"]
    assert conditions == {"ready": True, "serving": True, "terminating": True}
    unready = pod_to_endpoint(pod("u", ready=False), None, svc, "IPv4")["conditions"]
    assert unready == {"ready": False, "serving": False, "terminating": False}
    assert pod_to_endpoint(pod("v4"), None, svc, "IPv6")["addresses"] == []


def test_ports_address_types_and_keys() -> None:
    svc = service(ports=[{"port": 80, "targetPort": "http", "protocol": "TCP"},
                         {"name": "dns", "port": 53, "targetPort": 53, "protocol": "UDP"}])
    assert endpoint_ports(svc, pod("a")) == [
        {"name": "", "port": 8080, "protocol": "TCP"},
        {"name": "dns", "port": 53, "protocol": "UDP"}]
    assert endpoint_ports(service(cluster_ip="None", ports=[]), pod("a")) == []
    assert port_key(endpoint_ports(svc, pod("a"))) == port_key(
        list(reversed(endpoint_ports(svc, pod("a")))))
    assert address_types(service()) == ["IPv4"]
    dual = service(cluster_ip="None")
    dual["spec"]["ipFamilies"] = ["IPv6", "IPv4"]
    assert address_types(dual) == ["IPv6", "IPv4"]
    del dual["spec"]["ipFamilies"]
    assert address_types(dual) == ["IPv4", "IPv6"]
    # Conditions are not part of an endpoint's identity; addresses and the pod are.
    a = pod_to_endpoint(pod("a"), None, service(), "IPv4")
    b = pod_to_endpoint(pod("a", ready=False), None, service(), "IPv4")
    assert endpoint_key(a) == endpoint_key(b)
    assert endpoint_key(a) != endpoint_key(pod_to_endpoint(pod("a", "10.42.0.6"), None,
                                                           service(), "IPv4"))


def test_slice_labels_mirror_the_service_except_reserved_ones() -> None:
    svc = service(cluster_ip="None", labels={"app": "web", LABEL_SERVICE_NAME: "spoof"})
    fresh = new_slice(svc, [], "IPv4")
    assert fresh["metadata"]["labels"] == {"app": "web", HEADLESS_LABEL: "",
                                           LABEL_SERVICE_NAME: "web", LABEL_MANAGED_BY: MANAGED}
    assert fresh["metadata"]["generateName"] == "web-"
    assert fresh["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Service", "name": "web", "uid": "uid-svc-web",
         "controller": True, "blockOwnerDeletion": True}]
    assert slice_labels(fresh, svc) == (fresh["metadata"]["labels"], False)
    relabelled = service(cluster_ip="None", labels={"app": "web", "team": "x"})
    labels, changed = slice_labels(fresh, relabelled)
    assert changed and labels["team"] == "x"


def test_slice_to_fill_picks_the_closest_fit() -> None:
    def sized(n: int) -> dict[str, Any]:
        return {"metadata": {"name": f"s{n}"}, "endpoints": [{}] * n}

    def pick(count: int) -> str | None:
        chosen = slice_to_fill([sized(50), sized(95), sized(80)], count, 100)
        return None if chosen is None else str(chosen["metadata"]["name"])

    assert (pick(10), pick(5), pick(60)) == ("s80", "s95", None)


# ---- reconcile

def test_first_sync_creates_slices_of_at_most_max_endpoints() -> None:
    plan = reconcile(service(), pods(250), [], nodes=NODES, trigger_time="2025-01-01T00:00:00Z")
    assert (len(plan.create), plan.update, plan.delete, plan.errors) == (3, [], [], [])
    assert [len(s["endpoints"]) for s in plan.create] == [100, 100, 50]
    created = plan.create[0]
    assert created["addressType"] == "IPv4"
    assert created["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    assert created["metadata"]["annotations"] == {
        LAST_CHANGE_TRIGGER_TIME: "2025-01-01T00:00:00Z"}


def test_no_pods_means_one_placeholder_kept_across_syncs() -> None:
    plan = reconcile(service(), [], [], nodes=NODES)
    [placeholder] = plan.create
    assert placeholder["endpoints"] == [] and placeholder["ports"] == []
    again = reconcile(service(), [], stored(plan.create), nodes=NODES)
    assert (again.create, again.update, again.delete) == ([], [], [])


def test_steady_state_writes_nothing() -> None:
    first = reconcile(service(), pods(150), [], nodes=NODES)
    second = reconcile(service(), pods(150), stored(first.create), nodes=NODES)
    assert (second.create, second.update, second.delete) == ([], [], [])


def test_changes_update_in_place_and_fill_updated_slices_first() -> None:
    existing = stored(reconcile(service(), pods(150), [], nodes=NODES).create)
    # p000 leaves, p001 turns unready, two new pods arrive.
    current = pods(150)[1:] + pods(2, start=150)
    current[0] = pod("p001", "10.42.0.2", ready=False)
    plan = reconcile(service(), current, existing, nodes=NODES)
    assert plan.create == [] and plan.delete == []
    # The changed slice is refilled to 100; the one left over goes to the other slice.
    updated, topped_up = plan.update
    assert updated["metadata"]["name"] == existing[0]["metadata"]["name"]
    assert updated["metadata"]["resourceVersion"] == existing[0]["metadata"]["resourceVersion"]
    assert len(updated["endpoints"]) == 100
    assert "p000" not in names(updated) and "p150" in names(updated)
    assert topped_up["metadata"]["name"] == existing[1]["metadata"]["name"]
    assert names(topped_up)[-1] == "p151" and len(topped_up["endpoints"]) == 51
    p001 = next(e for e in updated["endpoints"] if e["targetRef"]["name"] == "p001")
    assert p001["conditions"]["ready"] is False


def test_leftover_endpoints_go_to_the_unchanged_slice_closest_to_full() -> None:
    existing = stored(reconcile(service(), pods(150), [], nodes=NODES).create)
    plan = reconcile(service(), pods(160), existing, nodes=NODES)
    [updated] = plan.update
    assert updated["metadata"]["name"] == existing[1]["metadata"]["name"]
    assert len(updated["endpoints"]) == 60


def test_emptied_slice_is_reused_for_a_new_one() -> None:
    svc = service(ports=[{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}])
    existing = stored(reconcile(svc, pods(3), [], nodes=NODES).create)
    # The container port moved: the old port set empties, a new one is needed.
    moved = [pod(p["metadata"]["name"], p["status"]["podIP"],
                 container_ports=[{"name": "http", "containerPort": 9000}]) for p in pods(3)]
    plan = reconcile(svc, moved, existing, nodes=NODES)
    assert plan.create == [] and plan.delete == []
    [reused] = plan.update
    assert reused["metadata"]["name"] == existing[0]["metadata"]["name"]
    assert reused["ports"] == [{"name": "http", "port": 9000, "protocol": "TCP"}]


def test_slices_of_another_owner_or_family_are_deleted() -> None:
    old_owner = stored(reconcile(service(uid="old"), pods(2), [], nodes=NODES).create)
    v6 = stored([new_slice(service(), [], "IPv6")], first=9)
    plan = reconcile(service(), pods(2), old_owner + v6, nodes=NODES)
    assert len(plan.create) == 1 and plan.update == []
    assert [s["metadata"]["name"] for s in plan.delete] == [
        old_owner[0]["metadata"]["name"], v6[0]["metadata"]["name"]]


def test_missing_node_skips_the_pod_and_reports() -> None:
    lost = pod("lost", "10.42.9.9", node="gone")
    plan = reconcile(service(), pods(1) + [lost], [], nodes=NODES)
    assert names(plan.create[0]) == ["p000"]
    assert plan.errors == ["skipping Pod lost for Service demo/web: Node gone Not Found"]
    published = reconcile(service(publishNotReadyAddresses=True), [lost], [], nodes=NODES)
    assert names(published.create[0]) == ["lost"] and published.errors == []


def test_service_being_deleted_gets_no_new_slices() -> None:
    svc = service()
    svc["metadata"]["deletionTimestamp"] = "2025-01-01T00:10:00Z"
    assert reconcile(svc, pods(3), [], nodes=NODES).create == []


def test_prefer_close_adds_zone_hints_to_ready_endpoints() -> None:
    svc = service(trafficDistribution="PreferClose")
    zoned = [pod("a"), pod("b", "10.42.0.6", node="node-2"), pod("c", "10.42.0.7", ready=False)]
    [created] = reconcile(svc, zoned, [], nodes=NODES).create
    hints = {e["targetRef"]["name"]: e.get("hints") for e in created["endpoints"]}
    assert hints == {"a": {"forZones": [{"name": "zone-a"}]}, "b": None, "c": None}
    # An unchanged slice without the hints is updated to add them.
    plain = stored(reconcile(service(), zoned, [], nodes=NODES).create)
    [updated] = reconcile(svc, zoned, plain, nodes=NODES).update
    assert updated["endpoints"][0]["hints"] == {"forZones": [{"name": "zone-a"}]}


def test_plan_extend() -> None:
    plan = SlicePlan()
    plan.extend(SlicePlan(create=[{}], errors=["x"]))
    assert len(plan.create) == 1 and plan.errors == ["x"]


# ---- tracker

def slice_obj(uid: str, generation: int, service_name: str = "web") -> dict[str, Any]:
    return {"metadata": {"namespace": "demo", "uid": uid, "generation": generation,
                         "labels": {LABEL_SERVICE_NAME: service_name}}}


def test_tracker_stale_and_should_sync() -> None:
    tracker = EndpointSliceTracker()
    svc = service()
    assert not tracker.stale_slices(svc, [])
    tracker.update(slice_obj("s1", 2))
    # Our own write coming back needs no sync; a newer generation does.
    assert not tracker.should_sync(slice_obj("s1", 2))
    assert tracker.should_sync(slice_obj("s1", 3))
    assert tracker.should_sync(slice_obj("s2", 1))
    # The cache still shows the old generation, or not the slice at all: stale.
    assert tracker.stale_slices(svc, [slice_obj("s1", 1)])
    assert tracker.stale_slices(svc, [])
    assert not tracker.stale_slices(svc, [slice_obj("s1", 2)])
    tracker.expect_deletion(slice_obj("s1", 2))
    assert tracker.stale_slices(svc, [slice_obj("s1", 2)])
    assert not tracker.stale_slices(svc, [])
    assert tracker.has(slice_obj("s1", 2))
    assert tracker.handle_deletion(slice_obj("s1", 2))
    assert not tracker.has(slice_obj("s1", 2))
    # Deleted by someone else: not expected.
    tracker.update(slice_obj("s3", 1))
    assert not tracker.handle_deletion(slice_obj("s3", 1))


def test_tracker_forgets_a_recreated_service() -> None:
    tracker = EndpointSliceTracker()
    assert not tracker.stale_slices(service(uid="first"), [])
    tracker.update(slice_obj("s1", 1))
    assert tracker.stale_slices(service(uid="first"), [])
    assert not tracker.stale_slices(service(uid="second"), [])
