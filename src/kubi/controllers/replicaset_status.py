"""The status a ReplicaSet (or ReplicationController) reports, as pure functions.

`calculate_status` counts the active pods a controller owns: `replicas`,
`fullyLabeledReplicas` (pods carrying every label of the template, not just
the selector's), `readyReplicas` and `availableReplicas` (ready for at least
minReadySeconds). A failed create or delete adds the `ReplicaFailure`
condition (reason FailedCreate or FailedDelete, the error as message); the
next sync that manages replicas without error removes it. `status_unchanged`
is upstream's steady-state test that lets a sync skip the status write.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from kubi.api.meta import format_time
from kubi.controllers.podviews import PodView, view_of

REPLICA_FAILURE = "ReplicaFailure"

_COUNTS = ("replicas", "fullyLabeledReplicas", "readyReplicas", "availableReplicas")


def desired_replicas(obj: dict[str, Any]) -> int:
    replicas = (obj.get("spec") or {}).get("replicas")
    return 1 if replicas is None else int(replicas)


def get_condition(status: dict[str, Any], cond_type: str) -> dict[str, Any] | None:
    for condition in status.get("conditions") or ():
        if condition.get("type") == cond_type:
            return condition
    return None


def set_condition(status: dict[str, Any], condition: dict[str, Any]) -> None:
    """Add or replace; an existing condition with the same status and reason is kept."""
    current = get_condition(status, condition["type"])
    if current is not None and current.get("status") == condition["status"] \
            and current.get("reason") == condition.get("reason"):
        return
    remove_condition(status, condition["type"])
    status["conditions"] = [*(status.get("conditions") or []), condition]


def remove_condition(status: dict[str, Any], cond_type: str) -> None:
    kept = [c for c in status.get("conditions") or () if c.get("type") != cond_type]
    if kept:
        status["conditions"] = kept
    else:
        status.pop("conditions", None)


class Counts(NamedTuple):
    fully_labeled: int
    ready: int
    available: int


def _template_labels(spec: dict[str, Any]) -> dict[str, str]:
    return ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}


def count_views(obj: dict[str, Any], views: Sequence[PodView], now: float) -> Counts:
    """The counts of the owner's pods, from what their views know."""
    spec = obj.get("spec") or {}
    template_labels = _template_labels(spec)
    min_ready = int(spec.get("minReadySeconds") or 0)
    fully_labeled = ready = available = 0
    for view in views:
        if view.fully_labeled(template_labels):
            fully_labeled += 1
        if view.ready:
            ready += 1
            if view.available(min_ready, now):
                available += 1
    return Counts(fully_labeled, ready, available)


def calculate_status(obj: dict[str, Any], pods: Sequence[dict[str, Any]],
                     manage_error: Exception | None, now: float,
                     counts: Counts | None = None) -> dict[str, Any]:
    """The status for `obj` owning `pods` (`counts` when the caller has them)."""
    status: dict[str, Any] = dict(obj.get("status") or {})
    if "conditions" in status:
        status["conditions"] = list(status["conditions"])
    fully_labeled, ready, available = counts or count_views(obj, [view_of(p) for p in pods], now)

    failure = get_condition(status, REPLICA_FAILURE)
    if manage_error is not None and failure is None:
        diff = len(pods) - desired_replicas(obj)
        reason = "FailedCreate" if diff < 0 else "FailedDelete" if diff > 0 else ""
        set_condition(status, {
            "type": REPLICA_FAILURE,
            "status": "True",
            "lastTransitionTime": format_time(now),
            "reason": reason,
            "message": str(manage_error),
        })
    elif manage_error is None and failure is not None:
        remove_condition(status, REPLICA_FAILURE)

    status["replicas"] = len(pods)
    # Zero counts are omitted, as Go's omitempty drops them on the wire.
    for field, value in (("fullyLabeledReplicas", fully_labeled), ("readyReplicas", ready),
                         ("availableReplicas", available)):
        if value:
            status[field] = value
        else:
            status.pop(field, None)
    return status


def status_unchanged(obj: dict[str, Any], new_status: dict[str, Any]) -> bool:
    old = obj.get("status") or {}
    generation = (obj.get("metadata") or {}).get("generation") or 0
    return (all((old.get(f) or 0) == (new_status.get(f) or 0) for f in _COUNTS)
            and generation == (old.get("observedGeneration") or 0)
            and (old.get("conditions") or []) == (new_status.get("conditions") or []))


def with_observed_generation(obj: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
    generation = (obj.get("metadata") or {}).get("generation") or 0
    status = dict(status)
    if generation:
        status["observedGeneration"] = generation
    else:
        status.pop("observedGeneration", None)
    return status
