"""Node status as the kubelet reports it: conditions, allocatable, and the patch.

The kubelet lists four conditions in a fixed order (MemoryPressure,
DiskPressure, PIDPressure, Ready) with its own reasons and messages. Each
report refreshes every condition's lastHeartbeatTime; lastTransitionTime moves
only when a status flips. A report is due when something other than the
heartbeat times changed, or when the report interval has passed
(`report_due`), which is how upstream keeps node writes rare while the Lease
carries the liveness signal. Allocatable is capacity less the kubelet's
default hard eviction thresholds (memory.available 100Mi, nodefs 10%).
"""

from __future__ import annotations

from typing import Any

from kubi.api import schema
from kubi.api.patch import json_equal
from kubi.api.patch.strategic import create_two_way_strategic_patch
from kubi.api.quantity import BINARY_SI, Quantity, parse_quantity

MEMORY_PRESSURE = "MemoryPressure"
DISK_PRESSURE = "DiskPressure"
PID_PRESSURE = "PIDPressure"
READY = "Ready"

# (type, reason and message when True, reason and message when False)
_PRESSURES = (
    (MEMORY_PRESSURE, ("KubeletHasInsufficientMemory", "kubelet has insufficient memory available"),
     ("KubeletHasSufficientMemory", "kubelet has sufficient memory available")),
    (DISK_PRESSURE, ("KubeletHasDiskPressure", "kubelet has disk pressure"),
     ("KubeletHasNoDiskPressure", "kubelet has no disk pressure")),
    (PID_PRESSURE, ("KubeletHasInsufficientPID", "kubelet has insufficient PID available"),
     ("KubeletHasSufficientPID", "kubelet has sufficient PID available")),
)
READY_REASON = "KubeletReady"
READY_MESSAGE = "kubelet is posting ready status"
NOT_READY_REASON = "KubeletNotReady"

# The kubelet's default hard eviction thresholds, which allocatable leaves out.
EVICTION_MEMORY_AVAILABLE = "100Mi"
EVICTION_NODEFS_AVAILABLE = 0.10

Condition = dict[str, Any]


def node_conditions(*, ready: bool = True, not_ready_message: str = "",
                    memory_pressure: bool = False, disk_pressure: bool = False,
                    pid_pressure: bool = False) -> list[Condition]:
    """The kubelet's four node conditions, in its order, without timestamps."""
    flags = {MEMORY_PRESSURE: memory_pressure, DISK_PRESSURE: disk_pressure,
             PID_PRESSURE: pid_pressure}
    out: list[Condition] = []
    for kind, when_true, when_false in _PRESSURES:
        reason, message = when_true if flags[kind] else when_false
        out.append({"type": kind, "status": "True" if flags[kind] else "False",
                    "reason": reason, "message": message})
    if ready:
        out.append({"type": READY, "status": "True", "reason": READY_REASON,
                    "message": READY_MESSAGE})
    else:
        out.append({"type": READY, "status": "False", "reason": NOT_READY_REASON,
                    "message": not_ready_message})
    return out


def stamp_node_conditions(fresh: list[Condition], old: list[Condition],
                          now: str) -> list[Condition]:
    """`fresh` with lastHeartbeatTime `now`, keeping lastTransitionTime while a
    status holds; conditions others added (NetworkUnavailable, ...) stay after."""
    previous = {c.get("type"): c for c in old}
    out = []
    for cond in fresh:
        before = previous.get(cond["type"])
        kept = before.get("lastTransitionTime") if before and \
            before.get("status") == cond["status"] else None
        out.append({**cond, "lastHeartbeatTime": now, "lastTransitionTime": kept or now})
    covered = {c["type"] for c in fresh}
    out.extend(c for c in old if c.get("type") not in covered)
    return out


def _without_heartbeats(status: dict[str, Any]) -> dict[str, Any]:
    conditions = [{k: v for k, v in c.items() if k != "lastHeartbeatTime"}
                  for c in status.get("conditions") or []]
    return {**status, "conditions": conditions}


def report_due(stored: dict[str, Any], fresh: dict[str, Any], *, since_last_report: float,
               report_interval: float) -> bool:
    """Whether the kubelet would write its status now: it changed (heartbeat
    times aside), or the report interval ran out."""
    if since_last_report >= report_interval:
        return True
    return not json_equal(_without_heartbeats(stored), _without_heartbeats(fresh))


def merge_node_status(stored: dict[str, Any], fresh: dict[str, Any], now: str) -> dict[str, Any]:
    """`fresh` laid over `stored`, conditions stamped for a report at `now`."""
    merged = {**stored, **{k: v for k, v in fresh.items() if k != "conditions"}}
    merged["conditions"] = stamp_node_conditions(fresh.get("conditions") or [],
                                                 stored.get("conditions") or [], now)
    return merged


def allocatable(capacity: dict[str, str]) -> dict[str, str]:
    """Capacity less the default eviction thresholds, spelled as upstream does."""
    out = dict(capacity)
    if "memory" in capacity:
        left = parse_quantity(capacity["memory"]) - parse_quantity(EVICTION_MEMORY_AVAILABLE)
        out["memory"] = str(left)
    if "ephemeral-storage" in capacity:
        total = parse_quantity(capacity["ephemeral-storage"]).value()
        out["ephemeral-storage"] = str(Quantity(total - int(total * EVICTION_NODEFS_AVAILABLE),
                                                BINARY_SI))
    return out


_NODE_SCHEMA: list[schema.Node | None] = []


def node_status_patch(node: dict[str, Any], status: dict[str, Any]) -> dict[str, Any] | None:
    """The strategic merge patch from `node`'s stored status to `status`, or None."""
    if not _NODE_SCHEMA:
        _NODE_SCHEMA.append(schema.for_kind("", "v1", "Node"))
    patch = create_two_way_strategic_patch({"status": node.get("status") or {}},
                                           {"status": status}, _NODE_SCHEMA[0])
    return patch or None
