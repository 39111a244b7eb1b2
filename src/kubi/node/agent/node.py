"""The Node this agent registers, and the status it reports, from machine facts.

Capacity is what the machine has (CPUs, MemTotal and the data directory's
filesystem in Ki, as the kubelet spells them, and 110 pods); allocatable
leaves out the default eviction thresholds (`nodestatus.allocatable`). The
addresses are the InternalIP and the Hostname; `daemonEndpoints` carries the
port of the agent's HTTPS endpoint, which is where the API server sends logs,
exec and attach. The conditions report memory, disk and PID pressure against
the kubelet's default thresholds (memory.available 100Mi, nodefs 10%), and
Ready once the runtime is up, else NotReady with the reason.
"""

from __future__ import annotations

from typing import Any

from kubi.node import nodestatus
from kubi.node.agent.machine import MachineInfo, Pressure

KUBELET_VERSION = "v1.33.0-kubi"
MAX_PODS = 110
RUNTIME_HANDLER_ANNOTATION = "kubi.dev/runtime-handler"
MEMORY_THRESHOLD_KIB = 100 * 1024
DISK_THRESHOLD = 0.10
PID_THRESHOLD = 0.95


def capacity(info: MachineInfo) -> dict[str, str]:
    return {
        "cpu": str(info.cpus),
        "ephemeral-storage": f"{info.storage_kib}Ki",
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
        "memory": f"{info.memory_kib}Ki",
        "pods": str(MAX_PODS),
    }


def conditions(pressure: Pressure | None, *, ready: bool,
               not_ready_message: str = "") -> list[dict[str, Any]]:
    p = pressure
    return nodestatus.node_conditions(
        ready=ready, not_ready_message=not_ready_message,
        memory_pressure=p is not None and p.memory_available_kib < MEMORY_THRESHOLD_KIB,
        disk_pressure=p is not None and p.disk_available_fraction < DISK_THRESHOLD,
        pid_pressure=p is not None and p.pids_used_fraction > PID_THRESHOLD)


def node_status(info: MachineInfo, *, name: str, port: int, runtime_version: str,
                handlers: list[str], pressure: Pressure | None, ready: bool,
                not_ready_message: str = "") -> dict[str, Any]:
    """What the node reports; conditions without timestamps."""
    cap = capacity(info)
    return {
        "capacity": cap,
        "allocatable": nodestatus.allocatable(cap),
        "conditions": conditions(pressure, ready=ready, not_ready_message=not_ready_message),
        "addresses": [{"type": "InternalIP", "address": info.internal_ip},
                      {"type": "Hostname", "address": name}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
        "nodeInfo": {
            "machineID": info.machine_id,
            "systemUUID": info.system_uuid,
            "bootID": info.boot_id,
            "kernelVersion": info.kernel_version,
            "osImage": info.os_image,
            "containerRuntimeVersion": runtime_version,
            "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": info.architecture,
        },
        "runtimeHandlers": [{"name": h, "features": {"recursiveReadOnlyMounts": False,
                                                     "userNamespaces": False}}
                            for h in handlers],
    }


def node_object(info: MachineInfo, *, name: str, port: int, runtime_version: str,
                default_handler: str, handlers: list[str]) -> dict[str, Any]:
    """The Node to register (status NotReady until the runtime is up)."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "beta.kubernetes.io/arch": info.architecture,
                "beta.kubernetes.io/os": "linux",
                "kubernetes.io/arch": info.architecture,
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
            },
            "annotations": {
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
                RUNTIME_HANDLER_ANNOTATION: default_handler,
            },
        },
        "spec": {},
        "status": node_status(info, name=name, port=port, runtime_version=runtime_version,
                              handlers=handlers, pressure=None, ready=False,
                              not_ready_message="container runtime is starting"),
    }


def starting_events(name: str) -> list[tuple[str, str]]:
    """(reason, message) of the events a kubelet records about its node when it starts."""
    out = [("Starting", "Starting kubelet.")]
    out += [(reason, f"Node {name} status is now: {reason}")
            for reason in ("NodeHasSufficientMemory", "NodeHasNoDiskPressure",
                           "NodeHasSufficientPID")]
    out.append(("NodeAllocatableEnforced", "Updated Node Allocatable limit across pods"))
    return out
