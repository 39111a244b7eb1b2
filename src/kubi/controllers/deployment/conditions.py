"""Deployment conditions: their types, upstream's reasons, and how they are set.

A Deployment reports `Available` (enough pods available) and `Progressing`
(how the current rollout goes), and mirrors a `ReplicaFailure` of its
ReplicaSets. `set_condition` keeps a condition untouched when neither its
status nor its reason changes, and keeps lastTransitionTime when only the
reason does, which is what lets `kubectl rollout status` and describe show
stable times. Conditions are dicts with the wire's field order.
"""

from __future__ import annotations

from typing import Any

from kubi.api.meta import format_time

Condition = dict[str, Any]

AVAILABLE = "Available"
PROGRESSING = "Progressing"
REPLICA_FAILURE = "ReplicaFailure"

TRUE, FALSE, UNKNOWN = "True", "False", "Unknown"

# Reasons, as upstream's deployment controller writes them.
REPLICA_SET_UPDATED = "ReplicaSetUpdated"
FAILED_RS_CREATE = "ReplicaSetCreateError"
NEW_REPLICA_SET = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"
MINIMUM_REPLICAS_AVAILABLE = "MinimumReplicasAvailable"
MINIMUM_REPLICAS_UNAVAILABLE = "MinimumReplicasUnavailable"

HAS_MINIMUM_AVAILABILITY = "Deployment has minimum availability."
NO_MINIMUM_AVAILABILITY = "Deployment does not have minimum availability."


def new_condition(cond_type: str, status: str, reason: str, message: str,
                  now: float) -> Condition:
    stamp = format_time(now)
    return {"type": cond_type, "status": status, "lastUpdateTime": stamp,
            "lastTransitionTime": stamp, "reason": reason, "message": message}


def get_condition(status: dict[str, Any], cond_type: str) -> Condition | None:
    for condition in status.get("conditions") or ():
        if condition.get("type") == cond_type:
            return condition
    return None


def set_condition(status: dict[str, Any], condition: Condition) -> None:
    """Put `condition` into `status`, last; an equivalent one already there wins."""
    current = get_condition(status, condition["type"])
    if current is not None and current.get("status") == condition["status"] \
            and current.get("reason") == condition.get("reason"):
        return
    if current is not None and current.get("status") == condition["status"]:
        condition = {**condition, "lastTransitionTime": current.get("lastTransitionTime")}
    kept = [c for c in status.get("conditions") or () if c.get("type") != condition["type"]]
    status["conditions"] = [*kept, condition]


def remove_condition(status: dict[str, Any], cond_type: str) -> None:
    kept = [c for c in status.get("conditions") or () if c.get("type") != cond_type]
    if kept:
        status["conditions"] = kept
    else:
        status.pop("conditions", None)


def from_replica_set_condition(condition: Condition) -> Condition:
    """A ReplicaSet condition restated as a Deployment condition."""
    restated = {"type": condition.get("type"), "status": condition.get("status"),
                "lastUpdateTime": condition.get("lastTransitionTime"),
                "lastTransitionTime": condition.get("lastTransitionTime"),
                "reason": condition.get("reason"), "message": condition.get("message")}
    return {k: v for k, v in restated.items() if v}
