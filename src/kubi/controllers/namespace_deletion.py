"""Pure parts of namespace deletion: what remains, how long to wait, which conditions.

`pod_termination_estimate` is the longest grace period still running, from
the namespace's deletionTimestamp; `assess_remaining` tells expected
leftovers (grace period, finalizers) from failures; `content_conditions`
and `merge_conditions` build upstream's five status conditions (False with
an "ok" reason when nothing is wrong), moving lastTransitionTime only when
a status flips.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubi.api.meta import format_time, parse_time

Obj = dict[str, Any]

# A guess at how long finalizers take, when objects with finalizers remain.
FINALIZER_ESTIMATE_SECONDS = 15

DISCOVERY_FAILURE = "NamespaceDeletionDiscoveryFailure"
GV_PARSING_FAILURE = "NamespaceDeletionGroupVersionParsingFailure"
CONTENT_FAILURE = "NamespaceDeletionContentFailure"
CONTENT_REMAINING = "NamespaceContentRemaining"
FINALIZERS_REMAINING = "NamespaceFinalizersRemaining"

CONDITION_TYPES = (DISCOVERY_FAILURE, GV_PARSING_FAILURE, CONTENT_FAILURE, CONTENT_REMAINING,
                   FINALIZERS_REMAINING)

_OK = {
    DISCOVERY_FAILURE: ("ResourcesDiscovered", "All resources successfully discovered"),
    GV_PARSING_FAILURE: ("ParsedGroupVersions", "All legacy kube types successfully parsed"),
    CONTENT_FAILURE: ("ContentDeleted",
                      "All content successfully deleted, may be waiting on finalization"),
    CONTENT_REMAINING: ("ContentRemoved", "All content successfully removed"),
    FINALIZERS_REMAINING: ("ContentRemoved", "All content successfully removed"),
}


def gvr_string(group: str, version: str, plural: str) -> str:
    """A GroupVersionResource as Go prints it: `apps/v1, Resource=deployments`."""
    return f"{group}/{version}, Resource={plural}"


@dataclass
class ResourceLeftovers:
    """What one resource's deletion pass left behind."""

    estimate: int = 0
    remaining: int = 0
    finalizers: dict[str, int] = field(default_factory=dict)
    error: str | None = None


def pod_termination_estimate(pods: Iterable[Obj], deleted_at: float | None, now: float) -> int:
    """Seconds the pods may still need: the longest grace period not yet used up."""
    estimate = 0
    for pod in pods:
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        grace = (pod.get("spec") or {}).get("terminationGracePeriodSeconds")
        if grace is not None and int(grace) > estimate:
            estimate = int(grace)
    if deleted_at is not None and now - deleted_at >= estimate:
        return 0
    return estimate


def assess_remaining(items: list[Obj], estimate: int, *, namespace: str,
                     gvr: str) -> ResourceLeftovers:
    """Judge the objects still listed after a resource's deletion pass."""
    if not items:
        return ResourceLeftovers()
    finalizers: dict[str, int] = {}
    for item in items:
        for name in (item.get("metadata") or {}).get("finalizers") or ():
            finalizers[name] = finalizers.get(name, 0) + 1
    if estimate:
        return ResourceLeftovers(estimate, len(items), finalizers)
    if finalizers:
        return ResourceLeftovers(FINALIZER_ESTIMATE_SECONDS, len(items), finalizers)
    return ResourceLeftovers(0, len(items), {},
                             f"unexpected items still remain in namespace: {namespace} for gvr: "
                             f"{gvr}")


@dataclass
class DeletionTotals:
    """Leftovers summed over every resource of one pass."""

    estimate: int = 0
    remaining: dict[tuple[str, str], int] = field(default_factory=dict)  # (plural, group)
    finalizers: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def add(self, plural: str, group: str, leftovers: ResourceLeftovers) -> None:
        self.estimate = max(self.estimate, leftovers.estimate)
        if leftovers.error:
            self.errors.append(leftovers.error)
        if leftovers.remaining:
            self.remaining[(plural, group)] = leftovers.remaining
            for name, count in leftovers.finalizers.items():
                if count:
                    self.finalizers[name] = self.finalizers.get(name, 0) + count


def content_conditions(totals: DeletionTotals) -> dict[str, tuple[str, str]]:
    """The failing conditions of this pass: type -> (reason, message)."""
    failing: dict[str, tuple[str, str]] = {}
    if totals.errors:
        messages = sorted(totals.errors)
        failing[CONTENT_FAILURE] = (
            "ContentDeletionFailed",
            (f"Failed to delete all resource types, {len(messages)} remaining: "
             f"{', '.join(messages)}"))
    if totals.remaining:
        parts = sorted(f"{plural}.{group} has {count} resource instances"
                       for (plural, group), count in totals.remaining.items() if count)
        failing[CONTENT_REMAINING] = ("SomeResourcesRemain",
                                      f"Some resources are remaining: {', '.join(parts)}")
    if totals.finalizers:
        parts = sorted(f"{name} in {count} resource instances"
                       for name, count in totals.finalizers.items() if count)
        failing[FINALIZERS_REMAINING] = ("SomeFinalizerRemain",
                                         f"Some finalizers are remaining: {', '.join(parts)}")
    return failing


def merge_conditions(current: list[Obj], failing: Mapping[str, tuple[str, str]],
                     now: float) -> tuple[list[Obj], bool]:
    """Fold this pass's conditions into the status; returns (conditions, changed)."""
    stamp = format_time(now)
    conditions = [dict(c) for c in current]
    changed = False
    for ctype in CONDITION_TYPES:
        if ctype in failing:
            status, (reason, message) = "True", failing[ctype]
        else:
            status, (reason, message) = "False", _OK[ctype]
        existing = next((c for c in conditions if c.get("type") == ctype), None)
        if existing is None:
            conditions.append({"type": ctype, "status": status, "lastTransitionTime": stamp,
                               "reason": reason, "message": message})
            changed = True
        elif (existing.get("status"), existing.get("reason"), existing.get("message")) != \
                (status, reason, message):
            if existing.get("status") != status:
                existing["lastTransitionTime"] = stamp
            existing.update(status=status, reason=reason, message=message)
            changed = True
    return conditions, changed


def deletion_time(namespace: Obj) -> float | None:
    return parse_time((namespace.get("metadata") or {}).get("deletionTimestamp"))


def finalizers_after(namespace: Obj, token: str) -> list[str]:
    """spec.finalizers without `token`, sorted and without duplicates (upstream's set)."""
    finalizers = (namespace.get("spec") or {}).get("finalizers") or []
    return sorted({f for f in finalizers if f != token})
