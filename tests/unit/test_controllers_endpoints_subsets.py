"""core/v1 Endpoints as the Endpoints controller computes them, on plain data."""

from __future__ import annotations

from typing import Any

from kubi.controllers.endpoints import kubernetes_endpoints, primary_ipv4
from kubi.controllers.endpointsubsets import (
    MANAGED_BY_LABEL,
    OVER_CAPACITY,
    desired_endpoints,
    desired_labels,
    desired_subsets,
    labels_correct,
    repack_subsets,
    subsets_equal,
    truncate_subsets,
)
from kubi.controllers.endpointutil import HEADLESS_LABEL, LAST_CHANGE_TRIGGER_TIME
from tests.unit.endpoints_fixtures import pod, service


def ref(name: str) -> dict[str, str]:
    return {"kind": "Pod", "namespace": "demo", "name": name, "uid": f"uid-{name}"}


def addr(name: str, ip: str, **extra: Any) -> dict[str, Any]:
    return {"ip": ip, **extra, "nodeName": "node-1", "targetRef": ref(name)}


def test_ready_and_not_ready_pods_share_a_subset() -> None:
    pods = [pod("a", "10.42.0.9"), pod("b", "10.42.0.10", ready=False), pod("c", "10.42.0.11")]
    assert desired_subsets(service(), pods) == [{
        # Sorted by the text of the IP, as upstream does.
        "addresses": [addr("c", "10.42.0.11"), addr("a", "10.42.0.9")],
        "notReadyAddresses": [addr("b", "10.42.0.10")],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    }]


def test_publish_not_ready_addresses_and_excluded_pods() -> None:
    svc = service(publishNotReadyAddresses=True)
    pods = [pod("a", "10.42.0.9", ready=False), pod("gone", "10.42.0.8", phase="Succeeded"),
            pod("pending", None), pod("bye", "10.42.0.7", deleting=True)]
    assert desired_subsets(svc, pods) == [{
        "addresses": [addr("a", "10.42.0.9")],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    }]


def test_named_target_ports_split_subsets_by_what_each_pod_serves() -> None:
    svc = service(ports=[{"name": "web", "port": 80, "targetPort": "web", "protocol": "TCP"},
                         {"name": "metrics", "port": 9090, "targetPort": 9090,
                          "protocol": "TCP", "appProtocol": "http"}])
    old = pod("old", "10.42.0.1", container_ports=[{"name": "web", "containerPort": 8080}])
    new = pod("new", "10.42.0.2", container_ports=[{"name": "web", "containerPort": 8081}])
    bare = pod("bare", "10.42.0.3", container_ports=[])
    metrics = {"name": "metrics", "port": 9090, "protocol": "TCP", "appProtocol": "http"}
    # Each subset is the set of addresses behind one set of ports.
    assert desired_subsets(svc, [old, new, bare]) == [
        {"addresses": [addr("old", "10.42.0.1"), addr("new", "10.42.0.2"),
                       addr("bare", "10.42.0.3")], "ports": [metrics]},
        {"addresses": [addr("old", "10.42.0.1")],
         "ports": [{"name": "web", "port": 8080, "protocol": "TCP"}]},
        {"addresses": [addr("new", "10.42.0.2")],
         "ports": [{"name": "web", "port": 8081, "protocol": "TCP"}]},
    ]


def test_headless_service_with_hostnames_and_without_ports() -> None:
    svc = service("nginx-demo", cluster_ip="None", ports=[])
    svc["spec"]["ipFamilies"] = ["IPv4"]
    pods = [pod("web-demo-0", "10.42.0.4", hostname="web-demo-0", subdomain="nginx-demo"),
            pod("web-demo-1", "10.42.0.5", hostname="web-demo-1", subdomain="nginx-demo",
                ready=False)]
    assert desired_subsets(svc, pods) == [{
        "addresses": [addr("web-demo-0", "10.42.0.4", hostname="web-demo-0")],
        "notReadyAddresses": [addr("web-demo-1", "10.42.0.5", hostname="web-demo-1")],
    }]
    # A Service with a cluster IP and no ports gets no addresses at all.
    assert desired_subsets(service(ports=[]), pods) == []


def test_repack_keeps_not_ready_over_ready_and_dedups() -> None:
    a, b = addr("a", "10.0.0.1"), addr("b", "10.0.0.2")
    port = {"name": "p", "port": 1, "protocol": "TCP"}
    subsets = [{"addresses": [a], "ports": [port]}, {"notReadyAddresses": [a], "ports": [port]},
               {"addresses": [a, b], "ports": [port]}]
    assert repack_subsets(subsets) == [
        {"addresses": [b], "notReadyAddresses": [a], "ports": [port]}]


