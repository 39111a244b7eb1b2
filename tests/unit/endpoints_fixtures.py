"""Plain-data Services, pods and Nodes for the endpoints controllers' tests."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


def service(name: str = "web", *, namespace: str = "demo", selector: dict | None = None,
            ports: list[Obj] | None = None, cluster_ip: str = "10.43.0.10",
            labels: dict | None = None, uid: str | None = None, **spec: Any) -> Obj:
    body: Obj = {
        "selector": {"app": name} if selector is None else selector,
        "clusterIP": cluster_ip,
        "ipFamilies": ["IPv6" if ":" in cluster_ip else "IPv4"],
        "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]
        if ports is None else ports,
        **spec,
    }
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "uid": uid or f"uid-svc-{name}",
                     "creationTimestamp": "2025-01-01T00:00:00Z",
                     "labels": {"app": name} if labels is None else labels},
        "spec": body,
    }


def pod(name: str, ip: str | None = "10.42.0.5", *, namespace: str = "demo",
        labels: dict | None = None, ready: bool = True, node: str = "node-1",
        phase: str = "Running", container_ports: list[Obj] | None = None,
        deleting: bool = False, ready_since: str = "2025-01-01T00:01:00Z",
        hostname: str | None = None, subdomain: str | None = None,
        resource_version: str = "1") -> Obj:
    spec: Obj = {"nodeName": node, "containers": [
        {"name": "app", "ports": container_ports if container_ports is not None
         else [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]}]}
    if hostname:
        spec["hostname"] = hostname
    if subdomain:
        spec["subdomain"] = subdomain
    status: Obj = {"phase": phase, "conditions": [
        {"type": "Ready", "status": "True" if ready else "False",
         "lastTransitionTime": ready_since}]}
    if ip:
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]
    md: Obj = {"name": name, "namespace": namespace, "uid": f"uid-{name}",
               "labels": {"app": "web"} if labels is None else labels,
               "resourceVersion": resource_version}
    if deleting:
        md["deletionTimestamp"] = "2025-01-01T00:05:00Z"
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": spec, "status": status}


def node(name: str = "node-1", zone: str | None = None) -> Obj:
    labels = {"kubernetes.io/hostname": name}
    if zone:
        labels["topology.kubernetes.io/zone"] = zone
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels}}
