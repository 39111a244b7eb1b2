"""Small builders of Node and Pod dicts for the scheduler's unit tests."""

from __future__ import annotations

from typing import Any


def make_node(name: str, *, cpu: str = "4", memory: str = "8Gi", pods: str = "110",
              labels: dict[str, str] | None = None, taints: list[dict] | None = None,
              unschedulable: bool = False, ephemeral: str | None = None) -> dict[str, Any]:
    allocatable = {"cpu": cpu, "memory": memory, "pods": pods}
    if ephemeral is not None:
        allocatable["ephemeral-storage"] = ephemeral
    spec: dict[str, Any] = {}
    if taints:
        spec["taints"] = taints
    if unschedulable:
        spec["unschedulable"] = True
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name,
                     "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "spec": spec,
        "status": {"capacity": dict(allocatable), "allocatable": allocatable,
                   "conditions": [{"type": "Ready", "status": "True"}]},
    }


def make_pod(name: str, *, namespace: str = "default", cpu: str | None = None,
             memory: str | None = None, labels: dict[str, str] | None = None,
             node: str | None = None, priority: int | None = None,
             **spec: Any) -> dict[str, Any]:
    requests = {}
    if cpu is not None:
        requests["cpu"] = cpu
    if memory is not None:
        requests["memory"] = memory
    container: dict[str, Any] = {"name": "app", "image": "nginx"}
    if requests:
        container["resources"] = {"requests": requests}
    body: dict[str, Any] = {"containers": [container], "schedulerName": "default-scheduler",
                            **spec}
    if node:
        body["nodeName"] = node
    if priority is not None:
        body["priority"] = priority
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{namespace}-{name}",
                     "labels": labels or {}},
        "spec": body,
        "status": {"phase": "Pending"},
    }


def taint(key: str, effect: str = "NoSchedule", value: str = "") -> dict[str, str]:
    result = {"key": key, "effect": effect}
    if value:
        result["value"] = value
    return result