def test_address_family_follows_the_service() -> None:
    dual = pod("a", "10.42.0.9")
    dual["status"]["podIPs"] = [{"ip": "10.42.0.9"}, {"ip": "fd00:0::9"}]
    [subset] = desired_subsets(service(cluster_ip="fd00::10"), [dual])
    assert subset["addresses"][0]["ip"] == "fd00::9"
    assert desired_subsets(service(cluster_ip="fd00::10"), [pod("b", "10.42.0.8")]) == []


def test_labels() -> None:
    svc = service(labels={"app": "web", HEADLESS_LABEL: "stale"})
    assert desired_labels(svc) == {"app": "web", MANAGED_BY_LABEL: "endpoint-controller"}
    headless = service(cluster_ip="None", labels={"app": "web"})
    assert desired_labels(headless) == {"app": "web", HEADLESS_LABEL: "",
                                        MANAGED_BY_LABEL: "endpoint-controller"}
    assert labels_correct(desired_labels(headless), {"app": "web"})
    assert not labels_correct({"app": "web"}, {"app": "web"})
    assert not labels_correct({"app": "web", "x": "1", MANAGED_BY_LABEL: "endpoint-controller"},
                              {"app": "web"})


def test_truncation_keeps_ready_first_in_proportion() -> None:
    def many(prefix: str, n: int) -> list[dict[str, Any]]:
        return [{"ip": f"{prefix}.{i // 250}.{i % 250}"} for i in range(n)]

    subsets = [{"addresses": many("10.1", 600), "notReadyAddresses": many("10.9", 5)},
               {"addresses": many("10.2", 400)}, {"addresses": many("10.3", 200)}]
    assert truncate_subsets(subsets)
    assert [len(s.get("addresses", [])) for s in subsets] == [500, 334, 166]
    assert all("notReadyAddresses" not in s for s in subsets)

    subsets = [{"addresses": many("10.1", 900), "notReadyAddresses": many("10.9", 150)},
               {"notReadyAddresses": many("10.8", 50)}]
    assert truncate_subsets(subsets)
    assert [len(s.get("notReadyAddresses", [])) for s in subsets] == [75, 25]
    assert not truncate_subsets([{"addresses": many("10.1", 1000)}])


def test_desired_endpoints_create_update_and_no_change() -> None:
    svc = service()
    subsets = desired_subsets(svc, [pod("a", "10.42.0.9")])
    created = desired_endpoints(svc, None, subsets, "2025-01-01T00:00:00Z")
    assert created == {
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": "web", "namespace": "demo",
                     "labels": {"app": "web", MANAGED_BY_LABEL: "endpoint-controller"},
                     "annotations": {LAST_CHANGE_TRIGGER_TIME: "2025-01-01T00:00:00Z"}},
        "subsets": subsets,
    }
    stored = {**created, "metadata": {**created["metadata"], "resourceVersion": "7"}}
    # The pod's resourceVersion in a targetRef is no change.
    stored["subsets"][0]["addresses"][0]["targetRef"]["resourceVersion"] = "99"
    assert subsets_equal(stored["subsets"], subsets)
    assert desired_endpoints(svc, stored, subsets, None) is None
    # Pods gone: the subsets go, the trigger time is cleared when there is none.
    emptied = desired_endpoints(svc, stored, [], None)
    assert emptied is not None
    assert "subsets" not in emptied and "annotations" not in emptied["metadata"]
    assert emptied["metadata"]["resourceVersion"] == "7"
    # Labels follow the Service.
    relabelled = service(labels={"app": "web", "team": "a"})
    assert desired_endpoints(relabelled, stored, subsets, None) is not None


def test_over_capacity_annotation() -> None:
    svc = service()
    many = [{"ip": f"10.0.{i // 250}.{i % 250}"} for i in range(1001)]
    port = [{"port": 80, "protocol": "TCP"}]
    subsets: list[dict[str, Any]] = [{"addresses": many, "ports": port}]
    wanted = desired_endpoints(svc, None, subsets, None)
    assert wanted is not None
    assert wanted["metadata"]["annotations"] == {OVER_CAPACITY: "truncated"}
    assert len(wanted["subsets"][0]["addresses"]) == 1000
    # Back under capacity, a stale annotation alone forces a write that drops it.
    shrunk: list[dict[str, Any]] = [{"addresses": many[:3], "ports": port}]
    again = desired_endpoints(svc, {**wanted, "subsets": shrunk}, shrunk, None)
    assert again is not None and "annotations" not in again["metadata"]


def test_kubernetes_endpoints() -> None:
    endpoints, endpoint_slice = kubernetes_endpoints("192.0.2.2", 6443)
    assert endpoints == {
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": [{"addresses": [{"ip": "192.0.2.2"}],
                     "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}]}],
    }
    assert endpoint_slice == {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"kubernetes.io/service-name": "kubernetes"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["192.0.2.2"], "conditions": {"ready": True}}],
        "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}],
    }
    address = primary_ipv4()
    assert address is None or not address.startswith("127.")
