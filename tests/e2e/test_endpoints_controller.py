"""Endpoints and EndpointSlices of Services, driven through the real kubectl.

One kubi serves the module, started with `--no-controllers`; beside it run
the Endpoints and EndpointSlice controllers with the ReplicaSet, StatefulSet
and garbage-collector controllers, the scheduler and two simulated nodes
(see `endpoints_support`), so pods really become Running and Ready. Each test
uses its own namespace: a Service in front of a ReplicaSet (addresses follow
scaling; both objects go with the Service), the seed's headless Service and
StatefulSet (hostnames for `<pod>.nginx-demo` DNS), and a Service without a
selector whose hand-written Endpoints are left alone.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e import tables
from tests.e2e.deployment_support import SEED_DIR, create_namespace, seed_manifest
from tests.e2e.endpoints_support import start_components, wait_until
from tests.e2e.harness import Cluster

MANAGED_BY = "endpoints.kubernetes.io/managed-by"
TRIGGER_TIME = "endpoints.kubernetes.io/last-change-trigger-time"

SERVICE_AND_REPLICASET = """\
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: {namespace}
  labels:
    app: web
spec:
  selector:
    app: web
  ports:
  - name: http
    port: 80
    targetPort: http
---
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: web
  namespace: {namespace}
spec:
  replicas: 3
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: nginx
        image: nginx:1.19.2-alpine
        ports:
        - name: http
          containerPort: 8080
"""

SELECTORLESS = """\
apiVersion: v1
kind: Service
metadata:
  name: database
  namespace: {namespace}
spec:
  ports:
  - port: 5432
---
apiVersion: v1
kind: Endpoints
metadata:
  name: database
  namespace: {namespace}
subsets:
- addresses:
  - ip: 192.0.2.10
  ports:
  - port: 5432
