"""The pod printer: READY, STATUS and RESTARTS as `kubectl get pods` shows them.

STATUS is not a stored field but a summary computed from the whole status,
in the order upstream applies its rules: the pod's phase or reason, then a
scheduling gate, then the first init container that has not finished
(`Init:<reason>`, `Init:ExitCode:N`, `Init:i/n`), then the app containers
(the first container in spec order with a waiting or terminated reason wins),
and finally deletion (`Terminating`, or `Unknown` for pods on a lost node).
Restartable init containers ("sidecars") count towards READY and RESTARTS.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kubi.api.printers._common import (
    AGE,
    NAME,
    NONE,
    Column,
    Obj,
    Printer,
    age,
    int_field,
    items,
    metadata,
    name_of,
    parse_time,
    section,
    since,
    wide,
)

COLUMNS = (
    NAME,
    Column("Ready", description="Ready containers out of all containers in the pod."),
    Column("Status", description="Summary of the pod's phase and container states."),
    Column("Restarts", description="Container restarts, and how long ago the last one was."),
    AGE,
    wide("IP", "The pod's primary IP address."),
    wide("Node", "The node the pod is bound to."),
    wide("Nominated Node", "The node preemption has reserved for the pod."),
    wide("Readiness Gates", "Readiness gates that are satisfied, out of all gates."),
)

_TERMINAL_PHASES = ("Succeeded", "Failed")
_NODE_LOST = "NodeLost"


def _is_sidecar(container: Obj | None) -> bool:
    return container is not None and container.get("restartPolicy") == "Always"


def _has_state(status: Obj, state: str) -> bool:
    # An empty object still marks the state as present, as a non-nil pointer does.
    return section(status, "state").get(state) is not None


def _state(status: Obj, state: str) -> Obj:
    return section(section(status, "state"), state)


def _exit_reason(terminated: Obj) -> str:
    signal = int_field(terminated, "signal")
    if signal:
        return f"Signal:{signal}"
    return f"ExitCode:{int_field(terminated, 'exitCode')}"


def _last_finish(status: Obj) -> datetime | None:
    last = section(status, "lastState")
    if last.get("terminated") is None:
        return None
    return parse_time(section(last, "terminated").get("finishedAt"))


def _later(current: datetime | None, candidate: datetime | None) -> datetime | None:
    if candidate is None:
        return current
    if current is None or current < candidate:
        return candidate
    return current


@dataclass
class _Tally:
    reason: str
    ready: int = 0
    restarts: int = 0
    last_restart: datetime | None = None


def _scan_init_containers(pod: Obj, tally: _Tally) -> tuple[bool, int, datetime | None]:
    """Walk init statuses in order until one has not finished.

    Returns whether the pod is still initializing, plus the restart count and
    latest restart of the sidecars seen, which still matter once it is not.
    """
    spec_list = items(section(pod, "spec"), "initContainers")
    specs = {container.get("name"): container for container in spec_list}
    sidecar_restarts = 0
    sidecar_last: datetime | None = None
    for index, status in enumerate(items(section(pod, "status"), "initContainerStatuses")):
        count = int_field(status, "restartCount")
        finished = _last_finish(status)
        tally.restarts += count
        tally.last_restart = _later(tally.last_restart, finished)
        sidecar = _is_sidecar(specs.get(status.get("name")))
        if sidecar:
            sidecar_restarts += count
            sidecar_last = _later(sidecar_last, finished)

        terminated = _state(status, "terminated")
        waiting_reason = _state(status, "waiting").get("reason") or ""
        if _has_state(status, "terminated") and int_field(terminated, "exitCode") == 0:
            continue
        if sidecar and status.get("started") is True:
            if status.get("ready"):
                tally.ready += 1
            continue
        if _has_state(status, "terminated"):
            tally.reason = "Init:" + (terminated.get("reason") or _exit_reason(terminated))
        elif waiting_reason and waiting_reason != "PodInitializing":
            tally.reason = "Init:" + waiting_reason
        else:
            tally.reason = f"Init:{index}/{len(spec_list)}"
        return True, sidecar_restarts, sidecar_last
    return False, sidecar_restarts, sidecar_last


def _scan_containers(pod: Obj, tally: _Tally) -> None:
    conditions = items(section(pod, "status"), "conditions")
    has_running = False
    # Walked backwards, so the first listed container has the final word.
    for status in reversed(items(section(pod, "status"), "containerStatuses")):
        tally.restarts += int_field(status, "restartCount")
        tally.last_restart = _later(tally.last_restart, _last_finish(status))
        waiting_reason = _state(status, "waiting").get("reason") or ""
        terminated = _state(status, "terminated")
        if waiting_reason:
            tally.reason = waiting_reason
        elif _has_state(status, "terminated"):
            tally.reason = terminated.get("reason") or _exit_reason(terminated)
        elif status.get("ready") and _has_state(status, "running"):
            has_running = True
            tally.ready += 1

    # A container that exited 0 while another still runs: the pod is not done.
    if tally.reason == "Completed" and has_running:
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
        tally.reason = "Running" if ready else "NotReady"


def _initialized(pod: Obj) -> bool:
    for condition in items(section(pod, "status"), "conditions"):
        if condition.get("type") == "Initialized":
            return bool(condition.get("status") == "True")
    return False


def pod_summary(pod: Obj, now: datetime) -> tuple[str, str, str]:
    """The READY, STATUS and RESTARTS cells of a pod."""
    spec, status = section(pod, "spec"), section(pod, "status")
    phase = status.get("phase") or ""
    tally = _Tally(reason=status.get("reason") or phase)
    for condition in items(status, "conditions"):
        if condition.get("type") == "PodScheduled" and condition.get("reason") == "SchedulingGated":
            tally.reason = "SchedulingGated"

    total = len(items(spec, "containers"))
    total += sum(1 for container in items(spec, "initContainers") if _is_sidecar(container))

    initializing, sidecar_restarts, sidecar_last = _scan_init_containers(pod, tally)
    if not initializing or _initialized(pod):
        tally.restarts, tally.last_restart = sidecar_restarts, sidecar_last
        _scan_containers(pod, tally)

    if metadata(pod).get("deletionTimestamp") is not None:
        if status.get("reason") == _NODE_LOST:
            tally.reason = "Unknown"
        elif phase not in _TERMINAL_PHASES:
            tally.reason = "Terminating"

    restarts = str(tally.restarts)
    if tally.restarts and tally.last_restart is not None:
        restarts = f"{tally.restarts} ({since(tally.last_restart, now)} ago)"
    return f"{tally.ready}/{total}", tally.reason, restarts


def _readiness_gates(pod: Obj) -> str:
    gates = items(section(pod, "spec"), "readinessGates")
    if not gates:
        return NONE
    conditions = items(section(pod, "status"), "conditions")
    satisfied = 0
    for gate in gates:
        match = next((c for c in conditions if c.get("type") == gate.get("conditionType")), None)
        if match is not None and match.get("status") == "True":
            satisfied += 1
    return f"{satisfied}/{len(gates)}"


def pod_cells(pod: Obj, now: datetime) -> list[Any]:
    spec, status = section(pod, "spec"), section(pod, "status")
    ready, reason, restarts = pod_summary(pod, now)
    pod_ips = items(status, "podIPs")
    ip = (pod_ips[0].get("ip") if pod_ips else "") or NONE
    return [
        name_of(pod),
        ready,
        reason,
        restarts,
        age(pod, now),
        ip,
        spec.get("nodeName") or NONE,
        status.get("nominatedNodeName") or NONE,
        _readiness_gates(pod),
    ]


def pod_conditions(pod: Obj) -> list[dict[str, Any]] | None:
    """Rows of Succeeded and Failed pods carry a Completed condition."""
    phase = section(pod, "status").get("phase")
    if phase == "Succeeded":
        message = "The pod has completed successfully."
    elif phase == "Failed":
        message = "The pod failed."
    else:
        return None
    return [{"type": "Completed", "status": "True", "reason": phase, "message": message}]


PRINTERS: dict[tuple[str, str], Printer] = {
    ("", "pods"): Printer(COLUMNS, pod_cells, pod_conditions),
}