"""


@pytest.fixture(scope="module")
def ep_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with Cluster(tmp_path_factory.mktemp("kubi-ep"), extra_args=["--no-controllers"]) as cluster:
        components = start_components(cluster)
        try:
            yield cluster
        finally:
            components.stop()


def get_json(cluster: Cluster, *args: str) -> Any:
    return json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)


def running_pod_ips(cluster: Cluster, namespace: str, selector: str) -> dict[str, str]:
    pods = get_json(cluster, "pods", "-n", namespace, "-l", selector)["items"]
    return {p["metadata"]["name"]: p["status"].get("podIP", "") for p in pods
            if not p["metadata"].get("deletionTimestamp")
            and any(c["type"] == "Ready" and c["status"] == "True"
                    for c in p["status"].get("conditions", []))}


def endpoints_cell(cluster: Cluster, namespace: str, name: str) -> str:
    listed = cluster.kubectl("get", "endpoints", name, "-n", namespace).stdout
    return tables.by_name(listed)[name]["ENDPOINTS"]


def slices_of(cluster: Cluster, namespace: str, service: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = get_json(
        cluster, "endpointslices", "-n", namespace,
        "-l", f"kubernetes.io/service-name={service}")["items"]
    return items


def slice_addresses(slices: list[dict[str, Any]]) -> set[str]:
    return {address for s in slices for e in s.get("endpoints") or () for address in e["addresses"]}


def test_service_endpoints_follow_its_pods(ep_cluster: Cluster) -> None:
    cluster = ep_cluster
    namespace = create_namespace(cluster, "test_service_endpoints_follow_its_pods")
    cluster.kubectl("create", "-f", "-", input=SERVICE_AND_REPLICASET.format(namespace=namespace))
    wait_until(lambda: len(running_pod_ips(cluster, namespace, "app=web")) == 3,
               what="three Ready pods")
    ips = running_pod_ips(cluster, namespace, "app=web")
    wanted = {f"{ip}:8080" for ip in ips.values()}
    wait_until(lambda: set(endpoints_cell(cluster, namespace, "web").split(",")) == wanted,
               what="the Endpoints listing every pod")

    endpoints = get_json(cluster, "endpoints", "web", "-n", namespace)
    assert endpoints["metadata"]["labels"] == {"app": "web", MANAGED_BY: "endpoint-controller"}
    # The trigger time is absent when the last change shares its second with the one before.
    assert set(endpoints["metadata"].get("annotations") or {}) <= {TRIGGER_TIME}
    [subset] = endpoints["subsets"]
    assert subset["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    assert {a["targetRef"]["name"]: a["ip"] for a in subset["addresses"]} == ips
    assert all(a["targetRef"]["kind"] == "Pod" and a["nodeName"].startswith("sim-node-")
               for a in subset["addresses"])

    wait_until(lambda: slice_addresses(slices_of(cluster, namespace, "web")) == set(ips.values()),
               what="an EndpointSlice listing every pod")
    listed = cluster.kubectl("get", "endpointslices", "-n", namespace,
                             "-l", "kubernetes.io/service-name=web").stdout
    [row] = tables.rows(listed)
    assert row["NAME"].startswith("web-") and len(row["NAME"]) == len("web-") + 5
    assert (row["ADDRESSTYPE"], row["PORTS"]) == ("IPv4", "8080")
    assert set(row["ENDPOINTS"].split(",")) == set(ips.values())
    [endpoint_slice] = slices_of(cluster, namespace, "web")
    service = get_json(cluster, "service", "web", "-n", namespace)
    assert endpoint_slice["metadata"]["labels"] == {
        "app": "web", "kubernetes.io/service-name": "web",
        "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}
    assert endpoint_slice["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Service", "name": "web",
         "uid": service["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}]
    assert all(e["conditions"] == {"ready": True, "serving": True, "terminating": False}
               for e in endpoint_slice["endpoints"])

    cluster.kubectl("scale", "rs", "web", "-n", namespace, "--replicas=1")
    wait_until(lambda: len(running_pod_ips(cluster, namespace, "app=web")) == 1,
               what="one pod left")
    [survivor] = running_pod_ips(cluster, namespace, "app=web").values()
    wait_until(lambda: endpoints_cell(cluster, namespace, "web") == f"{survivor}:8080",
               what="the Endpoints down to one address")
    wait_until(lambda: slice_addresses(slices_of(cluster, namespace, "web")) == {survivor},
               what="the EndpointSlice down to one endpoint")

    cluster.kubectl("delete", "service", "web", "-n", namespace)
    wait_until(lambda: "NotFound" in cluster.kubectl(
        "get", "endpoints", "web", "-n", namespace, check=False).stderr,
        what="the Endpoints deleted with the Service")
    wait_until(lambda: slices_of(cluster, namespace, "web") == [],
               what="the EndpointSlice collected with the Service")


def test_headless_service_publishes_statefulset_hostnames(ep_cluster: Cluster) -> None:
    cluster = ep_cluster
    namespace = create_namespace(cluster, "test_headless_service_publishes_hostnames")
    for manifest in ("nginx-svc.yaml", "web-sts.yaml"):
        cluster.kubectl("create", "-f", "-",
                        input=seed_manifest(SEED_DIR / manifest, namespace=namespace))
    wait_until(lambda: len(running_pod_ips(cluster, namespace, "app=nginx")) == 2,
               timeout=90, what="web-demo-0 and web-demo-1 Ready")
    ips = running_pod_ips(cluster, namespace, "app=nginx")

    def hostnames() -> dict[str, str]:
        endpoints = get_json(cluster, "endpoints", "nginx-demo", "-n", namespace)
        return {a.get("hostname", ""): a["ip"]
                for s in endpoints.get("subsets") or () for a in s.get("addresses") or ()}

    wait_until(lambda: hostnames() == ips, what="both pods' hostnames in the Endpoints")
    endpoints = get_json(cluster, "endpoints", "nginx-demo", "-n", namespace)
    assert endpoints["metadata"]["labels"] == {
        "app": "nginx", "service.kubernetes.io/headless": "", MANAGED_BY: "endpoint-controller"}
    assert set(endpoints_cell(cluster, namespace, "nginx-demo").split(",")) == {
        f"{ip}:80" for ip in ips.values()}

    wait_until(lambda: slice_addresses(slices_of(cluster, namespace, "nginx-demo"))
               == set(ips.values()), what="an EndpointSlice with both pods")
    [endpoint_slice] = slices_of(cluster, namespace, "nginx-demo")
    assert endpoint_slice["metadata"]["labels"]["service.kubernetes.io/headless"] == ""
    assert {e["hostname"]: e["addresses"][0] for e in endpoint_slice["endpoints"]} == ips
    assert endpoint_slice["ports"] == [{"name": "web", "port": 80, "protocol": "TCP"}]


def test_endpoints_of_a_service_without_selector_are_left_alone(ep_cluster: Cluster) -> None:
    cluster = ep_cluster
    namespace = create_namespace(cluster, "test_service_without_selector")
    cluster.kubectl("create", "-f", "-", input=SELECTORLESS.format(namespace=namespace))
    # A Service with a selector created afterwards shows the controllers have run past it.
    cluster.kubectl("create", "service", "clusterip", "probe", "--tcp=80:80", "-n", namespace)
    wait_until(lambda: slices_of(cluster, namespace, "probe") != [],
               what="the probe Service's placeholder slice")
    wait_until(lambda: cluster.kubectl("get", "endpoints", "probe", "-n", namespace,
                                       check=False).returncode == 0,
               what="the probe Service's Endpoints")
    assert endpoints_cell(cluster, namespace, "database") == "192.0.2.10:5432"
    endpoints = get_json(cluster, "endpoints", "database", "-n", namespace)
    assert MANAGED_BY not in (endpoints["metadata"].get("labels") or {})
    assert slices_of(cluster, namespace, "database") == []
    assert endpoints_cell(cluster, namespace, "probe") == "<none>"
